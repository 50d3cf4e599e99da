package appliance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
	"github.com/sluicelb/sluice/runtimeapi"
)

// Version is the version the runtime API reports; cmd/sluice sets it.
var Version = "dev"

// statsTimeout bounds how long a stats request waits for the children.
const statsTimeout = 2 * time.Second

// errStopped answers runtime calls once the master is stopping.
var errStopped = errors.New("the master is stopping")

// call runs f on the master's loop, which owns the master's state, and
// waits for it.
func (m *Master) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case m.calls <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return errStopped
	}
	select {
	case <-done:
		return nil
	case <-m.done:
		return errStopped
	}
}

// Config is the configuration running now.
func (m *Master) Config() *config.Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Info describes the master and its children.
func (m *Master) Info() runtimeapi.Info {
	var info runtimeapi.Info
	m.call(context.Background(), func() {
		info = runtimeapi.Info{
			Version:    Version,
			PID:        os.Getpid(),
			Started:    m.started,
			MaxConn:    m.lim.MaxConn,
			MaxSock:    m.lim.MaxSock,
			Reloads:    m.reloads,
			Generation: m.generation,
		}
		for n := 1; n <= m.cfg.Global.NbProc; n++ {
			c := m.children[n]
			if c == nil {
				continue
			}
			pi := runtimeapi.ProcessInfo{
				Num: n, Role: role(m.cfg, n), Generation: c.generation,
				Started: c.started, Restarts: c.restarts, Alive: c.alive(),
			}
			if c.cmd != nil && c.cmd.Process != nil {
				pi.PID = c.cmd.Process.Pid
			}
			info.Processes = append(info.Processes, pi)
		}
	})
	return info
}

// role names what process n does from the binds it accepts on: TLS or
// PROXY-header binds make a worker, plain ones a dispatcher.
func role(cfg *config.Config, n int) string {
	var worker, dispatcher bool
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			if !b.AcceptsIn(n) {
				continue
			}
			if b.SSL || b.AcceptProxy {
				worker = true
			} else {
				dispatcher = true
			}
		}
	}
	switch {
	case worker && dispatcher:
		return "worker+dispatcher"
	case dispatcher:
		return "dispatcher"
	case worker:
		return "worker"
	}
	return "idle" // no bind accepts in this process
}

