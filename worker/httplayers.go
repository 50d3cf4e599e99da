package worker

import (
	"fmt"
	"net/http"

	"github.com/sluicelb/sluice/cache"
	"github.com/sluicelb/sluice/compression"
	"github.com/sluicelb/sluice/config"
)

// httpLayers are what an http proxy does to responses besides forwarding
// them: compression, and the object cache. Both are response-writer
// layers around the writer the proxy answers with:
//
//	client <- statusWriter <- compression.Writer <- cache.Store <- ReverseProxy
//
// so the cache keeps the server's response as it came, and a cached
// response is compressed for each client like a fresh one.
type httpLayers struct {
	front *config.Proxy
	// comps are the compressors of the frontend and of the backends that
	// have compression, by proxy name.
	comps  map[string]*compression.Compressor
	caches map[string]*cache.Cache // this process's, by section name
}

// newHTTPLayers builds the layers of frontend p, for whichever backend of
// cfg a request goes to.
func newHTTPLayers(p *config.Proxy, cfg *config.Config, caches map[string]*cache.Cache) (*httpLayers, error) {
	l := &httpLayers{front: p, comps: make(map[string]*compression.Compressor), caches: caches}
	for _, x := range cfg.Proxies {
		comp := x.Compression
		if comp == nil || (x != p && !x.Backend) {
			continue
		}
		c, err := compression.New(compression.Options{Algos: comp.Algos, Types: comp.Types, Offload: comp.Offload, MinSize: comp.MinSizeRes})
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", comp.Pos.File, comp.Pos.Line, err)
		}
		l.comps[x.Name] = c
	}
	return l, nil
}

// exchange is one request's pass through the layers.
type exchange struct {
	w     http.ResponseWriter // what the proxy writes the response to
	comp  *compression.Writer
	store *cache.Store
	use   *cache.Cache
	// complete is set once the response went through in full; a response
	// cut short is neither stored nor given a proper compressed ending.
	complete bool
}

// begin wraps w for r, going to backend be (nil: none). The backend's
// compression wins over the frontend's, since the server side knows its
// content best; the frontend's cache rules over the backend's. begin may
// change r's headers (compression offload removes Accept-Encoding), so it
// runs before r is forwarded or looked up in the cache: the cache sees
// the request as the server would.
func (l *httpLayers) begin(w http.ResponseWriter, r *http.Request, be *config.Proxy) *exchange {
	x := &exchange{w: w}
	if l == nil {
		return x
	}
	comp := l.comps[l.front.Name]
	use, store := l.front.CacheUse, l.front.CacheStore
	if be != nil && be != l.front {
		if c, ok := l.comps[be.Name]; ok {
			comp = c
		}
		if use == "" {
			use = be.CacheUse
		}
		if store == "" {
			store = be.CacheStore
		}
	}
	if comp != nil {
		x.comp = comp.Wrap(w, r, comp.Request(r))
		x.w = x.comp
	}
	x.use = l.caches[use]
	if c := l.caches[store]; c != nil {
		x.store = c.Storer(x.w, r)
		x.w = x.store
	}
	return x
}

// serveCached answers r from the cache of "http-request cache-use" when it
// holds a fresh response, and reports whether it did. It is its own step
// so that it can run after the request rules that deny or redirect.
func (x *exchange) serveCached(r *http.Request) bool {
	if x.use == nil {
		return false
	}
	// Below compression, above the store: a hit is not stored again. The
	// store wraps whatever is above it (compression or the client).
	w := x.w
	if x.store != nil {
		w = x.store.ResponseWriter
	}
	if !x.use.Serve(w, r) {
		return false
	}
	x.store = nil
	x.complete = true
	return true
}

// done marks the response as written in full.
func (x *exchange) done() { x.complete = true }

// end closes the layers: the cache stores a complete response, the
// compressed stream gets its ending. Calls after the first do nothing.
func (x *exchange) end() {
	if x.store != nil && x.complete {
		x.store.Finish()
	}
	x.store = nil
	if x.comp == nil {
		return
	}
	if !x.complete {
		x.comp.Abort()
	} else {
		x.comp.Close()
	}
	x.comp = nil
}

// processCaches returns this process's caches for the configuration's
// cache sections. A section whose settings did not change keeps its
// cache, and what it holds, across a reload.
func processCaches(cfg *config.Config, prev *generation) map[string]*cache.Cache {
	caches := make(map[string]*cache.Cache, len(cfg.Caches))
	for _, c := range cfg.Caches {
		opts := cache.Options{
			MaxBytes:     c.TotalMaxSize,
			MaxObject:    c.MaxObjectSize,
			MaxAge:       c.MaxAge,
			ProcessVary:  c.ProcessVary,
			MaxSecondary: c.MaxSecondaryEntries,
		}
		if prev != nil {
			if old, ok := prev.caches[c.Name]; ok && old.Options() == opts {
				caches[c.Name] = old
				continue
			}
		}
		caches[c.Name] = cache.New(opts, nil)
	}
	return caches
}
