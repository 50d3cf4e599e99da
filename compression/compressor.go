package compression

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Options are a proxy's compression settings.
type Options struct {
	// Algos are the algorithms offered, in the configuration's order.
	Algos []string
	// Types are the media types compressed, matched case-insensitively
	// against the start of the response's Content-Type; none = all.
	Types []string
	// Offload removes Accept-Encoding from requests, so that servers
	// send uncompressed responses for the proxy to compress.
	Offload bool
	// MinSize is the smallest response, by Content-Length, that is
	// compressed (HAProxy's "compression minsize-res"); 0 = any.
	// Responses of unknown length are compressed: their size is only
	// known at the end.
	MinSize int64
}

// Levels: the fastest of each algorithm, as HAProxy's default
// tune.comp.maxlevel of 1. A proxy compresses for many clients at once;
// a better ratio at several times the CPU is rarely the right trade there.
const (
	flateLevel  = flate.BestSpeed
	brotliLevel = 1
	// brotliWindow (log2) bounds the memory of one brotli stream: 512 KiB
	// rather than the 4 MiB window the library picks by default.
	brotliWindow = 19
	// zstdWindow bounds the memory of one zstd stream and stays within the
	// 8 MiB window HTTP clients are required to support (RFC 8878).
	zstdWindow = 1 << 20
)

// Compressor compresses the responses of one proxy. Encoders are reused
// across responses through its pools: their state is tens to hundreds of
// KiB, which would otherwise be allocated for every response.
type Compressor struct {
	opts  Options
	pools map[string]*sync.Pool
}

// New returns a Compressor; an unknown algorithm is an error.
func New(opts Options) (*Compressor, error) {
	// Lower case once here rather than on every response.
	types := make([]string, len(opts.Types))
	for i, t := range opts.Types {
		types[i] = strings.ToLower(t)
	}
	opts.Types = types
	c := &Compressor{opts: opts, pools: make(map[string]*sync.Pool)}
	for _, algo := range opts.Algos {
		var newEnc func() encoder
		switch algo {
		case Identity:
			continue
		case Gzip:
			newEnc = func() encoder {
				w, _ := gzip.NewWriterLevel(io.Discard, flateLevel)
				return w
			}
		case Deflate:
			newEnc = func() encoder {
				w, _ := zlib.NewWriterLevel(io.Discard, flateLevel)
				return w
			}
		case RawDeflate:
			newEnc = func() encoder {
				w, _ := flate.NewWriter(io.Discard, flateLevel)
				return w
			}
		case Zstd:
			newEnc = func() encoder {
				w, _ := zstd.NewWriter(io.Discard,
					zstd.WithEncoderLevel(zstd.SpeedFastest),
					zstd.WithEncoderConcurrency(1),
					zstd.WithWindowSize(zstdWindow),
					zstd.WithLowerEncoderMem(true))
				return w
			}
		case Brotli:
			newEnc = func() encoder {
				return brotli.NewWriterOptions(io.Discard, brotli.WriterOptions{Quality: brotliLevel, LGWin: brotliWindow})
			}
		default:
			return nil, fmt.Errorf("compression: unknown algorithm %q", algo)
		}
		c.pools[algo] = &sync.Pool{New: func() any { return newEnc() }}
	}
	return c, nil
}

// encoder is what every algorithm's writer offers.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// Request looks at a request before it is forwarded: it returns the
// algorithm its response may be compressed with ("" for none) and, with
// offload, removes Accept-Encoding so that the server does not compress.
// HTTP/1.0 clients and the old browsers HAProxy excludes get no
// compression.
func (c *Compressor) Request(r *http.Request) string {
	algo := ""
	if r.ProtoAtLeast(1, 1) && r.Method != http.MethodHead && !brokenBrowser(r.UserAgent()) {
		algo = Negotiate(r.Header.Values("Accept-Encoding"), c.opts.Algos)
	}
	if c.opts.Offload && algo != "" {
		r.Header.Del("Accept-Encoding")
	}
	return algo
}

// brokenBrowser reports the user agents HAProxy does not compress for:
// "Mozilla/4" ones, except MSIE 6 with XP SP2 ("SV1") and MSIE 7 and later,
// which handle compressed responses correctly.
func brokenBrowser(ua string) bool {
	if !strings.HasPrefix(ua, "Mozilla/4") {
		return false
	}
	_, rest, ok := strings.Cut(ua, "MSIE ")
	if !ok {
		return true
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	v, err := strconv.Atoi(rest[:end])
	switch {
	case err != nil || v < 6:
		return true
	case v == 6:
		return !strings.Contains(ua, "SV1")
	}
	return false
}

// compressible reports whether a response of that request method, status
// and headers may be compressed at all, whatever the client accepts. It
// applies HAProxy's rules, and Vary: Accept-Encoding is added to exactly
// these responses.
func (c *Compressor) compressible(status int, h http.Header) bool {
	switch status {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNonAuthoritativeInfo:
	default:
		return false
	}
	if len(h.Values("Content-Encoding")) > 0 {
		return false // already compressed (or a coding we would stack on)
	}
	if HasToken(h.Values("Cache-Control"), "no-transform") {
		return false
	}
	ct := strings.ToLower(strings.TrimSpace(h.Get("Content-Type")))
	if strings.HasPrefix(ct, "multipart") {
		return false // byteranges and friends: parts carry their own headers
	}
	if len(c.opts.Types) > 0 && !matchType(ct, c.opts.Types) {
		return false
	}
	etags := h.Values("Etag")
	if len(etags) > 1 || len(etags) == 1 && !validETag(etags[0]) {
		return false
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n == 0 || n < c.opts.MinSize {
			return false
		}
	}
	return true
}

// matchType reports whether a lower-case Content-Type starts with one of
// types, lower case too (see New).
func matchType(ct string, types []string) bool {
	if ct == "" {
		return false
	}
	for _, t := range types {
		if strings.HasPrefix(ct, t) {
			return true
		}
	}
	return false
}

// validETag checks the entity-tag syntax: W/"..." or "...".
func validETag(v string) bool {
	v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
	return len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.Contains(v[1:len(v)-1], `"`)
}

// HasToken reports whether a comma-separated header lists a token
// (case-insensitively, ignoring any "=value"). The cache uses it too.
// Not x/net's httpguts: it would pull golang.org/x/text into the module.
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(elem, "=")
			if strings.EqualFold(strings.TrimSpace(name), token) {
				return true
			}
		}
	}
	return false
}

// addVary adds Accept-Encoding to the response's Vary header unless it is
// there already or Vary is "*".
func addVary(h http.Header) {
	for _, v := range h.Values("Vary") {
		for elem := range strings.SplitSeq(v, ",") {
			e := strings.TrimSpace(elem)
			if e == "*" || strings.EqualFold(e, "Accept-Encoding") {
				return
			}
		}
	}
	h.Add("Vary", "Accept-Encoding")
}
