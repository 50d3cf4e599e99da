package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/sluicelb/sluice/accesslog"
	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/cache"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
	"github.com/sluicelb/sluice/dispatcher"
)

// generation is one configuration as this process runs it. Connections keep
// the generation they were accepted under until they end.
type generation struct {
	cfg      *config.Config
	backends map[string]*backend.Backend // by proxy name
	// frontends maps a listener key to the frontend its bind belongs to.
	frontends map[string]*frontend
	// logs are the access loggers by target list; a reload reuses the
	// loggers whose targets did not change.
	logs map[string]*accesslog.Logger
	// counters are the frontends' counters by proxy name, carried over
	// from the previous generation.
	counters map[string]*frontendCounters
	// caches are this process's object caches by cache section name.
	caches   map[string]*cache.Cache
	sessions *sessions
	// handshakes is the process's gate on TLS handshakes.
	handshakes *handshakeGate
	// tunnels is the process's loop for tcp-mode tunnels.
	tunnels  *dispatcher.Loop
	handoffs *handoffs
	prev     *generation
	stopAll  context.CancelFunc // stops health checks
	log      *slog.Logger
}

// newGeneration builds the runtime objects of a configuration for this
// process. prev is the generation it replaces (nil at start): backends take
// their live server state from it.
func newGeneration(msg control.Msg, prev *generation, ss *sessions, hs *handshakeGate, tunnels *dispatcher.Loop, ho *handoffs, keys *keyring, log *slog.Logger) (*generation, error) {
	cfg := msg.Config
	g := &generation{
		cfg:        cfg,
		backends:   make(map[string]*backend.Backend),
		frontends:  make(map[string]*frontend),
		logs:       make(map[string]*accesslog.Logger),
		counters:   make(map[string]*frontendCounters),
		sessions:   ss,
		handshakes: hs,
		tunnels:    tunnels,
		handoffs:   ho,
		prev:       prev,
		log:        log,
	}
	g.caches = processCaches(cfg, prev)
	for _, p := range cfg.Proxies {
		if !p.Backend || !p.RunsIn(msg.Process) || p.Disabled {
			continue
		}
		var old *backend.Backend
		if prev != nil {
			old = prev.backends[p.Name]
		}
		be := backend.New(p, old)
		if err := setServerTLS(be, msg.TLS); err != nil {
			return nil, err
		}
		g.backends[p.Name] = be
	}
	for _, p := range cfg.Proxies {
		if !p.Frontend || !p.RunsIn(msg.Process) || p.Disabled {
			continue
		}
		if err := g.addFrontends(p, msg, keys); err != nil {
			g.closeLogs()
			return nil, err
		}
	}
	if ho != nil {
		var targets []addr.Addr
		for _, p := range cfg.Proxies {
			for _, b := range p.Binds {
				if b.AcceptProxy && !p.Disabled {
					targets = append(targets, b.Addr)
				}
			}
		}
		ho.out.SetTargets(targets)
	}
	return g, nil
}

// addFrontends builds what serves each bind of p that accepts here.
func (g *generation) addFrontends(p *config.Proxy, msg control.Msg, keys *keyring) error {
	be, beProxy := g.backendFor(p)
	alog, err := g.accessLog(p)
	if err != nil {
		return err
	}
	counters := g.prev.frontendCounters(p.Name)
	g.counters[p.Name] = counters
	var hs *httpServer
	if p.Mode == config.ModeHTTP {
		if hs, err = newHTTPServer(p, g.cfg, g.backends, alog, counters, g.log); err != nil {
			return err
		}
		if hs.layers, err = newHTTPLayers(p, g.cfg, g.caches); err != nil {
			return err
		}
	}
	proxySlots := newSlots(p.MaxConn)
	for _, b := range p.Binds {
		if !b.AcceptsIn(msg.Process) {
			continue
		}
		fe := &frontend{
			proxy:      p,
			bind:       b,
			backend:    be,
			beProxy:    beProxy,
			http:       hs,
			alog:       alog,
			log:        g.log,
			proxySlots: proxySlots,
			bindSlots:  newSlots(b.MaxConn),
			counters:   counters,
			sessions:   g.sessions,
			handshakes: g.handshakes,
			tunnels:    g.tunnels,
			handoffs:   g.handoffs,
		}
		if b.SSL {
			tc, err := serverTLS(b, msg.TLS, keys)
			if err != nil {
				return fmt.Errorf("%s:%d: bind %s: %w", b.Pos.File, b.Pos.Line, b.Addr.Text, err)
			}
			fe.tls = tc
		}
		g.frontends[b.Addr.Key()] = fe
	}
	return nil
}

