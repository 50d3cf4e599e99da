package tls

import (
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ServerSSLOptions are the TLS settings of a server line ("ssl"), for
// re-encrypting to a backend, in the configuration's words (see
// BindOptions for the version, cipher and curve names).
//
//   - Verify: "required" (also when empty, as HAProxy's ssl-server-verify
//     default) checks the server's chain against CA, and its name against
//     VerifyHost, else against the SNI sent; with neither, only the chain
//     is checked, as in HAProxy. "none" checks nothing. required without CA
//     is an error, telling to set verify none explicitly, as HAProxy does.
//   - CRL: with verify required, every certificate of the server's chain
//     below the root must be covered by an unexpired CRL of its issuer and
//     not be revoked (as for binds).
//   - SNI: the server name sent, a literal (sni str(NAME)); empty sends none.
//     For an SNI computed per connection, set ServerName on a Clone of
//     the Config: the name check follows it.
//   - Cert: the client certificate ("crt"), chain and key in PEM.
type ServerSSLOptions struct {
	Verify       string   `json:"verify,omitempty"`
	CA           []byte   `json:"ca,omitempty"`
	CRL          []byte   `json:"crl,omitempty"`
	CAFile       string   `json:"ca_file,omitempty"` // names for messages
	CRLFile      string   `json:"crl_file,omitempty"`
	SNI          string   `json:"sni,omitempty"`
	VerifyHost   string   `json:"verifyhost,omitempty"`
	ALPN         []string `json:"alpn,omitempty"`
	MinVersion   string   `json:"min_version,omitempty"`
	MaxVersion   string   `json:"max_version,omitempty"`
	Ciphers      string   `json:"ciphers,omitempty"`
	Ciphersuites string   `json:"ciphersuites,omitempty"`
	Curves       string   `json:"curves,omitempty"`
	Cert         []byte   `json:"cert,omitempty"`
	CertFile     string   `json:"cert_file,omitempty"`
}

// Check reports the first wrong setting.
func (o *ServerSSLOptions) Check() error {
	_, err := NewClient(*o)
	return err
}

// NewClient returns the crypto/tls configuration for connections to an ssl
// server. TLS sessions are cached and resumed, as HAProxy reuses server
// sessions.
func NewClient(o ServerSSLOptions) (*stdtls.Config, error) {
	b := BindOptions{MinVersion: o.MinVersion, MaxVersion: o.MaxVersion, Ciphers: o.Ciphers, Ciphersuites: o.Ciphersuites, Curves: o.Curves, ALPN: o.ALPN}
	s, err := b.settings()
	if err != nil {
		return nil, err
	}
	cfg := &stdtls.Config{
		ServerName:         o.SNI,
		MinVersion:         s.min,
		MaxVersion:         s.max,
		CipherSuites:       s.ciphers,
		CurvePreferences:   s.curves,
		NextProtos:         s.alpn,
		ClientSessionCache: stdtls.NewLRUClientSessionCache(0),
		// Verification is ours (VerifyConnection), because HAProxy's rules
		// differ from crypto/tls's: no name to check is not an error.
		InsecureSkipVerify: true,
	}
	if o.Cert != nil {
		c, err := stdtls.X509KeyPair(o.Cert, o.Cert)
		if err != nil {
			return nil, fmt.Errorf("crt %s: %w", o.CertFile, err)
		}
		cfg.Certificates = []stdtls.Certificate{c}
	}
	switch o.Verify {
	case "none":
		if o.CA != nil || o.CRL != nil || o.VerifyHost != "" {
			return nil, errors.New("ca-file, crl-file and verifyhost have no effect with verify none")
		}
		return cfg, nil
	case "", "required":
	default:
		return nil, fmt.Errorf("verify %q: expected none or required for a server", o.Verify)
	}
	if o.CA == nil {
		return nil, errors.New("verify required (the default) needs a ca-file to check the server's certificate; set verify none to not check it")
	}
	roots, err := parseCAs(o.CA)
	if err != nil {
		return nil, fmt.Errorf("ca-file %s: %w", o.CAFile, err)
	}
	var crls []*x509.RevocationList
	if o.CRL != nil {
		if crls, err = parseCRLs(o.CRL); err != nil {
			return nil, fmt.Errorf("crl-file %s: %w", o.CRLFile, err)
		}
	}
	cfg.VerifyConnection = func(cs stdtls.ConnectionState) error {
		return verifyServer(cs, roots, crls, o.VerifyHost, time.Now())
	}
	return cfg, nil
}

// verifyServer checks a server's chain and name.
func verifyServer(cs stdtls.ConnectionState, roots *x509.CertPool, crls []*x509.RevocationList, verifyHost string, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	name := verifyHost
	if name == "" {
		name = cs.ServerName
	}
	chains, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       name,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("verify server certificate: %w", err)
	}
	if len(crls) == 0 {
		return nil
	}
	for _, chain := range chains {
		if err = checkChainCRLs(chain, crls, now); err == nil {
			return nil
		}
	}
	return fmt.Errorf("verify server certificate: %w", err)
}
