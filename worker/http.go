package worker

import (
	"context"
	stdtls "crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelb/sluice/accesslog"
	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/dispatcher"
	"github.com/sluicelb/sluice/httprules"
)

// httpServer runs http mode for one proxy: HTTP/1.1 with keep-alive (and
// HTTP/2 when TLS negotiates h2, or with prior knowledge) towards clients,
// pooled keep-alive connections towards servers, one server chosen per
// request. HTTP/1 requests pass through h1guard and are served by
// serveH1 (h1server.go), HTTP/2 by net/http's server; rules and backend
// choice live in httproute.go.
type httpServer struct {
	proxy    *config.Proxy
	routes   *httpRoutes
	alog     *accesslog.Logger
	counters *frontendCounters
	log      *slog.Logger

	srv    *http.Server // HTTP/2
	ln     *connListener
	limits h1Limits
	// firstHead bounds the first request head of a connection; body is
	// timeout client, which bounds each read of a request body and each
	// write of an HTTP/1 response.
	firstHead, nextHead, body time.Duration
	// keepAlive bounds the wait for a later request (timeout
	// http-keep-alive).
	keepAlive time.Duration
	conns     sync.Map // net.Conn -> *connInfo, from serve until the connection closes
	// stopping: the process stops; responses close their connection.
	stopping atomic.Bool

	// layers compress and cache responses (httplayers.go); nil = none.
	layers *httpLayers
	// bufs are the ReverseProxy's copy buffers: without a pool it
	// allocates 32 KiB per request.
	bufs copyBuffers
}

// copyBuffers is an httputil.BufferPool.
type copyBuffers struct{ pool sync.Pool }

func (b *copyBuffers) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, 32<<10)
}

func (b *copyBuffers) Put(buf []byte) { b.pool.Put(&buf) }

type ctxKey int

const (
	infoKey ctxKey = iota // *requestInfo
	connKey               // *connInfo
)

// requestInfo collects what the access log and the rules need about one
// request.
type requestInfo struct {
	server   *backend.Server
	peer     net.Addr      // the client's address, for send-proxy
	started  time.Time     // when forwarding began
	connect  time.Duration // Tc
	response time.Duration // Tr: from forwarding to the response headers
	err      error
	be       *httpBackend   // the backend chosen, nil before
	txn      *httprules.Txn // what the rules read
	guard    *h1guard       // nil for HTTP/2
	first    bool           // the first request of its client connection
	// term is the log's termination state of an answer Sluice made
	// itself: "PR--" refused or denied, "cR--" request timeout, "LR--"
	// redirect.
	term string
}

// connInfo is what a client connection's requests share.
type connInfo struct {
	done  func() // called once the connection has closed
	guard *h1guard
	// tls is the TLS state of a guarded connection: net/http sees the
	// guard, not the *tls.Conn, so it cannot set Request.TLS itself.
	tls    *stdtls.ConnectionState
	served atomic.Int64
	// socket is the client's socket when it can hold a closing
	// response until the close (see h1conn.cork).
	socket corker
	// idle: an HTTP/1 connection waits for its next request.
	idle atomic.Bool

	mu      sync.Mutex
	private map[*httpBackend]*http.Transport // http-reuse never
}

// transport returns the connection's own transport to hb's servers.
func (ci *connInfo) transport(hb *httpBackend) *http.Transport {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	t, ok := ci.private[hb]
	if !ok {
		if ci.private == nil {
			ci.private = make(map[*httpBackend]*http.Transport)
		}
		t = hb.private()
		ci.private[hb] = t
	}
	return t
}

// close closes the server connections of the client connection.
func (ci *connInfo) close() {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	for _, t := range ci.private {
		t.CloseIdleConnections()
	}
}

