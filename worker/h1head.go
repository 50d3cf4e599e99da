package worker

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// h1Limits bound what a client may send in an HTTP/1 request head.
type h1Limits struct {
	// maxHead is the size of a head (request line, headers, empty line):
	// tune.bufsize minus the room HAProxy keeps for rewrites.
	maxHead int
	// maxHeaders is the number of header lines: HAProxy counts the
	// request line in tune.http.maxhdr, so a request carries at most
	// maxhdr-1 header lines.
	maxHeaders int
}

// h1Head is what the guard needs from a request head to find where the
// request ends.
type h1Head struct {
	method  string
	version string // "HTTP/1.0" or "HTTP/1.1"
	chunked bool
	length  int64 // Content-Length, -1 when absent
	upgrade bool  // an Upgrade header: the connection may become a tunnel
}

// errBadHead is a request head the guard refuses; the message says why,
// for the debug log.
type errBadHead struct{ why string }

func (e errBadHead) Error() string { return "bad request head: " + e.why }

func bad(format string, args ...any) error {
	return errBadHead{why: fmt.Sprintf(format, args...)}
}

// headEnd returns the length of the head at the start of b (through the
// empty line ending it), or -1 when b does not hold a whole head yet.
// Lines end with CRLF or a bare LF, as both HAProxy and net/http accept.
func headEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		line := b[i : i+j]
		i += j + 1
		// An empty first line (a CRLF before the request line) ends the
		// head too: parseHead refuses it, as net/http would.
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return i
		}
	}
	return -1
}

// parseHead checks a complete request head strictly: anything net/http
// and a server might read differently (request smuggling) is refused.
func parseHead(b []byte, lim h1Limits) (h1Head, error) {
	h := h1Head{length: -1}
	lines, err := splitLines(b)
	if err != nil {
		return h, err
	}
	if len(lines) < 2 || len(lines[0]) == 0 {
		return h, bad("empty request line")
	}
	if err := parseRequestLine(lines[0], &h); err != nil {
		return h, err
	}
	headers := lines[1 : len(lines)-1] // the last line is the empty one
	if len(headers) >= lim.maxHeaders {
		return h, bad("%d header lines, at most %d allowed (tune.http.maxhdr)", len(headers), lim.maxHeaders-1)
	}
	var hosts, lengths, encodings int
	for _, line := range headers {
		name, value, err := parseHeaderLine(line)
		if err != nil {
			return h, err
		}
		switch {
		case equalFold(name, "host"):
			hosts++
			if err := checkHost(value); err != nil {
				return h, err
			}
		case equalFold(name, "content-length"):
			lengths++
			n, err := parseLength(value)
			if err != nil {
				return h, err
			}
			h.length = n
		case equalFold(name, "transfer-encoding"):
			encodings++
			if !equalFold(value, "chunked") {
				return h, bad("transfer-encoding %q (only a single 'chunked' is accepted)", value)
			}
			h.chunked = true
		case equalFold(name, "upgrade"):
			h.upgrade = true
		}
	}
	switch {
	case hosts > 1:
		return h, bad("%d Host headers", hosts)
	case hosts == 0 && h.version == "HTTP/1.1":
		return h, bad("no Host header in an HTTP/1.1 request")
	case lengths > 1:
		return h, bad("%d Content-Length headers", lengths)
	case encodings > 1:
		return h, bad("%d Transfer-Encoding headers", encodings)
	case h.chunked && lengths > 0:
		return h, bad("both Content-Length and Transfer-Encoding")
	case h.chunked && h.version == "HTTP/1.0":
		return h, bad("Transfer-Encoding in an HTTP/1.0 request")
	}
	return h, nil
}

// splitLines cuts a head into its lines without their ends. A CR must be
// followed by LF.
func splitLines(b []byte) ([][]byte, error) {
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, bad("unterminated line")
		}
		line := b[:i]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return nil, bad("bare CR in a line")
		}
		lines = append(lines, line)
		b = b[i+1:]
	}
	return lines, nil
}

// parseRequestLine reads "METHOD SP TARGET SP HTTP/1.x", with single
// spaces.
func parseRequestLine(line []byte, h *h1Head) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return bad("request line without method or target")
	}
	method := line[:sp1]
	for _, c := range method {
		if !isToken(c) {
			return bad("invalid character %q in method", c)
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return bad("request line without HTTP version (HTTP/0.9 is not supported)")
	}
	target, version := rest[:sp2], rest[sp2+1:]
	switch string(version) {
	case "HTTP/1.1", "HTTP/1.0":
	default:
		return bad("unsupported version %q", version)
	}
	if len(target) == 0 {
		return bad("empty target (two spaces)")
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return bad("invalid character %q in target", c)
		}
	}
	h.method, h.version = string(method), string(version)
	switch {
	case h.method == "CONNECT":
		if bytes.IndexByte(target, '/') >= 0 {
			return bad("CONNECT target %q is not host:port", target)
		}
	case target[0] == '/':
	case string(target) == "*" && h.method == "OPTIONS":
	case bytes.HasPrefix(target, []byte("http://")) || bytes.HasPrefix(target, []byte("https://")):
	default:
		return bad("target %q is neither a path nor an absolute URL", target)
	}
	return nil
}

