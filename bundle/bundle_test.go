package bundle

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testManifest(now time.Time) Manifest {
	return Manifest{
		Sequence: 7,
		Created:  now,
		Expires:  now.Add(time.Hour),
		Config:   []string{"/etc/sluice/sluice.cfg"},
		Files: []File{
			{Path: "/etc/sluice/sluice.cfg", Data: []byte("global\n")},
			{Path: "/etc/sluice/site.pem", Data: []byte("-----BEGIN CERTIFICATE-----\n")},
		},
	}
}

// resign rewrites a signed bundle's envelope with change applied.
func resign(t *testing.T, data []byte, change func(*envelope)) []byte {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	change(&env)
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good, err := Sign(key, testManifest(now))
	if err != nil {
		t.Fatal(err)
	}
	fromOther, err := Sign(other, testManifest(now))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	// Flip a byte inside the base64 manifest: the JSON stays well formed.
	i := bytes.Index(flipped, []byte(`"manifest": "`)) + len(`"manifest": "`) + 20
	flipped[i] ^= 0x01
	if flipped[i] == '+' || flipped[i] == '/' {
		flipped[i] = 'A'
	}

	tests := []struct {
		name    string
		data    []byte
		trusted []*PublicKey
		at      time.Time
		want    string // "" for valid
	}{
		{"valid", good, []*PublicKey{key.Pub}, now, ""},
		{"valid with rotation keys", good, []*PublicKey{other.Pub, key.Pub}, now, ""},
		{"one byte changed", flipped, []*PublicKey{key.Pub}, now, "bad signature"},
		{"wrong key", fromOther, []*PublicKey{key.Pub}, now, "not trusted"},
		{"key id of a trusted key, signed by another", resign(t, fromOther, func(e *envelope) { e.Signature.KeyID = key.Pub.ID }), []*PublicKey{key.Pub}, now, "neither"},
		{"Ed25519 only", resign(t, good, func(e *envelope) { e.Signature.MLDSA65 = nil }), []*PublicKey{key.Pub}, now, "no ML-DSA-65 signature"},
		{"ML-DSA-65 only", resign(t, good, func(e *envelope) { e.Signature.Ed25519 = nil }), []*PublicKey{key.Pub}, now, "no Ed25519 signature"},
		{"Ed25519 from another key", resign(t, good, func(e *envelope) {
			var o envelope
			json.Unmarshal(fromOther, &o)
			e.Signature.Ed25519 = o.Signature.Ed25519
		}), []*PublicKey{key.Pub}, now, "Ed25519 signature does not verify"},
		{"ML-DSA-65 truncated", resign(t, good, func(e *envelope) { e.Signature.MLDSA65 = e.Signature.MLDSA65[:100] }), []*PublicKey{key.Pub}, now, "ML-DSA-65 signature does not verify"},
		{"unsigned", resign(t, good, func(e *envelope) { e.Signature = signature{KeyID: key.Pub.ID} }), []*PublicKey{key.Pub}, now, "not signed"},
		{"expired", good, []*PublicKey{key.Pub}, now.Add(2 * time.Hour), "expired"},
		{"other format", resign(t, good, func(e *envelope) { e.Format = "sluice-bundle-v9" }), []*PublicKey{key.Pub}, now, "format"},
		{"not json", []byte("global\n"), []*PublicKey{key.Pub}, now, "not a sluice bundle"},
		{"no trusted key", good, nil, now, "no trusted key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Verify(tt.data, tt.trusted, tt.at)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if b.Sequence != 7 || len(b.Files) != 2 || b.KeyID != key.Pub.ID || len(b.Digest) != 64 {
					t.Fatalf("bundle = %+v", b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSignChecksManifest(t *testing.T) {
	now := time.Now()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Manifest)
		want   string
	}{
		{"no config", func(m *Manifest) { m.Config = nil }, "no configuration file"},
		{"config not in files", func(m *Manifest) { m.Config = []string{"/other.cfg"} }, "not among the files"},
		{"duplicate", func(m *Manifest) { m.Files = append(m.Files, m.Files[0]) }, "twice"},
		{"unclean path", func(m *Manifest) { m.Files[1].Path = "/etc/../etc/x" }, "not a clean path"},
		{"expires before created", func(m *Manifest) { m.Expires = m.Created.Add(-time.Second) }, "expires before"},
		{"no created", func(m *Manifest) { m.Created = time.Time{} }, "no creation time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testManifest(now)
			tt.change(&m)
			if _, err := Sign(key, m); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sign error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "fleet")
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(key, prefix); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(key, prefix); err == nil {
		t.Fatal("WriteKeyPair overwrote an existing private key")
	}
	fi, err := os.Stat(prefix + ".key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", fi, err)
	}
	priv, err := ReadPrivateKey(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKey(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if pub.ID != key.Pub.ID || priv.Pub.ID != key.Pub.ID {
		t.Fatalf("ids %s %s, want %s", pub.ID, priv.Pub.ID, key.Pub.ID)
	}
	data, err := Sign(priv, testManifest(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(data, []*PublicKey{pub}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPublicKey(prefix + ".key"); err == nil {
		t.Fatal("a private key file parsed as a public key")
	}
}
