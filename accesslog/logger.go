package accesslog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicelb/sluice/config"
)

// Level is a syslog severity.
type Level int

const (
	LevelEmerg Level = iota
	LevelAlert
	LevelCrit
	LevelErr
	LevelWarning
	LevelNotice
	LevelInfo // access logs
	LevelDebug
)

// A Logger sends log lines to the targets of "log" lines. It is safe for
// concurrent use. Sending never waits for a slow receiver on a socket: a
// line that cannot be sent at once is dropped and counted (see Dropped), as
// HAProxy does.
type Logger struct {
	targets []*target
	dropped atomic.Uint64
}

// A target is one destination with its framing. Its mutex serializes the
// use of its buffer and socket; each send is one non-blocking system call,
// so the mutex is held briefly.
type target struct {
	format   format
	facility int
	maxLevel Level
	maxLen   int
	hostname string
	tag      string
	pid      int

	mu     sync.Mutex
	buf    []byte
	closed bool

	// Stream targets (stdout, stderr).
	w io.Writer

	// Datagram targets (UDP, unix). conn is nil until a dial succeeds;
	// unix sockets are redialled after errors, at most once a second, so
	// that a restarted syslog daemon is found again.
	network  string
	raddr    net.Addr
	conn     net.Conn
	raw      syscall.RawConn
	lastDial time.Time
	writeFn  func(fd uintptr) bool // made once, so that sending does not allocate
	werr     error
}

// New makes a Logger for targets (global or proxy "log" lines), with the tag
// and pid that syslog headers carry (HAProxy's "haproxy[1234]:"). Bad target
// settings are errors; a unix socket that does not exist yet is not, since
// syslog may start later.
func New(targets []config.LogTarget, tag string, pid int) (*Logger, error) {
	hostname, err := os.Hostname()
	if err != nil || hostname == "" {
		hostname = "localhost"
	}
	l := &Logger{}
	for _, lt := range targets {
		t, err := newTarget(lt, hostname, tag, pid)
		if err != nil {
			l.Close()
			if lt.Pos.File != "" {
				return nil, fmt.Errorf("%s:%d: log %s: %w", lt.Pos.File, lt.Pos.Line, lt.Addr, err)
			}
			return nil, fmt.Errorf("log %s: %w", lt.Addr, err)
		}
		l.targets = append(l.targets, t)
	}
	return l, nil
}

func newTarget(lt config.LogTarget, hostname, tag string, pid int) (*target, error) {
	t := &target{hostname: hostname, tag: tag, pid: pid, maxLen: lt.MaxLen}
	if t.maxLen <= 0 {
		t.maxLen = 1024
	}
	var ok bool
	if t.facility, ok = parseFacility(lt.Facility); !ok {
		return nil, fmt.Errorf("unknown facility %q", lt.Facility)
	}
	if t.maxLevel, ok = parseLevel(lt.Level); !ok {
		return nil, fmt.Errorf("unknown level %q (expected emerg, alert, crit, err, warning, notice, info or debug)", lt.Level)
	}
	stream := true
	switch lt.Addr {
	case "stdout", "fd@1":
		t.w = os.Stdout
	case "stderr", "fd@2":
		t.w = os.Stderr
	default:
		stream = false
		if err := t.parseAddr(lt.Addr); err != nil {
			return nil, err
		}
	}
	// Standard output is raw unless told otherwise, like HAProxy's usual
	// "log stdout format raw"; sockets get syslog headers.
	name := lt.Format
	if name == "" && stream {
		name = "raw"
	}
	if t.format, ok = parseFormat(name); !ok {
		return nil, fmt.Errorf("unknown format %q (expected rfc3164, local, rfc5424, short, priority, timed, iso or raw)", lt.Format)
	}
	if !stream {
		t.writeFn = t.writeRaw
		_ = t.dial() // a unix socket that is not there yet is dialled again when sending
	}
	return t, nil
}

