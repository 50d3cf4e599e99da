package worker

import (
	stdtls "crypto/tls"
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/dispatcher"
)

// A connection accepted as a net.Conn (here for ssl) has TCP keep-alive
// off, as HAProxy's and as one accepted as a dispatcher.Socket.
func TestAcceptNoKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl, err := dispatcher.NewListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	fe := &frontend{bind: &config.Bind{}, tls: &stdtls.Config{}}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, sock, err := fe.accept(dl)
	if err != nil || sock != nil {
		t.Fatalf("accept: %v, socket %v", err, sock)
	}
	defer got.Close()
	rc, err := got.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var gerr error
	rc.Control(func(fd uintptr) { on, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE) })
	if gerr != nil || on != 0 {
		t.Errorf("SO_KEEPALIVE %d, %v; want 0", on, gerr)
	}
}
