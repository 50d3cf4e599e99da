package tls

import (
	"bytes"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// BindOptions are the TLS settings of a bind (or of one crt-list line), as
// the words of the configuration: HAProxy's, which are OpenSSL's names.
//
//   - MinVersion, MaxVersion ("ssl-min-ver", "ssl-max-ver"): "TLSv1.0",
//     "TLSv1.1", "TLSv1.2" or "TLSv1.3". The default range is TLS 1.2 to
//     TLS 1.3. TLS 1.0 and 1.1 are accepted because Go still implements
//     them when asked explicitly, as an HAProxy user lowering ssl-min-ver
//     for old clients expects; SSLv3 is refused since Go has no SSLv3.
//   - Ciphers ("ciphers", TLS 1.2 and below): a list of OpenSSL cipher
//     names separated by ':' (or ',' or spaces), each naming a suite Go
//     implements. OpenSSL cipher-string keywords (HIGH, DEFAULT, !aNULL,
//     ECDHE+AESGCM...) and suites Go does not implement (DHE, CCM, CAMELLIA,
//     ARIA, PSK, SHA-384 CBC) are errors rather than silently skipped, so
//     that a list copied from elsewhere is checked name by name. Go picks
//     the order itself (by hardware support), so the list's order is not a
//     preference.
//   - Ciphersuites ("ciphersuites", TLS 1.3): Go always enables its three
//     TLS 1.3 suites and cannot restrict them, so the list must contain
//     all of TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and
//     TLS_CHACHA20_POLY1305_SHA256 (and nothing else); any other list is an
//     error rather than a setting quietly not applied.
//   - Curves ("curves"): key exchange groups separated by ':', such as
//     "X25519MLKEM768:X25519:P-256" (OpenSSL's aliases prime256v1,
//     secp256r1, secp384r1 and secp521r1 are accepted). Empty keeps Go's
//     defaults, which offer the hybrid post-quantum X25519MLKEM768 first.
//   - ALPN: protocols in the server's order of preference ("h2",
//     "http/1.1").
//   - Verify ("verify"): "none" (the default), "optional" (a client
//     certificate is requested; none is fine, an invalid one fails the
//     handshake) or "required". optional and required need CA; CA and CRL
//     are refused with verify none, where they would have no effect.
//   - CA, CRL: the contents of "ca-file" and "crl-file" (PEM or DER),
//     which the master reads; CAFile and CRLFile name them in messages.
//     With a CRL, as in HAProxy (OpenSSL's CRL_CHECK_ALL), every
//     certificate of the client's chain below the root must be covered by
//     an unexpired CRL from its issuer, and a revoked one fails the
//     handshake.
//   - StrictSNI ("strict-sni", bind only): a handshake whose SNI matches
//     no certificate (or without SNI) fails instead of getting the default
//     certificate.
//   - NoTLSTickets ("no-tls-tickets", bind only): no session tickets, hence
//     no resumption (crypto/tls has no server-side session cache), in TLS
//     1.2 and 1.3.
type BindOptions struct {
	MinVersion   string   `json:"min_version,omitempty"`
	MaxVersion   string   `json:"max_version,omitempty"`
	Ciphers      string   `json:"ciphers,omitempty"`
	Ciphersuites string   `json:"ciphersuites,omitempty"`
	Curves       string   `json:"curves,omitempty"`
	ALPN         []string `json:"alpn,omitempty"`
	Verify       string   `json:"verify,omitempty"`
	CA           []byte   `json:"ca,omitempty"`
	CRL          []byte   `json:"crl,omitempty"`
	CAFile       string   `json:"ca_file,omitempty"`
	CRLFile      string   `json:"crl_file,omitempty"`
	StrictSNI    bool     `json:"strict_sni,omitempty"`
	NoTLSTickets bool     `json:"no_tls_tickets,omitempty"`
}

// Merge returns o with every unset field taken from defaults, which is how
// the global ssl-default-bind-* settings and a bind's settings under a
// crt-list line's combine. CA and CRL go with their file names.
func (o BindOptions) Merge(defaults BindOptions) BindOptions {
	set := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	set(&o.MinVersion, defaults.MinVersion)
	set(&o.MaxVersion, defaults.MaxVersion)
	set(&o.Ciphers, defaults.Ciphers)
	set(&o.Ciphersuites, defaults.Ciphersuites)
	set(&o.Curves, defaults.Curves)
	set(&o.Verify, defaults.Verify)
	if o.ALPN == nil {
		o.ALPN = defaults.ALPN
	}
	if o.CA == nil {
		o.CA, o.CAFile = defaults.CA, defaults.CAFile
	}
	if o.CRL == nil {
		o.CRL, o.CRLFile = defaults.CRL, defaults.CRLFile
	}
	o.StrictSNI = o.StrictSNI || defaults.StrictSNI
	o.NoTLSTickets = o.NoTLSTickets || defaults.NoTLSTickets
	return o
}

// Check reports the first wrong setting, with a message naming the word.
func (o *BindOptions) Check() error {
	_, err := o.settings()
	return err
}

// checkWords checks each word on its own, without the checks that need the
// whole set (min <= max, verify with its CA).
func (o *BindOptions) checkWords() error {
	if o.MinVersion != "" {
		if _, err := parseVersion("ssl-min-ver", o.MinVersion); err != nil {
			return err
		}
	}
	if o.MaxVersion != "" {
		if _, err := parseVersion("ssl-max-ver", o.MaxVersion); err != nil {
			return err
		}
	}
	if _, err := parseCiphers(o.Ciphers); err != nil {
		return err
	}
	if err := checkCiphersuites(o.Ciphersuites); err != nil {
		return err
	}
	_, err := parseCurves(o.Curves)
	return err
}

// settings are BindOptions turned into crypto/tls values.
type settings struct {
	min, max   uint16
	ciphers    []uint16 // nil: Go's defaults
	curves     []stdtls.CurveID
	alpn       []string
	clientAuth stdtls.ClientAuthType
	noTickets  bool
	cas        *x509.CertPool
	crls       []*x509.RevocationList
}

func (o *BindOptions) settings() (*settings, error) {
	s := &settings{min: stdtls.VersionTLS12, max: stdtls.VersionTLS13, alpn: o.ALPN, noTickets: o.NoTLSTickets}
	var err error
	if o.MinVersion != "" {
		if s.min, err = parseVersion("ssl-min-ver", o.MinVersion); err != nil {
			return nil, err
		}
	}
	if o.MaxVersion != "" {
		if s.max, err = parseVersion("ssl-max-ver", o.MaxVersion); err != nil {
			return nil, err
		}
	}
	if s.min > s.max {
		return nil, fmt.Errorf("ssl-min-ver %s is above ssl-max-ver %s", versionName(s.min), versionName(s.max))
	}
	if s.ciphers, err = parseCiphers(o.Ciphers); err != nil {
		return nil, err
	}
	if err := checkCiphersuites(o.Ciphersuites); err != nil {
		return nil, err
	}
	if s.curves, err = parseCurves(o.Curves); err != nil {
		return nil, err
	}
	for _, p := range o.ALPN {
		if p == "" || len(p) > 255 {
			return nil, fmt.Errorf("alpn: protocol name %q must be 1 to 255 bytes", p)
		}
	}
	switch o.Verify {
	case "", "none":
		s.clientAuth = stdtls.NoClientCert
		if o.CA != nil {
			return nil, fmt.Errorf("ca-file %s has no effect with verify none: set verify optional or required", o.CAFile)
		}
		if o.CRL != nil {
			return nil, fmt.Errorf("crl-file %s has no effect with verify none: set verify optional or required", o.CRLFile)
		}
		return s, nil
	case "optional":
		s.clientAuth = stdtls.VerifyClientCertIfGiven
	case "required":
		s.clientAuth = stdtls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("verify %q: expected none, optional or required", o.Verify)
	}
	if o.CA == nil {
		return nil, fmt.Errorf("verify %s needs a ca-file to check client certificates", o.Verify)
	}
	if s.cas, err = parseCAs(o.CA); err != nil {
		return nil, fmt.Errorf("ca-file %s: %w", o.CAFile, err)
	}
	if o.CRL != nil {
		if s.crls, err = parseCRLs(o.CRL); err != nil {
			return nil, fmt.Errorf("crl-file %s: %w", o.CRLFile, err)
		}
	}
	return s, nil
}

var versions = []struct {
	name string
	v    uint16
}{
	{"TLSv1.0", stdtls.VersionTLS10},
	{"TLSv1.1", stdtls.VersionTLS11},
	{"TLSv1.2", stdtls.VersionTLS12},
	{"TLSv1.3", stdtls.VersionTLS13},
}

func parseVersion(keyword, word string) (uint16, error) {
	for _, v := range versions {
		if v.name == word {
			return v.v, nil
		}
	}
	if word == "SSLv3" {
		return 0, fmt.Errorf("%s SSLv3: not supported (Go does not implement SSLv3)", keyword)
	}
	return 0, fmt.Errorf("%s %q: expected TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", keyword, word)
}

// versionName is HAProxy's name of a version (ssl_fc_protocol).
func versionName(v uint16) string {
	for _, n := range versions {
		if n.v == v {
			return n.name
		}
	}
	return fmt.Sprintf("0x%04x", v)
}

// cipherNames maps OpenSSL's names of the TLS 1.2 (and earlier) suites Go
// implements to their IDs.
var cipherNames = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   stdtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": stdtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   stdtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": stdtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   stdtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          stdtls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        stdtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          stdtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"ECDHE-ECDSA-AES128-SHA256":     stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       stdtls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-DES-CBC3-SHA":        stdtls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	"ECDHE-ECDSA-RC4-SHA":           stdtls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
	"ECDHE-RSA-RC4-SHA":             stdtls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
	"AES128-GCM-SHA256":             stdtls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             stdtls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    stdtls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    stdtls.TLS_RSA_WITH_AES_256_CBC_SHA,
	"AES128-SHA256":                 stdtls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"DES-CBC3-SHA":                  stdtls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	"RC4-SHA":                       stdtls.TLS_RSA_WITH_RC4_128_SHA,
}

