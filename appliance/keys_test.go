package appliance

import (
	"bytes"
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sluicelb/sluice/config"
	tlsctx "github.com/sluicelb/sluice/tls"
)

func TestKeyRotation(t *testing.T) {
	cfg := &config.Config{Proxies: []*config.Proxy{{Binds: []*config.Bind{
		{SSL: true, TLS: config.BindSSL{ECHPublicName: "public.example"}},
		{SSL: true},
	}}}}
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var k keyState
	if changed, err := k.rotate(cfg, start); err != nil || !changed {
		t.Fatalf("first rotate: changed %v, %v", changed, err)
	}
	if len(k.Tickets) != 1 || len(k.ECH["public.example"]) != 1 {
		t.Fatalf("after start: %d ticket keys, %d ECH keys", len(k.Tickets), len(k.ECH["public.example"]))
	}
	first := k.Tickets[0]
	if changed, _ := k.rotate(cfg, start.Add(time.Hour)); changed {
		t.Fatal("rotated before its time")
	}
	if got := k.nextRotation(); !got.Equal(start.Add(ticketRotation)) {
		t.Fatalf("next rotation %v", got)
	}
	// Tickets: a new encrypting key every period, three kept.
	for i := 1; i <= 4; i++ {
		if changed, _ := k.rotate(cfg, start.Add(time.Duration(i)*ticketRotation)); !changed {
			t.Fatalf("rotation %d did nothing", i)
		}
	}
	if len(k.Tickets) != ticketKeep || k.Tickets[0] == first || k.Tickets[2] == first {
		t.Fatalf("ticket keys after 4 rotations: %d, the first still there: %v", len(k.Tickets), k.Tickets[2] == first)
	}
	// ECH: the previous key kept, with a new config id, no longer offered
	// as a retry configuration.
	keys := k.ECH["public.example"]
	if len(keys) == 2 && (!keys[0].SendAsRetry || keys[1].SendAsRetry) {
		t.Errorf("SendAsRetry: newest %v, previous %v", keys[0].SendAsRetry, keys[1].SendAsRetry)
	}
	if len(keys) != echKeep || keys[0].Config[4] == keys[1].Config[4] {
		t.Fatalf("ECH keys: %d, ids %d %d", len(keys), keys[0].Config[4], keys[1].Config[4])
	}
	// The rotated keys as a worker serves them: a client with the
	// configuration published before the last rotation still gets
	// through, and so does one with the newest.
	for _, list := range [][]byte{tlsctx.ECHConfigList(keys[1:]), tlsctx.ECHConfigList(keys[:1])} {
		if err := echHandshake(t, keys, list); err != nil {
			t.Fatalf("ECH handshake with config id %d: %v", list[6], err)
		}
	}
	// A rotation later, the previous key is gone: its client is told to
	// retry with the newest configuration only.
	oldList := tlsctx.ECHConfigList(keys[1:])
	if _, err := k.rotate(cfg, start.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	keys = k.ECH["public.example"]
	var rej *stdtls.ECHRejectionError
	if err := echHandshake(t, keys, oldList); !errors.As(err, &rej) || !bytes.Equal(rej.RetryConfigList, tlsctx.ECHConfigList(keys[:1])) {
		t.Fatalf("a key two rotations old: %v, want a rejection with the newest configuration to retry with", err)
	}
	// A public name no bind uses any more loses its keys.
	cfg.Proxies[0].Binds[0].TLS.ECHPublicName = "other.example"
	if changed, _ := k.rotate(cfg, start.Add(96*time.Hour)); !changed || k.ECH["public.example"] != nil || len(k.ECH["other.example"]) != 1 {
		t.Fatalf("after a rename: %v", k.ECH)
	}
}

// A reload that fails keeps the keys of the running configuration, even
// those of an ECH public name the new configuration drops.
func TestFailedReloadKeepsKeys(t *testing.T) {
	dir := t.TempDir()
	crt := filepath.Join(dir, "live.pem")
	if err := os.WriteFile(crt, []byte(selfSigned(t, "live.test")), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	file := filepath.Join(dir, "sluice.cfg")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("listen web\n    bind " + addr + " ssl crt " + crt + " ech-public-name public.example\n    server a 127.0.0.1:81\n")
	src := Source{Files: []string{file}}
	ld, _, err := src.Load(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A binary that does not exist: the new generation cannot start.
	m, err := NewLoaded(t.Context(), ld, filepath.Join(dir, "no-such-binary"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.sockets.closeAll)
	before := m.keys.clone()
	// Another process count needs new processes; the public name is gone.
	write("global\n    nbproc 2\nlisten web\n    bind " + addr + " ssl crt " + crt + "\n    server a 127.0.0.1:81\n")
	if err := m.reload(t.Context(), m.restart); err == nil {
		t.Fatal("the reload succeeded without a binary")
	}
	if len(m.keys.ECH["public.example"]) != 1 || !reflect.DeepEqual(m.keys.ECH, before.ECH) || m.keys.NextConfigID != before.NextConfigID {
		t.Fatalf("after a failed reload: ECH keys %v, next config id %d; want %v, %d", m.keys.ECH, m.keys.NextConfigID, before.ECH, before.NextConfigID)
	}
}

// echHandshake connects a client with the ECH configuration list to a
// server made as a worker makes it, with the ECH keys; the inner server
// name is secret.test, the outer public.example. It returns the client's
// error, nil when the server accepted ECH.
func echHandshake(t *testing.T, keys []stdtls.EncryptedClientHelloKey, list []byte) error {
	t.Helper()
	public, secret := selfSigned(t, "public.example"), selfSigned(t, "secret.test")
	shared := tlsctx.NewSharedKeys()
	shared.SetECH(keys)
	srv, err := tlsctx.NewServer([]tlsctx.CertEntry{{Path: "public.pem", PEM: []byte(public)}, {Path: "secret.pem", PEM: []byte(secret)}}, tlsctx.BindOptions{}, shared)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(public + secret))
	a, b := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	go func() {
		defer b.Close()
		stdtls.Server(b, srv).Handshake()
	}()
	c := stdtls.Client(a, &stdtls.Config{ServerName: "secret.test", RootCAs: roots, EncryptedClientHelloConfigList: list, MinVersion: stdtls.VersionTLS13})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return err
	}
	if !c.ConnectionState().ECHAccepted {
		return errors.New("ECH not accepted")
	}
	return nil
}
