package tls

import (
	"bytes"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"
)

// checkCRLs returns the crypto/tls VerifyConnection check of client
// certificates against CRLs, HAProxy's crl-file: every certificate of the
// verified chain but the root must be covered by a CRL of its issuer that
// has not expired, and must not be listed in it. VerifyConnection runs on
// resumed handshakes too, so a certificate revoked after a session was
// made cannot resume it.
func checkCRLs(crls []*x509.RevocationList, now func() time.Time) func(stdtls.ConnectionState) error {
	return func(cs stdtls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 {
			return nil // no client certificate (verify optional)
		}
		var err error
		for _, chain := range cs.VerifiedChains {
			if err = checkChainCRLs(chain, crls, now()); err == nil {
				return nil
			}
		}
		return err
	}
}

func checkChainCRLs(chain []*x509.Certificate, crls []*x509.RevocationList, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		rl := crlFor(issuer, crls)
		if rl == nil {
			return fmt.Errorf("certificate %s: no CRL from its issuer %s in crl-file", describe(cert), describe(issuer))
		}
		if !rl.NextUpdate.IsZero() && now.After(rl.NextUpdate) {
			return fmt.Errorf("certificate %s: the CRL of %s expired on %s", describe(cert), describe(issuer), rl.NextUpdate.UTC().Format(time.RFC3339))
		}
		for _, e := range rl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return fmt.Errorf("certificate %s is revoked (since %s)", describe(cert), e.RevocationTime.UTC().Format(time.RFC3339))
			}
		}
	}
	return nil
}

// crlFor returns the CRL issued and signed by issuer, nil if none.
func crlFor(issuer *x509.Certificate, crls []*x509.RevocationList) *x509.RevocationList {
	for _, rl := range crls {
		if bytes.Equal(rl.RawIssuer, issuer.RawSubject) && rl.CheckSignatureFrom(issuer) == nil {
			return rl
		}
	}
	return nil
}

// Fetches are the values of HAProxy's TLS sample fetches for one
// connection, for http-mode headers and logs.
type Fetches struct {
	SNI      string // ssl_fc_sni: the server name the client asked for (the inner one with ECH)
	Protocol string // ssl_fc_protocol: "TLSv1.3"
	Cipher   string // ssl_fc_cipher: OpenSSL's name, "TLS_AES_128_GCM_SHA256"
	ALPN     string // ssl_fc_alpn
	Resumed  bool   // ssl_fc_is_resumed
	ECH      bool   // the client hello was encrypted (ECH accepted)

	ClientCert bool   // ssl_c_used: the client sent a certificate
	Verify     int    // ssl_c_verify: always 0 (X509_V_OK), see SampleFetches
	SubjectDN  string // ssl_c_s_dn, OpenSSL's one-line form "/C=FR/O=Example/CN=client"
	IssuerDN   string // ssl_c_i_dn
}

// SampleFetches returns the fetches of a completed handshake. Sluice has no
// equivalent of HAProxy's ca-ignore-err/crt-ignore-err: a client
// certificate that fails verification fails the handshake, so a connection
// that gets this far always has ssl_c_verify 0, with or without a
// certificate (ClientCert tells which).
func SampleFetches(cs stdtls.ConnectionState) Fetches {
	f := Fetches{
		SNI:      cs.ServerName,
		Protocol: versionName(cs.Version),
		Cipher:   cipherName(cs.CipherSuite),
		ALPN:     cs.NegotiatedProtocol,
		Resumed:  cs.DidResume,
		ECH:      cs.ECHAccepted,
	}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		f.ClientCert = true
		f.SubjectDN = OnelineDN(leaf.RawSubject)
		f.IssuerDN = OnelineDN(leaf.RawIssuer)
	}
	return f
}

// shortNames are OpenSSL's short names of the usual attributes.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.4":                    "SN",
	"2.5.4.5":                    "serialNumber",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.12":                   "title",
	"2.5.4.17":                   "postalCode",
	"2.5.4.42":                   "GN",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
}

// OnelineDN formats a DER name as OpenSSL's X509_NAME_oneline, HAProxy's
// default DN format: "/type=value" per attribute, in the certificate's
// order.
func OnelineDN(raw []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return ""
	}
	var b strings.Builder
	for _, rdn := range rdns {
		for _, atv := range rdn {
			name, ok := shortNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			b.WriteString("/" + name + "=")
			writeEscaped(&b, fmt.Sprint(atv.Value))
		}
	}
	return b.String()
}

// writeEscaped writes s with control and non-ASCII bytes as \xXX, as
// OpenSSL does, so that a header value stays one printable line.
func writeEscaped(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			fmt.Fprintf(b, "\\x%02X", c)
			continue
		}
		b.WriteByte(c)
	}
}
