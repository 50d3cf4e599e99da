package e2e

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// compressionPoolConfig chains three tiers: the dispatcher, a TLS pool in
// http mode (processes 2-3) and a compression pool (processes 4-5)
// reached over abns with PROXY v2, which compresses and forwards to the
// server. The configuration alone decides which processes do TLS and
// which compress.
const compressionPoolConfig = `listen dispatcher
   bind 127.0.0.1:%[1]d process 1
   balance leastconn
   server tls2 abns@%[2]s-t2 send-proxy-v2
   server tls3 abns@%[2]s-t3 send-proxy-v2

listen tls
   mode http
   bind abns@%[2]s-t2 process 2 accept-proxy ssl crt %[3]s alpn h2,http/1.1
   bind abns@%[2]s-t3 process 3 accept-proxy ssl crt %[3]s alpn h2,http/1.1
   balance leastconn
   server comp4 abns@%[2]s-c4 send-proxy-v2
   server comp5 abns@%[2]s-c5 send-proxy-v2

listen compress
   mode http
   bind abns@%[2]s-c4 process 4 accept-proxy
   bind abns@%[2]s-c5 process 5 accept-proxy
   option forwardfor
   compression algo gzip deflate zstd br
   compression type text/plain text/html
   compression offload
   server app 127.0.0.1:%[4]d
`

// textBody is n bytes of text that compresses like a web page, the same
// for the same n.
func textBody(n int) []byte {
	words := []string{"sluice ", "tier ", "<p class=\"x\">", "</p>\n", "compress ", "worker ", "2026 "}
	r := rand.New(rand.NewPCG(uint64(n), 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

// compressBackend serves /size/N: N bytes of textBody as text/plain with
// its Content-Length, and tells in response headers the Accept-Encoding
// and X-Forwarded-For it received. Other paths are in handlers.
func compressBackend(t *testing.T, handlers map[string]http.HandlerFunc) int {
	t.Helper()
	return serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		if h, ok := handlers[r.URL.Path]; ok {
			h(w, r)
			return
		}
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/size/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(textBody(n))
	}))
}

func decodeBody(t *testing.T, encoding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch encoding {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(b))
	case "zstd":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(b))
		if err == nil {
			defer d.Close()
			r = d
		}
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "":
		return b
	default:
		t.Fatalf("unexpected Content-Encoding %q", encoding)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", encoding, err)
	}
	return out
}

func startCompressionPool(t *testing.T, backend int) (url string, in *instance) {
	t.Helper()
	port := freePort(t)
	cfg := fmt.Sprintf(compressionPoolConfig, port, abnsName(t, "p"), writeCert(t), backend)
	in = startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
	waitFor(t, 10*time.Second, "5 processes", func() bool { return len(in.children(t)) == 5 })
	return fmt.Sprintf("https://127.0.0.1:%d", port), in
}

// TestCompressionPoolRoundTrip: through TLS pool and compression pool,
// every size from 0 to 10 MiB decompresses to the exact bytes the server
// sent, for each algorithm, with Go's client; the server saw the client's
// address (PROXY v2 over two http hops) and no Accept-Encoding (offload).
func TestCompressionPoolRoundTrip(t *testing.T) {
	url, _ := startCompressionPool(t, compressBackend(t, nil))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		DisableCompression: true, // we ask and decode ourselves
	}}
	sizes := []int{0, 1, 100, 1 << 10, 64 << 10, 1 << 20, 10 << 20}
	for _, algo := range []string{"gzip", "deflate", "zstd", "br"} {
		for _, n := range sizes {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/size/%d", url, n), nil)
			req.Header.Set("Accept-Encoding", algo)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %d: %v", algo, n, err)
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s %d: read: %v", algo, n, err)
			}
			enc := resp.Header.Get("Content-Encoding")
			// An empty body (Content-Length: 0) is not compressed.
			if wantEnc := algo; n > 0 && enc != wantEnc || n == 0 && enc != "" {
				t.Errorf("%s %d: Content-Encoding %q", algo, n, enc)
			}
			if got := decodeBody(t, enc, raw); !bytes.Equal(got, textBody(n)) {
				t.Fatalf("%s %d: decoded %d bytes, not the %d the server sent", algo, n, len(got), n)
			}
			if n > 0 && (resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Etag") != `W/"v1"`) {
				t.Errorf("%s %d: Vary %q, ETag %q", algo, n, resp.Header.Get("Vary"), resp.Header.Get("Etag"))
			}
			if n >= 64<<10 && len(raw) > n/2 {
				t.Errorf("%s %d: %d bytes on the wire", algo, n, len(raw))
			}
			if ae, xff := resp.Header.Get("X-Seen-Accept-Encoding"), resp.Header.Get("X-Seen-Forwarded-For"); ae != "" || xff != "127.0.0.1" {
				t.Errorf("%s %d: the server saw Accept-Encoding %q, X-Forwarded-For %q", algo, n, ae, xff)
			}
		}
	}
}

