package tls

import (
	stdtls "crypto/tls"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkHandshake measures handshakes of a NewServer Config over
// loopback TCP: full and resumed (session tickets from SharedKeys), TLS 1.3
// and 1.2, ECDSA P-256 and RSA-2048 certificates, the default key exchange
// (X25519MLKEM768 in TLS 1.3, X25519 in TLS 1.2). ns/op covers both sides
// and the TCP connection; server-µs/op is the CPU time of the server
// goroutine's thread alone (RUSAGE_THREAD), what a worker pays, and
// handshakes/s/core is its inverse.
//
//	go test -run XXX -bench Handshake ./tls/
func BenchmarkHandshake(b *testing.B) {
	for _, key := range []struct {
		name string
		rsa  bool
	}{{"ECDSA-P256", false}, {"RSA-2048", true}} {
		site := newCert(b, certSpec{rsa: key.rsa, cn: "bench.test", dns: []string{"bench.test"}})
		for _, v := range []string{"TLSv1.3", "TLSv1.2"} {
			for _, resume := range []bool{false, true} {
				kind := "full"
				if resume {
					kind = "resumed"
				}
				b.Run(key.name+"/"+v+"/"+kind, func(b *testing.B) {
					srv, err := NewServer([]CertEntry{entry(b, site)}, BindOptions{MaxVersion: v, ALPN: []string{"h2", "http/1.1"}}, NewSharedKeys())
					if err != nil {
						b.Fatal(err)
					}
					benchHandshake(b, srv, resume)
				})
			}
		}
	}
}

func benchHandshake(b *testing.B, srv *stdtls.Config, resume bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cli := &stdtls.Config{ServerName: "bench.test", InsecureSkipVerify: true, NextProtos: []string{"h2"}}
	if resume {
		cli.ClientSessionCache = stdtls.NewLRUClientSessionCache(1)
	}
	n := b.N
	if resume {
		n++ // a first handshake makes the session
	}

	type result struct {
		cpu time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Lock the server to one thread so that its CPU time is the
		// server's handshake work only.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var cpu time.Duration
		for i := 0; i < n; i++ {
			c, err := ln.Accept()
			if err != nil {
				done <- result{err: err}
				return
			}
			before := threadCPU()
			tc := stdtls.Server(c, srv)
			err = tc.Handshake()
			if i > 0 || !resume {
				cpu += threadCPU() - before
			}
			if err == nil {
				// The client reads this, and the TLS 1.3 tickets before it.
				_, err = tc.Write([]byte{'x'})
			}
			c.Close()
			if err != nil {
				done <- result{err: err}
				return
			}
		}
		done <- result{cpu: cpu}
	}()
	buf := make([]byte, 1)
	for i := 0; i < n; i++ {
		if i == 1 && resume || i == 0 && !resume {
			b.ResetTimer()
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := stdtls.Client(c, cli)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if _, err := tc.Read(buf); err != nil {
			b.Fatal(err)
		}
		if got := tc.ConnectionState().DidResume; got != (resume && i > 0) {
			b.Fatalf("handshake %d: resumed %v", i, got)
		}
		c.Close()
	}
	r := <-done
	b.StopTimer()
	if r.err != nil {
		b.Fatal(r.err)
	}
	perOp := float64(r.cpu.Nanoseconds()) / float64(b.N) / 1e3
	b.ReportMetric(perOp, "server-µs/op")
	b.ReportMetric(1e6/perOp, "handshakes/s/core")
}

func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
