package dispatcher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
)

// A dispatcher of the two-tier layout forwards a client to a worker's
// abns@ bind with a PROXY header, and would then copy every byte of the
// connection between the two sockets for its whole life. When that bind
// belongs to this same configuration, the dispatcher hands the client's
// socket itself to the worker process instead (SCM_RIGHTS), with the PROXY
// header it would have sent: the worker serves the client directly and the
// dispatcher moves no byte. The worker reports each connection's end, so
// leastconn counts stay exact.
//
// Each dispatcher process opens one channel per server address: a unix
// connection to the bind that starts with a PROXY v2 LOCAL header carrying
// handoffTLV. The worker answers msgReady. Then, on the channel:
//
//	dispatcher → worker  'H' id(8) len(2) PROXY header, the socket attached
//	dispatcher → worker  'C' id(8): close that connection (shutdown sessions)
//	worker → dispatcher  'D' id(8) bytes from client(8) bytes to client(8)
//	worker → dispatcher  'G': stopping, open a new channel for new clients
//
// After 'G' the dispatcher shuts its side for writing; the worker serves
// what it was handed, reports, and closes the channel at the end.
const (
	msgHand   = 'H'
	msgCut    = 'C'
	msgDone   = 'D'
	msgGoAway = 'G'
	msgReady  = 'K'
)

// handoffTLV is the PROXY v2 TLV that opens a channel (0xE0-0xEF are the
// types for private use), and handoffMagic its value.
const handoffTLV proxyproto.PP2Type = 0xE5

var handoffMagic = []byte("sluice-handoff/1")

// maxHandoffHeader bounds the PROXY header of a handed connection: ours
// carry addresses only (at most 232 bytes).
const maxHandoffHeader = 1024

// handoffRetry is how long a dispatcher forwards the bytes of a server's
// clients after a channel to it could not be opened, before trying again.
const handoffRetry = 10 * time.Second

// Handoffs opens and keeps a process's channels to the workers it hands
// clients to.
type Handoffs struct {
	log     *slog.Logger
	targets atomic.Pointer[map[addr.Addr]bool] // socketOf the binds that take handoffs

	mu     sync.Mutex
	chans  map[addr.Addr]*handoffChannel
	failed map[addr.Addr]time.Time // when opening a channel to an address last failed
}

// socketOf is a without the text it was written as: the socket it names,
// the key of the maps here (a.String() built a 108-byte string for each
// connection).
func socketOf(a addr.Addr) addr.Addr {
	a.Text = ""
	return a
}

// NewHandoffs returns a process's Handoffs; it hands nothing until
// SetTargets names the binds that take sockets.
func NewHandoffs(log *slog.Logger) *Handoffs {
	h := &Handoffs{log: log, chans: make(map[addr.Addr]*handoffChannel), failed: make(map[addr.Addr]time.Time)}
	h.targets.Store(&map[addr.Addr]bool{})
	return h
}

// SetTargets says which binds of the configuration in force take handed
// sockets: abns@ binds with accept-proxy, which only a Sluice process of
// the same configuration serves.
func (h *Handoffs) SetTargets(binds []addr.Addr) {
	t := make(map[addr.Addr]bool, len(binds))
	for _, a := range binds {
		if a.Family == addr.Abstract {
			t[socketOf(a)] = true
		}
	}
	h.targets.Store(&t)
}

// takes says whether s's clients are handed over rather than forwarded: s
// is one of the targets, wants a PROXY header and no TLS.
func (h *Handoffs) takes(s *backend.Server) bool {
	if h == nil || s.Config().SendProxy == 0 || s.TLS() != nil {
		return false
	}
	return (*h.targets.Load())[socketOf(s.Addr())]
}

// channel returns the open channel to a, opening it when there is none; nil
// when it cannot be opened, and then for handoffRetry. Other connections
// wait while a channel opens: a worker answers at once, or within the
// 1 s bound once, and its server is forwarded for handoffRetry after.
func (h *Handoffs) channel(a addr.Addr, timeout time.Duration) *handoffChannel {
	key := socketOf(a)
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch := h.chans[key]; ch != nil {
		return ch
	}
	if t, ok := h.failed[key]; ok && time.Since(t) < handoffRetry {
		return nil
	}
	ch, err := openChannel(a, timeout)
	if err != nil {
		h.failed[key] = time.Now()
		h.log.Warn("cannot hand connections over, forwarding their bytes instead", "server", a.Text, "err", err)
		return nil
	}
	delete(h.failed, key)
	ch.h, ch.key, ch.name = h, key, a.Text
	h.chans[key] = ch
	go ch.readReports()
	return ch
}

