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

func entry(t testing.TB, c *testCert, sni ...string) CertEntry {
	return CertEntry{Path: c.x509.Subject.CommonName + ".pem", PEM: c.bundle(t), SNI: sni}
}

// pool returns a CertPool of the given certificates.
func pool(certs ...*testCert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.x509)
	}
	return p
}

func newServer(t testing.TB, entries []CertEntry, opts BindOptions, keys *SharedKeys) *stdtls.Config {
	t.Helper()
	cfg, err := NewServer(entries, opts, keys)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNewServerDefaultsPostQuantum(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com"}})
	srv := newServer(t, []CertEntry{entry(t, site)}, BindOptions{ALPN: []string{"h2", "http/1.1"}}, nil)
	cs, err := handshake(t, srv, &stdtls.Config{ServerName: "www.example.com", RootCAs: pool(site), NextProtos: []string{"http/1.1", "h2"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if cs.CurveID != stdtls.X25519MLKEM768 {
		t.Errorf("key exchange %v, want X25519MLKEM768", cs.CurveID)
	}
	if cs.Version != stdtls.VersionTLS13 || cs.NegotiatedProtocol != "h2" {
		t.Errorf("version %x ALPN %q, want TLS 1.3 and h2", cs.Version, cs.NegotiatedProtocol)
	}
	// TLS 1.1 is refused by default.
	_, err = handshake(t, srv, &stdtls.Config{ServerName: "www.example.com", RootCAs: pool(site), MaxVersion: stdtls.VersionTLS11}, false)
	if err == nil {
		t.Error("a TLS 1.1 client was accepted with the default minimum TLS 1.2")
	}
}

func TestNewServerSettings(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com"}})
	rsaSite := newCert(t, certSpec{rsa: true, cn: "www.example.com", dns: []string{"www.example.com"}})
	entries := []CertEntry{entry(t, site), entry(t, rsaSite)}
	roots := pool(site, rsaSite)
	tests := []struct {
		name    string
		opts    BindOptions
		cli     *stdtls.Config
		check   func(stdtls.ConnectionState) string
		wantErr bool
	}{
		{
			name: "curves restrict the key exchange",
			opts: BindOptions{Curves: "P-256"},
			check: func(cs stdtls.ConnectionState) string {
				if cs.CurveID != stdtls.CurveP256 {
					return "curve " + cs.CurveID.String()
				}
				return ""
			},
		},
		{
			name: "max version TLS 1.2",
			opts: BindOptions{MaxVersion: "TLSv1.2"},
			check: func(cs stdtls.ConnectionState) string {
				if cs.Version != stdtls.VersionTLS12 {
					return "version " + versionName(cs.Version)
				}
				return ""
			},
		},
		{
			name:    "min version TLS 1.3 refuses a TLS 1.2 client",
			opts:    BindOptions{MinVersion: "TLSv1.3"},
			cli:     &stdtls.Config{MaxVersion: stdtls.VersionTLS12},
			wantErr: true,
		},
		{
			name: "TLS 1.0 when asked for",
			opts: BindOptions{MinVersion: "TLSv1.0", Ciphers: "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA"},
			cli:  &stdtls.Config{MinVersion: stdtls.VersionTLS10, MaxVersion: stdtls.VersionTLS10},
			check: func(cs stdtls.ConnectionState) string {
				if cs.Version != stdtls.VersionTLS10 {
					return "version " + versionName(cs.Version)
				}
				return ""
			},
		},
		{
			name: "ciphers choose the TLS 1.2 suite, and the certificate type follows",
			opts: BindOptions{MaxVersion: "TLSv1.2", Ciphers: "ECDHE-RSA-AES256-GCM-SHA384"},
			check: func(cs stdtls.ConnectionState) string {
				if cs.CipherSuite != stdtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 {
					return "cipher " + cipherName(cs.CipherSuite)
				}
				if cs.PeerCertificates[0].PublicKeyAlgorithm != x509.RSA {
					return "not the RSA certificate"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, entries, tt.opts, nil)
			cli := &stdtls.Config{}
			if tt.cli != nil {
				cli = tt.cli.Clone()
			}
			cli.ServerName = "www.example.com"
			cli.RootCAs = roots
			cs, err := handshake(t, srv, cli, false)
			if tt.wantErr {
				if err == nil {
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(cs); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestNewServerCrtListSelection(t *testing.T) {
	def := newCert(t, certSpec{cn: "default.test", dns: []string{"default.test"}})
	wild := newCert(t, certSpec{cn: "*.example.com", dns: []string{"*.example.com"}})
	secret := newCert(t, certSpec{cn: "secret.example.com", dns: []string{"secret.example.com"}})
	other := newCert(t, certSpec{cn: "other.test", dns: []string{"other.test"}})
	filtered := newCert(t, certSpec{cn: "filtered.test", dns: []string{"filtered.test"}})
	secretEntry := entry(t, secret, "secret.example.com")
	secretEntry.Options = &BindOptions{ALPN: []string{"secret/1"}}
	entries := []CertEntry{
		entry(t, def),
		entry(t, wild, "*.example.com", "!hidden.example.com"),
		secretEntry,
		entry(t, other, "alias.test"), // filters replace the certificate's names
		entry(t, filtered, "!*"),      // never chosen by name
	}
	srv := newServer(t, entries, BindOptions{ALPN: []string{"h2"}}, nil)
	tests := []struct {
		sni  string
		want *testCert
		alpn string
	}{
		{"", def, "h2"},
		{"default.test", def, "h2"},
		{"www.example.com", wild, "h2"},
		{"hidden.example.com", def, "h2"},
		{"secret.example.com", secret, "secret/1"},
		{"alias.test", other, "h2"},
		{"other.test", def, "h2"},
		{"filtered.test", def, "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			cli := &stdtls.Config{ServerName: tt.sni, InsecureSkipVerify: true, NextProtos: []string{"h2", "secret/1"}}
			cs, err := handshake(t, srv, cli, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.PeerCertificates[0]; !got.Equal(tt.want.x509) {
				t.Errorf("got %s, want %s", describe(got), describe(tt.want.x509))
			}
			if cs.NegotiatedProtocol != tt.alpn {
				t.Errorf("ALPN %q, want %q", cs.NegotiatedProtocol, tt.alpn)
			}
		})
	}
}

func TestNewServerOCSPStaple(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com"})
	e := entry(t, site)
	e.OCSP = []byte("staple")
	srv := newServer(t, []CertEntry{e}, BindOptions{}, nil)
	cs, err := handshake(t, srv, &stdtls.Config{InsecureSkipVerify: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	if string(cs.OCSPResponse) != "staple" {
		t.Errorf("OCSP response %q", cs.OCSPResponse)
	}
}

// pki is a CA with a client certificate, a revoked one and a CRL.
type pki struct {
	ca, client, revoked, stranger *testCert
	caPEM, crlPEM                 []byte
}

func newPKI(t testing.TB) *pki {
	p := &pki{}
	p.ca = newCert(t, certSpec{cn: "Client CA", ca: true})
	p.client = newCert(t, certSpec{cn: "client", parent: p.ca})
	p.revoked = newCert(t, certSpec{cn: "revoked", parent: p.ca})
	otherCA := newCert(t, certSpec{cn: "Other CA", ca: true})
	p.stranger = newCert(t, certSpec{cn: "stranger", parent: otherCA})
	p.caPEM = p.ca.certPEM()
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: p.revoked.x509.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)},
		},
	}, p.ca.x509, p.ca.key)
	if err != nil {
		t.Fatal(err)
	}
	p.crlPEM = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})
	return p
}

func TestNewServerClientVerify(t *testing.T) {
	p := newPKI(t)
	site := newCert(t, certSpec{cn: "www.example.com"})
	clientCert := func(c *testCert) *stdtls.Certificate {
		if c == nil {
			return nil
		}
		cert := c.tls()
		return &cert
	}
	tests := []struct {
		verify  string
		crl     bool
		cert    *testCert
		wantErr string
	}{
		{"required", false, p.client, ""},
		{"required", false, nil, "certificate"},
		{"required", false, p.stranger, "unknown authority"},
		{"optional", false, nil, ""},
		{"optional", false, p.client, ""},
		{"optional", false, p.stranger, "unknown authority"},
		{"required", true, p.client, ""},
		{"required", true, p.revoked, "revoked"},
		{"optional", true, p.revoked, "revoked"},
		{"optional", true, nil, ""},
	}
	for _, tt := range tests {
		name := tt.verify
		if tt.crl {
			name += "+crl"
		}
		if tt.cert != nil {
			name += "/" + tt.cert.x509.Subject.CommonName
		}
		t.Run(name, func(t *testing.T) {
			opts := BindOptions{Verify: tt.verify, CA: p.caPEM, CAFile: "ca.pem"}
			if tt.crl {
				opts.CRL, opts.CRLFile = p.crlPEM, "crl.pem"
			}
			srv := newServer(t, []CertEntry{entry(t, site)}, opts, nil)
			// GetClientCertificate, so that the client sends its certificate
			// even when its issuer is not one the server asks for.
			cli := &stdtls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*stdtls.CertificateRequestInfo) (*stdtls.Certificate, error) {
				if c := clientCert(tt.cert); c != nil {
					return c, nil
				}
				return &stdtls.Certificate{}, nil
			}}
			// read: in TLS 1.3 the client learns of a refused certificate
			// only when it reads.
			srvState, _, err := handshakeBoth(t, srv, cli, true)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := SampleFetches(srvState)
			if f.ClientCert != (tt.cert != nil) || f.Verify != 0 {
				t.Errorf("fetches %+v", f)
			}
			if tt.cert != nil && (f.SubjectDN != "/CN=client" || f.IssuerDN != "/CN=Client CA") {
				t.Errorf("DNs %q %q", f.SubjectDN, f.IssuerDN)
			}
		})
	}
}

func TestNewServerCRLMissingForIssuer(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	site := newCert(t, certSpec{cn: "www.example.com"})
	// The CRL is another CA's: the client's issuer has none.
	opts := BindOptions{Verify: "required", CA: p.caPEM, CRL: other.crlPEM}
	srv := newServer(t, []CertEntry{entry(t, site)}, opts, nil)
	_, err := handshake(t, srv, &stdtls.Config{InsecureSkipVerify: true, Certificates: []stdtls.Certificate{p.client.tls()}}, true)
	if err == nil {
		t.Fatal("a client certificate without a CRL from its issuer was accepted")
	}
}

func TestSharedKeysResumeAcrossConfigs(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com"}})
	entries := []CertEntry{entry(t, site)}
	key := [32]byte{1, 2, 3}
	for _, v := range []string{"TLSv1.2", "TLSv1.3"} {
		t.Run(v, func(t *testing.T) {
			// Two workers: separate SharedKeys and Configs, the same key bytes.
			k1, k2 := NewSharedKeys(), NewSharedKeys()
			k1.SetTickets([][32]byte{key})
			k2.SetTickets([][32]byte{key})
			opts := BindOptions{MaxVersion: v}
			srv1 := newServer(t, entries, opts, k1)
			srv2 := newServer(t, entries, opts, k2)
			cli := &stdtls.Config{ServerName: "www.example.com", RootCAs: pool(site), ClientSessionCache: stdtls.NewLRUClientSessionCache(4)}
			if cs, err := handshake(t, srv1, cli, true); err != nil || cs.DidResume {
				t.Fatalf("first handshake: resumed %v, %v", cs.DidResume, err)
			}
			cs, err := handshake(t, srv2, cli, true)
			if err != nil || !cs.DidResume {
				t.Fatalf("second handshake on the other Config: resumed %v, %v", cs.DidResume, err)
			}
			// A rotation that keeps the old key as a decryption key resumes too.
			k2.SetTickets([][32]byte{{9}, key})
			if cs, err := handshake(t, srv2, cli, true); err != nil || !cs.DidResume {
				t.Fatalf("after rotation: resumed %v, %v", cs.DidResume, err)
			}
			// Once the key is gone, the session is not resumed.
			k1.SetTickets([][32]byte{{7}})
			if cs, err := handshake(t, srv1, cli, true); err != nil || cs.DidResume {
				t.Fatalf("with other keys: resumed %v, %v", cs.DidResume, err)
			}
		})
	}
}

func TestSharedKeysPerProcessByDefault(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com"}})
	entries := []CertEntry{entry(t, site)}
	srv1 := newServer(t, entries, BindOptions{}, NewSharedKeys())
	srv2 := newServer(t, entries, BindOptions{}, NewSharedKeys())
	cli := &stdtls.Config{ServerName: "www.example.com", RootCAs: pool(site), ClientSessionCache: stdtls.NewLRUClientSessionCache(4)}
	if _, err := handshake(t, srv1, cli, true); err != nil {
		t.Fatal(err)
	}
	if cs, err := handshake(t, srv1, cli, true); err != nil || !cs.DidResume {
		t.Fatalf("same Config: resumed %v, %v", cs.DidResume, err)
	}
	if cs, err := handshake(t, srv2, cli, true); err != nil || cs.DidResume {
		t.Fatalf("other Config with its own keys: resumed %v, %v", cs.DidResume, err)
	}
}

// Setting the same keys again (a worker gets every configuration message)
// keeps the sessions, the per-process random keys included.
func TestSharedKeysSetSameKeys(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com"}})
	for _, keys := range [][][32]byte{nil, {{1}, {2}}} {
		k := NewSharedKeys()
		k.SetTickets(keys)
		srv := newServer(t, []CertEntry{entry(t, site)}, BindOptions{}, k)
		cli := &stdtls.Config{ServerName: "www.example.com", RootCAs: pool(site), ClientSessionCache: stdtls.NewLRUClientSessionCache(4)}
		if _, err := handshake(t, srv, cli, true); err != nil {
			t.Fatal(err)
		}
		k.SetTickets(keys)
		if cs, err := handshake(t, srv, cli, true); err != nil || !cs.DidResume {
			t.Fatalf("keys %v set again: resumed %v, %v", keys, cs.DidResume, err)
		}
	}
}

func TestNewServerStrictSNI(t *testing.T) {
	def := newCert(t, certSpec{cn: "default.test", dns: []string{"default.test"}})
	wild := newCert(t, certSpec{cn: "*.example.com", dns: []string{"*.example.com"}})
	srv := newServer(t, []CertEntry{entry(t, def), entry(t, wild, "*.example.com", "!hidden.example.com")}, BindOptions{StrictSNI: true}, nil)
	for sni, ok := range map[string]bool{"default.test": true, "www.example.com": true, "hidden.example.com": false, "other.test": false, "": false} {
		_, err := handshake(t, srv, &stdtls.Config{ServerName: sni, InsecureSkipVerify: true}, false)
		if ok != (err == nil) {
			t.Errorf("SNI %q: error %v", sni, err)
		}
		if !ok && err != nil && !strings.Contains(err.Error(), "strict-sni") {
			t.Errorf("SNI %q: error %v, want one naming strict-sni", sni, err)
		}
	}
}

func TestNewServerNoTLSTickets(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com"}})
	srv := newServer(t, []CertEntry{entry(t, site)}, BindOptions{NoTLSTickets: true}, NewSharedKeys())
	cli := &stdtls.Config{ServerName: "www.example.com", RootCAs: pool(site), ClientSessionCache: stdtls.NewLRUClientSessionCache(4)}
	for range 2 {
		if cs, err := handshake(t, srv, cli, true); err != nil || cs.DidResume {
			t.Fatalf("resumed %v, %v", cs.DidResume, err)
		}
	}
}

// SharedKeys change while handshakes run (go test -race checks the
// accesses).
func TestSharedKeysConcurrentUpdates(t *testing.T) {
	site := newCert(t, certSpec{cn: "www.example.com", dns: []string{"www.example.com"}})
	keys := NewSharedKeys()
	srv := newServer(t, []CertEntry{entry(t, site)}, BindOptions{}, keys)
	ech, err := NewECHKey(1, "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	updated := make(chan struct{})
	go func() {
		defer close(updated)
		for i := byte(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			keys.SetTickets([][32]byte{{i}, {i - 1}})
			keys.SetECH([]stdtls.EncryptedClientHelloKey{ech})
		}
	}()
	cli := &stdtls.Config{ServerName: "www.example.com", RootCAs: pool(site), ClientSessionCache: stdtls.NewLRUClientSessionCache(4)}
	for range 20 {
		if _, err := handshake(t, srv, cli, true); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-updated
}

// A crt-list line's verify applies to the handshakes that get its
// certificate only.
func TestNewServerPerEntryVerify(t *testing.T) {
	p := newPKI(t)
	open := newCert(t, certSpec{cn: "open.test", dns: []string{"open.test"}})
	closed := newCert(t, certSpec{cn: "closed.test", dns: []string{"closed.test"}})
	e := entry(t, closed)
	e.Options = &BindOptions{Verify: "required", CA: p.caPEM}
	srv := newServer(t, []CertEntry{entry(t, open), e}, BindOptions{}, nil)
	noCert := &stdtls.Config{ServerName: "open.test", InsecureSkipVerify: true}
	if _, err := handshake(t, srv, noCert, true); err != nil {
		t.Fatalf("open.test without a client certificate: %v", err)
	}
	noCert.ServerName = "closed.test"
	if _, err := handshake(t, srv, noCert, true); err == nil {
		t.Fatal("closed.test without a client certificate succeeded")
	}
	withCert := &stdtls.Config{ServerName: "closed.test", InsecureSkipVerify: true, Certificates: []stdtls.Certificate{p.client.tls()}}
	if _, err := handshake(t, srv, withCert, true); err != nil {
		t.Fatalf("closed.test with a client certificate: %v", err)
	}
}