// tls13Suites are OpenSSL's names of the TLS 1.3 suites Go implements (and
// always enables).
var tls13Suites = map[string]uint16{
	"TLS_AES_128_GCM_SHA256":       stdtls.TLS_AES_128_GCM_SHA256,
	"TLS_AES_256_GCM_SHA384":       stdtls.TLS_AES_256_GCM_SHA384,
	"TLS_CHACHA20_POLY1305_SHA256": stdtls.TLS_CHACHA20_POLY1305_SHA256,
}

// cipherName is OpenSSL's name of a suite (ssl_fc_cipher).
func cipherName(id uint16) string {
	for n, v := range tls13Suites {
		if v == id {
			return n
		}
	}
	for n, v := range cipherNames {
		if v == id {
			return n
		}
	}
	return stdtls.CipherSuiteName(id)
}

// splitList splits an OpenSSL list, whose separators are ':', ',' and
// spaces.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' })
}

func parseCiphers(s string) ([]uint16, error) {
	if s == "" {
		return nil, nil
	}
	var ids []uint16
	for _, w := range splitList(s) {
		if id, ok := cipherNames[w]; ok {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
			continue
		}
		if _, ok := tls13Suites[w]; ok {
			return nil, fmt.Errorf("ciphers: %s is a TLS 1.3 suite, which belongs in ciphersuites", w)
		}
		if strings.ContainsAny(w, "!+@") || !strings.Contains(w, "-") || w[0] == '-' {
			return nil, fmt.Errorf("ciphers: %q is an OpenSSL cipher-string keyword, which Sluice does not expand: list cipher names (for example ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256)", w)
		}
		return nil, fmt.Errorf("ciphers: %q is not a cipher Go's TLS implements (it has no DHE, CCM, CAMELLIA, ARIA, PSK or SHA-384 CBC suites); remove it. Known: %s", w, strings.Join(sortedKeys(cipherNames), ":"))
	}
	return ids, nil
}

