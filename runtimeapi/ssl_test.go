package runtimeapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestSSLCertCommands(t *testing.T) {
	c, app := testCLI(t)
	app.certs = []CertFile{{Name: "/etc/ssl/site.pem", Chain: []*x509.Certificate{testCert(t)}, OCSP: true}}
	cases := []struct {
		line string
		lvl  level
		want string
	}{
		{"show ssl cert", levelOperator, "Permission denied\n\n"},
		{"show ssl cert", levelAdmin, "# transaction\n# filename\n/etc/ssl/site.pem\n\n"},
		{"show ssl cert /etc/ssl/site.pem", levelAdmin, "Filename: /etc/ssl/site.pem\nStatus: Used\nSerial: 2A\n" +
			"notBefore: Jan  2 03:04:05 2025 GMT\nnotAfter: Jan  2 03:04:05 2026 GMT\nSubject Alternative Name: DNS:site.example, DNS:www.site.example\n" +
			"Algorithm: EC256\nSHA1 FingerPrint: " + fingerprint(app.certs[0].Chain[0]) + "\nSubject: /C=FR/O=Sluice Test/CN=site.example\nIssuer: /C=FR/O=Sluice Test/CN=site.example\nOCSP Response: stapled\n\n"},
		{"show ssl cert /nope.pem", levelAdmin, "Can't display the certificate: Not found or the certificate is a bundle!\n\n"},
		{"set ssl cert /etc/ssl/site.pem", levelAdmin, "'set ssl cert' expects a filename and a certificate as a payload\n\n"},
		{"set ssl cert /etc/ssl/site.pem <<\n-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----", levelAdmin, "Transaction created for certificate /etc/ssl/site.pem!\n\n"},
		{"show ssl cert", levelAdmin, "# transaction\n*/etc/ssl/site.pem\n# filename\n/etc/ssl/site.pem\n\n"},
		{"set ssl cert /etc/ssl/site.pem <<\nPEM", levelAdmin, "Transaction updated for certificate /etc/ssl/site.pem!\n\n"},
		{"set ssl cert /etc/ssl/site.pem <<", levelAdmin, "no certificate in the payload\nCan't update /etc/ssl/site.pem!\n\n"},
		{"commit ssl cert /etc/ssl/site.pem", levelAdmin, "Committing /etc/ssl/site.pem.\nSuccess!\n\n"},
		{"abort ssl cert /etc/ssl/site.pem", levelAdmin, "No ongoing transaction!\n\n"},
		{"set ssl ocsp-response b2NzcA==", levelAdmin, "OCSP Response updated!\n\n"},
		{"set ssl ocsp-response <<\nb2Nz\ncA==", levelAdmin, "OCSP Response updated!\n\n"},
		{"set ssl ocsp-response !!", levelAdmin, "'set ssl ocsp-response' received invalid base64 encoded response.\n\n"},
		{"set ssl ocsp-response AAAA", levelAdmin, "OCSP single response: no certificate matches this response\n\n"},
		{"show ssl ech", levelUser, "public-name: public.example\nech-config-list: AAE=\nhttps-record: example.com. 300 IN HTTPS 1 . ech=AAE=\n\n"},
		{"show ssl ech other.example", levelUser, "No bind uses Encrypted Client Hello with public name 'other.example'.\n\n"},
	}
	for _, tc := range cases {
		if got := run(c, tc.lvl, tc.line); got != tc.want {
			t.Errorf("%q:\n%q\nwant\n%q", tc.line, got, tc.want)
		}
	}
	if app.certPayload != "PEM" {
		t.Errorf("payload %q, want the last one staged", app.certPayload)
	}
}

func TestCutPayload(t *testing.T) {
	cases := []struct{ line, cmd, payload string }{
		{"show info", "show info", ""},
		{"set ssl cert a <<", "set ssl cert a ", ""},
		{"set ssl cert a <<  \nx\ny", "set ssl cert a ", "x\ny"},
		{"show info;set ssl cert a <<\nx", "show info;set ssl cert a ", "x"},
	}
	for _, tc := range cases {
		cmd, payload, _ := cutPayload(tc.line)
		if cmd != tc.cmd || payload != tc.payload {
			t.Errorf("cutPayload(%q) = %q, %q; want %q, %q", tc.line, cmd, payload, tc.cmd, tc.payload)
		}
	}
}

func testCert(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	name := pkix.Name{Country: []string{"FR"}, Organization: []string{"Sluice Test"}, CommonName: "site.example"}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: name, NotBefore: testNow, NotAfter: testNow.Add(365 * 24 * time.Hour),
		DNSNames: []string{"site.example", "www.site.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func fingerprint(c *x509.Certificate) string {
	d := describeCert(CertFile{Chain: []*x509.Certificate{c}})
	_, after, _ := strings.Cut(d, "SHA1 FingerPrint: ")
	fp, _, _ := strings.Cut(after, "\n")
	return fp
}
