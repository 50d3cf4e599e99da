package worker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// h1guard sits between a client connection and the HTTP/1 server
// (h1server.go). It reads every request head and body framing first, with
// stricter rules than net/http's parser (see parseHead and chunkParser),
// and passes on only what it has checked. A request it refuses never
// reaches the server: in its place the server reads a request for a
// random path known only to this guard, which the handler answers with
// the error page (400, or 408 when the head does not arrive in time) and
// "Connection: close". So the error goes out after the answers to the
// requests before it, in order, written like every other response. A
// connection with HTTP/2's preface passes unchecked to net/http's HTTP/2
// server.
type h1guard struct {
	net.Conn
	lim h1Limits
	// first bounds the first request's head; request bounds a later
	// head from its first byte; body bounds each read of a body (the
	// client timeout). Zero means no limit.
	first, request, body time.Duration
	started              time.Time
	rejectPath           string
	log                  *slog.Logger

	buf []byte // read from the connection, not yet returned; nil when empty
	// idle takes the first bytes after a quiet spell, so that a
	// connection waiting for its next request holds no read buffer.
	idle     [512]byte
	rel      int  // buf[:rel] is checked and may be returned
	pos      int  // buf[:pos] is parsed
	reqStart int  // where the head being read starts
	released bool // the current request's head was returned
	state    guardState
	left     int64 // body bytes left, with a Content-Length
	chunks   chunkParser
	upgrade  bool // the current request has an Upgrade header
	requests int
	headAt   time.Time // when the head being read started
	waitAt   time.Time // when the server began waiting for the next request
	// keepAlive bounds that wait (timeout http-keep-alive); 0 = none.
	keepAlive time.Duration
	err       error // returned once buf is drained, in guardBroken

	// The fields above belong to the goroutine calling Read; those below
	// are shared with the handler and with the server's deadline calls.
	mu      sync.Mutex
	status  int           // the status of the refused request
	outer   time.Time     // the server's read deadline
	own     time.Time     // the guard's own deadline for the read in progress
	decided int           // after an Upgrade: 0 not yet, 1 tunnel, 2 not
	closed  bool          // Close was called
	wake    chan struct{} // closed when outer or decided changes, if waiting
	waiting bool          // a Read took wake to wait on it
}

type guardState int

const (
	guardHead    guardState = iota // reading a request head
	guardLength                    // in a body with a Content-Length
	guardChunked                   // in a chunked body
	guardUpgrade                   // after a request with Upgrade, until its response says whether it became a tunnel
	guardPass                      // a tunnel or HTTP/2: bytes pass unchecked
	guardEnd                       // a request was refused: nothing more is read
	guardBroken                    // a body went wrong after its head was passed on
)

// h2Preface starts an HTTP/2 connection with prior knowledge.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func newH1Guard(c net.Conn, lim h1Limits, first, request, body time.Duration, log *slog.Logger) *h1guard {
	var token [16]byte
	rand.Read(token[:])
	return &h1guard{
		Conn: c, lim: lim, first: first, request: request, body: body, log: log,
		started:    time.Now(),
		rejectPath: "/.sluice-refused/" + hex.EncodeToString(token[:]),
		wake:       make(chan struct{}),
	}
}

// Read returns checked bytes, reading and checking more when it has none.
func (g *h1guard) Read(p []byte) (int, error) {
	if err := g.ready(); err != nil {
		return 0, err
	}
	if g.rel == 0 {
		return g.Conn.Read(p) // passing bytes unchecked
	}
	n := copy(p, g.buf[:g.rel])
	g.consume(n)
	return n, nil
}

// next waits, without a read buffer, until the next request can be read;
// h2 tells that the connection starts with HTTP/2's preface instead.
// When this is not the first request, it waits at most the idle timeout
// (timeout http-keep-alive), from now.
func (g *h1guard) next() (h2 bool, err error) {
	g.waitAt = time.Now()
	if err := g.ready(); err != nil {
		return false, err
	}
	return g.state == guardPass && g.requests == 0, nil
}

// ready waits until there are checked bytes to return, or until bytes
// pass unchecked (rel is 0 then).
func (g *h1guard) ready() error {
	for g.rel == 0 {
		switch g.state {
		case guardBroken:
			return g.err
		case guardEnd, guardUpgrade:
			// Nothing to give until the handler decides (upgrade) or
			// the server closes the connection (end): wait like a
			// silent client, until Close or the server's deadline.
			tunnel, err := g.wait()
			if err != nil {
				return err
			}
			if tunnel {
				g.state = guardPass
			} else {
				g.state = guardHead
				g.startHead()
				g.parse()
			}
			continue
		case guardPass:
			if len(g.buf) == 0 {
				return nil
			}
			g.rel = len(g.buf)
			continue
		}
		if err := g.fill(); err != nil {
			return err
		}
	}
	return nil
}

