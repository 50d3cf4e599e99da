// Package worker is the runtime of a child process. The master starts one
// per process number; each runs the proxies that have a bind in its process:
// the dispatcher tier (plain TCP, leastconn over the workers, splice) and the
// TLS tier (accept-proxy, TLS termination, tcp or http forwarding) alike.
// A child never reads the configuration file: it receives the compiled
// configuration, its listening sockets and its certificates from the master.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicelb/sluice/control"
	"github.com/sluicelb/sluice/dispatcher"
)

// Process is one child process.
type Process struct {
	num  int
	ctrl *control.Conn
	log  *slog.Logger

	listeners map[string]net.Listener // by addr.Addr.Key, owned by the accept loops
	gen       atomic.Pointer[generation]

	// conns counts established connections, for graceful stops.
	conns sync.WaitGroup
	// slots bounds this process's connections (global maxconn): when it
	// is full, accept loops stop accepting and clients wait in the backlog.
	slots *slots
	// sessions are the established connections, for "show sess".
	sessions sessions
	// keys are the shared TLS keys of the ssl binds.
	keys *keyring
	// handshakes bounds the TLS handshakes computing at a time.
	handshakes *handshakeGate
	// tunnels splices the tcp-mode connections between raw sockets; it
	// starts with the first one. Stopping the process ends them with it.
	tunnels *dispatcher.Loop
	// handoffs passes client sockets between tiers.
	handoffs *handoffs

	// stopping is closed when the process stops accepting.
	stopping chan struct{}
	stopOnce sync.Once
}

// Run is the child's main. ctrl is the control socket inherited from the
// master. It returns when the process has stopped: after a graceful stop
// order, or once the master is gone and established connections are done.
func Run(ctrlFile *os.File, num int, log *slog.Logger) error {
	ctrl, err := control.FromFile(ctrlFile)
	if err != nil {
		return err
	}
	ctrlFile.Close()
	raiseNiceLimit() // before the gate checks it, and before dropping root
	p := &Process{
		num:       num,
		ctrl:      ctrl,
		log:       log.With("process", num),
		listeners: make(map[string]net.Listener),
		stopping:  make(chan struct{}),
		keys:      newKeyring(),
		tunnels:   dispatcher.NewLoop(log.With("process", num)),
	}
	cpus := newCPUs(os.Getenv("GOMAXPROCS") != "")
	// All the CPUs the process may use but one, which stays free for
	// established sessions.
	p.handshakes = newHandshakeGate(cpus.limitOrNow()-1, cpus, p.log)
	p.handoffs = &handoffs{out: dispatcher.NewHandoffs(p.log), p: p}
	return p.run()
}

