package dispatcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

var abnsSeq atomic.Int64

// uniqueAbns returns an abstract socket name no other test or process uses.
func uniqueAbns(tb testing.TB, prefix string) string {
	name := fmt.Sprintf("sluice-test-%d-%d-%s", os.Getpid(), abnsSeq.Add(1), tb.Name())
	name = strings.NewReplacer("/", "-", " ", "_").Replace(name)
	if len(name) > 100 {
		name = name[:100]
	}
	return prefix + name
}

// listenOn opens a listener for a server of family "tcp" (127.0.0.1 on a
// free port), "abns", "abnsz" or "unix", and returns its address as a
// server line would have it.
func listenOn(tb testing.TB, family string) (net.Listener, addr.Addr) {
	tb.Helper()
	var text string
	switch family {
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ln.Close() })
		a, err := addr.Parse(ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		return ln, a
	case "abns", "abnsz":
		text = uniqueAbns(tb, family+"@")
	case "unix":
		text = "unix@" + tb.TempDir() + "/s.sock"
	default:
		tb.Fatalf("family %q", family)
	}
	a, err := addr.Parse(text)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := a.Listen(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln, a
}

// serve runs handle for every connection accepted on ln.
func serve(ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// upperAfterEOF reads the whole request (until the client's half-close)
// and then answers it in upper case: the answer flows after the client
// has shut its write half.
func upperAfterEOF(c net.Conn) {
	data, err := io.ReadAll(c)
	if err != nil {
		return
	}
	c.Write([]byte(strings.ToUpper(string(data))))
}

// refusedAddr is an abstract name nobody listens on: connecting to it is
// refused at once, without a port another test could take.
func refusedAddr(tb testing.TB) addr.Addr {
	a, err := addr.Parse(uniqueAbns(tb, "abnsz@refused-"))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func server(name string, id int, a addr.Addr, opts ...func(*config.Server)) *config.Server {
	sc := &config.Server{Name: name, ID: id, Addr: a, Rise: 2, Fall: 3, Inter: 2 * time.Second, Weight: 1}
	for _, o := range opts {
		o(sc)
	}
	return sc
}

func sendProxy(v int) func(*config.Server) { return func(s *config.Server) { s.SendProxy = v } }

func tcpProxy(servers ...*config.Server) *config.Proxy {
	return &config.Proxy{
		Name: "be", ID: 1, Backend: true, Mode: config.ModeTCP, Balance: config.BalanceRoundRobin,
		Servers: servers, Retries: 3,
		Timeouts: config.Timeouts{Connect: 2 * time.Second, Client: 30 * time.Second, Server: 30 * time.Second},
	}
}

// tcpPair returns both ends of a loopback TCP connection: the client's and
// the one a frontend accepted.
func tcpPair(tb testing.TB) (clientEnd, accepted *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	return c.(*net.TCPConn), a.(*net.TCPConn)
}

// testLoop is a tunnel loop closed when the test ends.
func testLoop(tb testing.TB) *Loop {
	lp := NewLoop(slog.New(slog.DiscardHandler))
	tb.Cleanup(lp.Close)
	return lp
}

// accepts are the ways a frontend hands a client to the dispatcher: as a
// net.Conn to Forward, as a Socket to ForwardSocket.
var accepts = []string{"conn", "socket"}

// forwardBy is forward or forwardSocket, as accept says.
func forwardBy(tb testing.TB, accept string, be *backend.Backend, p *config.Proxy) (*net.TCPConn, <-chan Result) {
	if accept == "socket" {
		return forwardSocket(tb, testLoop(tb), be, p)
	}
	return forward(tb, be, p)
}

// socketListener is a Listener on a free loopback port, closed when the
// test ends.
func socketListener(tb testing.TB) *Listener { return socketListenerOn(tb, "127.0.0.1:0") }

func socketListenerOn(tb testing.TB, address string) *Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", address)
	if err != nil {
		tb.Fatal(err)
	}
	sl, err := NewListener(ln.(*net.TCPListener))
	if err != nil {
		ln.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sl.Close() })
	return sl
}

// acceptedSocket connects a client to sl and accepts it as a Socket; it
// returns the client's end, closed when the test ends, and the Socket.
func acceptedSocket(tb testing.TB, sl *Listener) (*net.TCPConn, *Socket) {
	tb.Helper()
	c, err := net.Dial("tcp", sl.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	s, err := sl.AcceptSocket()
	if err != nil {
		tb.Fatal(err)
	}
	if s.Remote.String() != c.LocalAddr().String() || s.Local.String() != c.RemoteAddr().String() {
		tb.Fatalf("socket %v -> %v, client %v -> %v", s.Remote, s.Local, c.LocalAddr(), c.RemoteAddr())
	}
	return c.(*net.TCPConn), s
}

// forwardSocket accepts a new client connection as a Socket and runs
// ForwardSocket on lp with it; it returns the client's end and where the
// Result arrives.
func forwardSocket(tb testing.TB, lp *Loop, be *backend.Backend, p *config.Proxy) (*net.TCPConn, <-chan Result) {
	tb.Helper()
	c, s := acceptedSocket(tb, socketListener(tb))
	out := make(chan Result, 1)
	go ForwardSocket(context.Background(), lp, nil, s, be, p, func(r Result) { out <- r })
	return c, out
}

// forward runs Forward on the accepted end of a new client connection and
// returns the client's end and where the Result arrives.
func forward(tb testing.TB, be *backend.Backend, p *config.Proxy) (*net.TCPConn, <-chan Result) {
	tb.Helper()
	c, a := tcpPair(tb)
	tb.Cleanup(func() { c.Close() })
	out := make(chan Result, 1)
	lp := testLoop(tb)
	go Forward(context.Background(), lp, a, a.RemoteAddr(), a.LocalAddr(), be, p, func(r Result) { out <- r })
	return c, out
}

// forwardingFront listens on a loopback TCP port and forwards every
// connection it accepts, as a Socket like a worker's tcp-mode frontend,
// until the test ends.
func forwardingFront(tb testing.TB, be *backend.Backend, p *config.Proxy) net.Listener {
	tb.Helper()
	front := socketListener(tb)
	lp := testLoop(tb)
	go func() {
		for {
			s, err := front.AcceptSocket()
			if err != nil {
				return
			}
			go ForwardSocket(context.Background(), lp, nil, s, be, p, func(Result) {})
		}
	}()
	return front
}

func result(tb testing.TB, ch <-chan Result) Result {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("Forward did not return within 10s")
	}
	return Result{}
}

// noActive waits until every connection released its server: Forward
// releases after it sends its Result's last part.
func noActive(tb testing.TB, be *backend.Backend) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for be.Active() != 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("backend still has %d active connections", be.Active())
		}
		time.Sleep(time.Millisecond)
	}
}

// payload is n bytes of lower-case text.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