// Reads from the connection ask for readSize bytes, and at least minRead.
const (
	readSize = 16 << 10
	minRead  = 4 << 10
)

// readBuffers are the guards' read buffers, held only while a connection
// has bytes pending.
var readBuffers = sync.Pool{New: func() any { return new([readSize]byte) }}

// consume drops n returned bytes from the front of buf.
func (g *h1guard) consume(n int) {
	copy(g.buf, g.buf[n:])
	g.buf = g.buf[:len(g.buf)-n]
	if len(g.buf) == 0 {
		// Between requests the buffer goes back to the pool: most
		// keep-alive connections wait far longer than they read.
		if cap(g.buf) == readSize {
			readBuffers.Put((*[readSize]byte)(g.buf[:readSize]))
		}
		g.buf = nil
	}
	g.rel -= n
	g.pos -= n
	g.reqStart = max(g.reqStart-n, 0)
}

// wait blocks until, after an Upgrade, the handler says whether the
// connection became a tunnel, or until the server's deadline passes.
func (g *h1guard) wait() (tunnel bool, err error) {
	for {
		g.mu.Lock()
		decided, outer, wake := g.decided, g.outer, g.wake
		g.waiting = true
		if g.closed {
			g.mu.Unlock()
			return false, net.ErrClosed
		}
		if g.state == guardUpgrade && decided != 0 {
			g.decided = 0
			g.mu.Unlock()
			return decided == 1, nil
		}
		g.mu.Unlock()
		if err := sleepUntil(outer, wake); err != nil {
			return false, err
		}
	}
}

