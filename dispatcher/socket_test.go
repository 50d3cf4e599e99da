package dispatcher

import (
	stdtls "crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/backend"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// A client taken as a Socket still reaches a server over TLS (on
// goroutines), and still gets through when its loop cannot run.
func TestForwardSocketOffTheLoop(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
		lp   func(testing.TB) *Loop
	}{
		{"server over TLS", true, testLoop},
		{"closed loop", false, func(tb testing.TB) *Loop { lp := NewLoop(nil); lp.Close(); return lp }},
		{"no loop", false, func(testing.TB) *Loop { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, a := listenOn(t, "tcp")
			if tc.tls {
				cert, _, err := tlsctx.SelfSigned("127.0.0.1")
				if err != nil {
					t.Fatal(err)
				}
				ln = stdtls.NewListener(ln, &stdtls.Config{Certificates: []stdtls.Certificate{cert}})
			}
			serve(ln, upperAfterEOF)
			p := tcpProxy(server("s1", 1, a))
			be := backend.New(p, nil)
			if tc.tls {
				be.Server("s1").SetTLS(&stdtls.Config{InsecureSkipVerify: true})
			}
			c, results := forwardSocket(t, tc.lp(t), be, p)
			c.Write([]byte("through"))
			c.CloseWrite()
			answer, err := io.ReadAll(c)
			if err != nil || string(answer) != "THROUGH" {
				t.Fatalf("answer %q, %v", answer, err)
			}
			if r := result(t, results); r.Term != "--" || r.BytesFromClient != 7 || r.BytesFromServer != 7 {
				t.Errorf("result %+v", r)
			}
			noActive(t, be)
		})
	}
}

// Closing a Listener wakes an AcceptSocket waiting on it, with the error
// Accept gives.
func TestListenerCloseWakesAcceptSocket(t *testing.T) {
	sl := socketListener(t)
	errs := make(chan error, 1)
	go func() {
		_, err := sl.AcceptSocket()
		errs <- err
	}()
	// Closing before AcceptSocket waits is fine too: it fails at once.
	sl.Close()
	select {
	case err := <-errs:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("AcceptSocket after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AcceptSocket still waits after Close")
	}
}

// A Socket has Nagle's algorithm off, as Go's accepted connections, and
// TCP keep-alive off, as HAProxy's.
func TestAcceptSocketOptions(t *testing.T) {
	_, s := acceptedSocket(t, socketListener(t))
	defer s.Close()
	for _, o := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0},
	} {
		if v, err := unix.GetsockoptInt(s.fd, o.level, o.opt); err != nil || v != o.want {
			t.Errorf("%s = %d, %v; want %d", o.name, v, err, o.want)
		}
	}
}

// Conn spends the Socket even when it fails: the descriptor is closed,
// so that callers must not close it again.
// A listener on every address learns each connection's own from the
// kernel; one on a single address gives its own (acceptedSocket checks).
func TestAcceptSocketAddresses(t *testing.T) {
	for _, address := range []string{"127.0.0.1:0", "0.0.0.0:0", "[::1]:0"} {
		t.Run(address, func(t *testing.T) {
			if address == "[::1]:0" {
				if ln, err := net.Listen("tcp6", address); err != nil {
					t.Skip("no IPv6 loopback:", err)
				} else {
					ln.Close()
				}
			}
			_, s := acceptedSocket(t, socketListenerOn(t, address))
			s.Close()
		})
	}
}

func TestSocketConnFailureClosesIt(t *testing.T) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	s := &Socket{fd: fds[0]} // not a socket: Go refuses it
	if c, err := s.Conn(); err == nil {
		c.Close()
		t.Fatal("Conn took a pipe")
	}
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("descriptor after a failed Conn: %v, want EBADF (closed)", err)
	}
}
