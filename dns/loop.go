package dns

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// loop is the single resolution loop of one Query, shared by its watchers.
type loop struct {
	r      *Resolver
	q      Query
	key    string
	srv    bool
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	wake   chan struct{} // asks for a resolution now; buffered, so pokes coalesce

	watchers int // guarded by r.mu

	mu        sync.Mutex
	res       Result
	version   uint64        // bumped on each change of res; 0: no outcome yet
	changed   chan struct{} // closed and replaced on each change of res
	lastValid time.Time

	// Owned by run.
	held    heldSet
	targets map[string]target // SRV targets resolved by their own queries
}

// target is the last valid resolution of an SRV target, kept so that a
// failing lookup of the target is held like any other resolution.
type target struct {
	addrs     []netip.Addr
	lastValid time.Time
}

// outcome is the result of one resolution round.
type outcome struct {
	status  string
	records []Record
	ns      *nameserver // the nameserver whose answer gave a valid outcome
}

func newLoop(r *Resolver, q Query, key string, cancel context.CancelFunc) *loop {
	return &loop{
		r:       r,
		q:       q,
		key:     key,
		srv:     isSRV(q.Name),
		log:     r.log.With("name", strings.TrimSuffix(q.Name, ".")),
		cancel:  cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		changed: make(chan struct{}),
		held:    heldSet{recs: make(map[recordKey]heldRecord)},
		targets: make(map[string]target),
	}
}

// isSRV tells an SRV query name ("_service._proto.name") from a host name.
func isSRV(name string) bool {
	labels := mdns.SplitDomainName(name)
	return len(labels) > 2 && strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_")
}

// current returns the result, its version and a channel closed at the next
// change.
func (l *loop) current() (Result, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := l.res
	// Each watcher gets its own slice, so none can change another's.
	res.Records = slices.Clone(res.Records)
	return res, l.version, l.changed
}

// stale reports whether a joining watcher should not wait for the next round:
// the last valid answer, if any, is older than hold valid.
func (l *loop) stale() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version > 0 && time.Since(l.lastValid) > l.r.cfg.Hold.Valid
}

func (l *loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *loop) run(ctx context.Context) {
	defer close(l.done)
	cfg := &l.r.cfg
	for {
		start := time.Now()
		o := l.resolve(ctx)
		if ctx.Err() != nil {
			return
		}
		l.held.apply(o, time.Now(), cfg.Hold)
		l.publish(o.ns)

		// Rounds start TimeoutResolve apart (or back to back when one took
		// longer, which retries already pace). Holds may expire in between:
		// wake up for them so that Records are dropped on time.
		next := start.Add(cfg.TimeoutResolve)
		for time.Now().Before(next) {
			at := next
			if e, ok := l.held.nextExpiry(cfg.Hold); ok && e.Before(at) {
				at = e
			}
			woken, ok := sleepUntil(ctx, at, l.wake)
			if !ok {
				return
			}
			if woken {
				// A watcher wants a fresh answer: bring the round forward,
				// but no closer to the last one than a retry, so that
				// watchers coming and going cannot make a storm.
				if soonest := start.Add(cfg.TimeoutRetry); soonest.Before(next) {
					next = soonest
				}
				continue
			}
			l.held.expire(time.Now(), cfg.Hold)
			l.publish(nil)
		}
	}
}

// sleepUntil waits until t, a poke on wake (woken) or the end of ctx (!ok).
func sleepUntil(ctx context.Context, t time.Time, wake <-chan struct{}) (woken, ok bool) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-wake:
		return true, true
	case <-timer.C:
		return false, true
	}
}

// publish makes the held records the loop's result and wakes the watchers if
// it changed. ns, if not nil, gave the answer of this round: it is credited
// with the update.
func (l *loop) publish(ns *nameserver) {
	res := l.held.result()
	l.mu.Lock()
	if l.held.status == StatusValid {
		l.lastValid = l.held.lastValid
	}
	first := l.version == 0
	recordsChanged := !slices.Equal(res.Records, l.res.Records)
	if !first && !recordsChanged && res.Status == l.res.Status {
		l.mu.Unlock()
		return
	}
	// Counted before the watchers wake: whoever sees the change sees
	// its update in the nameserver's stats too.
	if recordsChanged && ns != nil {
		ns.stats.update.Add(1)
	}
	prev := l.res
	l.res = res
	l.version++
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()

	level := slog.LevelInfo
	if res.Status != StatusValid {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "resolution changed",
		"status", res.Status, "previous_status", prev.Status,
		"records", len(res.Records), "previous_records", len(prev.Records))
}

// resolve runs one resolution round.
func (l *loop) resolve(ctx context.Context) outcome {
	if _, ok := mdns.IsDomainName(l.q.Name); !ok || l.q.Name == "." {
		return outcome{status: StatusInvalid}
	}
	if l.srv {
		return l.resolveSRV(ctx)
	}
	addrs, status, ns := l.r.resolveHost(ctx, l.q.Name, l.q.Prefer)
	if status != StatusValid {
		return outcome{status: status}
	}
	var recs []Record
	for _, a := range pick(addrs, l.q.Prefer, l.q.Nets) {
		recs = append(recs, Record{Addr: a})
	}
	return outcome{status: StatusValid, records: recs, ns: ns}
}

