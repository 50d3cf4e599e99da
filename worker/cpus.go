package worker

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// cpus sets how many CPUs Go runs the process's goroutines on
// (GOMAXPROCS). A process that stands for one thread of the
// configuration (nbthread or nbproc above 1), or a dispatcher, runs on
// one, as HAProxy's thread does: with more, Go woke a second thread for
// about every new connection, and that wakeup, its spinning and its sleep
// cost the worker 14% of its CPU per full handshake. While TLS handshakes
// yield to settled sessions (handshake.go) the process gets one CPU more,
// so that a handshake computing at a low priority never holds the
// process's only CPU: the established sessions run on the other. Each
// second it checks, and goes back to its one CPU when no session is
// settled and no handshake yields any more.
type cpus struct {
	mu sync.Mutex
	// limit is the most the process may use (its CPU mask); 0 when
	// GOMAXPROCS in the environment decides, and cpus leaves it alone.
	limit int
	// base is what the configuration gives the process; raised adds one
	// while handshakes yield.
	base   int
	raised bool
	// chores counts the calls of withSpare in progress.
	chores int
	// now is the GOMAXPROCS in force.
	now atomic.Int32
	// calm, while raised, checks whether the process may go back to base.
	calm *time.Timer
}

func newCPUs(envSet bool) *cpus {
	c := &cpus{}
	n := runtime.GOMAXPROCS(0)
	if !envSet {
		c.limit = n
	}
	c.base = n
	c.now.Store(int32(n))
	return c
}

// limitOrNow is the most CPUs the process may use.
func (c *cpus) limitOrNow() int {
	if c.limit > 0 {
		return c.limit
	}
	return int(c.now.Load())
}

// setBase applies the configuration's share: one CPU, or all of them.
func (c *cpus) setBase(one bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit == 0 {
		return
	}
	c.base = c.limit
	if one {
		c.base = 1
	}
	c.apply()
}

// spare makes sure the process has a CPU beside the one a yielding
// handshake holds, and says whether it has; yielding reports whether
// handshakes still yield (then the spare CPU stays).
func (c *cpus) spare(yielding func() bool) bool {
	if c.now.Load() >= 2 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit < 2 {
		return c.now.Load() >= 2
	}
	if !c.raised {
		c.raised = true
		c.apply()
		c.calm = time.AfterFunc(settleTime, func() { c.lowerWhenCalm(yielding) })
	}
	return true
}

func (c *cpus) lowerWhenCalm(yielding func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if yielding() {
		c.calm.Reset(settleTime)
		return
	}
	c.raised = false
	c.apply()
}

// withSpare runs f, a chore that holds its CPU for long without letting
// other goroutines run (giving memory back to the system takes a
// collection and madvise calls, over 20 ms after a burst of handshakes),
// with one CPU more, so that connections are served meanwhile.
func (c *cpus) withSpare(f func()) {
	c.mu.Lock()
	c.chores++
	c.apply()
	c.mu.Unlock()
	f()
	c.mu.Lock()
	c.chores--
	c.apply()
	c.mu.Unlock()
}

// apply sets GOMAXPROCS; the caller holds mu.
func (c *cpus) apply() {
	if c.limit == 0 {
		return
	}
	want := c.base
	if c.raised || c.chores > 0 {
		want = min(c.base+1, c.limit)
	}
	if int(c.now.Load()) != want {
		runtime.GOMAXPROCS(want)
		c.now.Store(int32(want))
	}
}