func (p *Process) run() error {
	raw, err := p.ctrl.Receive()
	if err != nil {
		return fmt.Errorf("receive configuration: %w", err)
	}
	msg, err := control.Decode(raw)
	if err != nil {
		return err
	}
	if msg.Kind != control.KindConfig || msg.Config == nil {
		return fmt.Errorf("first control message is %q, want a configuration", msg.Kind)
	}
	err = p.adoptListeners(msg, raw.Files)
	closeFiles(raw.Files)
	if err != nil {
		return p.refuse(err)
	}
	p.keys.update(msg.TLS)
	g, err := newGeneration(msg, nil, &p.sessions, p.handshakes, p.tunnels, p.handoffs, p.keys, p.log)
	if err != nil {
		return p.refuse(err)
	}
	g.applyAll(msg.Changes)
	p.fitProcs(g)
	p.gen.Store(g)
	p.slots = newSlots(max(msg.MaxConn, 1))
	for _, c := range msg.Changes {
		if c.MaxConnGlobal != nil {
			p.slots.setLimit(*c.MaxConnGlobal) // "set maxconn global" survives a restart
		}
	}

	if err := dropPrivileges(msg.Config.Global.Chroot, msg.Config.Global.UID, msg.Config.Global.GID); err != nil {
		return p.refuse(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g.start(ctx)
	go releaseWhenQuiet(ctx, p.handshakes.cpus)
	for key, ln := range p.listeners {
		go p.acceptLoop(key, ln)
	}
	if err := p.ctrl.Send(control.Msg{Kind: control.KindReady}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	p.log.Debug("serving", "listeners", len(p.listeners))

	p.control(ctx)
	p.stop(p.gen.Load().cfg.Global.HardStopAfter)
	return nil
}

// reload switches to a new configuration without dropping anything:
// connections accepted from now on use it, established ones keep the
// generation they started with. New binds arrive as attached descriptors;
// binds that are gone have their listeners closed.
func (p *Process) reload(ctx context.Context, msg control.Msg, attached []*os.File) error {
	var fresh []string
	want := make(map[string]bool, len(msg.Listeners))
	for _, l := range msg.Listeners {
		want[l.Key] = true
	}
	for _, l := range msg.Listeners {
		if _, ok := p.listeners[l.Key]; ok || !l.Attached {
			continue
		}
		if err := p.adoptListeners(control.Msg{Listeners: []control.Listener{l}}, attached); err != nil {
			p.closeListeners(fresh)
			return err
		}
		fresh = append(fresh, l.Key)
	}
	old := p.gen.Load()
	p.keys.update(msg.TLS)
	g, err := newGeneration(msg, old, &p.sessions, p.handshakes, p.tunnels, p.handoffs, p.keys, p.log)
	if err != nil {
		p.closeListeners(fresh)
		return err
	}
	g.applyAll(msg.Changes)
	g.start(ctx)
	p.fitProcs(g)
	p.gen.Store(g)
	for _, key := range fresh {
		go p.acceptLoop(key, p.listeners[key])
	}
	var gone []string
	for key := range p.listeners {
		if !want[key] {
			gone = append(gone, key)
		}
	}
	p.closeListeners(gone)
	old.retire(g)
	g.prev = nil
	return nil
}

func (p *Process) closeListeners(keys []string) {
	for _, k := range keys {
		if ln, ok := p.listeners[k]; ok {
			ln.Close()
			delete(p.listeners, k)
		}
	}
}

// refuse reports a configuration this process cannot run to the master.
func (p *Process) refuse(err error) error {
	p.ctrl.Send(control.Msg{Kind: control.KindReady, Error: err.Error()})
	return err
}

// adoptListeners turns the descriptors the master passed into listeners.
func (p *Process) adoptListeners(msg control.Msg, attached []*os.File) error {
	for _, l := range msg.Listeners {
		var f *os.File
		if l.Attached {
			if l.FD < 0 || l.FD >= len(attached) {
				return fmt.Errorf("listener %s: no descriptor %d attached", l.Key, l.FD)
			}
			f = attached[l.FD]
		} else {
			f = os.NewFile(uintptr(l.FD), l.Key)
		}
		ln, err := net.FileListener(f) // duplicates the descriptor
		if !l.Attached {
			f.Close()
		}
		if err != nil {
			return fmt.Errorf("listener %s: %w", l.Key, err)
		}
		if tl, ok := ln.(*net.TCPListener); ok {
			// Its tcp-mode connections may go straight to the
			// tunnel loop.
			if ln, err = dispatcher.NewListener(tl); err != nil {
				tl.Close()
				return fmt.Errorf("listener %s: %w", l.Key, err)
			}
		}
		p.listeners[l.Key] = ln
	}
	return nil
}

// control handles the master's messages until the master orders a stop or
// goes away.
func (p *Process) control(ctx context.Context) {
	for {
		raw, err := p.ctrl.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.log.Warn("master is gone; finishing established connections")
			} else {
				p.log.Error("control socket", "err", err)
			}
			return
		}
		msg, err := control.Decode(raw)
		if err != nil {
			p.log.Warn("control message", "err", err)
			closeFiles(raw.Files)
			continue
		}
		switch msg.Kind {
		case control.KindConfig:
			reply := control.Msg{Kind: control.KindReady}
			if err := p.reload(ctx, msg, raw.Files); err != nil {
				p.log.Error("reload refused", "err", err)
				reply.Error = err.Error()
			} else {
				p.log.Info("configuration reloaded")
			}
			p.ctrl.Send(reply)
		case control.KindKeys:
			if msg.Keys != nil {
				p.keys.rotate(*msg.Keys)
			}
		case control.KindPeer:
			p.gen.Load().setProcessAlive(msg.Peer, msg.Alive)
		case control.KindStatsRequest:
			snap := p.snapshot()
			p.ctrl.Send(control.Msg{Kind: control.KindStats, ID: msg.ID, Snapshot: &snap})
		case control.KindChange:
			for _, c := range msg.Changes {
				switch err := p.apply(c); {
				case errors.Is(err, errNotHere):
					p.log.Debug("change for other processes", "err", err)
				case err != nil:
					p.log.Warn("change refused", "err", err)
				}
			}
		case control.KindStop:
			p.log.Info("graceful stop")
			return
		default:
			p.log.Warn("unexpected control message", "kind", msg.Kind)
		}
		closeFiles(raw.Files) // adopted descriptors were duplicated
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// stop closes the listeners, lets established connections finish (bounded
// by hard-stop-after) and returns.
func (p *Process) stop(hardStopAfter time.Duration) {
	p.stopOnce.Do(func() { close(p.stopping) })
	for _, ln := range p.listeners {
		ln.Close()
	}
	g := p.gen.Load()
	g.shutdown()
	done := make(chan struct{})
	go func() {
		p.conns.Wait()
		close(done)
	}()
	var limit <-chan time.Time
	if hardStopAfter > 0 {
		limit = time.After(hardStopAfter)
	}
	select {
	case <-done:
	case <-limit:
		p.log.Warn("hard-stop-after reached, closing remaining connections", "after", hardStopAfter)
	}
}

// acceptLoop accepts connections on one listener until the process stops.
func (p *Process) acceptLoop(key string, ln net.Listener) {
	var backoff time.Duration
	for {
		fe := p.gen.Load().frontends[key]
		if fe == nil {
			return // the bind left the configuration
		}
		// Take the bind's, the frontend's and the process's slots before
		// accepting: at maxconn a listener stops accepting, and new clients
		// wait in the kernel backlog rather than being reset.
		if !p.acquire(fe) {
			return
		}
		c, sock, err := fe.accept(ln)
		if err != nil {
			p.releaseSlots(fe)
			select {
			case <-p.stopping:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: pause, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("accept", "listener", key, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// A reload may have happened while Accept waited: the connection
		// belongs to the configuration in force now, and takes its slots.
		if cur := p.gen.Load().frontends[key]; cur != nil && cur != fe {
			p.releaseSlots(fe)
			if !p.acquire(cur) {
				closeAccepted(c, sock)
				return
			}
			fe = cur
			if sock != nil && !fe.takesSockets() {
				if c, err = sock.Conn(); err != nil { // the socket is closed
					p.releaseSlots(fe)
					p.log.Warn("accept", "listener", key, "err", err)
					continue
				}
				sock = nil
			}
		}
		p.conns.Add(1)
		release := func() {
			p.releaseSlots(fe)
			p.conns.Done()
		}
		if sock != nil {
			go fe.serveSocket(sock, release)
		} else {
			go fe.serve(c, release)
		}
	}
}

func (p *Process) acquire(fe *frontend) bool {
	if !fe.bindSlots.acquire(p.stopping) {
		return false
	}
	if !fe.proxySlots.acquire(p.stopping) {
		fe.bindSlots.release()
		return false
	}
	if !p.slots.acquire(p.stopping) {
		fe.proxySlots.release()
		fe.bindSlots.release()
		return false
	}
	return true
}

// fitProcs gives the process one CPU when it stands for one thread of
// the configuration, or is a dispatcher (every bind takes plain TCP
// clients and forwards them as they come: with more CPUs Go's scheduler
// woke a second thread for each new connection, 18% of the dispatcher's
// CPU per connection); see cpus.
func (p *Process) fitProcs(g *generation) {
	p.handshakes.cpus.setBase(g.oneCPU())
}

// acquireHanded takes the slots of a connection a dispatcher handed over,
// waiting for them even while the process stops.
func (p *Process) acquireHanded(fe *frontend) {
	fe.bindSlots.acquire(nil)
	fe.proxySlots.acquire(nil)
	p.slots.acquire(nil)
}

func (p *Process) releaseSlots(fe *frontend) {
	p.slots.release()
	fe.proxySlots.release()
	fe.bindSlots.release()
}

// dropPrivileges applies chroot, then group and user, as HAProxy does after
// binding: everything the process needs is open by now.
func dropPrivileges(chroot string, uid, gid int) error {
	if chroot != "" {
		if err := syscall.Chroot(chroot); err != nil {
			return fmt.Errorf("chroot %s: %w", chroot, err)
		}
		if err := os.Chdir("/"); err != nil {
			return fmt.Errorf("chdir / in chroot: %w", err)
		}
	}
	if gid >= 0 {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("setgid %d: %w", gid, err)
		}
	}
	if uid >= 0 {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("setuid %d: %w", uid, err)
		}
	}
	return nil
}
