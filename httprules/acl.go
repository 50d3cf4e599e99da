package httprules

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Side says which rule list a condition or action belongs to.
type Side int

const (
	Request Side = iota
	Response
)

// term is one ACL test: a fetch, a match method and patterns. An ACL made
// of several "acl" lines of the same name is the OR of their terms.
type term struct {
	fetch  sampleFetch
	method string
	nocase bool
	strs   []string
	res    []*regexp.Regexp
	nets   []netip.Prefix
	ints   []intRange
}

type intRange struct{ lo, hi int64 }

// methods are the match methods of "-m".
var methods = []string{"str", "beg", "end", "sub", "reg", "dir", "dom", "len", "found", "bool", "int", "ip"}

// parseTerm reads "fetch [flags] [patterns]", the words of an acl line
// after its name or of an anonymous ACL.
func parseTerm(words []string, side Side) (*term, error) {
	if len(words) == 0 {
		return nil, fmt.Errorf("missing fetch method")
	}
	f, method, err := parseFetch(words[0], side)
	if err != nil {
		return nil, err
	}
	t := &term{fetch: f, method: method}
	rest := words[1:]
flags:
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		switch rest[0] {
		case "-i":
			t.nocase, rest = true, rest[1:]
		case "-n":
			rest = rest[1:] // no DNS resolution: sluice never resolves patterns
		case "-m":
			if len(rest) < 2 {
				return nil, fmt.Errorf("'-m' expects a match method (%s)", strings.Join(methods, ", "))
			}
			if !slices.Contains(methods, rest[1]) {
				return nil, fmt.Errorf("unknown match method '%s' after '-m' (known: %s)", rest[1], strings.Join(methods, ", "))
			}
			t.method, rest = rest[1], rest[2:]
		case "--":
			rest = rest[1:]
			break flags
		case "-f", "-M", "-u":
			return nil, fmt.Errorf("ACL flag '%s' is not supported (supported: -i, -m, -n, --)", rest[0])
		default:
			if f.def.kind == kindInt && isInt(rest[0]) {
				break flags // a negative number
			}
			return nil, fmt.Errorf("unknown ACL flag '%s' (supported: -i, -m, -n, --)", rest[0])
		}
	}
	if t.method == "" {
		t.method = defaultMethod(f.def.kind)
	}
	if err := t.setPatterns(rest); err != nil {
		return nil, fmt.Errorf("%s: %w", words[0], err)
	}
	return t, nil
}

func defaultMethod(k kind) string {
	switch k {
	case kindInt:
		return "int"
	case kindIP:
		return "ip"
	case kindBool:
		return "bool"
	}
	return "str"
}

func (t *term) setPatterns(pats []string) error {
	switch t.method {
	case "found", "bool":
		if len(pats) > 0 {
			return fmt.Errorf("match method '%s' takes no pattern (got '%s')", t.method, pats[0])
		}
		return nil
	}
	if len(pats) == 0 {
		return fmt.Errorf("missing pattern (an ACL without patterns never matches)")
	}
	for _, p := range pats {
		switch t.method {
		case "ip":
			n, err := parsePrefix(p)
			if err != nil {
				return err
			}
			t.nets = append(t.nets, n)
		case "int", "len":
			r, err := parseIntRange(p)
			if err != nil {
				return err
			}
			t.ints = append(t.ints, r)
		case "reg":
			expr := p
			if t.nocase {
				expr = "(?i)" + p
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				return fmt.Errorf("bad regular expression '%s': %w", p, err)
			}
			t.res = append(t.res, re)
		case "dir", "dom":
			if t.nocase {
				p = strings.ToLower(p)
			}
			// Prepared once, as the samples are in matchOne; a pattern of
			// delimiters only stays "" and never matches.
			if p = strings.Trim(p, delimiters(t.method)); p != "" {
				p = padDelimited(p, delimiters(t.method))
			}
			t.strs = append(t.strs, p)
		default:
			if t.nocase {
				p = strings.ToLower(p)
			}
			t.strs = append(t.strs, p)
		}
	}
	return nil
}