func newHTTPServer(p *config.Proxy, cfg *config.Config, backends map[string]*backend.Backend, alog *accesslog.Logger, counters *frontendCounters, log *slog.Logger) (*httpServer, error) {
	h := &httpServer{proxy: p, alog: alog, counters: counters, log: log}
	routes, err := newHTTPRoutes(h, p, cfg, backends)
	if err != nil {
		return nil, err
	}
	h.routes = routes
	h.limits = h1Limits{maxHead: config.HeadRoom(cfg.Global.BufSize), maxHeaders: cfg.Global.MaxHdr}
	requestTimeout := p.Timeouts.HTTPRequest
	if requestTimeout == 0 {
		requestTimeout = p.Timeouts.Client
	}
	idle := p.Timeouts.HTTPKeepAlive
	if idle == 0 {
		idle = requestTimeout
	}
	h.firstHead, h.nextHead, h.body = requestTimeout, requestTimeout, p.Timeouts.Client
	h.keepAlive = idle
	h.ln = newConnListener()
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	h.srv = &http.Server{
		Handler: h,
		// The guard times request heads out itself, to answer 408.
		IdleTimeout: idle,
		ConnState:   h.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			v, _ := h.conns.Load(c) // stored by serve
			return context.WithValue(ctx, connKey, v.(*connInfo))
		},
		Protocols: protocols,
		// HTTP/2 header blocks are bounded like HTTP/1 heads (net/http
		// answers 431 beyond).
		MaxHeaderBytes: h.limits.maxHead,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go h.srv.Serve(h.ln)
	return h, nil
}

// serve serves an accepted (and, with ssl, handshaken) connection c over
// the client's socket raw (c itself without TLS); done is called when the
// connection closes. HTTP/1 connections go through the guard first.
func (h *httpServer) serve(c, raw net.Conn, done func()) {
	tc, _ := c.(*stdtls.Conn)
	if tc != nil && tc.ConnectionState().NegotiatedProtocol == "h2" {
		h.conns.Store(c, &connInfo{done: done})
		if !h.ln.push(c) {
			h.conns.Delete(c)
			c.Close()
			done()
		}
		return
	}
	g := newH1Guard(c, h.limits, h.firstHead, h.nextHead, h.body, h.log)
	g.keepAlive = h.keepAlive
	ci := &connInfo{done: done, guard: g}
	ci.socket, _ = raw.(corker)
	if tc != nil {
		// Set on each request; net/http would set it from a *tls.Conn,
		// but HTTP/2 with prior knowledge sees the guard.
		cs := tc.ConnectionState()
		ci.tls = &cs
	}
	h.conns.Store(g, ci)
	go h.serveH1(g, ci)
}

func (h *httpServer) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	if v, ok := h.conns.LoadAndDelete(c); ok {
		ci := v.(*connInfo)
		ci.close()
		ci.done()
	}
}

// shutdown is for a stopping process: idle keep-alive connections close
// now, busy ones after their current response. Connections still in their
// TLS handshake are served too, so the server keeps taking them.
func (h *httpServer) shutdown() {
	h.stopping.Store(true) // before reading idle: see h1conn.serve
	h.srv.SetKeepAlivesEnabled(false)
	h.conns.Range(func(_, v any) bool {
		if ci := v.(*connInfo); ci.idle.Load() {
			ci.guard.Close()
		}
		return true
	})
	for _, hb := range h.routes.all {
		hb.closeIdle()
	}
}

