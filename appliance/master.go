// Package appliance is the master process: it loads the configuration, owns
// every listening socket (the socket cache), starts and supervises one child
// process per process number, and stops them.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sluicelb/sluice/bundle"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
)

// ChildEnv is the environment variable that tells the binary it is a child
// and which process number it runs; its control socket is descriptor 3.
const ChildEnv = "SLUICE_CHILD"

// controlFD is the control socket's descriptor number in a child.
const controlFD = 3

// Restart pacing for children that die: a child that lived less than
// quickDeath is restarted after a delay that doubles up to maxBackoff.
const (
	quickDeath   = 2 * time.Second
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 10 * time.Second
	reportAfter  = 5 // consecutive quick deaths before saying the child keeps dying
)

// Master runs the children of one configuration.
type Master struct {
	src Source // where the configuration is read again at each reload
	// bundle is the running bundle (nil for files), whose sequence a
	// reload must not go back from.
	bundle *bundle.Bundle
	exe    binary
	log    *slog.Logger
	cfg    *config.Config
	tls    *control.TLS // files of the ssl binds and servers; keys are in keys
	lim    limits
	// keys are the TLS keys shared by every worker's binds (session
	// tickets, ECH), rotated by the master and kept across reloads,
	// restarts and upgrades.
	keys keyState

	sockets  *socketCache
	children map[int]*child
	// retired are children of older generations, draining their
	// connections after a reload replaced them.
	retired  map[*child]bool
	events   chan event
	stopping bool

	// mu guards cfg for readers outside the loop (the runtime API);
	// the loop is its only writer.
	mu sync.Mutex
	// calls run functions on the loop for the runtime API; done is closed
	// when the loop ends.
	calls      chan func()
	done       chan struct{}
	started    time.Time
	reloads    int
	generation int
	stats      pendingStats
	changes    changeLog
	restart    chan *child // restarts scheduled by handle, run by the loop
	statsSocks statsSockets
	checks     checks
	resolution resolution
	runCtx     context.Context // Run's context, for what the master starts at run time
	pages      statsPages
	notify     notifier
	cliPath    string  // the master CLI socket (-S), "" for none
	certTx     *certTx // the runtime API's certificate transaction, nil for none
}

// child is one running (or restarting) child process.
type child struct {
	num        int
	cmd        *exec.Cmd
	ctrl       *control.Conn
	started    time.Time
	ready      bool
	restarts   int             // total restarts since the master started
	generation int             // the process generation it belongs to
	quick      int             // consecutive quick deaths
	backoff    time.Duration   // delay before the next restart
	exited     chan struct{}   // closed once the process is reaped
	keys       map[string]bool // the listening sockets the child holds
}

// alive reports whether the child's process is running.
func (c *child) alive() bool {
	if c.exited == nil {
		return false
	}
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// event is something that happened to a child, handled by the master's loop.
type event struct {
	num   int
	child *child
	ready bool   // the child reported its configuration running
	err   string // the child's error with its ready message, if any
	dead  bool   // the child's control socket closed
}

// NewLoaded prepares a master for a loaded configuration: it checks what
// the file check cannot (certificates), sizes the descriptor limit and
// opens every socket. exe is the binary children run (normally
// /proc/self/exe).
func NewLoaded(ctx context.Context, ld *Loaded, exe string, log *slog.Logger) (*Master, error) {
	cfg := ld.Config
	if bad := cfg.NotActive(); len(bad) > 0 {
		return nil, &config.Errors{Diags: bad}
	}
	tlsFiles, warnings, err := readTLS(cfg, ld.FS)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		return nil, err
	}
	lim, err := sizeLimits(cfg)
	if err != nil {
		return nil, err
	}
	if lim.Warning != "" {
		log.Warn(lim.Warning)
	}
	if err := ld.Source.remember(ld.Bundle); err != nil {
		log.Warn("a restart will accept older bundles", "err", err)
	}
	m := &Master{
		src:        ld.Source,
		bundle:     ld.Bundle,
		exe:        newBinary(exe),
		log:        log,
		cfg:        cfg,
		tls:        tlsFiles,
		lim:        lim,
		sockets:    newSocketCache(),
		children:   make(map[int]*child),
		retired:    make(map[*child]bool),
		events:     make(chan event, 16),
		calls:      make(chan func()),
		done:       make(chan struct{}),
		started:    time.Now(),
		generation: 1,
		notify:     notifier{log: log},
	}
	h, err := takeHandoff()
	if err != nil {
		return nil, err
	}
	if h != nil {
		// A re-executed master: the sockets, children and state are the
		// previous image's.
		if err := m.adopt(h); err != nil {
			return nil, err
		}
	} else if err := m.loadServerState(cfg); err != nil {
		return nil, err
	}
	if _, err := m.keys.rotate(cfg, time.Now()); err != nil {
		return nil, err
	}
	if err := m.sockets.open(ctx, cfg); err != nil {
		return nil, err
	}
	if err := m.statsSocks.update(ctx, m, cfg); err != nil {
		m.sockets.closeAll()
		return nil, err
	}
	return m, nil
}

