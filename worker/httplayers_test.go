package worker

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/cache"
	"github.com/sluicelb/sluice/compression"
	"github.com/sluicelb/sluice/config"
)

func testLayers(t *testing.T) (*httpLayers, *cache.Cache) {
	t.Helper()
	c := cache.New(cache.Options{MaxBytes: 1 << 20, MaxObject: 1 << 16, MaxAge: time.Minute}, nil)
	front := &config.Proxy{Name: "web", Frontend: true, Backend: true, Mode: config.ModeHTTP,
		Compression: &config.Compression{Algos: []string{compression.Gzip}},
		CacheUse:    "c", CacheStore: "c"}
	l, err := newHTTPLayers(front, &config.Config{Proxies: []*config.Proxy{front}}, map[string]*cache.Cache{"c": c})
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

var layerBody = strings.Repeat("layered text ", 100)

// forward plays the server's part: a cacheable text response. complete
// false cuts it short, as a server that goes away mid-body.
func forward(l *httpLayers, r *http.Request, complete bool) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	x := l.begin(rec, r, l.front)
	defer x.end()
	if x.serveCached(r) {
		return rec
	}
	x.w.Header().Set("Content-Type", "text/plain")
	x.w.Header().Set("Cache-Control", "max-age=60")
	x.w.WriteHeader(http.StatusOK)
	if !complete {
		io.WriteString(x.w, layerBody[:100])
		return rec
	}
	io.WriteString(x.w, layerBody)
	x.done()
	return rec
}

func gzipGet(ae string) *http.Request {
	r := httptest.NewRequest("GET", "/page", nil)
	if ae != "" {
		r.Header.Set("Accept-Encoding", ae)
	}
	return r
}

func TestLayersCacheBelowCompression(t *testing.T) {
	l, c := testLayers(t)
	first := forward(l, gzipGet("gzip"), true)
	if first.Header().Get("Content-Encoding") != "gzip" || first.Header().Get("Age") != "" {
		t.Fatalf("first response: %v", first.Header())
	}
	// The cache holds the server's plain bytes: a plain client gets them,
	// a gzip client gets them compressed, both with an Age.
	plain := forward(l, gzipGet(""), true)
	if plain.Header().Get("Age") == "" || plain.Header().Get("Content-Encoding") != "" || plain.Body.String() != layerBody {
		t.Fatalf("plain hit: %v %q", plain.Header(), plain.Body.String())
	}
	hit := forward(l, gzipGet("gzip"), true)
	if hit.Header().Get("Age") == "" || hit.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip hit: %v", hit.Header())
	}
	zr, err := gzip.NewReader(bytes.NewReader(hit.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || string(got) != layerBody {
		t.Fatalf("gzip hit decodes to %d bytes, %v", len(got), err)
	}
	if s := c.Stats(); s.Stored != 1 || s.Hits != 2 {
		t.Errorf("cache stats %+v", s)
	}
}

func TestLayersCutShort(t *testing.T) {
	l, c := testLayers(t)
	rec := forward(l, gzipGet("gzip"), false)
	if c.Stats().Objects != 0 {
		t.Error("a response cut short was stored")
	}
	// The client must see a truncated stream, not a well-formed one.
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err == nil {
		_, err = io.ReadAll(zr)
	}
	if err == nil {
		t.Error("the cut-short response decodes as complete")
	}
}

func TestLayersNone(t *testing.T) {
	var l *httpLayers
	rec := httptest.NewRecorder()
	x := l.begin(rec, gzipGet("gzip"), nil)
	if x.serveCached(gzipGet("gzip")) {
		t.Fatal("served from no cache")
	}
	io.WriteString(x.w, "plain")
	x.done()
	x.end()
	if rec.Body.String() != "plain" || rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("%v %q", rec.Header(), rec.Body.String())
	}
}

// TestLayersBackendCompression: the backend's compression wins over the
// frontend's, the frontend's cache rules over the backend's.
func TestLayersBackendCompression(t *testing.T) {
	front := &config.Proxy{Name: "f", Frontend: true, Mode: config.ModeHTTP,
		Compression: &config.Compression{Algos: []string{compression.Gzip}}}
	br := &config.Proxy{Name: "b", Backend: true, Mode: config.ModeHTTP,
		Compression: &config.Compression{Algos: []string{compression.Brotli}}}
	plain := &config.Proxy{Name: "p", Backend: true, Mode: config.ModeHTTP}
	l, err := newHTTPLayers(front, &config.Config{Proxies: []*config.Proxy{front, br, plain}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		be   *config.Proxy
		want string
	}{{br, "br"}, {plain, "gzip"}, {nil, "gzip"}} {
		rec := httptest.NewRecorder()
		r := gzipGet("gzip, br")
		x := l.begin(rec, r, tt.be)
		x.w.Header().Set("Content-Type", "text/plain")
		io.WriteString(x.w, layerBody)
		x.done()
		x.end()
		if got := rec.Header().Get("Content-Encoding"); got != tt.want {
			t.Errorf("backend %v: Content-Encoding %q, want %q", tt.be, got, tt.want)
		}
	}
}
