package tls

import (
	stdtls "crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/vfs"
	"golang.org/x/crypto/ocsp"
)

func ocspResponse(t testing.TB, signer, cert *testCert, status int, nextUpdate time.Time) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(signer.x509, signer.x509, ocsp.Response{
		Status:       status,
		SerialNumber: cert.x509.SerialNumber,
		ThisUpdate:   time.Now().Add(-time.Hour),
		NextUpdate:   nextUpdate,
		RevokedAt:    time.Now().Add(-time.Minute),
	}, signer.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestReadCerts(t *testing.T) {
	dir := t.TempDir()
	ca := newCert(t, certSpec{cn: "CA", ca: true})
	def := newCert(t, certSpec{cn: "default.test", dns: []string{"default.test"}, parent: ca})
	a := newCert(t, certSpec{cn: "a.test"})
	b := newCert(t, certSpec{cn: "b.test", parent: ca})
	writeFile(t, dir, "default.pem", append(def.bundle(t), ca.certPEM()...))
	writeFile(t, dir, "default.pem.ocsp", ocspResponse(t, ca, def, ocsp.Good, time.Now().Add(time.Hour)))
	sub := filepath.Join(dir, "certs")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sub, "a.pem", a.bundle(t))
	writeFile(t, sub, "b.pem", b.bundle(t))
	writeFile(t, sub, "b.pem.issuer", ca.certPEM())
	writeFile(t, sub, "b.pem.ocsp", ocspResponse(t, ca, b, ocsp.Good, time.Now().Add(-time.Minute))) // expired
	writeFile(t, dir, "ca.pem", ca.certPEM())
	list := writeFile(t, dir, "list", []byte("# list\ncerts/a.pem [alpn h2 verify optional ca-file ca.pem] a.test alias.test\n/"+filepath.Join(sub, "b.pem")+" !*\n"))

	entries, warnings, err := ReadCertsFS(vfs.Disk{}, []string{filepath.Join(dir, "default.pem")}, []string{list}, dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries", len(entries))
	}
	if entries[0].OCSP == nil || entries[0].Options != nil || entries[0].SNI != nil {
		t.Errorf("default entry %+v", entries[0])
	}
	o := entries[1].Options
	if o == nil || o.Verify != "optional" || o.CAFile != filepath.Join(dir, "ca.pem") || string(o.CA) != string(ca.certPEM()) || len(o.ALPN) != 1 {
		t.Errorf("crt-list options %+v", o)
	}
	if strings.Join(entries[1].SNI, " ") != "a.test alias.test" || entries[1].Path != filepath.Join(dir, "certs/a.pem") {
		t.Errorf("entry %s SNI %v", entries[1].Path, entries[1].SNI)
	}
	if entries[2].OCSP != nil {
		t.Error("an expired OCSP response was kept")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "b.pem.ocsp not stapled: OCSP response expired") {
		t.Errorf("warnings %q", warnings)
	}
	// The entries make a server, which staples the response.
	srv := newServer(t, entries, BindOptions{}, nil)
	cs, err := handshake(t, srv, &stdtls.Config{ServerName: "default.test", RootCAs: pool(ca)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ocsp.ParseResponseForCert(cs.OCSPResponse, def.x509, ca.x509); err != nil || r.Status != ocsp.Good {
		t.Errorf("stapled response: %v", err)
	}
}

func TestReadCertsErrors(t *testing.T) {
	ca := newCert(t, certSpec{cn: "CA", ca: true})
	other := newCert(t, certSpec{cn: "Other CA", ca: true})
	c := newCert(t, certSpec{cn: "c.test", parent: ca})
	d := newCert(t, certSpec{cn: "d.test", parent: ca})
	bundle := append(c.bundle(t), ca.certPEM()...)
	tests := []struct {
		name    string
		files   map[string][]byte
		list    string
		wantErr string
	}{
		{"OCSP for another certificate", map[string][]byte{"c.pem": bundle, "c.pem.ocsp": ocspResponse(t, ca, d, ocsp.Good, time.Now().Add(time.Hour))}, "", "no response matching"},
		{"OCSP signed by another CA", map[string][]byte{"c.pem": bundle, "c.pem.ocsp": ocspResponse(t, other, c, ocsp.Good, time.Now().Add(time.Hour))}, "", "signature"},
		{"OCSP garbage", map[string][]byte{"c.pem": bundle, "c.pem.ocsp": []byte("junk")}, "", "c.pem.ocsp"},
		{"crt-list line error", map[string][]byte{"c.pem": bundle}, "c.pem\nc.pem [npn h2]\n", "list:2:"},
		{"crt-list missing certificate", map[string][]byte{"c.pem": bundle}, "c.pem\nmissing.pem\n", "list:2: load certificate"},
		{"crt-list missing ca-file", map[string][]byte{"c.pem": bundle}, "c.pem [verify required ca-file nope.pem]\n", "list:1: read ca-file"},
		{"crt-list bad CA", map[string][]byte{"c.pem": bundle, "ca.pem": []byte("junk")}, "c.pem [verify required ca-file ca.pem]\n", "ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := t.TempDir()
			for n, data := range tt.files {
				writeFile(t, sub, n, data)
			}
			crt, lists := []string{filepath.Join(sub, "c.pem")}, []string(nil)
			if tt.list != "" {
				crt, lists = nil, []string{writeFile(t, sub, "list", []byte(tt.list))}
			}
			_, _, err := ReadCertsFS(vfs.Disk{}, crt, lists, sub, sub)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMatchOCSP(t *testing.T) {
	ca := newCert(t, certSpec{cn: "CA", ca: true})
	a := newCert(t, certSpec{cn: "a.test", parent: ca})
	b := newCert(t, certSpec{cn: "b.test", parent: ca})
	entries := []CertEntry{
		{Path: "a.pem", PEM: append(a.bundle(t), ca.certPEM()...)},
		{Path: "b.pem", PEM: append(b.bundle(t), ca.certPEM()...)},
	}
	i, err := MatchOCSP(ocspResponse(t, ca, b, ocsp.Good, time.Now().Add(time.Hour)), entries, time.Now())
	if err != nil || i != 1 {
		t.Fatalf("MatchOCSP = %d, %v", i, err)
	}
	stranger := newCert(t, certSpec{cn: "s.test", parent: ca})
	if _, err := MatchOCSP(ocspResponse(t, ca, stranger, ocsp.Good, time.Now().Add(time.Hour)), entries, time.Now()); err == nil {
		t.Error("a response for no loaded certificate matched")
	}
	other := newCert(t, certSpec{cn: "Other", ca: true})
	forged := ocspResponse(t, other, a, ocsp.Good, time.Now().Add(time.Hour))
	if _, err := MatchOCSP(forged, entries, time.Now()); err == nil {
		t.Error("a response signed by another CA matched")
	}
}
