// Package httprules implements HAProxy's http-mode rules: sample fetches,
// "acl" lines, if/unless conditions, log-format values and the
// http-request / http-response actions. It knows nothing of the
// configuration files: the config package hands it the words of each line
// (to check them, with file:line in its messages) and the worker compiles
// the same words again into a RuleSet.
package httprules

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	tlsctx "github.com/sluicelb/sluice/tls"
)

// Txn is what fetches read: one request and, for http-response rules,
// its response.
type Txn struct {
	Req  *http.Request
	Resp *http.Response // nil while request rules run
	// Src is the client's address (from the PROXY header when there was
	// one), Dst the address it connected to.
	Src, Dst netip.AddrPort
	// tls holds the TLS fetches once a rule has read one.
	tls *tlsctx.Fetches
}

// tlsFetches returns the TLS fetches of the client connection, computed
// on first use: SampleFetches copies the state and formats the DNs, too
// much to do for each fetch. Req.TLS must be set.
func (t *Txn) tlsFetches() *tlsctx.Fetches {
	if t.tls == nil {
		f := tlsctx.SampleFetches(*t.Req.TLS)
		t.tls = &f
	}
	return t.tls
}

// NewTxn builds a Txn for a request served by net/http: the client address
// comes from RemoteAddr, the destination from the connection's local
// address in the request context.
func NewTxn(r *http.Request) *Txn {
	t := &Txn{Req: r}
	t.Src, _ = netip.ParseAddrPort(r.RemoteAddr)
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		t.Dst, _ = netip.ParseAddrPort(a.String())
	}
	t.Src = netip.AddrPortFrom(t.Src.Addr().Unmap(), t.Src.Port())
	t.Dst = netip.AddrPortFrom(t.Dst.Addr().Unmap(), t.Dst.Port())
	return t
}

// kind is the type of a fetch's samples, which decides its default match
// and how patterns are read.
type kind int

const (
	kindStr kind = iota
	kindInt
	kindIP
	kindBool
)

// fetchDef is one sample fetch of the table.
type fetchDef struct {
	kind     kind
	needsArg bool // hdr(name)
	resp     bool // only meaningful in http-response rules
	// get returns the samples: several for a repeated header, none when
	// the fetch has nothing to return.
	get func(t *Txn, arg string) []string
}

// fetches are the sample fetches sluice knows. Their names and meanings
// are HAProxy's (configuration manual, section 7.3).
var fetches = map[string]fetchDef{
	"path":            {kind: kindStr, get: func(t *Txn, _ string) []string { return []string{t.Req.URL.EscapedPath()} }},
	"query":           {kind: kindStr, get: fetchQuery},
	"url":             {kind: kindStr, get: func(t *Txn, _ string) []string { return []string{t.Req.RequestURI} }},
	"method":          {kind: kindStr, get: func(t *Txn, _ string) []string { return []string{t.Req.Method} }},
	"req.ver":         {kind: kindStr, get: fetchVersion},
	"hdr":             {kind: kindStr, needsArg: true, get: fetchReqHeader},
	"req.hdr":         {kind: kindStr, needsArg: true, get: fetchReqHeader},
	"req.fhdr":        {kind: kindStr, needsArg: true, get: fetchReqFullHeader},
	"hdr_cnt":         {kind: kindInt, needsArg: true, get: func(t *Txn, a string) []string { return []string{strconv.Itoa(len(fetchReqHeader(t, a)))} }},
	"res.hdr":         {kind: kindStr, needsArg: true, resp: true, get: fetchRespHeader},
	"status":          {kind: kindInt, resp: true, get: fetchStatus},
	"src":             {kind: kindIP, get: func(t *Txn, _ string) []string { return addrSample(t.Src.Addr()) }},
	"src_port":        {kind: kindInt, get: func(t *Txn, _ string) []string { return portSample(t.Src) }},
	"dst":             {kind: kindIP, get: func(t *Txn, _ string) []string { return addrSample(t.Dst.Addr()) }},
	"dst_port":        {kind: kindInt, get: func(t *Txn, _ string) []string { return portSample(t.Dst) }},
	"ssl_fc":          {kind: kindBool, get: func(t *Txn, _ string) []string { return boolSample(t.Req.TLS != nil) }},
	"ssl_fc_sni":      {kind: kindStr, get: tlsFetch(func(f tlsctx.Fetches) string { return f.SNI })},
	"ssl_fc_alpn":     {kind: kindStr, get: tlsFetch(func(f tlsctx.Fetches) string { return f.ALPN })},
	"ssl_fc_protocol": {kind: kindStr, get: tlsFetch(func(f tlsctx.Fetches) string { return f.Protocol })},
	"ssl_fc_cipher":   {kind: kindStr, get: tlsFetch(func(f tlsctx.Fetches) string { return f.Cipher })},
	"ssl_c_used": {kind: kindBool, get: func(t *Txn, _ string) []string {
		return boolSample(t.Req.TLS != nil && len(t.Req.TLS.PeerCertificates) > 0)
	}},
	"ssl_c_verify": {kind: kindInt, get: tlsFetch(func(f tlsctx.Fetches) string { return strconv.Itoa(f.Verify) })},
	"ssl_c_s_dn":   {kind: kindStr, get: certFetch(func(f tlsctx.Fetches) string { return f.SubjectDN })},
	"ssl_c_i_dn":   {kind: kindStr, get: certFetch(func(f tlsctx.Fetches) string { return f.IssuerDN })},
}

