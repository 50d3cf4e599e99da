package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/compression"
)

// Store is an http.ResponseWriter that passes a response through and keeps
// a copy of it, to store once it has been written in full (Finish). It
// gives up the copy as soon as the response proves not storable or too
// big, so a large body costs nothing more than passing through.
type Store struct {
	http.ResponseWriter
	c *Cache
	r *http.Request

	wroteHeader bool
	e           *entry // nil when the response is not stored
	body        []byte
}

// Storer returns the writer that stores the response to r, written to w.
func (c *Cache) Storer(w http.ResponseWriter, r *http.Request) *Store {
	return &Store{ResponseWriter: w, c: c, r: r}
}

func (s *Store) WriteHeader(status int) {
	if !s.wroteHeader && status >= 200 {
		s.wroteHeader = true
		// The entry is made before the writers below see the header:
		// compression changes it for its own response.
		s.e = s.c.storable(s.r, status, s.Header())
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *Store) Write(b []byte) (int, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	if s.e != nil {
		if s.e.size+int64(len(s.body)+len(b)) > s.c.opts.MaxObject {
			s.e, s.body = nil, nil
		} else {
			s.body = append(s.body, b...)
		}
	}
	return s.ResponseWriter.Write(b)
}

// FlushError passes a flush on, for streamed responses.
func (s *Store) FlushError() error {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(s.ResponseWriter).Flush()
}

// Flush is FlushError for callers that only know http.Flusher.
func (s *Store) Flush() { _ = s.FlushError() }

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (s *Store) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Finish stores the response if it was storable and complete. It must be
// called only when the whole response went through: a body cut short is
// never stored.
func (s *Store) Finish() {
	e := s.e
	if e == nil {
		return
	}
	s.e = nil
	if cl := e.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(s.body)) {
		return
	}
	e.body = s.body
	e.size += int64(len(s.body))
	s.c.insert(e)
}

// storable decides whether a response may be stored, with HAProxy's rules
// (and RFC 9111's where HAProxy is silent), and returns the entry to fill,
// or nil. Stored are only: responses 200 to GET requests of HTTP/1.1 or
// later; without Authorization in the request; without Set-Cookie; without Cache-Control private, no-store
// or no-cache (nor no-store in the request); without Vary, or with
// "Vary: Accept-Encoding" alone under process-vary; with an explicit
// lifetime (s-maxage, max-age, Expires) or a validator (ETag,
// Last-Modified); with a lifetime left.
func (c *Cache) storable(r *http.Request, status int, h http.Header) *entry {
	if status != http.StatusOK || r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) {
		return nil
	}
	// A token match, not a parse into a map for every response: a match
	// inside a quoted value only keeps the response out.
	if compression.HasToken(r.Header.Values("Cache-Control"), "no-store") {
		return nil
	}
	cc := ParseCacheControl(h.Values("Cache-Control"))
	if cc.Has("private") || cc.Has("no-store") || cc.Has("no-cache") {
		return nil
	}
	if len(h.Values("Set-Cookie")) > 0 {
		return nil // a response setting a cookie is one client's
	}
	if r.Header.Get("Authorization") != "" {
		return nil // as HAProxy: an authenticated response is one user's, whatever it says
	}
	varies, ok := c.varies(h.Values("Vary"))
	if !ok {
		return nil
	}
	hsize := headerSize(h)
	if cl := h.Get("Content-Length"); cl != "" {
		// As HAProxy, max-object-size bounds the headers and the body.
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || hsize+n > c.opts.MaxObject {
			return nil
		}
	}
	now := c.now()
	lifetime, explicit := freshness(cc, h, now)
	if !explicit && h.Get("Etag") == "" && h.Get("Last-Modified") == "" {
		return nil
	}
	if !explicit || lifetime > c.opts.MaxAge {
		lifetime = c.opts.MaxAge
	}
	// Age counts against the lifetime: the response was already that old.
	var age time.Duration
	if v := h.Get("Age"); v != "" {
		age = deltaSeconds(strings.TrimSpace(v))
	}
	if lifetime-age <= 0 {
		return nil
	}
	e := &entry{
		key:     primaryKey(r),
		varies:  varies,
		header:  h.Clone(),
		stored:  now,
		expires: now.Add(lifetime - age),
		age:     age,
	}
	if varies {
		e.variant = variantKey(r.Header.Values("Accept-Encoding"))
	}
	e.header.Del("Age")
	e.size = headerSize(e.header)
	return e
}

// headerSize is the bytes of a header's names and values.
func headerSize(h http.Header) int64 {
	var n int64
	for k, v := range h {
		n += int64(len(k))
		for _, x := range v {
			n += int64(len(x))
		}
	}
	return n
}

// varies reads Vary: whether the response depends on Accept-Encoding, and
// whether it may be stored at all.
func (c *Cache) varies(values []string) (varies, ok bool) {
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			switch e := strings.TrimSpace(elem); {
			case e == "":
			case strings.EqualFold(e, "Accept-Encoding") && c.opts.ProcessVary:
				varies = true
			default:
				return false, false
			}
		}
	}
	return varies, true
}

// freshness is the lifetime a response gives itself: s-maxage, else
// max-age, else Expires minus Date (or now); explicit is false when it
// gives none.
func freshness(cc Directives, h http.Header, now time.Time) (lifetime time.Duration, explicit bool) {
	if d, ok := cc.Seconds("s-maxage"); ok {
		return d, true
	}
	if d, ok := cc.Seconds("max-age"); ok {
		return d, true
	}
	if exp := h.Get("Expires"); exp != "" {
		t, err := http.ParseTime(exp)
		if err != nil {
			return 0, true // an invalid Expires means "already expired"
		}
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		return t.Sub(base), true
	}
	return 0, false
}
