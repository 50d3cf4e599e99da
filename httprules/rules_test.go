package httprules

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp/syntax"
	"strings"
	"testing"
)

// txn builds a transaction for a request line and headers, from src.
func txn(t *testing.T, method, target string, hdr map[string]string, src string) *Txn {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host = "example.com"
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			r.Host = v
			continue
		}
		r.Header.Add(k, v)
	}
	tx := &Txn{Req: r, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort("10.0.0.1:443")}
	return tx
}

func acls(t *testing.T, lines ...string) *ACLs {
	t.Helper()
	a := NewACLs()
	for _, l := range lines {
		if err := a.Add(strings.Fields(l)); err != nil {
			t.Fatalf("acl %q: %v", l, err)
		}
	}
	return a
}

func TestConditions(t *testing.T) {
	set := acls(t,
		"api path_beg /api /v2",
		"static path_end .css .js",
		"host_ex hdr(host) -i example.com",
		"local src 127.0.0.0/8 ::1",
		"lan src 10.0.0.0/255.0.0.0",
		"tls ssl_fc",
		"https dst_port 443",
		"high dst_port 1024:",
		"re path_reg ^/u/[0-9]+$",
		"sub path_sub -i ADMIN",
		"has_auth hdr(authorization) -m found",
		"post method POST",
		"api path_beg /graphql", // a second line ORs with the first
		"dom hdr(host) -m dom example",
	)
	cases := []struct {
		cond   string
		method string
		target string
		hdr    map[string]string
		src    string
		want   bool
	}{
		{"if api", "GET", "/api/x", nil, "1.2.3.4:5", true},
		{"if api", "GET", "/v2", nil, "1.2.3.4:5", true},
		{"if api", "GET", "/graphql", nil, "1.2.3.4:5", true},
		{"if api", "GET", "/web", nil, "1.2.3.4:5", false},
		{"unless api", "GET", "/web", nil, "1.2.3.4:5", true},
		{"if api local", "GET", "/api", nil, "127.0.0.1:5", true},
		{"if api local", "GET", "/api", nil, "1.2.3.4:5", false},
		{"if api || local", "GET", "/x", nil, "127.0.0.9:5", true},
		{"if api or static", "GET", "/a.css", nil, "1.2.3.4:5", true},
		{"if !api", "GET", "/x", nil, "1.2.3.4:5", true},
		{"if ! api", "GET", "/api", nil, "1.2.3.4:5", false},
		{"if local", "GET", "/", nil, "[::1]:5", true},
		{"if lan", "GET", "/", nil, "10.9.8.7:5", true},
		{"if lan", "GET", "/", nil, "11.9.8.7:5", false},
		{"if host_ex", "GET", "/", map[string]string{"Host": "EXAMPLE.com"}, "1.2.3.4:5", true},
		{"if tls", "GET", "/", nil, "1.2.3.4:5", false},
		{"if !tls https", "GET", "/", nil, "1.2.3.4:5", true},
		{"if high", "GET", "/", nil, "1.2.3.4:5", false},
		{"if re", "GET", "/u/42", nil, "1.2.3.4:5", true},
		{"if re", "GET", "/u/x", nil, "1.2.3.4:5", false},
		{"if sub", "GET", "/x/admin/y", nil, "1.2.3.4:5", true},
		{"if has_auth", "GET", "/", map[string]string{"Authorization": "Basic x"}, "1.2.3.4:5", true},
		{"if has_auth", "GET", "/", nil, "1.2.3.4:5", false},
		{"if post", "POST", "/", nil, "1.2.3.4:5", true},
		{"if METH_GET", "HEAD", "/", nil, "1.2.3.4:5", true},
		{"if { path /exact }", "GET", "/exact", nil, "1.2.3.4:5", true},
		{"if { path /exact } !local", "GET", "/exact", nil, "127.0.0.1:5", false},
		{"if { hdr_beg(x-env) prod }", "GET", "/", map[string]string{"X-Env": "production"}, "1.2.3.4:5", true},
		{"if { hdr(x-list) b }", "GET", "/", map[string]string{"X-List": "a, b, c"}, "1.2.3.4:5", true},
		{"if { hdr_cnt(x-list) 2 }", "GET", "/", map[string]string{"X-List": "a, b"}, "1.2.3.4:5", true},
		{"if { src_port 5 } { dst 10.0.0.1 }", "GET", "/", nil, "1.2.3.4:5", true},
		{"if dom", "GET", "/", map[string]string{"Host": "www.example.com:8080"}, "1.2.3.4:5", true},
		{"if dom", "GET", "/", map[string]string{"Host": "www.examples.com"}, "1.2.3.4:5", false},
		{"if TRUE FALSE || LOCALHOST", "GET", "/", nil, "127.0.0.1:5", true},
		{"if { query -m sub debug=1 }", "GET", "/?a=b&debug=1", nil, "1.2.3.4:5", true},
		{"if { url_beg /a?b }", "GET", "/a?b=c", nil, "1.2.3.4:5", true},
		{"if { path_dir b }", "GET", "/a/b/c", nil, "1.2.3.4:5", true},
		{"if { path_len 0:3 }", "GET", "/ab", nil, "1.2.3.4:5", true},
	}
	for _, c := range cases {
		cond, err := ParseCond(strings.Fields(c.cond), set, Request)
		if err != nil {
			t.Errorf("%q: %v", c.cond, err)
			continue
		}
		if got := cond.Holds(txn(t, c.method, c.target, c.hdr, c.src)); got != c.want {
			t.Errorf("%q on %s %s from %s: %v, want %v", c.cond, c.method, c.target, c.src, got, c.want)
		}
	}
	// Over TLS to port 8443: the true side of a bool match and of an
	// open range, which the cases above only see false.
	tx := txn(t, "GET", "/", nil, "1.2.3.4:5")
	tx.Req.TLS = &tls.ConnectionState{}
	tx.Dst = netip.MustParseAddrPort("10.0.0.1:8443")
	for _, c := range []struct {
		cond string
		want bool
	}{{"if tls", true}, {"if high", true}, {"if !tls", false}, {"if https", false}} {
		cond, err := ParseCond(strings.Fields(c.cond), set, Request)
		if err != nil {
			t.Fatalf("%q: %v", c.cond, err)
		}
		if got := cond.Holds(tx); got != c.want {
			t.Errorf("%q over TLS to port 8443: %v, want %v", c.cond, got, c.want)
		}
	}
}

