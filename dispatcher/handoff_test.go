package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
)

// handoffWorker is a worker's bind that takes handoff channels and serves
// each connection handed over with handle, which gets the connection's
// PROXY header read, as a worker's frontend would.
type handoffWorker struct {
	channels chan *HandoffReceiver // each channel, once accepted
	cuts     chan uint64
}

func newHandoffWorker(t *testing.T, handle func(c net.Conn, h *proxyproto.Header)) (*handoffWorker, addr.Addr) {
	t.Helper()
	ln, a := listenOn(t, "abns")
	w := &handoffWorker{channels: make(chan *HandoffReceiver, 8), cuts: make(chan uint64, 8)}
	serve(ln, func(c net.Conn) {
		pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE))
		if _, err := pc.Read(nil); err != nil || !IsHandoffChannel(pc.ProxyHeader()) {
			t.Errorf("a connection that is not a handoff channel: %v", err)
			return
		}
		r, err := AcceptHandoffs(pc.Raw())
		if err != nil {
			t.Errorf("AcceptHandoffs: %v", err)
			return
		}
		w.channels <- r
		var conns sync.Map
		var running sync.WaitGroup // the channel stays open for their reports
		defer running.Wait()
		r.Serve(func(id uint64, hc *HandedConn) {
			conns.Store(id, hc)
			running.Add(1)
			go func() {
				defer running.Done()
				pc := proxyproto.NewConn(hc, proxyproto.WithPolicy(proxyproto.REQUIRE))
				if _, err := pc.Read(nil); err != nil {
					t.Errorf("handed connection's PROXY header: %v", err)
				}
				handle(pc, pc.ProxyHeader())
				hc.Close()
				in, out := hc.Bytes()
				r.Done(id, in, out)
			}()
		}, func(id uint64) {
			w.cuts <- id
			if c, ok := conns.Load(id); ok {
				c.(net.Conn).Close()
			}
		})
	})
	return w, a
}

// echoWorker is a handoffWorker that echoes, with the backend and
// Handoffs of a dispatcher whose one server is it.
func echoWorker(t *testing.T) (*handoffWorker, *backend.Backend, *Handoffs) {
	t.Helper()
	w, a := newHandoffWorker(t, func(c net.Conn, _ *proxyproto.Header) { io.Copy(c, c) })
	return w, backend.New(tcpProxy(server("w1", 1, a, sendProxy(2))), nil), testHandoffs(a)
}

// echo sends msg on c and reads it back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.Write([]byte(msg))
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatalf("echo of %q: %v", msg, err)
	}
}

func testHandoffs(a addr.Addr) *Handoffs {
	ho := NewHandoffs(slog.New(slog.DiscardHandler))
	ho.SetTargets([]addr.Addr{a})
	return ho
}

// handOff accepts a new client as a Socket and runs ForwardSocket with ho.
func handOff(t *testing.T, ho *Handoffs, be *backend.Backend) (*net.TCPConn, <-chan Result) {
	t.Helper()
	c, s := acceptedSocket(t, socketListener(t))
	out := make(chan Result, 1)
	go ForwardSocket(context.Background(), testLoop(t), ho, s, be, be.Proxy(), func(r Result) { out <- r })
	return c, out
}

// A server that is a bind of the configuration gets the client's socket
// with the PROXY header it would have read, and the dispatcher counts the
// connection until the worker reports its end, with its bytes.
func TestHandoffServesTheClientDirectly(t *testing.T) {
	headers := make(chan *proxyproto.Header, 3)
	w, a := newHandoffWorker(t, func(c net.Conn, h *proxyproto.Header) {
		headers <- h
		upperAfterEOF(c)
	})
	p := tcpProxy(server("w1", 1, a, sendProxy(2)))
	be := backend.New(p, nil)
	ho := testHandoffs(a)
	for i := range 3 {
		c, results := handOff(t, ho, be)
		c.Write([]byte("hello"))
		c.CloseWrite()
		reply, err := io.ReadAll(c)
		if err != nil || string(reply) != "HELLO" {
			t.Fatalf("connection %d: reply %q, %v", i, reply, err)
		}
		r := result(t, results)
		if r.Term != "--" || r.Server != "w1" || r.BytesFromClient != 5 || r.BytesFromServer != 5 {
			t.Fatalf("connection %d: result %+v", i, r)
		}
		got := <-headers
		if got == nil || got.SourceAddr.String() != c.LocalAddr().String() || got.DestinationAddr.String() != c.RemoteAddr().String() {
			t.Fatalf("connection %d: PROXY header %+v for a client %v -> %v", i, got, c.LocalAddr(), c.RemoteAddr())
		}
		noActive(t, be)
	}
	if n := len(w.channels); n != 1 {
		t.Fatalf("%d channels opened for 3 connections, want 1", n)
	}
}

