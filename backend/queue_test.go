package backend

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluicelb/sluice/config"
)

type got struct {
	id  int
	s   *Server
	err error
	at  time.Duration // time spent in Acquire
}

// enqueue starts an Acquire that must queue, and waits until it has.
func enqueue(t *testing.T, ctx context.Context, b *Backend, id int, exclude *Server, out chan<- got) {
	t.Helper()
	before := b.Stats().QueueCur
	go func() {
		start := time.Now()
		s, err := b.Acquire(ctx, client(id), exclude)
		out <- got{id, s, err, time.Since(start)}
	}()
	eventually(t, 5*time.Second, "the connection to queue", func() bool { return b.Stats().QueueCur == before+1 })
}

func receive(t *testing.T, ch <-chan got) got {
	t.Helper()
	select {
	case g := <-ch:
		return g
	case <-time.After(5 * time.Second):
		t.Fatal("no Acquire returned within 5s")
	}
	return got{}
}

func noLeak(t *testing.T, b *Backend) {
	t.Helper()
	if n := b.Active(); n != 0 {
		t.Errorf("backend Active = %d after everything was released", n)
	}
	for _, s := range b.Servers() {
		if n := s.Active(); n != 0 {
			t.Errorf("server %s Active = %d after everything was released", s.Name(), n)
		}
	}
	if st := b.Stats(); st.QueueCur != 0 {
		t.Errorf("QueueCur = %d with nobody waiting", st.QueueCur)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) != 0 {
		t.Errorf("%d waiters left in the queue", len(b.queue))
	}
}

func queued(balance config.Balance, queue, connect time.Duration, servers ...*config.Server) *config.Proxy {
	p := proxy(balance, servers...)
	p.Timeouts.Queue, p.Timeouts.Connect = queue, connect
	return p
}

func TestQueueFIFO(t *testing.T) {
	for _, balance := range []config.Balance{config.BalanceRoundRobin, config.BalanceLeastConn, config.BalanceSource, config.BalanceFirst} {
		t.Run(string(balance), func(t *testing.T) {
			b := New(queued(balance, 10*time.Second, 0, srv(t, 1, "a", maxConn(1)), srv(t, 2, "b", maxConn(1))), nil)
			h1, h2 := acquire(t, b, client(100)), acquire(t, b, client(101))
			if h1 == h2 {
				t.Fatal("both slots on one server")
			}
			out := make(chan got, 4)
			for id := 1; id <= 4; id++ {
				enqueue(t, context.Background(), b, id, nil, out)
			}
			if st := b.Stats(); st.QueueMax != 4 {
				t.Errorf("QueueMax = %d", st.QueueMax)
			}
			// Each freed slot goes to the oldest waiter, which frees it
			// in turn for the next.
			h1.Release()
			prev := h2
			for id := 1; id <= 4; id++ {
				g := receive(t, out)
				if g.err != nil || g.id != id {
					t.Fatalf("slot %d went to waiter %d (err %v)", id, g.id, g.err)
				}
				select {
				case g := <-out:
					t.Fatalf("waiter %d served without a free slot", g.id)
				default:
				}
				prev.Release()
				prev = g.s
			}
			prev.Release()
			noLeak(t, b)
		})
	}
}

func TestQueueTimeout(t *testing.T) {
	for _, tc := range []struct {
		name           string
		queue, connect time.Duration
		ctxTimeout     time.Duration
		want           error
		wait           time.Duration
	}{
		{"timeout queue", 40 * time.Millisecond, time.Hour, 0, ErrQueueTimeout, 40 * time.Millisecond},
		{"timeout connect", 0, 40 * time.Millisecond, 0, ErrQueueTimeout, 40 * time.Millisecond},
		{"no timeout, ctx ends", 0, 0, 40 * time.Millisecond, context.DeadlineExceeded, 40 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(queued(config.BalanceRoundRobin, tc.queue, tc.connect, srv(t, 1, "a", maxConn(1))), nil)
			held := acquire(t, b, client(1))
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			out := make(chan got, 1)
			enqueue(t, ctx, b, 1, nil, out)
			g := receive(t, out)
			if !errors.Is(g.err, tc.want) || g.s != nil {
				t.Fatalf("Acquire = %s, %v; want %v", nameOf(g.s), g.err, tc.want)
			}
			if g.at < tc.wait {
				t.Errorf("gave up after %v, before %v", g.at, tc.wait)
			}
			// The slot freed later goes to nobody.
			held.Release()
			noLeak(t, b)
			if s := acquire(t, b, client(1)); s.Active() != 1 {
				t.Errorf("slot not free")
			} else {
				s.Release()
			}
		})
	}
}