// ServeHTTP answers what the guard refused, runs the http-request rules,
// picks a backend and a server and forwards the request.
func (h *httpServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	info := &requestInfo{}
	if ci, ok := r.Context().Value(connKey).(*connInfo); ok {
		info.guard, info.first = ci.guard, ci.served.Add(1) == 1
		if r.TLS == nil && ci.tls != nil {
			r = r.WithContext(r.Context()) // a copy, to set TLS on
			r.TLS = ci.tls
		}
		if ci.guard != nil {
			if code := ci.guard.refused(r.URL.Path); code != 0 {
				h.counters.errors.Add(1)
				h.writePage(rw, nil, code)
				info.term = "PR--"
				if code == http.StatusRequestTimeout {
					info.term = "cR--"
				}
				bad := *r
				bad.Method = "" // logged as <BADREQ>, like HAProxy
				h.logRequest(&bad, rw, info, start)
				return
			}
			if r.Header.Get("Upgrade") != "" {
				// Unless the response says otherwise (101), the
				// connection stays HTTP after a request with Upgrade.
				defer ci.guard.upgraded(false)
			}
		}
	}
	if r.ProtoMajor == 2 && tooManyHeaders(r, h.limits.maxHeaders) {
		// The guard counts HTTP/1 header lines; HTTP/2 requests get the
		// same limit here.
		h.counters.errors.Add(1)
		h.writePage(rw, nil, http.StatusBadRequest)
		info.term = "PR--"
		h.logRequest(r, rw, info, start)
		return
	}
	r, hb, reply := h.applyRequestRules(r, info)
	if reply != nil {
		info.term = "PR--" // denied
		if reply.Location != "" || reply.Serve != nil {
			info.term = "LR--" // redirect or return
		}
		h.writeReply(rw, r, hb, reply)
		h.logRequest(r, rw, info, start)
		return
	}
	// Cache hits come after the deny and redirect rules, as in HAProxy.
	x := h.layers.begin(rw, r, hbProxy(hb))
	defer x.end() // a response cut short (ReverseProxy panics) too
	if x.serveCached(r) {
		x.end()
		h.logRequest(r, rw, info, start)
		return
	}
	if hb == nil || hb.backend == nil {
		h.writePage(rw, hb, http.StatusServiceUnavailable)
		h.logRequest(r, rw, info, start)
		return
	}
	peer := clientAddr(r)
	s, err := hb.backend.Acquire(r.Context(), peer, nil)
	if err != nil {
		info.err = err
		h.writePage(rw, hb, http.StatusServiceUnavailable)
		h.logRequest(r, rw, info, start)
		return
	}
	info.server, info.peer, info.started = s, peer, time.Now()
	h.closeIfAsked(rw, hb)
	ctx := context.WithValue(r.Context(), infoKey, info)
	// Deferred: ReverseProxy panics (http.ErrAbortHandler) when a
	// server fails in the middle of a body, and the server slot must
	// still be released.
	defer func() {
		s.Release()
		h.logRequest(r, rw, info, start)
	}()
	hb.rp.ServeHTTP(x.w, r.WithContext(ctx))
	x.done()
	x.end() // before the log line, which counts the compressed stream's last bytes
}

// hbProxy is the proxy of a backend, nil for none.
func hbProxy(hb *httpBackend) *config.Proxy {
	if hb == nil {
		return nil
	}
	return hb.proxy
}

// tooManyHeaders tells whether a request has more header fields than
// tune.http.maxhdr allows (the request line, or HTTP/2 pseudo-headers,
// counting as one, as in HAProxy).
func tooManyHeaders(r *http.Request, maxHeaders int) bool {
	n := 0
	if r.Host != "" {
		n++
	}
	for _, v := range r.Header {
		n += len(v)
	}
	return n >= maxHeaders
}

// applyRequestRules runs the rules on a copy of the request whose headers
// they may change.
func (h *httpServer) applyRequestRules(r *http.Request, info *requestInfo) (*http.Request, *httpBackend, *httprules.Reply) {
	if h.routes.hasRules() {
		r = r.Clone(r.Context())
	}
	info.txn = httprules.NewTxn(r)
	hb, reply := h.runRequestRules(info.txn)
	info.be = hb
	return info.txn.Req, hb, reply
}

// rewrite points the outgoing request at the chosen server and adds the
// forwarding headers.
func (h *httpServer) rewrite(pr *httputil.ProxyRequest) {
	info := pr.In.Context().Value(infoKey).(*requestInfo)
	s := info.server
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = serverDialHost(s, pr.In)
	pr.Out.Host = pr.In.Host
	// ReverseProxy drops the client's X-Forwarded-* headers; HAProxy
	// passes them on (and rules may have set them).
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
	ff := h.proxy.ForwardFor
	if ff == nil && info.be != nil {
		ff = info.be.proxy.ForwardFor
	}
	if ff != nil {
		var ip net.IP
		if a, ok := info.peer.(*net.TCPAddr); ok {
			ip = a.IP
		}
		addForwardFor(pr, ff, ip)
	}
}

// addForwardFor adds X-Forwarded-For with the client address (the one from
// the PROXY header when there was one), as "option forwardfor" does, and
// X-Forwarded-Proto. ip is the client's, nil when unknown.
func addForwardFor(pr *httputil.ProxyRequest, ff *config.ForwardFor, ip net.IP) {
	if ff.Except != "" {
		if _, n, err := net.ParseCIDR(ff.Except); err == nil && ip != nil && n.Contains(ip) {
			return
		}
	}
	name := ff.Header
	if name == "" {
		name = "X-Forwarded-For"
	}
	if ff.IfNone && pr.In.Header.Get(name) != "" {
		return
	}
	if ip != nil {
		pr.Out.Header.Add(name, ip.String())
	}
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	pr.Out.Header.Set("X-Forwarded-Proto", proto)
}