func TestConditionErrors(t *testing.T) {
	set := acls(t, "a path /a", "resp status 200")
	cases := []struct{ cond, err string }{
		{"if", "'if' expects a condition"},
		{"when a", "expected 'if' or 'unless', got 'when'"},
		{"if nope", "no such ACL: 'nope' (declared: a, resp)"},
		{"if A", "no such ACL: 'A' (did you mean 'a'?)"},
		{"if a ||", "missing condition after the last '||'"},
		{"if || a", "'||' without a condition before it"},
		{"if a && a", "'&&' is not an operator: conditions written one after the other are ANDed"},
		{"if { path /a", "missing '}' after '{'"},
		{"if {path /a }", "'{path': an anonymous ACL needs a space after '{' and before '}'"},
		{"if a }", "'}' without '{'"},
		{"if { nofetch x }", "anonymous ACL: unknown fetch method 'nofetch'"},
		{"if { hdr x }", "anonymous ACL: fetch method 'hdr' expects an argument, as in 'hdr(name)'"},
		{"if { path(x) y }", "anonymous ACL: fetch method 'path' takes no argument"},
		{"if { path }", "anonymous ACL: path: missing pattern (an ACL without patterns never matches)"},
		{"if { path -m nope x }", "anonymous ACL: unknown match method 'nope' after '-m'"},
		{"if { path -f file }", "anonymous ACL: ACL flag '-f' is not supported"},
		{"if { src 1.2.3.400 }", "anonymous ACL: src: '1.2.3.400' is not an IP address or network"},
		{"if { dst_port 80:x }", "anonymous ACL: dst_port: '80:x' is not an integer or a range"},
		{"if { path_reg ( }", "anonymous ACL: path_reg: bad regular expression '('"},
		{"if resp", "acl 'resp' tests the response and cannot be used in a request rule"},
		{"if { status 200 }", "anonymous ACL: fetch method 'status' needs a response"},
		{"if !", "'!' without a condition after it"},
	}
	for _, c := range cases {
		_, err := ParseCond(strings.Fields(c.cond), set, Request)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want one containing %q", c.cond, err, c.err)
		}
	}
}

func TestACLErrors(t *testing.T) {
	cases := []struct{ line, err string }{
		{"", "'acl' expects a name"},
		{"a/b path /", "acl name 'a/b': character '/' is not permitted"},
		{"TRUE path /", "acl 'TRUE': this name is a predefined ACL"},
		{"x", "acl 'x': missing fetch method"},
		{"x ssl_fc 1", "match method 'bool' takes no pattern"},
	}
	for _, c := range cases {
		err := NewACLs().Add(strings.Fields(c.line))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want one containing %q", c.line, err, c.err)
		}
	}
}

