package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelb/sluice/compression"
)

// serveH1 serves the HTTP/1 requests of one client connection, one after
// the other, on its own goroutine. net/http's server is not used for
// HTTP/1: it keeps a 4 KiB reader and a 4 KiB writer per connection for
// the connection's life and runs a background read and several deadline
// changes per request. Here a connection waiting for its next request
// holds no buffer (the guard reads the first bytes into its own small
// array), and a request costs no goroutine of its own. A connection that
// starts with HTTP/2's preface goes to net/http's server, which serves
// HTTP/2.
func (h *httpServer) serveH1(g *h1guard, ci *connInfo) { h.serveH1With(h, g, ci) }

// serveH1With is serveH1 with another handler, for tests.
func (h *httpServer) serveH1With(handler http.Handler, g *h1guard, ci *connInfo) {
	c := &h1conn{h: h, handler: handler, g: g, ci: ci}
	// ServerContextKey: ReverseProxy aborts a response cut short (a server
	// failing mid-body) with a panic only when it sees a server there;
	// otherwise it returns as if the body were whole.
	c.ctx = context.WithValue(context.Background(), http.ServerContextKey, h.srv)
	c.ctx = context.WithValue(c.ctx, http.LocalAddrContextKey, g.LocalAddr())
	c.ctx = context.WithValue(c.ctx, connKey, ci)
	c.remote = g.RemoteAddr().String()
	if keep := c.serve(); keep {
		return // net/http has it, or a handler took it over
	}
	if c.linger {
		c.uncork()
		lingerClose(g.Conn)
	}
	g.Close()
	c.end()
}

// corker is a client socket that can hold what is written until it
// closes (dispatcher.HandedConn).
type corker interface {
	Cork()
	Uncork() error
}

// cork holds the end of a response after which the connection closes:
// with the TLS close_notify that follows, it goes out in one write when
// the socket closes, one segment instead of two (and one wakeup of the
// client).
func (c *h1conn) cork() {
	if c.ci.socket != nil {
		c.ci.socket.Cork()
	}
}

// uncork sends what cork held: the connection does not close at once.
func (c *h1conn) uncork() {
	if c.ci.socket != nil {
		c.ci.socket.Uncork()
	}
}

// Closing a socket with unread input makes the kernel send a reset, and
// many clients (Windows' among them) drop a response they have not read
// yet when it comes. So when
// the client may still be sending (a body left unread, a refused
// request), the server reads and drops its input for a while first.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

func lingerClose(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(c, lingerBytes))
}

// h1conn is one client connection served by serveH1.
type h1conn struct {
	h       *httpServer
	handler http.Handler
	g       *h1guard
	ci      *connInfo
	ctx     context.Context // the requests' context: the local address and ci
	remote  string
	// linger: the connection closes while the client may still be
	// sending.
	linger bool
	// tunnel: a handler took the connection over; writes are its own.
	tunnel bool
	// br and bw are pooled: nil while the connection waits for a request.
	br *bufio.Reader
	bw *bufio.Writer
}

// Pools of the connections' buffers, shared by all servers of a process.
var (
	h1Readers sync.Pool
	h1Writers sync.Pool
)

const h1BufSize = 4 << 10

// serve reads and answers requests until the connection should close;
// keep tells that it must stay open (HTTP/2, or taken over by a handler).
func (c *h1conn) serve() (keep bool) {
	defer c.release()
	for n := 0; ; n++ {
		if n > 0 && c.br == nil {
			c.ci.idle.Store(true)
			if c.h.stopping.Load() {
				// shutdown may have looked before idle was set.
				return false
			}
		}
		if c.br == nil {
			// Nothing pipelined is buffered: wait for the guard.
			h2, err := c.g.next()
			c.ci.idle.Store(false)
			if err != nil {
				return false
			}
			if h2 {
				// net/http's server reads the preface the guard holds.
				return c.h.ln.push(c.g)
			}
			c.take()
		}
		req, err := http.ReadRequest(c.br)
		if err != nil {
			// The guard passes only heads it has checked: this is the
			// connection failing.
			c.h.log.Debug("reading a request", "client", c.remote, "err", err)
			return false
		}
		again, hijacked := c.answer(req)
		if hijacked {
			c.br, c.bw = nil, nil // the handler's now
			c.end()
			return true
		}
		if !again {
			return false
		}
		if c.br.Buffered() == 0 {
			c.release()
		}
	}
}

