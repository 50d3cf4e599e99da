package compression

import (
	"errors"
	"net/http"
	"strings"
)

// Writer is an http.ResponseWriter that compresses the response written
// to it, when the rules allow, with the algorithm chosen for the request.
// Close must be called once the handler is done: it ends the compressed
// stream and returns the encoder to its pool.
type Writer struct {
	http.ResponseWriter
	c      *Compressor
	algo   string // "" = the client takes no algorithm we offer
	method string

	wroteHeader bool
	enc         encoder // non-nil while compressing
}

// Wrap returns the writer for a response to r, after Request chose algo.
func (c *Compressor) Wrap(w http.ResponseWriter, r *http.Request, algo string) *Writer {
	return &Writer{ResponseWriter: w, c: c, algo: algo, method: r.Method}
}

// WriteHeader decides whether the response is compressed and adjusts its
// headers before they are sent.
func (w *Writer) WriteHeader(status int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	if status >= 100 && status < 200 {
		// Interim responses (100 Continue, 103 Early Hints) pass through.
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.wroteHeader = true
	h := w.Header()
	if w.method != http.MethodHead && w.c.compressible(status, h) {
		// The choice depended on Accept-Encoding, even when the answer was
		// "no": caches must keep the variants apart.
		addVary(h)
		if w.algo != "" {
			w.start(h)
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

// start switches the response to compressed: the length is no longer
// known, the representation (and so its ETag) is a different one, and
// byte ranges of the uncompressed body no longer apply.
func (w *Writer) start(h http.Header) {
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Del("Content-MD5")
	h.Set("Content-Encoding", coding(w.algo))
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et)
	}
	enc := w.c.pools[w.algo].Get().(encoder)
	enc.Reset(w.ResponseWriter)
	w.enc = enc
}

func (w *Writer) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc == nil {
		return w.ResponseWriter.Write(b)
	}
	return w.enc.Write(b)
}

// FlushError sends what the encoder has so far, then flushes the
// connection: a stream (server-sent events, long polling) keeps moving.
// http.ResponseController and httputil.ReverseProxy find it.
func (w *Writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		if err := w.enc.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for callers that only know http.Flusher.
func (w *Writer) Flush() { _ = w.FlushError() }

// Close ends the compressed stream, writing the encoder's last bytes.
func (w *Writer) Close() error {
	if w.enc == nil {
		return nil
	}
	enc := w.enc
	w.enc = nil
	err := enc.Close()
	// Drop the reference to this response before the encoder is reused.
	enc.Reset(discard{})
	w.c.pools[w.algo].Put(enc)
	if err != nil {
		return errors.Join(errors.New("compression: end of stream"), err)
	}
	return nil
}

// Abort gives the encoder back without ending the stream, for a response
// cut short (the server went away mid-body): the client must see a
// truncated body, not a well-formed compressed one.
func (w *Writer) Abort() {
	if w.enc == nil {
		return
	}
	w.enc.Reset(discard{})
	w.c.pools[w.algo].Put(w.enc)
	w.enc = nil
}

// Compressing reports whether the response is being compressed, and with
// which algorithm.
func (w *Writer) Compressing() (string, bool) { return w.algo, w.enc != nil }

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
