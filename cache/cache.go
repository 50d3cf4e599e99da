// Package cache is a small object cache for http proxies, after HAProxy's
// "cache" sections: it keeps in memory the responses that are safe to
// share between clients, bounded in bytes (least recently used out
// first), and serves them while they are fresh, with an Age header.
//
// It is conservative on purpose: a response is stored only when nothing in
// the request or the response says it must not be shared (see
// storable). Each worker process has its own cache: see docs/compression.md.
package cache

import (
	"container/list"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelb/sluice/compression"
)

// Options are a cache section's settings.
type Options struct {
	MaxBytes  int64         // total-max-size
	MaxObject int64         // max-object-size: bigger objects (headers and body) are not stored
	MaxAge    time.Duration // the longest an object is served
	// ProcessVary stores responses with "Vary: Accept-Encoding", one per
	// Accept-Encoding value; without it any Vary keeps a response out.
	ProcessVary bool
	// MaxSecondary bounds the variants of one URL.
	MaxSecondary int
}

// Cache is one cache section's storage in this process. Its methods are
// safe for concurrent use.
type Cache struct {
	opts Options
	now  func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *entry, most recently used first
	byKey map[string][]*list.Element
	used  int64
	stats Stats
}

// Stats are a cache's counters.
type Stats struct {
	Lookups, Hits, Stored int64
	Objects               int
	Bytes                 int64
}

// entry is one stored response.
type entry struct {
	key     string // primary key: host and request target
	variant string // the codings the request accepted (variantKey), when the response varies on them
	varies  bool
	header  http.Header
	body    []byte
	size    int64
	stored  time.Time
	expires time.Time
	age     time.Duration // the response's own Age when stored
}

// New returns an empty cache; now is the clock (time.Now when nil).
func New(opts Options, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{opts: opts, now: now, lru: list.New(), byKey: make(map[string][]*list.Element)}
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Objects, s.Bytes = c.lru.Len(), c.used
	return s
}

// primaryKey identifies a resource: the host and the request target.
func primaryKey(r *http.Request) string {
	return r.Host + " " + r.URL.RequestURI()
}

// variantKey is the variant key of an Accept-Encoding: the codings it
// accepts (q > 0), sorted, as HAProxy's normalizer. Order, case, spaces and
// weights do not split variants, so a popular URL does not fill
// max-secondary-entries with spellings of the same few codings.
func variantKey(values []string) string {
	var codings []string
	for _, a := range compression.ParseAcceptEncoding(values) {
		if a.Q > 0 {
			codings = append(codings, a.Coding)
		}
	}
	slices.Sort(codings)
	return strings.Join(slices.Compact(codings), ",")
}

// usable reports whether a request may be answered from the cache: a GET
// or HEAD of HTTP/1.1 or later, without Authorization, that does not ask
// to bypass caches. A HEAD gets the headers of the stored GET response.
func usable(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || !r.ProtoAtLeast(1, 1) {
		return false
	}
	if r.Header.Get("Authorization") != "" {
		return false // as HAProxy: the server must check each user's credentials
	}
	// Tokens, not a parse of the directives: a match inside a quoted value
	// only makes a request skip the cache.
	cc := r.Header.Values("Cache-Control")
	if compression.HasToken(cc, "no-cache") || compression.HasToken(cc, "no-store") {
		return false
	}
	if len(cc) == 0 && compression.HasToken(r.Header.Values("Pragma"), "no-cache") {
		return false
	}
	return true
}

// Serve answers r from the cache when it has a fresh response for it, and
// reports whether it did. The response gets an Age header: how old it is,
// counting the age it had when stored.
func (c *Cache) Serve(w http.ResponseWriter, r *http.Request) bool {
	if !usable(r) {
		return false
	}
	e := c.lookup(r)
	if e == nil {
		return false
	}
	h := w.Header()
	for k, v := range e.header {
		h[k] = append([]string(nil), v...)
	}
	age := e.age + c.now().Sub(e.stored)
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(e.body)
	}
	return true
}

// lookup returns the fresh entry for r, or nil; it drops the stale ones
// it meets.
func (c *Cache) lookup(r *http.Request) *entry {
	key := primaryKey(r)
	ae := variantKey(r.Header.Values("Accept-Encoding"))
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Lookups++
	for _, el := range c.byKey[key] {
		e := el.Value.(*entry)
		if e.varies && e.variant != ae {
			continue
		}
		if !now.Before(e.expires) {
			c.remove(el)
			return nil
		}
		c.lru.MoveToFront(el)
		c.stats.Hits++
		return e
	}
	return nil
}

// insert stores e, replacing the same variant and dropping the expired
// ones, and evicts the least recently used entries until the total fits.
func (c *Cache) insert(e *entry) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Expired variants go first: they would hold places under
	// max-secondary-entries until the LRU reached them. A clone, as
	// remove changes the slice.
	for _, el := range slices.Clone(c.byKey[e.key]) {
		old := el.Value.(*entry)
		if !now.Before(old.expires) || old.varies == e.varies && old.variant == e.variant {
			c.remove(el)
		}
	}
	if max(c.opts.MaxSecondary, 1) <= len(c.byKey[e.key]) {
		return // as HAProxy: no more variants for this URL until one goes
	}
	if e.size > c.opts.MaxBytes {
		return // it would not fit even alone: evicting the rest gains nothing
	}
	for c.used+e.size > c.opts.MaxBytes {
		c.remove(c.lru.Back())
	}
	el := c.lru.PushFront(e)
	c.byKey[e.key] = append(c.byKey[e.key], el)
	c.used += e.size
	c.stats.Stored++
}

func (c *Cache) remove(el *list.Element) {
	e := el.Value.(*entry)
	c.lru.Remove(el)
	c.used -= e.size
	els := c.byKey[e.key]
	for i, x := range els {
		if x == el {
			els = append(els[:i], els[i+1:]...)
			break
		}
	}
	if len(els) == 0 {
		delete(c.byKey, e.key)
	} else {
		c.byKey[e.key] = els
	}
}

// Options returns the settings the cache was made with.
func (c *Cache) Options() Options { return c.opts }
