package worker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/runtimeapi"
)

// snapshot is this process's report for the runtime API.
func (p *Process) snapshot() runtimeapi.Snapshot {
	g := p.gen.Load()
	snap := runtimeapi.Snapshot{Process: p.num, PID: os.Getpid(), Sessions: p.sessions.list()}
	for _, px := range g.cfg.Proxies {
		if !px.RunsIn(p.num) || px.Disabled {
			continue
		}
		ps := runtimeapi.ProxyStats{Name: px.Name, ID: px.ID}
		if c, ok := g.counters[px.Name]; ok {
			ps.Frontend = c.stats(g.frontendLimit(px.Name))
		}
		if b, ok := g.backends[px.Name]; ok {
			st := b.Stats()
			ps.Backend = &st
			for _, s := range b.Servers() {
				ps.Servers = append(ps.Servers, runtimeapi.ServerStats{Name: s.Name(), ID: s.Config().ID, State: s.State()})
			}
		}
		snap.Proxies = append(snap.Proxies, ps)
	}
	return snap
}

// apply makes one operational change in the running generation. Process-wide
// changes (global maxconn) are the process's; the rest belong to the
// generation, whose successors inherit them.
func (p *Process) apply(c runtimeapi.Change) error {
	if c.MaxConnGlobal != nil {
		p.slots.setLimit(*c.MaxConnGlobal)
		return nil
	}
	return p.gen.Load().apply(c)
}

// applyAll applies the changes in force that came with a configuration.
func (g *generation) applyAll(changes []runtimeapi.Change) {
	for _, c := range changes {
		if c.MaxConnGlobal != nil {
			continue // the process applies it
		}
		if err := g.apply(c); err != nil {
			g.log.Debug("change no longer applies", "err", err)
		}
	}
}

// errNotHere is a change for a proxy that runs in other processes only:
// the master sends every change to every process, having checked it
// against the whole configuration.
var errNotHere = errors.New("not in this process")

func (g *generation) apply(c runtimeapi.Change) error {
	if c.MaxConnFrontend != nil {
		found := false
		for _, fe := range g.frontends {
			if fe.proxy.Name == c.Frontend {
				fe.proxySlots.setLimit(*c.MaxConnFrontend)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("frontend %q: %w", c.Frontend, errNotHere)
		}
		return nil
	}
	if c.ClearCounters || c.ClearCountersAll {
		for _, fc := range g.counters {
			fc.clear(c.ClearCountersAll)
		}
		for _, b := range g.backends {
			b.ClearCounters(c.ClearCountersAll)
		}
		return nil
	}
	b, ok := g.backends[c.Backend]
	if !ok {
		return fmt.Errorf("backend %q: %w", c.Backend, errNotHere)
	}
	s := b.Server(c.Server)
	if s == nil {
		return fmt.Errorf("no server %s/%s", c.Backend, c.Server)
	}
	switch {
	case c.Admin != nil:
		s.SetAdmin(*c.Admin)
	case c.Health != nil:
		s.SetHealth(*c.Health)
	case c.Check != nil:
		s.SetCheckState(*c.Check)
	case c.Resolved != nil:
		var a addr.Addr
		if c.Resolved.Present {
			var err error
			if a, err = addr.Parse(c.Resolved.Addr); err != nil {
				return fmt.Errorf("resolved address of %s/%s: %w", c.Backend, c.Server, err)
			}
		}
		s.SetResolution(c.Resolved.Present, a, c.Resolved.Weight)
	case c.AgentUp != nil:
		s.SetAgent(*c.AgentUp)
	case c.Weight != nil:
		return s.SetWeight(*c.Weight)
	case c.MaxConnServer != nil:
		s.SetMaxConn(*c.MaxConnServer)
	case c.Addr != nil:
		a, err := serverAddr(*c.Addr, s.Addr())
		if err != nil {
			return err
		}
		s.SetAddr(a)
	case c.ShutdownSessions:
		s.ShutdownSessions()
	}
	return nil
}

// serverAddr parses "IP" or "IP:PORT" for "set server addr"; without a port
// the server keeps its current one.
func serverAddr(text string, cur addr.Addr) (addr.Addr, error) {
	if _, _, err := net.SplitHostPort(text); err != nil {
		ip := net.ParseIP(text)
		if ip == nil {
			return addr.Addr{}, fmt.Errorf("invalid address %q", text)
		}
		text = net.JoinHostPort(ip.String(), strconv.Itoa(cur.Port))
	}
	return addr.Parse(text)
}

// frontendLimit is the proxy's maxconn now, which "set maxconn frontend"
// may have changed.
func (g *generation) frontendLimit(name string) int {
	for _, fe := range g.frontends {
		if fe.proxy.Name == name {
			return fe.proxySlots.currentLimit()
		}
	}
	return 0
}
