// Package bundle is the signed configuration bundle a fleet of appliances
// accepts: the configuration files and every file they name (certificates,
// crt-lists, CA and CRL files, ticket keys), with a sequence number and a
// validity period, signed twice, with Ed25519 and with ML-DSA-65 (FIPS 204,
// post-quantum), over the same bytes. Both signatures must verify: the
// bundle stays safe if either algorithm falls.
//
// A bundle file is JSON:
//
//	{"format": "sluice-bundle-v1",
//	 "manifest": "<base64 of the manifest's JSON: the signed bytes>",
//	 "signature": {"key_id": "…", "ed25519": "<base64>", "mldsa65": "<base64>"}}
//
// The signed message is "sluice-bundle-v1\n" followed by the manifest bytes
// exactly as carried, so that verifying never depends on re-encoding JSON;
// ML-DSA-65 also gets "sluice-bundle-v1" as its context string.
package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Format is the format name every bundle carries; a later incompatible
// format gets another name.
const Format = "sluice-bundle-v1"

// MaxSize bounds the bundle files read, so that a wrong path (a device, a
// huge file) cannot exhaust memory.
const MaxSize = 64 << 20

// ReadFile reads a bundle file, at most MaxSize bytes and one more, so that
// Verify refuses what is larger.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read bundle %s: %w", path, err)
	}
	return data, nil
}

// File is one file of a bundle, by the path the configuration names it with.
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

// Manifest is what a bundle says, and what is signed.
type Manifest struct {
	// Sequence orders the bundles of a fleet: a running appliance refuses
	// one older than its own (a replay), and one of the same number with
	// other contents.
	Sequence uint64    `json:"sequence"`
	Created  time.Time `json:"created"`
	// Expires is when the bundle stops being accepted; zero for never.
	Expires time.Time `json:"expires,omitzero"`
	// Config names the configuration files among Files, in load order.
	Config []string `json:"config"`
	Files  []File   `json:"files"`
}

// Bundle is a verified bundle.
type Bundle struct {
	Manifest
	// Digest is the SHA-256 of the signed manifest, in hex: two bundles
	// with the same sequence are the same bundle only if their digests are.
	Digest string
	// KeyID names the key that signed it.
	KeyID string
}

// FileMap returns the bundle's files by path.
func (b *Bundle) FileMap() map[string][]byte {
	out := make(map[string][]byte, len(b.Files))
	for _, f := range b.Files {
		out[f.Path] = f.Data
	}
	return out
}

type envelope struct {
	Format    string    `json:"format"`
	Manifest  []byte    `json:"manifest"`
	Signature signature `json:"signature"`
}

type signature struct {
	KeyID   string `json:"key_id"`
	Ed25519 []byte `json:"ed25519,omitempty"`
	MLDSA65 []byte `json:"mldsa65,omitempty"`
}

func message(manifest []byte) []byte {
	return append([]byte(Format+"\n"), manifest...)
}

// Sign checks m and returns the bundle file's contents, signed by k.
func Sign(k *PrivateKey, m Manifest) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	msg := message(manifest)
	ml := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(k.ml, msg, []byte(Format), true, ml); err != nil {
		return nil, fmt.Errorf("sign bundle: ML-DSA-65: %w", err)
	}
	env := envelope{
		Format:   Format,
		Manifest: manifest,
		Signature: signature{
			KeyID:   k.Pub.ID,
			Ed25519: ed25519.Sign(k.ed, msg),
			MLDSA65: ml,
		},
	}
	out, err := json.MarshalIndent(env, "", " ")
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	return append(out, '\n'), nil
}

// Verify checks a bundle file's contents: its format, that one of the
// trusted keys signed it with both algorithms, and that it is valid at now.
// The error says why a bundle is refused.
func Verify(data []byte, trusted []*PublicKey, now time.Time) (*Bundle, error) {
	if len(trusted) == 0 {
		return nil, errors.New("no trusted key to verify with")
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("bundle is %d bytes, more than the %d allowed", len(data), MaxSize)
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("not a sluice bundle: %w", err)
	}
	if env.Format != Format {
		return nil, fmt.Errorf("not a sluice bundle: format %q, want %q", env.Format, Format)
	}
	if dec.More() {
		return nil, errors.New("not a sluice bundle: data after the bundle")
	}
	sig := env.Signature
	var key *PublicKey
	ids := make([]string, len(trusted))
	for i, k := range trusted {
		ids[i] = k.ID
		if k.ID == sig.KeyID {
			key = k
		}
	}
	if key == nil {
		return nil, fmt.Errorf("signed by key %q, which is not trusted (trusted: %s)", sig.KeyID, strings.Join(ids, ", "))
	}
	// Both signatures are required; a bundle with one only is refused
	// before any verification, so that dropping the post-quantum half is
	// not a way around it.
	switch {
	case len(sig.Ed25519) == 0 && len(sig.MLDSA65) == 0:
		return nil, errors.New("bundle is not signed")
	case len(sig.Ed25519) == 0:
		return nil, errors.New("bundle has no Ed25519 signature: both Ed25519 and ML-DSA-65 are required")
	case len(sig.MLDSA65) == 0:
		return nil, errors.New("bundle has no ML-DSA-65 signature: both Ed25519 and ML-DSA-65 are required")
	}
	msg := message(env.Manifest)
	edOK := len(sig.Ed25519) == ed25519.SignatureSize && ed25519.Verify(key.ed, msg, sig.Ed25519)
	mlOK := len(sig.MLDSA65) == mldsa65.SignatureSize && mldsa65.Verify(key.ml, msg, []byte(Format), sig.MLDSA65)
	switch {
	case !edOK && !mlOK:
		return nil, fmt.Errorf("bad signature: neither the Ed25519 nor the ML-DSA-65 signature verifies with key %s (changed or corrupted bundle)", key.ID)
	case !edOK:
		return nil, fmt.Errorf("bad signature: the Ed25519 signature does not verify with key %s", key.ID)
	case !mlOK:
		return nil, fmt.Errorf("bad signature: the ML-DSA-65 signature does not verify with key %s", key.ID)
	}

	var m Manifest
	mdec := json.NewDecoder(bytes.NewReader(env.Manifest))
	mdec.DisallowUnknownFields()
	if err := mdec.Decode(&m); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if !m.Expires.IsZero() && !now.Before(m.Expires) {
		return nil, fmt.Errorf("bundle %d expired at %s", m.Sequence, m.Expires.UTC().Format(time.RFC3339))
	}
	sum := sha256.Sum256(env.Manifest)
	return &Bundle{Manifest: m, Digest: hex.EncodeToString(sum[:]), KeyID: key.ID}, nil
}

// check reports what makes a manifest unusable.
func (m *Manifest) check() error {
	if m.Created.IsZero() {
		return errors.New("no creation time")
	}
	if !m.Expires.IsZero() && !m.Expires.After(m.Created) {
		return errors.New("expires before it was created")
	}
	if len(m.Config) == 0 {
		return errors.New("no configuration file")
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if f.Path == "" || filepath.Clean(f.Path) != f.Path {
			return fmt.Errorf("file path %q is not a clean path", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("file %s appears twice", f.Path)
		}
		seen[f.Path] = true
	}
	for _, c := range m.Config {
		if !seen[c] {
			return fmt.Errorf("configuration file %s is not among the files", c)
		}
	}
	return nil
}
