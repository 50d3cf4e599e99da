package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

// parseInt reads a decimal integer, strictly (HAProxy's atoi would read
// garbage as 0 and apply it).
func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", truncate(s, 40))
	}
	return n, nil
}

// findProxy finds a proxy by name or by "#<id>", as HAProxy's commands
// accept, among those ok accepts.
func findProxy(cfg *config.Config, ref string, ok func(*config.Proxy) bool) *config.Proxy {
	if id, isID := strings.CutPrefix(ref, "#"); isID {
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil
		}
		for _, p := range cfg.Proxies {
			if p.ID == n && ok(p) {
				return p
			}
		}
		return nil
	}
	for _, p := range cfg.Proxies {
		if p.Name == ref && ok(p) {
			return p
		}
	}
	return nil
}

// errAnswer is a one-line answer given instead of doing something.
type errAnswer string

func (e errAnswer) Error() string { return string(e) }

// findServer resolves "<backend>/<server>", each part a name or "#<id>",
// with HAProxy's answers when it cannot.
func findServer(cfg *config.Config, ref string) (*config.Proxy, *config.Server, error) {
	if cfg == nil {
		return nil, nil, errAnswer("No configuration is running.")
	}
	bname, sname, ok := strings.Cut(ref, "/")
	if !ok || bname == "" || sname == "" {
		return nil, nil, errAnswer("Require 'backend/server'.")
	}
	p := findProxy(cfg, bname, func(p *config.Proxy) bool { return p.Backend })
	if p == nil {
		return nil, nil, errAnswer("No such backend.")
	}
	var sc *config.Server
	if id, isID := strings.CutPrefix(sname, "#"); isID {
		if n, err := strconv.Atoi(id); err == nil {
			for _, s := range p.Servers {
				if s.ID == n {
					sc = s
				}
			}
		}
	} else {
		for _, s := range p.Servers {
			if s.Name == sname {
				sc = s
			}
		}
	}
	if sc == nil {
		return nil, nil, errAnswer("No such server.")
	}
	if p.Disabled {
		return nil, nil, errAnswer("Proxy is disabled.")
	}
	return p, sc, nil
}

// answer turns an error into a one-line answer.
func answer(err error) string {
	var a errAnswer
	if errors.As(err, &a) {
		return string(a) + "\n"
	}
	return errorf("%v", err)
}

// apply makes a validated change and logs it: the log is the audit trail
// of what operators did at run time.
func (c *cli) apply(ctx context.Context, ch Change, what string) string {
	if err := c.app.Apply(ctx, ch); err != nil {
		c.log.Warn("runtime API change failed", "change", what, "err", err)
		return errorf("Cannot apply '%s': %v.", what, err)
	}
	c.log.Info("runtime API change", "change", what)
	return ""
}

// serverTarget resolves the <bk>/<srv> argument of a server command.
func (c *cli) serverTarget(args []string) (*config.Proxy, *config.Server, string) {
	if len(args) == 0 {
		return nil, nil, "Require 'backend/server'.\n"
	}
	p, sc, err := findServer(c.app.Config(), args[0])
	if err != nil {
		return nil, nil, answer(err)
	}
	return p, sc, ""
}

