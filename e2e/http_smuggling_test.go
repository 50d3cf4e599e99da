package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend is an HTTP server that counts the requests it receives
// (and the connections, for the reuse tests), and answers 200.
type countingBackend struct {
	port     int
	requests atomic.Int64
	conns    atomic.Int64
	last     atomic.Value // the last request's headers, http.Header
}

func startCountingBackend(t *testing.T) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	b.port = serveServer(t, &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.requests.Add(1)
			b.last.Store(r.Header.Clone())
			w.Header().Set("X-Proto", r.Proto)
			fmt.Fprintf(w, "path=%s host=%s\n", r.URL.Path, r.Host)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		},
	})
	return b
}

// dialRaw connects to a local port for raw bytes, with 5 s for the whole
// exchange; the connection closes when the test ends.
func dialRaw(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// rawStatus sends raw bytes on a new connection and returns the status
// code of the first response ("" when the connection closed without one).
func rawStatus(t *testing.T, port int, raw string) string {
	t.Helper()
	c := dialRaw(t, port)
	defer c.Close()
	if _, err := c.Write([]byte(raw)); err != nil {
		return "write: " + err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[1]
}

// smuggling is the table of malformed requests: sluice answers each with
// 400 and forwards nothing. haproxy is what HAProxy 2.6.12 answers to the
// same bytes in front of the same server ("200" means it forwarded the
// request, leniently); TestHTTPSmugglingHAProxy checks it.
var smuggling = []struct {
	name, raw, haproxy string
}{
	{"duplicate Content-Length, different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", "400"},
	{"duplicate Content-Length, same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", "200"},
	{"Content-Length list, same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", "200"},
	{"Content-Length list, different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nxx", "400"},
	{"Content-Length trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,\r\n\r\nx", "400"},
	{"Content-Length negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "400"},
	{"Content-Length plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", "400"},
	{"Content-Length hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\nx", "400"},
	{"Content-Length overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", "400"},
	{"Content-Length empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", "400"},
	{"Content-Length inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\nxxxxxxxxxx", "400"},
	{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED", "200"},
	{"CL.TE with a request after", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(5+len(smuggled)) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, "200"},
	{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk(smuggled) + "0\r\n\r\n", "200"},
	{"Transfer-Encoding twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
	{"Transfer-Encoding chunked, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", "400"},
	{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "422"},
	{"Transfer-Encoding xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "400"},
	{"Transfer-Encoding identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", "400"},
	{"Transfer-Encoding chunked then cow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n0\r\n\r\n", "400"},
	{"Transfer-Encoding vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", "400"},
	{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "200"},
	{"chunk size not hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "400"},
	{"chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n", "400"},
	{"chunk size 0x prefix", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", "400"},
	{"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff3\r\nabc\r\n0\r\n\r\n", "400"},
	{"chunk size empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n", "400"},
	{"chunk size space before extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 ;x\r\nabc\r\n0\r\n\r\n", "200"},
	{"chunk data longer than size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", "400"},
	{"chunk data without CRLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n", "400"},
	{"chunk size bare CR", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\rabc\r\n0\r\n\r\n", "400"},
	{"chunk extension control character", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\x01\r\nabc\r\n0\r\n\r\n", "200"},
	{"bad trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", "400"},
	{"header name with space", "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", "400"},
	{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", "400"},
	{"header without colon", "GET / HTTP/1.1\r\nHost: a\r\nFoo\r\n\r\n", "400"},
	{"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", "400"},
	{"header name with parenthesis", "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", "400"},
	{"NUL in header name", "GET / HTTP/1.1\r\nHost: a\r\nX\x00y: z\r\n\r\n", "400"},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "200"},
	{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", "200"},
	{"obs-fold of Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "200"},
	{"NUL in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", "400"},
	{"control character in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", "400"},
	{"DEL in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", "400"},
	{"bare CR in header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "400"},
	{"bare CR ending the request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", "400"},
	{"method with parenthesis", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", "400"},
	{"version HTTP/2.0 in HTTP/1", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "200"},
	{"version HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", "200"},
	{"HTTP/0.9 request", "GET /\r\n\r\n", "400"},
	{"text after version", "GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", "400"},
	{"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "200"},
	{"tab between method and target", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "200"},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"non-ASCII byte in target", "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"control character in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"target neither path nor URL", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", "400"},
	{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
	{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400"},
	{"101 header lines", "GET / HTTP/1.1\r\nHost: a\r\n" + headerLines(100) + "\r\n", "400"},
	{"head larger than tune.bufsize", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n", "400"},
	{"request line larger than tune.bufsize", "GET /" + strings.Repeat("a", 20000) + " HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
}

// smuggled is a request hidden in the body of another.
const smuggled = "GPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 15\r\n\r\nx=1"

// chunk frames data as one chunk.
func chunk(data string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(data), data) }

func headerLines(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "X-%d: y\r\n", i)
	}
	return b.String()
}

// plainHTTPConfig is a one-process http-mode configuration in front of a
// server.
func plainHTTPConfig(port, server int, extra string) string {
	return fmt.Sprintf(`global
    nbproc 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 2s
listen web
    bind 127.0.0.1:%d
%s    server app 127.0.0.1:%d
`, port, extra, server)
}

func TestHTTPSmuggling(t *testing.T) {
	if len(smuggling) < 40 {
		t.Fatalf("the table has %d cases", len(smuggling))
	}
	be, port := startCountingBackend(t), freePort(t)
	startSluice(t, plainHTTPConfig(port, be.port, ""), fmt.Sprintf("127.0.0.1:%d", port))
	if got := rawStatus(t, port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); got != "200" {
		t.Fatalf("a valid request got %q", got)
	}
	for _, c := range smuggling {
		before := be.requests.Load()
		if got := rawStatus(t, port, c.raw); got != "400" {
			t.Errorf("%s: status %q, want 400", c.name, got)
		}
		if n := be.requests.Load() - before; n != 0 {
			t.Errorf("%s: %d requests reached the server", c.name, n)
		}
	}
}

// TestHTTPSmugglingHAProxy sends the same table to HAProxy, to keep the
// comparison in the table true.
func TestHTTPSmugglingHAProxy(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	be, port := startCountingBackend(t), freePort(t)
	startHAProxy(t, strings.Replace(plainHTTPConfig(port, be.port, ""), "    nbproc 1\n", "    nbthread 1\n", 1))
	waitTCP(t, port)
	differ := 0
	for _, c := range smuggling {
		got := rawStatus(t, port, c.raw)
		if got != c.haproxy {
			t.Errorf("%s: HAProxy answers %q, the table says %q", c.name, got, c.haproxy)
		}
		if got != "400" {
			differ++
		}
	}
	t.Logf("%d malformed requests: sluice answers 400 to all, HAProxy to %d (it forwards or answers otherwise %d)", len(smuggling), len(smuggling)-differ, differ)
}

// TestHTTPRequestTimeout checks timeout http-request: a head that does not
// complete gets HAProxy's 408 page, an idle keep-alive connection closes
// without one.
func TestHTTPRequestTimeout(t *testing.T) {
	be, port := startCountingBackend(t), freePort(t)
	startSluice(t, plainHTTPConfig(port, be.port, "    timeout http-request 300ms\n    timeout http-keep-alive 300ms\n"), fmt.Sprintf("127.0.0.1:%d", port))
	c := dialRaw(t, port)
	c.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 200)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != 408 || !strings.Contains(string(body[:n]), "<h1>408 Request Time-out</h1>") {
		t.Fatalf("got %d %q", resp.StatusCode, body[:n])
	}

	// Keep-alive: one request, then silence.
	c2 := dialRaw(t, port)
	c2.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	r := bufio.NewReader(c2)
	resp, err = http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	resp.Body.Close()
	start := time.Now()
	rest, err := r.ReadString('\n')
	if rest != "" || time.Since(start) > 3*time.Second {
		t.Fatalf("idle keep-alive connection: got %q, %v after %v", rest, err, time.Since(start))
	}
}

// TestHTTPPipelineThenMalformed sends two valid requests and a malformed
// one in one write: the two are answered in order, then the 400 page, and
// the server sees only the two.
func TestHTTPPipelineThenMalformed(t *testing.T) {
	be, port := startCountingBackend(t), freePort(t)
	startSluice(t, plainHTTPConfig(port, be.port, ""), fmt.Sprintf("127.0.0.1:%d", port))
	c := dialRaw(t, port)
	c.Write([]byte("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n"))
	r := bufio.NewReader(c)
	for i, want := range []int{200, 200, 400} {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("response %d: %d %q", i, resp.StatusCode, body)
		}
		if want == 400 && (string(body) != "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n" || !resp.Close) {
			t.Errorf("400 page %q, close %v", body, resp.Close)
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after the 400: %v, want the connection closed", err)
	}
	if n := be.requests.Load(); n != 2 {
		t.Errorf("the server saw %d requests", n)
	}
}

// TestHTTPUpgrade checks that a connection the server upgrades (101)
// becomes a tunnel, and that one it does not upgrade stays checked.
func TestHTTPUpgrade(t *testing.T) {
	server := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			io.WriteString(w, "no upgrade\n")
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(c, rw)
	}))
	port := freePort(t)
	startSluice(t, plainHTTPConfig(port, server, ""), fmt.Sprintf("127.0.0.1:%d", port))

	c := dialRaw(t, port)
	c.Write([]byte("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	msg := "not HTTP \x00 at all\r\n\r\n"
	c.Write([]byte(msg))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
		t.Fatalf("tunnel echo %q %v", got, err)
	}

	// Refused upgrade: the next request is checked again.
	c2 := dialRaw(t, port)
	c2.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n"))
	r2 := bufio.NewReader(c2)
	for _, want := range []int{200, 400} {
		resp, err := http.ReadResponse(r2, nil)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("want %d: %v %v", want, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
}

// TestHTTPErrorPagesMatchHAProxy asks Sluice and HAProxy for the same
// error pages (deny with deny_status) and compares status, headers and
// body.
func TestHTTPErrorPagesMatchHAProxy(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	codes := []int{400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504}
	var rules strings.Builder
	for _, c := range codes {
		fmt.Fprintf(&rules, "    http-request deny deny_status %d if { path /%d }\n", c, c)
	}
	be := startCountingBackend(t)
	sluicePort, haproxyPort := freePort(t), freePort(t)
	startSluice(t, plainHTTPConfig(sluicePort, be.port, rules.String()), fmt.Sprintf("127.0.0.1:%d", sluicePort))
	startHAProxy(t, strings.Replace(plainHTTPConfig(haproxyPort, be.port, rules.String()), "    nbproc 1\n", "    nbthread 1\n", 1))
	waitTCP(t, haproxyPort)
	fetch := func(port, code int) (int, http.Header, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/%d", port, code))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, c := range codes {
		ss, sh, sb := fetch(sluicePort, c)
		hs, hh, hb := fetch(haproxyPort, c)
		if ss != hs || sb != hb {
			t.Errorf("%d: sluice %d %q, haproxy %d %q", c, ss, sb, hs, hb)
		}
		for _, k := range []string{"Content-Type", "Cache-Control", "Content-Length"} {
			if sh.Get(k) != hh.Get(k) {
				t.Errorf("%d: %s: sluice %q, haproxy %q", c, k, sh.Get(k), hh.Get(k))
			}
		}
	}
}

// TestHTTPBadChunkLater sends a chunked request whose bad chunk comes after
// its head was forwarded: the request fails, the connection closes, and
// the request hidden after the bad chunk never reaches the server.
func TestHTTPBadChunkLater(t *testing.T) {
	var hidden atomic.Int64
	started := make(chan struct{}, 1)
	server := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hidden" {
			hidden.Add(1)
		}
		select {
		case started <- struct{}{}:
		default:
		}
		io.Copy(io.Discard, r.Body)
	}))
	port := freePort(t)
	startSluice(t, plainHTTPConfig(port, server, ""), fmt.Sprintf("127.0.0.1:%d", port))
	c := dialRaw(t, port)
	c.Write([]byte("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"))
	select { // the head reached the server before the bad chunk is sent
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the server")
	}
	c.Write([]byte("zz\r\n\r\nGET /hidden HTTP/1.1\r\nHost: a\r\n\r\n"))
	io.Copy(io.Discard, c) // whatever comes, until the connection closes
	if n := hidden.Load(); n != 0 {
		t.Fatalf("the hidden request reached the server %d times", n)
	}
}
