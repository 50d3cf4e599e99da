package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// Loop runs every spliced tunnel of a process on one goroutine, with its
// own edge-triggered epoll set; the goroutine parks in Go's netpoller, which
// watches the set, while no socket is ready. A tunnel on goroutines costs
// two goroutine stacks (8 KiB) for as long as it lives, mostly idle, and
// every burst goes through a goroutine wakeup, splice and a park; the loop
// holds a tunnel in a few hundred bytes and moves the bursts of all ready
// sockets in one wakeup.
//
// The epoll set and the goroutine start with the first tunnel. Everything
// but the posted messages belongs to the loop's goroutine, which alone
// closes the tunnels' descriptors: another goroutine (an idle timer,
// "shutdown sessions") asks it to, so that no descriptor number is closed
// after the kernel gave it to a new connection.
type Loop struct {
	log     *slog.Logger
	once    sync.Once
	initErr error
	epfd    int
	poller  *os.File      // epfd in Go's netpoller, which tells when it has events
	wake    int           // eventfd: a message was posted
	exited  chan struct{} // closed when the goroutine returns

	mu      sync.Mutex
	posted  []loopMsg
	closing bool

	// Owned by the loop's goroutine.
	socks  map[int]*loopTunnel // by descriptor
	ready  []*flow             // flows that used their turn with bytes left
	events []unix.EpollEvent
}

// NewLoop returns a loop that logs its failures to log.
func NewLoop(log *slog.Logger) *Loop {
	return &Loop{log: log}
}

type msgKind uint8

const (
	msgStart msgKind = iota // take the tunnel in
	msgIdle                 // its idle timer fired
	msgKill                 // end it ("shutdown sessions")
	msgClose                // end every tunnel and return
)

type loopMsg struct {
	kind msgKind
	t    *loopTunnel
}

// burstsPerTurn bounds what a flow moves before the others get their turn:
// 16 pipes of 64 KiB.
const burstsPerTurn = 16

func (lp *Loop) init() error {
	lp.once.Do(func() {
		lp.initErr = lp.open()
		if lp.initErr == nil {
			go lp.run()
		}
	})
	return lp.initErr
}

func (lp *Loop) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("create the tunnels' epoll set: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("create the tunnels' eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return fmt.Errorf("watch the tunnels' eventfd: %w", err)
	}
	// Non-blocking, os.NewFile registers the epoll set with Go's
	// netpoller: the loop parks like any goroutine waiting for a socket.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return fmt.Errorf("set the tunnels' epoll set non-blocking: %w", err)
	}
	lp.poller = os.NewFile(uintptr(epfd), "tunnels")
	lp.epfd, lp.wake = epfd, wake
	lp.socks = make(map[int]*loopTunnel)
	lp.events = make([]unix.EpollEvent, 128)
	lp.exited = make(chan struct{})
	return nil
}

// Close ends every tunnel of the loop (as "shutdown sessions" would) and
// stops its goroutine; tunnels offered afterwards do not run on it. A
// process does not need it: its tunnels end when it exits.
func (lp *Loop) Close() {
	// A loop that never started cannot start any more.
	lp.once.Do(func() { lp.initErr = errors.New("tunnel loop closed") })
	if lp.initErr == nil && lp.post(loopMsg{kind: msgClose}) {
		<-lp.exited
	}
}

// post hands m to the loop's goroutine; false when the loop is closing.
func (lp *Loop) post(m loopMsg) bool {
	lp.mu.Lock()
	if lp.closing {
		lp.mu.Unlock()
		return false
	}
	lp.closing = m.kind == msgClose
	lp.posted = append(lp.posted, m)
	if len(lp.posted) == 1 {
		// Under mu: the loop closes the eventfd once closing is set.
		// A full counter (never in practice) has woken the loop already.
		one := [8]byte{1}
		writeFD(lp.wake, one[:])
	}
	lp.mu.Unlock()
	return true
}

// loopTunnel is a tunnel the loop runs: fds[0] is the client's socket,
// fds[1] the server's, both duplicated out of Go's netpoller.
type loopTunnel struct {
	lp       *Loop
	fds      [2]int
	flows    [2]flow // client to server, server to client
	idle     time.Duration
	timer    *time.Timer
	tcp      int   // a TCP side, whose TCP_INFO tells idleness; -1 if none
	lastRead int64 // unix nanoseconds of the last burst, without tcp
	killed   bool
	// out[i]: fds[i] is watched for room to write, which only a flow
	// waiting for its destination needs.
	out     [2]bool
	started bool
	ended   bool
	end     func(fromClient, fromServer int64, term string)
}