// openChannel connects to a and waits, at most timeout (1 s when longer),
// for the worker to accept the channel.
func openChannel(a addr.Addr, timeout time.Duration) (*handoffChannel, error) {
	if timeout <= 0 || timeout > time.Second {
		timeout = time.Second
	}
	c, err := net.DialTimeout("unix", a.String(), timeout)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", a.Text, err)
	}
	uc := c.(*net.UnixConn)
	uc.SetDeadline(time.Now().Add(timeout))
	hdr := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	if err := hdr.SetTLVs([]proxyproto.TLV{{Type: handoffTLV, Value: handoffMagic}}); err != nil {
		uc.Close()
		return nil, err
	}
	var ready [1]byte
	if _, err := hdr.WriteTo(uc); err != nil {
		uc.Close()
		return nil, fmt.Errorf("open a handoff channel to %s: %w", a.Text, err)
	}
	if _, err := io.ReadFull(uc, ready[:]); err != nil || ready[0] != msgReady {
		uc.Close()
		if err == nil {
			err = fmt.Errorf("unexpected answer %q", ready[0])
		}
		return nil, fmt.Errorf("open a handoff channel to %s: %w", a.Text, err)
	}
	uc.SetDeadline(time.Time{})
	raw, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, err
	}
	return &handoffChannel{conn: uc, raw: raw, pending: make(map[uint64]func(int64, int64, string))}, nil
}

// handoffChannel is a dispatcher's end of a channel.
type handoffChannel struct {
	h    *Handoffs
	key  addr.Addr // socketOf the server's address
	name string    // the address as written, for logs
	conn *net.UnixConn
	raw  syscall.RawConn
	wmu  sync.Mutex // one message at a time

	mu      sync.Mutex
	next    uint64
	pending map[uint64]func(fromClient, toClient int64, term string) // by id
	retired bool                                                     // no new connections
}

// errHandoffEnded says a handoff failed after the channel broke and
// already reported the connection over.
var errHandoffEnded = errors.New("handoff channel broke")

// hand passes the socket fd with its PROXY header. ended is called once,
// when the worker reports the connection over or the channel breaks. The
// Closer asks the worker to close the connection. On errHandoffEnded ended
// was called already; on another error it was not, and the socket is still
// the caller's. Either way the caller still owns fd and closes it.
func (ch *handoffChannel) hand(fd int, header []byte, ended func(fromClient, toClient int64, term string)) (io.Closer, error) {
	ch.mu.Lock()
	if ch.retired {
		ch.mu.Unlock()
		return nil, errors.New("handoff channel retired")
	}
	ch.next++
	id := ch.next
	ch.pending[id] = ended
	ch.mu.Unlock()

	msg := make([]byte, 11+len(header))
	msg[0] = msgHand
	binary.BigEndian.PutUint64(msg[1:], id)
	binary.BigEndian.PutUint16(msg[9:], uint16(len(header)))
	copy(msg[11:], header)
	ch.wmu.Lock()
	err := ch.writeMsg(msg, fd)
	ch.wmu.Unlock()
	if err == nil {
		return &handedConn{ch: ch, id: id}, nil
	}
	ch.mu.Lock()
	_, mine := ch.pending[id]
	delete(ch.pending, id)
	ch.mu.Unlock()
	ch.retire()
	if !mine {
		return nil, errHandoffEnded
	}
	return nil, fmt.Errorf("hand a connection over: %w", err)
}

// writeMsg writes msg with the descriptor pass attached to its first byte,
// then the rest if the socket took only part of it. The system call is raw
// (see syscalls.go), and waits in Go's poller only when the socket is full.
func (ch *handoffChannel) writeMsg(msg []byte, pass int) error {
	var n int
	var err error
	if werr := ch.raw.Write(func(fd uintptr) bool {
		n, err = sendFD(int(fd), msg, pass)
		return err != unix.EAGAIN
	}); werr != nil {
		return werr
	}
	if err == nil && n < len(msg) {
		_, err = ch.conn.Write(msg[n:])
	}
	return err
}

