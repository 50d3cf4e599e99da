package dispatcher

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/backend"
)

var loopCases = []tunnelCase{
	{"tcp-unix", "tcp", "unix", false, 0},
	{"tcp-tcp", "tcp", "tcp", false, 0},
	{"unix-tcp", "unix", "tcp", false, 0},
	{"unix-unix", "unix", "unix", false, 0},
}

// reset closes c with an RST (TCP) or at once with bytes unread (unix), so
// that the tunnel's side sees an error rather than the end.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// readEnd reads c until its end or error, within 10s.
func readEnd(t *testing.T, c net.Conn) ([]byte, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return io.ReadAll(c)
}

// How a looped tunnel ends: each side half-closing first, each side
// aborting, and "shutdown sessions" closing it.
func TestLoopTunnelEnds(t *testing.T) {
	for _, tc := range loopCases {
		for _, end := range []struct {
			name string
			// run drives the outer ends and returns the bytes it expects
			// each way.
			run      func(t *testing.T, client, server net.Conn, kill io.Closer) (in, out int64)
			wantTerm []string // one of
		}{
			{"client shuts first", func(t *testing.T, client, server net.Conn, _ io.Closer) (int64, int64) {
				up := payload(200 << 10)
				go func() { client.Write(up); client.(interface{ CloseWrite() error }).CloseWrite() }()
				if got, err := readEnd(t, server); err != nil || !bytes.Equal(got, up) {
					t.Fatalf("server got %d bytes (%v), want %d", len(got), err, len(up))
				}
				// The server still talks after the client's end.
				server.Write([]byte("late answer"))
				server.(interface{ CloseWrite() error }).CloseWrite()
				if got, err := readEnd(t, client); err != nil || string(got) != "late answer" {
					t.Fatalf("client got %q (%v)", got, err)
				}
				return int64(len(up)), int64(len("late answer"))
			}, []string{"--"}},
			{"server shuts first", func(t *testing.T, client, server net.Conn, _ io.Closer) (int64, int64) {
				down := payload(300 << 10)
				go func() { server.Write(down); server.(interface{ CloseWrite() error }).CloseWrite() }()
				if got, err := readEnd(t, client); err != nil || !bytes.Equal(got, down) {
					t.Fatalf("client got %d bytes (%v), want %d", len(got), err, len(down))
				}
				client.Write([]byte("thanks"))
				client.(interface{ CloseWrite() error }).CloseWrite()
				if got, err := readEnd(t, server); err != nil || string(got) != "thanks" {
					t.Fatalf("server got %q (%v)", got, err)
				}
				return int64(len("thanks")), int64(len(down))
			}, []string{"--"}},
			{"client aborts", func(t *testing.T, client, server net.Conn, _ io.Closer) (int64, int64) {
				client.Write([]byte("hello"))
				if _, err := io.ReadFull(server, make([]byte, 5)); err != nil {
					t.Fatal(err)
				}
				// Unread bytes make a unix socket's close an error for
				// the reader too.
				server.Write([]byte("unread"))
				waitBuffered(t, client)
				reset(client)
				readEnd(t, server)
				return 5, -1
			}, []string{"CD"}},
			{"server aborts", func(t *testing.T, client, server net.Conn, _ io.Closer) (int64, int64) {
				server.Write([]byte("hi"))
				if _, err := io.ReadFull(client, make([]byte, 2)); err != nil {
					t.Fatal(err)
				}
				client.Write([]byte("unread"))
				waitBuffered(t, server)
				reset(server)
				readEnd(t, client)
				return -1, 2
			}, []string{"SD"}},
			{"shutdown sessions", func(t *testing.T, client, server net.Conn, kill io.Closer) (int64, int64) {
				client.Write([]byte("ping"))
				if _, err := io.ReadFull(server, make([]byte, 4)); err != nil {
					t.Fatal(err)
				}
				kill.Close()
				// Both sides see the end.
				if _, err := readEnd(t, client); err != nil {
					t.Errorf("client: %v", err)
				}
				if _, err := readEnd(t, server); err != nil {
					t.Errorf("server: %v", err)
				}
				kill.Close() // a second time does nothing
				return 4, 0
			}, []string{"--"}},
		} {
			t.Run(tc.name+"/"+end.name, func(t *testing.T) {
				client, server, done, kill := setupTunnel(t, tc, 0)
				wantIn, wantOut := end.run(t, client, server, kill)
				in, out, term := tunnelResult(t, done)
				if !contains(end.wantTerm, term) {
					t.Errorf("term %q, want one of %q", term, end.wantTerm)
				}
				// -1: the side aborted, what crossed before depends on
				// timing.
				if (wantIn >= 0 && in != wantIn) || (wantOut >= 0 && out != wantOut) {
					t.Errorf("bytes %d in, %d out; want %d, %d", in, out, wantIn, wantOut)
				}
			})
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitBuffered waits until c has bytes to read, without reading them: a
// unix socket closed with unread bytes resets its peer.
func waitBuffered(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no bytes arrived within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Forward hands a raw pair to the loop and returns at once; "shutdown
// sessions" on the server ends the looped tunnel, and the Result follows.
func TestForwardLoopShutdownSessions(t *testing.T) {
	ln, a := listenOn(t, "abns")
	accepted := make(chan net.Conn, 1)
	serve(ln, func(c net.Conn) {
		accepted <- c
		io.Copy(c, c) // echo until the end
	})
	p := tcpProxy(server("s1", 1, a))
	be := backend.New(p, nil)
	c, acc := tcpPair(t)
	defer c.Close()
	results := make(chan Result, 1)
	returned := make(chan struct{})
	go func() {
		Forward(context.Background(), testLoop(t), acc, acc.RemoteAddr(), acc.LocalAddr(), be, p, func(r Result) { results <- r })
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Forward did not return with its tunnel on the loop")
	}
	c.Write([]byte("echo"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-results:
		t.Fatalf("result %+v before the tunnel ended", r)
	default:
	}
	if n := be.Server("s1").ShutdownSessions(); n != 1 {
		t.Fatalf("ShutdownSessions closed %d sessions, want 1", n)
	}
	if _, err := readEnd(t, c); err != nil {
		t.Errorf("client after shutdown sessions: %v", err)
	}
	r := result(t, results)
	if r.BytesFromClient != 4 || r.BytesFromServer != 4 || r.Server != "s1" {
		t.Errorf("result %+v", r)
	}
	noActive(t, be)
	if n := be.Server("s1").ShutdownSessions(); n != 0 {
		t.Errorf("%d sessions still tracked after the end", n)
	}
}

// A thousand idle tunnels share the loop: no goroutine each, and all of
// them still move bytes and end normally.
func TestLoopManyIdleTunnels(t *testing.T) {
	const tunnels = 1000
	lp := testLoop(t)
	tc := loopCases[0]
	type ends struct {
		client, server net.Conn
		done           <-chan tunnelEnd
	}
	g0 := runtime.NumGoroutine()
	all := make([]ends, tunnels)
	for i := range all {
		client, server, done, _ := setupTunnelOn(t, lp, tc, time.Hour)
		all[i] = ends{client, server, done}
	}
	// runTunnel's goroutines return once the loop has the tunnels.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine()-g0 > tunnels/10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d more goroutines for %d idle tunnels", runtime.NumGoroutine()-g0, tunnels)
		}
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.client.Write([]byte("ab"))
			e.client.(interface{ CloseWrite() error }).CloseWrite()
			if got, err := readEnd(t, e.server); err != nil || string(got) != "ab" {
				t.Errorf("server got %q, %v", got, err)
			}
			e.server.Write([]byte("xyz"))
			e.server.Close()
			if got, err := readEnd(t, e.client); err != nil || string(got) != "xyz" {
				t.Errorf("client got %q, %v", got, err)
			}
		}()
	}
	wg.Wait()
	for _, e := range all {
		if in, out, term := tunnelResult(t, e.done); in != 2 || out != 3 || term != "--" {
			t.Fatalf("tunnel ended %d, %d, %q", in, out, term)
		}
	}
}

// Closing the loop ends its tunnels; one offered afterwards ends at once.
func TestLoopClose(t *testing.T) {
	lp := NewLoop(slog.New(slog.DiscardHandler))
	client, server, done, _ := setupTunnelOn(t, lp, loopCases[0], 0)
	client.Write([]byte("x"))
	if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	lp.Close()
	if _, _, term := tunnelResult(t, done); term != "--" {
		t.Errorf("term %q", term)
	}
	if _, err := readEnd(t, client); err != nil {
		t.Errorf("client: %v", err)
	}
	_, _, done, _ = setupTunnelOn(t, lp, loopCases[0], 0)
	if _, _, term := tunnelResult(t, done); term != "--" {
		t.Errorf("term %q after Close", term)
	}
}

// A client behind a PROXY header may send its first bytes in the same
// packet: the wrapper has read them already, and the loop, which reads the
// socket, must get them to the server first, in order.
func TestLoopProxyClientBufferedBytes(t *testing.T) {
	client, fromClient := connPair(t, "tcp")
	toServer, server := connPair(t, "unix")
	t.Cleanup(func() { client.Close(); server.Close() })
	hdr := proxyproto.HeaderProxyFromAddrs(2, client.LocalAddr(), client.RemoteAddr())
	first := []byte("first bytes, in the header's packet")
	var msg bytes.Buffer
	if _, err := hdr.WriteTo(&msg); err != nil {
		t.Fatal(err)
	}
	msg.Write(first)
	if _, err := client.Write(msg.Bytes()); err != nil {
		t.Fatal(err)
	}
	pc := proxyproto.NewConn(fromClient, proxyproto.WithPolicy(proxyproto.REQUIRE))
	if _, err := pc.Read(nil); err != nil { // reads the header, and the bytes after it
		t.Fatal(err)
	}

	out := make(chan tunnelEnd, 1)
	go runTunnel(testLoop(t), pc, toServer, 0, func(c io.Closer) {
		if _, onLoop := c.(*loopTunnel); !onLoop {
			t.Errorf("tracked %T, want the loop's tunnel", c)
		}
	}, func(_ io.Closer, in, outN int64, term string) {
		out <- tunnelEnd{in, outN, term}
	})
	rest := payload(100 << 10)
	client.Write(rest)
	client.(*net.TCPConn).CloseWrite()
	got, err := readEnd(t, server)
	if want := append(first, rest...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("server got %d bytes (%v), want %d", len(got), err, len(want))
	}
	server.Close()
	if in, _, term := tunnelResult(t, out); in != int64(len(first)+len(rest)) || term != "--" {
		t.Errorf("tunnel ended with %d bytes from the client, %q; want %d, --", in, term, len(first)+len(rest))
	}
}
