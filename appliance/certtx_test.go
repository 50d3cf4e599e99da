package appliance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// selfSigned returns a PEM bundle (certificate, then key) for name.
func selfSigned(t *testing.T, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// certMaster is a master, not running, serving live.pem on one ssl bind.
func certMaster(t *testing.T) *Master {
	t.Helper()
	cfg := &config.Config{Proxies: []*config.Proxy{{Binds: []*config.Bind{{SSL: true, Crt: []string{"live.pem"}}}}}}
	return &Master{
		cfg: cfg,
		tls: &control.TLS{Certs: map[string][]tlsctx.CertEntry{
			"live.pem": {{Path: "live.pem", PEM: []byte(selfSigned(t, "live.test"))}},
		}},
	}
}

func TestSetCertRefusedInBundleMode(t *testing.T) {
	m := certMaster(t)
	m.src.Bundle = "/etc/sluice/live.bundle"
	_, err := m.setCert("live.pem", selfSigned(t, "live.test"))
	if err == nil || !strings.Contains(err.Error(), "signed bundle") {
		t.Fatalf("set ssl cert from a bundle: %v, want a refusal naming the signed bundle", err)
	}
	if m.certTx != nil {
		t.Fatal("a transaction was staged")
	}
}

func TestSetCertFromFiles(t *testing.T) {
	m := certMaster(t)
	created, err := m.setCert("live.pem", selfSigned(t, "live.test"))
	if err != nil || !created || m.certTx == nil {
		t.Fatalf("set ssl cert: created %v, %v", created, err)
	}
}

func TestCommitCertMatchingNothing(t *testing.T) {
	m := certMaster(t)
	m.log = slog.New(slog.DiscardHandler)
	if _, err := m.setCert("live.pem", selfSigned(t, "live.test")); err != nil {
		t.Fatal(err)
	}
	m.tls = &control.TLS{Certs: map[string][]tlsctx.CertEntry{}} // the file is no longer in use
	if err := m.commitCert("live.pem"); err == nil || !strings.Contains(err.Error(), "not referenced by the configuration") {
		t.Fatalf("commit of a file no longer in use: %v, want an error", err)
	}
	if m.certTx != nil {
		t.Error("the transaction is still there")
	}
}

// The payload is read as the file itself: in any order, the leaf first
// once staged, and a missing key named.
func TestSetCertReadsPayloadAsAFile(t *testing.T) {
	m := certMaster(t)
	m.log = slog.New(slog.DiscardHandler)
	live, other := selfSigned(t, "live.test"), selfSigned(t, "other.test")
	otherCert := other[:strings.Index(other, "-----BEGIN PRIVATE KEY")]
	liveCert, liveKey := live[:strings.Index(live, "-----BEGIN PRIVATE KEY")], live[strings.Index(live, "-----BEGIN PRIVATE KEY"):]
	if _, err := m.setCert("live.pem", liveKey+otherCert+liveCert); err != nil {
		t.Fatalf("key, chain, then leaf: %v", err)
	}
	b, _ := pem.Decode(m.certTx.entry.PEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil || leaf.Subject.CommonName != "live.test" {
		t.Fatalf("staged PEM does not start with the leaf: %v %v", leaf, err)
	}
	if _, err := m.setCert("live.pem", liveCert); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Fatalf("no key: %v, want an error saying so", err)
	}
	if _, err := m.setCert("live.pem", otherCert+liveKey); err == nil {
		t.Fatal("a key that matches no certificate was accepted")
	}
}
