package worker

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelb/sluice/accesslog"
	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/dispatcher"
)

// httpServer runs http mode for one proxy: HTTP/1.1 with keep-alive (and
// HTTP/2 when TLS negotiates h2) towards clients, pooled keep-alive
// connections towards servers, one server chosen per request.
type httpServer struct {
	proxy    *config.Proxy
	beProxy  *config.Proxy
	backend  *backend.Backend
	alog     *accesslog.Logger
	counters *frontendCounters
	log      *slog.Logger

	srv   *http.Server
	ln    *connListener
	rp    *httputil.ReverseProxy
	tr    *http.Transport
	ended sync.Map // net.Conn -> func(), called when the connection closes

	// layers compress and cache responses (httplayers.go); nil = none.
	layers *httpLayers
}

type ctxKey int

const (
	serverKey ctxKey = iota // the *backend.Server chosen for a request
	infoKey                 // *requestInfo
	peerKey                 // net.Addr: the client's address, for send-proxy
)

// requestInfo collects what the access log needs about one request.
type requestInfo struct {
	server   *backend.Server
	started  time.Time     // when forwarding began
	connect  time.Duration // Tc
	response time.Duration // Tr: from forwarding to the response headers
	err      error
}

func newHTTPServer(p, beProxy *config.Proxy, be *backend.Backend, alog *accesslog.Logger, counters *frontendCounters, log *slog.Logger) *httpServer {
	h := &httpServer{proxy: p, beProxy: beProxy, backend: be, alog: alog, counters: counters, log: log}
	var t config.Timeouts
	if beProxy != nil {
		t = beProxy.Timeouts
	}
	h.tr = &http.Transport{
		DialContext:           h.dial,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: t.Server,
		DisableCompression:    true,
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:      h.rewrite,
		Transport:    h.tr,
		ErrorHandler: h.proxyError,
		// 0: responses of unknown length (streams, server-sent events) are
		// still flushed as they come, as ReverseProxy does for them; others
		// go out in as few writes as the buffers allow. -1 flushed after
		// every write: two or more write(2) per small response.
		FlushInterval: 0,
		ModifyResponse: func(resp *http.Response) error {
			if info, ok := resp.Request.Context().Value(infoKey).(*requestInfo); ok {
				info.response = time.Since(info.started) - info.connect
			}
			return nil
		},
	}
	requestTimeout := p.Timeouts.HTTPRequest
	if requestTimeout == 0 {
		requestTimeout = p.Timeouts.Client
	}
	idle := p.Timeouts.HTTPKeepAlive
	if idle == 0 {
		idle = p.Timeouts.Client
	}
	h.ln = newConnListener()
	h.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: requestTimeout,
		IdleTimeout:       idle,
		ConnState:         h.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go h.srv.Serve(h.ln)
	return h
}

// serve hands an accepted (and, with ssl, handshaken) connection to the
// HTTP server; done is called when the connection closes.
func (h *httpServer) serve(c net.Conn, done func()) {
	h.ended.Store(c, done)
	if !h.ln.push(c) {
		h.ended.Delete(c)
		c.Close()
		done()
	}
}

func (h *httpServer) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	if done, ok := h.ended.LoadAndDelete(c); ok {
		done.(func())()
	}
}

// shutdown is for a stopping process: idle keep-alive connections close
// now, busy ones after their current response. Connections still in their
// TLS handshake are served too, so the server keeps taking them.
func (h *httpServer) shutdown() {
	h.srv.SetKeepAlivesEnabled(false)
	h.tr.CloseIdleConnections()
}

// ServeHTTP picks a server for the request and forwards it.
func (h *httpServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	info := &requestInfo{}
	x := h.layers.begin(rw, r, h.beProxy)
	defer x.end() // a response cut short (ReverseProxy panics) too
	if x.serveCached(r) {
		x.end()
		h.logRequest(r, rw, info, start)
		return
	}
	if h.backend == nil {
		writeError(rw, http.StatusServiceUnavailable)
		h.logRequest(r, rw, info, start)
		return
	}
	s, err := h.backend.Acquire(r.Context(), clientAddr(r), nil)
	if err != nil {
		info.err = err
		writeError(rw, http.StatusServiceUnavailable)
		h.logRequest(r, rw, info, start)
		return
	}
	info.server, info.started = s, time.Now()
	ctx := context.WithValue(r.Context(), serverKey, s)
	ctx = context.WithValue(ctx, infoKey, info)
	ctx = context.WithValue(ctx, peerKey, clientAddr(r))
	h.rp.ServeHTTP(x.w, r.WithContext(ctx))
	x.done()
	x.end() // before the log line, which counts the compressed stream's last bytes
	s.Release()
	h.logRequest(r, rw, info, start)
}

// rewrite points the outgoing request at the chosen server and adds the
// forwarding headers.
func (h *httpServer) rewrite(pr *httputil.ProxyRequest) {
	s := pr.In.Context().Value(serverKey).(*backend.Server)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = serverDialHost(s, pr.In)
	pr.Out.Host = pr.In.Host
	ff := h.proxy.ForwardFor
	if ff == nil && h.beProxy != nil {
		ff = h.beProxy.ForwardFor
	}
	if ff != nil {
		addForwardFor(pr, ff)
	}
}

// addForwardFor adds X-Forwarded-For with the client address (the one from
// the PROXY header when there was one), as "option forwardfor" does, and
// X-Forwarded-Proto.
func addForwardFor(pr *httputil.ProxyRequest, ff *config.ForwardFor) {
	ip := clientIP(pr.In)
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

func clientIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
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
	// "s" keeps the label non-empty when there is no name.
	return hex.EncodeToString([]byte(a.Key())) + ".s" + hex.EncodeToString([]byte(sni)) + unixHostSuffix
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

func (h *httpServer) dial(ctx context.Context, network, hostport string) (net.Conn, error) {
	var t config.Timeouts
	if h.beProxy != nil {
		t = h.beProxy.Timeouts
	}
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
	if s, ok := ctx.Value(serverKey).(*backend.Server); ok && err == nil && s.TLS() != nil {
		c, err = dispatcher.StartTLS(ctx, c, s, sni, t.Connect)
	}
	if info, ok := ctx.Value(infoKey).(*requestInfo); ok {
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
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		info.err = err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		// The client went away: nothing to answer.
		return
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout)
	default:
		writeError(w, http.StatusBadGateway)
	}
}

// errorBodies are HAProxy's default error pages.
var errorBodies = map[int]string{
	http.StatusBadRequest:         "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n",
	http.StatusBadGateway:         "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n",
	http.StatusServiceUnavailable: "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
	http.StatusGatewayTimeout:     "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
}

func writeError(w http.ResponseWriter, code int) {
	body := errorBodies[code]
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
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
