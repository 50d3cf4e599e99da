package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelb/sluice/config"
)

func TestWeightedDistribution(t *testing.T) {
	for _, tc := range []struct {
		balance config.Balance
		weights []int
	}{
		{config.BalanceRoundRobin, []int{1, 1, 1}},
		{config.BalanceRoundRobin, []int{1, 2, 3}},
		{config.BalanceRoundRobin, []int{5, 0, 1}},
		{config.BalanceRoundRobin, []int{256, 1}},
		{config.BalanceLeastConn, []int{1, 1, 1}},
		{config.BalanceLeastConn, []int{1, 2, 3}},
		{"", []int{2, 1}}, // roundrobin is the default
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.balance, tc.weights), func(t *testing.T) {
			var servers []*config.Server
			total := 0
			for i, w := range tc.weights {
				servers = append(servers, srv(t, i+1, fmt.Sprintf("s%d", i+1), weight(w)))
				total += w
			}
			b := New(proxy(tc.balance, servers...), nil)
			// Whole rounds of the total weight: each server gets exactly
			// its share, whether picks are released at once (roundrobin)
			// or held (leastconn, whose share is of held connections).
			const rounds = 10
			count := map[string]int{}
			var held []*Server
			for i := 0; i < rounds*total; i++ {
				s := acquire(t, b, client(i))
				count[s.Name()]++
				if tc.balance == config.BalanceLeastConn {
					held = append(held, s)
				} else {
					s.Release()
				}
			}
			for i, w := range tc.weights {
				if got, want := count[fmt.Sprintf("s%d", i+1)], rounds*w; got != want {
					t.Errorf("s%d (weight %d) got %d connections, want %d (all: %v)", i+1, w, got, want, count)
				}
			}
			for _, s := range held {
				s.Release()
			}
			if n := b.Active(); n != 0 {
				t.Errorf("Active after releasing everything = %d", n)
			}
		})
	}
}

// Smooth weighted round robin interleaves: weights 3,1 give a a b a, not
// a a a b.
func TestRoundRobinSmooth(t *testing.T) {
	b := New(proxy(config.BalanceRoundRobin, srv(t, 1, "a", weight(3)), srv(t, 2, "b", weight(1))), nil)
	got := strings.Join(names(t, b, 8), " ")
	if want := "a a b a a a b a"; got != want {
		t.Errorf("picks %q, want %q", got, want)
	}
}

func TestLeastConnTiesTakeTurns(t *testing.T) {
	b := New(proxy(config.BalanceLeastConn, srv(t, 1, "a"), srv(t, 2, "b"), srv(t, 3, "c")), nil)
	got := strings.Join(names(t, b, 7), " ")
	if want := "a b c a b c a"; got != want {
		t.Errorf("picks released at once: %q, want %q", got, want)
	}
	// A busier server is skipped while the others take turns.
	busy := b.Server("b")
	b.mu.Lock()
	b.take(busy)
	b.mu.Unlock()
	got = strings.Join(names(t, b, 4), " ")
	if want := "a c a c"; got != want && got != "c a c a" {
		t.Errorf("with b busy: %q, want a and c in turn", got)
	}
	busy.Release()
}

func TestLeastConnExact(t *testing.T) {
	for _, tc := range []struct{ k, n int }{
		{1, 5}, {2, 1}, {2, 7}, {3, 10}, {4, 100}, {7, 50}, {16, 1000},
	} {
		t.Run(fmt.Sprintf("%d-servers-%d-conns", tc.k, tc.n), func(t *testing.T) {
			var servers []*config.Server
			for i := 1; i <= tc.k; i++ {
				servers = append(servers, srv(t, i, fmt.Sprintf("s%d", i)))
			}
			b := New(proxy(config.BalanceLeastConn, servers...), nil)
			var held []*Server
			for i := 0; i < tc.n; i++ {
				held = append(held, acquire(t, b, client(i)))
				lo, hi := tc.n, 0
				for _, s := range b.Servers() {
					lo, hi = min(lo, s.Active()), max(hi, s.Active())
				}
				if hi-lo > 1 {
					t.Fatalf("after %d connections: servers hold between %d and %d", i+1, lo, hi)
				}
			}
			// Releasing half and taking as many again refills the emptiest.
			for i := 0; i < len(held); i += 2 {
				held[i].Release()
			}
			for i := 0; i < len(held); i += 2 {
				held[i] = acquire(t, b, client(i))
			}
			lo, hi := tc.n, 0
			for _, s := range b.Servers() {
				lo, hi = min(lo, s.Active()), max(hi, s.Active())
			}
			if hi-lo > 1 {
				t.Errorf("after churn: servers hold between %d and %d", lo, hi)
			}
			for _, s := range held {
				s.Release()
			}
		})
	}
}

