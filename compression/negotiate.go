// Package compression compresses HTTP responses on the fly, with HAProxy's
// "compression" rules: which algorithm a client gets (Accept-Encoding with
// its q-values), which responses are left alone (status, Content-Encoding,
// Cache-Control: no-transform, multipart, ETag, minimum size...), and the
// headers a compressed response needs (Content-Encoding, Vary, weak ETag).
//
// The compressing writer streams: it holds one encoder's state per
// response, never the body, so a 10 MiB response costs what a 10 KiB one
// does.
package compression

import (
	"strconv"
	"strings"
)

// The algorithms. "deflate" is the zlib format (RFC 1950), which is what
// HTTP's "deflate" coding means; "raw-deflate" is the bare deflate stream
// some old browsers wanted, sent as "deflate" too, as HAProxy does.
// "identity" compresses nothing (HAProxy keeps it for debugging).
const (
	Identity   = "identity"
	Gzip       = "gzip"
	Deflate    = "deflate"
	RawDeflate = "raw-deflate"
	Zstd       = "zstd"
	Brotli     = "br"
)

// Algorithms lists every algorithm name "compression algo" accepts.
var Algorithms = []string{Identity, Gzip, Deflate, RawDeflate, Zstd, Brotli}

// coding is the Content-Encoding token an algorithm answers with.
func coding(algo string) string {
	if algo == RawDeflate {
		return Deflate
	}
	return algo
}

// Accepted is one element of an Accept-Encoding header.
type Accepted struct {
	Coding string  // lower case; "x-gzip" is reported as "gzip"
	Q      float64 // 0 to 1; 0 means "not acceptable"
}

// ParseAcceptEncoding reads Accept-Encoding header values (RFC 9110,
// 12.5.3): comma-separated codings, each with an optional ";q=" weight.
// Elements that cannot be read are skipped, as a proxy should be lenient
// with what a client sends; a bad q-value counts as q=0 so that a
// malformed weight never enables a coding the client may have meant to
// refuse.
func ParseAcceptEncoding(values []string) []Accepted {
	var out []Accepted
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(elem, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" || !isToken(name) {
				continue
			}
			if name == "x-gzip" {
				name = Gzip
			}
			a := Accepted{Coding: name, Q: 1}
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
					continue
				}
				a.Q = parseQ(strings.TrimSpace(val))
			}
			out = append(out, a)
		}
	}
	return out
}

// parseQ reads a qvalue: "0" to "1" with at most three decimals. Anything
// else is 0.
func parseQ(s string) float64 {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	q, err := strconv.ParseFloat(s, 64)
	if err != nil || q < 0 || q > 1 {
		return 0
	}
	return q
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Negotiate picks the algorithm of algos (the configuration's list, in its
// order) that the client's Accept-Encoding values accept with the highest
// weight; among equal weights the configuration's order decides. "*"
// gives its weight to every coding not named. It returns "" when none is
// acceptable, when the best choice is "identity", or when the client sent
// no Accept-Encoding at all.
func Negotiate(values []string, algos []string) string {
	accepted := ParseAcceptEncoding(values)
	best, bestQ := "", 0.0
	for _, algo := range algos {
		q := weight(accepted, coding(algo))
		if q > bestQ {
			best, bestQ = algo, q
		}
	}
	if best == Identity {
		return ""
	}
	return best
}

// weight is the q-value the client gives to a coding: its own element,
// else "*", else 0.
func weight(accepted []Accepted, name string) float64 {
	star, found := 0.0, false
	for _, a := range accepted {
		switch a.Coding {
		case name:
			return a.Q
		case "*":
			star, found = a.Q, true
		}
	}
	if found {
		return star
	}
	return 0
}
