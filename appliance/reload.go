package appliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
)

// reloadTimeout bounds how long a reload waits for the children to confirm.
const reloadTimeout = 30 * time.Second

// reload reads and checks the configuration files again, in full, before
// touching anything; a bad file changes nothing and the error says where.
// A good one is pushed to the running children, which swap it in: no process
// is replaced, new binds are opened here and sent over the control sockets,
// binds that are gone are closed.
//
// From a signed bundle, the bundle is verified again and must not go back
// in sequence (see Source.Load); a refused bundle changes nothing either.
func (m *Master) reload(ctx context.Context, restart chan<- *child) error {
	if len(m.src.Files) == 0 {
		return errors.New("reload: this configuration was not read from files")
	}
	ld, warnings, err := m.src.Load(m.bundle, time.Now())
	for _, w := range warnings {
		m.log.Warn(w.String())
	}
	if err != nil {
		return err
	}
	cfg := ld.Config
	if bad := cfg.NotActive(); len(bad) > 0 {
		return &config.Errors{Diags: bad}
	}
	tlsFiles, tlsWarnings, err := readTLS(cfg, ld.FS)
	for _, w := range tlsWarnings {
		m.log.Warn(w)
	}
	if err != nil {
		return err
	}
	if err := m.sockets.open(ctx, cfg); err != nil {
		return err
	}
	if err := m.statsSocks.update(ctx, m, cfg); err != nil {
		return err
	}
	// Keys for new ECH public names, made on a copy: a failed reload
	// keeps the keys (and config ids) of the running configuration.
	oldKeys, keys := m.keys, m.keys.clone()
	if _, err := keys.rotate(cfg, time.Now()); err != nil {
		return fmt.Errorf("reload: rotate TLS keys: %w", err)
	}
	m.keys = keys // the new children get them with the configuration
	why, binaryChanged := "", m.exe.changed()
	switch {
	case cfg.Global.NbProc != m.cfg.Global.NbProc:
		why = fmt.Sprintf("the number of processes changes from %d to %d", m.cfg.Global.NbProc, cfg.Global.NbProc)
	case binaryChanged:
		why = "the binary changed"
	}
	if why != "" {
		if err := m.replaceProcesses(cfg, tlsFiles, restart, why); err != nil {
			m.keys = oldKeys // the old generation keeps serving with them
			return err
		}
		m.certTx = nil // staged against the files just read again
		m.setSource(ld)
		m.startServices(ctx, cfg)
		if binaryChanged {
			m.reexecSoon()
		}
		return nil
	}

	m.setConfig(cfg, tlsFiles)
	// A staged certificate was checked against the files just read again:
	// committing it would bring back an older copy, or one of a file that
	// is gone.
	m.certTx = nil
	// The children have it, or some refused it: either way the master now
	// runs this configuration, and its bundle sets the sequence to beat.
	m.setSource(ld)
	if err := m.push(); err != nil {
		return err
	}
	m.sockets.prune(cfg)
	m.startServices(ctx, cfg)
	m.reloads++
	m.logReloaded()
	return nil
}

// setSource records where the running configuration was read from.
func (m *Master) setSource(ld *Loaded) {
	m.bundle = ld.Bundle
	if err := m.src.remember(ld.Bundle); err != nil {
		m.log.Warn("a restart will accept older bundles", "err", err)
	}
}

// logReloaded says what configuration now runs.
func (m *Master) logReloaded(args ...any) {
	if m.bundle != nil {
		args = append([]any{"bundle", m.src.Bundle, "sequence", m.bundle.Sequence, "signed_by", m.bundle.KeyID}, args...)
	} else {
		args = append([]any{"files", m.src.Files}, args...)
	}
	m.log.Info("configuration reloaded", args...)
}

// push sends the current configuration to the running children and waits
// for each to confirm, or to refuse it. Children not running get it when
// they start.
func (m *Master) push() error {
	pending := make(map[int]bool)
	for num, c := range m.children {
		if c.ctrl == nil || !c.alive() {
			continue // it gets the new configuration when it restarts
		}
		if err := m.sendConfig(c); err != nil {
			m.log.Warn("send configuration", "process", num, "err", err)
			continue
		}
		pending[num] = true
	}

	var refused []string
	deadline := time.NewTimer(reloadTimeout)
	defer deadline.Stop()
	var later []event
	for len(pending) > 0 {
		select {
		case ev := <-m.events:
			if ev.child != m.children[ev.num] || !pending[ev.num] {
				later = append(later, ev)
				continue
			}
			if ev.dead {
				later = append(later, ev)
			} else if ev.err != "" {
				refused = append(refused, fmt.Sprintf("process %d: %s", ev.num, ev.err))
			}
			delete(pending, ev.num)
		case <-deadline.C:
			for num := range pending {
				refused = append(refused, fmt.Sprintf("process %d: no answer within %v", num, reloadTimeout))
			}
			pending = nil
		}
	}
	for _, ev := range later {
		m.handle(ev, m.restart)
	}
	if len(refused) > 0 {
		// Children that took the new configuration keep it; say which did not.
		return fmt.Errorf("reload: %v", refused)
	}
	return nil
}

