package dispatcher

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// opaque hides a connection's type (so io.Copy cannot splice it) but
// keeps its half-close, like a TLS connection.
type opaque struct{ net.Conn }

func (o opaque) CloseWrite() error { return o.Conn.(interface{ CloseWrite() error }).CloseWrite() }

// connPair returns two connected ends of the given family: "tcp", or
// "unix" (an abstract socket).
func connPair(t testing.TB, family string) (a, b net.Conn) {
	t.Helper()
	if family == "tcp" {
		return tcpPair(t)
	}
	ln, ad := listenOn(t, "abnsz")
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial(ad.Network(), ad.String())
	if err != nil {
		t.Fatal(err)
	}
	return c, <-accepted
}

type tunnelCase struct {
	name           string
	client, server string // families
	wrap           bool   // hide the types: the buffered copy on goroutines
	sndbuf         int    // when not 0, the send buffer of the tunnel's own sockets
}

var tunnelCases = []tunnelCase{
	{"tcp-unix loop", "tcp", "unix", false, 0},
	{"tcp-tcp loop", "tcp", "tcp", false, 0},
	{"unix-tcp loop", "unix", "tcp", false, 0},
	{"unix-unix loop", "unix", "unix", false, 0},
	{"tcp-unix buffered", "tcp", "unix", true, 0},
}

// tunnelEnd is what runTunnel reported.
type tunnelEnd struct {
	in, out int64
	term    string
}

// setupTunnel runs runTunnel between a client pair and a server pair and
// returns the outer ends (what the client and the server hold), where its
// end arrives, and what ends the tunnel early.
func setupTunnel(t *testing.T, tc tunnelCase, idle time.Duration) (client, server net.Conn, done <-chan tunnelEnd, kill io.Closer) {
	t.Helper()
	return setupTunnelOn(t, testLoop(t), tc, idle)
}

func setupTunnelOn(t testing.TB, lp *Loop, tc tunnelCase, idle time.Duration) (client, server net.Conn, done <-chan tunnelEnd, kill io.Closer) {
	t.Helper()
	client, fromClient := connPair(t, tc.client)
	toServer, server := connPair(t, tc.server)
	t.Cleanup(func() { client.Close(); server.Close() })
	if tc.sndbuf > 0 {
		for _, c := range []net.Conn{fromClient, toServer} {
			if err := c.(interface{ SetWriteBuffer(int) error }).SetWriteBuffer(tc.sndbuf); err != nil {
				t.Fatal(err)
			}
		}
	}
	if tc.wrap {
		fromClient, toServer = opaque{fromClient}, opaque{toServer}
	}
	out := make(chan tunnelEnd, 1)
	tracked := make(chan io.Closer, 1)
	go runTunnel(lp, fromClient, toServer, idle, func(c io.Closer) {
		if _, onLoop := c.(*loopTunnel); onLoop == tc.wrap {
			t.Errorf("tracked %T for %s", c, tc.name)
		}
		tracked <- c
	}, func(c io.Closer, in, outN int64, term string) {
		out <- tunnelEnd{in, outN, term}
	})
	return client, server, out, <-tracked
}

func tunnelResult(t testing.TB, ch <-chan tunnelEnd) (int64, int64, string) {
	t.Helper()
	select {
	case r := <-ch:
		return r.in, r.out, r.term
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel did not end within 10s")
	}
	return 0, 0, ""
}

func TestTunnelBytesAndHalfClose(t *testing.T) {
	for _, tc := range tunnelCases {
		t.Run(tc.name, func(t *testing.T) {
			client, server, done, _ := setupTunnel(t, tc, 0)
			up, down := payload(300<<10), payload(200<<10)
			go func() {
				client.Write(up)
				client.(interface{ CloseWrite() error }).CloseWrite()
			}()
			got, err := io.ReadAll(server) // ends with the client's half-close
			if err != nil || !bytes.Equal(got, up) {
				t.Fatalf("server got %d bytes (%v), client sent %d", len(got), err, len(up))
			}
			server.Write(down)
			server.Close()
			back, err := io.ReadAll(client)
			if err != nil || !bytes.Equal(back, down) {
				t.Fatalf("client got %d bytes (%v), server sent %d", len(back), err, len(down))
			}
			in, out, term := tunnelResult(t, done)
			if in != int64(len(up)) || out != int64(len(down)) || term != "--" {
				t.Errorf("Tunnel = %d, %d, %q", in, out, term)
			}
		})
	}
}