// take gets buffers for a request.
func (c *h1conn) take() {
	c.br, _ = h1Readers.Get().(*bufio.Reader)
	if c.br == nil {
		c.br = bufio.NewReaderSize(c.g, h1BufSize)
	} else {
		c.br.Reset(c.g)
	}
	c.bw, _ = h1Writers.Get().(*bufio.Writer)
	if c.bw == nil {
		c.bw = bufio.NewWriterSize(c, h1BufSize)
	} else {
		c.bw.Reset(c)
	}
}

// Write is where the responses' bytes go: each write to the client must
// make progress within timeout client, as in HAProxy, so that a client
// that stops reading does not hold its request (and its server
// connection) forever.
func (c *h1conn) Write(p []byte) (int, error) {
	if c.h.body > 0 && !c.tunnel {
		c.g.SetWriteDeadline(time.Now().Add(c.h.body))
	}
	return c.g.Write(p)
}

// release gives the buffers back while the connection waits.
func (c *h1conn) release() {
	if c.br == nil {
		return
	}
	c.br.Reset(nil)
	c.bw.Reset(nil)
	h1Readers.Put(c.br)
	h1Writers.Put(c.bw)
	c.br, c.bw = nil, nil
}

// end is called once the connection is no longer this server's.
func (c *h1conn) end() {
	c.h.conns.Delete(c.g)
	c.ci.close()
	c.ci.done()
}

// answer runs the handler for req. again tells whether the connection may
// carry another request, hijacked that a handler took it over.
func (c *h1conn) answer(req *http.Request) (again, hijacked bool) {
	req = req.WithContext(c.ctx)
	req.RemoteAddr = c.remote
	req.TLS = c.ci.tls
	w := &h1response{c: c, req: req, header: make(http.Header), length: -1}
	if req.ContentLength != 0 {
		w.body = &h1body{w: w, src: req.Body}
		req.Body = w.body
	}
	if expect := req.Header["Expect"]; len(expect) > 0 {
		if !compression.HasToken(expect, "100-continue") {
			// Like net/http: an expectation Sluice does not know.
			w.header.Set("Connection", "close")
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			c.linger = w.body != nil
			return false, false
		}
		if w.body != nil {
			w.body.owed = req.ProtoAtLeast(1, 1)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			// ReverseProxy aborts with http.ErrAbortHandler when a
			// server fails in the middle of a body: the response is
			// cut, so the connection closes.
			if v != http.ErrAbortHandler {
				c.h.log.Error("panic serving a request", "client", c.remote, "panic", v)
			}
			if w.headSent && !w.hijacked {
				w.flush() // what went out so far: the client sees it cut
			}
			again, hijacked = false, w.hijacked
		}
	}()
	c.handler.ServeHTTP(w, req)
	if w.hijacked {
		return false, true
	}
	if err := w.finish(); err != nil {
		return false, false
	}
	c.linger = w.closeAfter && (w.body != nil && !w.body.eof || c.g.state == guardEnd)
	return !w.closeAfter, false
}

// h1response is the http.ResponseWriter of serveH1. The head is written
// when the framing is known: at once when the handler sets a
// Content-Length or the response has no body; otherwise after a first
// 2 KiB of body, a flush or the end, so that a short response gets a
// Content-Length rather than chunks, as with net/http.
type h1response struct {
	c        *h1conn
	req      *http.Request
	header   http.Header
	body     *h1body // nil without a body
	status   int     // 0 until WriteHeader
	headSent bool
	length   int64 // the Content-Length, -1 when none
	written  int64 // body bytes written
	chunked  bool
	noBody   bool // HEAD, or a status without a body
	pending  []byte
	// closeAfter: the connection closes after this response.
	closeAfter bool
	hijacked   bool
	failed     error // a write to the client failed
}

