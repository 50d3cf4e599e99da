package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/sluicelb/sluice/vfs"
)

// certFiles lists the certificate files of a directory in lexical order.
func certFiles(fsys vfs.FS, dir string) ([]string, error) {
	entries, err := fsys.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("load certificates from %s: %w", dir, bare(err))
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || hasSkippedSuffix(name) {
			continue
		}
		path := filepath.Join(dir, name)
		// Follow symbolic links, as deployments often link live certificates.
		fi, err := fsys.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("load certificate %s: %w", path, bare(err))
		}
		if fi.Mode().IsRegular() {
			files = append(files, path)
		}
	}
	return files, nil
}

// bare drops the operation and path from a file system error, because our
// messages name the file already.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hasSkippedSuffix reports whether a file in a "crt" directory is not a
// certificate: HAProxy's reserved extensions (keys, OCSP responses, issuers,
// SCT lists), and CA and CRL files often kept beside them.
func hasSkippedSuffix(name string) bool {
	switch filepath.Ext(name) {
	case ".key", ".ocsp", ".issuer", ".sctl", ".ca", ".crl":
		return true
	}
	return false
}

// loadBundle reads one PEM bundle, and its ".key" companion if the bundle
// has no private key.
func loadBundle(fsys vfs.FS, path string) (stdtls.Certificate, error) {
	var c stdtls.Certificate
	data, err := fsys.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("load certificate %s: %w", path, bare(err))
	}
	ders, key, err := parsePEM(data)
	if err != nil {
		return c, fmt.Errorf("load certificate %s: %w", path, err)
	}
	if len(ders) == 0 {
		return c, fmt.Errorf("load certificate %s: no certificate (no PEM CERTIFICATE block)", path)
	}
	if key == nil {
		keyPath := path + ".key"
		data, err := fsys.ReadFile(keyPath)
		if errors.Is(err, fs.ErrNotExist) {
			return c, fmt.Errorf("load certificate %s: no private key in the file, and no %s", path, keyPath)
		}
		if err != nil {
			return c, fmt.Errorf("load certificate %s: read %s: %w", path, keyPath, bare(err))
		}
		if _, key, err = parsePEM(data); err != nil {
			return c, fmt.Errorf("load certificate %s: %s: %w", path, keyPath, err)
		}
		if key == nil {
			return c, fmt.Errorf("load certificate %s: no private key in %s", path, keyPath)
		}
	}

	var leaf *x509.Certificate
	var chain [][]byte
	for i, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return c, fmt.Errorf("load certificate %s: certificate %d: %w", path, i+1, err)
		}
		if leaf == nil && checkKeyMatch(cert, key) == nil {
			leaf = cert
			continue
		}
		chain = append(chain, der)
	}
	if leaf == nil {
		first, _ := x509.ParseCertificate(ders[0])
		return c, fmt.Errorf("load certificate %s: private key does not match the certificate (%s)", path, describe(first))
	}
	c.Certificate = append([][]byte{leaf.Raw}, chain...)
	c.PrivateKey = key
	c.Leaf = leaf
	return c, nil
}

// parsePEM returns the DER certificates and the private key of a PEM file.
// Other blocks (DH or EC parameters, for instance) are ignored, as HAProxy
// reads them for other purposes.
func parsePEM(data []byte) (certs [][]byte, key crypto.Signer, err error) {
	found := false
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		found = true
		switch b.Type {
		case "CERTIFICATE":
			certs = append(certs, b.Bytes)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if key != nil {
				return nil, nil, errors.New("more than one private key")
			}
			if _, ok := b.Headers["DEK-Info"]; ok {
				return nil, nil, errors.New("encrypted private keys are not supported")
			}
			if key, err = parseKey(b); err != nil {
				return nil, nil, err
			}
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, errors.New("encrypted private keys are not supported")
		}
	}
	if !found {
		return nil, nil, errors.New("no PEM data")
	}
	return certs, key, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", strings.ToLower(b.Type), err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k)
}

// checkKeyMatch reports whether key is the private key of cert.
func checkKeyMatch(cert *x509.Certificate, key crypto.PrivateKey) error {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("private key type %T cannot sign", key)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}
