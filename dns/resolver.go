// Package dns keeps server addresses current for autoscaled backends, with
// the semantics of HAProxy's "resolvers" sections (configuration manual,
// section 5.3): one Resolver per section, one Watch per server FQDN.
//
// What it guarantees, and why:
//
//   - Every query has a random id and goes out from a fresh UDP socket (so a
//     random source port); a reply is accepted only if it comes from the
//     nameserver's address (the socket is connected, so the kernel drops
//     anything else), carries the id and repeats the question. Other
//     datagrams are counted and ignored while the query keeps waiting, so an
//     off-path spoofer has to guess both id and port, and a stray packet
//     cannot cut a query short.
//   - A truncated reply (TC bit, or larger than the announced payload size)
//     is asked again over TCP. "tcp@" nameservers are only asked over TCP.
//   - CNAME chains are followed within the answer; a chain that ends without
//     data makes its last name be asked itself, within maxCNAMEHops in all.
//   - SRV targets take their addresses from the additional section when it
//     has them, otherwise each target is resolved with its own A/AAAA query.
//   - One resolution loop per distinct Query, however many watchers, paced by
//     TimeoutResolve; each resolution makes at most ResolveRetries attempts
//     (more only for the other address family or a CNAME re-query), each to
//     the next nameserver in turn, waiting TimeoutRetry for a reply.
//   - Errors never remove a healthy server early: after NXDOMAIN, REFUSED,
//     a timeout or another error, the records of the last valid answer stay
//     in force until the hold of that error kind has passed since that
//     answer. A record that a valid answer no longer has is kept for hold
//     obsolete.
package dns

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Result statuses, named as in HAProxy's resolution statuses.
const (
	StatusValid   = "valid"   // the records of the last answer
	StatusNX      = "nx"      // NXDOMAIN
	StatusTimeout = "timeout" // no nameserver answered
	StatusRefused = "refused" // REFUSED
	StatusOther   = "other"   // SERVFAIL, other rcodes, no data, CNAME errors
	StatusInvalid = "invalid" // an unusable name, or records without a usable address
)

// Address family preferences of Query.Prefer.
const (
	PreferIPv4 = "ipv4"
	PreferIPv6 = "ipv6"
)

// Nameserver is one "nameserver" line of a resolvers section.
type Nameserver struct {
	Name string
	Addr netip.AddrPort
	TCP  bool // "tcp@" nameservers are asked over TCP only
}

// Hold gives, per outcome, how long the records of the last valid answer stay
// in force (HAProxy "hold <status> <period>"). A zero field takes HAProxy's
// default (valid 10s, nx/timeout/refused/other 30s, obsolete 0); a negative
// field means no hold at all, since zero is taken.
type Hold struct {
	// Valid is the age beyond which the last valid answer is stale: a new
	// watcher joining a loop whose last valid answer is older triggers an
	// immediate resolution instead of waiting for the next round.
	Valid time.Duration
	// NX, Timeout, Refused and Other (also used for "invalid") are measured
	// from the last valid answer, as HAProxy does.
	NX, Timeout, Refused, Other time.Duration
	// Obsolete is how long a record missing from valid answers is kept.
	Obsolete time.Duration
}

// Config is one resolvers section.
type Config struct {
	Name                string
	Nameservers         []Nameserver
	AcceptedPayloadSize int           // EDNS0 UDP size; 512 or less (0) = 512 without EDNS0; at most 65535
	ResolveRetries      int           // attempts per resolution; default 3
	TimeoutResolve      time.Duration // interval between two resolutions of a name, default 1s
	TimeoutRetry        time.Duration // wait for an answer before retrying, default 1s
	Hold                Hold
}

// Query is what a server asks to have resolved.
type Query struct {
	Name   string         // FQDN; "_service._proto.name" means SRV
	Prefer string         // "ipv4" or "ipv6" (default, as HAProxy) for A/AAAA
	Nets   []netip.Prefix // resolve-net: preferred networks
}