// flow is one direction of a loopTunnel: it reads side from and writes
// side 1-from.
type flow struct {
	t     *loopTunnel
	from  int
	sp    splicer
	moved int64
	state flowState
}

type flowState uint8

const (
	waitIn  flowState = iota // for its source to be readable
	waitOut                  // for its destination to take the pipe's bytes
	queued                   // in the ready list
	shut                     // its source ended; the destination's write half is shut
)

// Close ends the tunnel, for "shutdown sessions": the loop closes both
// sides. It is the io.Closer that backend.Server.Track keeps.
func (t *loopTunnel) Close() error {
	t.lp.post(loopMsg{kind: msgKill, t: t})
	return nil
}

// adopt takes client's and server's descriptors out of Go's netpoller for
// the loop, and closes the net.Conns. It returns nil, with both connections
// as they were, when either is not a raw TCP or unix socket, or when a
// descriptor could not be duplicated: the tunnel then runs on goroutines.
// Bytes a PROXY-header wrapper had buffered from the client are written to
// the server first; drained says how many.
func (lp *Loop) adopt(client, server net.Conn, idle time.Duration) (t *loopTunnel, drained int64, err error) {
	csock, cTCP, ok := rawSocket(client)
	ssock, sTCP, ok2 := rawSocket(server)
	if !ok || !ok2 || lp.init() != nil {
		return nil, 0, nil
	}
	if pc, ok := client.(*proxyproto.Conn); ok {
		if drained, err = drainProxyConn(pc, server); err != nil {
			return nil, drained, err
		}
	}
	cfd, err := dupFD(csock)
	if err != nil {
		return nil, drained, nil
	}
	sfd, err := dupFD(ssock)
	if err != nil {
		unix.Close(cfd)
		return nil, drained, nil
	}
	// Go removes a socket from its poller when it closes it; the
	// duplicates keep the sockets open.
	client.Close()
	server.Close()
	return lp.tunnel(cfd, sfd, cTCP, sTCP, idle), drained, nil
}

// tunnel makes the tunnel between the client's socket cfd and the
// server's sfd, descriptors outside Go's netpoller that it then owns; the
// TCP ones (cTCP, sTCP) get their first reads acknowledged at once.
func (lp *Loop) tunnel(cfd, sfd int, cTCP, sTCP bool, idle time.Duration) *loopTunnel {
	t := &loopTunnel{lp: lp, fds: [2]int{cfd, sfd}, idle: idle, tcp: -1, lastRead: time.Now().UnixNano()}
	switch {
	case cTCP:
		t.tcp = cfd
	case sTCP:
		t.tcp = sfd
	}
	for i := range t.flows {
		t.flows[i] = flow{t: t, from: i}
	}
	if cTCP {
		t.flows[0].sp.quickAcks = quickAcks
	}
	if sTCP {
		t.flows[1].sp.quickAcks = quickAcks
	}
	return t
}

// start hands t to the loop; end is called on a goroutine of its own once
// both directions are done or the tunnel was cut.
func (lp *Loop) start(t *loopTunnel, end func(fromClient, fromServer int64, term string)) {
	t.end = end
	if !lp.post(loopMsg{kind: msgStart, t: t}) {
		t.finish("--")
	}
}

// rawSocket returns the socket a tunnel may splice: a TCP or unix socket,
// bare or under a PROXY-header wrapper.
func rawSocket(c net.Conn) (sock syscall.Conn, isTCP, ok bool) {
	switch s := raw(c).(type) {
	case *net.TCPConn:
		return s, true, true
	case *net.UnixConn:
		return s, false, true
	}
	return nil, false, false
}

// dupFD duplicates the descriptor of s; the duplicate shares the
// non-blocking file description.
func dupFD(s syscall.Conn) (int, error) {
	rc, err := s.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("duplicate a tunnel's socket: %w", derr)
	}
	return fd, nil
}

// drainProxyConn writes to server what pc read past its PROXY header. An
// expired read deadline makes pc return its buffered bytes and nothing
// from the socket: Go checks the deadline before reading. The error is the
// server's.
func drainProxyConn(pc *proxyproto.Conn, server net.Conn) (int64, error) {
	pc.SetReadDeadline(time.Unix(1, 0))
	defer pc.SetReadDeadline(time.Time{})
	var n int64
	buf := make([]byte, 512)
	for {
		nr, rerr := pc.Read(buf)
		if nr > 0 {
			nw, werr := server.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, fmt.Errorf("write the client's first bytes to the server: %w", werr)
			}
		}
		if rerr != nil {
			// The deadline, once the buffer is empty: the loop
			// reads the rest.
			return n, nil
		}
	}
}

