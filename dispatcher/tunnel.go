package dispatcher

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// runTunnel joins client and server until both directions have ended,
// then closes both and calls end with the bytes each way, the termination
// state ("--", "CD"/"SD" for an abort by the client/server, "cD" for the
// idle timeout) and the closer given to track. When one side finishes
// sending, the other side's write half is shut so that it sees the end too.
// With idle > 0, the tunnel is cut after idle without traffic in either
// direction.
//
// Raw TCP and unix sockets go to lp, which splices them, and runTunnel
// returns at once; end is called later on another goroutine. Other pairs
// (TLS) are copied on goroutines (copyBuffered), as are all pairs when
// lp is nil, and runTunnel returns after end. track gets, before the tunnel
// can end, what ends it early ("shutdown sessions").
func runTunnel(lp *Loop, client, server net.Conn, idle time.Duration, track func(io.Closer), end func(c io.Closer, fromClient, fromServer int64, term string)) {
	var drained int64
	if lp != nil {
		t, n, err := lp.adopt(client, server, idle)
		if err != nil {
			client.Close()
			server.Close()
			track(client)
			end(client, n, 0, "SD")
			return
		}
		if t != nil {
			track(t)
			lp.start(t, func(fromClient, fromServer int64, term string) {
				end(t, n+fromClient, fromServer, term)
			})
			return
		}
		drained = n
	}
	track(client)
	fromClient, fromServer, term := copyTunnel(client, server, idle)
	end(client, drained+fromClient, fromServer, term)
}

// copyTunnel runs the tunnel of runTunnel on goroutines, copying with
// copyBuffered; idleness is read from a TCP side's TCP_INFO if there is
// one, else from the copies' reads.
func copyTunnel(client, server net.Conn, idle time.Duration) (fromClient, fromServer int64, term string) {
	t := &tunnel{client: client, server: server, idle: idle}
	t.lastRead.Store(time.Now().UnixNano())
	if idle > 0 {
		t.tcp = tcpOf(client)
		if t.tcp == nil {
			t.tcp = tcpOf(server)
		}
		// Under mu: a short timeout may fire before t.timer is stored.
		t.mu.Lock()
		t.timer = time.AfterFunc(idle, t.checkIdle)
		t.mu.Unlock()
	}

	var wg sync.WaitGroup
	var serverErr error
	wg.Add(1)
	go func() {
		fromServer, serverErr = t.copy(client, server)
		wg.Done()
	}()
	fromClient, clientErr := t.copy(server, client)
	wg.Wait()
	if idle > 0 {
		// A check running now must neither rearm the timer nor cut, as
		// idle, a tunnel that ended by itself.
		t.mu.Lock()
		t.stopped = true
		t.timer.Stop()
		t.mu.Unlock()
	}
	client.Close()
	server.Close()

	switch {
	case t.expired.Load():
		term = "cD"
	case clientErr != nil:
		term = "CD"
	case serverErr != nil:
		term = "SD"
	default:
		term = "--"
	}
	return fromClient, fromServer, term
}

type tunnel struct {
	client, server net.Conn
	idle           time.Duration
	tcp            *net.TCPConn // a raw TCP side, whose TCP_INFO tells idleness
	lastRead       atomic.Int64 // unix nanoseconds of the last buffered read
	expired        atomic.Bool

	mu      sync.Mutex // guards timer and stopped against checkIdle
	timer   *time.Timer
	stopped bool // both directions ended
}

// copy moves src to dst until src ends, then shuts dst's write half. An
// error (not the end of src) aborts both sides so that the other direction
// ends too.
func (t *tunnel) copy(dst, src net.Conn) (int64, error) {
	n, err := t.copyBuffered(dst, src)
	if err != nil && !t.expired.Load() {
		// Reading a closed socket after the other direction aborted is
		// not this side's fault.
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		t.client.Close()
		t.server.Close()
		return n, err
	}
	closeWrite(dst)
	return n, err
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// waitBufferSize is the buffer a copy waits for its next burst with.
const waitBufferSize = 1 << 10

// copyBuffered moves src to dst. It waits for each burst with a small
// buffer of its own and holds a pooled 32 KiB buffer only while reads fill
// their buffer: a session that is mostly idle, as RDP and Citrix sessions
// are, otherwise kept 32 KiB per direction for its life, resident once
// traffic had gone through it. With 1,000 TLS sessions in a tcp-mode
// worker, each having echoed 32 KiB once, the worker's RSS went from 91 to
// 44 KiB per session; the price is more reads and writes in a long
// transfer (about 8% more CPU per byte on this path, whose TLS costs more).
func (t *tunnel) copyBuffered(dst, src net.Conn) (int64, error) {
	small := make([]byte, waitBufferSize)
	var big *[]byte
	defer func() {
		if big != nil {
			buffers.Put(big)
		}
	}()
	var n int64
	for {
		buf := small
		if big != nil {
			buf = *big
		}
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if t.idle > 0 {
				t.lastRead.Store(time.Now().UnixNano())
			}
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		}
		// A read that filled its buffer says more is likely there at
		// once; any other may be the burst's last, and the next read
		// waits.
		switch {
		case big == nil && nr == len(small):
			big = buffers.Get().(*[]byte)
		case big != nil && nr < len(*big):
			buffers.Put(big)
			big = nil
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// checkIdle runs when the idle timer fires: it cuts the tunnel if nothing
// moved for the idle timeout, else sets the timer for the rest.
func (t *tunnel) checkIdle() {
	quiet := time.Since(time.Unix(0, t.lastRead.Load()))
	if t.tcp != nil {
		if d, ok := connQuiet(t.tcp); ok {
			quiet = min(quiet, d)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if quiet < t.idle {
		t.timer.Reset(t.idle - quiet)
		return
	}
	t.expired.Store(true)
	t.client.Close()
	t.server.Close()
}

// tcpQuiet is the time since data last went either way on the TCP socket
// fd, from the kernel's TCP_INFO.
func tcpQuiet(fd int) (time.Duration, bool) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, false
	}
	ms := min(info.Last_data_recv, info.Last_data_sent)
	return time.Duration(ms) * time.Millisecond, true
}

// connQuiet is tcpQuiet for a socket in Go's poller.
func connQuiet(c *net.TCPConn) (time.Duration, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var d time.Duration
	var ok bool
	if err := rc.Control(func(fd uintptr) { d, ok = tcpQuiet(int(fd)) }); err != nil {
		return 0, false
	}
	return d, ok
}

// raw returns the socket under a PROXY-header wrapper.
func raw(c net.Conn) net.Conn {
	if pc, ok := c.(*proxyproto.Conn); ok {
		return pc.Raw()
	}
	return c
}

func tcpOf(c net.Conn) *net.TCPConn {
	tc, _ := raw(c).(*net.TCPConn)
	return tc
}

// closeWrite shuts the write half of c, so the peer reads the end.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	if cw, ok := raw(c).(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