// A queued connection that gives up just as a slot is handed to it gives
// the slot back: whichever wins the race, nothing leaks.
func TestQueueCancelNoLeak(t *testing.T) {
	b := New(queued(config.BalanceLeastConn, time.Minute, 0, srv(t, 1, "a", maxConn(1))), nil)
	served, cancelled := 0, 0
	for i := 0; i < 200; i++ {
		held := acquire(t, b, client(1))
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan got, 1)
		enqueue(t, ctx, b, i, nil, out)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { cancel(); wg.Done() }()
		go func() { held.Release(); wg.Done() }()
		wg.Wait()
		g := receive(t, out)
		switch {
		case g.err == nil:
			served++
			g.s.Release()
		case errors.Is(g.err, context.Canceled):
			cancelled++
		default:
			t.Fatalf("Acquire: %v", g.err)
		}
		noLeak(t, b)
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d served, %d cancelled", served, cancelled)
}

// Changes that free capacity serve the queue at once.
func TestQueueServedByStateChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(b *Backend)
	}{
		{"maxconn raised", func(b *Backend) { b.Server("a").SetMaxConn(2) }},
		{"server out of maint", func(b *Backend) { b.Server("m").SetAdmin(Ready) }},
		{"server health up", func(b *Backend) { b.Server("d").SetHealth(Up) }},
		{"process back", func(b *Backend) { b.SetProcessAlive(3, true) }},
		{"agent back", func(b *Backend) { b.Server("ag").SetAgent(true) }},
		{"weight back", func(b *Backend) { b.Server("w").SetWeight(3) }},
		{"check rise", func(b *Backend) {
			s := b.Server("d")
			s.checkResult(true, "L4OK", 0)
			s.checkResult(true, "L4OK", 0)
		}},
		// With the only active server down, the backup takes the queue.
		{"check fall to backup", func(b *Backend) {
			b.Server("bk").SetAdmin(Ready)
			s := b.Server("a")
			for i := 0; i < 3; i++ {
				s.checkResult(false, "L4CON", 0)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(queued(config.BalanceRoundRobin, 10*time.Second, 0,
				srv(t, 1, "a", maxConn(1), check),
				srv(t, 2, "m", disabled),
				srv(t, 3, "d", check),
				srv(t, 4, "p", localProcess(3)),
				srv(t, 5, "ag"),
				srv(t, 6, "w", weight(3)),
				srv(t, 7, "bk", backup, disabled)), nil)
			b.Server("d").SetHealth(Down)
			b.SetProcessAlive(3, false)
			b.Server("ag").SetAgent(false)
			b.Server("w").SetWeight(0)
			held := acquire(t, b, client(1))
			if held.Name() != "a" {
				t.Fatalf("picked %s", held.Name())
			}
			out := make(chan got, 1)
			enqueue(t, context.Background(), b, 1, nil, out)
			tc.change(b)
			g := receive(t, out)
			if g.err != nil {
				t.Fatalf("Acquire: %v", g.err)
			}
			g.s.Release()
			held.Release()
			noLeak(t, b)
		})
	}
}

// A queued redispatch avoids its failed server only while another one can
// take it: it does not hold up the queue when its server frees first.
func TestQueueExcludeNoHeadOfLineBlocking(t *testing.T) {
	b := New(queued(config.BalanceRoundRobin, 10*time.Second, 0,
		srv(t, 1, "a", maxConn(1)), srv(t, 2, "b", maxConn(1))), nil)
	a, bb := acquire(t, b, client(1)), acquire(t, b, client(2))
	if a.Name() != "a" {
		a, bb = bb, a
	}
	out := make(chan got, 2)
	enqueue(t, context.Background(), b, 1, a, out)
	enqueue(t, context.Background(), b, 2, nil, out)
	a.Release()
	g := receive(t, out)
	if g.err != nil || g.id != 1 || g.s != a {
		t.Fatalf("freed a went to waiter %d, %s (err %v); want waiter 1", g.id, nameOf(g.s), g.err)
	}
	bb.Release()
	g2 := receive(t, out)
	if g2.err != nil || g2.id != 2 {
		t.Fatalf("freed b went to waiter %d (err %v)", g2.id, g2.err)
	}
	g.s.Release()
	g2.s.Release()
	noLeak(t, b)
}