func (c *cli) setServer(ctx context.Context, s *session, args []string) string {
	const usage = "'set server <srv>' only supports 'agent', 'health', 'state', 'weight', 'addr' and 'fqdn'."
	// Operators may point a server at another name; every other change
	// needs admin.
	if s.level < levelAdmin && (len(args) < 2 || args[1] != "fqdn") {
		return "Permission denied\n"
	}
	p, sc, fail := c.serverTarget(args)
	if sc == nil {
		return fail
	}
	if len(args) < 2 {
		return errorf(usage)
	}
	target := p.Name + "/" + sc.Name
	ch := Change{Backend: p.Name, Server: sc.Name}
	verb, rest := args[1], args[2:]
	switch verb {
	case "state":
		if len(rest) != 1 {
			return errorf("'set server <srv> state' expects 'ready', 'drain' and 'maint'.")
		}
		var a backend.Admin
		switch rest[0] {
		case "ready":
			a = backend.Ready
		case "drain":
			a = backend.Drain
		case "maint":
			a = backend.Maint
		default:
			return errorf("'set server <srv> state' expects 'ready', 'drain' and 'maint'.")
		}
		ch.Admin = &a
		return c.apply(ctx, ch, "set server "+target+" state "+rest[0])
	case "health":
		if len(rest) != 1 {
			return errorf("'set server <srv> health' expects 'up', 'stopping', or 'down'.")
		}
		var h backend.Health
		switch rest[0] {
		case "up":
			h = backend.Up
		case "stopping":
			h = backend.Stopping
		case "down":
			h = backend.Down
		default:
			return errorf("'set server <srv> health' expects 'up', 'stopping', or 'down'.")
		}
		ch.Health = &h
		return c.apply(ctx, ch, "set server "+target+" health "+rest[0])
	case "agent":
		if len(rest) != 1 || (rest[0] != "up" && rest[0] != "down") {
			return errorf("'set server <srv> agent' expects 'up' or 'down'.")
		}
		up := rest[0] == "up"
		ch.AgentUp = &up
		return c.apply(ctx, ch, "set server "+target+" agent "+rest[0])
	case "weight":
		return c.changeWeight(ctx, p, sc, rest)
	case "addr":
		return c.setAddr(ctx, p, sc, rest)
	case "fqdn":
		if len(rest) != 1 {
			return errorf("'set server <srv> fqdn' expects a FQDN.")
		}
		if sc.Resolvers == "" {
			return errorf("set server <b>/<s> fqdn requires a resolvers section: add 'resolvers <name>' to the server line.")
		}
		name := strings.TrimSuffix(rest[0], ".")
		if !validFQDN(name) || strings.HasPrefix(name, "_") {
			return errorf("Invalid FQDN '%s'.", rest[0])
		}
		ch.FQDN = &name
		return c.apply(ctx, ch, "set server "+target+" fqdn "+name)
	}
	return errorf(usage)
}

func (c *cli) setWeight(ctx context.Context, _ *session, args []string) string {
	p, sc, fail := c.serverTarget(args)
	if sc == nil {
		return fail
	}
	return c.changeWeight(ctx, p, sc, args[1:])
}

// changeWeight is "set weight" and "set server weight": an absolute
// weight from 0 to 256, or a percentage of the configured weight, capped
// at 256 as HAProxy does.
func (c *cli) changeWeight(ctx context.Context, p *config.Proxy, sc *config.Server, args []string) string {
	if len(args) != 1 {
		return errorf("Require <weight> or <weight%%>.")
	}
	w, fail := parseWeight(args[0], sc.Weight)
	if fail != "" {
		return fail
	}
	ch := Change{Backend: p.Name, Server: sc.Name, Weight: &w}
	return c.apply(ctx, ch, fmt.Sprintf("set weight %s/%s %d", p.Name, sc.Name, w))
}

func parseWeight(arg string, initial int) (int, string) {
	num, relative := strings.CutSuffix(arg, "%")
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, errorf("Require <weight> or <weight%%>.")
	}
	if relative {
		if n < 0 {
			return 0, errorf("Relative weight must be positive.")
		}
		n = min(n, 100*backend.MaxWeight) // beyond, any configured weight caps anyway
		return min(initial*n/100, backend.MaxWeight), ""
	}
	if n < 0 || n > backend.MaxWeight {
		return 0, errorf("Absolute weight can only be between 0 and %d inclusive.", backend.MaxWeight)
	}
	return n, ""
}

