package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/httprules"
)

// proxyDraft is a proxy or defaults section as read, before compiling.
type proxyDraft struct {
	Proxy
	kind        sectionKind
	bindProcess []procSet // bind-process, nil when not set
	binds       []*bindDraft
	// compOwn is set once Compression belongs to this section rather than
	// to the defaults it came from; comp tracks its lists (compression.go).
	compOwn bool
	comp    compressionDraft
	// Positions of the cache rules, for the messages about them.
	cacheUsePos, cacheStorePos Pos
	// Positions of settings that may come from a defaults section, for the
	// messages about them.
	defaultBackendPos, logFormatPos, forwardForPos Pos
	httpReusePos, httpConnModePos                  Pos
	// acls checks the conditions of the proxy's lines as they are read.
	acls *httprules.ACLs
}

// bindDraft is one address of a bind line as read.
type bindDraft struct {
	Bind
	procs []procSet // process/thread options, nil when not set
	line  string    // the bind line's addresses as written, for messages
	multi bool      // the line has several addresses
}

// builtinDefaults are HAProxy's defaults for proxies.
func builtinDefaults() *proxyDraft {
	return &proxyDraft{
		kind:  secDefaults,
		Proxy: Proxy{Mode: ModeTCP, Balance: BalanceRoundRobin, Retries: 3},
	}
}

// inherit returns a new section's starting point: a copy of the defaults
// section d, without what only belongs to d.
func (d *proxyDraft) inherit() *proxyDraft {
	n := &proxyDraft{
		Proxy:             d.Proxy,
		bindProcess:       slices.Clone(d.bindProcess),
		defaultBackendPos: d.defaultBackendPos,
		logFormatPos:      d.logFormatPos,
		forwardForPos:     d.forwardForPos,
		httpReusePos:      d.httpReusePos,
		httpConnModePos:   d.httpConnModePos,
	}
	n.Logs = slices.Clone(d.Logs)
	if d.ForwardFor != nil {
		ff := *d.ForwardFor
		n.ForwardFor = &ff
	}
	n.Name, n.ID, n.Pos = "", 0, Pos{}
	return n
}

// label names the proxy in messages: "frontend 'f'".
func (d *proxyDraft) label() string {
	if d.kind == secDefaults {
		if d.Name == "" {
			return "defaults section"
		}
		return fmt.Sprintf("defaults section '%s'", d.Name)
	}
	return fmt.Sprintf("%s '%s'", d.kind, d.Name)
}

// options reads the options of a bind, server or stats socket line: each
// is a keyword of the table for that place, followed by its arguments.
// label names the line in messages. Every bad value is reported; an
// unknown option ends the line, since what follows it cannot be read.
func (p *parser) options(line *stmt, here where, label string, words []string) {
	for len(words) > 0 {
		kw := find(words[0], here, here)
		if kw == nil || kw.status == unsupported {
			p.errorf(line.pos, "%s: unknown option '%s'%s", label, words[0], didYouMean(words[0], keywordNames(here)))
			return
		}
		if len(words) <= kw.args {
			p.errorf(line.pos, "%s: '%s' expects a value", label, kw.name)
			return
		}
		o := &stmt{pos: line.pos, name: kw.name, args: words[1 : 1+kw.args]}
		if err := kw.parse(p, o); err != nil {
			p.errorf(line.pos, "%s: %v", label, err)
		} else if kw.status == notActive {
			p.inactive = append(p.inactive, Diagnostic{Pos: line.pos, Warning: true, Msg: fmt.Sprintf("'%s' on %s is parsed but not active yet", kw.name, label)})
		}
		words = words[1+kw.args:]
	}
}

func (p *parser) mode(s *stmt) error {
	m, err := oneArg(s, "'tcp' or 'http'")
	if err != nil {
		return err
	}
	switch m {
	case "tcp", "http":
		p.cur.Mode = Mode(m)
		return nil
	case "health":
		return fmt.Errorf("'mode health' does not exist any more (nor in HAProxy)")
	default:
		return fmt.Errorf("unknown proxy mode '%s' (expected 'tcp' or 'http')", m)
	}
}