// parsePrefix reads an address or a network: "10.0.0.1", "10.0.0.0/8",
// "10.0.0.0/255.0.0.0", "::1", "2001:db8::/32".
func parsePrefix(s string) (netip.Prefix, error) {
	ipText, mask, hasMask := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(ipText)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("'%s' is not an IP address or network", s)
	}
	ip = ip.Unmap()
	bits := ip.BitLen()
	if hasMask {
		if m, err := netip.ParseAddr(mask); err == nil && ip.Is4() && m.Is4() {
			bits = maskBits(m.As4())
			if bits < 0 {
				return netip.Prefix{}, fmt.Errorf("'%s': '%s' is not a contiguous mask", s, mask)
			}
		} else if bits, err = strconv.Atoi(mask); err != nil || bits < 0 || bits > ip.BitLen() {
			return netip.Prefix{}, fmt.Errorf("'%s' has a bad mask", s)
		}
	}
	return ip.Prefix(bits)
}

func maskBits(m [4]byte) int {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return -1
	}
	return n
}

// parseIntRange reads "N", "N:M", ":M" or "N:". HAProxy's operator forms
// ("ge N") are not supported: write a range.
func parseIntRange(s string) (intRange, error) {
	bad := fmt.Errorf("'%s' is not an integer or a range (N, N:M, :M, N:)", s)
	lo, hi, isRange := strings.Cut(s, ":")
	if !isRange {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return intRange{}, bad
		}
		return intRange{n, n}, nil
	}
	r := intRange{lo: -1 << 63, hi: 1<<63 - 1}
	var err error
	if lo != "" {
		if r.lo, err = strconv.ParseInt(lo, 10, 64); err != nil {
			return intRange{}, bad
		}
	}
	if hi != "" {
		if r.hi, err = strconv.ParseInt(hi, 10, 64); err != nil {
			return intRange{}, bad
		}
	}
	if lo == "" && hi == "" {
		return intRange{}, bad
	}
	return r, nil
}

func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// match tells whether any sample of the fetch matches any pattern.
func (t *term) match(tx *Txn) bool {
	samples := t.fetch.get(tx)
	if t.method == "found" {
		return len(samples) > 0
	}
	for _, s := range samples {
		if t.matchOne(s) {
			return true
		}
	}
	return false
}

func (t *term) matchOne(s string) bool {
	switch t.method {
	case "bool":
		n, err := strconv.ParseInt(s, 10, 64)
		return err == nil && n != 0 || err != nil && s != ""
	case "ip":
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, n := range t.nets {
			if n.Contains(a) {
				return true
			}
		}
		return false
	case "int", "len":
		n := int64(len(s))
		if t.method == "int" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return false
			}
			n = v
		}
		for _, r := range t.ints {
			if n >= r.lo && n <= r.hi {
				return true
			}
		}
		return false
	case "reg":
		for _, re := range t.res {
			if re.MatchString(s) {
				return true
			}
		}
		return false
	}
	if t.nocase {
		s = strings.ToLower(s)
	}
	if t.method == "dir" || t.method == "dom" {
		s = padDelimited(s, delimiters(t.method))
	}
	for _, p := range t.strs {
		if matchString(t.method, s, p) {
			return true
		}
	}
	return false
}

func matchString(method, s, p string) bool {
	switch method {
	case "beg":
		return strings.HasPrefix(s, p)
	case "end":
		return strings.HasSuffix(s, p)
	case "sub":
		return strings.Contains(s, p)
	case "dir", "dom":
		// s and p went through padDelimited.
		return p != "" && strings.Contains(s, p)
	}
	return s == p
}

// delimiters separate the parts of HAProxy's "dir" and "dom" matches.
func delimiters(method string) string {
	if method == "dir" {
		return "/"
	}
	return "/?.:"
}

// padDelimited turns the delimiters of s into NULs and adds one at each
// end. A pattern padded the same way is then in the sample exactly when
// it appears between delimiters (or the ends), even with inner
// delimiters ("a.b" matches a run of parts).
func padDelimited(s, delims string) string {
	return "\x00" + strings.Map(func(r rune) rune {
		if strings.ContainsRune(delims, r) {
			return 0
		}
		return r
	}, s) + "\x00"
}

// acl is a named ACL: the OR of its terms.
type acl struct {
	terms []*term
	fn    func(*Txn) bool // predefined ACLs
}

func (a *acl) match(t *Txn) bool {
	if a.fn != nil {
		return a.fn(t)
	}
	for _, tm := range a.terms {
		if tm.match(t) {
			return true
		}
	}
	return false
}

// ACLs are the named ACLs of one proxy, in the order of their lines.
type ACLs struct {
	byName map[string]*acl
	side   map[string]bool // names whose terms need a response
	// inRequest are the names a request rule uses: a later line of such
	// a name must not test the response, since the rule sees every line
	// of its ACL once the proxy is read.
	inRequest map[string]bool
}