func TestSourceSticky(t *testing.T) {
	b := New(proxy(config.BalanceSource,
		srv(t, 1, "a"), srv(t, 2, "b", weight(2)), srv(t, 3, "c"), srv(t, 4, "d", maxConn(1))), nil)
	pickOf := func(i, port int) string {
		src := &net.TCPAddr{IP: net.IPv4(192, 0, 2, byte(i)).To16(), Port: port}
		s := acquire(t, b, src)
		s.Release()
		return s.Name()
	}
	first := map[int]string{}
	used := map[string]int{}
	for i := 0; i < 200; i++ {
		first[i] = pickOf(i, 1000+i)
		used[first[i]]++
	}
	if len(used) != 4 {
		t.Errorf("200 clients used %d servers: %v", len(used), used)
	}
	// The port is no part of the hash, nor the IPv4 form.
	for i := 0; i < 200; i++ {
		if got := pickOf(i, 60000-i); got != first[i] {
			t.Fatalf("client %d moved from %s to %s with another port", i, first[i], got)
		}
	}
	// A full server gives its clients to others for the time being; the
	// clients of the other servers keep theirs.
	d := b.Server("d")
	held := acquire(t, b, clientOf(t, b, "d"))
	if held != d {
		t.Fatalf("clientOf(d) got %s", held.Name())
	}
	for i := 0; i < 200; i++ {
		got := pickOf(i, 1)
		if first[i] != "d" && got != first[i] {
			t.Fatalf("while d is full, client %d moved from %s to %s", i, first[i], got)
		}
		if got == "d" {
			t.Fatalf("client %d got d, which is full", i)
		}
	}
	held.Release()
	// A server that goes down and comes back gets its clients back.
	b.Server("b").SetAdmin(Maint)
	for i := 0; i < 200; i++ {
		if got := pickOf(i, 1); got == "b" {
			t.Fatalf("client %d got b in maintenance", i)
		}
	}
	b.Server("b").SetAdmin(Ready)
	for i := 0; i < 200; i++ {
		if got := pickOf(i, 1); got != first[i] {
			t.Fatalf("after b came back, client %d has %s, had %s", i, got, first[i])
		}
	}
}

// clientOf finds a client address that source balancing sends to server name.
func clientOf(t *testing.T, b *Backend, name string) net.Addr {
	t.Helper()
	for i := 0; i < 1000; i++ {
		src := client(i)
		s := acquire(t, b, src)
		s.Release()
		if s.Name() == name {
			return src
		}
	}
	t.Fatalf("no client goes to %s", name)
	return nil
}

func TestFirstFillsInOrder(t *testing.T) {
	b := New(proxy(config.BalanceFirst,
		srv(t, 1, "a", maxConn(2)), srv(t, 2, "b", maxConn(3)), srv(t, 3, "c", maxConn(2))), nil)
	var held []*Server
	var got []string
	for i := 0; i < 6; i++ {
		s := acquire(t, b, client(i))
		held = append(held, s)
		got = append(got, s.Name())
	}
	if want := "a a b b b c"; strings.Join(got, " ") != want {
		t.Errorf("picks %v, want %s", got, want)
	}
	// A slot freed on the first server is taken before the last one's.
	held[0].Release()
	if s := acquire(t, b, client(0)); s.Name() != "a" {
		t.Errorf("after a freed a slot, got %s", s.Name())
	} else {
		held[0] = s
	}
	for _, s := range held {
		s.Release()
	}
	// Without maxconn the first server takes everything.
	b = New(proxy(config.BalanceFirst, srv(t, 1, "a"), srv(t, 2, "b")), nil)
	if got := strings.Join(names(t, b, 3), " "); got != "a a a" {
		t.Errorf("without maxconn: %s", got)
	}
}