// readReports reads the worker's reports until the channel ends.
func (ch *handoffChannel) readReports() {
	buf := make([]byte, 25*32)
	n := 0
	var err error
	for err == nil {
		var m int
		if rerr := ch.raw.Read(func(fd uintptr) bool {
			m, err = readFD(int(fd), buf[n:])
			return err != unix.EAGAIN
		}); rerr != nil {
			err = rerr
			break
		}
		if err == nil && m == 0 {
			err = io.EOF
		}
		n += m
		used := 0
		for used < n && err == nil {
			b := buf[used:n]
			switch b[0] {
			case msgGoAway:
				ch.retire()
				used++
				continue
			case msgDone:
				if len(b) < 25 {
					break
				}
				id := binary.BigEndian.Uint64(b[1:])
				ch.mu.Lock()
				ended := ch.pending[id]
				delete(ch.pending, id)
				ch.mu.Unlock()
				if ended != nil {
					ended(int64(binary.BigEndian.Uint64(b[9:])), int64(binary.BigEndian.Uint64(b[17:])), "--")
				}
				used += 25
				continue
			default:
				err = fmt.Errorf("unexpected message %q", b[0])
			}
			break
		}
		n = copy(buf, buf[used:n])
	}
	ch.retire()
	ch.conn.Close()
	ch.mu.Lock()
	pending := ch.pending
	ch.pending = nil
	ch.mu.Unlock()
	if len(pending) > 0 {
		ch.h.log.Warn("handoff channel broke: connections handed over are counted as ended", "server", ch.name, "connections", len(pending), "err", err)
	}
	for _, ended := range pending {
		ended(0, 0, "SD")
	}
}

// retire stops new handoffs on ch: the next connection opens a new channel.
// The worker learns it from the end of the stream.
func (ch *handoffChannel) retire() {
	ch.mu.Lock()
	was := ch.retired
	ch.retired = true
	ch.mu.Unlock()
	if was {
		return
	}
	ch.h.mu.Lock()
	if ch.h.chans[ch.key] == ch {
		delete(ch.h.chans, ch.key)
	}
	ch.h.mu.Unlock()
	ch.wmu.Lock()
	ch.conn.CloseWrite()
	ch.wmu.Unlock()
}

// handedConn is a connection handed over, as the server's tracked
// connections see it: closing it asks the worker to close it.
type handedConn struct {
	ch *handoffChannel
	id uint64
}

func (c *handedConn) Close() error {
	var msg [9]byte
	msg[0] = msgCut
	binary.BigEndian.PutUint64(msg[1:], c.id)
	c.ch.wmu.Lock()
	defer c.ch.wmu.Unlock()
	_, err := c.ch.conn.Write(msg[:])
	return err
}

// IsHandoffChannel says whether a connection that started with h is a
// dispatcher's handoff channel.
func IsHandoffChannel(h *proxyproto.Header) bool {
	if h == nil || h.Command != proxyproto.LOCAL {
		return false
	}
	tlvs, err := h.TLVs()
	if err != nil {
		return false
	}
	for _, t := range tlvs {
		if t.Type == handoffTLV && bytes.Equal(t.Value, handoffMagic) {
			return true
		}
	}
	return false
}

// HandoffReceiver is a worker's end of a channel.
type HandoffReceiver struct {
	conn *net.UnixConn
	// rc and out read and write conn with raw system calls (see
	// syscalls.go); out under wmu.
	rc  syscall.RawConn
	out *RawIO
	wmu sync.Mutex
}

// AcceptHandoffs takes the channel a dispatcher opened on c, whose PROXY
// header has been read and nothing else: it checks that the peer runs as
// this process's user (the socket it hands over is then one it could have
// forwarded anyway) and says it is ready.
func AcceptHandoffs(c net.Conn) (*HandoffReceiver, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, errors.New("handoff channel over a socket that is not unix")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("peer of a handoff channel: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return nil, fmt.Errorf("handoff channel from uid %d, not %d", cred.Uid, os.Getuid())
	}
	if _, err := uc.Write([]byte{msgReady}); err != nil {
		return nil, fmt.Errorf("accept a handoff channel: %w", err)
	}
	out, err := NewRawIO(uc)
	if err != nil {
		return nil, err
	}
	return &HandoffReceiver{conn: uc, rc: rc, out: out}, nil
}

