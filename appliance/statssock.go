package appliance

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/runtimeapi"
)

// statsSockets are the runtime API sockets ("stats socket" lines), served
// by the master: it sees every process, so what it answers is aggregated
// and what it changes applies everywhere.
type statsSockets struct {
	open map[string]*statsSocket // by the line's address, mode, owner and level
}

type statsSocket struct {
	ln     net.Listener
	addr   string // addr.Addr.Key of the socket
	cancel context.CancelFunc
}

// socketKey says when a socket must be reopened: its line or the stats
// timeout changed.
func socketKey(s config.StatsSocket, timeout time.Duration) string {
	return fmt.Sprintf("%s mode=%o uid=%d gid=%d level=%s timeout=%v", s.Addr.Key(), s.Mode, s.UID, s.GID, s.Level, timeout)
}

// update makes the open sockets those of cfg: new lines are opened and
// served, lines that are gone are closed, unchanged ones keep serving.
// Nothing changes when a new socket cannot be opened.
func (ss *statsSockets) update(ctx context.Context, m *Master, cfg *config.Config) error {
	want := make(map[string]config.StatsSocket)
	for _, s := range cfg.Global.StatsSockets {
		want[socketKey(s, cfg.Global.StatsTimeout)] = s
	}
	if ss.open == nil {
		ss.open = make(map[string]*statsSocket)
	}
	// A socket whose address stays but whose options change is closed
	// first, so that its address is free for the new one.
	reused := make(map[string]bool)
	for _, s := range want {
		reused[s.Addr.Key()] = true
	}
	for key, s := range ss.open {
		if _, ok := want[key]; !ok && reused[s.addr] {
			s.close()
			delete(ss.open, key)
		}
	}
	fresh := make(map[string]*statsSocket)
	for key, s := range want {
		if _, ok := ss.open[key]; ok {
			continue
		}
		ln, err := listenStats(ctx, s)
		if err != nil {
			for _, f := range fresh {
				f.ln.Close()
			}
			return err
		}
		fresh[key] = &statsSocket{ln: ln, addr: s.Addr.Key()}
	}
	for key, s := range ss.open {
		if _, ok := want[key]; !ok {
			s.close()
			delete(ss.open, key)
		}
	}
	for key, s := range fresh {
		sctx, cancel := context.WithCancel(ctx)
		s.cancel = cancel
		ss.open[key] = s
		level, timeout := want[key].Level, cfg.Global.StatsTimeout
		go func() {
			if err := runtimeapi.Serve(sctx, s.ln, level, m, timeout, m.log); err != nil && sctx.Err() == nil {
				m.log.Error("stats socket stopped", "addr", s.ln.Addr().String(), "err", err)
			}
		}()
	}
	return nil
}

func (s *statsSocket) close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.ln.Close()
}

func (ss *statsSockets) closeAll() {
	for key, s := range ss.open {
		s.close()
		delete(ss.open, key)
	}
}

// listenStats opens a stats socket with its file mode and owner.
func listenStats(ctx context.Context, s config.StatsSocket) (net.Listener, error) {
	ln, err := s.Addr.Listen(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: stats socket: %w", s.Pos.File, s.Pos.Line, err)
	}
	if s.Addr.Family != addr.Unix {
		return ln, nil
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true) // the master alone serves it
	}
	if s.Mode != 0 {
		if err := os.Chmod(s.Addr.Name, os.FileMode(s.Mode)); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s:%d: stats socket mode: %w", s.Pos.File, s.Pos.Line, err)
		}
	}
	if s.UID >= 0 || s.GID >= 0 {
		if err := os.Chown(s.Addr.Name, s.UID, s.GID); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s:%d: stats socket owner: %w", s.Pos.File, s.Pos.Line, err)
		}
	}
	return ln, nil
}
