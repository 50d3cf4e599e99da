package worker

import (
	"context"
	stdtls "crypto/tls"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// handshakeGate bounds how many TLS handshakes of a process compute at the
// same moment. A full handshake is a burst of public-key work. When
// hundreds arrive together (the 9am storm), runnable handshake goroutines
// would keep every CPU of the process busy, and Go's scheduler only looks
// for sockets that became readable when a CPU runs out of goroutines (or
// every 10 ms): the established sessions' echoes would wait for the storm.
// A handshake holds a token only while it computes and gives it back while
// it waits for the client. With one token fewer than the process's CPUs,
// one CPU is always left for established sessions and for polling, the
// priority HAProxy gives established traffic over its handshakes.
//
// The gate keeps the process's own CPUs fair; the machine's are shared
// with the other processes. So while the process holds settled sessions
// (open for more than settleTime), a handshake computes on its thread at
// a lower priority (nice +yieldNice), and the kernel runs the threads of
// established traffic first, in every process.
type handshakeGate struct {
	tokens chan struct{}
	// settled counts the connections open for more than settleTime;
	// lowered the handshakes computing at the yield priority.
	settled, lowered atomic.Int64
	// base is the process's nice value, yield the handshakes' while
	// settled sessions exist; equal when threads cannot get base back.
	base, yield int
	// cpus gives the process a CPU beside the yielding handshake's.
	cpus *cpus
}

const (
	settleTime = time.Second
	yieldNice  = 10
)

func newHandshakeGate(n int, cpus *cpus, log *slog.Logger) *handshakeGate {
	g := &handshakeGate{tokens: make(chan struct{}, max(n, 1)), cpus: cpus}
	g.base = threadNice()
	g.yield = min(g.base+yieldNice, 19)
	if !niceReversible(g.base, g.yield) {
		log.Info("TLS handshakes compute at the priority of established traffic: this process may not raise a thread's priority back (RLIMIT_NICE)")
		g.yield = g.base
	}
	return g
}

// server runs the server side of a TLS handshake over c, through the gate.
func (g *handshakeGate) server(ctx context.Context, c net.Conn, cfg *stdtls.Config) (*stdtls.Conn, error) {
	gc := &gatedConn{Conn: c, gate: g, ctx: ctx}
	tc := stdtls.Server(gc, cfg)
	if err := gc.acquire(); err != nil {
		return nil, err
	}
	err := tc.HandshakeContext(ctx)
	if gc.held {
		gc.release()
	}
	return tc, err
}

// acquire takes a token. When settled sessions exist, the goroutine
// stays on its thread while it holds it, at the handshakes' priority.
func (c *gatedConn) acquire() error {
	g := c.gate
	select {
	case g.tokens <- struct{}{}:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	c.held = true
	if g.yield != g.base && g.settled.Load() > 0 && g.cpus.spare(g.yielding) {
		runtime.LockOSThread()
		if setThreadNice(g.yield) == nil {
			c.lowered = true
			g.lowered.Add(1)
		} else {
			runtime.UnlockOSThread()
		}
	}
	return nil
}

func (c *gatedConn) release() {
	if c.lowered {
		c.lowered = false
		c.gate.lowered.Add(-1)
		// A thread whose priority cannot come back stays locked to
		// this goroutine, and ends with it.
		if setThreadNice(c.gate.base) == nil {
			runtime.UnlockOSThread()
		}
	}
	c.held = false
	<-c.gate.tokens
}

// yielding tells whether handshakes yield, or may: the process keeps its
// spare CPU until it says no.
func (g *handshakeGate) yielding() bool { return g.settled.Load() > 0 || g.lowered.Load() > 0 }

// settle counts a connection as settled once it has been open for
// settleTime; the function it returns is called when the connection
// closes.
func (g *handshakeGate) settle() (closed func()) {
	if g == nil {
		return func() {}
	}
	// The timer's function may run while the connection closes: one
	// state, changed atomically, decides which of them counts.
	const opened, settled, ended = 0, 1, 2
	var state atomic.Int32
	t := time.AfterFunc(settleTime, func() {
		if state.CompareAndSwap(opened, settled) {
			g.settled.Add(1)
		}
	})
	return func() {
		t.Stop()
		if state.Swap(ended) == settled {
			g.settled.Add(-1)
		}
	}
}

// threadNice is the calling thread's nice value (Linux's getpriority
// system call returns 20 minus it).
func threadNice() int {
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		return 0
	}
	return 20 - raw
}

func setThreadNice(nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
}

// niceReversible tells whether a thread of this process may go from base
// to yield and back. Going back needs root, or RLIMIT_NICE (set before
// the worker drops its privileges, see raiseNiceLimit).
func niceReversible(base, yield int) bool {
	if yield == base {
		return false
	}
	ok := make(chan bool)
	go func() {
		// Never unlocked on failure: the thread, stuck at a lower
		// priority, ends with this goroutine.
		runtime.LockOSThread()
		if setThreadNice(yield) != nil || setThreadNice(base) != nil {
			ok <- false
			return
		}
		runtime.UnlockOSThread()
		ok <- true
	}()
	return <-ok
}

// raiseNiceLimit lets the process give its threads their priority back
// after it drops root: RLIMIT_NICE 20 allows nice values down to 0.
func raiseNiceLimit() {
	const rlimitNice = 13
	var lim syscall.Rlimit
	if syscall.Getrlimit(rlimitNice, &lim) != nil || lim.Cur >= 20 {
		return
	}
	lim.Cur, lim.Max = 20, max(lim.Max, 20)
	syscall.Setrlimit(rlimitNice, &lim) // refused unless root: then threads keep one priority
}

// gatedConn is the socket under a TLS connection. During the handshake its
// reads give the gate's token back while they wait and take it again
// before the handshake computes on what they read. After the handshake it
// only passes reads through.
type gatedConn struct {
	net.Conn
	gate *handshakeGate
	ctx  context.Context
	// held: the handshake holds a token; lowered: its thread runs at the
	// handshakes' priority. Only the handshake's goroutine touches them,
	// and the connection is served after the handshake ends.
	held, lowered bool
}

func (c *gatedConn) Read(b []byte) (int, error) {
	if !c.held {
		return c.Conn.Read(b)
	}
	c.release()
	n, err := c.Conn.Read(b)
	if aerr := c.acquire(); aerr != nil {
		return n, aerr
	}
	return n, err
}
