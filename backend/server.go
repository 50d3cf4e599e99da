package backend

import (
	stdtls "crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/config"
)

// Admin is a server's administrative state, set by the operator.
type Admin int

const (
	Ready Admin = iota // takes new connections
	Drain              // keeps its connections, takes no new ones
	Maint              // out of service
)

func (a Admin) String() string {
	switch a {
	case Drain:
		return "drain"
	case Maint:
		return "maint"
	}
	return "ready"
}

// Health is a server's operational state, from its checks or the operator.
type Health int

const (
	Up       Health = iota
	Stopping        // up, but takes no new connections (HAProxy's NOLB)
	Down
)

func (h Health) String() string {
	switch h {
	case Stopping:
		return "stopping"
	case Down:
		return "down"
	}
	return "up"
}

// Counters are the cumulative numbers and gauges of a server or a backend.
type Counters struct {
	Cur         int       // connections now
	Max         int       // highest Cur
	Total       int64     // connections ever
	LastSession time.Time // when the last connection started
	BytesIn     int64     // from clients
	BytesOut    int64     // to clients
	ConnErrors  int64     // failed connection attempts
	Retries     int64
	Redispatch  int64
	Denied      int64 // connections that found no server
	QueueCur    int
	QueueMax    int
	CheckFails  int64 // failed checks
	CheckDowns  int64 // up to down transitions
}

// Server is one server of a backend, with its live state.
type Server struct {
	b   *Backend
	cfg *config.Server
	// tls re-encrypts to the server ("ssl"), nil for none; set by
	// SetTLS before the backend is used.
	tls *stdtls.Config

	// The fields below are guarded by b.mu.
	addr        addr.Addr
	addrSet     bool // addr was set at run time
	weight      int
	weightSet   bool // weight was set at run time
	maxConn     int
	admin       Admin
	health      Health
	agentDown   bool
	processDown bool // the worker process behind this address is dead
	unresolved  bool // DNS gave no address (yet): maintenance, as HAProxy's "MAINT (resolution)"
	checkHealth int  // HAProxy's health counter: up when >= rise
	checkStatus string
	checkTime   time.Duration
	lastChange  time.Time
	live        *load // shared with the same server in other generations
	rrCurrent   int
	// conns are the client connections using the server, for
	// "shutdown sessions server".
	conns map[io.Closer]struct{}
}

// SetTLS sets the TLS client configuration of an ssl server. Call it
// before the backend is used.
func (s *Server) SetTLS(c *stdtls.Config) { s.tls = c }

// TLS returns the server's TLS client configuration, nil when the
// connection to it is not encrypted.
func (s *Server) TLS() *stdtls.Config { return s.tls }

func newServer(b *Backend, sc *config.Server) *Server {
	s := &Server{
		b:           b,
		cfg:         sc,
		live:        new(load),
		addr:        sc.Addr,
		weight:      sc.Weight,
		maxConn:     sc.MaxConn,
		checkHealth: sc.Rise, // up, and down at the first failed check, as HAProxy starts
		checkStatus: "INI",
		lastChange:  time.Now(),
	}
	s.unresolved = sc.NoAddr // in maintenance until DNS gives an address
	if sc.Disabled {
		s.admin = Maint
	}
	if !sc.Check {
		s.checkStatus = ""
	}
	return s
}