func clientAddr(r *http.Request) net.Addr {
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	p, _ := strconv.Atoi(port)
	return &net.TCPAddr{IP: net.ParseIP(host), Port: p}
}

// unixHostSuffix marks a dial host that encodes a unix or abstract socket,
// or a server name for an ssl server:
// the transport pools connections by host, so each server gets its own name.
const unixHostSuffix = ".unix.sluice.invalid"

func dialHost(a addr.Addr, sni string) string {
	if a.Family == addr.TCP && sni == "" {
		return a.String()
	}
	return hexHost(a.Key(), sni)
}

// serverSNI is the name an ssl server with a per-request "sni" gets: the
// client's SNI or the request's host; "" otherwise. It is part of the dial
// host, so that pooled connections are never shared between names.
func serverSNI(s *backend.Server, r *http.Request) string {
	if s.TLS() == nil {
		return ""
	}
	switch s.Config().TLS.SNI {
	case "ssl_fc_sni":
		if r.TLS != nil {
			return r.TLS.ServerName
		}
	case "req.hdr(host)", "hdr(host)":
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		return host
	}
	return ""
}

// dialer returns the dial function of a backend's transports.
func (h *httpServer) dialer(t config.Timeouts) func(ctx context.Context, network, hostport string) (net.Conn, error) {
	return func(ctx context.Context, network, hostport string) (net.Conn, error) {
		return h.dial(ctx, t, hostport)
	}
}

func (h *httpServer) dial(ctx context.Context, t config.Timeouts, hostport string) (net.Conn, error) {
	start := time.Now()
	a, sni, err := parseDialHost(hostport)
	if err != nil {
		return nil, err
	}
	c, err := a.Dial(ctx, t.Connect)
	if err == nil {
		if err = sendProxyHTTP(ctx, c); err != nil {
			c.Close()
		}
	}
	info, _ := ctx.Value(infoKey).(*requestInfo)
	if info != nil && err == nil && info.server.TLS() != nil {
		c, err = dispatcher.StartTLS(ctx, c, info.server, sni, t.Connect)
	}
	if info != nil {
		info.connect = time.Since(start)
	}
	return c, err
}

// parseDialHost reads a host made by dialHost.
func parseDialHost(hostport string) (addr.Addr, string, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	enc, ok := strings.CutSuffix(host, unixHostSuffix)
	if !ok {
		a, err := addr.Parse(hostport)
		return a, "", err
	}
	enc, _, _ = strings.Cut(enc, ".c") // the client part only keys the pool (httpsendproxy.go)
	encKey, encSNI, _ := strings.Cut(enc, ".")
	key, err := hex.DecodeString(encKey)
	if err != nil {
		return addr.Addr{}, "", err
	}
	sni, err := hex.DecodeString(strings.TrimPrefix(encSNI, "s"))
	if err != nil {
		return addr.Addr{}, "", err
	}
	kind, name, _ := strings.Cut(string(key), ":")
	var a addr.Addr
	switch kind {
	case "unix":
		a, err = addr.Parse("unix@" + name)
	case "abns", "abnsz":
		a, err = addr.Parse(kind + "@" + name)
	case "tcp":
		a, err = addr.Parse(name)
	default:
		err = errors.New("bad dial host")
	}
	return a, string(sni), err
}

// proxyError answers when the server could not be reached or did not answer
// in time, with HAProxy's status codes.
func (h *httpServer) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	var hb *httpBackend
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		info.err = err
		hb = info.be
	}
	var ne net.Error
	if status, ok := isDenied(err); ok {
		h.writePage(w, hb, status)
		return
	}
	switch {
	case errors.Is(err, context.Canceled):
		// The client went away: nothing to answer.
		return
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		h.writePage(w, hb, http.StatusGatewayTimeout)
	default:
		h.writePage(w, hb, http.StatusBadGateway)
	}
}

// statusWriter records the status and size of a response for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and friends.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// connListener is a net.Listener fed by the accept loops, so that the
// connection's PROXY header and TLS handshake happen where every other
// connection's do, and the HTTP server only serves HTTP.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.UnixAddr{Name: "sluice", Net: "unix"} }
