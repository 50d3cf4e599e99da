package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// httpFront is an http frontend whose lines under test follow.
const httpFront = "defaults\n    mode http\nfrontend f\n    bind :81\n    default_backend l\n"

func TestHTTPKeywords(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "503.http")
	os.WriteFile(page, []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nlater\n"), 0o644)
	long := filepath.Join(dir, "long.http")
	os.WriteFile(long, []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n<h1>down</h1>\n1234"), 0o644)
	short := filepath.Join(dir, "short.http")
	os.WriteFile(short, []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\n\r\n<html>down for maintenance</html>\n"), 0o644)
	exact := filepath.Join(dir, "exact.http")
	os.WriteFile(exact, []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\n\r\nlater\n"), 0o644)
	junk := filepath.Join(dir, "junk.http")
	os.WriteFile(junk, []byte("<html>not a response</html>\n"), 0o644)
	runCases(t, []loadCase{
		{name: "rules", cfg: httpFront +
			"    acl api path_beg /api\n" +
			"    acl api path_beg /v2\n" +
			"    http-request deny if { path /x } !api\n" +
			"    http-request set-header X-Sni %[ssl_fc_sni]\n" +
			"    http-request redirect scheme https code 301 unless { ssl_fc }\n" +
			"    http-response del-header Server\n" +
			"    use_backend l if api || { hdr(host) -i a.example }\n" + lst},
		{name: "redirect keyword", cfg: httpFront + "    redirect scheme https code 301 if !{ ssl_fc }\n    redirect location /x\n" + lst},
		{name: "redirect keyword bad", cfg: httpFront + "    redirect scheme\n" + lst, errs: []string{
			"t.cfg:6: redirect: expects 'location', 'prefix' or 'scheme' and a value"}},
		{name: "redirect keyword bad condition", cfg: httpFront + "    redirect location /x if nope\n" + lst, errs: []string{
			"t.cfg:6: redirect: no such ACL: 'nope' (declare it with an 'acl' line before its first use)"}},
		{name: "acl in defaults", cfg: "defaults\n    acl a path /\n" + lst, errs: []string{"t.cfg:2: 'acl' not allowed in 'defaults' section"}},
		{name: "http-request in defaults", cfg: "defaults\n    http-request deny\n" + lst, errs: []string{"t.cfg:2: 'http-request' not allowed in 'defaults' section"}},
		{name: "unknown ACL", cfg: httpFront + "    http-request deny if nope\n" + lst, errs: []string{
			"t.cfg:6: http-request deny: no such ACL: 'nope' (declare it with an 'acl' line before its first use)"}},
		{name: "ACL used before its line", cfg: httpFront + "    http-request deny if a\n    acl a path /\n" + lst, errs: []string{
			"t.cfg:6: http-request deny: no such ACL: 'a' (declare it with an 'acl' line before its first use)"}},
		{name: "response ACL line after a request rule", cfg: httpFront + "    acl a path /x\n    http-request deny if a\n    acl a res.hdr(x) y\n" + lst, errs: []string{
			"t.cfg:8: acl 'a': res.hdr(x) tests the response, but a request rule above already uses this ACL"}},
		{name: "response ACL line after use_backend", cfg: httpFront + "    acl a path /x\n    use_backend l if a\n    acl a res.hdr(x) y\n" + lst, errs: []string{
			"t.cfg:8: acl 'a': res.hdr(x) tests the response, but a request rule above already uses this ACL"}},
		{name: "response ACL line after a response rule", cfg: httpFront + "    acl a path /x\n    http-response deny if a\n    acl a res.hdr(x) y\n" + lst},
		{name: "unsupported action", cfg: httpFront + "    http-request set-var(txn.a) str(b)\n" + lst, errs: []string{
			"t.cfg:6: 'http-request': unknown action 'set-var(txn.a)' (supported: add-header, allow, del-header, deny, redirect, return, set-header, set-path)"}},
		{name: "named unsupported action", cfg: httpFront + "    http-request tarpit\n" + lst, errs: []string{
			"t.cfg:6: 'http-request tarpit' is not supported (supported: add-header, allow, del-header, deny, redirect, return, set-header, set-path)"}},
		{name: "cache-use without cache", cfg: httpFront + "    http-request cache-use c\n" + lst, errs: []string{
			"t.cfg:6: frontend 'f': 'http-request cache-use' names no cache section 'c'"}},
		{name: "bad acl", cfg: httpFront + "    acl a src 1.2.3\n" + lst, errs: []string{
			"t.cfg:6: acl 'a': src: '1.2.3' is not an IP address or network"}},
		{name: "rules in tcp mode", cfg: "frontend f\n    bind :81\n    http-request deny\n    http-response deny\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: frontend 'f': 'http-request' rules need 'mode http'",
			"t.cfg:4: frontend 'f': 'http-response' rules need 'mode http'"}},
		{name: "tcp frontend, backend with rules", cfg: "frontend f\n    bind :81\n    default_backend b\nbackend b\n    mode http\n    http-request deny\n    server s 127.0.0.1:80\n" + lst, errs: []string{
			"t.cfg:3: tcp frontend 'f' cannot use backend 'b' in its default_backend: the backend's http-request/http-response rules would never run (see 'mode')"}},
		{name: "errorfile", cfg: "defaults\n    mode http\n    errorfile 503 " + page + "\n" + lst},
		{name: "errorfile code", cfg: "defaults\n    errorfile 418 " + page + "\n" + lst, errs: []string{
			"t.cfg:2: 'errorfile 418': status code not handled (supported: 200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504)"}},
		{name: "errorfile missing", cfg: "defaults\n    errorfile 503 " + dir + "/none\n" + lst, errs: []string{
			"t.cfg:2: 'errorfile 503': open " + dir + "/none: no such file or directory"}},
		{name: "errorfile not a response", cfg: "defaults\n    errorfile 503 " + junk + "\n" + lst, errs: []string{
			"t.cfg:2: 'errorfile 503 " + junk + "': not an HTTP response: the file must hold a complete response, starting with a status line such as 'HTTP/1.1 503 Service Unavailable'"}},
		{name: "errorfile content-length", cfg: "defaults\n    mode http\n    errorfile 503 " + exact + "\n" + lst},
		{name: "errorfile body short of content-length", cfg: "defaults\n    errorfile 503 " + long + "\n" + lst, errs: []string{
			"t.cfg:2: 'errorfile 503 " + long + "': payload size does not match the announced content-length (18 != 100)"}},
		{name: "errorfile body past content-length", cfg: "defaults\n    errorfile 503 " + short + "\n" + lst, errs: []string{
			"t.cfg:2: 'errorfile 503 " + short + "': payload size does not match the announced content-length (34 != 6)"}},
		{name: "http-reuse", cfg: "defaults\n    mode http\n    http-reuse always\n" + lst},
		{name: "http-reuse in tcp mode", cfg: "defaults\n    http-reuse always\n" + lst, warns: []string{
			"t.cfg:2: warning: 'http-reuse' ignored for listen 'l' as it requires HTTP mode"}},
		{name: "http-reuse bad", cfg: "defaults\n    http-reuse sometimes\n" + lst, errs: []string{
			"t.cfg:2: 'http-reuse' expects 'never', 'safe', 'aggressive' or 'always', got 'sometimes'"}},
		{name: "connection options", cfg: "defaults\n    mode http\n    option httpclose\n    no option httpclose\n    option http-server-close\n    option http-keep-alive\n" + lst},
		{name: "connection options in tcp mode", cfg: "defaults\n    option httpclose\n    no option httpclose\n" + lst +
			"listen a\n    bind :82\n    option http-server-close\n    server s 127.0.0.1:80\n" +
			"listen b\n    bind :83\n    option httpclose\n    server s 127.0.0.1:80\n", warns: []string{
			"t.cfg:10: warning: 'option http-server-close' ignored for listen 'a' as it requires HTTP mode",
			"t.cfg:14: warning: 'option httpclose' ignored for listen 'b' as it requires HTTP mode"}},
		{name: "connection option from tcp defaults", cfg: "defaults\n    option http-keep-alive\n" + lst, warns: []string{
			"t.cfg:2: warning: 'option http-keep-alive' ignored for listen 'l' as it requires HTTP mode"}},
		{name: "connection option argument", cfg: "defaults\n    option httpclose now\n" + lst, errs: []string{
			"t.cfg:2: 'option httpclose' takes no argument (got 'now')"}},
		{name: "proto h2", cfg: "backend b\n    server s 127.0.0.1:80 proto h2\n" + lst},
		{name: "proto bad", cfg: "backend b\n    server s 127.0.0.1:80 proto fcgi\n" + lst, errs: []string{
			"t.cfg:2: server 's': 'proto fcgi' is not supported (supported: h2, h1)"}},
		{name: "tune.http.maxhdr", cfg: "global\n    tune.http.maxhdr 0\n" + lst, errs: []string{
			"t.cfg:2: 'tune.http.maxhdr' must be between 1 and 32767, got 0"}},
	})
}

func TestHTTPValues(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "503.http")
	raw := "HTTP/1.1 503 Service Unavailable\r\n\r\nlater\n"
	os.WriteFile(page, []byte(raw), 0o644)
	cfg, _, err := load("global\n    tune.http.maxhdr 50\ndefaults\n    mode http\n    errorfile 503 " + page + "\n" +
		"frontend f\n    bind :81\n    acl a path /a\n    http-request deny if a\n    http-response set-header X y\n" +
		"    use_backend b if a\n    default_backend b\nbackend b\n    http-reuse never\n    option http-server-close\n    server s 127.0.0.1:80 proto h2\n")
	if err != nil {
		t.Fatal(err)
	}
	f, b := cfg.Proxy("f"), cfg.Proxy("b")
	if cfg.Global.MaxHdr != 50 {
		t.Errorf("MaxHdr %d", cfg.Global.MaxHdr)
	}
	if !reflect.DeepEqual(f.ACLs, []RuleLine{{Words: []string{"a", "path", "/a"}, Pos: Pos{"t.cfg", 8}}}) {
		t.Errorf("ACLs %+v", f.ACLs)
	}
	if !reflect.DeepEqual(f.HTTPRequest, []RuleLine{{Words: []string{"deny", "if", "a"}, Pos: Pos{"t.cfg", 9}}}) {
		t.Errorf("HTTPRequest %+v", f.HTTPRequest)
	}
	if len(f.HTTPResponse) != 1 || !reflect.DeepEqual(f.UseBackends[0].Cond, []string{"if", "a"}) {
		t.Errorf("HTTPResponse %+v UseBackends %+v", f.HTTPResponse, f.UseBackends)
	}
	if f.ErrorFiles[503] != raw || b.ErrorFiles[503] != raw {
		t.Errorf("ErrorFiles %v %v", f.ErrorFiles, b.ErrorFiles)
	}
	if f.HTTPConnMode != "" || b.HTTPConnMode != "server-close" {
		t.Errorf("HTTPConnMode %q %q", f.HTTPConnMode, b.HTTPConnMode)
	}
	if b.HTTPReuse != "never" || b.Servers[0].Proto != "h2" {
		t.Errorf("HTTPReuse %q Proto %q", b.HTTPReuse, b.Servers[0].Proto)
	}
}

func TestHeadRoom(t *testing.T) {
	for _, c := range []struct{ buf, want int }{{16384, 15360}, {1024, 512}, {2048, 1024}, {65536, 64512}} {
		if got := HeadRoom(c.buf); got != c.want {
			t.Errorf("HeadRoom(%d) = %d, want %d", c.buf, got, c.want)
		}
	}
}