// h1PendingMax is how much body waits for the head to be written.
const h1PendingMax = 2 << 10

func (w *h1response) Header() http.Header { return w.header }

func (w *h1response) WriteHeader(code int) {
	if w.status != 0 || w.hijacked {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An interim response goes out at once, with the headers set
		// so far.
		w.writeStatus(code)
		w.writeHeader(w.header, nil)
		w.c.bw.WriteString("\r\n")
		w.flush()
		if code == http.StatusContinue && w.body != nil {
			w.body.owed = false
		}
		return
	}
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			w.header.Del("Content-Length")
		}
	}
	w.noBody = w.req.Method == http.MethodHead || !bodyAllowed(code)
	if w.length >= 0 || w.noBody || code == http.StatusSwitchingProtocols {
		w.writeHead(false)
	}
}

// bodyAllowed tells whether a response with this status may have a body.
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

func (w *h1response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.req.Method == http.MethodHead && bodyAllowed(w.status) {
			return len(p), nil // HEAD: the handler may write, nothing goes out
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	if !w.headSent {
		if len(w.pending)+len(p) <= h1PendingMax {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.writeHead(false)
	}
	return w.writeBody(p)
}

// writeBody writes p after the head, framed.
func (w *h1response) writeBody(p []byte) (int, error) {
	if w.failed != nil {
		return 0, w.failed
	}
	if len(p) == 0 {
		return 0, nil
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.failed = err
	}
	return n, err
}

// FlushError writes the head and what is buffered; http.ResponseController
// and ReverseProxy find it.
func (w *h1response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.writeHead(false)
	}
	return w.flush()
}

// Flush is FlushError for callers that only know http.Flusher.
func (w *h1response) Flush() { _ = w.FlushError() }

func (w *h1response) flush() error {
	if w.failed != nil {
		return w.failed
	}
	if err := w.c.bw.Flush(); err != nil {
		w.failed = err
	}
	return w.failed
}

// Hijack hands the connection over (ReverseProxy does it to tunnel a
// protocol switch). The guard holds what the client sends after the
// request until the handler says the connection switched, so the reader
// holds nothing past it.
func (w *h1response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.headSent && w.status != http.StatusSwitchingProtocols {
		return nil, nil, errors.New("hijack after the response head was written")
	}
	w.hijacked = true
	w.c.tunnel = true
	w.c.g.SetWriteDeadline(time.Time{})
	return w.c.g, bufio.NewReadWriter(w.c.br, w.c.bw), nil
}

// SetReadDeadline and SetWriteDeadline let http.ResponseController reach
// the connection.
func (w *h1response) SetReadDeadline(t time.Time) error  { return w.c.g.SetReadDeadline(t) }
func (w *h1response) SetWriteDeadline(t time.Time) error { return w.c.g.SetWriteDeadline(t) }

// finish ends the response once the handler has returned.
func (w *h1response) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.writeHead(true)
	}
	if w.chunked && w.failed == nil {
		w.c.bw.WriteString("0\r\n")
		w.writeTrailers()
		w.c.bw.WriteString("\r\n")
	}
	if w.length >= 0 && w.written < w.length && !w.noBody {
		// The body is cut short: the client can only tell by the
		// connection closing.
		w.closeAfter = true
	}
	if w.closeAfter {
		w.c.cork()
	}
	return w.flush()
}

