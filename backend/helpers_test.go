package backend

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/config"
)

// srv builds a server line with HAProxy's defaults (rise 2, fall 3, inter
// 2s, weight 1), changed by opts.
func srv(t testing.TB, id int, name string, opts ...func(*config.Server)) *config.Server {
	t.Helper()
	a, err := addr.Parse(fmt.Sprintf("127.0.0.1:%d", 10000+id))
	if err != nil {
		t.Fatal(err)
	}
	sc := &config.Server{Name: name, ID: id, Addr: a, Rise: 2, Fall: 3, Inter: 2 * time.Second, Weight: 1}
	for _, o := range opts {
		o(sc)
	}
	return sc
}

func weight(w int) func(*config.Server)  { return func(s *config.Server) { s.Weight = w } }
func maxConn(n int) func(*config.Server) { return func(s *config.Server) { s.MaxConn = n } }
func backup(s *config.Server)            { s.Backup = true }
func check(s *config.Server)             { s.Check = true }
func disabled(s *config.Server)          { s.Disabled = true }
func localProcess(n int) func(*config.Server) {
	return func(s *config.Server) { s.LocalProcess = n }
}

func proxy(balance config.Balance, servers ...*config.Server) *config.Proxy {
	return &config.Proxy{
		Name: "be", ID: 1, Backend: true, Mode: config.ModeTCP, Balance: balance,
		Servers: servers, Retries: 3,
	}
}

func client(i int) net.Addr {
	return &net.TCPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 40000 + i%20000}
}

// acquire takes a server without queueing; the test fails if there is none.
func acquire(t testing.TB, b *Backend, src net.Addr) *Server {
	t.Helper()
	s, err := b.Acquire(context.Background(), src, nil)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return s
}

// names picks n times, releasing each pick at once, and returns the names.
func names(t testing.TB, b *Backend, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		s := acquire(t, b, client(1))
		out = append(out, s.Name())
		s.Release()
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func nameOf(s *Server) string {
	if s == nil {
		return "<nil>"
	}
	return s.Name()
}