// Serve reads the channel until the dispatcher shuts it: each connection
// handed over goes to take with its id, each cut to cut. It returns nil at
// the end of the stream.
func (r *HandoffReceiver) Serve(take func(id uint64, c *HandedConn), cut func(id uint64)) error {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var fds []int // received, not yet matched with their message
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	n := 0
	var m, oobn, flags int
	var rerr error
	recv := func(fd uintptr) bool {
		m, oobn, flags, rerr = recvmsg(int(fd), buf[n:], oob)
		return rerr != syscall.EAGAIN
	}
	for {
		m, oobn, flags, rerr = 0, 0, 0, nil // a failed Read does not call recv
		err := r.rc.Read(recv)
		if err == nil && rerr != nil {
			err = os.NewSyscallError("recvmsg", rerr)
		}
		if err == nil && m == 0 && oobn == 0 {
			err = io.EOF
		}
		if oobn > 0 {
			got, perr := parseRights(oob[:oobn])
			fds = append(fds, got...)
			if perr != nil && err == nil {
				err = perr
			}
		}
		if err == nil && flags&unix.MSG_CTRUNC != 0 {
			err = errors.New("handoff channel: control message truncated")
		}
		n += m
		used, perr := r.parse(buf[:n], &fds, take, cut)
		n = copy(buf, buf[used:n])
		if perr != nil {
			return perr
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if n > 0 {
					return errors.New("handoff channel ended inside a message")
				}
				return nil
			}
			return err
		}
	}
}

// parse handles the whole messages at the start of b and says how many
// bytes they took.
func (r *HandoffReceiver) parse(b []byte, fds *[]int, take func(uint64, *HandedConn), cut func(uint64)) (int, error) {
	used := 0
	for len(b) > used {
		m := b[used:]
		switch m[0] {
		case msgCut:
			if len(m) < 9 {
				return used, nil
			}
			cut(binary.BigEndian.Uint64(m[1:]))
			used += 9
		case msgHand:
			if len(m) < 11 {
				return used, nil
			}
			hlen := int(binary.BigEndian.Uint16(m[9:]))
			if hlen > maxHandoffHeader {
				return used, fmt.Errorf("handoff channel: PROXY header of %d bytes", hlen)
			}
			if len(m) < 11+hlen {
				return used, nil
			}
			if len(*fds) == 0 {
				return used, errors.New("handoff channel: a connection without its socket")
			}
			fd := (*fds)[0]
			*fds = (*fds)[1:]
			id := binary.BigEndian.Uint64(m[1:])
			// The dispatcher's socket is non-blocking (the flag belongs
			// to the open socket, which both processes share), so the
			// file waits in Go's poller.
			take(id, newHandedConn(os.NewFile(uintptr(fd), "client"), bytes.Clone(m[11:11+hlen])))
			used += 11 + hlen
		default:
			return used, fmt.Errorf("handoff channel: unexpected message %q", m[0])
		}
	}
	return used, nil
}

// HandedConn is a client's connection as a worker gets it from a
// dispatcher. It reads the PROXY header the dispatcher would have sent
// first, as a forwarded connection starts, then the client's bytes, and
// counts them both ways for the dispatcher's logs and stats. It holds the
// socket as an os.File: net.FileConn would take a duplicate and ask the
// kernel for the socket's type and both addresses, four more system calls
// per connection, when the PROXY header gives the addresses anyway.
type HandedConn struct {
	f       *os.File
	io      *RawIO
	header  []byte
	in, out atomic.Int64
	closed  atomic.Bool

	// corked: writes go to held until Uncork or Close (under mu).
	corked atomic.Bool
	mu     sync.Mutex
	held   []byte
}

// maxHeld is the most a corked connection holds before it writes anyway;
// heldFlushTime bounds the write of what it held when it closes.
const (
	maxHeld       = 64 << 10
	heldFlushTime = 5 * time.Second
)

func newHandedConn(f *os.File, header []byte) *HandedConn {
	c := &HandedConn{f: f, header: header}
	c.io, _ = NewRawIO(f) // an os.File always has its RawConn
	return c
}

func (c *HandedConn) Read(b []byte) (int, error) {
	if len(c.header) > 0 {
		n := copy(b, c.header)
		c.header = c.header[n:]
		return n, nil
	}
	n, err := c.io.Read(b)
	c.in.Add(int64(n))
	return n, c.ioError("read", err)
}

func (c *HandedConn) Write(b []byte) (int, error) {
	if c.corked.Load() {
		c.mu.Lock()
		if c.corked.Load() && len(c.held)+len(b) <= maxHeld {
			c.held = append(c.held, b...)
			c.mu.Unlock()
			return len(b), nil
		}
		c.mu.Unlock()
		if err := c.Uncork(); err != nil {
			return 0, err
		}
	}
	return c.write(b)
}

