// Package backend is server selection for one backend in one process: the
// balance algorithms, per-server maxconn with a queue, administrative and
// health state, and the counters the runtime API reports. The dispatcher
// tier and the TLS tier both pick their servers here.
package backend

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/config"
)

var (
	// ErrNoServer means no server of the backend can take connections.
	ErrNoServer = errors.New("no server available")
	// ErrQueueTimeout means every usable server stayed full for the
	// queue timeout.
	ErrQueueTimeout = errors.New("timed out in queue")
)

// Backend picks servers for connections. It is safe for concurrent use.
type Backend struct {
	proxy *config.Proxy

	// mu and live are shared by every generation of the backend: a
	// connection accepted before a reload still counts on its server
	// afterwards, so leastconn and maxconn stay exact across reloads.
	mu      *sync.Mutex
	live    *load     // cur: connections holding a server
	newer   *Backend  // the generation that replaced this one, if any
	servers []*Server // in id order
	next    int       // where leastconn and first start looking, for fairness among equals
	queue   []*waiter // connections waiting for a free server, oldest first
}

// load is the live count and counters of a server or a backend.
type load struct {
	cur   int
	stats Counters
}

// waiter is a connection queued until a server frees a slot.
type waiter struct {
	src     net.Addr
	exclude *Server
	got     chan *Server // receives the server; buffered
}

// New builds the backend of proxy p. prev is the same backend in the
// configuration being replaced, or nil: each server takes the live state
// (administrative state, runtime weight and address, health, counters) of
// the previous server with the same id and name, else the same name.
func New(p *config.Proxy, prev *Backend) *Backend {
	b := &Backend{proxy: p, mu: new(sync.Mutex), live: new(load)}
	if prev != nil {
		b.mu, b.live = prev.mu, prev.live
	}
	for _, sc := range p.Servers {
		s := newServer(b, sc)
		if prev != nil {
			if old := prev.match(sc); old != nil {
				s.inherit(old)
			}
		}
		b.servers = append(b.servers, s)
	}
	if prev != nil {
		b.mu.Lock()
		prev.newer = b
		b.mu.Unlock()
	}
	return b
}

func (b *Backend) match(sc *config.Server) *Server {
	for _, s := range b.servers {
		if s.cfg.ID == sc.ID && s.cfg.Name == sc.Name {
			return s
		}
	}
	for _, s := range b.servers {
		if s.cfg.Name == sc.Name {
			return s
		}
	}
	return nil
}

// Name is the backend's proxy name.
func (b *Backend) Name() string { return b.proxy.Name }

// Proxy is the backend's configuration.
func (b *Backend) Proxy() *config.Proxy { return b.proxy }

// Servers returns the servers in id order.
func (b *Backend) Servers() []*Server { return b.servers }

// Server returns the server with that name, or nil.
func (b *Backend) Server(name string) *Server {
	for _, s := range b.servers {
		if s.cfg.Name == name {
			return s
		}
	}
	return nil
}

// Active is the number of connections holding one of the servers.
func (b *Backend) Active() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.live.cur
}

