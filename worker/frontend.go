package worker

import (
	"context"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluicelb/sluice/accesslog"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/dispatcher"
)

// defaultHandshakeTimeout bounds the PROXY header and the TLS handshake when
// the proxy sets no client timeout, so a silent client cannot hold a slot.
const defaultHandshakeTimeout = 10 * time.Second

// frontend serves the connections of one bind.
type frontend struct {
	proxy   *config.Proxy
	bind    *config.Bind
	backend *backend.Backend // nil when the proxy has no backend
	beProxy *config.Proxy
	tls     *stdtls.Config // nil without ssl
	http    *httpServer    // nil in tcp mode
	alog    *accesslog.Logger
	log     *slog.Logger

	proxySlots *slots // frontend maxconn
	bindSlots  *slots // bind maxconn
	// counters are the proxy's numbers in this process, shared by its
	// binds and kept across reloads.
	counters *frontendCounters
	sessions *sessions
	// handshakes is the process's gate on TLS handshakes.
	handshakes *handshakeGate
	// tunnels is the process's loop for tcp-mode tunnels.
	tunnels *dispatcher.Loop
	// handoffs passes client sockets between the tiers; nil in tests.
	handoffs *handoffs
}

func (fe *frontend) active() int { return int(fe.counters.cur.Load()) }

func (fe *frontend) backendName() string {
	if fe.beProxy == nil {
		return ""
	}
	return fe.beProxy.Name
}

// takesSockets says whether the frontend's connections are accepted as
// dispatcher.Sockets, which the process's tunnel loop takes as they are:
// plain TCP forwarded as it comes (no ssl, no PROXY header to read).
func (fe *frontend) takesSockets() bool {
	return fe.tls == nil && fe.http == nil && !fe.bind.AcceptProxy && fe.backend != nil && fe.tunnels != nil
}

// accept takes the next connection of ln: a Socket when the frontend
// takes sockets and ln is a TCP listener (adoptListeners made it a
// dispatcher.Listener), else a net.Conn.
func (fe *frontend) accept(ln net.Listener) (net.Conn, *dispatcher.Socket, error) {
	if dl, ok := ln.(*dispatcher.Listener); ok && fe.takesSockets() {
		s, err := dl.AcceptSocket()
		return nil, s, err
	}
	c, err := ln.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		// Go turns TCP keep-alive on for accepted connections; HAProxy
		// leaves it off (option tcpka, which Sluice refuses, turns it
		// on), and so does a Socket.
		tc.SetKeepAlive(false)
	}
	return c, nil, err
}

// closeAccepted closes what accept returned.
func closeAccepted(c net.Conn, s *dispatcher.Socket) {
	if s != nil {
		s.Close()
		return
	}
	c.Close()
}

// serveSocket forwards a connection accepted as a Socket; release is
// called once when the connection is over.
func (fe *frontend) serveSocket(s *dispatcher.Socket, release func()) {
	accepted := time.Now()
	fe.counters.open()
	sess := fe.sessions.add(fe.proxy.Name, fe.backendName(), s.Remote)
	var ho *dispatcher.Handoffs
	if fe.handoffs != nil {
		ho = fe.handoffs.out
	}
	dispatcher.ForwardSocket(context.Background(), fe.tunnels, ho, s, fe.backend, fe.proxy, fe.forwarded(s.Remote, s.Local, accepted, func() {
		fe.sessions.remove(sess)
		fe.counters.close()
		release()
	}))
}

// serve handles one accepted connection; release is called once when the
// connection is over.
func (fe *frontend) serve(c net.Conn, release func()) {
	accepted := time.Now()
	fe.counters.open()
	settled := fe.handshakes.settle()
	conn := c
	var src, dst net.Addr
	var sess *session
	done := func() {
		if sess != nil {
			fe.sessions.remove(sess)
		}
		settled()
		fe.counters.close()
		release()
	}
	if fe.bind.AcceptProxy {
		pc, err := readProxyHeader(c, fe.handshakeTimeout())
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A connect check, or a client that changed its mind.
				fe.log.Debug("connection closed before its PROXY header", "frontend", fe.proxy.Name)
			} else {
				fe.counters.errors.Add(1)
				fe.log.Warn("bad PROXY header, connection closed", "frontend", fe.proxy.Name, "from", c.RemoteAddr().String(), "err", err)
			}
			c.Close()
			done()
			return
		}
		if dispatcher.IsHandoffChannel(pc.ProxyHeader()) && fe.handoffs != nil {
			// Not a client: a dispatcher of this configuration that
			// hands its clients over on this connection.
			settled()
			fe.counters.close()
			fe.counters.total.Add(-1)
			fe.handoffs.serveChannel(fe, pc.Raw(), release)
			return
		}
		conn, src, dst = pc, pc.RemoteAddr(), pc.LocalAddr()
	} else {
		// Only asked for here: a handed-over socket's addresses come
		// in its PROXY header.
		src, dst = c.RemoteAddr(), c.LocalAddr()
	}
	sess = fe.sessions.add(fe.proxy.Name, fe.backendName(), src)
	if fe.tls != nil {
		ctx, cancel := context.WithTimeout(context.Background(), fe.handshakeTimeout())
		tc, err := fe.handshakes.server(ctx, conn, fe.tls)
		cancel()
		if err != nil {
			fe.counters.errors.Add(1)
			fe.log.Info("TLS handshake failed", "frontend", fe.proxy.Name, "client", src.String(), "err", err)
			c.Close()
			done()
			return
		}
		conn = tc
		ackFinished(c)
	}
	if fe.http != nil {
		fe.http.serve(conn, c, done)
		return
	}
	fe.forward(conn, src, dst, accepted, done)
}