// writeHead writes the status line and the headers, choosing the framing
// of the body. last tells that the handler has returned: all the body is
// pending.
func (w *h1response) writeHead(last bool) {
	w.headSent = true
	h := w.header
	var extra []string // "Name: value" lines to add
	trailers := len(h["Trailer"]) > 0
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			trailers = true
		}
	}
	te := h.Get("Transfer-Encoding")
	if last && w.length < 0 && !trailers && te == "" && !w.noBody {
		w.length = int64(len(w.pending))
		extra = append(extra, "Content-Length: "+strconv.Itoa(len(w.pending)))
	}
	req := w.req
	w.closeAfter = req.Close
	if !req.ProtoAtLeast(1, 1) && !req.Close {
		// An HTTP/1.0 client asked for keep-alive: it needs a length.
		if w.length >= 0 || w.noBody {
			if _, ok := h["Connection"]; !ok {
				extra = append(extra, "Connection: keep-alive")
			}
		} else {
			w.closeAfter = true
		}
	}
	if compression.HasToken(h["Connection"], "close") || w.c.h.stopping.Load() {
		w.closeAfter = true
	}
	if w.body != nil && !w.closeAfter && !w.body.rest(256<<10) {
		// What is left of the request body is read before answering,
		// so that the next request can be read, and a client that
		// sends its whole request before reading does not block.
		// Beyond 256 KiB the connection closes instead, as with
		// net/http.
		w.closeAfter = true
	}
	switch {
	case w.noBody:
		h.Del("Transfer-Encoding")
		if !bodyAllowed(w.status) {
			h.Del("Content-Length")
		}
	case w.length >= 0:
		h.Del("Transfer-Encoding")
	case req.ProtoAtLeast(1, 1) && te != "identity":
		w.chunked = true
		h.Del("Transfer-Encoding")
		h.Del("Content-Length")
		extra = append(extra, "Transfer-Encoding: chunked")
	default:
		// The body ends when the connection closes.
		h.Del("Transfer-Encoding")
		w.closeAfter = true
	}
	if w.closeAfter && w.status != http.StatusSwitchingProtocols && !compression.HasToken(h["Connection"], "close") {
		h.Del("Connection")
		if req.ProtoAtLeast(1, 1) {
			extra = append(extra, "Connection: close")
		}
	}
	w.writeStatus(w.status)
	w.writeHeader(h, extra)
	w.c.bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = nil
		w.writeBody(p)
	}
}

func (w *h1response) writeStatus(code int) {
	bw := w.c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code " + strconv.Itoa(code))
	}
	bw.WriteString("\r\n")
}

// writeHeader writes h (but the announced trailers' values) and extra.
func (w *h1response) writeHeader(h http.Header, extra []string) {
	bw := w.c.bw
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	for _, line := range extra {
		bw.WriteString(line)
		bw.WriteString("\r\n")
	}
}

// writeTrailers writes the trailer fields of a chunked body: those the
// head announced in Trailer, and those set with http.TrailerPrefix.
func (w *h1response) writeTrailers() {
	h := w.header
	for _, list := range h["Trailer"] {
		for name := range strings.SplitSeq(list, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			for _, v := range h[name] {
				writeField(w.c.bw, name, v)
			}
		}
	}
	for k, vs := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vs {
				writeField(w.c.bw, name, v)
			}
		}
	}
}

// writeField writes one header line. Line breaks in a value become
// spaces, as net/http does, so that no value can add lines of its own.
func writeField(bw *bufio.Writer, name, value string) {
	bw.WriteString(name)
	bw.WriteString(": ")
	if strings.ContainsAny(value, "\r\n") {
		value = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(value)
	}
	bw.WriteString(strings.TrimSpace(value))
	bw.WriteString("\r\n")
}

// h1body is the body of a request. Closing it does not read what is
// left: the connection decides, after the handler, whether to read the
// rest (up to 256 KiB) for the next request or to close.
type h1body struct {
	w   *h1response
	src io.ReadCloser
	// owed: the client expects 100 Continue, sent at the first read
	// unless the response has started.
	owed        bool
	eof, closed bool
}

func (b *h1body) Read(p []byte) (int, error) {
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.eof:
		return 0, io.EOF
	}
	if b.owed {
		b.owed = false
		w := b.w
		if w.headSent || w.hijacked {
			return 0, errors.New("request body read after the response started")
		}
		w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	n, err := b.src.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *h1body) Close() error {
	b.closed = true
	return nil
}

// rest reads what is left of the body, up to limit bytes; it tells
// whether the body is now read to its end.
func (b *h1body) rest(limit int64) bool {
	if b.eof {
		return true
	}
	if b.owed {
		// The client waits for a 100 Continue that will not come: it
		// may still send the body, or the next request.
		return false
	}
	_, err := io.CopyN(io.Discard, b.src, limit+1)
	if err == io.EOF {
		b.eof = true
	}
	return b.eof
}
