package worker

import (
	stdtls "crypto/tls"
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/backend"
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

// A process is a dispatcher, and runs on one CPU, when every bind it has
// forwards plain TCP as it comes.
func TestOnlyForwardsAndOneCPU(t *testing.T) {
	lp := dispatcher.NewLoop(nil)
	be := backend.New(&config.Proxy{Name: "be", Backend: true, Mode: config.ModeTCP}, nil)
	forwards := &frontend{bind: &config.Bind{}, backend: be, tunnels: lp}
	tlsWorker := &frontend{bind: &config.Bind{SSL: true}, backend: be, tunnels: lp, tls: &stdtls.Config{}}
	proxied := &frontend{bind: &config.Bind{AcceptProxy: true}, backend: be, tunnels: lp}
	for _, tc := range []struct {
		name    string
		fes     []*frontend
		procs   int
		want    bool // onlyForwards
		wantOne bool // oneCPU
	}{
		{"no bind", nil, 1, false, false},
		{"dispatcher", []*frontend{forwards, forwards}, 1, true, true},
		{"TLS worker", []*frontend{tlsWorker}, 1, false, false},
		{"TLS worker, one thread of 3", []*frontend{tlsWorker}, 3, false, true},
		{"PROXY-header worker", []*frontend{proxied}, 1, false, false},
		{"both", []*frontend{forwards, tlsWorker}, 1, false, false},
		{"both, one thread of 2", []*frontend{forwards, tlsWorker}, 2, false, true},
	} {
		cfg := &config.Config{}
		cfg.Global.NbProc = tc.procs
		g := &generation{cfg: cfg, frontends: map[string]*frontend{}}
		for i, fe := range tc.fes {
			g.frontends[string(rune('a'+i))] = fe
		}
		if got := g.onlyForwards(); got != tc.want {
			t.Errorf("%s: onlyForwards %v, want %v", tc.name, got, tc.want)
		}
		if got := g.oneCPU(); got != tc.wantOne {
			t.Errorf("%s: oneCPU %v, want %v", tc.name, got, tc.wantOne)
		}
	}
}