// Record is one address a server can use.
//
// For SRV, Weight is HAProxy's mapping of the SRV weight (0-65535) onto
// server weights 1-256: weight/256 + 1. SRV priority is not used.
type Record struct {
	Addr   netip.Addr
	Port   uint16 // SRV target port, 0 for A/AAAA
	Weight int    // 1-256 from the SRV weight, 0 for A/AAAA
	Target string // SRV target name, lower case without the final dot; "" for A/AAAA
}

// Result is the set of records in force for a Query.
//
// Records are sorted by address, port and target. With an address family
// preference, they hold every address of the preferred family, or of the
// other family when the name has none of the preferred one; with Nets, only
// the addresses inside those networks when there are any (the family choice
// comes first, as HAProxy ranks family above network). For SRV the same
// choice is made for each target's addresses.
//
// Status is the outcome of the latest resolution; with an error status,
// Records still hold the last valid records while the hold for that error
// lasts, so Records, not Status, say what to use.
type Result struct {
	Records []Record
	Status  string // one of the Status constants
}

// NameserverStats are HAProxy's "show resolvers" counters for a nameserver:
// Sent, Snd_error, Valid, Update, Cname, Cname_error, Any_err, Nx, Timeout,
// Refused, Other, Invalid, Too_big, Truncated, Outdated.
type NameserverStats struct {
	Name string
	Addr netip.AddrPort
	TCP  bool

	Sent       uint64 // queries sent
	SndError   uint64 // queries that could not be sent, or got a network error
	Valid      uint64 // answers with usable records
	Update     uint64 // valid answers that changed a watched record set
	Cname      uint64 // answers in which a CNAME was followed
	CnameError uint64 // CNAME loops and chains too long
	AnyErr     uint64 // NOERROR answers without a record of the type asked
	Nx         uint64 // NXDOMAIN
	Timeout    uint64 // attempts that got no answer in time
	Refused    uint64 // REFUSED
	Other      uint64 // SERVFAIL and other error rcodes
	Invalid    uint64 // malformed replies, wrong question, unusable records
	TooBig     uint64 // UDP replies larger than AcceptedPayloadSize (re-asked over TCP)
	Truncated  uint64 // UDP replies with the TC bit (re-asked over TCP)
	Outdated   uint64 // replies with another query's id
}

// counters is NameserverStats updated concurrently by the loops.
type counters struct {
	sent, sndError, valid, update, cname, cnameError, anyErr, nx, timeout,
	refused, other, invalid, tooBig, truncated, outdated atomic.Uint64
}

type nameserver struct {
	Nameserver
	stats counters
}

// Resolver runs the resolutions of one resolvers section. Its goroutines
// live only while someone watches: there is nothing to close.
type Resolver struct {
	cfg     Config
	log     *slog.Logger
	ns      []*nameserver
	payload int           // largest UDP reply accepted, as announced
	turn    atomic.Uint32 // rotates the first nameserver of each exchange

	mu    sync.Mutex
	loops map[string]*loop // by Query key; guarded by mu
}

// New returns a Resolver for cfg; log may be nil.
func New(cfg Config, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("resolvers", cfg.Name)
	cfg = withDefaults(cfg)
	r := &Resolver{cfg: cfg, log: log, payload: 512, loops: make(map[string]*loop)}
	if cfg.AcceptedPayloadSize > 512 {
		r.payload = min(cfg.AcceptedPayloadSize, 65535)
	}
	for _, ns := range cfg.Nameservers {
		if !ns.Addr.IsValid() || ns.Addr.Port() == 0 {
			log.Error("ignoring nameserver without a usable address", "nameserver", ns.Name, "addr", ns.Addr)
			continue
		}
		r.ns = append(r.ns, &nameserver{Nameserver: ns})
	}
	if len(r.ns) == 0 {
		log.Error("no usable nameserver: every resolution will time out")
	}
	return r
}

