package tls

import (
	stdtls "crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"
)

// Client hellos as crypto/tls would present them to GetCertificate.
var (
	// A TLS 1.3 client that accepts ECDSA and RSA-PSS signatures.
	helloModern = stdtls.ClientHelloInfo{
		SupportedVersions: []uint16{stdtls.VersionTLS13, stdtls.VersionTLS12},
		SignatureSchemes:  []stdtls.SignatureScheme{stdtls.ECDSAWithP256AndSHA256, stdtls.PSSWithSHA256},
		SupportedCurves:   []stdtls.CurveID{stdtls.X25519MLKEM768, stdtls.X25519, stdtls.CurveP256},
		SupportedPoints:   []uint8{0},
		CipherSuites:      []uint16{stdtls.TLS_AES_128_GCM_SHA256, stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, stdtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
	}
	// A TLS 1.3 client that only verifies RSA-PSS signatures.
	helloRSAOnly13 = stdtls.ClientHelloInfo{
		SupportedVersions: []uint16{stdtls.VersionTLS13},
		SignatureSchemes:  []stdtls.SignatureScheme{stdtls.PSSWithSHA256, stdtls.PKCS1WithSHA256},
		SupportedCurves:   []stdtls.CurveID{stdtls.X25519},
		CipherSuites:      []uint16{stdtls.TLS_AES_128_GCM_SHA256},
	}
	// A TLS 1.2 client that only offers ECDHE-RSA cipher suites.
	helloRSAOnly12 = stdtls.ClientHelloInfo{
		SupportedVersions: []uint16{stdtls.VersionTLS12},
		SignatureSchemes:  []stdtls.SignatureScheme{stdtls.ECDSAWithP256AndSHA256, stdtls.PSSWithSHA256, stdtls.PKCS1WithSHA256},
		SupportedCurves:   []stdtls.CurveID{stdtls.X25519, stdtls.CurveP256},
		SupportedPoints:   []uint8{0},
		CipherSuites:      []uint16{stdtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
	}
)

func TestGetCertificate(t *testing.T) {
	def := newCert(t, certSpec{cn: "default.test"})
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com", "example.com", "Shop.Example.Com"}})
	wild := newCert(t, certSpec{cn: "*.example.com", dns: []string{"*.example.com"}})
	cnOnly := newCert(t, certSpec{cn: "cnonly.test"})
	dualEC := newCert(t, certSpec{cn: "dual.test", dns: []string{"dual.test"}})
	dualRSA := newCert(t, certSpec{rsa: true, cn: "dual.test", dns: []string{"dual.test"}})
	rsaOnly := newCert(t, certSpec{rsa: true, cn: "rsa.test", dns: []string{"rsa.test"}})
	second := newCert(t, certSpec{cn: "second.example.com", dns: []string{"second.example.com"}})

	all := []*testCert{def, site, wild, cnOnly, dualRSA, dualEC, rsaOnly, second}
	var certs []stdtls.Certificate
	for _, c := range all {
		certs = append(certs, c.tls())
	}
	s, err := NewStore(certs...)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		sni   string
		hello stdtls.ClientHelloInfo
		want  *testCert
	}{
		{"no SNI gets the default", "", helloModern, def},
		{"exact CN and SAN", "www.example.com", helloModern, site},
		{"SAN", "example.com", helloModern, site},
		{"SNI is case-insensitive", "WWW.Example.COM", helloModern, site},
		{"mixed-case SAN in the certificate", "shop.example.com", helloModern, site},
		{"exact match beats wildcard", "second.example.com", helloModern, second},
		{"wildcard matches one label", "api.example.com", helloModern, wild},
		{"wildcard, upper case", "API.EXAMPLE.COM", helloModern, wild},
		{"wildcard does not match two labels", "a.b.example.com", helloModern, def},
		{"wildcard does not match the bare domain", "other.com", helloModern, def},
		{"CN without SANs", "cnonly.test", helloModern, cnOnly},
		{"unknown name gets the default", "nowhere.test", helloModern, def},
		{"ECDSA for a modern client, whatever the load order", "dual.test", helloModern, dualEC},
		{"RSA for a TLS 1.3 client without ECDSA", "dual.test", helloRSAOnly13, dualRSA},
		{"RSA for a TLS 1.2 client without ECDHE-ECDSA suites", "dual.test", helloRSAOnly12, dualRSA},
		{"a single RSA certificate is served as is", "rsa.test", helloModern, rsaOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hello := tt.hello
			hello.ServerName = tt.sni
			got, err := s.GetCertificate(&hello)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Leaf.Equal(tt.want.x509) {
				t.Errorf("SNI %q: got %s, want %s", tt.sni, describe(got.Leaf), describe(tt.want.x509))
			}
		})
	}
}