// bind reads "bind <addr>[,<addr>...] [options]". Each address becomes a
// Bind with the line's options.
func (p *parser) bind(s *stmt) error {
	if len(s.args) == 0 {
		return fmt.Errorf("'bind' expects an address (ip:port, [ipv6]:port, *:port, :port, abns@name, unix@path...)")
	}
	var binds []*bindDraft
	list := strings.Split(s.args[0], ",")
	for _, text := range list {
		a, err := addr.Parse(text)
		if err != nil {
			return fmt.Errorf("bind: %v", err)
		}
		b := &bindDraft{Bind: Bind{Addr: a, Pos: s.pos}, line: s.args[0], multi: len(list) > 1}
		binds = append(binds, b)
	}
	// Options are read once, into the first address, then copied.
	p.bindLine = binds[0]
	p.options(s, onBind, "bind "+s.args[0], s.args[1:])
	p.bindLine = nil
	first := binds[0]
	for _, b := range binds[1:] {
		a := b.Addr
		*b = *first
		b.Addr = a
		b.Crt, b.ALPN, b.procs = slices.Clone(first.Crt), slices.Clone(first.ALPN), slices.Clone(first.procs)
	}
	p.cur.binds = append(p.cur.binds, binds...)
	return nil
}

// bindProcesses reads "process <set>" and "thread <set>" (synonyms in
// sluice, whose processes stand for HAProxy's threads). "1/<set>" is
// HAProxy's thread group 1; the option may be repeated.
func (p *parser) bindProcesses(s *stmt) error {
	set, err := parseProcArg(s.name, s.args[0])
	if err != nil {
		return err
	}
	set.pos = s.pos
	p.bindLine.procs = append(p.bindLine.procs, set)
	return nil
}

// parseProcArg reads a process or thread set, with an optional "1/"
// thread-group or process prefix.
func parseProcArg(kw, arg string) (procSet, error) {
	spec := arg
	if group, threads, ok := strings.Cut(arg, "/"); ok {
		if group != "1" && group != "all" {
			return procSet{}, fmt.Errorf("'%s %s': sluice has one thread group, numbered 1 (write '%s 1/%s')", kw, arg, kw, threads)
		}
		spec = threads
	}
	set, err := parseProcSet(spec)
	if err != nil {
		return procSet{}, fmt.Errorf("'%s': %v", kw, err)
	}
	set.kwName = kw
	return set, nil
}

func (p *parser) acceptProxy(s *stmt) error {
	p.bindLine.AcceptProxy = true
	return nil
}

func (p *parser) ssl(s *stmt) error {
	p.bindLine.SSL = true
	return nil
}

func (p *parser) crt(s *stmt) error {
	if s.args[0] == "" {
		return fmt.Errorf("'crt' expects a file or directory")
	}
	p.bindLine.Crt = append(p.bindLine.Crt, p.withBase(p.global.CrtBase, s.args[0]))
	return nil
}

func (p *parser) alpn(s *stmt) error {
	protos, err := parseALPN(s.args[0])
	if err != nil {
		return err
	}
	p.bindLine.ALPN = append(p.bindLine.ALPN, protos...)
	return nil
}

func (p *parser) bindName(s *stmt) error {
	p.bindLine.Name = s.args[0]
	return nil
}

func (p *parser) bindID(s *stmt) error {
	if p.bindLine.multi {
		return fmt.Errorf("'id' cannot be set on a bind line with several addresses")
	}
	n, err := parseInt(s.args[0], 1, math.MaxInt32)
	if err != nil {
		return fmt.Errorf("'id' %v", err)
	}
	p.bindLine.ID = n
	return nil
}

func (p *parser) bindMaxConn(s *stmt) error {
	n, err := parseInt(s.args[0], 0, math.MaxInt32)
	if err != nil {
		return fmt.Errorf("'maxconn' %v", err)
	}
	p.bindLine.MaxConn = n
	return nil
}

func (p *parser) bindProcess(s *stmt) error {
	if len(s.args) == 0 {
		return fmt.Errorf("'bind-process' expects a process set (all, odd, even, N, N-M or N-)")
	}
	var sets []procSet
	for _, arg := range s.args {
		set, err := parseProcArg(s.name, arg)
		if err != nil {
			return err
		}
		set.pos = s.pos
		sets = append(sets, set)
	}
	p.cur.bindProcess = sets
	return nil
}

func (p *parser) balance(s *stmt) error {
	b, err := oneArg(s, "an algorithm (roundrobin, leastconn, source or first)")
	if err != nil {
		return err
	}
	switch Balance(b) {
	case BalanceRoundRobin, BalanceLeastConn, BalanceSource, BalanceFirst:
		p.cur.Balance = Balance(b)
		return nil
	}
	return fmt.Errorf("balance '%s' is not supported (supported: roundrobin, leastconn, source, first)", b)
}

// server reads "server <name> <addr> [options]" with HAProxy's defaults.
func (p *parser) server(s *stmt) error {
	if len(s.args) < 2 {
		return fmt.Errorf("'server' expects a name and an address")
	}
	name := s.args[0]
	if c := invalidNameChar(name); c != 0 {
		return fmt.Errorf("character '%c' is not permitted in server name '%s'", c, name)
	}
	label := fmt.Sprintf("server '%s'", name)
	srv, err := p.newServer(s, name, label, s.args[1], s.args[2:])
	if err != nil {
		return fmt.Errorf("%s: %v", label, err)
	}
	p.cur.Servers = append(p.cur.Servers, srv)
	return nil
}