func TestFormat(t *testing.T) {
	tx := txn(t, "GET", "/p?q=1", map[string]string{"X-Name": "Ab", "Host": "h.example"}, "192.0.2.1:1234")
	tx.Req.TLS = &tls.ConnectionState{ServerName: "sni.example", Version: tls.VersionTLS13}
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"%[src]", "192.0.2.1"},
		{"%ci:%cp -> %fi:%fp", "192.0.2.1:1234 -> 10.0.0.1:443"},
		{"%[ssl_fc_sni]", "sni.example"},
		{"%[ssl_fc]", "1"},
		{"%[ssl_fc_protocol]", "TLSv1.3"},
		{"%[hdr(x-name),lower]!", "ab!"},
		{"%[hdr(x-name),upper,lower]", "ab"},
		{"%[hdr(x-missing)]", ""},
		{"100%% %[path]", "100% /p"},
		{"%[req.hdr(host)]%[query]", "h.example" + "q=1"},
		{"%[method] %[url]", "GET /p?q=1"},
		{"%[ssl_c_used]", "0"},
	}
	for _, c := range cases {
		f, err := ParseFormat(c.in, Request)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := f.Eval(tx); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"%", "%[src", "%[nope]", "%[src,nope]", "%{+Q}o", "%Tq", "%[]", "%[status]"} {
		if _, err := ParseFormat(bad, Request); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestRules(t *testing.T) {
	set := acls(t, "api path_beg /api", "local src 127.0.0.0/8")
	lines := []string{
		"set-header X-Client %[src]",
		"add-header X-Multi one",
		"add-header X-Multi two",
		"del-header X-Remove",
		"set-header Host backend.internal if api",
		"deny deny_status 429 if { path /limited }",
		"redirect scheme https code 301 if { path_beg /secure }",
		"redirect location /moved if { path /old }",
		"redirect prefix https://new.example drop-query if { path_beg /p }",
		"allow if { path /allowed }",
		"deny if { path /allowed }",
		"set-path /rewritten%[path] if { path_beg /rw }",
		"deny if { path_beg /admin } !local",
		"return status 200 content-type text/plain lf-string ok:%[src] hdr X-A b if { path /health }",
	}
	rs := &RuleSet{}
	for _, l := range lines {
		r, err := ParseRule(Request, strings.Fields(l), set)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		rs.Add(r)
	}
	run := func(target, src string, hdr map[string]string) (*Txn, *Reply) {
		tx := txn(t, "GET", target, hdr, src)
		return tx, rs.Run(tx)
	}
	tx, reply := run("/api/x", "192.0.2.1:1", map[string]string{"X-Remove": "y", "X-Client": "forged"})
	if reply != nil {
		t.Fatalf("reply %+v", reply)
	}
	if got := tx.Req.Header.Values("X-Client"); len(got) != 1 || got[0] != "192.0.2.1" {
		t.Errorf("X-Client %q", got)
	}
	if got := tx.Req.Header.Values("X-Multi"); strings.Join(got, ",") != "one,two" {
		t.Errorf("X-Multi %q", got)
	}
	if tx.Req.Header.Get("X-Remove") != "" || tx.Req.Host != "backend.internal" {
		t.Errorf("headers %v host %q", tx.Req.Header, tx.Req.Host)
	}
	want := map[string]Reply{
		"/limited":       {Status: 429},
		"/secure/a?b=c":  {Status: 301, Location: "https://example.com/secure/a?b=c"},
		"/old":           {Status: 302, Location: "/moved"},
		"/p/x?y=z":       {Status: 302, Location: "https://new.example/p/x"},
		"/admin":         {Status: 403},
		"/allowed":       {},
		"/admin?x=local": {Status: 403},
	}
	for target, w := range want {
		_, reply := run(target, "192.0.2.1:1", nil)
		got := Reply{}
		if reply != nil {
			got = *reply
		}
		if got.Status != w.Status || got.Location != w.Location {
			t.Errorf("%s: %+v, want %+v", target, got, w)
		}
	}
	if _, reply := run("/admin", "127.0.0.1:1", nil); reply != nil {
		t.Errorf("/admin from localhost: %+v", reply)
	}
	_, reply = run("/health", "192.0.2.1:1", nil)
	if reply == nil || reply.Serve == nil {
		t.Fatalf("return: %+v", reply)
	}
	rec := httptest.NewRecorder()
	reply.Serve(rec, nil)
	if rec.Code != 200 || rec.Body.String() != "ok:192.0.2.1" || rec.Header().Get("Content-Type") != "text/plain" || rec.Header().Get("X-A") != "b" {
		t.Errorf("return: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
	tx, _ = run("/rw/a", "192.0.2.1:1", nil)
	if tx.Req.URL.Path != "/rewritten/rw/a" {
		t.Errorf("set-path: %q", tx.Req.URL.Path)
	}
}

func TestResponseRules(t *testing.T) {
	set := acls(t, "err status 500:599")
	rs := &RuleSet{}
	for _, l := range []string{"set-header X-Served sluice", "del-header Server", "add-header X-Err yes if err", "deny if { res.hdr(x-secret) -m found }"} {
		r, err := ParseRule(Response, strings.Fields(l), set)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		rs.Add(r)
	}
	tx := txn(t, "GET", "/", nil, "192.0.2.1:1")
	tx.Resp = &http.Response{StatusCode: 503, Header: http.Header{"Server": {"x"}}}
	if reply := rs.Run(tx); reply != nil {
		t.Fatalf("reply %+v", reply)
	}
	if tx.Resp.Header.Get("X-Served") != "sluice" || tx.Resp.Header.Get("Server") != "" || tx.Resp.Header.Get("X-Err") != "yes" {
		t.Errorf("headers %v", tx.Resp.Header)
	}
	tx.Resp = &http.Response{StatusCode: 200, Header: http.Header{"X-Secret": {"1"}}}
	if reply := rs.Run(tx); reply == nil || reply.Status != 502 {
		t.Errorf("deny: %+v", reply)
	}
}

func TestRuleErrors(t *testing.T) {
	cases := []struct {
		side      Side
		line, err string
	}{
		{Request, "", "'http-request' expects an action"},
		{Request, "if TRUE", "'http-request' expects an action before 'if'"},
		{Request, "frobnicate", "'http-request': unknown action 'frobnicate' (supported: add-header, allow, del-header, deny, redirect, return, set-header, set-path)"},
		{Request, "set-var(txn.x) str(1)", "unknown action 'set-var(txn.x)'"},
		{Request, "tarpit", "'http-request tarpit' is not supported"},
		{Request, "return status 99", "'status' expects a code between 200 and 599, got '99'"},
		{Request, "return string x", "'string' and 'lf-string' need a 'content-type'"},
		{Request, "return file /x", "'return file' is not supported"},
		{Request, "return status", "'status' expects a value"},
		{Response, "return", "'http-response return' is not supported"},
		{Response, "redirect location /", "'http-response redirect' is not supported"},
		{Request, "set-header X", "http-request set-header: expects a header name and a value"},
		{Request, "set-header X a b", "http-request set-header: expects a header name and a value"},
		{Request, "set-header Bad:Name v", "'Bad:Name' is not a valid header name"},
		{Request, "set-header X %[nope]", "unknown fetch method 'nope'"},
		{Request, "del-header", "http-request del-header: expects a header name"},
		{Request, "del-header X -m beg", "only the header name is supported"},
		{Request, "deny deny_status", "'deny_status' expects a status code"},
		{Request, "deny deny_status 99", "'deny_status' expects a status code between 200 and 599, got '99'"},
		{Request, "deny hdr x y", "unexpected 'hdr'"},
		{Request, "allow now", "unexpected 'now'"},
		{Request, "redirect", "expects 'location', 'prefix' or 'scheme' and a value"},
		{Request, "redirect to /", "expects 'location', 'prefix' or 'scheme', got 'to'"},
		{Request, "redirect scheme https code 200", "'code' expects 301, 302, 303, 307 or 308, got '200'"},
		{Request, "redirect scheme https set-cookie a=b", "redirect option 'set-cookie' is not supported"},
		{Request, "redirect scheme https if nope", "no such ACL: 'nope'"},
	}
	for _, c := range cases {
		_, err := ParseRule(c.side, strings.Fields(c.line), NewACLs())
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want one containing %q", c.line, err, c.err)
		}
	}
}

// TestParseRedirect checks that the keyword "redirect" names itself in
// messages and keeps the cause of an error.
func TestParseRedirect(t *testing.T) {
	if _, err := ParseRedirect(strings.Fields("scheme https code 301 if !{ ssl_fc }"), NewACLs()); err != nil {
		t.Fatal(err)
	}
	_, err := ParseRedirect(strings.Fields("location /x if { path -m reg ( }"), NewACLs())
	var syn *syntax.Error
	if err == nil || !strings.HasPrefix(err.Error(), "redirect: anonymous ACL: ") || !errors.As(err, &syn) {
		t.Errorf("error %v, want 'redirect: anonymous ACL: ...' wrapping a *syntax.Error", err)
	}
	if _, err := ParseRedirect(nil, NewACLs()); err == nil || err.Error() != "redirect: expects 'location', 'prefix' or 'scheme' and a value" {
		t.Errorf("no words: error %v", err)
	}
}

// FuzzParseCond feeds conditions to the parser and evaluates those it
// accepts: no input may panic.
func FuzzParseCond(f *testing.F) {
	for _, s := range []string{"if a", "unless !a || { path /x } b", "if { hdr(host) -i -m beg x y } or TRUE", "if { src 10.0.0.0/8 ::1 }", "if { dst_port 1:2 :3 4: }", "if ! ! a"} {
		f.Add(s)
	}
	set := NewACLs()
	set.Add([]string{"a", "path_beg", "/a"})
	set.Add([]string{"b", "ssl_fc"})
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCond(strings.Fields(s), set, Request)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/a/b?c", nil)
		c.Holds(&Txn{Req: r})
	})
}