// Run starts the children and supervises them until ctx ends or a stop
// signal arrives: SIGTERM or SIGINT stop at once, SIGUSR1 stops gracefully
// (listeners closed, established connections finish, bounded by
// hard-stop-after).
func (m *Master) Run(ctx context.Context) error {
	defer m.sockets.closeAll()
	defer m.statsSocks.closeAll()
	defer m.pages.closeAll()
	defer close(m.done)
	if pf := m.cfg.Global.PidFile; pf != "" {
		if err := os.WriteFile(pf, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("write pidfile: %w", err)
		}
		defer os.Remove(pf)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP)
	defer signal.Stop(sigs)

	for n := 1; n <= m.cfg.Global.NbProc; n++ {
		if m.children[n] != nil {
			go m.watch(m.children[n], m.children[n].ctrl) // adopted from the previous image
			continue
		}
		c := &child{num: n, generation: m.generation}
		m.children[n] = c
		if err := m.start(c); err != nil {
			m.stopAll(syscall.SIGKILL)
			return err
		}
	}

	for c := range m.retired {
		go m.watch(c, c.ctrl) // adopted from the previous image
	}
	restart := make(chan *child)
	m.restart = restart
	m.runCtx = ctx
	m.startServices(ctx, m.cfg)
	m.notify.started(m) // children adopted from the previous image are ready already
	rotation := time.NewTimer(time.Until(m.keys.nextRotation()))
	defer rotation.Stop()
	for {
		select {
		case <-rotation.C:
			m.rotateKeys()
			rotation.Reset(time.Until(m.keys.nextRotation()))
		case <-ctx.Done():
			m.notify.stopping()
			m.stopAll(syscall.SIGTERM)
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGUSR2 || sig == syscall.SIGHUP {
				m.reloadLogged(ctx)
				continue
			}
			m.notify.stopping()
			if sig == syscall.SIGUSR1 {
				m.log.Info("graceful stop requested")
				m.stopGracefully()
			} else {
				m.log.Info("stopping", "signal", sig.String())
				m.stopAll(syscall.SIGTERM)
			}
			return nil
		case ev := <-m.events:
			m.handle(ev, restart)
		case f := <-m.calls:
			f()
		case c := <-restart:
			if m.stopping || c != m.children[c.num] {
				continue
			}
			if err := m.start(c); err != nil {
				m.log.Error("restart failed", "process", c.num, "err", err)
				m.scheduleRestart(c, restart)
			}
		}
	}
}

func (m *Master) handle(ev event, restart chan<- *child) {
	c := ev.child
	if m.retired[c] {
		if ev.dead {
			<-c.exited
			m.log.Info("old process exited", "process", c.num, "generation", c.generation, "pid", c.cmd.Process.Pid)
			delete(m.retired, c)
		}
		return
	}
	if c != m.children[ev.num] {
		return
	}
	switch {
	case ev.ready:
		if ev.err != "" {
			m.log.Error("process refused its configuration", "process", c.num, "err", ev.err)
			return
		}
		c.ready = true
		m.log.Info("process ready", "process", c.num, "pid", c.cmd.Process.Pid)
		m.tellPeers(c.num, true)
		m.notify.started(m)
	case ev.dead:
		<-c.exited
		state := c.cmd.ProcessState
		m.log.Warn("process exited", "process", c.num, "pid", c.cmd.Process.Pid, "status", state.String())
		c.ready = false
		m.tellPeers(c.num, false)
		if m.stopping {
			return
		}
		if time.Since(c.started) < quickDeath {
			c.quick++
			c.backoff = min(max(2*c.backoff, firstBackoff), maxBackoff)
		} else {
			c.quick, c.backoff = 0, 0
		}
		if c.quick >= reportAfter {
			m.log.Error("process keeps dying", "process", c.num, "quick_deaths", c.quick, "next_try_in", c.backoff)
		}
		m.scheduleRestart(c, restart)
	}
}

func (m *Master) scheduleRestart(c *child, restart chan<- *child) {
	c.restarts++
	time.AfterFunc(c.backoff, func() { restart <- c })
}

