package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"time"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/httprules"
)

// proxyRules are the http-mode rules of one proxy, compiled from the words
// the configuration kept (and already checked).
type proxyRules struct {
	acls *httprules.ACLs
	req  *httprules.RuleSet
	// redirects are the "redirect" lines, run after req even when an
	// "allow" ended it, as in HAProxy.
	redirects *httprules.RuleSet
	resp      *httprules.RuleSet
	pages     errorPages
}

// request runs the http-request rules, then the redirect lines.
func (r *proxyRules) request(t *httprules.Txn) *httprules.Reply {
	if reply := r.req.Run(t); reply != nil {
		return reply
	}
	return r.redirects.Run(t)
}

func compileRules(p *config.Proxy) (*proxyRules, error) {
	r := &proxyRules{acls: httprules.NewACLs(), req: &httprules.RuleSet{}, redirects: &httprules.RuleSet{}, resp: &httprules.RuleSet{}}
	for _, l := range p.ACLs {
		if err := r.acls.Add(l.Words); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", l.Pos.File, l.Pos.Line, err)
		}
	}
	for _, side := range []struct {
		lines []config.RuleLine
		side  httprules.Side
		set   *httprules.RuleSet
	}{{p.HTTPRequest, httprules.Request, r.req}, {p.Redirects, httprules.Request, r.redirects}, {p.HTTPResponse, httprules.Response, r.resp}} {
		for _, l := range side.lines {
			rule, err := httprules.ParseRule(side.side, l.Words, r.acls)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", l.Pos.File, l.Pos.Line, err)
			}
			side.set.Add(rule)
		}
	}
	pages, err := parseErrorFiles(p.ErrorFiles)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: proxy '%s': %w", p.Pos.File, p.Pos.Line, p.Name, err)
	}
	r.pages = pages
	return r, nil
}

// httpBackend is a backend as an http frontend uses it: its rules, its
// servers and the connections to them.
type httpBackend struct {
	proxy   *config.Proxy
	backend *backend.Backend
	rules   *proxyRules
	// pooled reuses idle server connections; fresh opens one per request
	// (http-reuse never, and the first request of a client connection
	// with http-reuse safe when it cannot be retried); h2 speaks HTTP/2
	// to "proto h2" servers.
	pooled, fresh, h2 *http.Transport
	// lean takes what pooled would, when it can (h1client.go).
	lean *h1Client
	// private makes the transport of one client connection with
	// http-reuse never: its server connections serve no other client.
	private func() *http.Transport
	reuse   string
	// serverClose closes server connections after each response (option
	// http-server-close or httpclose on the frontend or the backend),
	// clientClose the client's too (option httpclose).
	serverClose, clientClose bool
	rp                       *httputil.ReverseProxy
}

// useRule is one "use_backend NAME if COND".
type useRule struct {
	cond *httprules.Cond
	be   *httpBackend
}

// httpRoutes are what a frontend does with a request: its own rules, then
// the backend its use_backend rules choose (else default_backend, else
// itself for a listen section), whose rules run next.
type httpRoutes struct {
	front *proxyRules
	uses  []useRule
	def   *httpBackend
	all   []*httpBackend
}

