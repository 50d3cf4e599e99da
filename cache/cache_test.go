package cache

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// clock is a settable time for freshness tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)} }
func opts() Options {
	return Options{MaxBytes: 1 << 20, MaxObject: 64 << 10, MaxAge: time.Minute, MaxSecondary: 10}
}
func get(target string) *http.Request { return httptest.NewRequest("GET", target, nil) }
func withHeader(r *http.Request, kv ...string) *http.Request {
	for i := 0; i < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

// store passes a response through a Store and finishes it.
func store(c *Cache, r *http.Request, status int, header map[string]string, body string) {
	rec := httptest.NewRecorder()
	for k, v := range header {
		rec.Header().Set(k, v)
	}
	s := c.Storer(rec, r)
	s.WriteHeader(status)
	io.WriteString(s, body)
	s.Finish()
}

// serve asks the cache; it returns the recorder when it answered.
func serve(c *Cache, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	if !c.Serve(rec, r) {
		return nil
	}
	return rec
}

func TestStorable(t *testing.T) {
	fresh := map[string]string{"Cache-Control": "max-age=30"}
	tests := []struct {
		name   string
		req    *http.Request
		status int
		header map[string]string
		body   string
		stored bool
	}{
		{"fresh 200", get("/"), 200, fresh, "x", true},
		{"validator only", get("/"), 200, map[string]string{"Etag": `"1"`}, "x", true},
		{"last-modified only", get("/"), 200, map[string]string{"Last-Modified": "Mon, 07 Dec 2026 12:00:00 GMT"}, "x", true},
		{"no lifetime no validator", get("/"), 200, nil, "x", false},
		{"404", get("/"), 404, fresh, "x", false},
		{"206", get("/"), 206, fresh, "x", false},
		{"POST", httptest.NewRequest("POST", "/", nil), 200, fresh, "x", false},
		{"private", get("/"), 200, map[string]string{"Cache-Control": "private, max-age=30"}, "x", false},
		{"no-store", get("/"), 200, map[string]string{"Cache-Control": "no-store"}, "x", false},
		{"no-cache", get("/"), 200, map[string]string{"Cache-Control": "no-cache, max-age=30"}, "x", false},
		{"set-cookie", get("/"), 200, map[string]string{"Cache-Control": "max-age=30", "Set-Cookie": "a=b"}, "x", false},
		{"authorization", withHeader(get("/"), "Authorization", "Basic eDp5"), 200, fresh, "x", false},
		{"authorization public", withHeader(get("/"), "Authorization", "Basic eDp5"), 200, map[string]string{"Cache-Control": "public, max-age=30"}, "x", false},
		{"authorization s-maxage", withHeader(get("/"), "Authorization", "Basic eDp5"), 200, map[string]string{"Cache-Control": "s-maxage=30, must-revalidate"}, "x", false},
		{"request no-store", withHeader(get("/"), "Cache-Control", "no-store"), 200, fresh, "x", false},
		{"vary", get("/"), 200, map[string]string{"Cache-Control": "max-age=30", "Vary": "Accept-Encoding"}, "x", false},
		{"max-age=0", get("/"), 200, map[string]string{"Cache-Control": "max-age=0"}, "x", false},
		{"age past lifetime", get("/"), 200, map[string]string{"Cache-Control": "max-age=30", "Age": "40"}, "x", false},
		{"expired Expires", get("/"), 200, map[string]string{"Expires": "Mon, 07 Dec 2026 12:00:00 GMT", "Date": "Mon, 07 Dec 2026 13:00:00 GMT"}, "x", false},
		{"bad Expires", get("/"), 200, map[string]string{"Expires": "0"}, "x", false},
		{"Expires ahead", get("/"), 200, map[string]string{"Expires": "Mon, 07 Dec 2026 13:10:00 GMT"}, "x", true},
		{"too big by length", get("/"), 200, map[string]string{"Cache-Control": "max-age=30", "Content-Length": "70000"}, strings.Repeat("x", 70000), false},
		{"too big streamed", get("/"), 200, fresh, strings.Repeat("x", 70000), false},
		{"short body", get("/"), 200, map[string]string{"Cache-Control": "max-age=30", "Content-Length": "5"}, "abc", false},
		{"HTTP/1.0", func() *http.Request { r := get("/"); r.ProtoMinor = 0; return r }(), 200, fresh, "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			c := New(opts(), clk.now)
			store(c, tt.req, tt.status, tt.header, tt.body)
			if got := c.Stats().Objects == 1; got != tt.stored {
				t.Errorf("stored = %v, want %v", got, tt.stored)
			}
		})
	}
}