// tellPeers tells every other running child that process n died or is ready.
func (m *Master) tellPeers(n int, alive bool) {
	for num, c := range m.children {
		if num == n || c.ctrl == nil {
			continue
		}
		if err := c.ctrl.Send(control.Msg{Kind: control.KindPeer, Peer: n, Alive: alive}); err != nil {
			m.log.Debug("tell peer", "process", num, "err", err)
		}
	}
}

// start starts (or restarts) the child process for c.num and sends it its
// configuration.
func (m *Master) start(c *child) error {
	ctrl, theirs, err := control.Pair()
	if err != nil {
		return err
	}
	defer theirs.Close()

	keys, files := m.sockets.filesFor(m.cfg, c.num)
	cmd := exec.Command(m.exe.path)
	cmd.Env = append(os.Environ(), ChildEnv+"="+strconv.Itoa(c.num))
	if m.log.Enabled(context.Background(), slog.LevelDebug) {
		cmd.Env = append(cmd.Env, "SLUICE_DEBUG=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = append([]*os.File{theirs}, files...)
	// A child gets its own process group, so that a terminal's ^C reaches
	// the master only and the master decides how children stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	if err := startPinned(m.cfg.Global.CPUMap[c.num], cmd.Start); err != nil {
		ctrl.Close()
		return fmt.Errorf("start process %d: %w", c.num, err)
	}
	listeners := make([]control.Listener, len(keys))
	for i, k := range keys {
		listeners[i] = control.Listener{Key: k, FD: controlFD + 1 + i}
	}
	c.cmd, c.ctrl, c.started, c.ready = cmd, ctrl, time.Now(), false
	c.keys = make(map[string]bool, len(keys))
	for _, k := range keys {
		c.keys[k] = true
	}
	c.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		close(c.exited)
	}()
	go m.watch(c, ctrl)

	if err := ctrl.Send(m.configMsg(c.num, listeners)); err != nil {
		// The child died already; watch reports it and it is restarted.
		m.log.Warn("send configuration", "process", c.num, "err", err)
	}
	return nil
}

// watch reads a child's control socket until it closes, which is how the
// master learns at once that the child died.
func (m *Master) watch(c *child, ctrl *control.Conn) {
	for {
		raw, err := ctrl.Receive()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				m.log.Debug("control socket", "process", c.num, "err", err)
			}
			ctrl.Close()
			m.events <- event{num: c.num, child: c, dead: true}
			return
		}
		for _, f := range raw.Files {
			f.Close() // children send no descriptors
		}
		msg, err := control.Decode(raw)
		if err != nil {
			m.log.Warn("control message", "process", c.num, "err", err)
			continue
		}
		switch msg.Kind {
		case control.KindReady:
			m.events <- event{num: c.num, child: c, ready: true, err: msg.Error}
		case control.KindStats:
			if msg.Snapshot != nil {
				m.stats.deliver(msg.ID, *msg.Snapshot)
			}
		}
	}
}

// stopAll signals every child and waits for them.
func (m *Master) stopAll(sig syscall.Signal) {
	m.stopping = true
	for _, c := range m.all() {
		if c.cmd != nil && c.cmd.Process != nil {
			c.cmd.Process.Signal(sig)
		}
	}
	m.waitChildren(5 * time.Second)
}

// stopGracefully asks every child to stop accepting and finish its
// connections, waits for them up to hard-stop-after, then kills the rest.
func (m *Master) stopGracefully() {
	m.stopping = true
	for _, c := range m.all() {
		if c.ctrl != nil {
			c.ctrl.Send(control.Msg{Kind: control.KindStop})
		}
	}
	limit := m.cfg.Global.HardStopAfter
	if limit == 0 {
		limit = 1<<63 - 1
	}
	if !m.waitChildren(limit) {
		m.log.Warn("hard-stop-after reached, killing remaining processes", "after", limit)
		m.stopAll(syscall.SIGKILL)
	}
}

// waitChildren waits until every child has exited or the timeout passes.
func (m *Master) waitChildren(timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, c := range m.all() {
		if c.exited == nil {
			continue
		}
		select {
		case <-c.exited:
		case <-deadline.C:
			return false
		}
	}
	return true
}

// all returns every child: the current generation and the retired ones.
func (m *Master) all() []*child {
	out := make([]*child, 0, len(m.children)+len(m.retired))
	for _, c := range m.children {
		out = append(out, c)
	}
	for c := range m.retired {
		out = append(out, c)
	}
	return out
}