// parseHeaderLine reads "name: value": a token, a colon right after it,
// and a value of visible characters, spaces and tabs (obs-text allowed).
// A line starting with a space or a tab (obs-fold) is refused.
func parseHeaderLine(line []byte) (name, value []byte, err error) {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return nil, nil, bad("folded header line (obs-fold)")
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return nil, nil, bad("header line without colon")
	}
	name = line[:colon]
	if len(name) == 0 {
		return nil, nil, bad("empty header name")
	}
	for _, c := range name {
		if !isToken(c) {
			return nil, nil, bad("invalid character %q in header name %q", c, name)
		}
	}
	value = bytes.Trim(line[colon+1:], " \t")
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, bad("control character %q in header %q", c, name)
		}
	}
	return name, value, nil
}

// parseLength reads a Content-Length value: digits only.
func parseLength(v []byte) (int64, error) {
	if len(v) == 0 {
		return 0, bad("empty Content-Length")
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, bad("Content-Length %q is not a number", v)
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, bad("Content-Length %q out of range", v)
	}
	return n, nil
}

// checkHost refuses Host values net/http would refuse: no spaces, quotes
// or other characters outside an authority.
func checkHost(v []byte) error {
	for _, c := range v {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			bytes.IndexByte([]byte("-._~:[]!$&'()*+,;=%@"), c) >= 0
		if !ok {
			return bad("invalid character %q in Host", c)
		}
	}
	return nil
}

func isToken(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

func equalFold(b []byte, s string) bool { return bytes.EqualFold(b, []byte(s)) }

// chunkParser checks a chunked body as it streams: chunk sizes are hex
// digits (at most 15, so they fit), extensions hold no control
// characters, every chunk's data ends with a line end, and trailers are
// header lines.
type chunkParser struct {
	state   chunkState
	digits  int
	size    int64
	line    []byte // the trailer line being read
	trailer int    // trailer lines so far
	lim     h1Limits
}

type chunkState int

const (
	csSize    chunkState = iota // reading hex digits
	csExt                       // reading an extension, up to the line end
	csSizeLF                    // saw CR after the size line, want LF
	csData                      // in chunk data
	csDataCR                    // after the data, want CR or LF
	csDataLF                    // after the data's CR, want LF
	csTrailer                   // reading trailer lines after the last chunk
	csDone                      // the body is complete
)

var errChunk = errors.New("bad chunked body")

// feed checks b, the next bytes of the body; it returns how many belong to
// the body (less than len(b) when the body ends inside b).
func (p *chunkParser) feed(b []byte) (int, error) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch p.state {
		case csSize:
			switch {
			case hexVal(c) >= 0:
				p.digits++
				if p.digits > 15 {
					return i, bad("chunk size too long")
				}
				p.size = p.size<<4 | int64(hexVal(c))
			case p.digits == 0:
				return i, bad("chunk size %q is not hexadecimal", c)
			case c == ';':
				p.state = csExt
			case c == '\r':
				p.state = csSizeLF
			case c == '\n':
				p.endSizeLine()
			default:
				return i, bad("invalid character %q after chunk size", c)
			}
		case csExt:
			switch {
			case c == '\r':
				p.state = csSizeLF
			case c == '\n':
				p.endSizeLine()
			case c < ' ' && c != '\t' || c == 0x7f:
				return i, bad("control character %q in chunk extension", c)
			}
		case csSizeLF:
			if c != '\n' {
				return i, bad("CR without LF after chunk size")
			}
			p.endSizeLine()
		case csData:
			n := int64(len(b) - i)
			if n > p.size {
				n = p.size
			}
			p.size -= n
			i += int(n) - 1
			if p.size == 0 {
				p.state = csDataCR
			}
		case csDataCR:
			switch c {
			case '\r':
				p.state = csDataLF
			case '\n':
				p.state = csSize
			default:
				return i, bad("chunk data longer than its size")
			}
		case csDataLF:
			if c != '\n' {
				return i, bad("CR without LF after chunk data")
			}
			p.state = csSize
		case csTrailer:
			if c != '\n' {
				p.line = append(p.line, c)
				if len(p.line) > p.lim.maxHead {
					return i, bad("trailer line too long")
				}
				continue
			}
			line := bytes.TrimSuffix(p.line, []byte("\r"))
			p.line = p.line[:0]
			if len(line) == 0 {
				p.state = csDone
				return i + 1, nil
			}
			if bytes.IndexByte(line, '\r') >= 0 {
				return i, bad("bare CR in a trailer")
			}
			if _, _, err := parseHeaderLine(line); err != nil {
				return i, err
			}
			p.trailer++
			if p.trailer >= p.lim.maxHeaders {
				return i, bad("too many trailers")
			}
		case csDone:
			return i, nil
		}
	}
	return len(b), nil
}

// endSizeLine starts the chunk's data, or the trailers after the last
// chunk.
func (p *chunkParser) endSizeLine() {
	p.digits = 0
	if p.size == 0 {
		p.state = csTrailer
		return
	}
	p.state = csData
}

func (p *chunkParser) done() bool { return p.state == csDone }

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
