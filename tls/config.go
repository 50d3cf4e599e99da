package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// ServerConfig returns the crypto/tls server configuration of a bind:
// certificates from store chosen per handshake, ALPN protocols in the
// server's order of preference (for example "h2", "http/1.1"), TLS 1.2 as
// the minimum version, and session tickets on.
//
// Key exchanges are left to crypto/tls's defaults on purpose. In Go 1.26
// they are X25519MLKEM768 first (hybrid post-quantum), then
// SecP256r1MLKEM768, SecP384r1MLKEM1024, X25519, P-256, P-384 and P-521;
// leaving CurvePreferences nil keeps the GODEBUG switches (tlsmlkem,
// tlssecpmlkem) working and picks up future improvements. Cipher suites are
// the defaults too, which exclude RSA key exchange and 3DES.
//
// Session ticket keys are random per Config until the caller shares them
// between processes with the Config's own SetSessionTicketKeys method,
// which is safe to call while handshakes run. A Clone made before that call
// keeps its old keys, so set the keys on every Config in use.
func ServerConfig(store *Store, alpn []string) *stdtls.Config {
	return &stdtls.Config{
		GetCertificate:         store.GetCertificate,
		NextProtos:             append([]string(nil), alpn...),
		MinVersion:             stdtls.VersionTLS12,
		SessionTicketsDisabled: false,
	}
}

// SelfSigned makes an ECDSA P-256 self-signed certificate for the given
// hosts (IP addresses become IP SANs, other names DNS SANs; the first host
// is also the CN; "localhost" when none is given), valid from an hour ago
// for a year. It returns the certificate and the same as a PEM bundle
// (certificate then PKCS #8 key), the form a "crt" file takes.
func SelfSigned(hosts ...string) (stdtls.Certificate, []byte, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return stdtls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return stdtls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return stdtls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return stdtls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return stdtls.Certificate{}, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	cert := stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
	return cert, bundle, nil
}