// sleepUntil waits for wake, or for the deadline (zero: none).
func sleepUntil(deadline time.Time, wake <-chan struct{}) error {
	if deadline.IsZero() {
		<-wake
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

// SetReadDeadline is the server's deadline: it applies on top of the
// guard's own, and wakes a waiting Read.
func (g *h1guard) SetReadDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.outer = t
	g.signal()
	return g.Conn.SetReadDeadline(earliest(t, g.own))
}

// Close closes the connection and wakes a waiting Read.
func (g *h1guard) Close() error {
	g.mu.Lock()
	g.closed = true
	g.signal()
	g.mu.Unlock()
	return g.Conn.Close()
}

// SetDeadline is SetReadDeadline plus the write deadline.
func (g *h1guard) SetDeadline(t time.Time) error {
	if err := g.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return g.SetReadDeadline(t)
}

// signal wakes waiting Reads; g.mu is held. Servers set deadlines
// several times per request, and no Read waits then: no new channel.
func (g *h1guard) signal() {
	if !g.waiting {
		return
	}
	g.waiting = false
	close(g.wake)
	g.wake = make(chan struct{})
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// upgraded is told, once the response to a request with Upgrade is known,
// whether the connection became a tunnel.
func (g *h1guard) upgraded(yes bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.decided != 0 {
		return
	}
	g.decided = 2
	if yes {
		g.decided = 1
	}
	g.signal()
}

// refused returns the status to answer when r is the stand-in for a
// refused request, 0 otherwise.
func (g *h1guard) refused(path string) int {
	if path != g.rejectPath {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status
}

// fill reads from the connection once, within the deadline that applies,
// and checks what came.
func (g *h1guard) fill() error {
	own := g.deadline()
	g.mu.Lock()
	g.own = own
	// An error here (a connection already closed) shows in the Read.
	g.Conn.SetReadDeadline(earliest(g.outer, own))
	g.mu.Unlock()
	// Read into buf's spare room (a buffer while a request is read, like
	// HAProxy's tune.bufsize), or into idle when nothing is pending.
	var n int
	var err error
	if len(g.buf) == 0 {
		n, err = g.Conn.Read(g.idle[:])
		if n > 0 {
			g.buf = append(readBuffers.Get().(*[readSize]byte)[:0], g.idle[:n]...)
		}
	} else {
		if cap(g.buf)-len(g.buf) < minRead {
			g.buf = append(make([]byte, 0, len(g.buf)+readSize), g.buf...)
		}
		n, err = g.Conn.Read(g.buf[len(g.buf):cap(g.buf)])
		g.buf = g.buf[:len(g.buf)+n]
	}
	if n > 0 {
		if g.state == guardHead && len(g.buf)-n == g.reqStart {
			g.headAt = time.Now()
		}
		g.parse()
	}
	if err == nil {
		return nil
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	g.mu.Lock()
	outer := g.outer
	g.mu.Unlock()
	now := time.Now()
	if own.IsZero() || now.Before(own) || !outer.IsZero() && !now.Before(outer) {
		return err // the server's deadline, for the server to handle
	}
	if g.state != guardHead {
		return err // a body that does not come in time: the request fails
	}
	if len(g.buf) > g.reqStart || g.requests == 0 {
		g.refuse(408, "timeout http-request")
		return nil
	}
	return io.EOF
}

// deadline is the guard's own deadline for the next read.
func (g *h1guard) deadline() time.Time {
	switch {
	case g.state != guardHead:
		if g.body > 0 {
			return time.Now().Add(g.body)
		}
	case g.requests == 0 && g.first > 0:
		return g.started.Add(g.first)
	case len(g.buf) > g.reqStart && g.request > 0:
		return g.headAt.Add(g.request)
	case g.keepAlive > 0 && !g.waitAt.IsZero():
		// Waiting for a later request.
		return g.waitAt.Add(g.keepAlive)
	}
	return time.Time{}
}

// parse checks the bytes read so far and moves rel past those that may
// go to the server.
func (g *h1guard) parse() {
	for g.pos < len(g.buf) {
		switch g.state {
		case guardHead:
			if !g.parseHead() {
				return
			}
		case guardLength:
			n := min(g.left, int64(len(g.buf)-g.pos))
			g.pos += int(n)
			g.left -= n
			if g.left == 0 {
				g.endRequest()
			}
		case guardChunked:
			n, err := g.chunks.feed(g.buf[g.pos:])
			g.pos += n
			if err != nil {
				g.bodyError(err)
				return
			}
			if g.chunks.done() {
				g.endRequest()
			}
		default:
			g.rel = g.pos
			return
		}
	}
	g.release()
}

// release lets the server have what is checked: all of it, but a head still
// incomplete.
func (g *h1guard) release() {
	if g.state == guardHead {
		g.rel = g.reqStart
		return
	}
	g.rel = g.pos
	g.released = true
}

// parseHead checks the head at reqStart if it is complete; it returns
// false when it must wait for more bytes or the request was refused.
func (g *h1guard) parseHead() bool {
	b := g.buf[g.reqStart:]
	if g.requests == 0 && g.reqStart == 0 && len(b) > 0 && b[0] == 'P' {
		n := min(len(b), len(h2Preface))
		if string(b[:n]) == h2Preface[:n] {
			if n < len(h2Preface) {
				return false
			}
			// HTTP/2 with prior knowledge: net/http's HTTP/2 server
			// checks its frames.
			g.state = guardPass
			g.pos, g.rel = len(g.buf), len(g.buf)
			return false
		}
	}
	end := headEnd(b)
	if end < 0 {
		if len(b) > g.lim.maxHead {
			g.refuse(400, "request head larger than tune.bufsize allows")
		} else {
			g.release()
		}
		return false
	}
	if end > g.lim.maxHead {
		g.refuse(400, "request head larger than tune.bufsize allows")
		return false
	}
	h, err := parseHead(b[:end], g.lim)
	if err != nil {
		g.refuse(400, err.Error())
		return false
	}
	g.requests++
	g.pos = g.reqStart + end
	switch {
	case h.chunked:
		g.state, g.chunks = guardChunked, chunkParser{lim: g.lim}
	case h.length > 0:
		g.state, g.left = guardLength, h.length
	default:
		g.endRequestUpgrade(h.upgrade)
		return g.state == guardHead
	}
	g.upgrade = h.upgrade
	return true
}

// endRequest is called when a request's body ends.
func (g *h1guard) endRequest() { g.endRequestUpgrade(g.upgrade) }

func (g *h1guard) endRequestUpgrade(upgrade bool) {
	g.upgrade = false
	if upgrade {
		// Hold what follows until the response says whether the
		// connection is now a tunnel.
		g.state = guardUpgrade
		g.rel = g.pos
		g.released = true
		g.mu.Lock()
		g.decided = 0
		g.mu.Unlock()
		return
	}
	g.state = guardHead
	g.startHead()
}

// startHead starts reading the next head at pos.
func (g *h1guard) startHead() {
	g.reqStart = g.pos
	g.released = false
	g.headAt = time.Now()
}

// bodyError handles a bad chunked body: refused like a bad head if its
// head is still held, else the connection fails.
func (g *h1guard) bodyError(err error) {
	if !g.released {
		g.refuse(400, err.Error())
		return
	}
	g.log.Debug("bad request body, connection closed", "client", g.RemoteAddr().String(), "err", err)
	g.state, g.err = guardBroken, err
	g.rel = g.pos
}

// refuse replaces the request at reqStart, and all that follows, with the
// stand-in request for the error page.
func (g *h1guard) refuse(status int, why string) {
	g.log.Debug("request refused", "client", g.RemoteAddr().String(), "status", status, "why", why)
	g.mu.Lock()
	g.status = status
	g.mu.Unlock()
	g.buf = append(g.buf[:g.reqStart], "GET "+g.rejectPath+" HTTP/1.1\r\nHost: sluice.invalid\r\nConnection: close\r\n\r\n"...)
	g.pos, g.rel = len(g.buf), len(g.buf)
	g.state = guardEnd
}
