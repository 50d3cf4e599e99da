package tls

import (
	"bytes"
	stdtls "crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/vfs"
)

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	first := newCert(t, certSpec{cn: "first.test"})
	second := newCert(t, certSpec{cn: "second.test"})
	third := newCert(t, certSpec{cn: "third.test"})
	writeFile(t, dir, "00-first.pem", first.bundle(t))
	// A certificate whose key sits beside it in a ".key" file.
	writeFile(t, dir, "10-second.pem", second.certPEM())
	writeFile(t, dir, "10-second.pem.key", second.keyPEM(t))
	writeFile(t, dir, "20-third.crt", third.bundle(t))
	// Everything below would fail to load if it were not skipped.
	junk := []byte("not a certificate\n")
	for _, name := range []string{".hidden.pem", "x.ocsp", "x.issuer", "x.sctl", "x.ca", "x.crl", "x.key"} {
		writeFile(t, dir, name, junk)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub"), "nested.pem", junk)
	// A symbolic link to a certificate is followed.
	other := t.TempDir()
	fourth := newCert(t, certSpec{cn: "fourth.test"})
	target := writeFile(t, other, "fourth.pem", fourth.bundle(t))
	if err := os.Symlink(target, filepath.Join(dir, "30-link.pem")); err != nil {
		t.Fatal(err)
	}

	s, err := loadStore([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range s.Certificates() {
		got = append(got, c.Leaf.Subject.CommonName)
	}
	want := "first.test second.test third.test fourth.test"
	if strings.Join(got, " ") != want {
		t.Errorf("loaded %v, want %s", got, want)
	}
	if len(s.Warnings()) != 0 {
		t.Errorf("unexpected warnings: %v", s.Warnings())
	}
}

// Paths are loaded in order, files and directories mixed, and the first
// certificate is the default.
func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	a := newCert(t, certSpec{cn: "a.test"})
	b := newCert(t, certSpec{cn: "b.test"})
	sub := filepath.Join(dir, "certs")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sub, "a.pem", a.bundle(t))
	bPath := writeFile(t, dir, "b.pem", b.bundle(t))

	s, err := loadStore([]string{bPath, sub})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.GetCertificate(&helloModern)
	if c.Leaf.Subject.CommonName != "b.test" {
		t.Errorf("default is %s, want b.test", c.Leaf.Subject.CommonName)
	}
}