// NewACLs returns the predefined ACLs only.
func NewACLs() *ACLs {
	return &ACLs{byName: map[string]*acl{}, side: map[string]bool{}, inRequest: map[string]bool{}}
}

// Add reads an acl line's words after "acl": "NAME fetch [flags]
// patterns". A second line of the same name adds its test to the first
// (they are ORed), as in HAProxy.
func (s *ACLs) Add(words []string) error {
	if len(words) == 0 {
		return fmt.Errorf("'acl' expects a name, a fetch method and patterns")
	}
	name := words[0]
	if err := checkACLName(name); err != nil {
		return err
	}
	if _, ok := predefined[name]; ok {
		return fmt.Errorf("acl '%s': this name is a predefined ACL and cannot be redefined", name)
	}
	// Read as a response-side test: response fetches are allowed in an
	// acl line; using them in a request rule is refused where it is used.
	t, err := parseTerm(words[1:], Response)
	if err != nil {
		return fmt.Errorf("acl '%s': %w", name, err)
	}
	if t.fetch.def.resp && s.inRequest[name] {
		return fmt.Errorf("acl '%s': %s tests the response, but a request rule above already uses this ACL", name, words[1])
	}
	a := s.byName[name]
	if a == nil {
		a = &acl{}
		s.byName[name] = a
	}
	a.terms = append(a.terms, t)
	if t.fetch.def.resp {
		s.side[name] = true
	}
	return nil
}

func checkACLName(name string) error {
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return fmt.Errorf("acl name '%s': character '%c' is not permitted (letters, digits, '-', '_', '.' and ':' only)", name, c)
		}
	}
	return nil
}

func (s *ACLs) lookup(name string, side Side) (*acl, error) {
	if a, ok := predefined[name]; ok {
		return a, nil
	}
	a, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("no such ACL: '%s'%s", name, s.suggest(name))
	}
	if side == Request {
		if s.side[name] {
			return nil, fmt.Errorf("acl '%s' tests the response and cannot be used in a request rule", name)
		}
		s.inRequest[name] = true
	}
	return a, nil
}

func (s *ACLs) suggest(name string) string {
	var names []string
	for n := range s.byName {
		if strings.EqualFold(n, name) {
			return fmt.Sprintf(" (did you mean '%s'?)", n)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return " (declare it with an 'acl' line before its first use)"
	}
	sort.Strings(names)
	return fmt.Sprintf(" (declared: %s)", strings.Join(names, ", "))
}

// predefined are HAProxy's predefined ACLs that make sense in sluice.
var predefined = map[string]*acl{
	"TRUE":         {fn: func(*Txn) bool { return true }},
	"FALSE":        {fn: func(*Txn) bool { return false }},
	"HTTP":         {fn: func(*Txn) bool { return true }},
	"HTTP_1.0":     {fn: func(t *Txn) bool { return t.Req.ProtoMajor == 1 && t.Req.ProtoMinor == 0 }},
	"HTTP_1.1":     {fn: func(t *Txn) bool { return t.Req.ProtoMajor == 1 && t.Req.ProtoMinor == 1 }},
	"HTTP_2.0":     {fn: func(t *Txn) bool { return t.Req.ProtoMajor == 2 }},
	"HTTP_CONTENT": {fn: func(t *Txn) bool { return t.Req.ContentLength != 0 }},
	"HTTP_URL_ABS": {fn: func(t *Txn) bool { return t.Req.URL.IsAbs() }},
	"HTTP_URL_SLASH": {fn: func(t *Txn) bool {
		return strings.HasPrefix(t.Req.RequestURI, "/")
	}},
	"HTTP_URL_STAR": {fn: func(t *Txn) bool { return t.Req.RequestURI == "*" }},
	"LOCALHOST": {fn: func(t *Txn) bool {
		a := t.Src.Addr()
		return a.IsLoopback()
	}},
	"METH_CONNECT": methodACL("CONNECT"),
	"METH_DELETE":  methodACL("DELETE"),
	"METH_GET":     methodACL("GET", "HEAD"),
	"METH_HEAD":    methodACL("HEAD"),
	"METH_OPTIONS": methodACL("OPTIONS"),
	"METH_POST":    methodACL("POST"),
	"METH_PUT":     methodACL("PUT"),
	"METH_TRACE":   methodACL("TRACE"),
}

func methodACL(names ...string) *acl {
	return &acl{fn: func(t *Txn) bool { return slices.Contains(names, t.Req.Method) }}
}
