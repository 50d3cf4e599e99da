package tls

import (
	"bytes"
	"encoding/base64"
	"os/exec"
	"strings"
	"testing"
)

func b64(b byte, n int) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n))
}

func TestParseTicketKeys(t *testing.T) {
	k := func(b byte, n int) [32]byte { return deriveTicketKey(bytes.Repeat([]byte{b}, n)) }
	tests := []struct {
		name    string
		in      string
		want    [][32]byte
		wantErr string
	}{
		{
			name: "three AES-128 keys: the penultimate encrypts",
			in:   b64(1, 48) + "\n" + b64(2, 48) + "\n" + b64(3, 48) + "\n",
			want: [][32]byte{k(2, 48), k(3, 48), k(1, 48)},
		},
		{
			name: "the last three of five AES-256 keys, CRLF and blank lines",
			in:   b64(1, 80) + "\r\n" + b64(2, 80) + "\r\n\r\n" + b64(3, 80) + "\r\n" + b64(4, 80) + "\r\n" + b64(5, 80),
			want: [][32]byte{k(4, 80), k(5, 80), k(3, 80)},
		},
		{name: "too few keys", in: b64(1, 48) + "\n" + b64(2, 48) + "\n", wantErr: "keys:\x002 keys, at least 3"},
		{name: "bad base64", in: b64(1, 48) + "\n!!!\n", wantErr: "keys:2: invalid base64"},
		{name: "bad size", in: b64(1, 32) + "\n", wantErr: "keys:1: key of 32 bytes"},
		{name: "mixed sizes", in: b64(1, 48) + "\n" + b64(2, 80) + "\n", wantErr: "keys:2: key of 80 bytes after keys of 48"},
		{name: "empty", in: "", wantErr: "0 keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTicketKeys("keys", []byte(tt.in))
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "\x00", " ")
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want one containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("key %d differs", i)
				}
			}
		})
	}
	// Two processes reading the same file derive the same keys.
	in := []byte(b64(7, 48) + "\n" + b64(8, 48) + "\n" + b64(9, 48))
	a, _ := ParseTicketKeys("a", in)
	b, _ := ParseTicketKeys("b", in)
	if a[0] != b[0] || a[0] == ([32]byte{}) {
		t.Error("keys are not deterministic")
	}
}

func FuzzTicketKeys(f *testing.F) {
	f.Add([]byte(b64(1, 48) + "\n" + b64(2, 48) + "\n" + b64(3, 48) + "\n"))
	f.Add([]byte(b64(1, 80) + "\n" + b64(2, 48) + "\n"))
	f.Add([]byte("\n\r\n==\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseTicketKeys("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(keys) != 3 {
			t.Fatalf("%d keys", len(keys))
		}
	})
}

// HAProxy accepts and refuses the same tls-ticket-keys files.
func TestTicketKeysHAProxyAgrees(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed")
	}
	dir := t.TempDir()
	c := newCert(t, certSpec{cn: "a.test", dns: []string{"a.test"}})
	crt := writeFile(t, dir, "a.pem", c.bundle(t))
	for _, in := range []string{
		b64(1, 48) + "\n" + b64(2, 48) + "\n" + b64(3, 48) + "\n",
		b64(1, 80) + "\n" + b64(2, 80) + "\n" + b64(3, 80) + "\n" + b64(4, 80) + "\n",
		b64(1, 48) + "\n" + b64(2, 48) + "\n",
		b64(1, 48) + "\n" + b64(2, 80) + "\n" + b64(3, 80) + "\n",
		b64(1, 32) + "\n" + b64(2, 32) + "\n" + b64(3, 32) + "\n",
	} {
		keys := writeFile(t, dir, "keys", []byte(in))
		cfg := writeFile(t, dir, "haproxy.cfg", []byte("defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"+
			"frontend f\n  bind 127.0.0.1:1 ssl crt "+crt+" tls-ticket-keys "+keys+"\n  default_backend b\n"+
			"backend b\n  server s 127.0.0.1:1\n"))
		_, ours := ParseTicketKeys("keys", []byte(in))
		out, theirs := exec.Command(haproxy, "-c", "-f", cfg).CombinedOutput()
		if (ours == nil) != (theirs == nil) {
			t.Errorf("file %q: Sluice %v, HAProxy %v\n%s", in, ours, theirs, out)
		}
	}
}
