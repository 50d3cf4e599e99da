package compression

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

func TestNegotiate(t *testing.T) {
	all := []string{Gzip, Deflate, Zstd, Brotli}
	tests := []struct {
		name   string
		accept []string
		algos  []string
		want   string
	}{
		{"none sent", nil, all, ""},
		{"gzip", []string{"gzip"}, all, Gzip},
		{"config order breaks ties", []string{"br, gzip, zstd"}, all, Gzip},
		{"q decides", []string{"gzip;q=0.5, br;q=0.9"}, all, Brotli},
		{"q=0 refuses", []string{"gzip;q=0, deflate"}, all, Deflate},
		{"all refused", []string{"gzip;q=0"}, []string{Gzip}, ""},
		{"star", []string{"*"}, all, Gzip},
		{"star with refusal", []string{"*, gzip;q=0"}, all, Deflate},
		{"star q=0", []string{"*;q=0"}, all, ""},
		{"x-gzip", []string{"x-gzip"}, all, Gzip},
		{"case", []string{"GZIP;Q=1"}, all, Gzip},
		{"several headers", []string{"identity", "zstd"}, all, Zstd},
		{"not offered", []string{"br"}, []string{Gzip}, ""},
		{"raw-deflate answers deflate", []string{"deflate"}, []string{RawDeflate}, RawDeflate},
		{"identity first in config", []string{"gzip, identity"}, []string{Identity, Gzip}, ""},
		{"bad q is 0", []string{"gzip;q=2, deflate;q=0.1"}, all, Deflate},
		{"spaces", []string{"  gzip ;  q=0.3 , br ; q=0.2"}, all, Gzip},
		{"garbage", []string{`"gzip", ;;, =`}, all, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Negotiate(tt.accept, tt.algos); got != tt.want {
				t.Errorf("Negotiate(%q, %v) = %q, want %q", tt.accept, tt.algos, got, tt.want)
			}
		})
	}
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=0.5, *;q=0", "x-gzip;q=1.000", ";;,,", "gzip;q=0.0001"} {
		f.Add(s)
	}
	algos := []string{Gzip, Deflate, Zstd, Brotli}
	f.Fuzz(func(t *testing.T, s string) {
		for _, a := range ParseAcceptEncoding([]string{s}) {
			if a.Q < 0 || a.Q > 1 || a.Coding == "" {
				t.Fatalf("%q: bad element %+v", s, a)
			}
		}
		got := Negotiate([]string{s}, algos)
		if got != "" && weight(ParseAcceptEncoding([]string{s}), coding(got)) <= 0 {
			t.Fatalf("%q: chose %q, which the client refuses", s, got)
		}
	})
}

func TestRequest(t *testing.T) {
	c := mustNew(t, Options{Algos: []string{Gzip}, Offload: true})
	tests := []struct {
		name     string
		proto    string
		method   string
		ua       string
		want     string
		keepsHdr bool
	}{
		{"HTTP/1.1", "HTTP/1.1", "GET", "curl/8", Gzip, false},
		{"HTTP/2", "HTTP/2.0", "GET", "", Gzip, false},
		{"HTTP/1.0", "HTTP/1.0", "GET", "", "", true},
		{"HEAD", "HTTP/1.1", "HEAD", "", "", true},
		{"Netscape 4", "HTTP/1.1", "GET", "Mozilla/4.0 (X11; U)", "", true},
		{"MSIE 6", "HTTP/1.1", "GET", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", "", true},
		{"MSIE 6 SV1", "HTTP/1.1", "GET", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)", Gzip, false},
		{"MSIE 8", "HTTP/1.1", "GET", "Mozilla/4.0 (compatible; MSIE 8.0)", Gzip, false},
		{"Mozilla/5", "HTTP/1.1", "GET", "Mozilla/5.0", Gzip, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			r.Proto = tt.proto
			r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(tt.proto)
			r.Header.Set("User-Agent", tt.ua)
			r.Header.Set("Accept-Encoding", "gzip")
			if got := c.Request(r); got != tt.want {
				t.Errorf("algo %q, want %q", got, tt.want)
			}
			if kept := r.Header.Get("Accept-Encoding") != ""; kept != tt.keepsHdr {
				t.Errorf("Accept-Encoding kept = %v, want %v", kept, tt.keepsHdr)
			}
		})
	}
}

