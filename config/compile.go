package config

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sluicelb/sluice/addr"
)

// resolveTimeout bounds the resolution of every host name of a
// configuration.
const resolveTimeout = 30 * time.Second

// compile turns the drafts into the Config, reporting what needs the whole
// configuration to be checked. The Config is only returned to the caller
// when no error was reported.
func (p *parser) compile() *Config {
	cfg := &Config{
		Global:   p.global.Global,
		Proxies:  make([]*Proxy, 0, len(p.proxies)),
		Files:    p.files,
		Inactive: p.inactive,
	}
	if cfg.Files == nil {
		cfg.Files = []string{}
	}
	n := p.processCount()
	cfg.Global.NbProc = n
	cfg.Global.CPUMap = p.compileCPUMap(n)

	p.checkNames()
	for _, d := range p.proxies {
		p.compileBinds(d, n)
	}
	p.assignIDs()
	targets := p.checkReferences()
	p.assignProcesses(targets)
	p.statsProxies()
	p.checkServerResolvers()
	p.resolveAddresses()
	p.localProcesses()
	p.checkCerts()
	p.finishSSL()
	p.checkModes()
	// After checkCaches, which checks the names of the cache rules that
	// checkHTTPOnly may drop.
	p.checkCaches()
	for _, d := range p.proxies {
		p.checkHTTPOnly(d)
	}
	p.checkCompression()
	for _, d := range p.proxies {
		cfg.Proxies = append(cfg.Proxies, &d.Proxy)
	}
	cfg.Caches = p.caches
	// After checkServerResolvers, which may add the implicit "default".
	cfg.Resolvers = p.resolvers
	if cfg.Resolvers == nil {
		cfg.Resolvers = []*Resolvers{}
	}
	return cfg
}

// processCount returns the number of processes: nbproc or nbthread, which
// are synonyms, or else the highest process number a bind uses.
func (p *parser) processCount() int {
	g := &p.global
	switch {
	case g.nbproc > 1 && g.nbthread > 1:
		p.errorf(g.nbthreadPos, "nbproc %d (at %s) and nbthread %d: sluice runs one process per HAProxy thread, so set only one of them", g.nbproc, g.nbprocPos, g.nbthread)
		return g.nbproc
	case g.nbproc > 0 || g.nbthread > 0:
		return max(g.nbproc, g.nbthread)
	}
	n := 1
	for _, d := range p.proxies {
		for _, set := range d.bindProcess {
			n = max(n, set.highest())
		}
		for _, b := range d.binds {
			for _, set := range b.procs {
				n = max(n, set.highest())
			}
		}
	}
	return n
}

// countLabel says where the number of processes comes from, for messages.
func (p *parser) countLabel(n int) string {
	switch {
	case p.global.nbproc > 1 || p.global.nbthread == 0 && p.global.nbproc > 0:
		return fmt.Sprintf("nbproc %d", n)
	case p.global.nbthread > 0:
		return fmt.Sprintf("nbthread %d", n)
	}
	return fmt.Sprintf("%d processes, the highest process number of the binds", n)
}

// expand returns the processes that sets name when there are n of them,
// reporting numbers above n.
func (p *parser) expand(sets []procSet, n int, label string) []int {
	var all [][]int
	for _, set := range sets {
		unit := "process"
		if set.kwName == "thread" {
			unit = "thread"
		}
		if h := set.highest(); h > n {
			p.errorf(set.pos, "%s'%s %s': %s %d does not exist (%s)", label, set.kwName, set.text, unit, h, p.countLabel(n))
			continue
		}
		nums := set.expand(n)
		if len(nums) == 0 {
			p.errorf(set.pos, "%s'%s %s' names no %s (%s)", label, set.kwName, set.text, unit, p.countLabel(n))
			continue
		}
		all = append(all, nums)
	}
	return union(all...)
}