// TestCompressionCurl: curl --compressed, over HTTP/2 and HTTP/1.1, gets
// the server's bytes back.
func TestCompressionCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	url, _ := startCompressionPool(t, compressBackend(t, nil))
	dir := t.TempDir()
	for _, proto := range []string{"--http2", "--http1.1"} {
		for _, n := range []int{1, 64 << 10, 1 << 20} {
			out := filepath.Join(dir, "body")
			cmd := exec.Command("curl", "-sSk", "--compressed", proto, "-o", out,
				"-w", "%{http_version} %{size_download}", fmt.Sprintf("%s/size/%d", url, n))
			res, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("curl %s: %v: %s", proto, err, res)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, textBody(n)) {
				t.Fatalf("curl %s %d: %d bytes differ from the server's", proto, n, len(got))
			}
			var version string
			var wire int
			fmt.Sscanf(string(res), "%s %d", &version, &wire)
			if want := map[string]string{"--http2": "2", "--http1.1": "1.1"}[proto]; version != want {
				t.Errorf("curl %s: HTTP version %s", proto, version)
			}
			if n >= 64<<10 && wire > n/2 {
				t.Errorf("curl %s %d: %d bytes downloaded: not compressed", proto, n, wire)
			}
		}
	}
}

// TestCompressionStreams: a response the server sends in pieces, waiting
// between them, reaches the client piece by piece, compressed: nothing
// waits for the end of the body.
func TestCompressionStreams(t *testing.T) {
	release := make(chan struct{})
	backend := compressBackend(t, map[string]http.HandlerFunc{
		"/stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "first piece\n")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "second piece\n")
		},
	})
	url, _ := startCompressionPool(t, backend)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	// Go's client asks for gzip and decodes it itself.
	resp, err := client.Get(url + "/stream")
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !resp.Uncompressed {
		t.Error("the response was not compressed")
	}
	first := make([]byte, len("first piece\n"))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
	select {
	case err := <-done:
		if err != nil || string(first) != "first piece\n" {
			t.Fatalf("read %q, %v", first, err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("the first piece did not arrive before the end of the body")
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second piece\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// cacheConfig is one http process with a cache and compression.
const cacheConfig = `cache small
   total-max-size 4
   max-object-size 100000
   max-age 60

listen web
   mode http
   bind 127.0.0.1:%[1]d process 1
   compression algo gzip
   http-request cache-use small
   http-response cache-store small
   server app 127.0.0.1:%[2]d
`

// TestCacheRules: a public response is served from the cache with an Age
// header (and compressed for clients that ask); a private one, one that
// sets a cookie and an expired one never are.
func TestCacheRules(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	count := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
	}
	body := strings.Repeat("cached text ", 200)
	backend := compressBackend(t, map[string]http.HandlerFunc{
		"/public": func(w http.ResponseWriter, r *http.Request) {
			count(w, r)
			w.Header().Set("Cache-Control", "public, max-age=30")
			io.WriteString(w, body)
		},
		"/private": func(w http.ResponseWriter, r *http.Request) {
			count(w, r)
			w.Header().Set("Cache-Control", "private, max-age=30")
			io.WriteString(w, "for "+r.URL.RawQuery)
		},
		"/cookie": func(w http.ResponseWriter, r *http.Request) {
			count(w, r)
			w.Header().Set("Cache-Control", "max-age=30")
			w.Header().Set("Set-Cookie", "session="+r.URL.RawQuery)
			io.WriteString(w, "for "+r.URL.RawQuery)
		},
		"/short": func(w http.ResponseWriter, r *http.Request) {
			count(w, r)
			w.Header().Set("Cache-Control", "max-age=1")
			io.WriteString(w, "short")
		},
	})
	port := freePort(t)
	startSluice(t, fmt.Sprintf(cacheConfig, port, backend), fmt.Sprintf("127.0.0.1:%d", port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	fetch := func(path, ae string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(decodeBody(t, resp.Header.Get("Content-Encoding"), b))
	}

	// Public: one trip to the server, then hits with an Age, compressed
	// or not as each client asks.
	for i := range 10 {
		ae := []string{"", "gzip"}[i%2]
		resp, got := fetch("/public", ae)
		if got != body {
			t.Fatalf("public %d: wrong body (%d bytes)", i, len(got))
		}
		if i > 0 && resp.Header.Get("Age") == "" {
			t.Errorf("public %d: no Age header on a hit", i)
		}
		if enc := resp.Header.Get("Content-Encoding"); (ae == "gzip") != (enc == "gzip") {
			t.Errorf("public %d: asked %q, got Content-Encoding %q", i, ae, enc)
		}
	}
	// Private and cookie responses: every request reaches the server and
	// gets its own answer.
	for _, path := range []string{"/private", "/cookie"} {
		for i := range 5 {
			_, got := fetch(fmt.Sprintf("%s?client%d", path, i), "")
			if got != fmt.Sprintf("for client%d", i) {
				t.Fatalf("%s client %d got %q: another client's response", path, i, got)
			}
		}
		// The same URL twice: still not from the cache.
		fetch(path+"?same", "")
		fetch(path+"?same", "")
	}
	// A response fresh for 1 s is served from the cache, then no more.
	fetch("/short", "")
	fetch("/short", "")
	waitFor(t, 5*time.Second, "/short to expire", func() bool {
		fetch("/short", "")
		mu.Lock()
		defer mu.Unlock()
		return hits["/short"] == 2
	})

	mu.Lock()
	defer mu.Unlock()
	if hits["/public"] != 1 {
		t.Errorf("/public reached the server %d times for 10 requests, want 1", hits["/public"])
	}
	if hits["/private"] != 7 || hits["/cookie"] != 7 {
		t.Errorf("/private reached the server %d times, /cookie %d, want 7 each", hits["/private"], hits["/cookie"])
	}
}

// TestCompressionPoolKeepsClientsApart: keep-alive clients from two
// addresses, their requests interleaved: each request reaches the server
// with its own client's address, so the pooled connections between the
// tiers, each opened with a PROXY header, are never shared between
// clients.
func TestCompressionPoolKeepsClientsApart(t *testing.T) {
	url, _ := startCompressionPool(t, compressBackend(t, nil))
	clients := map[string]*http.Client{}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		clients[ip] = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext:     d.DialContext,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
	}
	for i := range 20 {
		ip := []string{"127.0.0.1", "127.0.0.2"}[i%2]
		resp, err := clients[ip].Get(url + "/size/100")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Seen-Forwarded-For"); got != ip {
			t.Fatalf("request %d from %s reached the server as from %q", i, ip, got)
		}
	}
}

// TestCompressionInlineHTTP2: compression in the TLS process itself, to a
// Go client speaking HTTP/2; a client that asks for nothing gets the plain
// body with Vary, an HTTP/1.0 client gets it plain.
func TestCompressionInlineHTTP2(t *testing.T) {
	port := freePort(t)
	cfg := fmt.Sprintf(`listen web
   mode http
   bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
   compression algo br gzip
   server app 127.0.0.1:%d
`, port, writeCert(t), compressBackend(t, nil))
	startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
	url := fmt.Sprintf("https://127.0.0.1:%d/size/%d", port, 256<<10)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
	}}
	for _, tt := range []struct{ ae, want string }{{"gzip, br", "br"}, {"gzip", "gzip"}, {"", ""}, {"br;q=0, gzip;q=0", ""}} {
		req, _ := http.NewRequest("GET", url, nil)
		if tt.ae != "" {
			req.Header.Set("Accept-Encoding", tt.ae)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("%q: %s, want HTTP/2", tt.ae, resp.Proto)
		}
		enc := resp.Header.Get("Content-Encoding")
		if enc != tt.want || resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, Vary %q", tt.ae, enc, resp.Header.Get("Vary"))
		}
		if !bytes.Equal(decodeBody(t, enc, raw), textBody(256<<10)) {
			t.Fatalf("Accept-Encoding %q: body differs", tt.ae)
		}
	}
	// HTTP/1.0 is never compressed.
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /size/1000 HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(resp), "\r\n\r\n")
	if strings.Contains(strings.ToLower(head), "content-encoding") || body != string(textBody(1000)) {
		t.Errorf("HTTP/1.0 response:\n%s", head)
	}
}
