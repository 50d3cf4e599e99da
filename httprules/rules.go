package httprules

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Reply is what a final rule answers instead of forwarding: an error page
// (deny), a redirect or a "return".
type Reply struct {
	Status   int
	Location string // set for a redirect
	// Serve, when set, writes the whole answer itself ("return").
	Serve func(w http.ResponseWriter, r *http.Request)
}

// Rule is one http-request or http-response line.
type Rule struct {
	cond *Cond
	// do runs the action; a non-nil Reply ends the transaction's rules
	// with that answer, stop ends the list without one ("allow").
	do func(t *Txn) (reply *Reply, stop bool)
}

// RuleSet is one proxy's http-request or http-response rules, in order.
type RuleSet struct {
	rules []*Rule
}

// Add appends a rule.
func (rs *RuleSet) Add(r *Rule) { rs.rules = append(rs.rules, r) }

// Len is the number of rules.
func (rs *RuleSet) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// Run applies the rules whose condition holds, in order, until one ends
// the list. It returns the answer of a deny or redirect, or nil to go on.
func (rs *RuleSet) Run(t *Txn) *Reply {
	if rs == nil {
		return nil
	}
	for _, r := range rs.rules {
		if !r.cond.Holds(t) {
			continue
		}
		reply, stop := r.do(t)
		if reply != nil || stop {
			return reply
		}
	}
	return nil
}

// unsupportedActions are HAProxy's http-request/http-response actions that
// sluice does not implement: named in the message rather than called
// unknown.
var unsupportedActions = []string{
	"add-acl", "auth", "capture", "del-acl", "del-map", "disable-l7-retry",
	"do-resolve", "early-hint", "normalize-uri", "reject", "replace-header",
	"replace-path", "replace-pathq", "replace-uri", "replace-value",
	"sc-inc-gpc", "sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0", "send-spoe-group",
	"set-dst", "set-dst-port", "set-log-level", "set-map", "set-mark",
	"set-method", "set-nice", "set-pathq", "set-priority-class",
	"set-priority-offset", "set-query", "set-src", "set-src-port",
	"set-status", "set-timeout", "set-tos", "set-uri", "set-var", "set-var-fmt",
	"silent-drop", "strict-mode", "tarpit", "track-sc0", "track-sc1",
	"track-sc2", "unset-var", "use-service", "wait-for-body",
	"wait-for-handshake",
}

// Actions lists the actions sluice implements on a side, for messages.
func Actions(side Side) []string {
	if side == Request {
		return []string{"add-header", "allow", "del-header", "deny", "redirect", "return", "set-header", "set-path"}
	}
	return []string{"add-header", "allow", "del-header", "deny", "set-header"}
}

// ParseRule reads an http-request or http-response line's words (after
// the keyword): the action, its arguments and an optional condition.
func ParseRule(side Side, words []string, acls *ACLs) (*Rule, error) {
	kw := "http-request"
	if side == Response {
		kw = "http-response"
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("'%s' expects an action (%s)", kw, strings.Join(Actions(side), ", "))
	}
	action, condWords := SplitCond(words)
	if len(action) == 0 {
		return nil, fmt.Errorf("'%s' expects an action before '%s'", kw, words[0])
	}
	name, args := action[0], action[1:]
	cond, err := ParseCond(condWords, acls, side)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kw, name, err)
	}
	r := &Rule{cond: cond}
	switch {
	case name == "set-header" || name == "add-header":
		err = headerAction(r, side, name, args)
	case name == "del-header":
		err = delHeader(r, side, args)
	case name == "allow":
		err = noArgs(name, args)
		r.do = func(*Txn) (*Reply, bool) { return nil, true }
	case name == "deny":
		err = deny(r, side, args)
	case name == "redirect" && side == Request:
		err = redirect(r, args)
	case name == "set-path" && side == Request:
		err = setPath(r, args)
	case name == "return" && side == Request:
		err = returnAction(r, args)
	case slices.Contains(Actions(Request), name) || slices.Contains(unsupportedActions, name):
		return nil, fmt.Errorf("'%s %s' is not supported (supported: %s)", kw, name, strings.Join(Actions(side), ", "))
	default:
		return nil, fmt.Errorf("'%s': unknown action '%s' (supported: %s)", kw, name, strings.Join(Actions(side), ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kw, name, err)
	}
	return r, nil
}

