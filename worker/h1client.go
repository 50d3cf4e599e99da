package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sluicelb/sluice/dispatcher"
)

// h1Client is the RoundTripper of the common case: a request without a
// body, that may be replayed, to a pooled HTTP/1.1 server. It writes the
// request and reads the response on the caller's goroutine over an idle
// connection of its pool. http.Transport, which serves everything else,
// runs two goroutines per server connection and hands each request and
// response between them over channels: most of its cost for small
// responses.
type h1Client struct {
	dial          func(ctx context.Context, network, hostport string) (net.Conn, error)
	headerTimeout time.Duration // ResponseHeaderTimeout; 0 = none
	idleTimeout   time.Duration
	maxIdle       int   // per server
	maxHead       int64 // bytes of response heads, 1xx included

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by dial host, the last used last
	timer  *time.Timer          // closes connections idle for idleTimeout
	closed bool                 // the process stops: pool nothing more
}

// h1Max1xx is http.Transport's limit, kept for the same behaviour.
const h1Max1xx = 5

// h1Conn is a server connection with its buffers.
type h1Conn struct {
	conn      net.Conn
	src       limitedConn
	br        *bufio.Reader
	bw        *bufio.Writer
	host      string
	idleSince time.Time
}

// limitedConn bounds what the bufio reader may take from the connection
// while it reads a response head.
type limitedConn struct {
	net.Conn
	r    io.Reader // the connection, or its raw reader
	left int64
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("server response head too large")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func newH1Client(dial func(ctx context.Context, network, hostport string) (net.Conn, error), headerTimeout time.Duration) *h1Client {
	return &h1Client{dial: dial, headerTimeout: headerTimeout, idleTimeout: 90 * time.Second, maxIdle: 64,
		maxHead: 10 << 20, // http.Transport's default
	}
}

// covers tells whether the lean client can take r: no body (a single
// goroutine cannot read an early response while it writes one), no
// upgrade (net/http hands the tunnel over), and replayable, since an idle
// connection the server has closed is only found out by using it.
func (c *h1Client) covers(r *http.Request) bool {
	return (r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 &&
		len(r.TransferEncoding) == 0 && r.Header.Get("Upgrade") == "" && idempotent(r) && r.URL.Scheme == "http"
}

// RoundTrip sends r over an idle connection, or a new one. A reused
// connection that fails before the response starts is dropped, and the
// request tried again, as http.Transport does.
func (c *h1Client) RoundTrip(r *http.Request) (*http.Response, error) {
	host := r.URL.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "80") // as http.Transport dials
	}
	for {
		pc, reused, err := c.get(r.Context(), host)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(pc, r)
		if err == nil {
			return resp, nil
		}
		pc.conn.Close()
		if r.Context().Err() != nil {
			return nil, r.Context().Err()
		}
		var retry errRetry
		if !reused || !errors.As(err, &retry) {
			return nil, err
		}
	}
}

// errRetry is a failure on a reused connection before any byte of the
// response came.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

// exchange writes r and reads the head of its response.
func (c *h1Client) exchange(pc *h1Conn, r *http.Request) (*http.Response, error) {
	// The client going away cuts the exchange, and later the body.
	stop := context.AfterFunc(r.Context(), func() { pc.conn.SetDeadline(time.Unix(1, 0)) })
	resp, err := c.send(pc, r)
	if err != nil {
		stop()
		return nil, err
	}
	resp.Body = &h1Body{body: resp.Body, pc: pc, c: c, stop: stop, reuse: !resp.Close && !r.Close}
	return resp, nil
}

