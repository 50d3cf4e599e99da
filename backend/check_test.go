package backend

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/config"
)

// The check sequences follow HAProxy's health counter: a server starts up
// at health = rise (down at its first failure), a fully up server has
// rise+fall-1, and going up jumps there.
func TestCheckRiseFall(t *testing.T) {
	type step struct {
		ok     bool
		health Health
		status string
	}
	up := func(status string) step { return step{true, Up, status} }
	upAfterFail := func(status string) step { return step{false, Up, status} }
	down := func(status string) step { return step{false, Down, status} }
	downAfterOK := func(status string) step { return step{true, Down, status} }
	for _, tc := range []struct {
		name       string
		rise, fall int
		steps      []step
	}{
		{"start then fail", 2, 3, []step{down("DOWN")}},
		{"start, rise to full, fall", 2, 3, []step{
			up("UP 2/3"), up("UP"), up("UP"),
			upAfterFail("UP 2/3"), upAfterFail("UP 1/3"), down("DOWN"), down("DOWN"),
			downAfterOK("DOWN 1/2"), up("UP"),
		}},
		{"a success in between resets the fall", 2, 3, []step{
			up("UP 2/3"), up("UP"),
			upAfterFail("UP 2/3"), up("UP"), upAfterFail("UP 2/3"), upAfterFail("UP 1/3"), up("UP 2/3"),
		}},
		{"a failure while rising starts over", 3, 2, []step{
			down("DOWN"), downAfterOK("DOWN 1/3"), downAfterOK("DOWN 2/3"), down("DOWN"),
			downAfterOK("DOWN 1/3"), downAfterOK("DOWN 2/3"), up("UP"), upAfterFail("UP 1/2"), down("DOWN"),
		}},
		{"rise 1 fall 1", 1, 1, []step{up("UP"), down("DOWN"), up("UP"), down("DOWN")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(proxy(config.BalanceRoundRobin, srv(t, 1, "s", check, func(s *config.Server) {
				s.Rise, s.Fall = tc.rise, tc.fall
			})), nil)
			s := b.Server("s")
			if st := s.State(); st.CheckStatus != "INI" || st.Health != Up {
				t.Fatalf("initial state %+v", st)
			}
			fails, downs := 0, 0
			for i, st := range tc.steps {
				status := "L4OK"
				if !st.ok {
					status = "L4CON"
					fails++
				}
				was, now := s.checkResult(st.ok, status, time.Millisecond)
				if was == Up && now == Down {
					downs++
				}
				state := s.State()
				if now != st.health || state.Health != st.health {
					t.Fatalf("step %d (ok=%v): health %v, want %v", i, st.ok, now, st.health)
				}
				if got := state.Status(s.Config()); got != st.status {
					t.Fatalf("step %d (ok=%v): status %q, want %q", i, st.ok, got, st.status)
				}
				if state.CheckStatus != status || state.CheckTime != time.Millisecond {
					t.Fatalf("step %d: check %q %v", i, state.CheckStatus, state.CheckTime)
				}
			}
			c := s.State().Counters
			if c.CheckFails != int64(fails) || c.CheckDowns != int64(downs) {
				t.Errorf("CheckFails %d CheckDowns %d, want %d %d", c.CheckFails, c.CheckDowns, fails, downs)
			}
		})
	}
}

// RunChecks against a real listener: closing it takes the server down with
// L4CON, listening again brings it back.
func TestRunChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptAndClose(ln)
	a, err := addr.Parse(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := srv(t, 1, "s", check, func(s *config.Server) { s.Addr, s.Inter = a, 10*time.Millisecond })
	p := proxy(config.BalanceRoundRobin, sc, srv(t, 2, "nocheck"))
	p.Timeouts.Connect = time.Second
	b := New(p, nil)
	s := b.Server("s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.RunChecks(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	const within = 10 * time.Second
	eventually(t, within, "the server fully up", func() bool {
		st := s.State()
		return st.CheckStatus == "L4OK" && st.Status(sc) == "UP"
	})
	ln.Close()
	eventually(t, within, "the server down after its listener closed", func() bool {
		return s.State().Health == Down
	})
	st := s.State()
	if st.CheckStatus != "L4CON" || st.Counters.CheckDowns != 1 || st.Counters.CheckFails < 3 {
		t.Errorf("down state: status %q, %d downs, %d fails", st.CheckStatus, st.Counters.CheckDowns, st.Counters.CheckFails)
	}
	for i := 0; i < 10; i++ {
		if got := acquire(t, b, client(i)); got == s {
			t.Fatal("down server picked")
		} else {
			got.Release()
		}
	}
	ln2, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", ln.Addr(), err)
	}
	defer ln2.Close()
	go acceptAndClose(ln2)
	eventually(t, within, "the server back up", func() bool { return s.State().Health == Up })
	if st := b.Server("nocheck").State(); st.CheckStatus != "" || st.Status(b.Server("nocheck").Config()) != "no check" {
		t.Errorf("server without check: %+v", st)
	}

}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// A check that gets no answer reports L4TOUT and takes the server down.
func TestCheckTimeout(t *testing.T) {
	// 192.0.2.0/24 is TEST-NET-1: nothing answers, unless the network
	// refuses the route at once.
	a, _ := addr.Parse("192.0.2.1:9")
	sc := srv(t, 1, "s", check, func(s *config.Server) { s.Addr, s.Inter = a, 50*time.Millisecond })
	b := New(proxy(config.BalanceRoundRobin, sc), nil)
	s := b.Server("s")
	s.check(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	st := s.State()
	if !strings.HasPrefix(st.CheckStatus, "L4") || st.Health != Down {
		t.Fatalf("state %+v", st)
	}
	if st.CheckStatus != "L4TOUT" {
		t.Logf("unroutable address gave %s (no timeout on this network)", st.CheckStatus)
	}
}