// parseAddr understands HAProxy's log addresses: host[:port], [ipv6][:port],
// ipv6:[port], a path, and the udp@, udp4@, udp6@, ipv4@, ipv6@ and unix@
// prefixes. The UDP port defaults to 514.
func (t *target) parseAddr(s string) error {
	prefix, rest, hasPrefix := strings.Cut(s, "@")
	if !hasPrefix {
		prefix, rest = "", s
	}
	switch {
	case prefix == "unix" || prefix == "" && strings.HasPrefix(rest, "/"):
		if rest == "" {
			return errors.New("empty unix socket path")
		}
		t.network, t.raddr = "unixgram", &net.UnixAddr{Name: rest, Net: "unixgram"}
		return nil
	case prefix == "" || prefix == "udp" || prefix == "ipv4" || prefix == "ipv6" || prefix == "udp4" || prefix == "udp6":
	default:
		return fmt.Errorf("unsupported address type %q (expected a UDP address, a unix socket path, stdout or stderr)", prefix+"@")
	}
	network := "udp"
	switch prefix {
	case "ipv4", "udp4":
		network = "udp4"
	case "ipv6", "udp6":
		network = "udp6"
	}
	// Like HAProxy, the text after the last colon is the port, even for an
	// IPv6 address without brackets ("::1:514", or "::1:" for the default
	// port); "[::1]" needs no port.
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1]
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = strings.Trim(rest[:i], "[]"), rest[i+1:]
	}
	if port == "" {
		port = "514"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port %q", port)
	}
	if host == "" {
		return errors.New("missing host")
	}
	if _, err := netip.ParseAddr(host); err != nil && strings.Contains(host, ":") {
		return fmt.Errorf("invalid IPv6 address %q (write [address]:port)", host)
	}
	addr, err := net.ResolveUDPAddr(network, net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	t.network, t.raddr = network, addr
	return nil
}

// dial connects the datagram socket. Connecting fixes the destination once,
// so each send is a plain write(2). Called with t.mu held, or before use.
func (t *target) dial() error {
	t.lastDial = time.Now()
	c, err := net.Dial(t.network, t.raddr.String())
	if err != nil {
		return err
	}
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		c.Close()
		return err
	}
	t.conn, t.raw = c, raw
	return nil
}

// writeRaw is the syscall.RawConn callback: a single write that does not
// wait when the socket buffer or the receiver's queue is full.
func (t *target) writeRaw(fd uintptr) bool {
	_, t.werr = syscall.Write(int(fd), t.buf)
	return true // never wait for the socket to become writable
}

// Log sends an access log line at level info. line is the message alone
// (for example from AppendTCP); a trailing newline is ignored.
func (l *Logger) Log(line []byte) {
	l.LogAt(LevelInfo, line)
}

// LogAt sends a line at the given level to the targets whose maximum level
// admits it.
func (l *Logger) LogAt(level Level, line []byte) {
	if l == nil || len(l.targets) == 0 {
		return
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	now := time.Now()
	for _, t := range l.targets {
		if level > t.maxLevel {
			continue
		}
		if err := t.send(now, level, line); err != nil {
			l.dropped.Add(1)
		}
	}
}

func (t *target) send(now time.Time, level Level, line []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	t.buf = appendFrame(t.buf[:0], t.format, t.facility, level, now, t.hostname, t.tag, t.pid, line, t.maxLen)
	if t.w != nil {
		_, err := t.w.Write(t.buf)
		return err
	}
	if t.conn == nil {
		if now.Sub(t.lastDial) < time.Second {
			return net.ErrClosed
		}
		if err := t.dial(); err != nil {
			return err
		}
	}
	if err := t.raw.Write(t.writeFn); err != nil {
		return err
	}
	if t.werr != nil && t.network == "unixgram" && !errors.Is(t.werr, syscall.EAGAIN) {
		// The receiver is gone (ECONNREFUSED) or was replaced: dial
		// again later rather than write to a dead socket forever.
		t.conn.Close()
		t.conn, t.raw = nil, nil
	}
	return t.werr
}

// Dropped returns the number of lines that could not be sent, counted once
// per target.
func (l *Logger) Dropped() uint64 {
	return l.dropped.Load()
}

// Close closes the sockets. Lines logged afterwards are dropped.
func (l *Logger) Close() error {
	var errs []error
	for _, t := range l.targets {
		t.mu.Lock()
		t.closed = true
		if t.conn != nil {
			errs = append(errs, t.conn.Close())
			t.conn, t.raw = nil, nil
		}
		t.mu.Unlock()
	}
	return errors.Join(errs...)
}
