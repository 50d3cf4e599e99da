package addr

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Addr
		network string
		address string
		err     string
	}{
		{in: ":1234", want: Addr{Family: TCP, Port: 1234}, network: "tcp", address: ":1234"},
		{in: "*:80", want: Addr{Family: TCP, Port: 80}, address: ":80"},
		{in: "127.0.0.1:8080", want: Addr{Family: TCP, Host: "127.0.0.1", Port: 8080}, address: "127.0.0.1:8080"},
		{in: "[::1]:443", want: Addr{Family: TCP, Host: "::1", Port: 443}, address: "[::1]:443"},
		{in: "ipv4@10.0.0.1:80", want: Addr{Family: TCP, Host: "10.0.0.1", Port: 80}},
		{in: "tcp@backend.example.com:80", want: Addr{Family: TCP, Host: "backend.example.com", Port: 80}},
		{in: "abns@p2", want: Addr{Family: Abstract, Name: "p2", Padded: true}, network: "unix", address: "@p2" + strings.Repeat("\x00", 105)},
		{in: "abnsz@p2", want: Addr{Family: Abstract, Name: "p2"}, network: "unix", address: "@p2"},
		{in: "unix@/run/x.sock", want: Addr{Family: Unix, Name: "/run/x.sock"}, network: "unix", address: "/run/x.sock"},
		{in: "/run/y.sock", want: Addr{Family: Unix, Name: "/run/y.sock"}},
		{in: "127.0.0.1", err: `address "127.0.0.1": expected host:port, [ipv6]:port or :port`},
		{in: "127.0.0.1:", err: `address "127.0.0.1:": missing port`},
		{in: "127.0.0.1:0", err: `port "0" is not a number from 1 to 65535`},
		{in: "127.0.0.1:70000", err: `port "70000" is not a number from 1 to 65535`},
		{in: "1.2.3.4:80-90", err: "port ranges are not supported"},
		{in: "abns@", err: "empty abstract socket name"},
		{in: "abns@" + strings.Repeat("x", 108), err: "abstract name longer than 107 bytes"},
		{in: "udp@1.2.3.4:53", err: `unknown address family "udp"`},
		{in: "bad host:80", err: `invalid host "bad host"`},
		{in: "::1:80", err: "expected host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			tt.want.Text = tt.in
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if tt.network != "" && got.Network() != tt.network {
				t.Errorf("Network() = %q, want %q", got.Network(), tt.network)
			}
			if tt.address != "" && got.String() != tt.address {
				t.Errorf("String() = %q, want %q", got.String(), tt.address)
			}
		})
	}
}

// A padded and an unpadded abstract name are different sockets, as in the
// kernel: HAProxy's abns@p and another program's @p do not meet.
func TestAbstractPadding(t *testing.T) {
	name := "sluice-addr-test-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	padded, _ := Parse("abns@" + name)
	plain, _ := Parse("abnsz@" + name)
	if padded.Key() == plain.Key() {
		t.Fatal("padded and unpadded names share a key")
	}
	ln, err := padded.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := padded.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatalf("dial the padded name: %v", err)
	}
	c.Close()
	if _, ok := c.(*net.UnixConn); !ok {
		t.Fatalf("Dial returned %T, want the raw *net.UnixConn", c)
	}
	if c, err := plain.Dial(context.Background(), time.Second); err == nil {
		c.Close()
		t.Fatal("the unpadded name reached the padded socket")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{":80", "abns@x", "unix@/a", "[::1]:1", "tcp@a.b:1", "ipv6@[::]:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if a.Family == TCP && (a.Port < 1 || a.Port > 65535) {
			t.Fatalf("Parse(%q) accepted port %d", s, a.Port)
		}
		if len(a.String()) > 108 && a.Family != TCP {
			t.Fatalf("Parse(%q) gave a socket address of %d bytes", s, len(a.String()))
		}
		_ = a.Key()
	})
}

// A bind moving between addresses of one port opens the new socket while
// the old one still listens.
func TestListenOverlapsOnSamePort(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().String()
	probe.Close()
	first, err := Parse(port)
	if err != nil {
		t.Fatal(err)
	}
	ln1, err := first.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ln1.Close()
	again, err := Parse(port)
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := again.Listen(context.Background())
	if err != nil {
		t.Fatalf("second socket on %s while the first listens: %v", ln1.Addr(), err)
	}
	ln2.Close()
}

// Dial leaves TCP keep-alive off, as HAProxy does without srvtcpka.
func TestDialNoKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := Parse(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Dial(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if on := sockoptInt(t, c.(*net.TCPConn), unix.SOL_SOCKET, unix.SO_KEEPALIVE); on != 0 {
		t.Errorf("SO_KEEPALIVE %d, want 0", on)
	}
}

func sockoptInt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}