// The default certificate brings its sibling of the other key type, so that
// clients without SNI (or with an unknown name) get the key type they support.
func TestDefaultSiblings(t *testing.T) {
	ec := newCert(t, certSpec{cn: "site.test", dns: []string{"site.test"}})
	rsa := newCert(t, certSpec{rsa: true, cn: "site.test", dns: []string{"site.test"}})
	other := newCert(t, certSpec{cn: "other.test"})
	s, err := NewStore(ec.tls(), other.tls(), rsa.tls())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sni   string
		hello stdtls.ClientHelloInfo
		want  *testCert
	}{
		{"", helloModern, ec},
		{"", helloRSAOnly13, rsa},
		{"unknown.test", helloRSAOnly12, rsa},
		{"unknown.test", helloModern, ec},
	} {
		hello := tt.hello
		hello.ServerName = tt.sni
		got, _ := s.GetCertificate(&hello)
		if !got.Leaf.Equal(tt.want.x509) {
			t.Errorf("SNI %q: got %s (%T), want %T", tt.sni, describe(got.Leaf), got.PrivateKey, tt.want.key)
		}
	}
}

// Real handshakes with crypto/tls clients: the key type follows what the
// client can verify.
func TestHandshakeKeyType(t *testing.T) {
	ec := newCert(t, certSpec{cn: "dual.test", dns: []string{"dual.test"}})
	rsa := newCert(t, certSpec{rsa: true, cn: "dual.test", dns: []string{"dual.test"}})
	s, err := NewStore(rsa.tls(), ec.tls()) // RSA loaded first on purpose
	if err != nil {
		t.Fatal(err)
	}
	srv := &stdtls.Config{GetCertificate: s.GetCertificate}
	roots := x509.NewCertPool()
	roots.AddCert(ec.x509)
	roots.AddCert(rsa.x509)

	for _, tt := range []struct {
		name string
		cli  *stdtls.Config
		want x509.PublicKeyAlgorithm
	}{
		{"TLS 1.3 default client", &stdtls.Config{ServerName: "dual.test", RootCAs: roots}, x509.ECDSA},
		{"TLS 1.2 ECDHE-ECDSA only", &stdtls.Config{ServerName: "dual.test", RootCAs: roots, MaxVersion: stdtls.VersionTLS12,
			CipherSuites: []uint16{stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, x509.ECDSA},
		{"TLS 1.2 ECDHE-RSA only", &stdtls.Config{ServerName: "dual.test", RootCAs: roots, MaxVersion: stdtls.VersionTLS12,
			CipherSuites: []uint16{stdtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, stdtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}}, x509.RSA},
		{"no SNI, TLS 1.2 ECDHE-RSA only", &stdtls.Config{InsecureSkipVerify: true, MaxVersion: stdtls.VersionTLS12,
			CipherSuites: []uint16{stdtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}, x509.RSA},
		{"no SNI, default client", &stdtls.Config{InsecureSkipVerify: true}, x509.ECDSA},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := handshake(t, srv, tt.cli, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.PeerCertificates[0].PublicKeyAlgorithm; got != tt.want {
				t.Errorf("got a %v certificate, want %v", got, tt.want)
			}
		})
	}
}

// BenchmarkGetCertificate picks among 100 names, one of them with an ECDSA
// and an RSA certificate, so that the capability check runs.
func BenchmarkGetCertificate(b *testing.B) {
	var certs []stdtls.Certificate
	for i := range 100 {
		name := fmt.Sprintf("site%d.example.com", i)
		certs = append(certs, newCert(b, certSpec{cn: name, dns: []string{name}}).tls())
	}
	certs = append(certs, newCert(b, certSpec{rsa: true, cn: "site7.example.com", dns: []string{"site7.example.com"}}).tls())
	s, err := NewStore(certs...)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, sni string }{
		{"exact", "site42.example.com"},
		{"ECDSA+RSA", "site7.example.com"},
		{"default", "unknown.test"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hello := helloModern
			hello.ServerName = bc.sni
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetCertificate(&hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
