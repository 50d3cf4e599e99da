package config

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/addr"
)

// This file holds the DNS configuration: resolvers sections, the DNS
// options of servers (resolvers, resolve-prefer, resolve-net, init-addr),
// server-template, and what loading does with them.

// maxTemplateServers bounds the servers one server-template line makes.
const maxTemplateServers = 10000

// newResolvers returns a resolvers section with HAProxy's defaults.
func newResolvers(name string, pos Pos) *Resolvers {
	return &Resolvers{
		Name:                name,
		AcceptedPayloadSize: 512,
		ResolveRetries:      3,
		TimeoutResolve:      time.Second,
		TimeoutRetry:        time.Second,
		Hold: Hold{
			Valid:   10 * time.Second,
			NX:      30 * time.Second,
			Timeout: 30 * time.Second,
			Refused: 30 * time.Second,
			Other:   30 * time.Second,
		},
		Pos: pos,
	}
}

// startResolvers handles "resolvers NAME". The lines of a section whose
// name is wrong are still checked, into a section that is then dropped.
func (p *parser) startResolvers(pos Pos, args []string) {
	p.curRes = newResolvers("", pos)
	name, ok := p.namedSection(pos, "resolvers", args)
	p.curRes.Name = name
	if !ok {
		return
	}
	for _, r := range p.resolvers {
		if r.Name == name {
			p.errorf(pos, "resolvers section '%s' is already defined at %s", r.Name, r.Pos)
			return
		}
	}
	p.resolvers = append(p.resolvers, p.curRes)
}

// findNameserver returns the nameserver of that name in r, or nil.
func (r *Resolvers) findNameserver(name string) *Nameserver {
	for i := range r.Nameservers {
		if r.Nameservers[i].Name == name {
			return &r.Nameservers[i]
		}
	}
	return nil
}

// nameserver reads "nameserver NAME ADDRESS".
func (p *parser) nameserver(s *stmt) error {
	p.triedNS[p.curRes] = true
	if len(s.args) < 2 {
		return fmt.Errorf("'nameserver' expects a name and an address (ip[:port], udp@ip[:port] or tcp@ip[:port])")
	}
	name := s.args[0]
	if c := invalidNameChar(name); c != 0 {
		return fmt.Errorf("character '%c' is not permitted in nameserver name '%s'", c, name)
	}
	if len(s.args) > 2 {
		return fmt.Errorf("'nameserver %s': unexpected '%s' (nameserver options are not supported)", name, s.args[2])
	}
	hostPort, tcp, err := parseNameserverAddr(s.args[1])
	if err != nil {
		return fmt.Errorf("'nameserver %s': %v", name, err)
	}
	r := p.curRes
	if prev := r.findNameserver(name); prev != nil {
		return fmt.Errorf("resolvers '%s': nameserver '%s' already defined at %s", r.Name, name, prev.Pos)
	}
	r.Nameservers = append(r.Nameservers, Nameserver{Name: name, Addr: hostPort, TCP: tcp, Pos: s.pos})
	return nil
}

// parseNameserverAddr reads a nameserver's address: [udp@|tcp@]host[:port]
// with the port 53 by default. It returns "host:port" (the host may be a
// name, resolved when compiling) and whether queries go over TCP.
func parseNameserverAddr(text string) (hostPort string, tcp bool, err error) {
	unsupported := fmt.Errorf("address '%s' is not supported: use ip[:port], udp@ip[:port] or tcp@ip[:port]", text)
	s := text
	if prefix, rest, ok := strings.Cut(s, "@"); ok {
		switch prefix {
		case "udp", "udp4", "udp6", "ipv4", "ipv6":
		case "tcp", "tcp4", "tcp6":
			tcp = true
		default:
			return "", false, unsupported
		}
		s = rest
	}
	host, port := s, "53"
	bracketed := strings.HasPrefix(s, "[")
	switch {
	case strings.HasPrefix(s, "/"):
		return "", false, unsupported
	case bracketed && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
	case bracketed:
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", false, fmt.Errorf("address '%s': expected ip[:port] or [ipv6][:port]", text)
		}
	case strings.Count(s, ":") > 1:
		return "", false, fmt.Errorf("address '%s': write IPv6 addresses in brackets, as in [%s]:53", text, s)
	case strings.Contains(s, ":"):
		host, port, _ = strings.Cut(s, ":")
	}
	if strings.Contains(port, "-") {
		return "", false, fmt.Errorf("address '%s': port ranges are not supported", text)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || !isDigit(port[0]) {
		return "", false, fmt.Errorf("address '%s': port '%s' is not a number from 1 to 65535", text, port)
	}
	invalid := fmt.Errorf("address '%s': invalid host '%s'", text, host)
	if ip, err := netip.ParseAddr(host); err == nil {
		if bracketed && !ip.Is6() {
			return "", false, invalid
		}
		host = ip.String()
	} else if a, err := addr.Parse(net.JoinHostPort(host, port)); err != nil || a.IsIP() || bracketed {
		return "", false, invalid
	}
	return net.JoinHostPort(host, port), tcp, nil
}