// setAddr is "set server <srv> addr <ip> [port <port>]". It answers like
// HAProxy: what changed, "by 'stats socket command'".
func (c *cli) setAddr(ctx context.Context, p *config.Proxy, sc *config.Server, args []string) string {
	const usage = "set server <b>/<s> addr requires an address and an optional port."
	if len(args) != 1 && len(args) != 3 {
		return errorf(usage)
	}
	if len(args) == 3 && args[1] != "port" {
		return errorf(usage)
	}
	if sc.Addr.Family != addr.TCP {
		return errorf("Update for the current server address family is only supported through configuration file.")
	}
	ip := net.ParseIP(args[0])
	if ip == nil {
		return errorf("Invalid addr '%s'.", truncate(args[0], 60))
	}
	port := 0
	if len(args) == 3 {
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 || n > 65535 {
			return errorf("problem converting port '%s' to an int from 1 to 65535.", truncate(args[2], 20))
		}
		port = n
	}
	v, fail := c.view(ctx)
	if v == nil {
		return fail
	}
	cur := sc.Addr
	if pv := v.proxy(p.Name); pv != nil {
		if sv := pv.server(sc.Name); sv != nil && sv.state.Addr.Family == addr.TCP {
			cur = sv.state.Addr
		}
	}
	var msg []string
	newIP := ip.String()
	if old := net.ParseIP(cur.Host); old != nil && old.Equal(ip) {
		msg = append(msg, "no need to change the addr")
	} else {
		msg = append(msg, fmt.Sprintf("IP changed from '%s' to '%s'", cur.Host, newIP))
	}
	text := newIP
	if port != 0 {
		if port == cur.Port {
			msg = append(msg, "no need to change the port")
		} else {
			msg = append(msg, fmt.Sprintf("port changed from '%d' to '%d'", cur.Port, port))
		}
		text = net.JoinHostPort(newIP, strconv.Itoa(port))
	}
	ch := Change{Backend: p.Name, Server: sc.Name, Addr: &text}
	if fail := c.apply(ctx, ch, fmt.Sprintf("set server %s/%s addr %s", p.Name, sc.Name, text)); fail != "" {
		return fail
	}
	return strings.Join(msg, ", ") + " by 'stats socket command'\n"
}

// getWeight answers "<current> (initial <configured>)".
func (c *cli) getWeight(ctx context.Context, _ *session, args []string) string {
	if len(args) != 1 {
		return errorf("Require 'backend/server'.")
	}
	p, sc, err := findServer(c.app.Config(), args[0])
	if err != nil {
		return answer(err)
	}
	v, fail := c.view(ctx)
	if v == nil {
		return fail
	}
	cur := sc.Weight
	if pv := v.proxy(p.Name); pv != nil {
		if sv := pv.server(sc.Name); sv != nil {
			cur = sv.state.Weight
		}
	}
	return fmt.Sprintf("%d (initial %d)\n", cur, sc.Weight)
}

// enableServer returns "enable server" (ready) and "disable server"
// (maintenance).
func (c *cli) enableServer(enable bool) func(context.Context, *session, []string) string {
	return func(ctx context.Context, _ *session, args []string) string {
		if len(args) != 1 {
			return errorf("Require 'backend/server'.")
		}
		p, sc, err := findServer(c.app.Config(), args[0])
		if err != nil {
			return answer(err)
		}
		a, verb := backend.Maint, "disable"
		if enable {
			a, verb = backend.Ready, "enable"
		}
		return c.apply(ctx, Change{Backend: p.Name, Server: sc.Name, Admin: &a}, verb+" server "+p.Name+"/"+sc.Name)
	}
}

func (c *cli) setMaxConnFrontend(ctx context.Context, _ *session, args []string) string {
	if len(args) == 0 {
		return errorf("A frontend name is expected.")
	}
	cfg := c.app.Config()
	if cfg == nil {
		return errorf("No configuration is running.")
	}
	p := findProxy(cfg, args[0], func(p *config.Proxy) bool { return p.Frontend })
	if p == nil {
		return errorf("No such frontend.")
	}
	if p.Disabled {
		return errorf("Proxy is disabled.")
	}
	if len(args) != 2 {
		return errorf("Integer value expected.")
	}
	n, err := parseInt(args[1])
	if err != nil {
		return errorf("Integer value expected.")
	}
	if n < 0 {
		return errorf("Value out of range.")
	}
	ch := Change{Frontend: p.Name, MaxConnFrontend: &n}
	return c.apply(ctx, ch, fmt.Sprintf("set maxconn frontend %s %d", p.Name, n))
}

