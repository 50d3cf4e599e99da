package appliance

import (
	"context"
	"net/netip"
	"sort"
	"time"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/dns"
	"github.com/sluicelb/sluice/runtimeapi"
)

// resolution runs the DNS resolution of the servers that have "resolvers",
// in the master, once per name however many processes use it; what it
// learns goes to every process as run-time changes, like check results,
// and is kept across reloads and restarts the same way.
type resolution struct {
	resolvers map[string]*dns.Resolver // by resolvers section name
	cancel    context.CancelFunc
}

// startResolution (re)starts the resolution for cfg.
func (m *Master) startResolution(ctx context.Context, cfg *config.Config) {
	if m.resolution.cancel != nil {
		m.resolution.cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	m.resolution = resolution{resolvers: make(map[string]*dns.Resolver), cancel: cancel}
	for _, rs := range cfg.Resolvers {
		m.resolution.resolvers[rs.Name] = dns.New(dnsConfig(rs), m.log.With("resolvers", rs.Name))
	}
	for _, p := range cfg.Proxies {
		if !p.Backend || p.Disabled {
			continue
		}
		// Servers of one template share one query; other servers have
		// their own.
		templates := make(map[string][]*config.Server)
		for _, s := range p.Servers {
			if s.Resolvers == "" {
				continue
			}
			if e, ok := m.changes.entries[p.Name+"/"+s.Name+" fqdn"]; ok {
				// "set server fqdn": this server follows its own name now.
				own := *s
				own.FQDN, own.Template, own.SRV = *e.change.FQDN, "", false
				m.resolve(ctx, p, []*config.Server{&own})
				continue
			}
			if s.FQDN == "" {
				continue
			}
			if s.Template != "" {
				templates[s.Template] = append(templates[s.Template], s)
				continue
			}
			m.resolve(ctx, p, []*config.Server{s})
		}
		for _, slots := range templates {
			m.resolve(ctx, p, slots)
		}
	}
}

// resolve resolves the name of slots (one server, or the servers of a
// template) and fills them with what DNS answers.
func (m *Master) resolve(ctx context.Context, p *config.Proxy, slots []*config.Server) {
	r := m.resolution.resolvers[slots[0].Resolvers]
	if r == nil {
		return
	}
	q := dns.Query{Name: slots[0].FQDN, Prefer: slots[0].ResolvePrefer}
	for _, n := range slots[0].ResolveNets {
		if pfx, err := netip.ParsePrefix(n); err == nil {
			q.Nets = append(q.Nets, pfx)
		}
	}
	backend := p.Name
	assigned := make(map[string]string) // slot name -> record key
	go r.Watch(ctx, q, func(res dns.Result) {
		for _, c := range fillSlots(backend, slots, res.Records, assigned) {
			if err := m.Apply(ctx, c); err != nil && ctx.Err() == nil {
				m.log.Warn("apply DNS resolution", "backend", backend, "server", c.Server, "err", err)
			}
		}
	})
}

func recordKey(r dns.Record) string {
	return netip.AddrPortFrom(r.Addr, r.Port).String()
}

// fillSlots assigns records to slots: a slot keeps its record while DNS
// still has it, new records take free slots in order, slots left without
// a record go to maintenance. It returns the changes for the slots whose
// assignment changed.
func fillSlots(backend string, slots []*config.Server, records []dns.Record, assigned map[string]string) []runtimeapi.Change {
	byKey := make(map[string]dns.Record, len(records))
	keys := make([]string, 0, len(records))
	for _, r := range records {
		k := recordKey(r)
		if _, dup := byKey[k]; !dup {
			keys = append(keys, k)
		}
		byKey[k] = r
	}
	sort.Strings(keys)
	taken := make(map[string]bool)
	for _, s := range slots {
		if k, ok := assigned[s.Name]; ok {
			if _, still := byKey[k]; still && !taken[k] {
				taken[k] = true
				continue
			}
			delete(assigned, s.Name)
		}
	}
	var changes []runtimeapi.Change
	free := keys[:0:0]
	for _, k := range keys {
		if !taken[k] {
			free = append(free, k)
		}
	}
	for _, s := range slots {
		res := runtimeapi.Resolution{}
		if _, ok := assigned[s.Name]; ok {
			continue // keeps its record
		}
		if len(free) > 0 {
			k := free[0]
			free = free[1:]
			assigned[s.Name] = k
			rec := byKey[k]
			port := int(rec.Port)
			if port == 0 {
				port = s.Addr.Port
			}
			res = runtimeapi.Resolution{Present: true, Addr: netip.AddrPortFrom(rec.Addr, uint16(port)).String(), Weight: rec.Weight}
		}
		changes = append(changes, runtimeapi.Change{Backend: backend, Server: s.Name, Resolved: &res})
	}
	return changes
}

// dnsConfig translates a resolvers section. The configuration holds every
// value with its default applied; the resolver reads a zero hold as "the
// default", so a configured zero is passed as a negative one.
func dnsConfig(rs *config.Resolvers) dns.Config {
	hold := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	c := dns.Config{
		Name:                rs.Name,
		AcceptedPayloadSize: rs.AcceptedPayloadSize,
		ResolveRetries:      rs.ResolveRetries,
		TimeoutResolve:      rs.TimeoutResolve,
		TimeoutRetry:        rs.TimeoutRetry,
		Hold: dns.Hold{
			Valid: hold(rs.Hold.Valid), NX: hold(rs.Hold.NX), Timeout: hold(rs.Hold.Timeout),
			Refused: hold(rs.Hold.Refused), Other: hold(rs.Hold.Other), Obsolete: hold(rs.Hold.Obsolete),
		},
	}
	for _, ns := range rs.Nameservers {
		ap, err := netip.ParseAddrPort(ns.Addr)
		if err != nil {
			continue // the configuration checked it
		}
		c.Nameservers = append(c.Nameservers, dns.Nameserver{Name: ns.Name, Addr: ap, TCP: ns.TCP})
	}
	return c
}

// Resolvers reports the resolvers' counters for "show resolvers".
func (m *Master) Resolvers() []runtimeapi.ResolverStats {
	var out []runtimeapi.ResolverStats
	m.call(context.Background(), func() {
		for _, rs := range m.cfg.Resolvers {
			r := m.resolution.resolvers[rs.Name]
			if r == nil {
				continue
			}
			st := runtimeapi.ResolverStats{Section: rs.Name}
			for _, ns := range r.Stats() {
				st.Nameservers = append(st.Nameservers, runtimeapi.NameserverStats{
					Name: ns.Name, Sent: ns.Sent, SndError: ns.SndError, Valid: ns.Valid, Update: ns.Update,
					Cname: ns.Cname, CnameError: ns.CnameError, AnyErr: ns.AnyErr, Nx: ns.Nx, Timeout: ns.Timeout,
					Refused: ns.Refused, Other: ns.Other, Invalid: ns.Invalid, TooBig: ns.TooBig,
					Truncated: ns.Truncated, Outdated: ns.Outdated,
				})
			}
			out = append(out, st)
		}
	})
	return out
}
