package tls

import (
	"crypto/x509"
	"net"
	"testing"
	"time"
)

func TestSelfSigned(t *testing.T) {
	cert, bundle, err := SelfSigned("demo.test", "127.0.0.1", "::1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if leaf.Subject.CommonName != "demo.test" {
		t.Errorf("CN %q", leaf.Subject.CommonName)
	}
	if len(leaf.DNSNames) != 2 || leaf.DNSNames[0] != "demo.test" || leaf.DNSNames[1] != "localhost" {
		t.Errorf("DNS SANs %v", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key %v", leaf.PublicKeyAlgorithm)
	}
	now := time.Now()
	if !leaf.NotBefore.Before(now.Add(-59*time.Minute)) || leaf.NotAfter.Before(now.AddDate(1, 0, -1)) {
		t.Errorf("validity %v .. %v", leaf.NotBefore, leaf.NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"demo.test", "localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("verify %s: %v", name, err)
		}
	}

	// The PEM bundle is a valid "crt" file.
	path := writeFile(t, t.TempDir(), "demo.pem", bundle)
	s, err := loadStore([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Certificates()[0].Leaf.Equal(leaf) {
		t.Error("bundle holds another certificate")
	}

	if cert, _, err := SelfSigned(); err != nil || cert.Leaf.DNSNames[0] != "localhost" {
		t.Errorf("no hosts: %v %v", err, cert.Leaf.DNSNames)
	}
}
