package dispatcher

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/addr"
)

// Socket is an accepted TCP connection held as a bare non-blocking
// descriptor, outside Go's netpoller, for a tunnel the loop runs. Taken
// through net.Listener.Accept, the same connection costs a registration
// with the poller, Go's keep-alive options (four setsockopt calls that
// HAProxy does not make either), then the duplicate the loop takes and the
// close of the original: a third of the dispatcher's system calls for a
// short connection.
type Socket struct {
	fd            int
	Remote, Local *net.TCPAddr
}

// Listener is a TCP listener whose connections can also be accepted as
// Sockets. Go's listener cannot wait for a connection it does not accept
// itself, so a duplicate of its descriptor, an os.File in the netpoller,
// waits for those. Close closes both.
type Listener struct {
	*net.TCPListener
	file   *os.File
	raw    syscall.RawConn
	closed atomic.Bool
	// local is the address of every connection when the listener is
	// bound to one IP; nil for a wildcard, asked per connection.
	local *net.TCPAddr
}

// NewListener wraps ln.
func NewListener(ln *net.TCPListener) (*Listener, error) {
	f, err := ln.File() // non-blocking, like ln: os.File polls it
	if err != nil {
		return nil, fmt.Errorf("duplicate listener %s: %w", ln.Addr(), err)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("listener %s: %w", ln.Addr(), err)
	}
	// Accepted sockets inherit TCP_NODELAY from the listening one:
	// set once here rather than once per connection.
	raw.Control(func(fd uintptr) { noDelay(int(fd)) })
	l := &Listener{TCPListener: ln, file: f, raw: raw}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		l.local = a
	}
	return l, nil
}

// Close closes the listener and its duplicate.
func (l *Listener) Close() error {
	l.closed.Store(true)
	l.file.Close()
	return l.TCPListener.Close()
}

// AcceptSocket waits for the next connection and takes it as a Socket,
// with TCP_NODELAY set as Go and HAProxy set it (inherited from the
// listener). After Close it returns net.ErrClosed, as Accept does.
func (l *Listener) AcceptSocket() (*Socket, error) {
	fd := -1
	var sa syscall.Sockaddr
	var aerr error
	err := l.raw.Read(func(lfd uintptr) bool {
		for {
			fd, sa, aerr = accept4(int(lfd))
			// A connection reset while in the backlog: take the next.
			if aerr != syscall.EINTR && aerr != syscall.ECONNABORTED {
				return aerr != syscall.EAGAIN
			}
		}
	})
	if err != nil {
		if l.closed.Load() {
			// The file's own error says "use of closed file".
			return nil, net.ErrClosed
		}
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	s := &Socket{fd: fd, Remote: tcpAddr(sa), Local: l.local}
	if s.Local == nil {
		local, err := getsockname(fd)
		if err != nil {
			closeFD(fd)
			return nil, os.NewSyscallError("getsockname", err)
		}
		s.Local = tcpAddr(local)
	}
	if s.Remote == nil || s.Local == nil {
		closeFD(fd)
		return nil, errors.New("accept: not a TCP connection")
	}
	return s, nil
}

// Conn hands the socket to Go's netpoller, for a tunnel that does not run
// on the loop. The Socket is spent either way: on failure its descriptor
// is closed already, and closing it again could close another
// connection's.
func (s *Socket) Conn() (net.Conn, error) {
	f := os.NewFile(uintptr(s.fd), "client")
	defer f.Close() // net.FileConn works on a duplicate
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("take the client's socket: %w", err)
	}
	return c, nil
}

// Close closes the socket.
func (s *Socket) Close() { closeFD(s.fd) }

// tcpAddr converts a TCP socket's address. syscall's, not x/sys/unix's:
// the latter asks the socket's protocol with one more system call.
func tcpAddr(sa syscall.Sockaddr) *net.TCPAddr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		a := &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return nil
}

// dialUnix connects to a unix or abstract socket outside Go's netpoller,
// for the loop. Connecting to a unix socket never waits: it succeeds, or
// fails at once (refused, or EAGAIN with the listener's backlog full), as
// Go's own dial does.
func dialUnix(a addr.Addr) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("connect %s: %w", a.Text, os.NewSyscallError("socket", err))
	}
	// syscall's address, not x/sys/unix's: only it takes abns@'s name
	// padded to the whole of sun_path.
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: a.String()}); err != nil {
		closeFD(fd)
		return -1, fmt.Errorf("connect %s: %w", a.Text, os.NewSyscallError("connect", err))
	}
	return fd, nil
}

// fdWriter writes a short message, a PROXY header, to a socket that has
// just connected: its send buffer is empty, so it takes it whole.
type fdWriter int

func (w fdWriter) Write(b []byte) (int, error) {
	n, err := unix.Write(int(w), b)
	if err != nil {
		return 0, os.NewSyscallError("write", err)
	}
	if n < len(b) {
		return n, fmt.Errorf("write: %d of %d bytes taken", n, len(b))
	}
	return n, nil
}