// inherit takes the live state of the same server in the previous
// configuration. Run-time weight and address survive only while the
// configuration's own value did not change, as with HAProxy's server state.
func (s *Server) inherit(old *Server) {
	old.b.mu.Lock()
	defer old.b.mu.Unlock()
	s.admin = old.admin
	if old.cfg.Disabled != s.cfg.Disabled {
		s.admin = Ready
		if s.cfg.Disabled {
			s.admin = Maint
		}
	}
	s.health, s.agentDown, s.processDown = old.health, old.agentDown, old.processDown
	if old.cfg.FQDN == s.cfg.FQDN && s.cfg.FQDN != "" {
		s.unresolved = old.unresolved // what DNS said still holds for the same name
	}
	if s.cfg.Check && old.cfg.Check {
		// The counter must stay on the side of rise its health is on when
		// rise or fall changed: a down server keeps its successes so far
		// (below the new rise), an up one its failures left to go down.
		rise, fall := s.cfg.Rise, s.cfg.Fall
		if s.health == Down {
			s.checkHealth = min(old.checkHealth, rise-1)
		} else {
			s.checkHealth = min(rise+old.checkHealth-old.cfg.Rise, rise+fall-1)
			s.checkHealth = max(s.checkHealth, rise)
		}
		s.checkStatus, s.checkTime = old.checkStatus, old.checkTime
	} else if !s.cfg.Check && old.cfg.Check {
		s.health = Up // checks removed: nothing keeps it down
	}
	if old.weightSet && old.cfg.Weight == s.cfg.Weight {
		s.weight, s.weightSet = old.weight, true
	}
	if old.addrSet && old.cfg.Addr.Key() == s.cfg.Addr.Key() {
		s.addr, s.addrSet = old.addr, true
	}
	s.lastChange = old.lastChange
	s.live = old.live // connections still on the old server count here too
}

// Name is the server's name.
func (s *Server) Name() string { return s.cfg.Name }

// Config is the server's configuration line.
func (s *Server) Config() *config.Server { return s.cfg }

// Backend is the backend the server belongs to.
func (s *Server) Backend() *Backend { return s.b }

// Addr is the address connections go to.
func (s *Server) Addr() addr.Addr { return s.b.addrOf(s) }

// Release ends a connection Acquire gave to this server.
func (s *Server) Release() {
	s.b.mu.Lock()
	s.b.release(s)
	s.b.mu.Unlock()
}

// Active is the number of connections on the server.
func (s *Server) Active() int {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.live.cur
}

// usable reports whether the server may get new connections, maxconn
// aside; b.mu is held.
func (s *Server) usable() bool {
	return !s.unresolved && s.admin == Ready && s.health == Up && !s.agentDown && !s.processDown && s.weight > 0
}

func (s *Server) full() bool { return s.maxConn > 0 && s.live.cur >= s.maxConn }

// changed records a state change; b.mu is held.
func (s *Server) changed() { s.lastChange = time.Now() }

// Transfer records bytes moved by one connection.
func (s *Server) Transfer(in, out int64) {
	s.b.mu.Lock()
	s.live.stats.BytesIn += in
	s.live.stats.BytesOut += out
	s.b.live.stats.BytesIn += in
	s.b.live.stats.BytesOut += out
	s.b.mu.Unlock()
}

// ConnectFailed records a failed connection attempt; retry says whether
// another attempt follows, redispatch whether it goes to another server.
func (s *Server) ConnectFailed(retry, redispatch bool) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.live.stats.ConnErrors++
	s.b.live.stats.ConnErrors++
	if retry {
		s.live.stats.Retries++
		s.b.live.stats.Retries++
	}
	if redispatch {
		s.live.stats.Redispatch++
		s.b.live.stats.Redispatch++
	}
}

// SetAdmin sets the administrative state.
func (s *Server) SetAdmin(a Admin) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.admin != a {
		s.admin = a
		s.changed()
	}
	s.b.serveQueue()
}

// SetHealth forces the operational state, as "set server health" does;
// the next check result applies on top of it.
func (s *Server) SetHealth(h Health) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.health != h {
		s.health = h
		s.changed()
	}
	switch h {
	case Up:
		s.checkHealth = s.cfg.Rise + s.cfg.Fall - 1
	case Down:
		s.checkHealth = 0
	}
	s.b.serveQueue()
}