func (c *cli) setMaxConnServer(ctx context.Context, _ *session, args []string) string {
	p, sc, fail := c.serverTarget(args)
	if sc == nil {
		return fail
	}
	if len(args) != 2 {
		return errorf("Require <maxconn>.")
	}
	n, err := parseInt(args[1])
	if err != nil {
		return errorf("Require <maxconn> as an integer.")
	}
	if n < 0 {
		return errorf("Value out of range.")
	}
	ch := Change{Backend: p.Name, Server: sc.Name, MaxConnServer: &n}
	return c.apply(ctx, ch, fmt.Sprintf("set maxconn server %s/%s %d", p.Name, sc.Name, n))
}

// fdReserve mirrors the master's descriptor reserve: besides two sockets
// per connection, a process needs one per listener and per checked
// server, plus this many for itself.
const fdReserve = 32

// hardMaxConn is the highest per-process maxconn the descriptor limit
// fits: HAProxy's maxsock = 2*maxconn + listeners + checks + reserve,
// solved for maxconn. Without a known maxsock the applied maxconn is the
// limit. It is never below the applied maxconn.
func hardMaxConn(info Info, cfg *config.Config) int {
	fixed := fdReserve
	for _, p := range cfg.Proxies {
		fixed += len(p.Binds)
		for _, s := range p.Servers {
			if s.Check {
				fixed++
			}
		}
	}
	limit := info.MaxConn
	if info.MaxSock > fixed {
		limit = max(limit, (info.MaxSock-fixed)/2)
	}
	return limit
}

// setMaxConnGlobal changes every process's maxconn. As in HAProxy, 0
// restores the highest value (the configured one), and values the
// descriptor limit cannot hold are refused.
func (c *cli) setMaxConnGlobal(ctx context.Context, _ *session, args []string) string {
	if len(args) != 1 {
		return errorf("Expecting an integer argument.")
	}
	n, err := parseInt(args[0])
	if err != nil {
		return errorf("Expecting an integer argument.")
	}
	cfg := c.app.Config()
	if cfg == nil {
		return errorf("No configuration is running.")
	}
	info := c.app.Info()
	limit := hardMaxConn(info, cfg)
	if n < 0 || n > limit {
		return errorf("Value out of range: the descriptor limit (maxsock %d) fits a maxconn from 1 to %d (0 restores it).", info.MaxSock, limit)
	}
	if n == 0 {
		n = limit
	}
	ch := Change{MaxConnGlobal: &n}
	return c.apply(ctx, ch, fmt.Sprintf("set maxconn global %d", n))
}

func (c *cli) shutdownSessions(ctx context.Context, _ *session, args []string) string {
	if len(args) != 1 {
		return errorf("Require 'backend/server'.")
	}
	p, sc, err := findServer(c.app.Config(), args[0])
	if err != nil {
		return answer(err)
	}
	ch := Change{Backend: p.Name, Server: sc.Name, ShutdownSessions: true}
	return c.apply(ctx, ch, "shutdown sessions server "+p.Name+"/"+sc.Name)
}

// clearCounters returns "clear counters" (maxima, operator level) and
// "clear counters all" (every counter, admin level).
func (c *cli) clearCounters(all bool) func(context.Context, *session, []string) string {
	return func(ctx context.Context, _ *session, args []string) string {
		if len(args) > 0 {
			return errorf("'clear counters' expects nothing or 'all'.")
		}
		if all {
			return c.apply(ctx, Change{ClearCountersAll: true}, "clear counters all")
		}
		return c.apply(ctx, Change{ClearCounters: true}, "clear counters")
	}
}

// validFQDN reports whether name is a host name: dot-separated labels of
// letters, digits and hyphens, none empty or longer than 63 bytes.
func validFQDN(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
