// Package addr understands HAProxy's address syntax ("ip:port", "[v6]:port",
// ":port", "abns@name", "abnsz@name", "unix@/path", "tcp@host:port", ...) and
// turns such an address into something that can be listened on or dialled.
//
// abns@ follows HAProxy: the abstract name is padded with NUL bytes to the full
// length of sun_path, so a HAProxy tier and a Sluice tier reach each other.
// abnsz@ is the unpadded form (HAProxy 3.1), the one other programs use.
package addr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Family says how an address is reached.
type Family string

const (
	TCP      Family = "tcp"  // IPv4/IPv6 host and port
	Unix     Family = "unix" // a unix socket path in the file system
	Abstract Family = "abns" // a Linux abstract-namespace unix socket
)

// sunPathLen is the size of sun_path in struct sockaddr_un on Linux.
const sunPathLen = 108

// Addr is one parsed address. It is plain data, so that it can be sent from the
// master to its children as part of the compiled configuration.
type Addr struct {
	Family Family `json:"family"`
	// Host is an IP literal or a host name for TCP; empty means every address.
	Host string `json:"host,omitempty"`
	// Port is the TCP port; 0 for unix and abstract sockets.
	Port int `json:"port,omitempty"`
	// Name is the file path (Unix) or the abstract name without '@' (Abstract).
	Name string `json:"name,omitempty"`
	// Padded is true for abns@ (HAProxy's NUL padding), false for abnsz@.
	Padded bool `json:"padded,omitempty"`
	// Text is the address as it was written.
	Text string `json:"text"`
}

