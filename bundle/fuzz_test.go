package bundle

import (
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary bundle files: it must refuse them with
// an error, never panic, and never accept one that was not signed.
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	key := keyFromSeeds([64]byte{1, 2, 3})
	good, err := Sign(key, testManifest(now))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":"sluice-bundle-v1","manifest":"e30=","signature":{"key_id":"x"}}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Verify(data, []*PublicKey{key.Pub}, now)
		if err != nil {
			return
		}
		if b.KeyID != key.Pub.ID || len(b.Config) == 0 {
			t.Fatalf("accepted bundle %+v", b)
		}
	})
}

// FuzzParseKeys feeds the key file parsers arbitrary files: errors, never
// panics; a public key that parses has the id of its bytes.
func FuzzParseKeys(f *testing.F) {
	key := keyFromSeeds([64]byte{4, 5, 6})
	f.Add(key.Pub.PEM())
	f.Add([]byte("-----BEGIN SLUICE BUNDLE PRIVATE KEY-----\nAAAA\n-----END SLUICE BUNDLE PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if pub, err := ParsePublicKey(data); err == nil {
			again, err := ParsePublicKey(pub.PEM())
			if err != nil || again.ID != pub.ID {
				t.Fatalf("public key %s does not survive a round trip: %v", pub.ID, err)
			}
		}
		ParsePrivateKey(data)
	})
}