// The buffered copy moves every size across its switches between the
// small buffer it waits with and the pooled one: messages of one size,
// each answered before the next, then the end.
func TestCopyBufferedSizes(t *testing.T) {
	tc := tunnelCase{"tcp-unix buffered", "tcp", "unix", true, 0}
	for _, size := range []int{1, waitBufferSize - 1, waitBufferSize, waitBufferSize + 1, 32 << 10, 32<<10 + 1, 200 << 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			client, server, done, _ := setupTunnel(t, tc, 0)
			msg := payload(size)
			got := make([]byte, size)
			for range 3 {
				if _, err := client.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("server got %v", err)
				}
				if _, err := server.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("client got %v", err)
				}
			}
			client.Close()
			server.Close()
			if in, out, _ := tunnelResult(t, done); in != int64(3*size) || out != int64(3*size) {
				t.Errorf("Tunnel = %d, %d; want %d each", in, out, 3*size)
			}
		})
	}
}

// Traffic keeps the tunnel open past its idle timeout, on the splice path
// (where the kernel's TCP_INFO tells) and on the buffered one (where reads
// do); silence closes it.
func TestTunnelIdle(t *testing.T) {
	// Generous, so that a loaded machine under the race detector does not
	// stall the paced traffic past it.
	const idle = 400 * time.Millisecond
	for _, tc := range tunnelCases {
		t.Run(tc.name+"/active", func(t *testing.T) {
			t.Parallel() // these wait on the clock, not the CPU
			client, server, done, _ := setupTunnel(t, tc, idle)
			go func() { // echo, then half-close as the client did
				io.Copy(server, server)
				server.(interface{ CloseWrite() error }).CloseWrite()
			}()
			buf := make([]byte, 1)
			start := time.Now()
			for time.Since(start) < 3*idle {
				if _, err := client.Write([]byte("x")); err != nil {
					t.Fatalf("write after %v: %v", time.Since(start), err)
				}
				if _, err := io.ReadFull(client, buf); err != nil {
					t.Fatalf("echo after %v: %v", time.Since(start), err)
				}
				time.Sleep(idle / 6) // paces the traffic
			}
			client.(interface{ CloseWrite() error }).CloseWrite()
			io.Copy(io.Discard, client)
			if _, _, term := tunnelResult(t, done); term != "--" {
				t.Errorf("term %q for a tunnel with traffic every %v", term, idle/6)
			}
		})
		t.Run(tc.name+"/one way", func(t *testing.T) {
			t.Parallel()
			// Only the server talks: the client's side stays quiet.
			client, server, done, _ := setupTunnel(t, tc, idle)
			start := time.Now()
			go func() {
				for time.Since(start) < 3*idle {
					if _, err := server.Write([]byte("tick")); err != nil {
						return
					}
					time.Sleep(idle / 6)
				}
				server.Close()
			}()
			io.Copy(io.Discard, client)
			client.Close()
			if _, out, term := tunnelResult(t, done); term != "--" || out == 0 {
				t.Errorf("term %q after %d bytes from the server", term, out)
			}
		})
		t.Run(tc.name+"/silent", func(t *testing.T) {
			t.Parallel()
			client, _, done, _ := setupTunnel(t, tc, idle)
			client.Write([]byte("hi"))
			start := time.Now()
			in, _, term := tunnelResult(t, done)
			if term != "cD" || in != 2 {
				t.Errorf("Tunnel = %d, %q; want cD", in, term)
			}
			if took := time.Since(start); took < idle-10*time.Millisecond {
				t.Errorf("cut after %v, idle timeout %v", took, idle)
			}
		})
	}
}