// FuzzParseFormat feeds log-format strings to the parser and evaluates
// those it accepts.
func FuzzParseFormat(f *testing.F) {
	for _, s := range []string{"%[src]", "a%%b%[hdr(x),lower]", "%ci:%cp", "%[", "%[path,upper,lower]x%fi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fm, err := ParseFormat(s, Request)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/a", nil)
		fm.Eval(&Txn{Req: r})
		_ = fm.String()
	})
}

// TestDelimitedMatch checks "dir" and "dom": the pattern matches whole
// parts of the sample, runs of parts included.
func TestDelimitedMatch(t *testing.T) {
	cases := []struct {
		method, sample, pattern string
		want                    bool
	}{
		{"dir", "/a/b/c", "b", true},
		{"dir", "/a/b/c", "/b/", true},
		{"dir", "/a/b/c", "a/b", true},
		{"dir", "/a/bc", "b", false},
		{"dir", "/a/b/c", "a/c", false},
		{"dir", "/a//b", "/", false},
		{"dir", "/a/b", "", false},
		{"dom", "www.example.com:8080", "example", true},
		{"dom", "www.example.com:8080", "example.com", true},
		{"dom", "www.example.com", "8080", false},
		{"dom", "www.examples.com", "example", false},
		{"dom", "a?b", "b", true},
		{"dom", "ab", "a.b", false},
	}
	for _, c := range cases {
		tm := &term{method: c.method}
		if err := tm.setPatterns([]string{c.pattern}); err != nil && c.pattern != "" {
			t.Fatalf("%s %q: %v", c.method, c.pattern, err)
		}
		if got := tm.matchOne(c.sample); got != c.want {
			t.Errorf("%s: %q in %q: %v, want %v", c.method, c.pattern, c.sample, got, c.want)
		}
	}
}

