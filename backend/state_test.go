package backend

import (
	"context"
	"testing"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/config"
)

func TestStatus(t *testing.T) {
	withCheck := &config.Server{Name: "c", Check: true, Rise: 2, Fall: 3, Weight: 1}
	noCheck := &config.Server{Name: "n", Rise: 2, Fall: 3, Weight: 1}
	for _, tc := range []struct {
		name string
		st   State
		sc   *config.Server
		want string
	}{
		{"fully up", State{CheckHealth: 4}, withCheck, "UP"},
		{"just started", State{CheckHealth: 2}, withCheck, "UP 1/3"},
		{"one failure", State{CheckHealth: 3}, withCheck, "UP 2/3"},
		{"down", State{Health: Down}, withCheck, "DOWN"},
		{"down, rising", State{Health: Down, CheckHealth: 1}, withCheck, "DOWN 1/2"},
		{"down without check", State{Health: Down}, noCheck, "DOWN"},
		{"maint", State{Admin: Maint, CheckHealth: 4}, withCheck, "MAINT"},
		{"maint wins over down", State{Admin: Maint, Health: Down}, withCheck, "MAINT"},
		{"drain", State{Admin: Drain, CheckHealth: 4}, withCheck, "DRAIN"},
		{"drain without check", State{Admin: Drain}, noCheck, "DRAIN"},
		{"down wins over drain", State{Admin: Drain, Health: Down}, withCheck, "DOWN"},
		{"nolb", State{Health: Stopping, CheckHealth: 4}, withCheck, "NOLB"},
		{"agent down", State{AgentDown: true, CheckHealth: 4}, withCheck, "DOWN"},
		{"process down", State{ProcessDown: true}, noCheck, "DOWN"},
		{"no check", State{}, noCheck, "no check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.Status(tc.sc); got != tc.want {
				t.Errorf("Status = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAdminHealthStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Ready.String(), "ready"}, {Drain.String(), "drain"}, {Maint.String(), "maint"},
		{Up.String(), "up"}, {Stopping.String(), "stopping"}, {Down.String(), "down"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
}

func TestSetWeightRange(t *testing.T) {
	b := New(proxy(config.BalanceRoundRobin, srv(t, 1, "a")), nil)
	s := b.Server("a")
	for _, w := range []int{-1, MaxWeight + 1} {
		if err := s.SetWeight(w); err == nil {
			t.Errorf("SetWeight(%d) accepted", w)
		}
	}
	if err := s.SetWeight(MaxWeight); err != nil || !s.State().WeightSet {
		t.Errorf("SetWeight(%d): %v", MaxWeight, err)
	}
	if err := s.SetWeight(1); err != nil || s.State().WeightSet {
		t.Errorf("weight back to the configured one still counts as set")
	}
}

// New(p, prev) carries each server's live state to the new configuration.
func TestInherit(t *testing.T) {
	a2, _ := addr.Parse("127.0.0.2:80")
	a3, _ := addr.Parse("127.0.0.3:80")
	for _, tc := range []struct {
		name    string
		old     []*config.Server
		setup   func(b *Backend)
		new     []*config.Server
		checkOn string // the new server to look at
		want    func(t *testing.T, st State)
	}{
		{"admin state kept, matched by id and name",
			[]*config.Server{srv(t, 1, "a"), srv(t, 2, "b")},
			func(b *Backend) { b.Server("a").SetAdmin(Drain); b.Server("b").SetAdmin(Maint) },
			[]*config.Server{srv(t, 1, "a"), srv(t, 2, "b")}, "b",
			func(t *testing.T, st State) {
				if st.Admin != Maint {
					t.Errorf("admin %v", st.Admin)
				}
			}},
		{"matched by name when the id changed",
			[]*config.Server{srv(t, 1, "a"), srv(t, 2, "b")},
			func(b *Backend) { b.Server("b").SetAdmin(Drain) },
			[]*config.Server{srv(t, 7, "b"), srv(t, 8, "a")}, "b",
			func(t *testing.T, st State) {
				if st.Admin != Drain {
					t.Errorf("admin %v", st.Admin)
				}
			}},
		{"a renamed server starts afresh",
			[]*config.Server{srv(t, 1, "a")},
			func(b *Backend) { b.Server("a").SetAdmin(Maint) },
			[]*config.Server{srv(t, 1, "renamed")}, "renamed",
			func(t *testing.T, st State) {
				if st.Admin != Ready || st.Counters.Total != 0 {
					t.Errorf("admin %v, %d total", st.Admin, st.Counters.Total)
				}
			}},
		{"runtime weight kept while the config weight is unchanged",
			[]*config.Server{srv(t, 1, "a", weight(10))},
			func(b *Backend) { b.Server("a").SetWeight(3) },
			[]*config.Server{srv(t, 1, "a", weight(10))}, "a",
			func(t *testing.T, st State) {
				if st.Weight != 3 || !st.WeightSet {
					t.Errorf("weight %d set %v", st.Weight, st.WeightSet)
				}
			}},
		{"runtime weight dropped when the config weight changed",
			[]*config.Server{srv(t, 1, "a", weight(10))},
			func(b *Backend) { b.Server("a").SetWeight(3) },
			[]*config.Server{srv(t, 1, "a", weight(20))}, "a",
			func(t *testing.T, st State) {
				if st.Weight != 20 || st.WeightSet {
					t.Errorf("weight %d set %v", st.Weight, st.WeightSet)
				}
			}},
		{"runtime weight 0 kept",
			[]*config.Server{srv(t, 1, "a")},
			func(b *Backend) { b.Server("a").SetWeight(0) },
			[]*config.Server{srv(t, 1, "a")}, "a",
			func(t *testing.T, st State) {
				if st.Weight != 0 {
					t.Errorf("weight %d", st.Weight)
				}
			}},
		{"runtime address kept while the config address is unchanged",
			[]*config.Server{srv(t, 1, "a")},
			func(b *Backend) { b.Server("a").SetAddr(a2) },
			[]*config.Server{srv(t, 1, "a")}, "a",
			func(t *testing.T, st State) {
				if st.Addr.Key() != a2.Key() || !st.AddrSet {
					t.Errorf("addr %v set %v", st.Addr, st.AddrSet)
				}
			}},
		{"runtime address dropped when the config address changed",
			[]*config.Server{srv(t, 1, "a")},
			func(b *Backend) { b.Server("a").SetAddr(a2) },
			[]*config.Server{srv(t, 1, "a", func(s *config.Server) { s.Addr = a3 })}, "a",
			func(t *testing.T, st State) {
				if st.Addr.Key() != a3.Key() || st.AddrSet {
					t.Errorf("addr %v set %v", st.Addr, st.AddrSet)
				}
			}},
		{"disabled in the new config wins over ready",
			[]*config.Server{srv(t, 1, "a")},
			func(b *Backend) {},
			[]*config.Server{srv(t, 1, "a", disabled)}, "a",
			func(t *testing.T, st State) {
				if st.Admin != Maint {
					t.Errorf("admin %v", st.Admin)
				}
			}},
		{"enabled in the new config wins over maint",
			[]*config.Server{srv(t, 1, "a", disabled)},
			func(b *Backend) {},
			[]*config.Server{srv(t, 1, "a")}, "a",
			func(t *testing.T, st State) {
				if st.Admin != Ready {
					t.Errorf("admin %v", st.Admin)
				}
			}},
		{"maint set at run time kept while the config is unchanged",
			[]*config.Server{srv(t, 1, "a", disabled)},
			func(b *Backend) {},
			[]*config.Server{srv(t, 1, "a", disabled)}, "a",
			func(t *testing.T, st State) {
				if st.Admin != Maint {
					t.Errorf("admin %v", st.Admin)
				}
			}},
		{"health and check state kept",
			[]*config.Server{srv(t, 1, "a", check)},
			func(b *Backend) {
				s := b.Server("a")
				s.checkResult(false, "L4CON", time.Millisecond)
				s.checkResult(true, "L4OK", time.Millisecond)
			},
			[]*config.Server{srv(t, 1, "a", check)}, "a",
			func(t *testing.T, st State) {
				if st.Health != Down || st.CheckHealth != 1 || st.CheckStatus != "L4OK" || st.Counters.CheckFails != 1 {
					t.Errorf("state %+v", st)
				}
			}},
		{"fully up stays fully up across a smaller fall",
			[]*config.Server{srv(t, 1, "a", check, func(s *config.Server) { s.Rise, s.Fall = 2, 5 })},
			func(b *Backend) {
				s := b.Server("a")
				s.checkResult(true, "L4OK", 0) // 3 of 6
				s.checkResult(true, "L4OK", 0) // 4
				s.checkResult(true, "L4OK", 0) // 5
				s.checkResult(true, "L4OK", 0) // 6: fully up
			},
			[]*config.Server{srv(t, 1, "a", check, func(s *config.Server) { s.Rise, s.Fall = 2, 2 })}, "a",
			func(t *testing.T, st State) {
				if st.Health != Up || st.CheckHealth != 3 {
					t.Errorf("health %v counter %d, want up and 3 (fully up with rise 2 fall 2)", st.Health, st.CheckHealth)
				}
			}},
		{"up stays up across a bigger rise",
			[]*config.Server{srv(t, 1, "a", check)},
			func(b *Backend) {
				s := b.Server("a")
				s.checkResult(true, "L4OK", 0)
				s.checkResult(true, "L4OK", 0)
				s.checkResult(false, "L4CON", 0)
				s.checkResult(false, "L4CON", 0) // up, 2 of 4: UP 1/3
			},
			[]*config.Server{srv(t, 1, "a", check, func(s *config.Server) { s.Rise = 5 })}, "a",
			func(t *testing.T, st State) {
				sc := srv(t, 1, "a", check, func(s *config.Server) { s.Rise = 5 })
				if st.Health != Up || st.CheckHealth < 5 || st.Status(sc) != "UP 1/3" {
					t.Errorf("health %v counter %d status %q", st.Health, st.CheckHealth, st.Status(sc))
				}
			}},
		{"down stays down across a smaller rise",
			[]*config.Server{srv(t, 1, "a", check, func(s *config.Server) { s.Rise = 5 })},
			func(b *Backend) {
				s := b.Server("a")
				s.checkResult(false, "L4CON", 0)
				s.checkResult(true, "L4OK", 0)
				s.checkResult(true, "L4OK", 0)
				s.checkResult(true, "L4OK", 0) // DOWN 3/5
			},
			[]*config.Server{srv(t, 1, "a", check)}, "a",
			func(t *testing.T, st State) {
				if st.Health != Down || st.CheckHealth >= 2 {
					t.Errorf("health %v counter %d", st.Health, st.CheckHealth)
				}
			}},
		{"checks removed: up",
			[]*config.Server{srv(t, 1, "a", check)},
			func(b *Backend) { b.Server("a").checkResult(false, "L4CON", 0) },
			[]*config.Server{srv(t, 1, "a")}, "a",
			func(t *testing.T, st State) {
				if st.Health != Up {
					t.Errorf("health %v", st.Health)
				}
			}},
		{"agent and process state kept",
			[]*config.Server{srv(t, 1, "a", localProcess(2))},
			func(b *Backend) { b.Server("a").SetAgent(false); b.SetProcessAlive(2, false) },
			[]*config.Server{srv(t, 1, "a", localProcess(2))}, "a",
			func(t *testing.T, st State) {
				if !st.AgentDown || !st.ProcessDown {
					t.Errorf("state %+v", st)
				}
			}},
		{"counters and current connections carried",
			[]*config.Server{srv(t, 1, "a")},
			func(b *Backend) {
				s := acquire(t, b, client(1))
				acquire(t, b, client(2)) // still held at reload
				s.Transfer(5, 6)
				s.Release()
			},
			[]*config.Server{srv(t, 1, "a")}, "a",
			func(t *testing.T, st State) {
				c := st.Counters
				if c.Total != 2 || c.Max != 2 || c.BytesIn != 5 || c.BytesOut != 6 || c.Cur != 1 {
					t.Errorf("counters %+v", c)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := New(proxy(config.BalanceRoundRobin, tc.old...), nil)
			tc.setup(old)
			nb := New(proxy(config.BalanceRoundRobin, tc.new...), old)
			s := nb.Server(tc.checkOn)
			if s == nil {
				t.Fatalf("no server %s", tc.checkOn)
			}
			tc.want(t, s.State())
		})
	}
}

func TestInheritBackendCounters(t *testing.T) {
	old := New(proxy(config.BalanceRoundRobin, srv(t, 1, "a")), nil)
	held := acquire(t, old, client(1))
	nb := New(proxy(config.BalanceRoundRobin, srv(t, 1, "a")), old)
	if st := nb.Stats(); st.Total != 1 || st.Cur != 1 || nb.Active() != 1 {
		t.Errorf("new backend stats %+v", st)
	}
	// The old connection ends on the old backend, and the new one sees it.
	held.Release()
	if old.Active() != 0 || nb.Active() != 0 {
		t.Errorf("active old %d new %d", old.Active(), nb.Active())
	}
}

// A reload must not make leastconn forget the connections accepted before
// it: long-lived sessions (RDP) would otherwise pile onto one server.
func TestLeastConnExactAcrossReload(t *testing.T) {
	old := New(proxy(config.BalanceLeastConn, srv(t, 1, "a"), srv(t, 2, "b")), nil)
	for i := 0; i < 4; i++ {
		if s := acquire(t, old, client(i)); s.Name() != "a" && s.Name() != "b" {
			t.Fatalf("picked %s", s.Name())
		}
	}
	nb := New(proxy(config.BalanceLeastConn, srv(t, 1, "a"), srv(t, 2, "b"), srv(t, 3, "c")), old)
	// a and b hold 2 each from before the reload: c gets the next two.
	for i := 0; i < 2; i++ {
		if s := acquire(t, nb, client(10+i)); s.Name() != "c" {
			t.Fatalf("pick %d after reload went to %s, want c", i, s.Name())
		}
	}
}

func TestResolution(t *testing.T) {
	plain := srv(t, 1, "a")
	plain.NoAddr = true
	checked := srv(t, 2, "b", check)
	checked.NoAddr = true
	b := New(proxy(config.BalanceRoundRobin, plain, checked), nil)
	for _, s := range b.Servers() {
		if st := s.State(); !st.Unresolved || st.Status(s.Config()) != "MAINT (resolution)" {
			t.Fatalf("%s starts %+v, want MAINT (resolution)", s.Name(), st)
		}
	}
	if _, err := b.Acquire(context.Background(), client(1), nil); err != ErrNoServer {
		t.Fatalf("Acquire with no address anywhere: %v", err)
	}
	a, _ := addr.Parse("127.0.0.9:80")
	b.Server("a").SetResolution(true, a, 0)
	b.Server("b").SetResolution(true, a, 0)
	if got := b.Server("a").Addr().String(); got != "127.0.0.9:80" {
		t.Fatalf("address %s", got)
	}
	// Without checks the slot serves at once; with checks it waits for them.
	for i := 0; i < 4; i++ {
		s := acquire(t, b, client(i))
		if s.Name() != "a" {
			t.Fatalf("pick %d went to %s before its checks", i, s.Name())
		}
		s.Release()
	}
	b.Server("a").SetResolution(false, addr.Addr{}, 0)
	if st := b.Server("a").State(); !st.Unresolved {
		t.Fatal("a record removed, but the slot is still in service")
	}
}
