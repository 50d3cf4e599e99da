package dispatcher

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluicelb/sluice/backend"
)

// BenchmarkHopThroughput is one dispatcher-tier hop: a TCP client streams
// through Forward to an abns unix socket, where a sink (standing for the
// TLS worker) reads it. "splice" is the real path; "buffered" hides the
// client socket's type so that every byte goes through user space, for
// comparison. The number is MB/s of the stream.
func BenchmarkHopThroughput(b *testing.B) {
	b.Run("splice", func(b *testing.B) { benchHop(b, false) })
	b.Run("buffered", func(b *testing.B) { benchHop(b, true) })
}

func benchHop(b *testing.B, wrap bool) {
	ln, a := listenOn(b, "abns")
	received := make(chan int64, 1)
	serve(ln, func(c net.Conn) {
		buf := make([]byte, 256<<10)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		received <- n
	})
	p := tcpProxy(server("worker", 1, a))
	p.Timeouts.Tunnel = 0
	p.Timeouts.Client, p.Timeouts.Server = 0, 0
	be := backend.New(p, nil)

	c, acc := tcpPair(b)
	defer c.Close()
	var client net.Conn = acc
	if wrap {
		client = opaque{acc}
	}
	results := make(chan Result, 1)
	go Forward(context.Background(), testLoop(b), client, acc.RemoteAddr(), acc.LocalAddr(), be, p, func(r Result) { results <- r })

	chunk := payload(256 << 10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	// The clock runs until the sink has it all.
	if n := <-received; n != int64(b.N)*int64(len(chunk)) {
		b.Fatalf("sink got %d bytes, sent %d", n, b.N*len(chunk))
	}
	b.StopTimer()
	// CPU time is steadier than wall time on a shared machine; it counts
	// the client and the sink too, which cost the same in every variant.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/(float64(b.N)*float64(len(chunk))/(1<<30)), "cpu-ns/GiB")
	if r := <-results; r.Term != "--" {
		b.Fatalf("result %+v", r)
	}
}

// BenchmarkHopConnections is connections per second through Forward: the
// client connects, sends a small request, reads the answer and closes; the
// server behind the abns socket answers and closes.
func BenchmarkHopConnections(b *testing.B) {
	ln, a := listenOn(b, "abns")
	serve(ln, func(c net.Conn) {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write([]byte("pong"))
		}
	})
	p := tcpProxy(server("worker", 1, a))
	be := backend.New(p, nil)

	front := forwardingFront(b, be, p)

	ping := []byte("ping")
	buf := make([]byte, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", front.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(ping); err != nil {
			b.Fatal(err)
		}
		// The server closes after its answer: read until the end, so
		// that the proxy side closes first and keeps the TIME_WAIT.
		n, err := io.ReadFull(c, buf[:4])
		if err != nil || !bytes.Equal(buf[:n], []byte("pong")) {
			b.Fatalf("answer %q, %v", buf[:n], err)
		}
		if n, err := c.Read(buf); n != 0 || err != io.EOF {
			b.Fatalf("after the answer: %d, %v", n, err)
		}
		c.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	benchSrc = &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 51234}
	benchDst = &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 443}
)

func BenchmarkProxyHeaderV2Write(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := SendProxyHeader(io.Discard, 2, benchSrc, benchDst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProxyHeaderV1Write(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := SendProxyHeader(io.Discard, 1, benchSrc, benchDst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxyHeaderV2Read is the receiving side (a worker with
// accept-proxy) parsing what SendProxyHeader wrote, with go-proxyproto.
func BenchmarkProxyHeaderV2Read(b *testing.B) {
	var buf bytes.Buffer
	if err := SendProxyHeader(&buf, 2, benchSrc, benchDst); err != nil {
		b.Fatal(err)
	}
	wire := buf.Bytes()
	r := bytes.NewReader(wire)
	br := bufio.NewReader(r)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(wire)
		br.Reset(r)
		h, err := proxyproto.Read(br)
		if err != nil {
			b.Fatal(err)
		}
		if h.Command != proxyproto.PROXY {
			b.Fatal("not a PROXY header")
		}
	}
}
