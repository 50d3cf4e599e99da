package dispatcher

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestRawIO(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, x *RawIO, conn, peer *net.TCPConn)
	}{
		{"reads what came, then EOF", func(t *testing.T, x *RawIO, conn, peer *net.TCPConn) {
			peer.Write([]byte("hello"))
			peer.CloseWrite()
			got, err := io.ReadAll(x)
			if err != nil || string(got) != "hello" {
				t.Fatalf("read %q, %v; want hello", got, err)
			}
		}},
		{"writes more than the socket holds", func(t *testing.T, x *RawIO, conn, peer *net.TCPConn) {
			want := payload(8 << 20)
			got := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(peer)
				got <- b
			}()
			if n, err := x.Write(want); n != len(want) || err != nil {
				t.Fatalf("wrote %d, %v; want %d", n, err, len(want))
			}
			conn.CloseWrite()
			if !bytes.Equal(<-got, want) {
				t.Fatal("the peer got other bytes")
			}
		}},
		{"a read deadline is a timeout", func(t *testing.T, x *RawIO, conn, peer *net.TCPConn) {
			conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := x.Read(make([]byte, 10))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("read: %v, want a timeout", err)
			}
		}},
		{"a reset is the system's error", func(t *testing.T, x *RawIO, conn, peer *net.TCPConn) {
			peer.SetLinger(0)
			peer.Close()
			_, err := x.Read(make([]byte, 10))
			var se *os.SyscallError
			if !errors.As(err, &se) || !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read: %v, want read: connection reset", err)
			}
		}},
		{"a write to a closed peer fails without SIGPIPE", func(t *testing.T, x *RawIO, conn, peer *net.TCPConn) {
			peer.SetLinger(0)
			peer.Close()
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := x.Write([]byte("x"))
				if err != nil {
					if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
						t.Fatalf("write: %v, want a broken pipe or a reset", err)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("writes to a closed peer kept succeeding")
				}
			}
		}},
		{"a closed connection fails", func(t *testing.T, x *RawIO, conn, peer *net.TCPConn) {
			conn.Close()
			if _, err := x.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read: %v, want net.ErrClosed", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, peer := tcpPair(t)
			t.Cleanup(func() { conn.Close(); peer.Close() })
			x, err := NewRawIO(conn)
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, x, conn, peer)
		})
	}
}

func BenchmarkRawIO(b *testing.B) {
	conn, peer := tcpPair(b)
	b.Cleanup(func() { conn.Close(); peer.Close() })
	x, err := NewRawIO(conn)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf); err != nil {
			b.Fatal(err)
		}
		peer.Write(msg)
		if _, err := io.ReadFull(x, buf); err != nil {
			b.Fatal(err)
		}
	}
}