// onlyForwards says whether every bind of the process takes plain TCP
// clients and forwards them as they come (frontend.takesSockets): the
// process is a dispatcher.
func (g *generation) onlyForwards() bool {
	for _, fe := range g.frontends {
		if !fe.takesSockets() {
			return false
		}
	}
	return len(g.frontends) > 0
}

// oneCPU says whether the process runs Go on one CPU (see cpus): it stands
// for one thread of several, or it is a dispatcher.
func (g *generation) oneCPU() bool {
	return g.onlyForwards() || g.cfg.Global.NbProc > 1
}

// frontendCounters returns the counters of the proxy of that name in g, or
// new ones when g is nil or has none.
func (g *generation) frontendCounters(name string) *frontendCounters {
	if g != nil {
		if c, ok := g.counters[name]; ok {
			return c
		}
	}
	return new(frontendCounters)
}

// backendFor returns the backend a frontend sends its connections to: the
// first use_backend (they carry no conditions yet), else default_backend,
// else the proxy itself when it is a listen section with servers.
func (g *generation) backendFor(p *config.Proxy) (*backend.Backend, *config.Proxy) {
	name := p.DefaultBackend
	if len(p.UseBackends) > 0 {
		name = p.UseBackends[0].Backend
	}
	if name == "" && p.Backend {
		name = p.Name
	}
	if name == "" {
		return nil, nil
	}
	return g.backends[name], g.cfg.Proxy(name)
}

// accessLog returns the access logger of a proxy: its own log lines plus
// the global ones with "log global"; nil when it logs nowhere.
func (g *generation) accessLog(p *config.Proxy) (*accesslog.Logger, error) {
	targets := append([]config.LogTarget(nil), p.Logs...)
	if p.LogGlobal {
		targets = append(targets, g.cfg.Global.Logs...)
	}
	if len(targets) == 0 {
		return nil, nil
	}
	key := logKey(targets)
	if l, ok := g.logs[key]; ok {
		return l, nil
	}
	if g.prev != nil {
		if l, ok := g.prev.logs[key]; ok {
			g.logs[key] = l
			return l, nil
		}
	}
	l, err := accesslog.New(targets, "sluice", os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("%s:%d: log of %s: %w", p.Pos.File, p.Pos.Line, p.Name, err)
	}
	g.logs[key] = l
	return l, nil
}

// start runs the generation's background work. Health checks are not
// part of it: the master runs each once and sends the results to every
// process.
func (g *generation) start(ctx context.Context) {
	_, g.stopAll = context.WithCancel(ctx)
}

// setProcessAlive tells every backend that process n died or is ready.
func (g *generation) setProcessAlive(n int, alive bool) {
	for _, b := range g.backends {
		b.SetProcessAlive(n, alive)
	}
}

// shutdown stops background work and closes idle http connections; active
// connections finish on their own.
func (g *generation) shutdown() {
	if g.stopAll != nil {
		g.stopAll()
	}
	for _, fe := range g.frontends {
		if fe.http != nil {
			fe.http.shutdown()
		}
	}
}

// retire is called when a newer generation has taken over: background work
// stops; connections still using this generation finish on their own
// (keep-alive connections end at their idle timeout) and their log lines
// still go out, so the loggers stay open until the generation is unused.
func (g *generation) retire(next *generation) {
	if g.stopAll != nil {
		g.stopAll()
	}
	for key, l := range g.logs {
		if next.logs[key] != l {
			l.Close()
		}
	}
	g.prev = nil // let older generations go
}

// closeLogs closes the loggers this generation opened itself, when it could
// not be built.
func (g *generation) closeLogs() {
	for key, l := range g.logs {
		if g.prev == nil || g.prev.logs[key] != l {
			l.Close()
		}
	}
}

func logKey(targets []config.LogTarget) string {
	b, _ := json.Marshal(targets)
	return string(b)
}