// Acquire returns a server for a new connection from src, avoiding exclude
// (the server a failed attempt used, when redispatching) unless no other
// server can take the connection now, as HAProxy's redispatch does. When
// every usable server is at its maxconn, the connection waits in the
// backend's queue for "timeout queue" (else "timeout connect"), or until
// ctx is done. The caller must Release the server.
func (b *Backend) Acquire(ctx context.Context, src net.Addr, exclude *Server) (*Server, error) {
	b.mu.Lock()
	s, full := b.pick(src, exclude)
	if s != nil {
		b.take(s)
		b.mu.Unlock()
		return s, nil
	}
	if !full {
		b.live.stats.Denied++
		b.mu.Unlock()
		return nil, ErrNoServer
	}
	w := &waiter{src: src, exclude: exclude, got: make(chan *Server, 1)}
	b.queue = append(b.queue, w)
	b.live.stats.QueueCur++
	b.live.stats.QueueMax = max(b.live.stats.QueueMax, b.live.stats.QueueCur)
	b.mu.Unlock()

	timeout := b.proxy.Timeouts.Queue
	if timeout == 0 {
		timeout = b.proxy.Timeouts.Connect
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case s := <-w.got:
		return s, nil
	case <-expired:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unqueue(w) {
		return nil, err
	}
	// A server was handed over while we gave up: give it back.
	b.release(<-w.got)
	return nil, err
}

func (b *Backend) unqueue(w *waiter) bool {
	for i, q := range b.queue {
		if q == w {
			b.queue = slices.Delete(b.queue, i, i+1)
			b.live.stats.QueueCur--
			return true
		}
	}
	return false
}

// take counts a connection on s; b.mu is held.
func (b *Backend) take(s *Server) {
	s.live.cur++
	s.live.stats.Total++
	s.live.stats.Max = max(s.live.stats.Max, s.live.cur)
	s.live.stats.LastSession = time.Now()
	b.live.cur++
	b.live.stats.Total++
	b.live.stats.Max = max(b.live.stats.Max, b.live.cur)
	b.live.stats.LastSession = s.live.stats.LastSession
}

// release uncounts a connection on s and hands freed slots to queued
// connections; b.mu is held.
func (b *Backend) release(s *Server) {
	s.live.cur--
	b.live.cur--
	// The slot may be wanted by a connection queued in a newer generation.
	for g := b; g != nil; g = g.newer {
		g.serveQueue()
	}
}

// serveQueue gives free servers to queued connections, oldest first; b.mu
// is held. A waiter that finds no server means none has a free slot for
// anyone (exclude is only avoided, and source falls back to any server
// with room), so stopping there keeps the order without stranding slots.
func (b *Backend) serveQueue() {
	for len(b.queue) > 0 {
		w := b.queue[0]
		s, _ := b.pick(w.src, w.exclude)
		if s == nil {
			return
		}
		b.queue[0] = nil // the array outlives the waiter
		b.queue = b.queue[1:]
		b.live.stats.QueueCur--
		b.take(s)
		w.got <- s
	}
}

// pick chooses a server by the balance algorithm among the usable ones;
// b.mu is held. When it returns nil, full says whether some usable server
// exists but all are at their maxconn (the connection may queue).
//
// Backup servers serve only when no active server is usable. exclude still
// counts as usable (a failed connection does not take a server down, its
// checks do), and it is picked when it is the only server with room, so a
// redispatch neither spills to the backups nor fails nor queues while the
// server it left could take the connection.
func (b *Backend) pick(src net.Addr, exclude *Server) (s *Server, full bool) {
	backup := false
	if !b.anyUp(false) {
		if !b.anyUp(true) {
			return nil, false
		}
		backup = true
	}
	s = b.pickBy(src, backup, exclude)
	if s == nil && exclude != nil {
		s = b.pickBy(src, backup, nil)
	}
	return s, s == nil
}

func (b *Backend) pickBy(src net.Addr, backup bool, exclude *Server) *Server {
	if backup {
		// As HAProxy without "option allbackups": only the first usable
		// backup server takes the load.
		for _, s := range b.servers {
			if s.cfg.Backup && s != exclude && s.usable() {
				if s.full() {
					return nil
				}
				return s
			}
		}
		return nil
	}
	switch b.proxy.Balance {
	case config.BalanceLeastConn:
		return b.pickLeastConn(backup, exclude)
	case config.BalanceSource:
		return b.pickSource(src, backup, exclude)
	case config.BalanceFirst:
		return b.pickFirst(backup, exclude)
	}
	return b.pickRoundRobin(backup, exclude)
}

// anyUp reports whether a server of that kind (backup or not) could take
// traffic, ignoring maxconn.
func (b *Backend) anyUp(backup bool) bool {
	for _, s := range b.servers {
		if s.cfg.Backup == backup && s.usable() {
			return true
		}
	}
	return false
}

// candidate reports whether s may take a connection now.
func candidate(s *Server, backup bool, exclude *Server) bool {
	return s.cfg.Backup == backup && s != exclude && s.usable() && !s.full()
}

// pickLeastConn returns the server with the fewest connections for its
// weight; among equals, the next one after the last pick, so that equal
// servers take turns.
func (b *Backend) pickLeastConn(backup bool, exclude *Server) *Server {
	var best *Server
	bestAt := 0
	n := len(b.servers)
	for i := 0; i < n; i++ {
		at := (b.next + i) % n
		s := b.servers[at]
		if !candidate(s, backup, exclude) {
			continue
		}
		// (cur+1)/weight compared without division.
		if best == nil || (s.live.cur+1)*best.weight < (best.live.cur+1)*s.weight {
			best, bestAt = s, at
		}
	}
	if best != nil {
		b.next = bestAt + 1
	}
	return best
}

// pickRoundRobin is smooth weighted round robin: each server advances by
// its weight, the furthest ahead is picked and moved back by the total.
func (b *Backend) pickRoundRobin(backup bool, exclude *Server) *Server {
	var best *Server
	total := 0
	for _, s := range b.servers {
		if !candidate(s, backup, exclude) {
			continue
		}
		s.rrCurrent += s.weight
		total += s.weight
		if best == nil || s.rrCurrent > best.rrCurrent {
			best = s
		}
	}
	if best != nil {
		best.rrCurrent -= total
	}
	return best
}

// pickSource hashes the client address over the servers' weights, so a
// client keeps its server while the set of usable servers does not change.
// The hash covers the usable servers whether full or not, so that one
// server reaching its maxconn (or being excluded) moves only its own
// clients: they go to the next server with room, in id order.
func (b *Backend) pickSource(src net.Addr, backup bool, exclude *Server) *Server {
	total := 0
	for _, s := range b.servers {
		if s.cfg.Backup == backup && s.usable() {
			total += s.weight
		}
	}
	if total == 0 {
		return nil
	}
	at := int(hashAddr(src) % uint32(total))
	n := len(b.servers)
	for i, s := range b.servers {
		if s.cfg.Backup != backup || !s.usable() {
			continue
		}
		if at >= s.weight {
			at -= s.weight
			continue
		}
		for j := 0; j < n; j++ {
			if c := b.servers[(i+j)%n]; candidate(c, backup, exclude) {
				return c
			}
		}
		return nil
	}
	return nil
}

// hashAddr is FNV-1a over the IP bytes of a (the port is not part of it).
func hashAddr(a net.Addr) uint32 {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	h := uint32(2166136261)
	for _, c := range ip {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// pickFirst returns the first server, in id order, with a free slot: the
// others get connections only once it is full.
func (b *Backend) pickFirst(backup bool, exclude *Server) *Server {
	for _, s := range b.servers {
		if candidate(s, backup, exclude) {
			return s
		}
	}
	return nil
}

// SetProcessAlive marks the servers whose address is a bind of process n
// down (alive false) or back (alive true), as the master reports that
// process dying or ready. It is faster than any check.
func (b *Backend) SetProcessAlive(n int, alive bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.servers {
		if s.cfg.LocalProcess == n && s.processDown == alive {
			s.processDown = !alive
			s.changed()
		}
	}
	b.serveQueue()
}

// Stats returns the backend's counters.
func (b *Backend) Stats() Counters {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.live.stats
	c.Cur = b.live.cur
	return c
}

// addrOf is what a server dials, under b.mu.
func (b *Backend) addrOf(s *Server) addr.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	return s.addr
}
