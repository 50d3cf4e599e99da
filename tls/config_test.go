package tls

import (
	stdtls "crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

func TestServerConfigHandshake(t *testing.T) {
	cert, _, err := SelfSigned("www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(cert)
	if err != nil {
		t.Fatal(err)
	}
	alpn := []string{"h2", "http/1.1"}
	srv := ServerConfig(s, alpn)
	alpn[0] = "changed" // the Config keeps its own copy
	if srv.MinVersion != stdtls.VersionTLS12 || srv.SessionTicketsDisabled {
		t.Errorf("MinVersion %x, SessionTicketsDisabled %v", srv.MinVersion, srv.SessionTicketsDisabled)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)

	cs, err := handshake(t, srv, &stdtls.Config{ServerName: "www.example.com", RootCAs: roots, NextProtos: []string{"http/1.1", "h2"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if cs.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN: got %q, want h2 (the server's preference)", cs.NegotiatedProtocol)
	}
	if cs.Version != stdtls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", cs.Version)
	}
	// Go 1.26 offers the hybrid post-quantum key exchange first by default.
	if cs.CurveID != stdtls.X25519MLKEM768 {
		t.Errorf("key exchange %v, want X25519MLKEM768", cs.CurveID)
	}

	// A clone is a working config too.
	cs, err = handshake(t, srv.Clone(), &stdtls.Config{ServerName: "www.example.com", RootCAs: roots, NextProtos: []string{"http/1.1"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if cs.NegotiatedProtocol != "http/1.1" {
		t.Errorf("clone: ALPN %q", cs.NegotiatedProtocol)
	}

	// TLS 1.1 is refused.
	if _, err := handshake(t, srv, &stdtls.Config{InsecureSkipVerify: true, MinVersion: stdtls.VersionTLS10, MaxVersion: stdtls.VersionTLS11}, false); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 handshake: %v, want a protocol version alert", err)
	}
}

// Two worker processes with the same ticket keys resume each other's
// sessions; with their own random keys they do not.
func TestSharedSessionTicketKeys(t *testing.T) {
	cert, _, err := SelfSigned("localhost")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(cert)
	if err != nil {
		t.Fatal(err)
	}
	for _, shared := range []bool{true, false} {
		worker1, worker2 := ServerConfig(s, nil), ServerConfig(s, nil)
		if shared {
			keys := [][32]byte{{1, 2, 3}}
			worker1.SetSessionTicketKeys(keys)
			worker2.SetSessionTicketKeys(keys)
		}
		cli := &stdtls.Config{ServerName: "localhost", InsecureSkipVerify: true, ClientSessionCache: stdtls.NewLRUClientSessionCache(4)}
		if _, err := handshake(t, worker1, cli, true); err != nil {
			t.Fatal(err)
		}
		cs, err := handshake(t, worker2, cli, true)
		if err != nil {
			t.Fatal(err)
		}
		if cs.DidResume != shared {
			t.Errorf("shared keys %v: DidResume %v", shared, cs.DidResume)
		}
	}
}

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
	s, err := LoadCertificates([]string{path})
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