// newHTTPRoutes builds the routes of frontend p; backends maps proxy names
// to this generation's backends.
func newHTTPRoutes(h *httpServer, p *config.Proxy, cfg *config.Config, backends map[string]*backend.Backend) (*httpRoutes, error) {
	front, err := compileRules(p)
	if err != nil {
		return nil, err
	}
	rt := &httpRoutes{front: front}
	byName := make(map[string]*httpBackend)
	get := func(name string) (*httpBackend, error) {
		if hb, ok := byName[name]; ok {
			return hb, nil
		}
		bp := cfg.Proxy(name)
		if bp == nil {
			return nil, fmt.Errorf("proxy '%s': no backend '%s'", p.Name, name)
		}
		rules := front
		if bp != p {
			if rules, err = compileRules(bp); err != nil {
				return nil, err
			}
		}
		hb := h.newHTTPBackend(bp, backends[name], rules)
		byName[name] = hb
		rt.all = append(rt.all, hb)
		return hb, nil
	}
	for _, u := range p.UseBackends {
		cond, err := httprules.ParseCond(u.Cond, front.acls, httprules.Request)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", u.Pos.File, u.Pos.Line, err)
		}
		hb, err := get(u.Backend)
		if err != nil {
			return nil, err
		}
		rt.uses = append(rt.uses, useRule{cond: cond, be: hb})
	}
	name := p.DefaultBackend
	if name == "" && p.Backend {
		name = p.Name
	}
	if name != "" {
		if rt.def, err = get(name); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// hasRules tells whether any http-request rule may change requests.
func (rt *httpRoutes) hasRules() bool {
	if rt.front.req.Len() > 0 {
		return true
	}
	for _, hb := range rt.all {
		if hb.rules.req.Len() > 0 {
			return true
		}
	}
	// Redirects change nothing: they answer.
	return false
}

// pick returns the backend for a request: the first use_backend whose
// condition holds, else the default one (nil when there is none).
func (rt *httpRoutes) pick(t *httprules.Txn) *httpBackend {
	for _, u := range rt.uses {
		if u.cond.Holds(t) {
			return u.be
		}
	}
	return rt.def
}

func (h *httpServer) newHTTPBackend(p *config.Proxy, be *backend.Backend, rules *proxyRules) *httpBackend {
	hb := &httpBackend{proxy: p, backend: be, rules: rules, reuse: p.HTTPReuse}
	if hb.reuse == "" {
		hb.reuse = "safe"
	}
	// As in HAProxy, the stricter mode of the two sides wins.
	modes := []string{h.proxy.HTTPConnMode, p.HTTPConnMode}
	hb.clientClose = slices.Contains(modes, "close")
	hb.serverClose = hb.clientClose || slices.Contains(modes, "server-close")
	dial := h.dialer(p.Timeouts)
	mk := func(keepAlive bool) *http.Transport {
		return &http.Transport{
			DialContext:           dial,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: p.Timeouts.Server,
			DisableCompression:    true,
			DisableKeepAlives:     !keepAlive,
		}
	}
	hb.private = func() *http.Transport {
		t := mk(true)
		t.MaxIdleConnsPerHost = 4
		return t
	}
	hb.pooled, hb.fresh = mk(hb.reuse != "never"), mk(false)
	hb.lean = newH1Client(dial, p.Timeouts.Server)
	hb.h2 = mk(hb.reuse != "never")
	// The dial host of a "proto h2" server is always "http": HTTP/2 with
	// prior knowledge over what the dialer returns (clear, or TLS that
	// negotiated h2 by ALPN).
	hb.h2.Protocols = new(http.Protocols)
	hb.h2.Protocols.SetUnencryptedHTTP2(true)
	hb.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      hb,
		ErrorHandler:   h.proxyError,
		FlushInterval:  0, // see newHTTPServer
		BufferPool:     &h.bufs,
		ModifyResponse: h.modifyResponse,
		ErrorLog:       slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	return hb
}

// RoundTrip sends a request over the transport its server and the
// reuse mode call for.
func (hb *httpBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	info, _ := r.Context().Value(infoKey).(*requestInfo)
	if info != nil && info.server.Config().Proto == "h2" {
		return hb.h2.RoundTrip(r)
	}
	if hb.serverClose {
		return hb.fresh.RoundTrip(r)
	}
	switch hb.reuse {
	case "never":
		// A server connection belongs to one client connection, which
		// reuses it for its next requests, as in HAProxy.
		if ci, ok := r.Context().Value(connKey).(*connInfo); ok {
			return ci.transport(hb).RoundTrip(r)
		}
		return hb.fresh.RoundTrip(r)
	case "safe":
		// HAProxy's "safe": the first request of a client connection
		// does not go over a connection another client used, since a
		// browser cannot retry it if that connection turns out closed.
		// net/http retries idempotent requests itself, so only the
		// others need a connection of their own.
		if info != nil && info.first && !idempotent(r) {
			return hb.fresh.RoundTrip(r)
		}
	}
	if hb.lean.covers(r) {
		return hb.lean.RoundTrip(r)
	}
	return hb.pooled.RoundTrip(r)
}

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

func (hb *httpBackend) closeIdle() {
	hb.pooled.CloseIdleConnections()
	hb.lean.closeIdle()
	hb.h2.CloseIdleConnections()
}

// errDenied is an http-response deny: the response is replaced by an
// error page.
type errDenied struct{ status int }

func (e errDenied) Error() string {
	return fmt.Sprintf("response denied by http-response rules (%d)", e.status)
}

// modifyResponse runs the http-response rules: the backend's, then the
// frontend's.
func (h *httpServer) modifyResponse(resp *http.Response) error {
	info, _ := resp.Request.Context().Value(infoKey).(*requestInfo)
	if info == nil {
		return nil
	}
	info.response = time.Since(info.started) - info.connect
	if resp.StatusCode == http.StatusSwitchingProtocols && info.guard != nil {
		info.guard.upgraded(true)
	}
	if info.be == nil || info.txn == nil {
		return nil
	}
	info.txn.Resp = resp
	defer func() { info.txn.Resp = nil }()
	sets := []*httprules.RuleSet{info.be.rules.resp}
	if info.be.rules != h.routes.front {
		sets = append(sets, h.routes.front.resp)
	}
	for _, set := range sets {
		if reply := set.Run(info.txn); reply != nil {
			return errDenied{status: reply.Status}
		}
	}
	return nil
}

// runRequestRules applies the frontend's http-request rules, picks the
// backend and applies its rules. It returns the answer of a deny or a
// redirect, if any.
func (h *httpServer) runRequestRules(t *httprules.Txn) (*httpBackend, *httprules.Reply) {
	if reply := h.routes.front.request(t); reply != nil {
		return nil, reply
	}
	hb := h.routes.pick(t)
	if hb == nil || hb.rules == h.routes.front {
		return hb, nil
	}
	return hb, hb.rules.request(t)
}

// writeReply answers a deny or a redirect, with the backend's error pages
// first, then the frontend's.
func (h *httpServer) writeReply(w http.ResponseWriter, r *http.Request, hb *httpBackend, reply *httprules.Reply) {
	h.closeIfAsked(w, hb)
	switch {
	case reply.Serve != nil:
		reply.Serve(w, r)
		return
	case reply.Location != "":
		writeRedirect(w, reply.Status, reply.Location)
		return
	}
	h.writePage(w, hb, reply.Status)
}

func (h *httpServer) writePage(w http.ResponseWriter, hb *httpBackend, status int) {
	if hb != nil && hb.rules != nil {
		writePage(w, status, hb.rules.pages, h.routes.front.pages)
		return
	}
	writePage(w, status, h.routes.front.pages)
}

// closeIfAsked makes net/http close the client connection after this
// response when option httpclose applies.
func (h *httpServer) closeIfAsked(w http.ResponseWriter, hb *httpBackend) {
	if (hb != nil && hb.clientClose) || (hb == nil && h.proxy.HTTPConnMode == "close") {
		w.Header().Set("Connection", "close")
	}
}

func isDenied(err error) (int, bool) {
	var d errDenied
	if errors.As(err, &d) {
		return d.status, true
	}
	return 0, false
}