// A server without a PROXY header, or one that is not a bind of the
// configuration, gets its clients' bytes forwarded as before.
func TestHandoffOnlyToTargets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxyV  int
		targets bool
	}{
		{"no send-proxy", 0, true},
		{"not a bind of ours", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, a := listenOn(t, "abns")
			serve(ln, func(c net.Conn) {
				if tc.proxyV > 0 {
					pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE))
					if _, err := pc.Read(nil); err != nil || IsHandoffChannel(pc.ProxyHeader()) {
						t.Errorf("want a forwarded client: %v", err)
						return
					}
					c = pc
				}
				upperAfterEOF(c)
			})
			p := tcpProxy(server("s1", 1, a, sendProxy(tc.proxyV)))
			be := backend.New(p, nil)
			ho := NewHandoffs(slog.New(slog.DiscardHandler))
			if tc.targets {
				ho.SetTargets([]addr.Addr{a})
			}
			c, results := handOff(t, ho, be)
			c.Write([]byte("abc"))
			c.CloseWrite()
			if reply, err := io.ReadAll(c); err != nil || string(reply) != "ABC" {
				t.Fatalf("reply %q, %v", reply, err)
			}
			if r := result(t, results); r.BytesFromClient != 3 || r.BytesFromServer != 3 {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

// "shutdown sessions server" reaches a connection handed over: the worker
// is asked to close it.
func TestHandoffShutdownSessions(t *testing.T) {
	w, be, ho := echoWorker(t)
	c, results := handOff(t, ho, be)
	echo(t, c, "echo")
	if n := be.Server("w1").ShutdownSessions(); n != 1 {
		t.Fatalf("ShutdownSessions closed %d sessions, want 1", n)
	}
	select {
	case <-w.cuts:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker was not asked to close the connection")
	}
	if _, err := readEnd(t, c); err != nil {
		t.Errorf("client after shutdown sessions: %v", err)
	}
	if r := result(t, results); r.BytesFromClient != 4 || r.BytesFromServer != 4 {
		t.Errorf("result %+v", r)
	}
	noActive(t, be)
}

// A worker that stops says so: connections it has keep running and are
// reported, new ones go on a new channel, and the old channel ends.
func TestHandoffGoAway(t *testing.T) {
	w, be, ho := echoWorker(t)
	first, firstResult := handOff(t, ho, be)
	echo(t, first, "1")
	old := <-w.channels
	old.GoAway()
	// The dispatcher retires the channel when it reads the message.
	waitUntil(t, func() bool {
		ho.mu.Lock()
		defer ho.mu.Unlock()
		return len(ho.chans) == 0
	})
	second, secondResult := handOff(t, ho, be)
	echo(t, second, "22")
	select {
	case <-w.channels:
	case <-time.After(10 * time.Second):
		t.Fatal("no new channel after go-away")
	}
	echo(t, first, "3") // on the retired channel
	first.Close()
	second.Close()
	if r := result(t, firstResult); r.BytesFromClient != 2 || r.Term != "--" {
		t.Errorf("first result %+v", r)
	}
	if r := result(t, secondResult); r.BytesFromClient != 2 || r.Term != "--" {
		t.Errorf("second result %+v", r)
	}
	noActive(t, be)
}

// A worker that dies takes its connections with it: the dispatcher counts
// them as ended and opens a new channel for the next ones.
func TestHandoffWorkerGone(t *testing.T) {
	w, be, ho := echoWorker(t)
	c, results := handOff(t, ho, be)
	echo(t, c, "x")
	(<-w.channels).Close()
	if r := result(t, results); r.Term != "SD" {
		t.Errorf("result %+v, want SD", r)
	}
	noActive(t, be)
	c2, results2 := handOff(t, ho, be)
	echo(t, c2, "y") // on a new channel
	c2.Close()
	if r := result(t, results2); r.Term != "--" {
		t.Errorf("result %+v", r)
	}
}

// Only a LOCAL header with Sluice's TLV opens a channel.
func TestIsHandoffChannel(t *testing.T) {
	plain := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2})
	wrongMagic := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	wrongMagic.SetTLVs([]proxyproto.TLV{{Type: handoffTLV, Value: []byte("other")}})
	good := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	good.SetTLVs([]proxyproto.TLV{{Type: handoffTLV, Value: handoffMagic}})
	for _, tc := range []struct {
		name string
		h    *proxyproto.Header
		want bool
	}{
		{"none", nil, false},
		{"a client's", plain, false},
		{"another TLV value", wrongMagic, false},
		{"a channel", good, true},
	} {
		if got := IsHandoffChannel(tc.h); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The worker's reading of a channel refuses what is not a message, and
// never takes a connection without its socket.
func TestHandoffReceiverParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		used    int
		wantErr string
	}{
		{"empty", "", 0, ""},
		{"partial cut", "C\x00\x00", 0, ""},
		{"cut", "C\x00\x00\x00\x00\x00\x00\x00\x07", 9, ""},
		{"unknown", "Z", 0, "unexpected message"},
		{"hand without socket", "H\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01P", 0, "without its socket"},
		{"header too long", "H\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff", 0, "PROXY header of"},
		{"partial hand", "H\x00\x00\x00\x00\x00\x00\x00\x01\x00\x05PR", 0, ""},
	} {
		r := &HandoffReceiver{}
		var fds []int
		var cuts []uint64
		used, err := r.parse([]byte(tc.in), &fds, func(uint64, *HandedConn) { t.Errorf("%s: took a connection", tc.name) }, func(id uint64) { cuts = append(cuts, id) })
		if used != tc.used || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: used %d, err %v; want %d, %q", tc.name, used, err, tc.used, tc.wantErr)
		}
	}
}

