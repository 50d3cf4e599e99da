// Package control is the channel between the master and each child process:
// a unix stream socketpair carrying length-prefixed JSON messages, each of
// which may carry file descriptors (SCM_RIGHTS). The channel is also the
// liveness signal: either side sees the other's death as EOF, at once.
package control

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// maxMessage bounds one message, so that a confused peer cannot make the
// other side allocate without limit.
const maxMessage = 64 << 20

// maxFDs bounds the descriptors attached to one message (the kernel's
// SCM_MAX_FD is 253).
const maxFDs = 250

// Conn is one end of a control channel. Send and Receive may be called from
// different goroutines; Send is safe for concurrent use.
type Conn struct {
	uc *net.UnixConn

	sendMu sync.Mutex

	// Receive side state, used by one goroutine only.
	buf     []byte
	pending []*os.File // descriptors received but not yet handed out
}

// New wraps a connected unix stream socket.
func New(uc *net.UnixConn) *Conn {
	return &Conn{uc: uc}
}

// Pair returns a connected pair: the master keeps the first, the child gets
// the second as an inherited descriptor.
func Pair() (*Conn, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "control")
	theirs := os.NewFile(uintptr(fds[1]), "control")
	c, err := FromFile(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, err
	}
	return c, theirs, nil
}

// FromFile makes a Conn from a descriptor (the child's inherited end). The
// file is duplicated; the caller may close f.
func FromFile(f *os.File) (*Conn, error) {
	fc, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, errors.New("control socket: not a unix socket")
	}
	return New(uc), nil
}

// Close closes the channel; the peer sees EOF.
func (c *Conn) Close() error { return c.uc.Close() }

// Send encodes v as JSON and sends it with the given descriptors attached.
// The descriptors stay open on this side; the caller closes them.
func (c *Conn) Send(v any, files ...*os.File) error {
	if len(files) > maxFDs {
		return fmt.Errorf("send control message: %d descriptors, at most %d", len(files), maxFDs)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode control message: %w", err)
	}
	if len(body) > maxMessage {
		return fmt.Errorf("send control message: %d bytes, at most %d", len(body), maxMessage)
	}
	msg := make([]byte, 8+len(body))
	binary.BigEndian.PutUint32(msg[0:4], uint32(len(body)))
	binary.BigEndian.PutUint32(msg[4:8], uint32(len(files)))
	copy(msg[8:], body)

	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = syscall.UnixRights(fds...)
	}

	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	// The descriptors travel with the first byte of the message; the rest
	// follows as ordinary stream data.
	n, _, err := c.uc.WriteMsgUnix(msg, oob, nil)
	if err != nil {
		return fmt.Errorf("send control message: %w", err)
	}
	if n < len(msg) {
		if _, err := c.uc.Write(msg[n:]); err != nil {
			return fmt.Errorf("send control message: %w", err)
		}
	}
	return nil
}

// Message is one received message: its JSON body and the descriptors that
// came with it, which the receiver now owns.
type Message struct {
	Body  json.RawMessage
	Files []*os.File
}

// Receive waits for the next message. It returns io.EOF when the peer has
// gone away.
func (c *Conn) Receive() (Message, error) {
	for {
		if m, ok, err := c.next(); err != nil || ok {
			return m, err
		}
		if err := c.fill(); err != nil {
			if errors.Is(err, io.EOF) && len(c.buf) > 0 {
				return Message{}, io.ErrUnexpectedEOF
			}
			return Message{}, err
		}
	}
}

// next takes one complete message from the buffer, if there is one.
func (c *Conn) next() (Message, bool, error) {
	if len(c.buf) < 8 {
		return Message{}, false, nil
	}
	size := binary.BigEndian.Uint32(c.buf[0:4])
	nfd := int(binary.BigEndian.Uint32(c.buf[4:8]))
	if size > maxMessage || nfd > maxFDs {
		return Message{}, false, fmt.Errorf("control message: bad header (size %d, %d descriptors)", size, nfd)
	}
	if len(c.buf) < 8+int(size) {
		return Message{}, false, nil
	}
	if len(c.pending) < nfd {
		return Message{}, false, fmt.Errorf("control message: %d descriptors announced, %d received", nfd, len(c.pending))
	}
	m := Message{
		Body:  append(json.RawMessage(nil), c.buf[8:8+size]...),
		Files: append([]*os.File(nil), c.pending[:nfd]...),
	}
	c.pending = c.pending[nfd:]
	c.buf = c.buf[8+size:]
	return m, true, nil
}

// fill reads more bytes and any descriptors that come with them.
func (c *Conn) fill() error {
	var chunk [64 << 10]byte
	oob := make([]byte, syscall.CmsgSpace(4*maxFDs))
	n, oobn, _, _, err := c.uc.ReadMsgUnix(chunk[:], oob)
	if oobn > 0 {
		msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn])
		if perr != nil {
			return fmt.Errorf("control message: %w", perr)
		}
		for _, m := range msgs {
			fds, perr := syscall.ParseUnixRights(&m)
			if perr != nil {
				continue
			}
			for _, fd := range fds {
				c.pending = append(c.pending, os.NewFile(uintptr(fd), "received"))
			}
		}
	}
	if n < 0 {
		n = 0 // a failed read (a child killed) reports -1 with its error
	}
	c.buf = append(c.buf, chunk[:n]...)
	if n == 0 && err == nil {
		return io.EOF
	}
	return err
}

// File returns a duplicate of the channel's descriptor, for handing the
// channel to a re-executed master.
func (c *Conn) File() (*os.File, error) { return c.uc.File() }