// An idle timeout shorter than the time it takes to start the tunnel fires
// before Tunnel has finished setting up.
func TestTunnelTinyIdle(t *testing.T) {
	for i := 0; i < 20; i++ {
		client, server, done, _ := setupTunnel(t, tunnelCases[0], time.Nanosecond)
		if _, _, term := tunnelResult(t, done); term != "cD" {
			t.Fatalf("term %q", term)
		}
		client.Close()
		server.Close()
	}
}

func TestRawSocket(t *testing.T) {
	tcp, tcp2 := tcpPair(t)
	defer tcp.Close()
	defer tcp2.Close()
	ux, ux2 := connPair(t, "unix")
	defer ux.Close()
	defer ux2.Close()
	for _, tc := range []struct {
		name      string
		c         net.Conn
		ok, isTCP bool
	}{
		{"tcp", tcp, true, true},
		{"unix", ux, true, false},
		{"proxy(tcp)", proxyproto.NewConn(tcp), true, true},
		{"proxy(unix)", proxyproto.NewConn(ux), true, false},
		{"opaque", opaque{tcp2}, false, false},
	} {
		if _, isTCP, ok := rawSocket(tc.c); ok != tc.ok || isTCP != tc.isTCP {
			t.Errorf("%s: rawSocket = %v, %v; want %v, %v", tc.name, isTCP, ok, tc.isTCP, tc.ok)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		tunnel, client, server, want time.Duration
	}{
		{0, 0, 0, 0},
		{5, 1, 2, 5},
		{0, 1, 2, 1},
		{0, 3, 2, 2},
		{0, 0, 2, 2},
		{0, 3, 0, 3},
	} {
		p := tcpProxy()
		p.Timeouts.Tunnel, p.Timeouts.Client, p.Timeouts.Server = tc.tunnel, tc.client, tc.server
		if got := IdleTimeout(p, p); got != tc.want {
			t.Errorf("IdleTimeout(tunnel %d client %d server %d) = %d, want %d", tc.tunnel, tc.client, tc.server, got, tc.want)
		}
	}
}

func TestIdleTimeoutSides(t *testing.T) {
	fe, be := tcpProxy(), tcpProxy()
	fe.Timeouts.Client, fe.Timeouts.Server = 3, 100 // a frontend's server timeout does not apply
	be.Timeouts.Client, be.Timeouts.Server = 100, 5 // nor a backend's client timeout
	if got := IdleTimeout(fe, be); got != 3 {
		t.Errorf("IdleTimeout = %d, want the frontend's client timeout 3", got)
	}
	be.Timeouts.Tunnel = 7
	if got := IdleTimeout(fe, be); got != 7 {
		t.Errorf("IdleTimeout = %d, want the backend's tunnel timeout 7", got)
	}
}

// With tiny send buffers, the tunnel's sockets are full after every few
// KiB: each flow waits for room again and again, and must be woken each
// time.
func TestTunnelFullDestination(t *testing.T) {
	for _, tc := range tunnelCases {
		tc.sndbuf = 4096
		t.Run(tc.name, func(t *testing.T) {
			client, server, done, _ := setupTunnel(t, tc, 0)
			up, down := payload(1<<20), payload(1<<20)
			go func() {
				client.Write(up)
				client.(interface{ CloseWrite() error }).CloseWrite()
			}()
			go func() {
				server.Write(down)
				server.(interface{ CloseWrite() error }).CloseWrite()
			}()
			// Read both ends a little at a time, so that the tunnel's
			// writes keep finding them full.
			read := func(c net.Conn, got chan<- []byte) {
				c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a stalled flow fails the test
				var all []byte
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						got <- all
						return
					}
				}
			}
			atServer, atClient := make(chan []byte, 1), make(chan []byte, 1)
			go read(server, atServer)
			go read(client, atClient)
			if got := <-atServer; !bytes.Equal(got, up) {
				t.Errorf("server got %d bytes, client sent %d", len(got), len(up))
			}
			if got := <-atClient; !bytes.Equal(got, down) {
				t.Errorf("client got %d bytes, server sent %d", len(got), len(down))
			}
			in, out, term := tunnelResult(t, done)
			if in != int64(len(up)) || out != int64(len(down)) || term != "--" {
				t.Errorf("Tunnel = %d, %d, %q", in, out, term)
			}
		})
	}
}