func (c *HandedConn) write(b []byte) (int, error) {
	n, err := c.io.Write(b)
	c.out.Add(int64(n))
	return n, c.ioError("write", err)
}

// Cork holds what is written from now on (up to maxHeld) until Uncork or
// Close: the end of a response after which the connection closes, and
// the TLS close_notify after it, then go out in one write.
func (c *HandedConn) Cork() { c.corked.Store(true) }

// Uncork writes what was held, and lets writes through again.
func (c *HandedConn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked.Store(false)
	held := c.held
	c.held = nil
	if len(held) == 0 {
		return nil
	}
	_, err := c.write(held)
	return err
}

// Close writes what a Cork held, then closes the socket. crypto/tls
// closes with the write deadline passed (after its close_notify, "any
// subsequent writes will fail"), so the held bytes get the time TLS gives
// its close_notify.
func (c *HandedConn) Close() error {
	if c.corked.Load() {
		c.f.SetWriteDeadline(time.Now().Add(heldFlushTime))
		c.Uncork() // a client gone: nothing more to do about it
	}
	c.closed.Store(true)
	return netError("close", c.f.Close())
}

// ioError is netError for the raw calls, whose error for a closed file
// is the poller's own.
func (c *HandedConn) ioError(op string, err error) error {
	if err != nil && err != io.EOF && c.closed.Load() {
		err = os.ErrClosed
	}
	return netError(op, err)
}

// CloseWrite shuts the client's half.
func (c *HandedConn) CloseWrite() error {
	return c.control("shutdown", func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) })
}

// SyscallConn gives access to the client's socket.
func (c *HandedConn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// Bytes are what the client sent and what it was sent so far.
func (c *HandedConn) Bytes() (fromClient, toClient int64) { return c.in.Load(), c.out.Load() }

func (c *HandedConn) LocalAddr() net.Addr  { return c.addr(unix.Getsockname) }
func (c *HandedConn) RemoteAddr() net.Addr { return c.addr(unix.Getpeername) }

func (c *HandedConn) SetDeadline(t time.Time) error {
	return netError("set deadline", c.f.SetDeadline(t))
}
func (c *HandedConn) SetReadDeadline(t time.Time) error {
	return netError("set deadline", c.f.SetReadDeadline(t))
}
func (c *HandedConn) SetWriteDeadline(t time.Time) error {
	return netError("set deadline", c.f.SetWriteDeadline(t))
}

// addr asks the kernel for one of the socket's addresses; only logs about
// connections whose PROXY header went wrong need them.
func (c *HandedConn) addr(get func(int) (unix.Sockaddr, error)) net.Addr {
	var a net.Addr = &net.TCPAddr{}
	c.control("getsockname", func(fd int) error {
		sa, err := get(fd)
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			a = &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
		case *unix.SockaddrInet6:
			a = &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
		}
		return err
	})
	return a
}

func (c *HandedConn) control(op string, f func(fd int) error) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return netError(op, err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return netError(op, err)
	}
	if ferr != nil {
		return &net.OpError{Op: op, Net: "tcp", Err: ferr}
	}
	return nil
}

// netError gives an os.File's error the shape a net.Conn's has: the end of
// the stream as io.EOF, a closed socket as net.ErrClosed, the rest in a
// net.OpError (whose Timeout says a deadline passed).
func netError(op string, err error) error {
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.Is(err, os.ErrClosed):
		err = net.ErrClosed
	default:
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
	}
	return &net.OpError{Op: op, Net: "tcp", Err: err}
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// Done reports a handed connection over, with its bytes each way.
func (r *HandoffReceiver) Done(id uint64, fromClient, toClient int64) {
	var msg [25]byte
	msg[0] = msgDone
	binary.BigEndian.PutUint64(msg[1:], id)
	binary.BigEndian.PutUint64(msg[9:], uint64(fromClient))
	binary.BigEndian.PutUint64(msg[17:], uint64(toClient))
	r.wmu.Lock()
	r.out.Write(msg[:]) // a dispatcher gone no longer counts
	r.wmu.Unlock()
}

// GoAway asks the dispatcher to hand no more connections on this channel.
func (r *HandoffReceiver) GoAway() {
	r.wmu.Lock()
	r.out.Write([]byte{msgGoAway})
	r.wmu.Unlock()
}

// Close closes the channel.
func (r *HandoffReceiver) Close() { r.conn.Close() }
