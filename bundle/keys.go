package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"

	"fmt"
	"os"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// PEM block types of the key files.
const (
	privateKeyType = "SLUICE BUNDLE PRIVATE KEY"
	publicKeyType  = "SLUICE BUNDLE PUBLIC KEY"
)

// A PrivateKey signs bundles with both algorithms. Its file holds the two
// 32-byte seeds (Ed25519 then ML-DSA-65), from which both keys derive.
type PrivateKey struct {
	ed    ed25519.PrivateKey
	ml    *mldsa65.PrivateKey
	seeds [64]byte
	Pub   *PublicKey
}

// A PublicKey verifies bundles: both of its keys must verify.
type PublicKey struct {
	ed ed25519.PublicKey
	ml *mldsa65.PublicKey
	// ID names the key in bundles and messages: the first 8 bytes of the
	// SHA-256 of the packed public keys, in hex.
	ID string
}

// GenerateKey makes a new key pair from the system's random source.
func GenerateKey() (*PrivateKey, error) {
	var seeds [64]byte
	if _, err := rand.Read(seeds[:]); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return keyFromSeeds(seeds), nil
}

func keyFromSeeds(seeds [64]byte) *PrivateKey {
	ed := ed25519.NewKeyFromSeed(seeds[:32])
	mlPub, ml := mldsa65.NewKeyFromSeed((*[mldsa65.SeedSize]byte)(seeds[32:]))
	return &PrivateKey{ed: ed, ml: ml, seeds: seeds, Pub: newPublicKey(ed.Public().(ed25519.PublicKey), mlPub)}
}

func newPublicKey(ed ed25519.PublicKey, ml *mldsa65.PublicKey) *PublicKey {
	sum := sha256.Sum256(append(append([]byte(nil), ed...), ml.Bytes()...))
	return &PublicKey{ed: ed, ml: ml, ID: hex.EncodeToString(sum[:8])}
}

// WriteKeyPair writes prefix.key (mode 0600, refusing to overwrite) and
// prefix.pub.
func WriteKeyPair(k *PrivateKey, prefix string) error {
	priv := pem.EncodeToMemory(&pem.Block{Type: privateKeyType, Bytes: k.seeds[:]})
	f, err := os.OpenFile(prefix+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return fmt.Errorf("write private key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if err := os.WriteFile(prefix+".pub", k.Pub.PEM(), 0o644); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}

// PEM returns the public key file's contents.
func (p *PublicKey) PEM() []byte {
	raw := append(append([]byte(nil), p.ed...), p.ml.Bytes()...)
	return pem.EncodeToMemory(&pem.Block{Type: publicKeyType, Headers: map[string]string{"Key-Id": p.ID}, Bytes: raw})
}

// ParsePrivateKey parses a private key file.
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != privateKeyType {
		return nil, fmt.Errorf("not a sluice bundle private key (want a PEM %q block)", privateKeyType)
	}
	if len(b.Bytes) != 64 {
		return nil, fmt.Errorf("private key: %d bytes, want 64", len(b.Bytes))
	}
	return keyFromSeeds([64]byte(b.Bytes)), nil
}

// ParsePublicKey parses a public key file.
func ParsePublicKey(data []byte) (*PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != publicKeyType {
		return nil, fmt.Errorf("not a sluice bundle public key (want a PEM %q block)", publicKeyType)
	}
	if len(b.Bytes) != ed25519.PublicKeySize+mldsa65.PublicKeySize {
		return nil, fmt.Errorf("public key: %d bytes, want %d", len(b.Bytes), ed25519.PublicKeySize+mldsa65.PublicKeySize)
	}
	ml := new(mldsa65.PublicKey)
	if err := ml.UnmarshalBinary(b.Bytes[ed25519.PublicKeySize:]); err != nil {
		return nil, fmt.Errorf("public key: ML-DSA-65: %w", err)
	}
	return newPublicKey(ed25519.PublicKey(b.Bytes[:ed25519.PublicKeySize]), ml), nil
}

// ReadPrivateKey reads a private key file.
func ReadPrivateKey(path string) (*PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ReadPublicKey reads a public key file.
func ReadPublicKey(path string) (*PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
