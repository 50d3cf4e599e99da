package worker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testServerTLS(t *testing.T) *stdtls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &stdtls.Config{Certificates: []stdtls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// A handshake waiting for its client holds no token: with a gate of one,
// a silent client does not stop the next handshake.
func TestHandshakeGateReleasesWhileWaiting(t *testing.T) {
	cfg := testServerTLS(t)
	gate := newHandshakeGate(1, newCPUs(true), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	silentServer, silentClient := net.Pipe()
	defer silentClient.Close()
	silentDone := make(chan error, 1)
	go func() {
		_, err := gate.server(ctx, silentServer, cfg)
		silentDone <- err
	}()
	// A pipe's write returns once the other end reads: the silent
	// handshake has taken its token and waits for the rest of a record.
	silentClient.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := silentClient.Write([]byte{0x16}); err != nil {
		t.Fatalf("the silent handshake never read: %v", err)
	}

	server, client := net.Pipe()
	defer client.Close()
	done := make(chan error, 1)
	go func() {
		_, err := gate.server(ctx, server, cfg)
		done <- err
	}()
	tc := stdtls.Client(client, &stdtls.Config{InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}

	silentClient.Close()
	if err := <-silentDone; err == nil {
		t.Fatal("the silent client's handshake succeeded")
	}
	if n := len(gate.tokens); n != 0 {
		t.Fatalf("%d tokens still held after both handshakes ended", n)
	}
}

// No more handshakes compute at once than the gate has tokens.
func TestHandshakeGateBoundsConcurrency(t *testing.T) {
	cfg := testServerTLS(t)
	const tokens, clients = 2, 16
	gate := newHandshakeGate(tokens, newCPUs(true), slog.New(slog.DiscardHandler))
	var computing, most atomic.Int32
	cfg.GetConfigForClient = func(*stdtls.ClientHelloInfo) (*stdtls.Config, error) {
		// Runs inside the handshake's computing part, holding a token.
		n := computing.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond) // widen the window for overlaps
		computing.Add(-1)
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for range clients {
		server, client := net.Pipe()
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := gate.server(ctx, server, cfg)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			defer client.Close()
			errs <- stdtls.Client(client, &stdtls.Config{InsecureSkipVerify: true}).HandshakeContext(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := most.Load(); m > tokens {
		t.Fatalf("%d handshakes computed at once through a gate of %d", m, tokens)
	}
	if n := len(gate.tokens); n != 0 {
		t.Fatalf("%d tokens still held", n)
	}
}

// While the process holds settled sessions, handshakes compute at a lower
// priority, and their threads get the process's back afterwards.
func TestHandshakeGateYieldsToSettledSessions(t *testing.T) {
	gate := newHandshakeGate(1, newCPUs(true), slog.New(slog.DiscardHandler))
	if gate.yield == gate.base {
		t.Skip("this process may not raise a thread's priority back")
	}
	cfg := testServerTLS(t)
	var seen atomic.Int32
	cfg.GetConfigForClient = func(*stdtls.ClientHelloInfo) (*stdtls.Config, error) {
		seen.Store(int32(threadNice())) // on the computing thread
		return nil, nil
	}
	handshake := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		server, client := net.Pipe()
		defer client.Close()
		done := make(chan error, 1)
		go func() {
			done <- stdtls.Client(client, &stdtls.Config{InsecureSkipVerify: true}).HandshakeContext(ctx)
		}()
		if _, err := gate.server(ctx, server, cfg); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := threadNice(); n != gate.base {
			t.Errorf("after the handshake the thread is at nice %d, want %d", n, gate.base)
		}
	}

	handshake()
	if n := int(seen.Load()); n != gate.base {
		t.Errorf("no settled session: computed at nice %d, want %d", n, gate.base)
	}
	closed := gate.settle()
	deadline := time.Now().Add(5 * time.Second)
	for gate.settled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	handshake()
	if n := int(seen.Load()); n != gate.yield {
		t.Errorf("with a settled session: computed at nice %d, want %d", n, gate.yield)
	}
	closed()
	if n := gate.settled.Load(); n != 0 {
		t.Errorf("%d settled after the session closed", n)
	}
}
