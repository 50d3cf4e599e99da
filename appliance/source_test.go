package appliance

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/bundle"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// signedSetup writes a key pair, a trust file naming it, and a
// configuration with its certificate, and returns a function that signs
// the configuration into a bundle file with a sequence number.
func signedSetup(t *testing.T) (dir, trust, cfg string, sign func(seq uint64, extra string) string) {
	t.Helper()
	dir = t.TempDir()
	key, err := bundle.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteKeyPair(key, filepath.Join(dir, "fleet")); err != nil {
		t.Fatal(err)
	}
	trust = filepath.Join(dir, "trust.cfg")
	if err := os.WriteFile(trust, []byte("global\n    config-signing-key "+filepath.Join(dir, "fleet.pub")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, pem, err := tlsctx.SelfSigned("localhost")
	if err != nil {
		t.Fatal(err)
	}
	crt := filepath.Join(dir, "certs", "site.pem")
	os.Mkdir(filepath.Dir(crt), 0o755)
	if err := os.WriteFile(crt, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "sluice.cfg")
	sign = func(seq uint64, extra string) string {
		t.Helper()
		text := fmt.Sprintf("global\n%slisten web\n    bind 127.0.0.1:8443 ssl crt %s\n    server s 127.0.0.1:8080\n", extra, filepath.Dir(crt))
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		names, files, err := Collect([]string{cfg})
		if err != nil {
			t.Fatal(err)
		}
		m := bundle.Manifest{Sequence: seq, Created: time.Now(), Config: names}
		for p, data := range files {
			m.Files = append(m.Files, bundle.File{Path: p, Data: data})
		}
		data, err := bundle.Sign(key, m)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("b%d-%d.bundle", seq, len(extra)))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return dir, trust, cfg, sign
}

func TestSourceLoadBundle(t *testing.T) {
	dir, trust, _, sign := signedSetup(t)
	b10 := sign(10, "")
	b10other := sign(10, "    maxconn 100\n")
	b5 := sign(5, "")
	b11 := sign(11, "")
	proxies := "listen web\n    bind 127.0.0.1:8443\n    server s 127.0.0.1:8080\n"
	if err := os.WriteFile(filepath.Join(dir, "proxies.cfg"), []byte(proxies), 0o644); err != nil {
		t.Fatal(err)
	}
	// The bundle carries the certificate directory: the disk's copy goes.
	if err := os.RemoveAll(filepath.Join(dir, "certs")); err != nil {
		t.Fatal(err)
	}

	noKeys := filepath.Join(dir, "nokeys.cfg")
	if err := os.WriteFile(noKeys, []byte("global\n    maxconn 10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first, _, err := Source{Files: []string{trust}, Bundle: b10}.Load(nil, time.Now())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if _, err := CheckLoaded(first); err != nil {
		t.Fatalf("certificates from the bundle: %v", err)
	}
	tests := []struct {
		name string
		src  Source
		want string // "" for accepted
	}{
		{"same bundle again", Source{Files: []string{trust}, Bundle: b10}, ""},
		{"newer", Source{Files: []string{trust}, Bundle: b11}, ""},
		{"older: a replay", Source{Files: []string{trust}, Bundle: b5}, "sequence 5 is older than the running bundle's 10"},
		{"same sequence, other contents", Source{Files: []string{trust}, Bundle: b10other}, "with other contents"},
		{"no trust file", Source{Bundle: b10}, "-B needs -f FILE"},
		{"trust file without keys", Source{Files: []string{noKeys}, Bundle: b10}, "no config-signing-key line"},
		{"trust file with proxies", Source{Files: []string{trust, filepath.Join(dir, "proxies.cfg")}, Bundle: b10}, "holds proxies ('web')"},
		{"missing bundle", Source{Files: []string{trust}, Bundle: filepath.Join(dir, "none")}, "read bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.src.Load(first.Bundle, time.Now())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSourceRefusesUnsignedWithKeys(t *testing.T) {
	_, trust, _, _ := signedSetup(t)
	_, _, err := Source{Files: []string{trust}}.Load(nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), "trust.cfg:2: config-signing-key: this machine only accepts configuration from bundles") {
		t.Fatalf("error %v", err)
	}
}

func TestCollectRefusesSigningKey(t *testing.T) {
	_, _, cfg, _ := signedSetup(t)
	if err := os.WriteFile(cfg, []byte("global\n    config-signing-key /k.pub\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Collect([]string{cfg}); err == nil || !strings.Contains(err.Error(), "does not go in a bundle") {
		t.Fatalf("error %v", err)
	}
}

// TestSourceRemembersLastBundle: with a state directory, a bundle older
// than the last one accepted is refused at start too.
func TestSourceRemembersLastBundle(t *testing.T) {
	_, trust, _, sign := signedSetup(t)
	b10, b5, b10other := sign(10, ""), sign(5, ""), sign(10, "    maxconn 100\n")
	state := t.TempDir()
	src := Source{Files: []string{trust}, Bundle: b10, StateDir: state}
	ld, _, err := src.Load(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.remember(ld.Bundle); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		bundle string
		want   string
	}{
		{b10, ""},
		{b5, "sequence 5 is older than the running bundle's 10"},
		{b10other, "with other contents"},
	}
	for _, tt := range tests {
		_, _, err := Source{Files: []string{trust}, Bundle: tt.bundle, StateDir: state}.Load(nil, time.Now())
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: error %v, want %q", filepath.Base(tt.bundle), err, tt.want)
		}
	}
	if err := os.WriteFile(filepath.Join(state, stateFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (Source{Files: []string{trust}, Bundle: b10, StateDir: state}).Load(nil, time.Now()); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("bad state file: %v", err)
	}
}