// parseResolvConf reads "parse-resolv-conf": the nameservers of the
// system's resolv.conf join the section, in place, each named by its
// address, with port 53.
func (p *parser) parseResolvConf(s *stmt) error {
	if err := noArg(s); err != nil {
		return err
	}
	p.curRes.ParseResolvConf = true
	return p.readResolvConf(p.curRes, s.pos, "'parse-resolv-conf'")
}

// readResolvConf adds the nameservers of the loader's resolv.conf to r, as
// HAProxy does: addresses that are not IP addresses and names already
// used are skipped with a warning. It is an error if the file lists no
// nameserver.
func (p *parser) readResolvConf(r *Resolvers, pos Pos, label string) error {
	path := p.ld.resolvConf
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %s: %v", label, path, fileError(err))
	}
	found := 0
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "nameserver" {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, i+1)
		if len(f) < 2 {
			p.warnf(pos, "%s: %s: nameserver line without an address, skipped", label, where)
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			p.warnf(pos, "%s: %s: '%s' is not an IP address, skipped", label, where, f[1])
			continue
		}
		found++
		if prev := r.findNameserver(f[1]); prev != nil {
			p.warnf(pos, "%s: %s: nameserver '%s' is already defined at %s, skipped", label, where, f[1], prev.Pos)
			continue
		}
		r.Nameservers = append(r.Nameservers, Nameserver{Name: f[1], Addr: net.JoinHostPort(ip.String(), "53"), Pos: pos})
	}
	if found == 0 {
		return fmt.Errorf("%s: %s lists no nameserver", label, path)
	}
	return nil
}

func (p *parser) acceptedPayloadSize(s *stmt) error {
	n, err := intArg(s, 512, 65535)
	if err != nil {
		return err
	}
	p.curRes.AcceptedPayloadSize = n
	return nil
}

func (p *parser) resolveRetries(s *stmt) error {
	n, err := intArg(s, 1, math.MaxInt32)
	if err != nil {
		return err
	}
	p.curRes.ResolveRetries = n
	return nil
}

// resolversTimeout reads "timeout resolve T" and "timeout retry T".
func (p *parser) resolversTimeout(s *stmt) error {
	d, err := timeArg(s)
	if err != nil {
		return err
	}
	if d == 0 {
		return fmt.Errorf("'%s' must be more than 0", s.name)
	}
	if s.name == "timeout resolve" {
		p.curRes.TimeoutResolve = d
	} else {
		p.curRes.TimeoutRetry = d
	}
	return nil
}

// hold reads "hold valid|nx|timeout|refused|other|obsolete T".
func (p *parser) hold(s *stmt) error {
	d, err := timeArg(s)
	if err != nil {
		return err
	}
	h := &p.curRes.Hold
	*map[string]*time.Duration{
		"hold valid":    &h.Valid,
		"hold nx":       &h.NX,
		"hold timeout":  &h.Timeout,
		"hold refused":  &h.Refused,
		"hold other":    &h.Other,
		"hold obsolete": &h.Obsolete,
	}[s.name] = d
	return nil
}

// parseServerAddr reads the address of a server or server-template line.
// A host name is returned as fqdn too; one starting with '_' is an SRV
// name, which takes no port: it comes from the SRV records.
func parseServerAddr(text string) (a addr.Addr, fqdn string, srv bool, err error) {
	if strings.HasPrefix(text, "_") {
		name, port, hasPort := strings.Cut(text, ":")
		if hasPort {
			return a, "", false, fmt.Errorf("'%s' is an SRV name: it takes no port, which comes from its SRV records (remove ':%s')", name, port)
		}
		if check, err := addr.Parse(name + ":1"); err != nil || check.IsIP() {
			return a, "", false, fmt.Errorf("address %q: invalid SRV name", text)
		}
		return addr.Addr{Family: addr.TCP, Host: name, Text: text}, name, true, nil
	}
	a, err = addr.Parse(text)
	if err != nil {
		return a, "", false, err
	}
	if !a.IsIP() {
		fqdn = a.Host
	}
	return a, fqdn, false, nil
}