func TestBackupServers(t *testing.T) {
	for _, balance := range []config.Balance{config.BalanceRoundRobin, config.BalanceLeastConn, config.BalanceSource, config.BalanceFirst} {
		t.Run(string(balance), func(t *testing.T) {
			b := New(proxy(balance, srv(t, 1, "a"), srv(t, 2, "bk1", backup), srv(t, 3, "b"), srv(t, 4, "bk2", backup)), nil)
			onlyActive := func(when string) {
				t.Helper()
				for _, n := range names(t, b, 8) {
					if strings.HasPrefix(n, "bk") {
						t.Fatalf("%s: backup %s picked", when, n)
					}
				}
			}
			onlyActive("all up")
			b.Server("a").SetHealth(Down)
			onlyActive("one active down")
			// Full active servers queue connections rather than spill to
			// the backups: they are usable.
			b.Server("b").SetMaxConn(1)
			held := acquire(t, b, client(1))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := b.Acquire(ctx, client(1), nil); !errors.Is(err, context.Canceled) {
				t.Errorf("active b full: Acquire = %v, want to queue", err)
			}
			held.Release()
			b.Server("b").SetMaxConn(0)
			b.Server("b").SetAdmin(Maint)
			got := names(t, b, 8)
			for _, n := range got {
				if !strings.HasPrefix(n, "bk") {
					t.Fatalf("no active server usable, yet %s picked", n)
				}
			}
			b.Server("a").SetHealth(Up)
			onlyActive("a back up")
		})
	}
}

// Every reason for a server not to take new connections keeps it out of
// every algorithm's picks, and it comes back when the reason goes.
func TestExcludedServers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		out, back   func(s *Server)
		wantStatus  string
		localProcId int
	}{
		{"drain", func(s *Server) { s.SetAdmin(Drain) }, func(s *Server) { s.SetAdmin(Ready) }, "DRAIN", 0},
		{"maint", func(s *Server) { s.SetAdmin(Maint) }, func(s *Server) { s.SetAdmin(Ready) }, "MAINT", 0},
		{"weight 0", func(s *Server) { s.SetWeight(0) }, func(s *Server) { s.SetWeight(1) }, "", 0},
		{"agent down", func(s *Server) { s.SetAgent(false) }, func(s *Server) { s.SetAgent(true) }, "DOWN", 0},
		{"health down", func(s *Server) { s.SetHealth(Down) }, func(s *Server) { s.SetHealth(Up) }, "DOWN", 0},
		{"stopping", func(s *Server) { s.SetHealth(Stopping) }, func(s *Server) { s.SetHealth(Up) }, "NOLB", 0},
		{"process down",
			func(s *Server) { s.Backend().SetProcessAlive(2, false) },
			func(s *Server) { s.Backend().SetProcessAlive(2, true) }, "DOWN", 2},
	} {
		for _, balance := range []config.Balance{config.BalanceRoundRobin, config.BalanceLeastConn, config.BalanceSource, config.BalanceFirst} {
			t.Run(tc.name+"/"+string(balance), func(t *testing.T) {
				b := New(proxy(balance, srv(t, 1, "x", localProcess(tc.localProcId)), srv(t, 2, "y", localProcess(1))), nil)
				x := b.Server("x")
				tc.out(x)
				if got := x.State().Status(x.Config()); tc.wantStatus != "" && got != tc.wantStatus {
					t.Errorf("status %q, want %q", got, tc.wantStatus)
				}
				for i := 0; i < 20; i++ {
					s := acquire(t, b, client(i))
					s.Release()
					if s == x {
						t.Fatalf("pick %d went to the excluded server", i)
					}
				}
				tc.back(x)
				seen := false
				for i := 0; i < 50 && !seen; i++ {
					s := acquire(t, b, client(i))
					s.Release()
					seen = s == x
				}
				// first always picks x when it is usable; the others spread.
				if !seen {
					t.Errorf("server never picked again after coming back")
				}
			})
		}
	}
}

