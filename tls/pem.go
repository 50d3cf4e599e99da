package tls

import (
	"bytes"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// EncodePEM writes a loaded certificate back as one PEM bundle (the chain,
// then the private key in PKCS #8), the form the master sends to children.
func EncodePEM(c *stdtls.Certificate) ([]byte, error) {
	if len(c.Certificate) == 0 || c.PrivateKey == nil {
		return nil, errors.New("encode certificate: no certificate or no key")
	}
	var buf bytes.Buffer
	for _, der := range c.Certificate {
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			return nil, fmt.Errorf("encode certificate: %w", err)
		}
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	if err := pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: key}); err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return buf.Bytes(), nil
}