// withDefaults fills in HAProxy's defaults for zero fields and turns the
// negative "explicitly none" holds into zero.
func withDefaults(cfg Config) Config {
	if cfg.ResolveRetries <= 0 {
		cfg.ResolveRetries = 3
	}
	if cfg.TimeoutResolve <= 0 {
		cfg.TimeoutResolve = time.Second
	}
	if cfg.TimeoutRetry <= 0 {
		cfg.TimeoutRetry = time.Second
	}
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0
		}
	}
	h := &cfg.Hold
	def(&h.Valid, 10*time.Second)
	def(&h.NX, 30*time.Second)
	def(&h.Timeout, 30*time.Second)
	def(&h.Refused, 30*time.Second)
	def(&h.Other, 30*time.Second)
	def(&h.Obsolete, 0)
	return cfg
}

// Stats returns the counters of each nameserver, in configuration order.
func (r *Resolver) Stats() []NameserverStats {
	out := make([]NameserverStats, 0, len(r.ns))
	for _, ns := range r.ns {
		c := &ns.stats
		out = append(out, NameserverStats{
			Name: ns.Name, Addr: ns.Addr, TCP: ns.TCP,
			Sent: c.sent.Load(), SndError: c.sndError.Load(), Valid: c.valid.Load(),
			Update: c.update.Load(), Cname: c.cname.Load(), CnameError: c.cnameError.Load(),
			AnyErr: c.anyErr.Load(), Nx: c.nx.Load(), Timeout: c.timeout.Load(),
			Refused: c.refused.Load(), Other: c.other.Load(), Invalid: c.invalid.Load(),
			TooBig: c.tooBig.Load(), Truncated: c.truncated.Load(), Outdated: c.outdated.Load(),
		})
	}
	return out
}

// Watch resolves q until ctx ends and calls notify with the first outcome and
// then whenever the records or the status change. It blocks until ctx ends
// (run it in its own goroutine); notify runs on the caller's goroutine, so
// calls never overlap and none happens after Watch returns. A slow notify
// only makes it skip to the latest result.
//
// Watches of the same Query (same name, preference and networks) share one
// resolution loop, so there is one query in flight per name; the loop stops
// when its last watcher leaves.
func (r *Resolver) Watch(ctx context.Context, q Query, notify func(Result)) {
	if ctx.Err() != nil {
		return
	}
	if notify == nil {
		notify = func(Result) {}
	}
	l := r.join(normalize(q))
	defer r.leave(l)
	var seen uint64
	for {
		res, version, changed := l.current()
		if version != seen && ctx.Err() == nil {
			seen = version
			notify(res)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// normalize puts q in the form its loop is keyed by.
func normalize(q Query) Query {
	q.Name = lowerName(mdns.Fqdn(strings.TrimSpace(q.Name)))
	if q.Prefer != PreferIPv4 {
		q.Prefer = PreferIPv6
	}
	nets := make([]netip.Prefix, 0, len(q.Nets))
	for _, p := range q.Nets {
		if p.IsValid() {
			nets = append(nets, p.Masked())
		}
	}
	slices.SortFunc(nets, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	q.Nets = slices.Compact(nets)
	return q
}

func queryKey(q Query) string {
	var b strings.Builder
	b.WriteString(q.Name)
	b.WriteString(" ")
	b.WriteString(q.Prefer)
	for _, p := range q.Nets {
		b.WriteString(" ")
		b.WriteString(p.String())
	}
	return b.String()
}

// join returns the loop of q, starting it if q has none.
func (r *Resolver) join(q Query) *loop {
	key := queryKey(q)
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.loops[key]
	if l == nil {
		ctx, cancel := context.WithCancel(context.Background())
		l = newLoop(r, q, key, cancel)
		r.loops[key] = l
		go l.run(ctx)
	} else if l.stale() {
		l.poke()
	}
	l.watchers++
	return l
}

// leave stops l when its last watcher leaves, and waits for it to end so that
// no query of it outlives its watchers.
func (r *Resolver) leave(l *loop) {
	r.mu.Lock()
	l.watchers--
	last := l.watchers == 0
	if last {
		delete(r.loops, l.key)
		l.cancel()
	}
	r.mu.Unlock()
	if last {
		<-l.done
	}
}
