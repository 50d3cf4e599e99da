package dispatcher

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/sluicelb/sluice/backend"
)

// BenchmarkIdleTunnelMemory is what an idle forwarded connection costs the
// dispatcher: it opens idleTunnels connections through Forward (each on a
// goroutine of its own, as the accept loop runs them), moves one byte each
// way, and reports the goroutine stacks and live heap per connection, before
// and after a garbage collection (which shrinks stacks that are mostly
// unused). Both outer ends are held without goroutines, so only Forward's
// count. Run it once: -bench IdleTunnelMemory -benchtime 1x.
func BenchmarkIdleTunnelMemory(b *testing.B) {
	const idleTunnels = 2000
	ln, a := listenOn(b, "abns")
	p := tcpProxy(server("worker", 1, a, sendProxy(2)))
	be := backend.New(p, nil)
	front := forwardingFront(b, be, p)

	for i := 0; i < b.N; i++ {
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		rss0 := rss(b)
		var held []net.Conn
		hdr := make([]byte, 28) // a PROXY v2 header for TCP over IPv4
		one := make([]byte, 1)
		for range idleTunnels {
			c, err := net.Dial("tcp", front.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			c.Write([]byte("x"))
			if _, err := io.ReadFull(s, hdr); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(s, one); err != nil {
				b.Fatal(err)
			}
			s.Write([]byte("y"))
			if _, err := io.ReadFull(c, one); err != nil {
				b.Fatal(err)
			}
			held = append(held, c, s)
		}
		time.Sleep(100 * time.Millisecond)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		per := func(after, before uint64) float64 { return (float64(after) - float64(before)) / idleTunnels }
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/idleTunnels, "goroutines/conn")
		b.ReportMetric(per(m.StackInuse, before.StackInuse), "stack-B/conn")
		b.ReportMetric(per(m.HeapInuse, before.HeapInuse), "heap-B/conn")
		// Stack bytes in use are not all resident: a stack that grew
		// has pages it never touched. RSS is what the figure counts.
		b.ReportMetric(per(rss(b), rss0), "rss-B/conn")
		runtime.GC()
		runtime.ReadMemStats(&m)
		b.ReportMetric(per(m.StackInuse, before.StackInuse), "stack-B/conn-after-gc")
		b.ReportMetric(per(m.HeapInuse, before.HeapInuse), "heap-B/conn-after-gc")
		for _, c := range held {
			c.Close()
		}
		noActive(b, be)
	}
}

// rss is the process's resident memory, from /proc/self/statm.
func rss(tb testing.TB) uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		tb.Fatal(err)
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		tb.Fatal(err)
	}
	return resident * uint64(os.Getpagesize())
}