// newServer reads the address and options of a server or server-template
// line; label names the line in messages.
func (p *parser) newServer(s *stmt, name, label, address string, opts []string) (*Server, error) {
	a, fqdn, srv, err := parseServerAddr(address)
	if err != nil {
		return nil, err
	}
	p.serverLine = &Server{
		Name: name, Addr: a, Pos: s.pos,
		Inter: 2 * time.Second, Rise: 2, Fall: 3, Weight: 1,
		FQDN: fqdn, SRV: srv, ResolvePrefer: "ipv6",
	}
	p.options(s, onServer, label, opts)
	sv := p.serverLine
	p.serverLine = nil
	if sv.InitAddr == nil {
		// HAProxy's default; with resolvers, a name that does not
		// resolve at load leaves the server without address rather than
		// failing the load.
		sv.InitAddr = []string{"last", "libc"}
		if sv.Resolvers != "" {
			sv.InitAddr = append(sv.InitAddr, "none")
		}
	}
	return sv, nil
}

func (p *parser) sendProxy(s *stmt) error {
	p.serverLine.SendProxy = 1
	if s.name == "send-proxy-v2" {
		p.serverLine.SendProxy = 2
	}
	return nil
}

func (p *parser) check(s *stmt) error {
	p.serverLine.Check = true
	return nil
}

func (p *parser) inter(s *stmt) error {
	d, err := parseTime(s.args[0])
	if err != nil {
		return fmt.Errorf("'inter' %v", err)
	}
	if d < time.Millisecond {
		return fmt.Errorf("'inter' must be at least 1ms")
	}
	p.serverLine.Inter = d
	return nil
}

func (p *parser) riseFall(s *stmt) error {
	n, err := parseInt(s.args[0], 1, math.MaxInt32)
	if err != nil {
		return fmt.Errorf("'%s' %v", s.name, err)
	}
	if s.name == "rise" {
		p.serverLine.Rise = n
	} else {
		p.serverLine.Fall = n
	}
	return nil
}

func (p *parser) weight(s *stmt) error {
	n, err := parseInt(s.args[0], 0, 256)
	if err != nil {
		return fmt.Errorf("'weight' %v", err)
	}
	p.serverLine.Weight = n
	return nil
}

func (p *parser) serverMaxConn(s *stmt) error {
	n, err := parseInt(s.args[0], 0, math.MaxInt32)
	if err != nil {
		return fmt.Errorf("'maxconn' %v", err)
	}
	p.serverLine.MaxConn = n
	return nil
}

func (p *parser) backup(s *stmt) error {
	p.serverLine.Backup = true
	return nil
}

func (p *parser) serverDisabled(s *stmt) error {
	p.serverLine.Disabled = true
	return nil
}

func (p *parser) serverID(s *stmt) error {
	n, err := parseInt(s.args[0], 1, math.MaxInt32)
	if err != nil {
		return fmt.Errorf("'id' %v", err)
	}
	p.serverLine.ID = n
	return nil
}

func (p *parser) defaultBackend(s *stmt) error {
	name, err := oneArg(s, "a backend name")
	if err != nil {
		return err
	}
	p.cur.DefaultBackend, p.cur.defaultBackendPos = name, s.pos
	return nil
}

func (p *parser) timeout(s *stmt) error {
	d, err := timeArg(s)
	if err != nil {
		return err
	}
	t := &p.cur.Timeouts
	field := map[string]*time.Duration{
		"timeout connect":         &t.Connect,
		"timeout client":          &t.Client,
		"timeout server":          &t.Server,
		"timeout tunnel":          &t.Tunnel,
		"timeout check":           &t.Check,
		"timeout queue":           &t.Queue,
		"timeout http-request":    &t.HTTPRequest,
		"timeout http-keep-alive": &t.HTTPKeepAlive,
	}[s.name]
	*field = d
	return nil
}

func (p *parser) proxyMaxConn(s *stmt) error {
	n, err := intArg(s, 0, math.MaxInt32)
	p.cur.MaxConn = n
	return err
}

