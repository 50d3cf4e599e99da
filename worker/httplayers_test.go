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
)

func testLayers(t *testing.T) *httpLayers {
	t.Helper()
	comp, err := compression.New(compression.Options{Algos: []string{compression.Gzip}})
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(cache.Options{MaxBytes: 1 << 20, MaxObject: 1 << 16, MaxAge: time.Minute}, nil)
	return &httpLayers{comp: comp, use: c, store: c}
}

var layerBody = strings.Repeat("layered text ", 100)

// forward plays the server's part: a cacheable text response. complete
// false cuts it short, as a server that goes away mid-body.
func forward(l *httpLayers, r *http.Request, complete bool) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	x := l.begin(rec, r)
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
	l := testLayers(t)
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
	if s := l.use.Stats(); s.Stored != 1 || s.Hits != 2 {
		t.Errorf("cache stats %+v", s)
	}
}

func TestLayersCutShort(t *testing.T) {
	l := testLayers(t)
	rec := forward(l, gzipGet("gzip"), false)
	if l.store.Stats().Objects != 0 {
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
	x := l.begin(rec, gzipGet("gzip"))
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