// serverTemplate reads "server-template PREFIX NUM|LOW-HIGH FQDN[:PORT]
// [options]": servers PREFIX1 to PREFIX<NUM> (or PREFIX<LOW> to
// PREFIX<HIGH>) sharing the address and options. An "id" option goes to
// the first one; the others get free ids like any server.
func (p *parser) serverTemplate(s *stmt) error {
	if len(s.args) < 3 {
		return fmt.Errorf("'server-template' expects a prefix, a number of servers or a range (N or LOW-HIGH) and an address (FQDN[:PORT])")
	}
	prefix := s.args[0]
	if c := invalidNameChar(prefix); c != 0 {
		return fmt.Errorf("character '%c' is not permitted in server-template prefix '%s'", c, prefix)
	}
	label := fmt.Sprintf("server-template '%s'", prefix)
	lo, hi, err := parseTemplateRange(s.args[1])
	if err != nil {
		return fmt.Errorf("%s: %v", label, err)
	}
	tmpl, err := p.newServer(s, prefix, label, s.args[2], s.args[3:])
	if err != nil {
		return fmt.Errorf("%s: %v", label, err)
	}
	tmpl.Template = prefix
	for n := lo; n <= hi; n++ {
		srv := *tmpl
		srv.Name = prefix + strconv.Itoa(n)
		srv.InitAddr, srv.ResolveNets = slices.Clone(tmpl.InitAddr), slices.Clone(tmpl.ResolveNets)
		if n != lo {
			srv.ID = 0
		}
		p.cur.Servers = append(p.cur.Servers, &srv)
	}
	return nil
}