// forward runs a tcp-mode connection and calls done when it is over. A
// tunnel the process's loop runs outlives this goroutine, which returns
// as soon as the loop has it.
func (fe *frontend) forward(conn net.Conn, src, dst net.Addr, accepted time.Time, done func()) {
	if fe.backend == nil {
		fe.log.Warn("no backend for connection", "frontend", fe.proxy.Name)
		conn.Close()
		done()
		return
	}
	dispatcher.Forward(context.Background(), fe.tunnels, conn, src, dst, fe.backend, fe.proxy, fe.forwarded(src, dst, accepted, done))
}

// forwarded returns what a forwarded connection reports its Result to:
// it counts the connection's bytes, logs it, then calls done.
func (fe *frontend) forwarded(src, dst net.Addr, accepted time.Time, done func()) func(dispatcher.Result) {
	return func(res dispatcher.Result) {
		fe.counters.bytesIn.Add(res.BytesFromClient)
		fe.counters.bytesOut.Add(res.BytesFromServer)
		if res.Server == "" {
			fe.counters.denied.Add(1)
		}
		if fe.alog != nil {
			fe.logTCP(src, dst, accepted, res)
		}
		done()
	}
}

func (fe *frontend) handshakeTimeout() time.Duration {
	if t := fe.proxy.Timeouts.Client; t > 0 {
		return t
	}
	return defaultHandshakeTimeout
}

// ackFinished acknowledges at once the TLS client's Finished, just read
// on the TCP connection c. Go's TLS 1.3 server has sent its session
// tickets before the client's Finished, so nothing goes back after it and
// the kernel would delay the ACK by 40 ms; a client that leaves Nagle's
// algorithm on (ab, many HTTP/1.0 tools) holds its request until then.
// OpenSSL sends its tickets after the Finished, which acknowledges it.
func ackFinished(c net.Conn) {
	switch c.(type) {
	case *net.TCPConn, *dispatcher.HandedConn:
	default:
		return // a unix socket: no delayed ACKs
	}
	if rc, err := c.(syscall.Conn).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { dispatcher.QuickAck(int(fd)) }) // best effort
	}
}

// readProxyHeader reads the PROXY header a socket marked accept-proxy must
// start with, within timeout. A missing or malformed header is an error.
func readProxyHeader(c net.Conn, timeout time.Duration) (*proxyproto.Conn, error) {
	pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(timeout))
	// A zero-length read processes the header and reports its error. A
	// valid header followed by the end of the stream is not a header error:
	// the connection simply ends after it.
	if _, err := pc.Read(nil); err != nil && (!errors.Is(err, io.EOF) || pc.ProxyHeader() == nil) {
		return nil, fmt.Errorf("read PROXY header: %w", err)
	}
	return pc, nil
}

// slots is a counting limit that can change while in use ("set maxconn").
// A nil *slots is unlimited.
type slots struct {
	mu    sync.Mutex
	used  int
	limit int           // 0 = unlimited
	freed chan struct{} // closed and replaced when a slot frees or the limit grows
}

func newSlots(n int) *slots {
	return &slots{limit: max(n, 0), freed: make(chan struct{})}
}

// setLimit changes the limit; connections above a lowered limit finish,
// new ones wait until the count is below it.
func (s *slots) setLimit(n int) {
	s.mu.Lock()
	s.limit = max(n, 0)
	s.wake()
	s.mu.Unlock()
}

// currentLimit is the limit now (0 = unlimited).
func (s *slots) currentLimit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

func (s *slots) wake() {
	close(s.freed)
	s.freed = make(chan struct{})
}

func (s *slots) release() {
	s.mu.Lock()
	s.used--
	if s.limit > 0 && s.used == s.limit-1 {
		s.wake()
	}
	s.mu.Unlock()
}

// acquire waits for a slot; it returns false if stop closes first.
func (s *slots) acquire(stop <-chan struct{}) bool {
	for {
		s.mu.Lock()
		if s.limit == 0 || s.used < s.limit {
			s.used++
			s.mu.Unlock()
			return true
		}
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-freed:
		case <-stop:
			return false
		}
	}
}
