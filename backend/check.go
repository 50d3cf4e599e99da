package backend

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"time"
)

// CheckState is what a server's checks have found: the health, HAProxy's
// rise/fall counter, the last check's status code and duration. The master
// runs the checks once per server and shares it with every process.
type CheckState struct {
	Health  Health        `json:"health"`
	Counter int           `json:"counter"`
	Status  string        `json:"status"`
	Took    time.Duration `json:"took"`
	Fails   int64         `json:"fails"` // failed checks so far
	Downs   int64         `json:"downs"` // up to down transitions so far
}

// RunChecks runs the connect checks of the servers that have "check",
// every "inter", until ctx is done. report, if not nil, is called with a
// server's check state each time a check changes it.
func (b *Backend) RunChecks(ctx context.Context, log *slog.Logger, report func(*Server, CheckState)) {
	for _, s := range b.servers {
		if s.cfg.Check {
			go s.runChecks(ctx, log, report)
		}
	}
}

// CheckState returns the server's check state.
func (s *Server) CheckState() CheckState {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return CheckState{Health: s.health, Counter: s.checkHealth, Status: s.checkStatus, Took: s.checkTime,
		Fails: s.live.stats.CheckFails, Downs: s.live.stats.CheckDowns}
}

// SetCheckState applies a check state found elsewhere (by the master's
// checks).
func (s *Server) SetCheckState(c CheckState) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.health != c.Health {
		s.health = c.Health
		s.changed()
	}
	s.checkHealth, s.checkStatus, s.checkTime = c.Counter, c.Status, c.Took
	s.live.stats.CheckFails, s.live.stats.CheckDowns = c.Fails, c.Downs
	for g := s.b; g != nil; g = g.newer {
		g.serveQueue()
	}
}

func (s *Server) runChecks(ctx context.Context, log *slog.Logger, report func(*Server, CheckState)) {
	inter := s.cfg.Inter
	if inter <= 0 {
		inter = 2 * time.Second
	}
	// Spread the first checks so that many servers are not checked at once.
	t := time.NewTimer(rand.N(inter))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := s.CheckState()
		s.check(ctx, log)
		if now := s.CheckState(); report != nil && (now.Health != before.Health || now.Counter != before.Counter || now.Status != before.Status || now.Fails != before.Fails) {
			report(s, now)
		}
		t.Reset(inter)
	}
}

// check runs one connect check and applies its result.
func (s *Server) check(ctx context.Context, log *slog.Logger) {
	s.b.mu.Lock()
	unresolved := s.unresolved
	s.b.mu.Unlock()
	if unresolved {
		return // no address to check until DNS gives one
	}
	timeout := s.cfg.Inter
	if c := s.b.proxy.Timeouts.Connect; c > 0 && c < timeout {
		timeout = c
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	start := time.Now()
	c, err := s.Addr().Dial(ctx, timeout)
	took := time.Since(start)
	if ctx.Err() != nil {
		if c != nil {
			c.Close()
		}
		return
	}
	status := "L4OK"
	if err == nil {
		c.Close()
	} else if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
		status = "L4TOUT"
	} else {
		status = "L4CON"
	}
	if was, now := s.checkResult(err == nil, status, took); was != now {
		log.Warn("server state changed by check", "backend", s.b.proxy.Name, "server", s.cfg.Name,
			"state", now.String(), "check", status, "err", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkResult applies a check result with HAProxy's rise/fall counting and
// returns the health before and after.
func (s *Server) checkResult(ok bool, status string, took time.Duration) (was, now Health) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	was = s.health
	s.checkStatus, s.checkTime = status, took
	rise, fall := s.cfg.Rise, s.cfg.Fall
	if ok {
		if s.checkHealth < rise+fall-1 {
			s.checkHealth++
		}
		if s.health == Down && s.checkHealth >= rise {
			s.checkHealth = rise + fall - 1
			s.health = Up
			s.changed()
			s.b.serveQueue()
		}
		return was, s.health
	}
	s.live.stats.CheckFails++
	if s.checkHealth > rise {
		s.checkHealth--
		return was, s.health
	}
	s.checkHealth = 0
	if s.health != Down {
		s.health = Down
		s.live.stats.CheckDowns++
		s.changed()
		// With the last active server down, the backups take the queue.
		s.b.serveQueue()
	}
	return was, s.health
}