func (l *loop) resolveSRV(ctx context.Context) outcome {
	a, ns, ok := l.r.lookup(ctx, l.q.Name, mdns.TypeSRV)
	if !ok {
		return outcome{status: StatusTimeout}
	}
	if st := a.status(); st != StatusValid {
		return outcome{status: st}
	}
	var recs []Record
	resolved := make(map[string][]netip.Addr, len(a.srvs))
	for _, s := range a.srvs {
		addrs, done := resolved[s.target]
		if !done {
			addrs = l.targetAddrs(ctx, s)
			resolved[s.target] = addrs
		}
		if ctx.Err() != nil {
			return outcome{}
		}
		for _, addr := range addrs {
			recs = append(recs, Record{
				Addr:   addr,
				Port:   s.port,
				Weight: int(s.weight)/256 + 1,
				Target: strings.TrimSuffix(s.target, "."),
			})
		}
	}
	// Forget the targets the SRV set no longer has.
	for name := range l.targets {
		if _, ok := resolved[name]; !ok {
			delete(l.targets, name)
		}
	}
	return outcome{status: StatusValid, records: recs, ns: ns}
}

// targetAddrs returns the addresses of an SRV target: from the additional
// section when it has them, otherwise from the target's own resolution, whose
// errors are held like those of any resolution.
func (l *loop) targetAddrs(ctx context.Context, s srvRecord) []netip.Addr {
	now := time.Now()
	if addrs := pick(s.addrs, l.q.Prefer, l.q.Nets); len(addrs) > 0 {
		l.targets[s.target] = target{addrs: addrs, lastValid: now}
		return addrs
	}
	addrs, status, _ := l.r.resolveHost(ctx, s.target, l.q.Prefer)
	now = time.Now()
	if status == StatusValid {
		t := target{addrs: pick(addrs, l.q.Prefer, l.q.Nets), lastValid: now}
		l.targets[s.target] = t
		return t.addrs
	}
	t, ok := l.targets[s.target]
	if ok && now.Sub(t.lastValid) < errorHold(l.r.cfg.Hold, status) {
		return t.addrs
	}
	l.log.Debug("SRV target not resolved", "target", s.target, "status", status)
	return nil
}

// pick chooses the addresses a server should use, as HAProxy ranks them: the
// preferred family if the name has any, else the other; within it, the
// addresses inside nets if there are any. The result is sorted and unique.
func pick(addrs []netip.Addr, prefer string, nets []netip.Prefix) []netip.Addr {
	wantV4 := prefer == PreferIPv4
	var preferred, other []netip.Addr
	for _, a := range addrs {
		if a.Is4() == wantV4 {
			preferred = append(preferred, a)
		} else {
			other = append(other, a)
		}
	}
	chosen := preferred
	if len(chosen) == 0 {
		chosen = other
	}
	var inNets []netip.Addr
	for _, a := range chosen {
		if slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(a) }) {
			inNets = append(inNets, a)
		}
	}
	if len(inNets) > 0 {
		chosen = inNets
	}
	chosen = slices.Clone(chosen)
	slices.SortFunc(chosen, netip.Addr.Compare)
	return slices.Compact(chosen)
}

// recordKey identifies a record across answers; a new SRV weight updates the
// record rather than making the old one obsolete.
type recordKey struct {
	addr   netip.Addr
	port   uint16
	target string
}

type heldRecord struct {
	rec  Record
	seen time.Time // last valid answer that had it
}

// heldSet applies the hold timers to the outcomes of a loop.
type heldSet struct {
	recs      map[recordKey]heldRecord
	lastValid time.Time
	status    string
}

// apply takes the outcome of a round that ended at now.
func (h *heldSet) apply(o outcome, now time.Time, hold Hold) {
	h.status = o.status
	if o.status == StatusValid {
		h.lastValid = now
		for _, rec := range o.records {
			h.recs[recordKey{rec.Addr, rec.Port, rec.Target}] = heldRecord{rec: rec, seen: now}
		}
	}
	h.expire(now, hold)
}

// expire drops what no hold keeps any more: everything once the hold of the
// current error has passed since the last valid answer, and the records
// missing from the last valid answer once hold obsolete has passed.
func (h *heldSet) expire(now time.Time, hold Hold) {
	if h.status != StatusValid && (h.lastValid.IsZero() || now.Sub(h.lastValid) >= errorHold(hold, h.status)) {
		clear(h.recs)
		return
	}
	for k, r := range h.recs {
		if r.seen.Before(h.lastValid) && now.Sub(r.seen) >= hold.Obsolete {
			delete(h.recs, k)
		}
	}
}

// nextExpiry returns when expire will next drop something.
func (h *heldSet) nextExpiry(hold Hold) (time.Time, bool) {
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if len(h.recs) > 0 && h.status != StatusValid {
		earlier(h.lastValid.Add(errorHold(hold, h.status)))
	}
	for _, r := range h.recs {
		if r.seen.Before(h.lastValid) {
			earlier(r.seen.Add(hold.Obsolete))
		}
	}
	return next, !next.IsZero()
}

func (h *heldSet) result() Result {
	res := Result{Status: h.status}
	for _, r := range h.recs {
		res.Records = append(res.Records, r.rec)
	}
	slices.SortFunc(res.Records, func(a, b Record) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), strings.Compare(a.Target, b.Target))
	})
	return res
}

// errorHold is how long the last valid records outlive an error status.
func errorHold(hold Hold, status string) time.Duration {
	switch status {
	case StatusNX:
		return hold.NX
	case StatusTimeout:
		return hold.Timeout
	case StatusRefused:
		return hold.Refused
	default: // other, invalid
		return hold.Other
	}
}