// Parse parses an address as written on a bind or server line. A TCP address
// must carry a port; a host name is kept as written (see Resolve).
func Parse(s string) (Addr, error) {
	a := Addr{Text: s}
	prefix, rest, hasPrefix := strings.Cut(s, "@")
	if !hasPrefix {
		prefix, rest = "", s
	}
	switch prefix {
	case "abns", "abnsz":
		if rest == "" {
			return a, fmt.Errorf("address %q: empty abstract socket name", s)
		}
		if len(rest)+1 > sunPathLen {
			return a, fmt.Errorf("address %q: abstract name longer than %d bytes", s, sunPathLen-1)
		}
		a.Family, a.Name, a.Padded = Abstract, rest, prefix == "abns"
		return a, nil
	case "unix":
		if rest == "" {
			return a, fmt.Errorf("address %q: empty unix socket path", s)
		}
		if len(rest)+1 > sunPathLen {
			return a, fmt.Errorf("address %q: unix socket path longer than %d bytes", s, sunPathLen-1)
		}
		a.Family, a.Name = Unix, rest
		return a, nil
	case "", "tcp", "ipv4", "ipv6", "tcp4", "tcp6":
	default:
		return a, fmt.Errorf("address %q: unknown address family %q (expected ipv4@, ipv6@, tcp@, unix@, abns@ or abnsz@)", s, prefix)
	}
	if prefix == "" && strings.HasPrefix(rest, "/") {
		if len(rest)+1 > sunPathLen {
			return a, fmt.Errorf("address %q: unix socket path longer than %d bytes", s, sunPathLen-1)
		}
		a.Family, a.Name = Unix, rest
		return a, nil
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return a, fmt.Errorf("address %q: expected host:port, [ipv6]:port or :port", s)
	}
	if port == "" {
		return a, fmt.Errorf("address %q: missing port", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		if strings.Contains(port, "-") {
			return a, fmt.Errorf("address %q: port ranges are not supported", s)
		}
		return a, fmt.Errorf("address %q: port %q is not a number from 1 to 65535", s, port)
	}
	if host == "*" {
		host = ""
	}
	if strings.ContainsAny(host, " \t/") {
		return a, fmt.Errorf("address %q: invalid host %q", s, host)
	}
	if ip := net.ParseIP(host); host != "" && ip == nil {
		// A name: IPv6 literals must be in brackets, names must look like names.
		if strings.Contains(host, ":") || !validHostname(host) {
			return a, fmt.Errorf("address %q: invalid host %q", s, host)
		}
	}
	a.Family, a.Host, a.Port = TCP, host, p
	return a, nil
}

func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// IsIP reports whether a TCP address names an IP literal or every address,
// as opposed to a host name that needs resolving.
func (a Addr) IsIP() bool {
	return a.Family != TCP || a.Host == "" || net.ParseIP(a.Host) != nil
}

// Network returns the Go network name for net.Listen and net.Dial.
func (a Addr) Network() string {
	if a.Family == TCP {
		return "tcp"
	}
	return "unix"
}

// String returns the Go address for net.Listen and net.Dial. For padded abstract
// names it is "@name" followed by NULs up to the full sun_path length.
func (a Addr) String() string {
	switch a.Family {
	case TCP:
		return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	case Unix:
		return a.Name
	case Abstract:
		if a.Padded {
			return "@" + a.Name + strings.Repeat("\x00", sunPathLen-1-len(a.Name))
		}
		return "@" + a.Name
	}
	return a.Text
}

// Key identifies the socket an address binds, for matching binds across
// sections and reloads: two addresses with the same key are the same socket.
func (a Addr) Key() string {
	switch a.Family {
	case TCP:
		return "tcp:" + net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	case Unix:
		return "unix:" + a.Name
	default:
		if a.Padded {
			return "abns:" + a.Name
		}
		return "abnsz:" + a.Name
	}
}

// Resolve returns a copy of a TCP address whose host name is replaced by its
// first address from the system resolver (HAProxy's init-addr libc).
func (a Addr) Resolve(ctx context.Context) (Addr, error) {
	if a.IsIP() {
		return a, nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", a.Host)
	if err != nil {
		return a, fmt.Errorf("resolve %s: %w", a.Host, err)
	}
	if len(ips) == 0 {
		return a, fmt.Errorf("resolve %s: no address", a.Host)
	}
	for _, ip := range ips {
		if ip.To4() != nil { // prefer IPv4 like HAProxy's default resolve-prefer
			a.Host = ip.String()
			return a, nil
		}
	}
	a.Host = ips[0].String()
	return a, nil
}

// Listen opens a listening socket. TCP listeners get SO_REUSEADDR (Go's
// default); a stale unix socket file is removed first.
func (a Addr) Listen(ctx context.Context) (net.Listener, error) {
	if a.Family == Unix {
		removeStaleSocket(a.Name)
	}
	var lc net.ListenConfig
	if a.Family == TCP {
		lc.Control = reusePort
	}
	ln, err := lc.Listen(ctx, a.Network(), a.String())
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", a.Text, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The master owns the socket for the lifetime of the configuration;
		// children must not unlink it when they close their copy.
		ul.SetUnlinkOnClose(false)
	}
	return ln, nil
}

// Dial connects to the address within timeout (0 means no timeout).
// The connection is the raw *net.TCPConn or *net.UnixConn, so that copies
// between them can use splice(2). TCP keep-alive stays off, as HAProxy
// leaves it without "option srvtcpka" (Go would turn it on).
func (a Addr) Dial(ctx context.Context, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	c, err := d.DialContext(ctx, a.Network(), a.String())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", a.Text, err)
	}
	return c, nil
}

// reusePort sets SO_REUSEPORT, as HAProxy does by default: a reload that
// moves a bind to another address of the same port (0.0.0.0:443 to
// 10.0.0.1:443) opens the new socket before closing the old one, with no
// moment where the port refuses connections.
func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// removeStaleSocket removes a unix socket file nobody listens on any more.
func removeStaleSocket(path string) {
	c, err := net.DialTimeout("unix", path, 100*time.Millisecond)
	if err == nil {
		c.Close()
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		_ = syscall.Unlink(path)
	}
}