// run is the loop's goroutine. It collects events without blocking and
// parks in Go's netpoller while there are none. Blocking in epoll_wait
// instead gives the goroutine's P away: on each wakeup the thread must get
// a P back, and when other goroutines hold them (GOMAXPROCS=1 under
// cpu-map) it waits in the global run queue. That cut the hop benchmark's
// throughput and connection rate to a third at GOMAXPROCS=1, by half at 2.
func (lp *Loop) run() {
	defer close(lp.exited)
	rc, err := lp.poller.SyscallConn()
	if err != nil {
		lp.stop(fmt.Errorf("tunnels' epoll set: %w", err))
		return
	}
	var done bool
	var werr error
	// One Read for the loop's life: Read forgets, when it starts, what
	// the netpoller reported before; within it, an event that arrives
	// while the loop works wakes the next wait.
	err = rc.Read(func(fd uintptr) bool {
		done, werr = lp.turns(int(fd))
		return done || werr != nil
	})
	if err == nil {
		err = werr
	}
	switch {
	case err != nil:
		// Not expected with a valid set and buffer: the tunnels would
		// hang, so end them.
		lp.stop(fmt.Errorf("epoll_wait: %w", err))
	case done:
		lp.closeAll()
	}
}

// turns moves what is ready until the epoll set has nothing more, which
// the netpoller then watches; done when the loop is closing.
func (lp *Loop) turns(epfd int) (done bool, err error) {
	events := lp.events
	for {
		n, err := epollWait(epfd, events)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == lp.wake {
				if lp.takePosted() {
					return true, nil
				}
				continue
			}
			lp.event(int(ev.Fd), ev.Events)
		}
		ready := lp.ready
		lp.ready = nil
		for _, f := range ready {
			if f.state == queued {
				lp.move(f)
			}
		}
		clear(ready)
		if n < len(events) && len(lp.ready) == 0 {
			return false, nil
		}
	}
}

// stop ends the loop on an error.
func (lp *Loop) stop(err error) {
	lp.log.Error("tunnel loop stopped, its tunnels closed", "err", err)
	lp.closeAll()
}

// takePosted handles the posted messages; true when the loop must return.
func (lp *Loop) takePosted() bool {
	var count [8]byte
	readFD(lp.wake, count[:])
	lp.mu.Lock()
	msgs := lp.posted
	lp.posted = nil
	lp.mu.Unlock()
	for _, m := range msgs {
		switch m.kind {
		case msgStart:
			lp.add(m.t)
		case msgIdle:
			m.t.checkIdle()
		case msgKill:
			m.t.killed = true
			if m.t.started {
				m.t.finish("--")
			}
		case msgClose:
			return true // run closes all once out of the poller's Read
		}
	}
	return false
}

// closeAll ends every tunnel and releases the loop's descriptors.
func (lp *Loop) closeAll() {
	for _, t := range lp.socks {
		t.finish("--")
	}
	lp.mu.Lock()
	lp.closing = true
	msgs := lp.posted
	lp.posted = nil
	lp.mu.Unlock()
	for _, m := range msgs {
		if m.kind == msgStart {
			m.t.finish("--")
		}
	}
	lp.poller.Close()
	unix.Close(lp.wake)
}

// add watches t's sockets. Edge-triggered: the loop is told when a socket
// becomes readable or writable, and each flow moves until splice says
// EAGAIN. Adding a socket that is ready already reports it at once.
func (lp *Loop) add(t *loopTunnel) {
	t.started = true
	if t.killed {
		t.finish("--")
		return
	}
	for _, fd := range t.fds {
		lp.socks[fd] = t
		ev := unix.EpollEvent{Events: watchIn, Fd: int32(fd)}
		if err := epollCtl(lp.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			// Out of epoll watches (fs.epoll.max_user_watches):
			// "R", a resource of the proxy was exhausted.
			lp.log.Warn("tunnel closed", "err", fmt.Errorf("watch a tunnel's socket: epoll_ctl: %w", err))
			t.finish("RD")
			return
		}
	}
	if t.idle > 0 {
		t.timer = time.AfterFunc(t.idle, func() { lp.post(loopMsg{kind: msgIdle, t: t}) })
	}
}

