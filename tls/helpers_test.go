package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// RSA key generation is slow, so the tests share one RSA key.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type certSpec struct {
	rsa       bool
	cn        string
	dns       []string
	notBefore time.Time
	notAfter  time.Time
	parent    *testCert // issuer; nil for self-signed
	ca        bool
}

type testCert struct {
	der  []byte
	x509 *x509.Certificate
	key  crypto.Signer
}

func (c *testCert) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
}

func (c *testCert) keyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (c *testCert) bundle(t testing.TB) []byte {
	return append(c.certPEM(), c.keyPEM(t)...)
}

func (c *testCert) tls() stdtls.Certificate {
	return stdtls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key}
}

func newCert(t testing.TB, s certSpec) *testCert {
	t.Helper()
	var key crypto.Signer = rsaKey()
	if !s.rsa {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(24 * time.Hour)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn},
		DNSNames:              s.dns,
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  s.ca,
	}
	if s.ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	parent, signer := tmpl, key
	if s.parent != nil {
		parent, signer = s.parent.x509, s.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{der: der, x509: cert, key: key}
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// handshake runs one TLS handshake over loopback TCP (kernel buffers, so
// that neither side blocks on the other's unread session tickets) and
// returns the client's view. When read is set, the client also reads one
// byte the server writes, which processes TLS 1.3 session tickets.
func handshake(t testing.TB, srv, cli *stdtls.Config, read bool) (stdtls.ConnectionState, error) {
	t.Helper()
	_, cs, err := handshakeBoth(t, srv, cli, read)
	return cs, err
}

// handshakeBoth is handshake returning the server's view too.
func handshakeBoth(t testing.TB, srv, cli *stdtls.Config, read bool) (srvState, cliState stdtls.ConnectionState, err error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := stdtls.Server(c, srv)
		if err := tc.Handshake(); err != nil {
			srvErr <- err
			return
		}
		srvState = tc.ConnectionState()
		_, err = tc.Write([]byte{'x'})
		srvErr <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := stdtls.Client(c, cli)
	err = tc.Handshake()
	if err == nil && read {
		_, err = tc.Read(make([]byte, 1))
	}
	if err != nil {
		c.Close() // do not leave the server waiting for a hello
	}
	// Both sides' errors: the client's says what alert it got, the server's
	// why it sent it.
	err = errors.Join(err, <-srvErr)
	return srvState, tc.ConnectionState(), err
}
