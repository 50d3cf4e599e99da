package worker

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

// rawBackend answers every GET with a fixed 40-byte response, written by
// hand so that its own cost stays small next to the worker's.
func rawBackend(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\n" + string(bytes.Repeat([]byte("x"), 39)) + "\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if err := skipHead(br); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// skipHead reads one message head (no body).
func skipHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

// readResponse reads one response with a Content-Length body.
func readResponse(br *bufio.Reader) (int, error) {
	status, n := 0, 0
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first {
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	_, err := br.Discard(n)
	return status, err
}

// benchWorker starts the http mode of a listen section in front of a raw
// backend and returns the address of a plain TCP listener that feeds it.
func benchWorker(tb testing.TB, extra string) string {
	tb.Helper()
	text := fmt.Sprintf(`defaults
    timeout connect 5s
    timeout client 2m
    timeout server 2m

listen worker
    mode http
    option forwardfor
    bind 127.0.0.1:9
%s    server app %s
`, extra, rawBackend(tb))
	cfg, _, err := config.LoadBytes("bench.cfg", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	p := cfg.Proxy("worker")
	backends := map[string]*backend.Backend{"worker": backend.New(p, nil)}
	log := slog.New(slog.DiscardHandler)
	h, err := newHTTPServer(p, cfg, backends, nil, new(frontendCounters), log)
	if err != nil {
		tb.Fatal(err)
	}
	if h.layers, err = newHTTPLayers(p, cfg, nil); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close(); h.ln.Close(); h.srv.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.serve(c, c, func() {})
		}
	}()
	return ln.Addr().String()
}

// BenchmarkKeepAlive is figure 2 of scripts/bench in one process, without
// TLS: keep-alive GETs through the worker's http mode to a backend.
func BenchmarkKeepAlive(b *testing.B) {
	front := benchWorker(b, "")
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n")
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", front)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			status, err := readResponse(br)
			if err != nil || status != 200 {
				b.Errorf("status %d, %v", status, err)
				return
			}
		}
	})
}

// cpuTime is the CPU the process used, in nanoseconds: on a shared
// machine it varies less than the wall time of a benchmark.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