func TestFreshness(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		fresh  time.Duration // served until then, not after
	}{
		{"max-age", map[string]string{"Cache-Control": "max-age=30"}, 30 * time.Second},
		{"s-maxage wins", map[string]string{"Cache-Control": "max-age=30, s-maxage=10"}, 10 * time.Second},
		{"bounded by the cache's max-age", map[string]string{"Cache-Control": "max-age=3600"}, time.Minute},
		{"validator: the cache's max-age", map[string]string{"Etag": `"v"`}, time.Minute},
		{"Expires", map[string]string{"Expires": "Mon, 07 Dec 2026 13:00:20 GMT"}, 20 * time.Second},
		{"Age counts", map[string]string{"Cache-Control": "max-age=30", "Age": "10"}, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			c := New(opts(), clk.now)
			store(c, get("/a"), 200, tt.header, "body")
			clk.advance(tt.fresh - time.Second)
			if serve(c, get("/a")) == nil {
				t.Fatalf("not served %v after storing", tt.fresh-time.Second)
			}
			clk.advance(time.Second)
			if serve(c, get("/a")) != nil {
				t.Fatalf("still served %v after storing", tt.fresh)
			}
		})
	}
}

func TestHitHasAge(t *testing.T) {
	clk := newClock()
	c := New(opts(), clk.now)
	store(c, get("/a"), 200, map[string]string{"Cache-Control": "max-age=50", "Age": "5", "Content-Type": "text/plain"}, "hello")
	clk.advance(7 * time.Second)
	rec := serve(c, get("/a"))
	if rec == nil {
		t.Fatal("miss")
	}
	if rec.Code != 200 || rec.Body.String() != "hello" || rec.Header().Get("Age") != "12" || rec.Header().Get("Content-Type") != "text/plain" || rec.Header().Get("Content-Length") != "5" {
		t.Fatalf("hit: %d %q headers %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

func TestBypass(t *testing.T) {
	c := New(opts(), newClock().now)
	store(c, get("/a"), 200, map[string]string{"Cache-Control": "max-age=50"}, "hello")
	for _, r := range []*http.Request{
		withHeader(get("/a"), "Cache-Control", "no-cache"),
		withHeader(get("/a"), "Pragma", "no-cache"),
		withHeader(get("/a"), "Authorization", "Basic eDp5"),
		httptest.NewRequest("POST", "/a", nil),
		httptest.NewRequest("PUT", "/a", nil),
		get("/b"),
		get("/a?x=1"),
		func() *http.Request { r := get("/a"); r.Host = "other.example"; return r }(),
	} {
		if serve(c, r) != nil {
			t.Errorf("%s %s (host %s, %v) served from cache", r.Method, r.URL, r.Host, r.Header)
		}
	}
	if serve(c, get("/a")) == nil {
		t.Error("plain GET not served")
	}
}

func TestProcessVary(t *testing.T) {
	o := opts()
	o.ProcessVary = true
	c := New(o, newClock().now)
	h := map[string]string{"Cache-Control": "max-age=50", "Vary": "Accept-Encoding"}
	store(c, withHeader(get("/a"), "Accept-Encoding", "gzip"), 200, h, "gz")
	store(c, get("/a"), 200, h, "plain")
	if rec := serve(c, withHeader(get("/a"), "Accept-Encoding", "GZIP")); rec == nil || rec.Body.String() != "gz" {
		t.Errorf("gzip variant: %v", rec)
	}
	if rec := serve(c, get("/a")); rec == nil || rec.Body.String() != "plain" {
		t.Errorf("plain variant: %v", rec)
	}
	if serve(c, withHeader(get("/a"), "Accept-Encoding", "br")) != nil {
		t.Error("br served another variant")
	}
	// Variants beyond max-secondary-entries are not stored.
	o.MaxSecondary = 1
	c = New(o, newClock().now)
	store(c, withHeader(get("/a"), "Accept-Encoding", "gzip"), 200, h, "gz")
	store(c, get("/a"), 200, h, "plain")
	if serve(c, get("/a")) != nil || serve(c, withHeader(get("/a"), "Accept-Encoding", "gzip")) == nil {
		t.Error("max-secondary-entries 1: the second variant replaced the first or was added")
	}
	store(c, get("/b"), 200, map[string]string{"Cache-Control": "max-age=50", "Vary": "Accept-Encoding, Cookie"}, "x")
	if serve(c, get("/b")) != nil {
		t.Error("Vary: Cookie stored")
	}
}

func TestVariantKey(t *testing.T) {
	o := opts()
	o.ProcessVary = true
	c := New(o, newClock().now)
	h := map[string]string{"Cache-Control": "max-age=50", "Vary": "Accept-Encoding"}
	store(c, withHeader(get("/a"), "Accept-Encoding", "gzip, br"), 200, h, "gz-br")
	for _, ae := range []string{"br,gzip", "BR;q=0.5, gzip", "gzip, br, zstd;q=0", "x-gzip, br"} {
		if rec := serve(c, withHeader(get("/a"), "Accept-Encoding", ae)); rec == nil || rec.Body.String() != "gz-br" {
			t.Errorf("Accept-Encoding %q: %v", ae, rec)
		}
	}
	if serve(c, withHeader(get("/a"), "Accept-Encoding", "gzip")) != nil {
		t.Error("gzip alone served the gzip, br variant")
	}
}

func TestExpiredVariantsMakeRoom(t *testing.T) {
	o := opts()
	o.ProcessVary, o.MaxSecondary = true, 1
	clk := newClock()
	c := New(o, clk.now)
	store(c, withHeader(get("/a"), "Accept-Encoding", "gzip"), 200, map[string]string{"Cache-Control": "max-age=10", "Vary": "Accept-Encoding"}, "gz")
	clk.advance(20 * time.Second)
	store(c, get("/a"), 200, map[string]string{"Cache-Control": "max-age=50", "Vary": "Accept-Encoding"}, "plain")
	if rec := serve(c, get("/a")); rec == nil || rec.Body.String() != "plain" {
		t.Fatalf("an expired variant kept a new one out: %v", rec)
	}
}

func TestEvictionByBytes(t *testing.T) {
	o := opts()
	o.MaxBytes, o.MaxObject = 10<<10, 4<<10
	c := New(o, newClock().now)
	body := strings.Repeat("x", 3<<10)
	h := map[string]string{"Cache-Control": "max-age=50"}
	for i := range 3 {
		store(c, get(fmt.Sprintf("/%d", i)), 200, h, body)
	}
	serve(c, get("/0")) // /0 is now the most recently used
	store(c, get("/3"), 200, h, body)
	s := c.Stats()
	if s.Bytes > o.MaxBytes || s.Objects != 3 {
		t.Fatalf("%d objects, %d bytes for a %d-byte cache", s.Objects, s.Bytes, o.MaxBytes)
	}
	if serve(c, get("/1")) != nil {
		t.Error("/1, the least recently used, was kept")
	}
	for _, p := range []string{"/0", "/2", "/3"} {
		if serve(c, get(p)) == nil {
			t.Errorf("%s evicted", p)
		}
	}
}

func TestTooBigForTheCache(t *testing.T) {
	o := opts()
	o.MaxBytes, o.MaxObject = 10<<10, 64<<10
	c := New(o, newClock().now)
	h := map[string]string{"Cache-Control": "max-age=50"}
	store(c, get("/0"), 200, h, "small")
	store(c, get("/1"), 200, h, "small")
	store(c, get("/big"), 200, h, strings.Repeat("x", 12<<10))
	if s := c.Stats(); s.Objects != 2 {
		t.Fatalf("%d objects after a response bigger than the cache, want the 2 small ones", s.Objects)
	}
}

func TestMaxObjectCountsHeaders(t *testing.T) {
	o := opts()
	o.MaxObject = 100
	h := map[string]string{"Cache-Control": "max-age=50", "X-Pad": strings.Repeat("p", 40)}
	body := strings.Repeat("x", 80) // fits alone, not with the headers
	c := New(o, newClock().now)
	store(c, get("/streamed"), 200, h, body)
	h["Content-Length"] = "80"
	store(c, get("/length"), 200, h, body)
	if s := c.Stats(); s.Objects != 0 {
		t.Fatalf("%d objects stored past max-object-size with their headers", s.Objects)
	}
}

func TestHitRatio(t *testing.T) {
	c := New(opts(), newClock().now)
	h := map[string]string{"Cache-Control": "max-age=50"}
	// 10 URLs asked 10 times each: the first asking of each misses.
	for round := range 10 {
		for i := range 10 {
			r := get(fmt.Sprintf("/%d", i))
			if serve(c, r) == nil {
				if round > 0 {
					t.Fatalf("round %d: /%d missed", round, i)
				}
				store(c, r, 200, h, "body")
			}
		}
	}
	s := c.Stats()
	if s.Lookups != 100 || s.Hits != 90 {
		t.Fatalf("%d hits of %d lookups, want 90 of 100", s.Hits, s.Lookups)
	}
}

func TestCacheControlParsing(t *testing.T) {
	d := ParseCacheControl([]string{`Max-Age=60, no-cache="Set-Cookie, X", private`, "max-age=5, s-maxage=\"10\""})
	if v, _ := d.Seconds("max-age"); v != time.Minute {
		t.Errorf("max-age %v", v)
	}
	if v, _ := d.Seconds("s-maxage"); v != 10*time.Second {
		t.Errorf("s-maxage %v", v)
	}
	if d["no-cache"] != "Set-Cookie, X" || !d.Has("private") || d.Has("x") {
		t.Errorf("directives %v", d)
	}
	for _, v := range []string{"-1", "abc", ""} {
		if s, ok := (Directives{"max-age": v}).Seconds("max-age"); !ok || s != 0 {
			t.Errorf("max-age=%q: %v %v", v, s, ok)
		}
	}
	if s, _ := (Directives{"max-age": "99999999999999999999"}).Seconds("max-age"); s != maxDelta {
		t.Errorf("huge max-age: %v", s)
	}
}

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a,b", private`, "s-maxage=-1,,,", `"`, "max-age=1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseCacheControl([]string{s})
		for name := range d {
			if name == "" || name != strings.ToLower(name) {
				t.Fatalf("%q: directive %q", s, name)
			}
			if v, _ := d.Seconds(name); v < 0 || v > maxDelta {
				t.Fatalf("%q: %s = %v", s, name, v)
			}
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	c := New(opts(), nil)
	done := make(chan bool)
	for g := range 4 {
		go func() {
			for i := range 200 {
				r := get(fmt.Sprintf("/%d", (i+g)%20))
				if serve(c, r) == nil {
					store(c, r, 200, map[string]string{"Cache-Control": "max-age=50"}, "body")
				}
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
	if s := c.Stats(); s.Objects != 20 {
		t.Errorf("%d objects, want 20", s.Objects)
	}
}

func TestHeadFromCache(t *testing.T) {
	c := New(opts(), newClock().now)
	store(c, get("/a"), 200, map[string]string{"Cache-Control": "max-age=50"}, "hello")
	rec := serve(c, httptest.NewRequest("HEAD", "/a", nil))
	if rec == nil {
		t.Fatal("HEAD not answered from the stored GET response")
	}
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "5" {
		t.Fatalf("HEAD: body %q, Content-Length %q", rec.Body.String(), rec.Header().Get("Content-Length"))
	}
	// A HEAD response is never stored.
	store(c, httptest.NewRequest("HEAD", "/b", nil), 200, map[string]string{"Cache-Control": "max-age=50"}, "")
	if serve(c, get("/b")) != nil {
		t.Fatal("a HEAD response was stored")
	}
}

// storable looks for no-store in the request without parsing its
// Cache-Control into a map: only the response's is parsed.
func TestStorableParsesOnlyTheResponse(t *testing.T) {
	c := New(opts(), newClock().now)
	r := withHeader(get("/"), "Cache-Control", "max-age=0")
	h := http.Header{"Cache-Control": {"private, max-age=30"}}
	parse := testing.AllocsPerRun(100, func() { ParseCacheControl(h.Values("Cache-Control")) })
	if n := testing.AllocsPerRun(100, func() { c.storable(r, 200, h) }); n > parse {
		t.Errorf("storable makes %v allocations, parsing the response's Cache-Control %v", n, parse)
	}
}