// Snapshots asks every live child for its counters and state.
func (m *Master) Snapshots(ctx context.Context) ([]runtimeapi.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	var waits []chan runtimeapi.Snapshot
	err := m.call(ctx, func() {
		for n := 1; n <= m.cfg.Global.NbProc; n++ {
			c := m.children[n]
			if c == nil || c.ctrl == nil || !c.ready || !c.alive() {
				continue
			}
			id, ch := m.stats.expect()
			if err := c.ctrl.Send(control.Msg{Kind: control.KindStatsRequest, ID: id}); err != nil {
				m.stats.forget(id)
				continue
			}
			waits = append(waits, ch)
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]runtimeapi.Snapshot, 0, len(waits))
	for _, ch := range waits {
		select {
		case s := <-ch:
			out = append(out, s)
		case <-ctx.Done():
			return out, fmt.Errorf("waiting for process statistics: %w", ctx.Err())
		}
	}
	return out, nil
}

// Apply makes a change in every process and, when it is a state (not an
// action like "shutdown sessions"), keeps it for children that restart
// and configurations that follow.
func (m *Master) Apply(ctx context.Context, c runtimeapi.Change) error {
	return m.call(ctx, func() {
		c = m.withPort(c)
		m.changes.record(c)
		m.checks.follow(c)
		if c.FQDN != nil {
			m.startResolution(m.runCtx, m.cfg) // resolve the new name from now on
		}
		msg := control.Msg{Kind: control.KindChange, Changes: []runtimeapi.Change{c}}
		for n, ch := range m.children {
			if ch.ctrl == nil || !ch.alive() {
				continue
			}
			if err := ch.ctrl.Send(msg); err != nil {
				m.log.Warn("send change", "process", n, "err", err)
			}
		}
	})
}

// withPort completes "set server addr IP" with the server's current port,
// so that every process, and a child that restarts later, uses the same
// address.
func (m *Master) withPort(c runtimeapi.Change) runtimeapi.Change {
	if c.Addr == nil {
		return c
	}
	if _, _, err := net.SplitHostPort(*c.Addr); err == nil {
		return c
	}
	port := 0
	if sc := findServer(m.cfg, c.Backend, c.Server); sc != nil {
		port = sc.Addr.Port
	}
	if prev, ok := m.changes.entries[changeKey(c)]; ok {
		if _, p, err := net.SplitHostPort(*prev.change.Addr); err == nil {
			port, _ = strconv.Atoi(p)
		}
	}
	full := net.JoinHostPort(strings.Trim(*c.Addr, "[]"), strconv.Itoa(port))
	c.Addr = &full
	return c
}

// pendingStats routes the children's stats answers to the requests waiting
// for them.
type pendingStats struct {
	mu    sync.Mutex
	next  uint64
	waits map[uint64]chan runtimeapi.Snapshot
}

func (p *pendingStats) expect() (uint64, chan runtimeapi.Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waits == nil {
		p.waits = make(map[uint64]chan runtimeapi.Snapshot)
	}
	p.next++
	ch := make(chan runtimeapi.Snapshot, 1)
	p.waits[p.next] = ch
	return p.next, ch
}

func (p *pendingStats) forget(id uint64) {
	p.mu.Lock()
	delete(p.waits, id)
	p.mu.Unlock()
}

func (p *pendingStats) deliver(id uint64, s runtimeapi.Snapshot) {
	p.mu.Lock()
	ch, ok := p.waits[id]
	delete(p.waits, id)
	p.mu.Unlock()
	if ok {
		ch <- s
	}
}

// changeLog is the operational state set at run time, as the changes that
// made it, latest per server and kind. It is sent with every configuration
// so that restarted children and reloaded configurations keep it.
type changeLog struct {
	seq     int
	entries map[string]loggedChange
}

type loggedChange struct {
	seq    int
	change runtimeapi.Change
}

// key identifies what a change sets; actions (shutdown, clear) have none
// and are not kept.
func changeKey(c runtimeapi.Change) string {
	target := c.Backend + "/" + c.Server
	switch {
	case c.Admin != nil:
		return target + " admin"
	case c.Health != nil:
		return target + " health"
	case c.Check != nil:
		return target + " check"
	case c.Resolved != nil:
		return target + " resolved"
	case c.FQDN != nil:
		return target + " fqdn"
	case c.AgentUp != nil:
		return target + " agent"
	case c.Weight != nil:
		return target + " weight"
	case c.Addr != nil:
		return target + " addr"
	case c.MaxConnServer != nil:
		return target + " maxconn"
	case c.MaxConnFrontend != nil:
		return "frontend " + c.Frontend + " maxconn"
	case c.MaxConnGlobal != nil:
		return "global maxconn"
	}
	return ""
}

func (l *changeLog) record(c runtimeapi.Change) {
	key := changeKey(c)
	if key == "" {
		return
	}
	if l.entries == nil {
		l.entries = make(map[string]loggedChange)
	}
	l.seq++
	l.entries[key] = loggedChange{seq: l.seq, change: c}
}

// list returns the changes in force, oldest first.
func (l *changeLog) list() []runtimeapi.Change {
	all := make([]loggedChange, 0, len(l.entries))
	for _, e := range l.entries {
		all = append(all, e)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	out := make([]runtimeapi.Change, len(all))
	for i, e := range all {
		out[i] = e.change
	}
	return out
}

// rebase drops what a new configuration makes meaningless: changes to
// servers or frontends that are gone, and run-time weights or addresses of
// servers whose configured weight or address changed (the configuration
// wins then, as with HAProxy's server state).
func (l *changeLog) rebase(old, cfg *config.Config) {
	for key, e := range l.entries {
		c := e.change
		if c.MaxConnGlobal != nil {
			continue
		}
		if c.MaxConnFrontend != nil {
			if p := cfg.Proxy(c.Frontend); p == nil || !p.Frontend {
				delete(l.entries, key)
			}
			continue
		}
		now, was := findServer(cfg, c.Backend, c.Server), findServer(old, c.Backend, c.Server)
		switch {
		case now == nil:
			delete(l.entries, key)
		case c.Weight != nil && (was == nil || was.Weight != now.Weight):
			delete(l.entries, key)
		case c.Addr != nil && (was == nil || was.Addr.Key() != now.Addr.Key()):
			delete(l.entries, key)
		case c.Admin != nil && (was == nil || was.Disabled != now.Disabled):
			delete(l.entries, key) // "disabled" added or removed: the configuration says
		}
	}
}

func findServer(cfg *config.Config, backend, server string) *config.Server {
	p := cfg.Proxy(backend)
	if p == nil {
		return nil
	}
	for _, s := range p.Servers {
		if s.Name == server {
			return s
		}
	}
	return nil
}