// forwardFor reads "option forwardfor [except <net>] [header <name>]
// [if-none]".
func (p *parser) forwardFor(s *stmt) error {
	ff := &ForwardFor{Header: "X-Forwarded-For"}
	for args := s.args; len(args) > 0; {
		switch args[0] {
		case "if-none":
			ff.IfNone, args = true, args[1:]
			continue
		case "except", "header":
		default:
			return fmt.Errorf("'option forwardfor' only supports 'except', 'header' and 'if-none' (got '%s')", args[0])
		}
		if len(args) < 2 || args[1] == "" {
			return fmt.Errorf("'option forwardfor %s' expects a value", args[0])
		}
		if args[0] == "header" {
			ff.Header = args[1]
		} else {
			n, err := parseNetwork(args[1])
			if err != nil {
				return fmt.Errorf("'option forwardfor except': %v", err)
			}
			ff.Except = n
		}
		args = args[2:]
	}
	p.cur.ForwardFor, p.cur.forwardForPos = ff, s.pos
	return nil
}

// parseNetwork reads an address with an optional mask (a prefix length or,
// for IPv4, a dotted mask) and returns it as a CIDR.
func parseNetwork(s string) (string, error) {
	bad := fmt.Errorf("'%s' is not an address or a network", s)
	ipText, mask, hasMask := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(ipText)
	if err != nil || ip.Zone() != "" {
		return "", bad
	}
	bits := ip.BitLen()
	if hasMask {
		if m, err := netip.ParseAddr(mask); err == nil && ip.Is4() && m.Is4() {
			ones, total := net.IPMask(m.AsSlice()).Size()
			if total == 0 {
				return "", bad
			}
			bits = ones
		} else if bits, err = strconv.Atoi(mask); err != nil {
			return "", bad
		}
	}
	prefix, err := ip.Prefix(bits)
	if err != nil {
		return "", bad
	}
	return prefix.String(), nil
}

// proxyLog reads "log global", "no log" and "log <target> ..." in
// proxies. Like HAProxy, the lines add to those inherited from defaults;
// "no log" drops them all.
func (p *parser) proxyLog(s *stmt) error {
	switch {
	case s.neg:
		if err := noArg(s); err != nil {
			return err
		}
		p.cur.LogGlobal, p.cur.Logs = false, nil
		return nil
	case len(s.args) == 1 && s.args[0] == "global":
		p.cur.LogGlobal = true
		return nil
	}
	t, err := parseLog(s)
	if err != nil {
		return err
	}
	p.cur.Logs = append(p.cur.Logs, t)
	return nil
}

func (p *parser) logFormat(s *stmt) error {
	if err := noArg(s); err != nil {
		return err
	}
	p.cur.LogFormat = strings.TrimPrefix(s.name, "option ")
	p.cur.logFormatPos = s.pos
	return nil
}

func (p *parser) retries(s *stmt) error {
	n, err := intArg(s, 0, math.MaxInt32)
	p.cur.Retries = n
	return err
}

// loadServerState reads "load-server-state-from-file global|none". The
// "local" form (one file per backend under server-state-base) is refused.
func (p *parser) loadServerState(s *stmt) error {
	v, err := oneArg(s, "'global' or 'none'")
	if err != nil {
		return err
	}
	switch v {
	case "global":
		p.cur.LoadServerState = true
	case "none":
		p.cur.LoadServerState = false
	case "local":
		return fmt.Errorf("'load-server-state-from-file local' is not supported; use 'global' with the global 'server-state-file'")
	default:
		return fmt.Errorf("'load-server-state-from-file' expects 'global' or 'none', not '%s'", v)
	}
	return nil
}

// statsPage reads "stats enable", "stats uri PATH" and "stats refresh T";
// each enables the page, as in HAProxy.
func (p *parser) statsPage(s *stmt) error {
	if p.cur.Stats == nil {
		p.cur.Stats = &StatsPage{URI: "/haproxy?stats"}
	} else {
		st := *p.cur.Stats // defaults sections share the pointer until here
		p.cur.Stats = &st
	}
	switch s.name {
	case "stats enable":
		return noArg(s)
	case "stats uri":
		uri, err := oneArg(s, "a URI prefix such as /stats")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(uri, "/") {
			return fmt.Errorf("'stats uri' expects a path starting with '/', got '%s'", uri)
		}
		p.cur.Stats.URI = uri
		return nil
	}
	d, err := timeArg(s)
	p.cur.Stats.Refresh = d
	return err
}

func (p *parser) redispatch(s *stmt) error {
	if err := noArg(s); err != nil {
		return err
	}
	p.cur.Redispatch = !s.neg
	return nil
}

func (p *parser) disabled(s *stmt) error {
	if err := noArg(s); err != nil {
		return err
	}
	p.cur.Disabled = s.name == "disabled"
	return nil
}

func (p *parser) proxyID(s *stmt) error {
	n, err := intArg(s, 1, math.MaxInt32)
	p.cur.ID = n
	return err
}