// cpuMap compiles the cpu-map lines into process -> CPUs. A later line
// replaces what an earlier one said about the same process.
func (p *parser) compileCPUMap(n int) map[int][]int {
	g := &p.global
	threadMode := g.nbthread > 0 && g.nbproc <= 1
	out := make(map[int][]int)
	for _, m := range g.cpuMaps {
		set := m.procs
		if threadMode && !m.slash {
			// HAProxy 2.x: a lone number is a thread group, and group 1
			// holds every thread.
			if set.text != "1" {
				p.errorf(m.pos, "'cpu-map %s': with nbthread, a lone number is a thread group and sluice has only group 1 (write '1/%s' for threads)", set.text, set.text)
				continue
			}
			set, _ = parseProcSet("all")
		}
		if h := set.highest(); h > n {
			p.errorf(m.pos, "'cpu-map': process %d does not exist (%s)", h, p.countLabel(n))
			continue
		}
		cpus := union(m.cpus)
		if !m.auto {
			for _, proc := range set.expand(n) {
				out[proc] = cpus
			}
			continue
		}
		// auto: the i-th process gets the i-th CPU. Open sets count up to
		// HAProxy's 64 so that "auto:1/all 0-63" means what it does there.
		procs := set.expand(maxProcs)
		if len(cpus) == 1 { // as in HAProxy, one CPU is for them all
			for _, proc := range set.expand(n) {
				out[proc] = cpus
			}
			continue
		}
		if len(procs) != len(cpus) {
			p.errorf(m.pos, "'cpu-map auto:': %d processes for %d CPUs (both sets must have the same size)", len(procs), len(cpus))
			continue
		}
		for i, proc := range procs {
			if proc <= n {
				out[proc] = []int{cpus[i]}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkNames reports proxies that share a name with one of the same
// capability (two frontends, or two backends; a frontend and a backend
// may share one), and servers that share a name in a proxy.
func (p *parser) checkNames() {
	for i, d := range p.proxies {
		for _, prev := range p.proxies[:i] {
			if prev.Name == d.Name && (prev.Frontend && d.Frontend || prev.Backend && d.Backend) {
				p.errorf(d.Pos, "%s has the same name as %s declared at %s", d.label(), prev.label(), prev.Pos)
				break
			}
		}
		seen := make(map[string]*Server)
		for _, s := range d.Servers {
			if prev := seen[s.Name]; prev != nil {
				p.errorf(s.Pos, "%s: server '%s' already defined at %s", d.label(), s.Name, prev.Pos)
				continue
			}
			seen[s.Name] = s
		}
	}
}

// compileBinds fills the processes of the binds: their process option,
// else the proxy's bind-process, else every process.
func (p *parser) compileBinds(d *proxyDraft, n int) {
	every := make([]int, n)
	for i := range every {
		every[i] = i + 1
	}
	procs := every
	if d.bindProcess != nil {
		procs = p.expand(d.bindProcess, n, "")
	}
	for _, b := range d.binds {
		b.Processes = procs
		if b.procs != nil {
			b.Processes = p.expand(b.procs, n, "bind "+b.line+": ")
		}
		d.Binds = append(d.Binds, &b.Bind)
	}
}

// assignIDs gives ids like HAProxy: explicit ones first, checked for
// duplicates, then the next free one from 1 in file order. Proxies share
// one space; servers and binds have one per proxy.
func (p *parser) assignIDs() {
	proxies := make([]idItem, len(p.proxies))
	for i, d := range p.proxies {
		proxies[i] = idItem{id: &d.ID, label: d.label(), pos: d.Pos}
	}
	p.assign(proxies)
	for _, d := range p.proxies {
		servers := make([]idItem, len(d.Servers))
		for i, s := range d.Servers {
			servers[i] = idItem{id: &s.ID, label: fmt.Sprintf("server '%s'", s.Name), pos: s.Pos}
		}
		p.assign(servers)
		binds := make([]idItem, len(d.binds))
		for i, b := range d.binds {
			binds[i] = idItem{id: &b.ID, label: "bind " + b.Addr.Text, pos: b.Pos}
		}
		p.assign(binds)
	}
}

type idItem struct {
	id    *int
	label string
	pos   Pos
}

func (p *parser) assign(items []idItem) {
	used := make(map[int]idItem)
	for _, it := range items {
		if *it.id == 0 {
			continue
		}
		if prev, ok := used[*it.id]; ok {
			p.errorf(it.pos, "%s reuses id %d of %s (declared at %s)", it.label, *it.id, prev.label, prev.pos)
			continue
		}
		used[*it.id] = it
	}
	next := 1
	for _, it := range items {
		if *it.id != 0 {
			continue
		}
		for _, taken := used[next]; taken; _, taken = used[next] {
			next++
		}
		*it.id = next
		used[next] = it
	}
}

// checkReferences checks default_backend and use_backend, and returns for
// each proxy the backends it sends connections to.
func (p *parser) checkReferences() map[*proxyDraft][]*proxyDraft {
	targets := make(map[*proxyDraft][]*proxyDraft)
	var backendNames []string
	for _, d := range p.proxies {
		if d.Backend {
			backendNames = append(backendNames, d.Name)
		}
	}
	for _, d := range p.proxies {
		if !d.Frontend {
			// Inherited from defaults, where it means something only to
			// frontends.
			d.DefaultBackend = ""
			continue
		}
		refs := slices.Clone(d.UseBackends)
		if d.DefaultBackend != "" {
			refs = append(refs, UseBackend{Backend: d.DefaultBackend, Pos: d.defaultBackendPos})
		}
		for i, ref := range refs {
			kw := "use_backend"
			if i == len(refs)-1 && d.DefaultBackend != "" {
				kw = "default_backend"
			}
			t := p.backend(ref.Backend)
			switch {
			case t == nil && p.proxyNamed(ref.Backend) != nil:
				p.errorf(ref.Pos, "%s: %s '%s' is a frontend, not a backend", d.label(), kw, ref.Backend)
			case t == nil:
				p.errorf(ref.Pos, "%s: %s '%s': no such backend%s", d.label(), kw, ref.Backend, didYouMean(ref.Backend, backendNames))
			case d.Mode == ModeHTTP && t.Mode == ModeTCP:
				p.errorf(ref.Pos, "http %s cannot use tcp %s in its %s (see 'mode')", d.label(), t.label(), kw)
			case d.Mode == ModeTCP && len(t.HTTPRequest)+len(t.HTTPResponse)+len(t.Redirects) > 0:
				p.errorf(ref.Pos, "tcp %s cannot use %s in its %s: the backend's http-request/http-response rules would never run (see 'mode')", d.label(), t.label(), kw)
			default:
				targets[d] = append(targets[d], t)
			}
		}
		takesAll := d.DefaultBackend != ""
		for _, ref := range d.UseBackends {
			takesAll = takesAll || len(ref.Cond) == 0
		}
		switch {
		case len(refs) == 0 && !d.Backend:
			p.warnf(d.Pos, "%s has no default_backend nor use_backend: it has nowhere to send connections", d.label())
		case takesAll && len(d.Servers) > 0:
			p.warnf(refs[0].Pos, "%s has servers, but its backend rules take every connection: the servers are never used", d.label())
		}
	}
	return targets
}

// checkHTTPOnly is the one check of what only http mode runs, in a
// tcp-mode proxy. http-request, http-response and redirect rules and
// use_backend conditions (their fetches read the request) are refused.
// Settings are dropped with a warning, as HAProxy ignores them (it warns
// for forwardfor and cache rules, and silently ignores the others).
func (p *parser) checkHTTPOnly(d *proxyDraft) {
	if d.Mode == ModeHTTP {
		return
	}
	ignored := func(pos Pos, what string) {
		p.warnf(pos, "%s ignored for %s as it requires HTTP mode", what, d.label())
	}
	if d.ForwardFor != nil {
		ignored(d.forwardForPos, "'option forwardfor'")
		d.ForwardFor = nil
	}
	if d.HTTPConnMode != "" {
		opt := map[string]string{"keep-alive": "http-keep-alive", "server-close": "http-server-close", "close": "httpclose"}[d.HTTPConnMode]
		ignored(d.httpConnModePos, "'option "+opt+"'")
		d.HTTPConnMode = ""
	}
	if d.HTTPReuse != "" {
		ignored(d.httpReusePos, "'http-reuse'")
		d.HTTPReuse = ""
	}
	if d.Compression != nil {
		ignored(d.Compression.Pos, "'compression'")
		d.Compression = nil
	}
	if d.CacheUse != "" || d.CacheStore != "" {
		pos := d.cacheUsePos
		if d.CacheUse == "" {
			pos = d.cacheStorePos
		}
		p.warnf(pos, "cache rules ignored for %s as they require HTTP mode", d.label())
		d.CacheUse, d.CacheStore = "", ""
	}
	for _, r := range d.HTTPRequest {
		p.errorf(r.Pos, "%s: 'http-request' rules need 'mode http'", d.label())
	}
	for _, r := range d.HTTPResponse {
		p.errorf(r.Pos, "%s: 'http-response' rules need 'mode http'", d.label())
	}
	for _, r := range d.Redirects {
		p.errorf(r.Pos, "%s: 'redirect' rules need 'mode http'", d.label())
	}
	for _, u := range d.UseBackends {
		if len(u.Cond) > 0 {
			p.errorf(u.Pos, "%s: 'use_backend %s %s ...': conditions on use_backend are only supported in 'mode http'", d.label(), u.Backend, u.Cond[0])
		}
	}
}

// backend returns the proxy with backend capability of that name.
func (p *parser) backend(name string) *proxyDraft {
	for _, d := range p.proxies {
		if d.Backend && d.Name == name {
			return d
		}
	}
	return nil
}

func (p *parser) proxyNamed(name string) *proxyDraft {
	for _, d := range p.proxies {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// assignProcesses fills the processes of every proxy: those of its binds,
// plus, for a backend, those of the frontends that send it connections.
func (p *parser) assignProcesses(targets map[*proxyDraft][]*proxyDraft) {
	own := make(map[*proxyDraft][]int)
	for _, d := range p.proxies {
		var sets [][]int
		for _, b := range d.Binds {
			sets = append(sets, b.Processes)
		}
		own[d] = union(sets...)
	}
	for _, d := range p.proxies {
		d.Processes = append([]int{}, own[d]...)
	}
	for _, d := range p.proxies {
		for _, t := range targets[d] {
			t.Processes = union(t.Processes, own[d])
		}
	}
	for _, d := range p.proxies {
		if d.Frontend && len(d.binds) == 0 {
			p.warnf(d.Pos, "%s has no bind line: it accepts no connection (declare it as a backend if that is what it is)", d.label())
		}
	}
}

// resolveAddresses resolves the host names of nameservers, binds and
// servers once, at load. Servers follow their init-addr (by default
// HAProxy's libc: resolved now); see initServerAddr.
func (p *parser) resolveAddresses() {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	p.compileResolvers(ctx)
	type result struct {
		a   addr.Addr
		err error
	}
	cache := make(map[string]result)
	resolve := func(a addr.Addr) (addr.Addr, error) {
		if a.IsIP() {
			return a, nil
		}
		r, ok := cache[a.Host]
		if !ok {
			r.a, r.err = p.ld.resolve(ctx, addr.Addr{Family: addr.TCP, Host: a.Host})
			cache[a.Host] = r
		}
		if r.err != nil {
			return a, r.err
		}
		a.Host = r.a.Host
		return a, nil
	}
	for _, d := range p.proxies {
		for _, b := range d.binds {
			a, err := resolve(b.Addr)
			if err != nil {
				p.errorf(b.Pos, "bind %s: %v", b.line, err)
			}
			b.Addr = a
		}
		for _, s := range d.Servers {
			p.initServerAddr(s, resolve)
		}
	}
}

// localProcesses sets Server.LocalProcess for servers that point at a bind
// of this configuration accepting in exactly one process, and warns about
// abstract sockets no bind listens on.
func (p *parser) localProcesses() {
	byKey := make(map[string][]int)
	for _, d := range p.proxies {
		for _, b := range d.Binds {
			byKey[b.Addr.Key()] = union(byKey[b.Addr.Key()], b.Processes)
		}
	}
	for _, d := range p.proxies {
		for _, s := range d.Servers {
			if s.NoAddr {
				continue
			}
			procs, ok := byKey[s.Addr.Key()]
			if len(procs) == 1 {
				s.LocalProcess = procs[0]
			}
			if !ok && s.Addr.Family == addr.Abstract {
				p.warnf(s.Pos, "server '%s': no bind of this configuration listens on %s", s.Name, s.Addr.Text)
			}
		}
	}
}

// checkCerts checks the ssl binds: a certificate is required, and every
// crt file or directory must be readable. Parsing the certificates is left
// to the TLS code.
func (p *parser) checkCerts() {
	checked := make(map[string]error)
	for _, d := range p.proxies {
		for _, b := range d.binds {
			label := "bind " + b.line
			if !b.SSL {
				if len(b.Crt) > 0 {
					p.warnf(b.Pos, "%s: 'crt' has no effect without 'ssl'", label)
				}
				if len(b.ALPN) > 0 {
					p.warnf(b.Pos, "%s: 'alpn' has no effect without 'ssl'", label)
				}
				continue
			}
			if len(b.Crt) == 0 && len(b.TLS.CrtList) == 0 {
				p.errorf(b.Pos, "%s: 'ssl' needs a certificate: add 'crt FILE' or 'crt-list FILE'", label)
			}
			for _, path := range append(slices.Clone(b.Crt), b.TLS.CrtList...) {
				err, done := checked[path]
				if !done {
					err = p.ld.checkCrt(path)
					checked[path] = err
				}
				if err != nil {
					p.errorf(b.Pos, "%s: certificate '%s': %v", label, path, fileError(err))
				}
			}
		}
	}
}

// checkModes reports the log settings that need http mode, or a log
// address, and drops them as HAProxy does.
func (p *parser) checkModes() {
	for _, d := range p.proxies {
		if !d.Frontend {
			d.LogFormat = "" // tcplog and httplog are frontend options
			continue
		}
		if d.LogFormat == "httplog" && d.Mode != ModeHTTP {
			p.warnf(d.logFormatPos, "'option httplog' not usable with %s (needs 'mode http'): falling back to 'option tcplog'", d.label())
			d.LogFormat = "tcplog"
		}
		hasLog := len(d.Logs) > 0 || d.LogGlobal && len(p.global.Logs) > 0
		if d.LogFormat != "" && !hasLog {
			p.warnf(d.logFormatPos, "'option %s' ignored for %s since it has no log address", d.LogFormat, d.label())
		}
	}
}

// dedupe drops repeated messages, which settings inherited from a
// defaults section can cause.
func dedupe(diags []Diagnostic) []Diagnostic {
	seen := make(map[Diagnostic]bool)
	out := diags[:0]
	for _, d := range diags {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// statsProxies checks the proxies that serve the statistics page and takes
// them out of the child processes: the master serves the page, because it
// alone sees every process.
func (p *parser) statsProxies() {
	for _, d := range p.proxies {
		if d.Stats == nil || d.Disabled {
			continue
		}
		switch {
		case d.Mode != ModeHTTP:
			p.errorf(d.Pos, "%s: the stats page needs 'mode http'", d.label())
		case len(d.Servers) > 0 || d.DefaultBackend != "" || len(d.UseBackends) > 0:
			p.errorf(d.Pos, "%s: sluice serves the stats page from the master, in a proxy of its own: move the servers and backends of this proxy to another one", d.label())
		}
		for _, b := range d.Binds {
			if b.SSL {
				p.errorf(b.Pos, "bind %s: ssl on the stats page's bind is not supported; serve it on a local or private address", b.Addr.Text)
			}
			b.Processes = nil
		}
		d.Processes = nil
	}
}
