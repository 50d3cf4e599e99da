package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startH2CBackend runs a server that speaks HTTP/2 with prior knowledge
// (and HTTP/1.1) and answers with the protocol it was spoken to in.
func startH2CBackend(t *testing.T) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	b.port = serveServer(t, &http.Server{
		Protocols: p,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.requests.Add(1)
			fmt.Fprintf(w, "server proto %s path=%s\n", r.Proto, r.URL.Path)
		}),
	})
	return b
}

// getResp makes a request and returns the response with its body read.
func getResp(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp, string(b)
}

func noRedirect() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
}

// TestHTTPRulesAndRouting runs ACLs, use_backend conditions, header rules,
// redirects, deny, errorfile and option forwardfor through the binary with
// Go's client.
func TestHTTPRulesAndRouting(t *testing.T) {
	api, web, port := startCountingBackend(t), startCountingBackend(t), freePort(t)
	page := filepath.Join(t.TempDir(), "503.http")
	if err := os.WriteFile(page, []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nX-Page: custom\r\n\r\nsorry, come back later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startSluice(t, fmt.Sprintf(`global
    nbproc 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend f
    bind 127.0.0.1:%[1]d
    option forwardfor except 127.0.0.2
    acl is_api path_beg /api
    acl from_lo src 127.0.0.0/8
    acl admin hdr(host) -i admin.example
    http-request deny if { path_beg /private } !{ src 127.0.0.3 }
    http-request deny deny_status 429 if { path /slow }
    http-request redirect scheme https code 301 if { path_beg /secure }
    http-request redirect location /new if { path /old }
    http-request set-header X-Client %%[src]
    http-request add-header X-Seen-By sluice
    http-request del-header X-Remove-Me
    http-response set-header X-Frontend f
    http-response del-header X-Proto
    use_backend api if is_api from_lo
    use_backend down if admin || { path /down }
    default_backend web
backend api
    http-request set-header X-Backend api
    http-response set-header X-Backend api
    server a 127.0.0.1:%[2]d
backend web
    server w 127.0.0.1:%[3]d
backend down
    errorfile 503 %[4]s
`, port, api.port, web.port, page), fmt.Sprintf("127.0.0.1:%d", port))
	c := noRedirect()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	resp, body := getResp(t, c, "GET", base+"/api/x", map[string]string{"X-Remove-Me": "1", "X-Client": "forged"})
	if resp.StatusCode != 200 || api.requests.Load() != 1 || !strings.Contains(body, "path=/api/x") {
		t.Fatalf("/api/x: %d %q (api saw %d)", resp.StatusCode, body, api.requests.Load())
	}
	if resp.Header.Get("X-Backend") != "api" || resp.Header.Get("X-Frontend") != "f" || resp.Header.Get("X-Proto") != "" {
		t.Errorf("response headers %v", resp.Header)
	}
	h := api.last.Load().(http.Header)
	if h.Get("X-Client") != "127.0.0.1" || h.Get("X-Seen-By") != "sluice" || h.Get("X-Remove-Me") != "" || h.Get("X-Backend") != "api" {
		t.Errorf("request headers at the server %v", h)
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("forwardfor: %v", h)
	}

	resp, _ = getResp(t, c, "GET", base+"/web", nil)
	if resp.StatusCode != 200 || web.requests.Load() != 1 {
		t.Errorf("/web: %d (web saw %d)", resp.StatusCode, web.requests.Load())
	}

	resp, body = getResp(t, c, "GET", base+"/private/x", nil)
	if resp.StatusCode != 403 || body != "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n" {
		t.Errorf("/private: %d %q", resp.StatusCode, body)
	}
	resp, _ = getResp(t, c, "GET", base+"/slow", nil)
	if resp.StatusCode != 429 {
		t.Errorf("/slow: %d", resp.StatusCode)
	}
	resp, _ = getResp(t, c, "GET", base+"/secure/a?b=1", map[string]string{"Host": "shop.example"})
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://shop.example/secure/a?b=1" {
		t.Errorf("/secure: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = getResp(t, c, "GET", base+"/old", nil)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/new" {
		t.Errorf("/old: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = getResp(t, c, "GET", base+"/x", map[string]string{"Host": "ADMIN.example"})
	if resp.StatusCode != 503 || resp.Header.Get("X-Page") != "custom" || body != "sorry, come back later\n" {
		t.Errorf("errorfile: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if api.requests.Load() != 1 || web.requests.Load() != 1 {
		t.Errorf("answered requests reached servers: api %d web %d", api.requests.Load(), web.requests.Load())
	}
}

// TestHTTPKeepAliveAndReuse checks keep-alive on both sides: a client's
// requests share one connection (but with option httpclose), and the
// server sees one connection for both clients (http-reuse safe,
// aggressive), one per client (http-reuse never) or one per request
// (option http-server-close, option httpclose).
func TestHTTPKeepAliveAndReuse(t *testing.T) {
	// Two clients one after the other, 10 requests each.
	for _, c := range []struct {
		option      string
		clientConns int64
		conns       func(n int64) bool
	}{
		{"http-reuse never", 2, func(n int64) bool { return n == 2 }},
		{"http-reuse safe", 2, func(n int64) bool { return n == 1 }},
		{"http-reuse aggressive", 2, func(n int64) bool { return n == 1 }},
		{"option http-keep-alive", 2, func(n int64) bool { return n == 1 }},
		{"option http-server-close", 2, func(n int64) bool { return n == 20 }},
		{"option httpclose", 20, func(n int64) bool { return n == 20 }},
	} {
		t.Run(c.option, func(t *testing.T) {
			be, port := startCountingBackend(t), freePort(t)
			startSluice(t, plainHTTPConfig(port, be.port, "    "+c.option+"\n"), fmt.Sprintf("127.0.0.1:%d", port))
			var dials atomic.Int64
			d := &net.Dialer{}
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return d.DialContext(ctx, network, addr)
			}}
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := 0; i < 20; i++ {
				if i == 10 {
					tr.CloseIdleConnections() // the second client
				}
				resp, _ := getResp(t, client, "GET", fmt.Sprintf("http://127.0.0.1:%d/%d", port, i), nil)
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: %d", i, resp.StatusCode)
				}
			}
			if n := dials.Load(); n != c.clientConns {
				t.Errorf("%s: the clients opened %d connections for 20 requests", c.option, n)
			}
			if n := be.conns.Load(); !c.conns(n) {
				t.Errorf("%s: the server saw %d connections for 20 requests", c.option, n)
			}
		})
	}
}

// TestHTTP2 checks HTTP/2 towards clients (TLS with ALPN h2, and clear
// text with prior knowledge) with curl and Go's client, and towards a
// server with "proto h2".
func TestHTTP2(t *testing.T) {
	be, h2be, port, clear := startCountingBackend(t), startH2CBackend(t), freePort(t), freePort(t)
	h2tlsServer := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "server proto %s over TLS %v\n", r.Proto, r.TLS != nil)
	}))
	h2tlsServer.EnableHTTP2 = true
	h2tlsServer.StartTLS()
	t.Cleanup(h2tlsServer.Close)
	h2tls := h2tlsServer.Listener.Addr().(*net.TCPAddr).Port
	cert := writeCert(t)
	startSluice(t, fmt.Sprintf(`global
    nbproc 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend f
    bind 127.0.0.1:%[1]d ssl crt %[2]s alpn h2,http/1.1
    bind 127.0.0.1:%[3]d
    option forwardfor
    http-request set-header X-TLS %%[ssl_fc]
    http-request set-header X-SNI %%[ssl_fc_sni]
    use_backend h2tls if { path_beg /h2tls }
    use_backend h2 if { path_beg /h2 }
    default_backend web
backend web
    server w 127.0.0.1:%[4]d
backend h2
    server s 127.0.0.1:%[5]d proto h2
backend h2tls
    server s 127.0.0.1:%[6]d ssl verify none alpn h2 proto h2
`, port, cert, clear, be.port, h2be.port, h2tls), fmt.Sprintf("127.0.0.1:%d", port))
	waitTCP(t, clear)

	// HTTP/1.1 and HTTP/2 over TLS both see the TLS fetches.
	h1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}, ForceAttemptHTTP2: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, c := range []struct {
		client *http.Client
		major  int
	}{{h1, 1}, {client, 2}} {
		resp, body := getResp(t, c.client, "GET", fmt.Sprintf("https://127.0.0.1:%d/x", port), nil)
		if resp.StatusCode != 200 || resp.ProtoMajor != c.major || !strings.Contains(body, "path=/x") {
			t.Fatalf("Go client over TLS: %s %d %q", resp.Proto, resp.StatusCode, body)
		}
		h := be.last.Load().(http.Header)
		if h.Get("X-Tls") != "1" || h.Get("X-Sni") != "localhost" || h.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("HTTP/%d over TLS: the server saw %v", c.major, h)
		}
	}
	resp, _ := getResp(t, &http.Client{Timeout: 10 * time.Second}, "GET", fmt.Sprintf("http://127.0.0.1:%d/x", clear), nil)
	if h := be.last.Load().(http.Header); resp.StatusCode != 200 || h.Get("X-Tls") != "0" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("clear HTTP/1.1: the server saw %v", h)
	}
	// tune.http.maxhdr applies to HTTP/2 requests too: Go's client adds
	// User-Agent and Accept-Encoding, and the authority counts as Host.
	many := map[string]string{}
	for i := 0; i < 98; i++ {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	if resp, _ := getResp(t, client, "GET", fmt.Sprintf("https://127.0.0.1:%d/x", port), many); resp.StatusCode != 400 || resp.ProtoMajor != 2 {
		t.Errorf("HTTP/2 request with 101 header fields: %s %d", resp.Proto, resp.StatusCode)
	}
	delete(many, "X-H0")
	if resp, _ := getResp(t, client, "GET", fmt.Sprintf("https://127.0.0.1:%d/x", port), many); resp.StatusCode != 200 {
		t.Errorf("HTTP/2 request with 100 header fields: %d", resp.StatusCode)
	}

	resp, body := getResp(t, client, "GET", fmt.Sprintf("https://127.0.0.1:%d/h2/y", port), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "server proto HTTP/2.0") {
		t.Fatalf("proto h2 server: %d %q", resp.StatusCode, body)
	}
	resp, body = getResp(t, h1, "GET", fmt.Sprintf("https://127.0.0.1:%d/h2tls", port), nil)
	if resp.StatusCode != 200 || body != "server proto HTTP/2.0 over TLS true\n" {
		t.Fatalf("proto h2 ssl server: %d %q", resp.StatusCode, body)
	}

	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	out, err := exec.Command("curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", fmt.Sprintf("https://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil || string(out) != "2 200" {
		t.Errorf("curl --http2: %q %v", out, err)
	}
	out, err = exec.Command("curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", fmt.Sprintf("http://127.0.0.1:%d/", clear)).CombinedOutput()
	if err != nil || string(out) != "2 200" {
		t.Errorf("curl --http2-prior-knowledge: %q %v", out, err)
	}
	out, err = exec.Command("curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{num_connects}\n", fmt.Sprintf("http://127.0.0.1:%d/a", clear), fmt.Sprintf("http://127.0.0.1:%d/b", clear)).CombinedOutput()
	if err != nil || string(out) != "1.1 200 1\n1.1 200 0\n" {
		t.Errorf("curl keep-alive: %q %v", out, err)
	}
}

// TestHTTPH2Load runs h2load through TLS with ALPN h2, when it is
// installed, and expects every request to succeed.
func TestHTTPH2Load(t *testing.T) {
	if _, err := exec.LookPath("h2load"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("h2load is not installed (scripts/test installs nghttp2-client)")
		}
		t.Skip("h2load is not installed")
	}
	be, port, cert := startCountingBackend(t), freePort(t), writeCert(t)
	startSluice(t, fmt.Sprintf(`global
    nbproc 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen f
    bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
    server w 127.0.0.1:%d
`, port, cert, be.port), fmt.Sprintf("127.0.0.1:%d", port))
	out, err := exec.Command("h2load", "-n", "2000", "-c", "4", "-m", "10", fmt.Sprintf("https://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`requests: 2000 total, 2000 started, 2000 done, 2000 succeeded`).Find(out)
	if m == nil || !strings.Contains(string(out), "Application protocol: h2") {
		t.Fatalf("h2load:\n%s", out)
	}
	t.Logf("h2load:\n%s", out)
}

// TestHTTPRedirectKeywordMatchesHAProxy runs the proxy keyword "redirect"
// beside http-request rules (and "return") on Sluice and HAProxy:
// redirects run after the http-request rules, even after an allow.
func TestHTTPRedirectKeywordMatchesHAProxy(t *testing.T) {
	rules := `    redirect prefix https://new.example code 301 if { path_beg /legacy }
    http-request allow if { path /legacy/ok }
    http-request deny if { path /legacy/deny }
    http-request return status 200 content-type text/plain string ok hdr X-A b if { path /health }
    http-request return status 404 if { path /nothing }
`
	want := map[string]string{
		"/legacy/x":    "301 https://new.example/legacy/x",
		"/legacy/ok":   "301 https://new.example/legacy/ok",
		"/legacy/deny": "403 ",
		"/other":       "200 ",
		"/health":      "200  text/plain b \"ok\"",
		"/nothing":     "404  ",
	}
	be := startCountingBackend(t)
	ports := map[string]int{"sluice": freePort(t)}
	startSluice(t, plainHTTPConfig(ports["sluice"], be.port, rules), fmt.Sprintf("127.0.0.1:%d", ports["sluice"]))
	if _, err := exec.LookPath("haproxy"); err == nil {
		ports["haproxy"] = freePort(t)
		startHAProxy(t, strings.Replace(plainHTTPConfig(ports["haproxy"], be.port, rules), "    nbproc 1\n", "    nbthread 1\n", 1))
		waitTCP(t, ports["haproxy"])
	}
	c := noRedirect()
	for who, port := range ports {
		for path, w := range want {
			resp, body := getResp(t, c, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
			got := fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Location"))
			if strings.Contains(w, "\"") || w == "404  " {
				got += fmt.Sprintf(" %s", resp.Header.Get("Content-Type"))
				if w != "404  " {
					got += fmt.Sprintf(" %s %q", resp.Header.Get("X-A"), body)
				}
			}
			if got != w {
				t.Errorf("%s %s: %q, want %q", who, path, got, w)
			}
		}
	}
}

// A server that fails in the middle of a body must not keep its
// connection slot: with maxconn 1, the next request would wait in the
// queue until it times out with a 503.
func TestHTTPServerCutMidBody(t *testing.T) {
	server := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cut" {
			io.WriteString(w, "ok")
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if r.URL.Query().Has("chunked") {
			rw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nonly a part\r\n")
		} else {
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a part")
		}
		rw.Flush()
		c.Close()
	}))
	port := freePort(t)
	startSluice(t, fmt.Sprintf(`global
    nbproc 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout queue 2s
listen web
    bind 127.0.0.1:%d
    server app 127.0.0.1:%d maxconn 1
`, port, server), fmt.Sprintf("127.0.0.1:%d", port))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string, error) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	for i := 0; i < 3; i++ {
		// With a length, and chunked: the client must not see an end.
		for _, path := range []string{"/cut", "/cut?chunked"} {
			if _, _, err := get(path); err == nil {
				t.Fatalf("%s: a response cut short read as complete", path)
			}
		}
		if code, body, err := get("/ok"); err != nil || code != 200 || body != "ok" {
			t.Fatalf("after a cut response: %d %q %v (the server's slot was not released)", code, body, err)
		}
	}
}