func FuzzHandoffReceiverParse(f *testing.F) {
	f.Add([]byte("C\x00\x00\x00\x00\x00\x00\x00\x07"))
	f.Add([]byte("H\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01P"))
	f.Add([]byte("D"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &HandoffReceiver{}
		var fds []int
		used, _ := r.parse(b, &fds, func(uint64, *HandedConn) { t.Fatal("took a connection without a socket") }, func(uint64) {})
		if used < 0 || used > len(b) {
			t.Fatalf("used %d of %d", used, len(b))
		}
	})
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A corked connection holds a closing response and writes it when it
// closes, even after crypto/tls set the write deadline to now; past
// maxHeld it writes at once.
func TestHandedConnCork(t *testing.T) {
	tests := []struct {
		name   string
		writes []int
		uncork bool
	}{
		{"held until the close", []int{100, 24}, false},
		{"uncorked before the close", []int{100}, true},
		{"more than maxHeld", []int{maxHeld - 10, 100, 50}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := tcpPair(t)
			t.Cleanup(func() { peer.Close() })
			f, err := conn.File()
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			c := newHandedConn(f, nil)
			c.Cork()
			var want []byte
			for i, n := range tt.writes {
				b := bytes.Repeat([]byte{byte('a' + i)}, n)
				want = append(want, b...)
				if m, err := c.Write(b); m != n || err != nil {
					t.Fatalf("write %d bytes: %d, %v", n, m, err)
				}
			}
			if tt.uncork {
				if err := c.Uncork(); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(want))
				if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("after Uncork the peer read %d bytes, %v", len(got), err)
				}
				want = nil
			}
			c.SetWriteDeadline(time.Now())
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(peer)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("the peer read %d bytes (%v), want %d", len(got), err, len(want))
			}
			if _, out := c.Bytes(); out != int64(sum(tt.writes)) {
				t.Errorf("counted %d bytes out, want %d", out, sum(tt.writes))
			}
		})
	}
}

func sum(ns []int) int {
	s := 0
	for _, n := range ns {
		s += n
	}
	return s
}

// A receiver closed while it waits for the next message returns
// net.ErrClosed, having handled each message once.
func TestHandoffReceiverClosedWhileServing(t *testing.T) {
	ln, err := net.Listen("unix", "@"+uniqueAbns(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dispatcherEnd, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dispatcherEnd.Close()
	workerEnd, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r, err := AcceptHandoffs(workerEnd)
	if err != nil {
		t.Fatal(err)
	}
	cut := []byte{msgCut, 0, 0, 0, 0, 0, 0, 0, 7}
	if _, err := dispatcherEnd.Write(cut); err != nil {
		t.Fatal(err)
	}
	cuts := make(chan uint64, 4)
	served := make(chan error, 1)
	go func() {
		served <- r.Serve(func(uint64, *HandedConn) { t.Error("a connection no one handed") }, func(id uint64) { cuts <- id })
	}()
	if id := <-cuts; id != 7 {
		t.Fatalf("cut %d, want 7", id)
	}
	r.Close()
	if err := <-served; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve: %v, want net.ErrClosed", err)
	}
	if len(cuts) > 0 {
		t.Fatalf("the cut was handled again after the close: %d", <-cuts)
	}
}