// The PEM blocks of a bundle may come in any order; the leaf is the
// certificate that matches the key, and the chain keeps file order.
func TestLoadBundleAnyOrder(t *testing.T) {
	dir := t.TempDir()
	root := newCert(t, certSpec{cn: "Test Root", ca: true})
	inter := newCert(t, certSpec{cn: "Test Intermediate", ca: true, parent: root})
	leaf := newCert(t, certSpec{cn: "leaf.test", dns: []string{"leaf.test"}, parent: inter})
	var buf bytes.Buffer
	buf.WriteString("# comments and DH parameters are ignored\n")
	buf.Write(leaf.keyPEM(t))
	buf.Write(pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: []byte{1, 2, 3}}))
	buf.Write(inter.certPEM())
	buf.Write(leaf.certPEM())
	path := writeFile(t, dir, "bundle.pem", buf.Bytes())

	s, err := loadStore([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Certificates()[0]
	if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[0], leaf.der) || !bytes.Equal(c.Certificate[1], inter.der) {
		t.Fatalf("chain is not [leaf, intermediate]")
	}
	if !c.Leaf.Equal(leaf.x509) {
		t.Errorf("Leaf is %s", describe(c.Leaf))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	a := newCert(t, certSpec{cn: "a.test"})
	b := newCert(t, certSpec{cn: "b.test"})

	mismatch := writeFile(t, dir, "mismatch.pem", append(a.certPEM(), b.keyPEM(t)...))
	mismatchBeside := writeFile(t, dir, "beside.pem", a.certPEM())
	writeFile(t, dir, "beside.pem.key", b.keyPEM(t))
	noKey := writeFile(t, dir, "nokey.pem", a.certPEM())
	keyOnly := writeFile(t, dir, "keyonly.pem", a.keyPEM(t))
	garbage := writeFile(t, dir, "garbage.pem", []byte("hello\n"))
	emptyKey := writeFile(t, dir, "emptykey.pem", a.certPEM())
	writeFile(t, dir, "emptykey.pem.key", a.certPEM())
	unreadableKey := writeFile(t, dir, "unreadable.pem", a.certPEM())
	if err := os.Mkdir(unreadableKey+".key", 0o700); err != nil { // reading a directory fails, even as root
		t.Fatal(err)
	}
	twoKeys := writeFile(t, dir, "twokeys.pem", append(a.bundle(t), a.keyPEM(t)...))
	encrypted := writeFile(t, dir, "encrypted.pem", append(a.certPEM(),
		pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})...))
	badDER := writeFile(t, dir, "bad.pem", append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), a.keyPEM(t)...))
	emptyDir := filepath.Join(dir, "empty")
	if err := os.Mkdir(emptyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		path string
		want []string // substrings of the error
	}{
		{missing, []string{missing, "no such file"}},
		{mismatch, []string{mismatch, "private key does not match", "CN=a.test"}},
		{mismatchBeside, []string{mismatchBeside, "private key does not match"}},
		{noKey, []string{noKey, "no private key", noKey + ".key"}},
		{keyOnly, []string{keyOnly, "no certificate"}},
		{garbage, []string{garbage, "no PEM data"}},
		{emptyKey, []string{emptyKey, "no private key in " + emptyKey + ".key"}},
		{unreadableKey, []string{unreadableKey, "is a directory"}},
		{twoKeys, []string{twoKeys, "more than one private key"}},
		{encrypted, []string{encrypted, "encrypted private keys are not supported"}},
		{badDER, []string{badDER, "certificate 1"}},
		{emptyDir, []string{emptyDir, "no certificate file"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			_, err := loadStore([]string{tt.path})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := loadStore(nil); err == nil {
		t.Error("no error for no paths")
	}
}

// An expired certificate still loads; the Store reports it.
func TestLoadExpiredWarns(t *testing.T) {
	dir := t.TempDir()
	old := newCert(t, certSpec{cn: "old.test", notBefore: time.Now().AddDate(-2, 0, 0), notAfter: time.Now().AddDate(-1, 0, 0)})
	path := writeFile(t, dir, "old.pem", old.bundle(t))
	s, err := loadStore([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], path) || !strings.Contains(w[0], "expired") {
		t.Errorf("warnings = %q", w)
	}
}

func TestNewStoreErrors(t *testing.T) {
	a := newCert(t, certSpec{cn: "a.test"})
	b := newCert(t, certSpec{cn: "b.test"})
	if _, err := NewStore(); err == nil {
		t.Error("no error for no certificates")
	}
	c := a.tls()
	c.PrivateKey = nil
	if _, err := NewStore(c); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("missing key: %v", err)
	}
	c = a.tls()
	c.PrivateKey = b.key
	if _, err := NewStore(a.tls(), c); err == nil || !strings.Contains(err.Error(), "certificate 2: private key does not match") {
		t.Errorf("mismatched key: %v", err)
	}
}

// EncodePEM gives back a bundle that loads to the same certificate and chain.
func TestEncodePEMRoundTrip(t *testing.T) {
	dir := t.TempDir()
	root := newCert(t, certSpec{cn: "Test Root", ca: true})
	for _, isRSA := range []bool{false, true} {
		leaf := newCert(t, certSpec{rsa: isRSA, cn: "leaf.test", parent: root})
		var buf bytes.Buffer
		buf.Write(leaf.certPEM())
		buf.Write(root.certPEM())
		buf.Write(leaf.keyPEM(t))
		s, err := loadStore([]string{writeFile(t, dir, "in.pem", buf.Bytes())})
		if err != nil {
			t.Fatal(err)
		}
		in := s.Certificates()[0]
		out, err := EncodePEM(in)
		if err != nil {
			t.Fatal(err)
		}
		c, err := stdtls.X509KeyPair(out, out)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[0], leaf.der) || !bytes.Equal(c.Certificate[1], root.der) {
			t.Errorf("rsa %v: chain differs", isRSA)
		}
		s2, err := loadStore([]string{writeFile(t, dir, "out.pem", out)})
		if err != nil || !s2.Certificates()[0].Leaf.Equal(leaf.x509) {
			t.Errorf("rsa %v: reload: %v", isRSA, err)
		}
	}
	if _, err := EncodePEM(&stdtls.Certificate{}); err == nil {
		t.Error("no error for an empty certificate")
	}
}

// loadStore reads crt paths as a bind does (ReadCertsFS) into a Store, with
// ReadCertsFS' warnings, which name the files.
func loadStore(paths []string) (*Store, error) {
	entries, warnings, err := ReadCertsFS(vfs.Disk{}, paths, nil, "", "")
	if err != nil {
		return nil, err
	}
	certs := make([]stdtls.Certificate, len(entries))
	for i, e := range entries {
		if certs[i], err = stdtls.X509KeyPair(e.PEM, e.PEM); err != nil {
			return nil, err
		}
	}
	s, err := NewStore(certs...)
	if err != nil {
		return nil, err
	}
	s.warnings = warnings
	return s, nil
}
