package appliance

import (
	"context"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/runtimeapi"
)

// checks are the health checks of every server, run once by the master
// rather than once per process: each server is checked at its "inter" no
// matter how many processes use it, and every process sees the same state.
type checks struct {
	backends map[string]*backend.Backend // by proxy name, for their check state
	cancel   context.CancelFunc
}

// startServices (re)starts what the master itself runs for cfg: the health
// checks, the DNS resolution and the stats pages.
func (m *Master) startServices(ctx context.Context, cfg *config.Config) {
	m.startChecks(ctx, cfg)
	m.startResolution(ctx, cfg)
	m.pages.serve(m, cfg)
}

// startChecks (re)starts the checks for cfg. Servers keep their check state
// across reloads, matched like every other live state.
func (m *Master) startChecks(ctx context.Context, cfg *config.Config) {
	ctx, cancel := context.WithCancel(ctx)
	next := make(map[string]*backend.Backend)
	for _, p := range cfg.Proxies {
		if !p.Backend || p.Disabled || !hasChecks(p) {
			continue
		}
		b := backend.New(p, m.checks.backends[p.Name])
		next[p.Name] = b
		name := p.Name
		b.RunChecks(ctx, m.log, func(s *backend.Server, st backend.CheckState) {
			c := runtimeapi.Change{Backend: name, Server: s.Name(), Check: &st}
			if err := m.Apply(ctx, c); err != nil && ctx.Err() == nil {
				m.log.Warn("share check result", "backend", name, "server", s.Name(), "err", err)
			}
		})
	}
	if m.checks.cancel != nil {
		m.checks.cancel()
	}
	m.checks = checks{backends: next, cancel: cancel}
	for _, c := range m.changes.list() {
		m.checks.follow(c)
	}
}

func hasChecks(p *config.Proxy) bool {
	for _, s := range p.Servers {
		if s.Check {
			return true
		}
	}
	return false
}

// follow applies to the checked servers the run-time changes that matter to
// checks: a new address, set by hand or by DNS, is checked at that address.
func (ch *checks) follow(c runtimeapi.Change) {
	if c.Addr == nil && c.Resolved == nil {
		return
	}
	b, ok := ch.backends[c.Backend]
	if !ok {
		return
	}
	s := b.Server(c.Server)
	if s == nil {
		return
	}
	if c.Resolved != nil {
		var a addr.Addr
		if c.Resolved.Present {
			var err error
			if a, err = addr.Parse(c.Resolved.Addr); err != nil {
				return
			}
		}
		s.SetResolution(c.Resolved.Present, a, c.Resolved.Weight)
		return
	}
	if a, err := addr.Parse(*c.Addr); err == nil {
		s.SetAddr(a)
	}
}