// ParseRedirect reads the proxy keyword "redirect"'s words (after it):
// the action of "http-request redirect", named "redirect" in messages as
// the line has no "http-request".
func ParseRedirect(words []string, acls *ACLs) (*Rule, error) {
	action, condWords := SplitCond(words)
	cond, err := ParseCond(condWords, acls, Request)
	if err != nil {
		return nil, fmt.Errorf("redirect: %w", err)
	}
	r := &Rule{cond: cond}
	if err := redirect(r, action); err != nil {
		return nil, fmt.Errorf("redirect: %w", err)
	}
	return r, nil
}

func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected '%s' ('%s' takes no argument, only a condition)", args[0], name)
	}
	return nil
}

// headers returns the header map a side's actions change.
func headers(t *Txn, side Side) http.Header {
	if side == Response {
		return t.Resp.Header
	}
	return t.Req.Header
}

func checkHeaderName(name string) error {
	if name == "" {
		return fmt.Errorf("empty header name")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("'%s' is not a valid header name", name)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// headerAction is set-header (replace every occurrence) and add-header
// (one more line).
func headerAction(r *Rule, side Side, name string, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("expects a header name and a value (a log-format string; quote it when it has spaces)")
	}
	if err := checkHeaderName(args[0]); err != nil {
		return err
	}
	f, err := ParseFormat(args[1], side)
	if err != nil {
		return err
	}
	hdr, set := http.CanonicalHeaderKey(args[0]), name == "set-header"
	r.do = func(t *Txn) (*Reply, bool) {
		v := cleanValue(f.Eval(t))
		if side == Request && hdr == "Host" {
			// net/http keeps the Host header in Request.Host.
			t.Req.Host = v
			return nil, false
		}
		h := headers(t, side)
		if set {
			h.Set(hdr, v)
		} else {
			h.Add(hdr, v)
		}
		return nil, false
	}
	return nil
}

// cleanValue keeps a header value built from client input on one line:
// a CR, LF or NUL from a fetch would otherwise split the header.
func cleanValue(v string) string {
	if !strings.ContainsAny(v, "\r\n\x00") {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return -1
		}
		return r
	}, v)
}

func delHeader(r *Rule, side Side, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("expects a header name")
	}
	if len(args) > 1 {
		return fmt.Errorf("unexpected '%s' (only the header name is supported, '-m' match methods are not)", args[1])
	}
	if err := checkHeaderName(args[0]); err != nil {
		return err
	}
	hdr := http.CanonicalHeaderKey(args[0])
	r.do = func(t *Txn) (*Reply, bool) {
		if side == Request && hdr == "Host" {
			t.Req.Host = ""
			return nil, false
		}
		headers(t, side).Del(hdr)
		return nil, false
	}
	return nil
}

// deny answers 403 (http-request) or 502 (http-response), or the
// deny_status given.
func deny(r *Rule, side Side, args []string) error {
	status := http.StatusForbidden
	if side == Response {
		status = http.StatusBadGateway
	}
	for len(args) > 0 {
		switch args[0] {
		case "deny_status":
			if len(args) < 2 {
				return fmt.Errorf("'deny_status' expects a status code")
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 200 || n > 599 {
				return fmt.Errorf("'deny_status' expects a status code between 200 and 599, got '%s'", args[1])
			}
			status, args = n, args[2:]
		default:
			return fmt.Errorf("unexpected '%s' (only 'deny_status CODE' is supported)", args[0])
		}
	}
	r.do = func(*Txn) (*Reply, bool) { return &Reply{Status: status}, false }
	return nil
}

// redirect reads "redirect location|prefix|scheme VALUE [code N]
// [drop-query] [append-slash]".
func redirect(r *Rule, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("expects 'location', 'prefix' or 'scheme' and a value")
	}
	kind := args[0]
	switch kind {
	case "location", "prefix", "scheme":
	default:
		return fmt.Errorf("expects 'location', 'prefix' or 'scheme', got '%s'", kind)
	}
	f, err := ParseFormat(args[1], Request)
	if err != nil {
		return err
	}
	code, dropQuery, appendSlash := http.StatusFound, false, false
	for rest := args[2:]; len(rest) > 0; {
		switch rest[0] {
		case "code":
			if len(rest) < 2 {
				return fmt.Errorf("'code' expects 301, 302, 303, 307 or 308")
			}
			switch rest[1] {
			case "301", "302", "303", "307", "308":
			default:
				return fmt.Errorf("'code' expects 301, 302, 303, 307 or 308, got '%s'", rest[1])
			}
			code, _ = strconv.Atoi(rest[1]) // one of the codes above
			rest = rest[2:]
		case "drop-query":
			dropQuery, rest = true, rest[1:]
		case "append-slash":
			appendSlash, rest = true, rest[1:]
		case "set-cookie", "clear-cookie", "ignore-empty":
			return fmt.Errorf("redirect option '%s' is not supported (supported: code, drop-query, append-slash)", rest[0])
		default:
			return fmt.Errorf("unknown redirect option '%s' (supported: code, drop-query, append-slash)", rest[0])
		}
	}
	r.do = func(t *Txn) (*Reply, bool) {
		v := cleanValue(f.Eval(t))
		if kind == "location" {
			return &Reply{Status: code, Location: v}, false
		}
		path := t.Req.URL.EscapedPath()
		if t.Req.URL.Opaque != "" || path == "" {
			path = "/"
		}
		if appendSlash && !strings.HasSuffix(path, "/") {
			path += "/"
		}
		if !dropQuery && t.Req.URL.RawQuery != "" {
			path += "?" + t.Req.URL.RawQuery
		}
		if kind == "prefix" {
			if v == "/" {
				v = "" // HAProxy: a prefix of "/" keeps the path as it is
			}
			return &Reply{Status: code, Location: v + path}, false
		}
		host := cleanValue(t.Req.Host)
		if host == "" {
			return &Reply{Status: code, Location: path}, false
		}
		return &Reply{Status: code, Location: v + "://" + host + path}, false
	}
	return nil
}