// suffixFetches are the fetches that have HAProxy's "_beg", "_end"...
// variants (path_beg is path with "-m beg").
var suffixFetches = map[string]bool{"path": true, "url": true, "hdr": true, "ssl_fc_sni": true}

// suffixMethods maps a fetch-name suffix to its match method.
var suffixMethods = map[string]string{"beg": "beg", "end": "end", "sub": "sub", "reg": "reg", "dir": "dir", "dom": "dom", "len": "len"}

// lookupFetch finds a fetch by name, with the match method its name
// implies ("" for the default one).
func lookupFetch(name string) (fetchDef, string, bool) {
	if f, ok := fetches[name]; ok {
		return f, "", true
	}
	if i := strings.LastIndexByte(name, '_'); i > 0 {
		base, suffix := name[:i], name[i+1:]
		if m, ok := suffixMethods[suffix]; ok && suffixFetches[base] {
			return fetches[base], m, true
		}
	}
	return fetchDef{}, "", false
}

// splitFetch cuts "hdr(host)" into "hdr" and "host".
func splitFetch(word string) (name, arg string, hasArg bool, err error) {
	open := strings.IndexByte(word, '(')
	if open < 0 {
		return word, "", false, nil
	}
	if !strings.HasSuffix(word, ")") {
		return "", "", false, fmt.Errorf("missing ')' in '%s'", word)
	}
	return word[:open], word[open+1 : len(word)-1], true, nil
}

// sampleFetch is a fetch with its argument, ready to run.
type sampleFetch struct {
	name string
	arg  string
	def  fetchDef
}

// parseFetch reads a fetch expression such as "path" or "hdr(host)";
// method is the match its name implies ("" when none).
func parseFetch(word string, side Side) (sampleFetch, string, error) {
	name, arg, hasArg, err := splitFetch(word)
	if err != nil {
		return sampleFetch{}, "", err
	}
	def, method, ok := lookupFetch(name)
	if !ok {
		return sampleFetch{}, "", fmt.Errorf("unknown fetch method '%s' (known: %s)", name, knownFetches())
	}
	switch {
	case def.needsArg && (!hasArg || arg == ""):
		return sampleFetch{}, "", fmt.Errorf("fetch method '%s' expects an argument, as in '%s(name)'", name, name)
	case !def.needsArg && hasArg:
		return sampleFetch{}, "", fmt.Errorf("fetch method '%s' takes no argument", name)
	case def.resp && side == Request:
		return sampleFetch{}, "", fmt.Errorf("fetch method '%s' needs a response: it is only available in http-response rules", name)
	case strings.ContainsAny(arg, ",()"):
		return sampleFetch{}, "", fmt.Errorf("fetch method '%s': only one argument is supported, got '%s'", name, arg)
	}
	return sampleFetch{name: name, arg: arg, def: def}, method, nil
}

func (f sampleFetch) get(t *Txn) []string {
	if f.def.resp && t.Resp == nil {
		return nil
	}
	return f.def.get(t, f.arg)
}

func knownFetches() string {
	var names []string
	for n := range fetches {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func fetchQuery(t *Txn, _ string) []string {
	if t.Req.URL.RawQuery == "" && !t.Req.URL.ForceQuery {
		return nil
	}
	return []string{t.Req.URL.RawQuery}
}

func fetchVersion(t *Txn, _ string) []string {
	return []string{fmt.Sprintf("%d.%d", t.Req.ProtoMajor, t.Req.ProtoMinor)}
}

// fetchReqHeader is hdr(name): every value of the header, lists cut at
// commas as HAProxy does. The Host header lives in Req.Host for net/http.
func fetchReqHeader(t *Txn, name string) []string {
	if strings.EqualFold(name, "host") {
		if t.Req.Host == "" {
			return nil
		}
		return []string{t.Req.Host}
	}
	return splitValues(t.Req.Header.Values(name))
}

func fetchReqFullHeader(t *Txn, name string) []string {
	if strings.EqualFold(name, "host") {
		return fetchReqHeader(t, name)
	}
	return t.Req.Header.Values(name)
}

func fetchRespHeader(t *Txn, name string) []string {
	return splitValues(t.Resp.Header.Values(name))
}

func fetchStatus(t *Txn, _ string) []string {
	return []string{strconv.Itoa(t.Resp.StatusCode)}
}

func splitValues(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(part))
		}
	}
	return out
}

func addrSample(a netip.Addr) []string {
	if !a.IsValid() {
		return nil
	}
	return []string{a.String()}
}

func portSample(a netip.AddrPort) []string {
	if !a.IsValid() {
		return nil
	}
	return []string{strconv.Itoa(int(a.Port()))}
}

func boolSample(b bool) []string {
	if b {
		return []string{"1"}
	}
	return []string{"0"}
}

// tlsFetch makes a fetch of the client connection's TLS state; it finds
// nothing on a clear connection.
func tlsFetch(field func(tlsctx.Fetches) string) func(*Txn, string) []string {
	return func(t *Txn, _ string) []string {
		if t.Req.TLS == nil {
			return nil
		}
		v := field(*t.tlsFetches())
		if v == "" {
			return nil
		}
		return []string{v}
	}
}

// certFetch is tlsFetch for the client certificate's fields.
func certFetch(field func(tlsctx.Fetches) string) func(*Txn, string) []string {
	return func(t *Txn, _ string) []string {
		if t.Req.TLS == nil || len(t.Req.TLS.PeerCertificates) == 0 {
			return nil
		}
		return []string{field(*t.tlsFetches())}
	}
}
