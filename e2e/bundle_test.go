package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/bundle"
)

// textBackend runs an HTTP server on 127.0.0.1 that answers body.
func textBackend(t *testing.T, body string) int {
	t.Helper()
	return serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}))
}

// runSluice runs the binary to completion and returns its exit code and
// output.
func runSluice(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("run sluice %v: %v", args, err)
	}
	return 0, string(out)
}

// fleet is a signing setup: keys, the machine's trust file, a two-tier
// configuration with its certificate on disk, and the bundle path sluice
// runs.
type fleet struct {
	dir, trust, cfg, live string
	port                  int
	tmpl                  string
}

const bundleConfig = `global
    nbproc 3
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen dispatcher
    mode tcp
    bind 127.0.0.1:%[1]d process 1
    balance leastconn
    server w2 abns@%[2]s-2 send-proxy-v2
    server w3 abns@%[2]s-3 send-proxy-v2
listen worker
    bind abns@%[2]s-2 process 2 accept-proxy ssl crt %[3]s
    bind abns@%[2]s-3 process 3 accept-proxy ssl crt %[3]s
    server app 127.0.0.1:%[4]s
`

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{dir: t.TempDir(), port: freePort(t)}
	for _, k := range []string{"fleet", "other"} {
		if code, out := runSluice(t, "bundle", "keygen", "-o", filepath.Join(f.dir, k)); code != 0 {
			t.Fatalf("keygen: %s", out)
		}
	}
	f.trust = filepath.Join(f.dir, "trust.cfg")
	if err := os.WriteFile(f.trust, []byte("global\n    config-signing-key "+filepath.Join(f.dir, "fleet.pub")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The certificate lives in its own directory, named by the config:
	// the bundle must carry it.
	f.tmpl = fmt.Sprintf(bundleConfig, f.port, abnsName(t, "w"), writeCert(t), "%d")
	f.cfg = filepath.Join(f.dir, "sluice.cfg")
	f.live = filepath.Join(f.dir, "live.bundle")
	return f
}

// sign writes the configuration for backend port and signs it with key
// ("fleet" or "other") and sequence seq; it returns the bundle's contents.
func (f *fleet) sign(t *testing.T, key string, seq int, backend int) []byte {
	t.Helper()
	if err := os.WriteFile(f.cfg, []byte(fmt.Sprintf(f.tmpl, backend)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(f.dir, fmt.Sprintf("b-%s-%d-%d.bundle", key, seq, backend))
	code, text := runSluice(t, "bundle", "sign", "-k", filepath.Join(f.dir, key+".key"), "-o", out, "-n", fmt.Sprint(seq), f.cfg)
	if code != 0 {
		t.Fatalf("sign: %s", text)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("the bundle holds private keys but has mode %v", st.Mode().Perm())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// edit changes a signed bundle's envelope (JSON) with change.
func edit(t *testing.T, data []byte, change func(env map[string]any)) []byte {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	change(env)
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// resignAt signs data's manifest again with the fleet key, with other
// creation and expiry times.
func (f *fleet) resignAt(t *testing.T, data []byte, created, expires time.Time) []byte {
	t.Helper()
	pub, err := bundle.ReadPublicKey(filepath.Join(f.dir, "fleet.pub"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.ReadPrivateKey(filepath.Join(f.dir, "fleet.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Verify(data, []*bundle.PublicKey{pub}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := b.Manifest
	m.Created, m.Expires = created, expires
	out, err := bundle.Sign(key, m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBundleReloadAndRefusals(t *testing.T) {
	f := newFleet(t)
	a, b := textBackend(t, "config A"), textBackend(t, "config B")
	first := f.sign(t, "fleet", 10, a)
	if err := os.WriteFile(f.live, first, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "bundle", "verify", "-p", filepath.Join(f.dir, "fleet.pub"), f.live); code != 0 || !strings.Contains(out, "valid: sequence 10") {
		t.Fatalf("verify: exit %d: %s", code, out)
	}
	sock := filepath.Join(f.dir, "master.sock")
	in := startBinary(t, fmt.Sprintf("127.0.0.1:%d", f.port), "-S", sock, "-f", f.trust, "-B", f.live)
	url := fmt.Sprintf("https://127.0.0.1:%d/", f.port)
	c := tlsClient("")
	expect := func(want string) {
		t.Helper()
		waitFor(t, 10*time.Second, "the response "+want, func() bool {
			got, err := get(c, url)
			return err == nil && got == want
		})
	}
	expect("config A")
	if !strings.Contains(in.output.String(), "no $STATE_DIRECTORY") {
		t.Errorf("no warning that replays are remembered only while it runs:\n%s", in.output.String())
	}

	next := f.sign(t, "fleet", 20, b) // the valid update, kept for last
	flipped := bytes.Clone(next)
	i := bytes.Index(flipped, []byte(`"manifest": "`)) + len(`"manifest": "`) + 40
	flipped[i] = map[bool]byte{true: 'B', false: 'A'}[flipped[i] == 'A']
	refusals := []struct {
		name string
		data []byte
		want string
	}{
		{"one byte changed", flipped, "bad signature"},
		{"wrong key", f.sign(t, "other", 20, b), "not trusted"},
		{"Ed25519 only", edit(t, next, func(env map[string]any) { delete(env["signature"].(map[string]any), "mldsa65") }), "no ML-DSA-65 signature"},
		{"ML-DSA-65 only", edit(t, next, func(env map[string]any) { delete(env["signature"].(map[string]any), "ed25519") }), "no Ed25519 signature"},
		{"expired", f.resignAt(t, next, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)), "expired"},
		{"replayed (older sequence)", f.sign(t, "fleet", 5, b), "older than the running bundle's 10"},
		{"same sequence, other contents", f.sign(t, "fleet", 10, b), "sequence 10 is the running bundle's, with other contents"},
		{"plain configuration file", []byte(fmt.Sprintf(f.tmpl, b)), "not a sluice bundle"},
	}
	for _, r := range refusals {
		if err := os.WriteFile(f.live, r.data, 0o644); err != nil {
			t.Fatal(err)
		}
		reply := masterCLI(t, sock, "reload")
		if !strings.HasPrefix(reply, "Success=0") || !strings.Contains(reply, r.want) {
			t.Errorf("%s: reload answered %q, want a refusal with %q", r.name, reply, r.want)
		}
		if got, err := get(c, url); err != nil || got != "config A" {
			t.Errorf("%s: after the refused reload: %q %v, want the old configuration serving", r.name, got, err)
		}
	}

	if err := os.WriteFile(f.live, next, 0o644); err != nil {
		t.Fatal(err)
	}
	if reply := masterCLI(t, sock, "reload"); !strings.HasPrefix(reply, "Success=1") {
		t.Fatalf("valid bundle: reload answered %q", reply)
	}
	expect("config B")
	if !strings.Contains(in.output.String(), "sequence=20") {
		t.Errorf("the reload log does not name the bundle's sequence:\n%s", in.output.String())
	}
	// The first bundle, valid on its own, is now a replay.
	if err := os.WriteFile(f.live, first, 0o644); err != nil {
		t.Fatal(err)
	}
	if reply := masterCLI(t, sock, "reload"); !strings.Contains(reply, "older than the running bundle's 20") {
		t.Errorf("replay of the first bundle: reload answered %q", reply)
	}
	expect("config B")
}

func TestBundleStartRefusals(t *testing.T) {
	f := newFleet(t)
	good := f.sign(t, "fleet", 10, textBackend(t, "x"))
	keyed := filepath.Join(f.dir, "keyed.cfg")
	if err := os.WriteFile(keyed, []byte(strings.Replace(fmt.Sprintf(f.tmpl, 1), "    nbproc 3\n", "    nbproc 3\n    config-signing-key "+filepath.Join(f.dir, "fleet.pub")+"\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		bundle []byte // written to the live path when not nil
		args   []string
		want   string
	}{
		{"plain file with a signing key", nil, []string{"-f", keyed}, "only accepts configuration from bundles"},
		{"check of a plain file with a signing key", nil, []string{"-c", "-f", keyed}, "only accepts configuration from bundles"},
		{"bundle without trusted keys", good, []string{"-f", f.cfg, "-B", f.live}, "no config-signing-key line"},
		{"tampered bundle", bytes.Replace(good, []byte(`"ed25519": "`), []byte(`"ed25519": "AAAA`), 1), []string{"-f", f.trust, "-B", f.live}, "Ed25519 signature does not verify"},
		{"wrong key", f.sign(t, "other", 10, 1), []string{"-f", f.trust, "-B", f.live}, "not trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bundle != nil {
				if err := os.WriteFile(f.live, tt.bundle, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, out := runSluice(t, tt.args...)
			if code != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 1 with %q", code, out, tt.want)
			}
		})
	}
	// sluice -c checks a bundle with its trust file.
	if err := os.WriteFile(f.live, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "-c", "-f", f.trust, "-B", f.live); code != 0 || !strings.Contains(out, "is valid") {
		t.Fatalf("sluice -c -B: exit %d: %s", code, out)
	}
	// bundle verify: exit 1 with the reason.
	if code, out := runSluice(t, "bundle", "verify", "-p", filepath.Join(f.dir, "other.pub"), f.live); code != 1 || !strings.Contains(out, "not trusted") {
		t.Fatalf("verify with the wrong key: exit %d: %s", code, out)
	}
}

// TestBundleReplayAfterRestart: under systemd's StateDirectory= the last
// bundle's sequence survives the process, so an older bundle is refused
// at the next start too.
func TestBundleReplayAfterRestart(t *testing.T) {
	state := t.TempDir()
	t.Setenv("STATE_DIRECTORY", state)
	f := newFleet(t)
	backend := textBackend(t, "x")
	if err := os.WriteFile(f.live, f.sign(t, "fleet", 10, backend), 0o644); err != nil {
		t.Fatal(err)
	}
	startBinary(t, fmt.Sprintf("127.0.0.1:%d", f.port), "-f", f.trust, "-B", f.live)
	if data, err := os.ReadFile(filepath.Join(state, "bundle-sequence")); err != nil || !strings.HasPrefix(string(data), "10 ") {
		t.Fatalf("state file: %q %v", data, err)
	}
	if err := os.WriteFile(f.live, f.sign(t, "fleet", 5, backend), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runSluice(t, "-f", f.trust, "-B", f.live); code != 1 || !strings.Contains(out, "older than the running bundle's 10") {
		t.Fatalf("start with an older bundle: exit %d: %s", code, out)
	}
}