// TestMatchAllocations keeps the per-request work of a condition small:
// the TLS fetches are computed once per transaction, and a "dom" sample
// is prepared once, not once per pattern.
func TestMatchAllocations(t *testing.T) {
	name, err := asn1.Marshal(pkix.Name{CommonName: "client", Organization: []string{"Example"}}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	tx := txn(t, "GET", "/", map[string]string{"Host": "www.example.com"}, "1.2.3.4:5")
	tx.Req.TLS = &tls.ConnectionState{ServerName: "sni.example", PeerCertificates: []*x509.Certificate{{RawSubject: name, RawIssuer: name}}}
	for _, c := range []struct {
		cond string
		max  float64
	}{
		{"if { ssl_c_s_dn -m sub CN=nobody } || { ssl_c_i_dn -m sub CN=nobody } || { ssl_fc_sni x }", 3},
		{"if { hdr(host) -m dom a b c d e f }", 3},
	} {
		cond, err := ParseCond(strings.Fields(c.cond), NewACLs(), Request)
		if err != nil {
			t.Fatalf("%q: %v", c.cond, err)
		}
		if cond.Holds(tx) {
			t.Errorf("%q holds", c.cond)
		}
		if n := testing.AllocsPerRun(100, func() { cond.Holds(tx) }); n > c.max {
			t.Errorf("%q: %v allocations per evaluation, want at most %v", c.cond, n, c.max)
		}
	}
}