// send writes r and reads the head of its final response, 1xx skipped.
func (c *h1Client) send(pc *h1Conn, r *http.Request) (*http.Response, error) {
	if err := r.Write(pc.bw); err != nil {
		return nil, errRetry{fmt.Errorf("writing the request to the server: %w", err)}
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, errRetry{fmt.Errorf("writing the request to the server: %w", err)}
	}
	if c.headerTimeout > 0 {
		pc.conn.SetReadDeadline(time.Now().Add(c.headerTimeout))
	}
	pc.src.left = c.maxHead
	if _, err := pc.br.Peek(1); err != nil {
		err = fmt.Errorf("reading the response from the server: %w", err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err // timeout server: no second try
		}
		return nil, errRetry{err}
	}
	trace := httptrace.ContextClientTrace(r.Context())
	var resp *http.Response
	for n := 0; ; n++ {
		var err error
		resp, err = http.ReadResponse(pc.br, r)
		if err != nil {
			return nil, fmt.Errorf("reading the response from the server: %w", err)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 {
			break
		}
		if code == http.StatusSwitchingProtocols {
			// Only requests without Upgrade come here.
			return nil, errors.New("server switched protocols without an upgrade request")
		}
		if n == h1Max1xx {
			return nil, errors.New("too many 1xx informational responses from the server")
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
	pc.src.left = math.MaxInt64
	if c.headerTimeout > 0 {
		pc.conn.SetReadDeadline(time.Time{})
	}
	return resp, nil
}

// h1Body is a response body: its connection goes back to the pool once
// the body was read to its end, and is closed if the body is left before.
type h1Body struct {
	body  io.ReadCloser
	pc    *h1Conn
	c     *h1Client
	stop  func() bool
	reuse bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
		err = fmt.Errorf("reading the response body from the server: %w", err)
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: to the pool after a complete body
// on a connection that stays open, else closed.
func (b *h1Body) finish(complete bool) {
	if b.done {
		return
	}
	b.done = true
	// A deadline set by a cancellation that raced with the end stays on
	// the connection: such a connection is not reused.
	cancelled := !b.stop()
	if complete && b.reuse && !cancelled && b.pc.br.Buffered() == 0 {
		b.c.put(b.pc)
		return
	}
	b.pc.conn.Close()
}

// get returns an idle connection to host, or dials one.
func (c *h1Client) get(ctx context.Context, host string) (pc *h1Conn, reused bool, err error) {
	c.mu.Lock()
	if l := c.idle[host]; len(l) > 0 {
		pc = l[len(l)-1]
		l[len(l)-1] = nil
		c.idle[host] = l[:len(l)-1]
	}
	c.mu.Unlock()
	if pc != nil {
		if time.Since(pc.idleSince) < c.idleTimeout {
			return pc, true, nil
		}
		pc.conn.Close()
	}
	conn, err := c.dial(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	pc = &h1Conn{conn: conn, host: host}
	pc.src.Conn = conn
	pc.src.r = conn
	var w io.Writer = conn
	if sc := plainSocket(conn); sc != nil {
		if x, err := dispatcher.NewRawIO(sc); err == nil {
			pc.src.r, w = x, x
		}
	}
	pc.src.left = math.MaxInt64
	pc.br = bufio.NewReader(&pc.src)
	pc.bw = bufio.NewWriter(w)
	return pc, false, nil
}

// put pools a connection whose response was read in full.
func (c *h1Client) put(pc *h1Conn) {
	pc.idleSince = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.idle[pc.host]
	if c.closed || len(l) >= c.maxIdle {
		pc.conn.Close()
		return
	}
	if c.idle == nil {
		c.idle = make(map[string][]*h1Conn)
	}
	c.idle[pc.host] = append(l, pc)
	if c.timer == nil {
		c.timer = time.AfterFunc(c.idleTimeout, c.prune)
	}
}

// prune closes the connections idle for idleTimeout, drops hosts left
// without any (send-proxy servers get a host per client), and comes back
// while some are left.
func (c *h1Client) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	left := false
	for host, l := range c.idle {
		n := 0
		for n < len(l) && time.Since(l[n].idleSince) >= c.idleTimeout {
			l[n].conn.Close()
			n++
		}
		if n == len(l) {
			delete(c.idle, host)
			continue
		}
		c.idle[host] = append(l[:0], l[n:]...)
		left = true
	}
	c.timer = nil
	if left {
		c.timer = time.AfterFunc(c.idleTimeout, c.prune)
	}
}

// closeIdle closes the idle connections, and those that become idle later:
// the process stops.
func (c *h1Client) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for host, l := range c.idle {
		for _, pc := range l {
			pc.conn.Close()
		}
		delete(c.idle, host)
	}
}

// plainSocket returns conn when it is a TCP or unix socket of its own
// (not TLS, not a wrapper), whose reads and writes may go raw.
func plainSocket(conn net.Conn) syscall.Conn {
	switch c := conn.(type) {
	case *net.TCPConn:
		return c
	case *net.UnixConn:
		return c
	}
	return nil
}