// sendConfig sends the current configuration to a running child, with the
// listening sockets it does not hold yet attached.
func (m *Master) sendConfig(c *child) error {
	keys, files := m.sockets.filesFor(m.cfg, c.num)
	listeners := make([]control.Listener, len(keys))
	var attach []*os.File
	for i, k := range keys {
		listeners[i] = control.Listener{Key: k}
		if !c.keys[k] {
			listeners[i].Attached, listeners[i].FD = true, len(attach)
			attach = append(attach, files[i])
		}
	}
	if err := c.ctrl.Send(m.configMsg(c.num, listeners), attach...); err != nil {
		return err
	}
	c.keys = make(map[string]bool, len(keys))
	for _, k := range keys {
		c.keys[k] = true
	}
	return nil
}

// configMsg is the message that gives process num the current configuration.
func (m *Master) configMsg(num int, listeners []control.Listener) control.Msg {
	return control.Msg{
		Kind:      control.KindConfig,
		Process:   num,
		Config:    m.cfg,
		Listeners: listeners,
		TLS:       m.tlsMsg(),
		MaxConn:   m.lim.MaxConn,
		Changes:   m.changes.list(),
	}
}

// setConfig makes cfg the running configuration.
func (m *Master) setConfig(cfg *config.Config, tlsFiles *control.TLS) {
	m.changes.rebase(m.cfg, cfg)
	m.mu.Lock()
	m.cfg, m.tls = cfg, tlsFiles
	m.mu.Unlock()
}

// replaceProcesses starts a new generation of children for cfg, with the
// cached sockets, and once every one of them is ready, tells the old ones
// to stop accepting and finish their connections. If the new generation
// cannot start, it is stopped and the old one keeps serving.
func (m *Master) replaceProcesses(cfg *config.Config, tlsFiles *control.TLS, restart chan<- *child, why string) error {
	m.log.Info("starting a new generation of processes", "reason", why, "generation", m.generation+1)
	oldCfg, oldTLS, old := m.cfg, m.tls, m.children
	m.setConfig(cfg, tlsFiles)
	m.generation++
	m.children = make(map[int]*child)
	fail := func(err error) error {
		for _, c := range m.children {
			if c.cmd != nil && c.cmd.Process != nil {
				c.cmd.Process.Kill()
				<-c.exited
			}
		}
		m.children, m.generation = old, m.generation-1
		m.setConfig(oldCfg, oldTLS)
		return fmt.Errorf("reload: new processes (%s): %w", why, err)
	}
	for n := 1; n <= cfg.Global.NbProc; n++ {
		c := &child{num: n, generation: m.generation}
		m.children[n] = c
		if err := m.start(c); err != nil {
			return fail(err)
		}
	}
	pending := make(map[int]bool)
	for n := range m.children {
		pending[n] = true
	}
	deadline := time.NewTimer(reloadTimeout)
	defer deadline.Stop()
	var later []event
	for len(pending) > 0 {
		select {
		case ev := <-m.events:
			if ev.child != m.children[ev.num] {
				later = append(later, ev)
				continue
			}
			switch {
			case ev.dead:
				return fail(fmt.Errorf("process %d exited while starting", ev.num))
			case ev.err != "":
				return fail(fmt.Errorf("process %d: %s", ev.num, ev.err))
			}
			ev.child.ready = true
			delete(pending, ev.num)
		case <-deadline.C:
			return fail(fmt.Errorf("no answer within %v", reloadTimeout))
		}
	}
	for _, c := range old {
		m.retired[c] = true
		if c.ctrl != nil && c.alive() {
			c.ctrl.Send(control.Msg{Kind: control.KindStop})
		}
	}
	for _, ev := range later {
		m.handle(ev, restart)
	}
	m.sockets.prune(cfg)
	m.exe = newBinary(m.exe.path)
	m.reloads++
	m.logReloaded("generation", m.generation)
	return nil
}

// reexecSoon re-executes the master on the new binary once the reload has
// been answered (the master CLI writes its reply after the reload returns).
func (m *Master) reexecSoon() {
	time.AfterFunc(200*time.Millisecond, func() {
		select {
		case m.calls <- func() {
			if err := m.reexec(); err != nil {
				m.log.Error("the master keeps running the old binary", "err", err)
			}
		}:
		case <-m.done:
		}
	})
}