func TestResponseRules(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		status   int
		header   map[string]string
		compress bool
		vary     bool
	}{
		{"plain 200", Options{}, 200, nil, true, true},
		{"201", Options{}, 201, nil, true, true},
		{"203", Options{}, 203, nil, true, true},
		{"206", Options{}, 206, map[string]string{"Content-Range": "bytes 0-1/10"}, false, false},
		{"404", Options{}, 404, nil, false, false},
		{"304", Options{}, 304, nil, false, false},
		{"already encoded", Options{}, 200, map[string]string{"Content-Encoding": "br"}, false, false},
		{"no-transform", Options{}, 200, map[string]string{"Cache-Control": "public, no-transform"}, false, false},
		{"multipart", Options{}, 200, map[string]string{"Content-Type": "multipart/byteranges; boundary=x"}, false, false},
		{"type matches", Options{Types: []string{"text/html", "text/plain"}}, 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, true, true},
		{"type case", Options{Types: []string{"text/html"}}, 200, map[string]string{"Content-Type": "Text/HTML"}, true, true},
		{"type does not match", Options{Types: []string{"text/html"}}, 200, map[string]string{"Content-Type": "image/png"}, false, false},
		{"no type with types", Options{Types: []string{"text/html"}}, 200, nil, false, false},
		{"invalid etag", Options{}, 200, map[string]string{"Etag": "abc"}, false, false},
		{"empty body", Options{}, 200, map[string]string{"Content-Length": "0"}, false, false},
		{"below minsize", Options{MinSize: 100}, 200, map[string]string{"Content-Length": "99"}, false, false},
		{"at minsize", Options{MinSize: 100}, 200, map[string]string{"Content-Length": "100"}, true, true},
		{"unknown length with minsize", Options{MinSize: 100}, 200, nil, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Algos = []string{Gzip}
			c := mustNew(t, tt.opts)
			rec := httptest.NewRecorder()
			for k, v := range tt.header {
				rec.Header().Set(k, v)
			}
			w := c.Wrap(rec, httptest.NewRequest("GET", "/", nil), Gzip)
			w.WriteHeader(tt.status)
			w.Write([]byte("hello hello hello"))
			w.Close()
			got := rec.Header().Get("Content-Encoding") == "gzip"
			if got != tt.compress {
				t.Errorf("compressed = %v, want %v", got, tt.compress)
			}
			if vary := rec.Header().Get("Vary") == "Accept-Encoding"; vary != tt.vary {
				t.Errorf("Vary = %q, want Accept-Encoding: %v", rec.Header().Get("Vary"), tt.vary)
			}
		})
	}
}

func TestHeadersOfCompressedResponse(t *testing.T) {
	c := mustNew(t, Options{Algos: []string{Gzip}})
	tests := []struct {
		name, etag, vary, wantETag, wantVary string
	}{
		{"strong etag weakened", `"abc"`, "", `W/"abc"`, "Accept-Encoding"},
		{"weak etag kept", `W/"abc"`, "", `W/"abc"`, "Accept-Encoding"},
		{"vary appended", "", "Origin", "", "Origin,Accept-Encoding"},
		{"vary present", "", "accept-encoding", "", "accept-encoding"},
		{"vary star", "", "*", "", "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h := rec.Header()
			h.Set("Content-Length", "5")
			h.Set("Accept-Ranges", "bytes")
			if tt.etag != "" {
				h.Set("Etag", tt.etag)
			}
			if tt.vary != "" {
				h.Set("Vary", tt.vary)
			}
			w := c.Wrap(rec, httptest.NewRequest("GET", "/", nil), Gzip)
			w.Write([]byte("hello"))
			w.Close()
			if got := h.Get("Etag"); got != tt.wantETag {
				t.Errorf("ETag %q, want %q", got, tt.wantETag)
			}
			if got := joinValues(h.Values("Vary")); got != tt.wantVary {
				t.Errorf("Vary %q, want %q", got, tt.wantVary)
			}
			if h.Get("Content-Length") != "" || h.Get("Accept-Ranges") != "" {
				t.Errorf("Content-Length %q, Accept-Ranges %q kept", h.Get("Content-Length"), h.Get("Accept-Ranges"))
			}
		})
	}
}

func joinValues(v []string) string {
	var b bytes.Buffer
	for i, s := range v {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(s)
	}
	return b.String()
}