func TestNoServer(t *testing.T) {
	b := New(proxy(config.BalanceRoundRobin, srv(t, 1, "a"), srv(t, 2, "b", backup), srv(t, 3, "c", disabled)), nil)
	b.Server("a").SetHealth(Down)
	b.Server("b").SetAdmin(Drain)
	for i := 0; i < 3; i++ {
		if s, err := b.Acquire(context.Background(), client(i), nil); !errors.Is(err, ErrNoServer) || s != nil {
			t.Fatalf("Acquire = %s, %v; want ErrNoServer", nameOf(s), err)
		}
	}
	if st := b.Stats(); st.Denied != 3 || st.Cur != 0 || st.QueueCur != 0 {
		t.Errorf("stats %+v, want 3 denied and nothing current", st)
	}
	// An empty backend has no server either.
	if _, err := New(proxy(config.BalanceLeastConn), nil).Acquire(context.Background(), client(1), nil); !errors.Is(err, ErrNoServer) {
		t.Errorf("empty backend: %v", err)
	}
}

// exclude (the server a failed attempt used) is avoided when another
// server can take the connection, and reused when none can, as HAProxy's
// redispatch does.
func TestAcquireExclude(t *testing.T) {
	for _, balance := range []config.Balance{config.BalanceRoundRobin, config.BalanceLeastConn, config.BalanceSource, config.BalanceFirst} {
		t.Run(string(balance), func(t *testing.T) {
			b := New(proxy(balance, srv(t, 1, "a"), srv(t, 2, "b"), srv(t, 3, "bk", backup)), nil)
			a := b.Server("a")
			for i := 0; i < 10; i++ {
				s, err := b.Acquire(context.Background(), client(i), a)
				if err != nil || s.Name() != "b" {
					t.Fatalf("exclude a: got %s, %v; want b", nameOf(s), err)
				}
				s.Release()
			}
			// The only active server is excluded: it is still usable, so
			// the backup stays out and the connection retries it.
			b.Server("b").SetAdmin(Maint)
			s, err := b.Acquire(context.Background(), client(1), a)
			if err != nil || s != a {
				t.Fatalf("only a usable, excluded: got %s, %v; want a", nameOf(s), err)
			}
			s.Release()
			// The only server of a backend is retried too.
			one := New(proxy(balance, srv(t, 1, "only")), nil)
			only := one.Server("only")
			if s, err := one.Acquire(context.Background(), client(1), only); err != nil || s != only {
				t.Fatalf("single server excluded: got %s, %v", nameOf(s), err)
			} else {
				s.Release()
			}
		})
	}
}

func TestStats(t *testing.T) {
	b := New(proxy(config.BalanceRoundRobin, srv(t, 1, "a"), srv(t, 2, "b")), nil)
	var held []*Server
	for i := 0; i < 4; i++ {
		held = append(held, acquire(t, b, client(i)))
	}
	held[0].Transfer(10, 20)
	held[0].ConnectFailed(true, true)
	for _, s := range held {
		s.Release()
	}
	st := b.Stats()
	if st.Cur != 0 || st.Max != 4 || st.Total != 4 || st.BytesIn != 10 || st.BytesOut != 20 ||
		st.ConnErrors != 1 || st.Retries != 1 || st.Redispatch != 1 {
		t.Errorf("backend stats %+v", st)
	}
	a := held[0].State().Counters
	if a.Max != 2 || a.Total != 2 || a.BytesIn != 10 || a.Cur != 0 {
		t.Errorf("server stats %+v", a)
	}
	if !slices.Equal([]string{b.Servers()[0].Name(), b.Servers()[1].Name()}, []string{"a", "b"}) || b.Name() != "be" {
		t.Errorf("names")
	}
}
