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
func (m *Master) reload(ctx context.Context, restart chan<- *child) error {
	if len(m.files) == 0 {
		return errors.New("reload: this configuration was not read from files")
	}
	cfg, warnings, err := config.Load(m.files)
	for _, w := range warnings {
		m.log.Warn(w.String())
	}
	if err != nil {
		return err
	}
	if bad := cfg.NotActive(); len(bad) > 0 {
		return &config.Errors{Diags: bad}
	}
	if cfg.Global.NbProc != m.cfg.Global.NbProc {
		return fmt.Errorf("reload: the number of processes changes from %d to %d; that needs a restart", m.cfg.Global.NbProc, cfg.Global.NbProc)
	}
	certs, err := readCerts(cfg)
	if err != nil {
		return err
	}
	if err := m.sockets.open(ctx, cfg); err != nil {
		return err
	}

	m.cfg, m.certs = cfg, certs
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
		m.handle(ev, restart)
	}
	if len(refused) > 0 {
		// Children that took the new configuration keep it; say which did not.
		return fmt.Errorf("reload: %v", refused)
	}
	m.sockets.prune(cfg)
	m.log.Info("configuration reloaded", "files", m.files)
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
		Kind:       control.KindConfig,
		Process:    num,
		Config:     m.cfg,
		Listeners:  listeners,
		Certs:      m.certs,
		MaxConn:    m.lim.MaxConn,
		TicketKeys: m.ticketKeys,
	}
}
