package tls

import (
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestNewClient(t *testing.T) {
	ca := newCert(t, certSpec{cn: "Backend CA", ca: true})
	backend := newCert(t, certSpec{cn: "backend.test", dns: []string{"backend.test"}, parent: ca})
	revokedBackend := newCert(t, certSpec{cn: "backend.test", dns: []string{"backend.test"}, parent: ca})
	otherCA := newCert(t, certSpec{cn: "Other CA", ca: true})
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revokedBackend.x509.SerialNumber, RevocationTime: time.Now()}},
	}, ca.x509, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	crl := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER})
	chain := func(c *testCert) stdtls.Certificate {
		return stdtls.Certificate{Certificate: [][]byte{c.der, ca.der}, PrivateKey: c.key}
	}
	clientPKI := newPKI(t)

	tests := []struct {
		name    string
		opts    ServerSSLOptions
		served  *testCert
		mtls    bool // the backend requires a client certificate
		wantSNI string
		wantErr string
	}{
		{name: "verify required with the right CA and SNI", opts: ServerSSLOptions{Verify: "required", CA: ca.certPEM(), SNI: "backend.test", ALPN: []string{"h2"}}, wantSNI: "backend.test"},
		{name: "verify defaults to required", opts: ServerSSLOptions{CA: ca.certPEM(), SNI: "backend.test"}, wantSNI: "backend.test"},
		{name: "wrong CA", opts: ServerSSLOptions{Verify: "required", CA: otherCA.certPEM(), SNI: "backend.test"}, wantErr: "unknown authority"},
		{name: "name mismatch", opts: ServerSSLOptions{Verify: "required", CA: ca.certPEM(), SNI: "other.test"}, wantErr: "other.test"},
		{name: "verifyhost over SNI", opts: ServerSSLOptions{Verify: "required", CA: ca.certPEM(), SNI: "other.test", VerifyHost: "backend.test"}, wantSNI: "other.test"},
		{name: "no SNI: only the chain is checked", opts: ServerSSLOptions{Verify: "required", CA: ca.certPEM()}},
		{name: "verify none", opts: ServerSSLOptions{Verify: "none", SNI: "x.test"}, wantSNI: "x.test"},
		{name: "revoked server certificate", opts: ServerSSLOptions{CA: ca.certPEM(), CRL: crl, SNI: "backend.test"}, served: revokedBackend, wantErr: "revoked"},
		{name: "CRL, good certificate", opts: ServerSSLOptions{CA: ca.certPEM(), CRL: crl, SNI: "backend.test"}, wantSNI: "backend.test"},
		{name: "client certificate", opts: ServerSSLOptions{CA: ca.certPEM(), Cert: append(clientPKI.client.bundle(t), clientPKI.ca.certPEM()...)}, mtls: true},
		{name: "client certificate missing", opts: ServerSSLOptions{CA: ca.certPEM()}, mtls: true, wantErr: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served := backend
			if tt.served != nil {
				served = tt.served
			}
			srv := &stdtls.Config{Certificates: []stdtls.Certificate{chain(served)}, NextProtos: []string{"h2"}}
			if tt.mtls {
				srv.ClientAuth = stdtls.RequireAndVerifyClientCert
				srv.ClientCAs = pool(clientPKI.ca)
			}
			cli, err := NewClient(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			srvState, cs, err := handshakeBoth(t, srv, cli, true)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if srvState.ServerName != tt.wantSNI {
				t.Errorf("server saw SNI %q, want %q", srvState.ServerName, tt.wantSNI)
			}
			if len(tt.opts.ALPN) > 0 && cs.NegotiatedProtocol != tt.opts.ALPN[0] {
				t.Errorf("ALPN %q", cs.NegotiatedProtocol)
			}
			// The session is resumed on the next connection. (Without SNI
			// crypto/tls keys the cache by address, which changes here.)
			if tt.opts.SNI == "" {
				return
			}
			if _, cs, err := handshakeBoth(t, srv, cli, true); err != nil || !cs.DidResume {
				t.Errorf("second connection: resumed %v, %v", cs.DidResume, err)
			}
		})
	}
}

func TestServerSSLOptionsCheck(t *testing.T) {
	ca := newCert(t, certSpec{cn: "CA", ca: true})
	tests := []struct {
		opts    ServerSSLOptions
		wantErr string
	}{
		{ServerSSLOptions{Verify: "none"}, ""},
		{ServerSSLOptions{CA: ca.certPEM()}, ""},
		{ServerSSLOptions{}, "needs a ca-file"},
		{ServerSSLOptions{Verify: "optional", CA: ca.certPEM()}, "expected none or required"},
		{ServerSSLOptions{Verify: "none", CA: ca.certPEM()}, "no effect with verify none"},
		{ServerSSLOptions{CA: []byte("junk"), CAFile: "ca.pem"}, "ca-file ca.pem"},
		{ServerSSLOptions{Verify: "none", Ciphers: "HIGH"}, "cipher-string keyword"},
		{ServerSSLOptions{Verify: "none", MinVersion: "TLSv1.3", MaxVersion: "TLSv1.2"}, "above"},
		{ServerSSLOptions{Verify: "none", Cert: []byte("junk"), CertFile: "c.pem"}, "crt c.pem"},
	}
	for _, tt := range tests {
		err := tt.opts.Check()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: error %v, want %q", tt.opts, err, tt.wantErr)
		}
	}
}