// SetAgent sets the agent state ("set server agent up|down").
func (s *Server) SetAgent(up bool) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.agentDown == up {
		s.agentDown = !up
		s.changed()
	}
	s.b.serveQueue()
}

// MaxWeight is the highest weight a server can have, as in HAProxy.
const MaxWeight = 256

// SetWeight sets the run-time weight (0 to 256).
func (s *Server) SetWeight(w int) error {
	if w < 0 || w > MaxWeight {
		return fmt.Errorf("weight %d out of range 0-%d", w, MaxWeight)
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.weight, s.weightSet = w, w != s.cfg.Weight
	s.b.serveQueue()
	return nil
}

// SetAddr changes where new connections go; established ones stay.
func (s *Server) SetAddr(a addr.Addr) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.addr, s.addrSet = a, a.Key() != s.cfg.Addr.Key()
	s.changed()
}

// SetResolution applies what DNS says: an address (and an SRV weight, when
// not 0), or that there is none, which puts the server in maintenance.
// Established connections keep the address they started with.
func (s *Server) SetResolution(present bool, a addr.Addr, weight int) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if present {
		if s.unresolved && s.cfg.Check {
			// A slot that gets an address comes up through its checks.
			s.health, s.checkHealth = Down, 0
		}
		s.addr, s.addrSet = a, a.Key() != s.cfg.Addr.Key()
		if weight > 0 {
			s.weight, s.weightSet = min(weight, MaxWeight), true
		}
	}
	if s.unresolved == present {
		s.unresolved = !present
		s.changed()
	}
	for g := s.b; g != nil; g = g.newer {
		g.serveQueue()
	}
}

// SetMaxConn sets the server's connection limit (0 = none).
func (s *Server) SetMaxConn(n int) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.maxConn = n
	s.b.serveQueue()
}

// State is a copy of a server's live state.
type State struct {
	Admin       Admin
	Health      Health
	AgentDown   bool
	ProcessDown bool
	Unresolved  bool
	Weight      int
	WeightSet   bool
	Addr        addr.Addr
	AddrSet     bool
	MaxConn     int
	CheckHealth int
	CheckStatus string // HAProxy's check status code ("L4OK", "L4CON"...), "" without checks
	CheckTime   time.Duration
	LastChange  time.Time
	Counters    Counters
}

// State returns the server's live state.
func (s *Server) State() State {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	c := s.live.stats
	c.Cur = s.live.cur
	return State{
		Admin: s.admin, Health: s.health, AgentDown: s.agentDown, ProcessDown: s.processDown, Unresolved: s.unresolved,
		Weight: s.weight, WeightSet: s.weightSet, Addr: s.addr, AddrSet: s.addrSet,
		MaxConn: s.maxConn, CheckHealth: s.checkHealth, CheckStatus: s.checkStatus,
		CheckTime: s.checkTime, LastChange: s.lastChange, Counters: c,
	}
}

// Status is the server's status as HAProxy's stats show it: "UP",
// "DOWN", "MAINT", "DRAIN", "NOLB", "UP 1/3" while going down, "DOWN 1/2"
// while going up, "no check" for a server without checks that is up.
func (st State) Status(sc *config.Server) string {
	switch {
	case st.Unresolved:
		return "MAINT (resolution)"
	case st.Admin == Maint:
		return "MAINT"
	case st.ProcessDown || st.AgentDown:
		return "DOWN"
	case st.Health == Down:
		if sc.Check && st.CheckHealth > 0 {
			return fmt.Sprintf("DOWN %d/%d", st.CheckHealth, sc.Rise)
		}
		return "DOWN"
	case st.Admin == Drain:
		return "DRAIN"
	case st.Health == Stopping:
		return "NOLB"
	case !sc.Check:
		return "no check"
	case st.CheckHealth < sc.Rise+sc.Fall-1:
		return fmt.Sprintf("UP %d/%d", st.CheckHealth-sc.Rise+1, sc.Fall)
	}
	return "UP"
}