func checkCiphersuites(s string) error {
	if s == "" {
		return nil
	}
	seen := make(map[string]bool)
	for _, w := range splitList(s) {
		if _, ok := tls13Suites[w]; !ok {
			return fmt.Errorf("ciphersuites: %q is not a TLS 1.3 suite Go implements (only %s)", w, strings.Join(sortedKeys(tls13Suites), ":"))
		}
		seen[w] = true
	}
	if len(seen) != len(tls13Suites) {
		return fmt.Errorf("ciphersuites %q: Go's TLS always enables all of %s and cannot restrict them, so the list must name all three", s, strings.Join(sortedKeys(tls13Suites), ":"))
	}
	return nil
}

var curveNames = map[string]stdtls.CurveID{
	"x25519mlkem768":     stdtls.X25519MLKEM768,
	"secp256r1mlkem768":  stdtls.SecP256r1MLKEM768,
	"secp384r1mlkem1024": stdtls.SecP384r1MLKEM1024,
	"x25519":             stdtls.X25519,
	"p-256":              stdtls.CurveP256,
	"prime256v1":         stdtls.CurveP256,
	"secp256r1":          stdtls.CurveP256,
	"p-384":              stdtls.CurveP384,
	"secp384r1":          stdtls.CurveP384,
	"p-521":              stdtls.CurveP521,
	"secp521r1":          stdtls.CurveP521,
}

func parseCurves(s string) ([]stdtls.CurveID, error) {
	if s == "" {
		return nil, nil
	}
	var ids []stdtls.CurveID
	for _, w := range strings.Split(s, ":") {
		id, ok := curveNames[strings.ToLower(w)]
		if !ok {
			return nil, fmt.Errorf("curves: %q is not a group Go's TLS implements (X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, X25519, P-256, P-384, P-521)", w)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// parseCAs reads CA certificates from PEM (any number) or one DER
// certificate.
func parseCAs(data []byte) (*x509.CertPool, error) {
	certs, err := parseCertsAny(data)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func parseCertsAny(data []byte) ([]*x509.Certificate, error) {
	if !looksPEM(data) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor a DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate (no PEM CERTIFICATE block)")
	}
	return certs, nil
}

// parseCRLs reads CRLs from PEM (any number of X509 CRL blocks) or one DER
// CRL.
func parseCRLs(data []byte) ([]*x509.RevocationList, error) {
	if !looksPEM(data) {
		rl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor a DER CRL: %w", err)
		}
		return []*x509.RevocationList{rl}, nil
	}
	var out []*x509.RevocationList
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		rl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", len(out)+1, err)
		}
		out = append(out, rl)
	}
	if len(out) == 0 {
		return nil, errors.New("no CRL (no PEM X509 CRL block)")
	}
	return out, nil
}

// looksPEM tells PEM from DER, which ca-file and crl-file may both be.
func looksPEM(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN "))
}