// event moves the flows that a socket's readiness concerns: the one reading
// it when it became readable (or failed, or its peer closed), the one
// writing to it when it can take bytes again.
func (lp *Loop) event(fd int, events uint32) {
	// An event may be stale: its socket closed earlier in this batch,
	// and the number is free or a new tunnel's already, which then only
	// costs that tunnel a splice that says EAGAIN.
	t := lp.socks[fd]
	if t == nil {
		return
	}
	side := 0
	if t.fds[1] == fd {
		side = 1
	}
	const failed = unix.EPOLLERR | unix.EPOLLHUP
	if f := &t.flows[side]; f.state == waitIn && events&(unix.EPOLLIN|unix.EPOLLRDHUP|failed) != 0 {
		lp.move(f)
	}
	if f := &t.flows[1-side]; f.state == waitOut && events&(unix.EPOLLOUT|failed) != 0 {
		lp.move(f)
	} else if events&unix.EPOLLOUT != 0 {
		t.watchOut(side, false) // nothing waits for room any more
	}
}

// watchIn is what the loop always watches on a tunnel's socket.
const watchIn = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// watchOut starts or stops watching fds[side] for room to write. A socket
// is watched for it only while a flow waits to write to it: a unix socket
// reports room after every read its peer makes, and each report would
// wake the loop for nothing. Starting to watch reports at once a socket
// that has room already, so no wakeup is lost.
func (t *loopTunnel) watchOut(side int, on bool) {
	if t.ended || t.out[side] == on {
		return
	}
	ev := unix.EpollEvent{Events: watchIn, Fd: int32(t.fds[side])}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := epollCtl(t.lp.epfd, unix.EPOLL_CTL_MOD, t.fds[side], &ev); err != nil {
		// A flow that cannot learn when to go on would hang.
		t.lp.log.Warn("tunnel closed", "err", fmt.Errorf("watch a tunnel's socket: epoll_ctl: %w", err))
		t.finish("RD")
		return
	}
	t.out[side] = on
}

// move runs a flow: splice the source into a pipe (taken from the pool
// only while bytes are in it), the pipe into the destination; on EAGAIN
// wait for the socket's next edge. The end of the source shuts the
// destination's write half; an error ends the tunnel.
func (lp *Loop) move(f *flow) {
	t := f.t
	if t.ended {
		return
	}
	src, dst := t.fds[f.from], t.fds[1-f.from]
	for range burstsPerTurn {
		if f.sp.p == nil || f.sp.p.n == 0 {
			if !f.sp.fill(uintptr(src)) {
				f.state = waitIn
				return
			}
			if f.sp.err != nil {
				t.fail(f.from)
				return
			}
			if f.sp.p.n == 0 {
				pipes.put(f.sp.p)
				f.sp.p = nil
				f.state = shut
				shutdownWrite(dst) // best effort, as closeWrite
				if t.flows[1-f.from].state == shut {
					t.finish("--")
				}
				return
			}
			if t.idle > 0 && t.tcp < 0 {
				t.lastRead = time.Now().UnixNano()
			}
		}
		for f.sp.p.n > 0 {
			if !f.sp.drain(uintptr(dst)) {
				f.state = waitOut
				t.watchOut(1-f.from, true)
				return
			}
			if f.sp.err != nil {
				t.fail(1 - f.from)
				return
			}
			f.moved += f.sp.moved
		}
	}
	f.state = queued
	lp.ready = append(lp.ready, f)
}

// fail ends the tunnel on an error of side's socket: "CD" for the client,
// "SD" for the server.
func (t *loopTunnel) fail(side int) {
	term := "CD"
	if side == 1 {
		term = "SD"
	}
	t.finish(term)
}

// checkIdle runs when the idle timer fires: it cuts the tunnel if nothing
// moved for the idle timeout, else sets the timer for the rest.
func (t *loopTunnel) checkIdle() {
	if t.ended {
		return
	}
	quiet := time.Since(time.Unix(0, t.lastRead))
	if t.tcp >= 0 {
		if d, ok := tcpQuiet(t.tcp); ok {
			quiet = min(quiet, d)
		}
	}
	if quiet < t.idle {
		t.timer.Reset(t.idle - quiet)
		return
	}
	t.finish("cD")
}

// finish closes the tunnel's sockets and reports its end. Only the loop's
// goroutine calls it, or the goroutine that could not post the tunnel to
// a closing loop.
func (t *loopTunnel) finish(term string) {
	if t.ended {
		return
	}
	t.ended = true
	if t.timer != nil {
		t.timer.Stop()
	}
	for i := range t.flows {
		f := &t.flows[i]
		if f.sp.p != nil {
			pipes.put(f.sp.p)
			f.sp.p = nil
		}
		f.state = shut
	}
	for _, fd := range t.fds {
		if t.started {
			delete(t.lp.socks, fd)
		}
		// The last descriptor of the socket: closing it removes it
		// from the epoll set too.
		closeFD(fd)
	}
	// On a goroutine of its own: end may log and take locks, and the loop
	// must not wait for them.
	go t.end(t.flows[0].moved, t.flows[1].moved, term)
}