func setPath(r *Rule, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("expects one value (a log-format string)")
	}
	f, err := ParseFormat(args[0], Request)
	if err != nil {
		return err
	}
	r.do = func(t *Txn) (*Reply, bool) {
		p := cleanValue(f.Eval(t))
		u := *t.Req.URL
		u.Path, u.RawPath = p, ""
		if unescaped, err := url.PathUnescape(p); err == nil {
			// Keep the value as written on the wire.
			u.Path, u.RawPath = unescaped, p
		}
		t.Req.URL = &u
		return nil, false
	}
	return nil
}

// returnAction reads "return [status N] [content-type T] [string S |
// lf-string FMT] [hdr NAME FMT]...": an answer made here, without a
// server.
func returnAction(r *Rule, args []string) error {
	status, ctype := http.StatusOK, ""
	var body *Format
	type hdr struct {
		name  string
		value *Format
	}
	var hdrs []hdr
	for len(args) > 0 {
		if len(args) < 2 {
			return fmt.Errorf("'%s' expects a value", args[0])
		}
		switch args[0] {
		case "status":
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 200 || n > 599 {
				return fmt.Errorf("'status' expects a code between 200 and 599, got '%s'", args[1])
			}
			status = n
		case "content-type":
			ctype = args[1]
		case "string", "lf-string":
			if body != nil {
				return fmt.Errorf("only one of 'string' and 'lf-string' may be given")
			}
			var err error
			if args[0] == "string" {
				body = &Format{parts: []formatPart{{text: args[1]}}}
			} else if body, err = ParseFormat(args[1], Request); err != nil {
				return err
			}
		case "hdr":
			if len(args) < 3 {
				return fmt.Errorf("'hdr' expects a name and a value")
			}
			if err := checkHeaderName(args[1]); err != nil {
				return err
			}
			f, err := ParseFormat(args[2], Request)
			if err != nil {
				return err
			}
			hdrs = append(hdrs, hdr{http.CanonicalHeaderKey(args[1]), f})
			args = args[1:]
		case "errorfile", "errorfiles", "file", "lf-file", "default-errorfiles":
			return fmt.Errorf("'return %s' is not supported (supported: status, content-type, string, lf-string, hdr)", args[0])
		default:
			return fmt.Errorf("unknown 'return' option '%s' (supported: status, content-type, string, lf-string, hdr)", args[0])
		}
		args = args[2:]
	}
	if body != nil && ctype == "" {
		return fmt.Errorf("'string' and 'lf-string' need a 'content-type', as in HAProxy")
	}
	r.do = func(t *Txn) (*Reply, bool) {
		var payload string
		if body != nil {
			payload = body.Eval(t)
		}
		values := make([]string, len(hdrs))
		for i, h := range hdrs {
			values[i] = cleanValue(h.value.Eval(t))
		}
		return &Reply{Status: status, Serve: func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			for i, hd := range hdrs {
				h.Add(hd.name, values[i])
			}
			if ctype != "" {
				h.Set("Content-Type", ctype)
			}
			h.Set("Content-Length", strconv.Itoa(len(payload)))
			w.WriteHeader(status)
			io.WriteString(w, payload)
		}}, false
	}
	return nil
}