// body returns n bytes that compress like real text: words from a small
// vocabulary in random order.
func body(n int) []byte {
	words := []string{"sluice ", "haproxy ", "compression ", "<div class=\"x\">", "</div>\n", "0123 ", "tier ", "worker "}
	r := rand.New(rand.NewPCG(uint64(n), 7))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

// Decode decompresses a response body of that Content-Encoding.
func Decode(encoding string, b []byte) ([]byte, error) {
	r, err := newDecoder(encoding, b)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// newDecoder is a stream decoder of that Content-Encoding (or
// "raw-deflate") over b.
func newDecoder(encoding string, b []byte) (io.ReadCloser, error) {
	switch encoding {
	case "gzip":
		return gzip.NewReader(bytes.NewReader(b))
	case "deflate":
		return zlib.NewReader(bytes.NewReader(b))
	case "raw-deflate":
		return flate.NewReader(bytes.NewReader(b)), nil
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case "br":
		return io.NopCloser(brotli.NewReader(bytes.NewReader(b))), nil
	}
	return nil, fmt.Errorf("unknown encoding %q", encoding)
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 100, 1 << 10, 64 << 10, 1 << 20, 10 << 20}
	algos := []string{Gzip, Deflate, RawDeflate, Zstd, Brotli}
	c := mustNew(t, Options{Algos: algos})
	for _, algo := range algos {
		for _, n := range sizes {
			t.Run(algo+"/"+strconv.Itoa(n), func(t *testing.T) {
				want := body(n)
				rec := httptest.NewRecorder()
				w := c.Wrap(rec, httptest.NewRequest("GET", "/", nil), algo)
				w.WriteHeader(http.StatusOK)
				// Written in pieces, as a proxy copies a body.
				for b := want; len(b) > 0; {
					k := min(len(b), 32<<10)
					if _, err := w.Write(b[:k]); err != nil {
						t.Fatal(err)
					}
					b = b[k:]
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				enc := rec.Header().Get("Content-Encoding")
				if enc != coding(algo) {
					t.Fatalf("Content-Encoding %q", enc)
				}
				if algo == RawDeflate {
					enc = RawDeflate
				}
				got, err := Decode(enc, rec.Body.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("decoded %d bytes, differ from the %d sent", len(got), len(want))
				}
				if n >= 64<<10 && rec.Body.Len() > n/2 {
					t.Errorf("%d bytes compressed to %d", n, rec.Body.Len())
				}
			})
		}
	}
}

// flushRecorder counts what reached the client at each flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushed []int
}

func (f *flushRecorder) Flush() {
	f.flushed = append(f.flushed, f.Body.Len())
	f.ResponseRecorder.Flush()
}

func TestFlushSendsWhatWasWritten(t *testing.T) {
	for _, algo := range []string{Gzip, Deflate, RawDeflate, Zstd, Brotli} {
		t.Run(algo, func(t *testing.T) {
			c := mustNew(t, Options{Algos: []string{algo}})
			rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
			w := c.Wrap(rec, httptest.NewRequest("GET", "/", nil), algo)
			w.Write([]byte("event: one\n\n"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Fatal(err)
			}
			if len(rec.flushed) != 1 || rec.flushed[0] == 0 {
				t.Fatalf("flushes %v: nothing reached the client", rec.flushed)
			}
			// What was sent by the flush decodes to the event: a header
			// alone (zlib's, gzip's) would not. A stream decoder reads it
			// without the end of the stream.
			zr, err := newDecoder(algo, rec.Body.Bytes()[:rec.flushed[0]])
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			buf := make([]byte, 12)
			if _, err := io.ReadFull(zr, buf); err != nil || string(buf) != "event: one\n\n" {
				t.Fatalf("read %q, %v", buf, err)
			}
			w.Close()
		})
	}
}

// TestStreamingMemory checks that a 10 MiB body is not held: once an
// encoder is warm, passing 10 MiB through allocates far less than the body,
// for every algorithm.
func TestStreamingMemory(t *testing.T) {
	chunk := body(32 << 10)
	const total = 10 << 20
	for _, algo := range []string{Gzip, Deflate, RawDeflate, Zstd, Brotli} {
		t.Run(algo, func(t *testing.T) {
			c := mustNew(t, Options{Algos: []string{algo}})
			send := func() {
				w := c.Wrap(discardWriter{http.Header{}}, httptest.NewRequest("GET", "/", nil), algo)
				w.WriteHeader(http.StatusOK)
				for sent := 0; sent < total; sent += len(chunk) {
					w.Write(chunk)
				}
				w.Close()
			}
			send() // warm the pool
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			send()
			runtime.ReadMemStats(&after)
			// The pool may be emptied by a GC, and then a new encoder is
			// made: what is bounded is an encoder's state, not the body.
			if got := after.TotalAlloc - before.TotalAlloc; got > 3<<20 {
				t.Errorf("%d KiB allocated for a 10 MiB body", got>>10)
			} else {
				t.Logf("%d KiB allocated for a 10 MiB body", got>>10)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) WriteHeader(int)             {}
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func TestNewRefusesUnknownAlgo(t *testing.T) {
	if _, err := New(Options{Algos: []string{"lzma"}}); err == nil {
		t.Fatal("no error")
	}
}

func mustNew(t *testing.T, o Options) *Compressor {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The configured types are lower-cased once, in New, not per response.
func TestCompressibleDoesNotAllocate(t *testing.T) {
	c, err := New(Options{Algos: []string{Gzip}, Types: []string{"Text/HTML", "Application/JSON"}})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=10"}}
	if !c.compressible(200, h) {
		t.Fatal("application/json not compressible")
	}
	if n := testing.AllocsPerRun(100, func() { c.compressible(200, h) }); n != 0 {
		t.Errorf("compressible makes %v allocations per response", n)
	}
}
