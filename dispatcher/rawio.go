package dispatcher

import (
	"io"
	"os"
	"syscall"
)

// RawIO reads and writes a non-blocking socket that waits in Go's poller
// with raw system calls, for the reasons given in syscalls.go: a worker
// that went through the scheduler's system-call bookkeeping for each read
// and write of its clients and servers spent a tenth of its CPU in sysmon.
// It serves one reader and one writer at a time (the net.Conn users here:
// crypto/tls, bufio, one copy per direction).
type RawIO struct {
	rc   syscall.RawConn
	r, w rawOp
}

// rawOp is one direction's call in progress; fn is bound once so that a
// call allocates nothing.
type rawOp struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// NewRawIO returns the raw reader and writer of c's socket.
func NewRawIO(c syscall.Conn) (*RawIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	x := &RawIO{rc: rc}
	x.r.fn = x.readOnce
	x.w.fn = x.writeAll
	return x, nil
}

// Read reads what the socket holds, waiting for it in the poller (and its
// deadline) when it holds nothing. Errors are those of a net.Conn's
// descriptor: the caller wraps them.
func (x *RawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	x.r.b, x.r.n, x.r.err = b, 0, nil
	err := x.rc.Read(x.r.fn)
	x.r.b = nil
	if err != nil {
		return 0, err
	}
	if x.r.err != nil {
		return 0, x.r.err
	}
	if x.r.n == 0 {
		return 0, io.EOF
	}
	return x.r.n, nil
}

func (x *RawIO) readOnce(fd uintptr) bool {
	for {
		n, err := readFD(int(fd), x.r.b)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		x.r.n = n
		if err != nil {
			x.r.err = os.NewSyscallError("read", err)
		}
		return true
	}
}

// Write writes all of b, waiting in the poller while the socket is full.
func (x *RawIO) Write(b []byte) (int, error) {
	x.w.b, x.w.n, x.w.err = b, 0, nil
	err := x.rc.Write(x.w.fn)
	n := x.w.n
	x.w.b = nil
	if err == nil {
		err = x.w.err
	}
	return n, err
}

func (x *RawIO) writeAll(fd uintptr) bool {
	for x.w.n < len(x.w.b) {
		n, err := send(int(fd), x.w.b[x.w.n:])
		switch err {
		case nil:
			x.w.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			x.w.err = os.NewSyscallError("write", err)
			return true
		}
	}
	return true
}