// parseTemplateRange reads a server-template's "NUM" (1 to NUM) or
// "LOW-HIGH".
func parseTemplateRange(arg string) (lo, hi int, err error) {
	bad := fmt.Errorf("'%s' is not a number of servers nor a range of numbers (N, or LOW-HIGH)", arg)
	number := func(s string) (int, bool) {
		if s == "" || !isDigit(s[0]) {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	a, b, isRange := strings.Cut(arg, "-")
	lo, ok := number(a)
	switch {
	case !ok:
		return 0, 0, bad
	case !isRange && lo < 1:
		return 0, 0, bad
	case !isRange:
		lo, hi = 1, lo
	default:
		if hi, ok = number(b); !ok || hi < lo {
			return 0, 0, bad
		}
	}
	if hi-lo >= maxTemplateServers {
		return 0, 0, fmt.Errorf("'%s' makes %d servers: at most %d servers per line", arg, hi-lo+1, maxTemplateServers)
	}
	return lo, hi, nil
}

func (p *parser) serverResolvers(s *stmt) error {
	if s.args[0] == "" {
		return fmt.Errorf("'resolvers' expects the name of a resolvers section")
	}
	p.serverLine.Resolvers = s.args[0]
	return nil
}

func (p *parser) resolvePrefer(s *stmt) error {
	switch s.args[0] {
	case "ipv4", "ipv6":
		p.serverLine.ResolvePrefer = s.args[0]
		return nil
	}
	return fmt.Errorf("'resolve-prefer' expects 'ipv4' or 'ipv6', got '%s'", s.args[0])
}

// resolveNet reads "resolve-net NET[,NET...]".
func (p *parser) resolveNet(s *stmt) error {
	var nets []string
	for _, text := range strings.Split(s.args[0], ",") {
		n, err := parseNetwork(text)
		if err != nil {
			return fmt.Errorf("'resolve-net': %v", err)
		}
		nets = append(nets, n)
	}
	p.serverLine.ResolveNets = nets
	return nil
}

// initAddr reads "init-addr METHOD[,METHOD...]", methods being last, libc,
// none and IP addresses. As in HAProxy, empty items are skipped.
func (p *parser) initAddr(s *stmt) error {
	var methods []string
	for _, m := range strings.Split(s.args[0], ",") {
		switch m {
		case "":
			continue
		case "last", "libc", "none":
			methods = append(methods, m)
			continue
		}
		ip, err := netip.ParseAddr(m)
		if err != nil || ip.Zone() != "" {
			// Not the default either, whose resolution at load would
			// add a second error.
			p.serverLine.InitAddr = []string{"none"}
			return fmt.Errorf("'init-addr': unknown method '%s' (expected last, libc, none or an IP address)", m)
		}
		methods = append(methods, ip.String())
	}
	if len(methods) == 0 {
		p.serverLine.InitAddr = []string{"none"}
		return fmt.Errorf("'init-addr' expects a comma-separated list of methods: last, libc, none or an IP address")
	}
	p.serverLine.InitAddr = methods
	return nil
}

// serverLabel names a server in the messages of compiling: those about a
// server-template line are said once for all its servers.
func serverLabel(s *Server) string {
	if s.Template != "" {
		return fmt.Sprintf("server-template '%s'", s.Template)
	}
	return fmt.Sprintf("server '%s'", s.Name)
}

// compileResolvers resolves the host names of nameservers and reports
// resolvers sections without any.
func (p *parser) compileResolvers(ctx context.Context) {
	for _, r := range p.resolvers {
		if len(r.Nameservers) == 0 && !r.ParseResolvConf && !p.triedNS[r] {
			// With parse-resolv-conf or a nameserver line, that line
			// said why.
			p.errorf(r.Pos, "resolvers '%s' has no nameserver: add 'nameserver NAME ADDRESS' or 'parse-resolv-conf'", r.Name)
		}
		for i := range r.Nameservers {
			ns := &r.Nameservers[i]
			host, port, err := net.SplitHostPort(ns.Addr)
			if err != nil {
				continue // cannot happen: parseNameserverAddr joined it
			}
			if _, err := netip.ParseAddr(host); err == nil {
				continue
			}
			a, err := p.ld.resolve(ctx, addr.Addr{Family: addr.TCP, Host: host})
			if err != nil {
				p.errorf(ns.Pos, "'nameserver %s': %v", ns.Name, err)
				continue
			}
			ns.Addr = net.JoinHostPort(a.Host, port)
		}
	}
}

// checkServerResolvers checks the servers' resolvers: the section must
// exist, and an SRV name needs one. As in HAProxy, "resolvers default"
// names a section made from resolv.conf when the configuration has no
// section of that name.
func (p *parser) checkServerResolvers() {
	var names []string
	for _, r := range p.resolvers {
		names = append(names, r.Name)
	}
	triedDefault := false
	var defaultErr error
	for _, d := range p.proxies {
		for _, s := range d.Servers {
			label := serverLabel(s)
			switch {
			case s.Resolvers == "" && s.SRV:
				p.errorf(s.Pos, "%s: the SRV name '%s' needs 'resolvers': it can only be resolved at run time", label, s.FQDN)
			case s.Resolvers == "" || slices.Contains(names, s.Resolvers):
			case s.Resolvers == "default":
				if !triedDefault {
					triedDefault = true
					r := newResolvers("default", s.Pos)
					r.ParseResolvConf = true
					if defaultErr = p.readResolvConf(r, s.Pos, "resolvers 'default'"); defaultErr == nil {
						p.resolvers = append(p.resolvers, r)
						names = append(names, r.Name)
						continue
					}
				}
				p.errorf(s.Pos, "%s: no resolvers section 'default', and none could be made from resolv.conf (%v)", label, defaultErr)
			default:
				p.errorf(s.Pos, "%s: resolvers '%s': no such resolvers section%s", label, s.Resolvers, didYouMean(s.Resolvers, names))
			}
		}
	}
}

// initServerAddr gives a server written with a host name its address at
// load, following its init-addr methods in order: "libc" resolves the name
// now, "none" leaves the server without address (in maintenance until DNS
// gives it one), an IP address is used as is. "last" is skipped: the
// address saved in the server-state-file is applied when the process
// starts (load-server-state-from-file). If no method gives an address it
// is an error.
func (p *parser) initServerAddr(s *Server, resolve func(addr.Addr) (addr.Addr, error)) {
	if s.FQDN == "" || s.SRV && s.Resolvers == "" { // the latter is reported already
		return
	}
	label := serverLabel(s)
	var resolveErr error
	for _, m := range s.InitAddr {
		switch m {
		case "last":
			continue
		case "libc":
			if s.SRV {
				continue
			}
			a, err := resolve(s.Addr)
			if err != nil {
				resolveErr = err
				continue
			}
			s.Addr = a
		case "none":
			s.NoAddr = true
			if resolveErr != nil {
				until := "until its resolvers give it one"
				if s.Resolvers == "" {
					until = "until one is set at run time"
				}
				p.warnf(s.Pos, "%s: %v: starting without an address, in maintenance %s", label, resolveErr, until)
			}
		default: // an IP address
			if s.SRV {
				p.errorf(s.Pos, "%s: 'init-addr %s' cannot be used with the SRV name '%s', whose port comes from DNS (use 'none')", label, m, s.FQDN)
				return
			}
			s.Addr.Host = m
			if resolveErr != nil {
				p.warnf(s.Pos, "%s: %v: using the init-addr address %s", label, resolveErr, m)
			}
		}
		return
	}
	switch {
	case resolveErr != nil:
		p.errorf(s.Pos, "%s: %v", label, resolveErr)
	case s.SRV:
		p.errorf(s.Pos, "%s: the SRV name '%s' is only resolved at run time: its init-addr needs 'none'", label, s.FQDN)
	default:
		p.errorf(s.Pos, "%s: no init-addr method gives '%s' an address at load ('last' is applied when the process starts, from the server-state-file): add 'libc', 'none' or an IP address", label, s.FQDN)
	}
}
