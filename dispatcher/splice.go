package dispatcher

import (
	"sync"

	"golang.org/x/sys/unix"
)

// quickAcks is how many of a TCP source's first reads are acknowledged at
// once. A TLS 1.3 client sends its Finished, then its request; Go's server
// has sent its session tickets already, so nothing goes back after the
// Finished and the kernel delays its ACK (40 ms), while a client that
// leaves Nagle's algorithm on holds its request until that ACK. Acking the
// first reads at once removes the stall; later reads keep delayed ACKs.
const quickAcks = 8

// splicer is the state of one direction of a tunnel the loop splices. A
// direction waiting for data holds no pipe: Go's io.Copy keeps a pipe (two
// descriptors) for as long as a direction is blocked, so idle tunnels cost
// six descriptors instead of two and a dispatcher full of long-lived idle
// sessions (RDP, Citrix) ran out of descriptors at a third of its maxconn.
type splicer struct {
	p         *pipe
	moved     int64
	err       error
	quickAcks int // reads left to acknowledge at once
}

// fill moves what src has into the pipe, taking a pipe for it; when src has
// nothing, it gives the empty pipe back and returns false (wait).
func (sp *splicer) fill(fd uintptr) bool {
	if sp.p == nil {
		if sp.p, sp.err = pipes.get(); sp.err != nil {
			return true
		}
	}
	var n int64
	for {
		n, sp.err = splice(int(fd), sp.p.w, pipeSize)
		if sp.err != unix.EINTR {
			break
		}
	}
	if sp.err == unix.EAGAIN {
		pipes.put(sp.p)
		sp.p, sp.err = nil, nil
		return false
	}
	if sp.err == nil {
		sp.p.n = int(n)
		if sp.quickAcks > 0 && n > 0 {
			sp.quickAcks--
			QuickAck(int(fd)) // best effort
		}
	}
	return true
}

// drain moves the pipe's bytes into dst; false when dst is full (wait).
func (sp *splicer) drain(fd uintptr) bool {
	for {
		sp.moved, sp.err = splice(sp.p.r, int(fd), sp.p.n)
		if sp.err != unix.EINTR {
			break
		}
	}
	if sp.err == unix.EAGAIN {
		sp.err = nil
		return false
	}
	if sp.err == nil {
		sp.p.n -= int(sp.moved)
	} else {
		sp.moved = 0
	}
	return true
}

// pipeSize is the most one splice moves: a pipe's default capacity.
const pipeSize = 64 << 10

// pipe is a kernel pipe used as splice's buffer; n bytes are in it.
type pipe struct {
	r, w int
	n    int
}

// pipePool keeps a few empty pipes for the next burst, so that a busy
// dispatcher does not create and close a pipe per wakeup; the rest are
// closed. It is a process-wide cache, as Go's own pipe pool is.
type pipePool struct {
	mu   sync.Mutex
	free []*pipe
}

// maxFreePipes bounds the descriptors the pool keeps: enough for the
// directions moving bytes at the same moment on a busy machine.
const maxFreePipes = 64

var pipes pipePool

func (pp *pipePool) get() (*pipe, error) {
	pp.mu.Lock()
	if n := len(pp.free); n > 0 {
		p := pp.free[n-1]
		pp.free = pp.free[:n-1]
		pp.mu.Unlock()
		return p, nil
	}
	pp.mu.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	return &pipe{r: fds[0], w: fds[1]}, nil
}

// put takes back a pipe. One still holding bytes (an aborted copy) is
// emptied when they are few, else closed rather than reused.
func (pp *pipePool) put(p *pipe) {
	if p.n > 0 && p.n <= maxDiscard {
		p.discard()
	}
	if p.n == 0 {
		pp.mu.Lock()
		if len(pp.free) < maxFreePipes {
			pp.free = append(pp.free, p)
			pp.mu.Unlock()
			return
		}
		pp.mu.Unlock()
	}
	closeFD(p.r)
	closeFD(p.w)
}

// maxDiscard is the most put reads out of a pipe to reuse it. A short
// connection usually ends with a copy aborted on a few bytes: the client's
// TLS close_notify (24 bytes) written after the server closed. Reading them
// is one system call; a new pipe for the next connection is three.
const maxDiscard = 512

// discard reads out what the pipe holds; p.n stays above 0 if that fails.
func (p *pipe) discard() {
	var buf [maxDiscard]byte
	for p.n > 0 {
		n, err := readFD(p.r, buf[:min(p.n, len(buf))])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		p.n -= n
	}
}
