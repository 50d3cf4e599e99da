package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// seedConfig is the configuration of the two-tier design email, verbatim
// but for the port, the socket names, the certificate and the server.
const seedConfig = `listen dispatcher
   bind 127.0.0.1:%[1]d process 1
   balance leastconn
   server process2 abns@%[2]s-p2 send-proxy
   server process3 abns@%[2]s-p3 send-proxy
   server process4 abns@%[2]s-p4 send-proxy
   server process5 abns@%[2]s-p5 send-proxy

listen worker
   bind abns@%[2]s-p2 process 2 accept-proxy ssl crt %[3]s
   bind abns@%[2]s-p3 process 3 accept-proxy ssl crt %[3]s
   bind abns@%[2]s-p4 process 4 accept-proxy ssl crt %[3]s
   bind abns@%[2]s-p5 process 5 accept-proxy ssl crt %[3]s
   server app 127.0.0.1:%[4]d%[5]s
`

type twoTier struct {
	in      *instance
	port    int
	url     string
	abns    string
	backend int
}

// startSeed runs the seed configuration with a worker tier in the given mode
// ("" keeps the seed's default tcp mode) and extra worker lines.
func startSeed(t *testing.T, backendPort int, serverOpts string, workerExtra string) *twoTier {
	t.Helper()
	tt := &twoTier{port: freePort(t), abns: abnsName(t, "w"), backend: backendPort}
	cfg := fmt.Sprintf(seedConfig, tt.port, tt.abns, writeCert(t), backendPort, serverOpts)
	cfg += workerExtra
	tt.url = fmt.Sprintf("https://127.0.0.1:%d/", tt.port)
	tt.in = startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", tt.port))
	waitFor(t, 10*time.Second, "4 worker processes", func() bool { return len(tt.in.children(t)) == 5 })
	return tt
}

func TestSeedConfigServesTLS(t *testing.T) {
	tt := startSeed(t, httpBackend(t), "", "")
	// 500 connections, 10 at a time, each a full TLS handshake through
	// both tiers.
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	sem := make(chan struct{}, 10)
	client := tlsClient("")
	for i := 0; i < 500; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := get(client, tt.url); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 5 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of 500 TLS connections failed", n)
	}
}

func TestClientAddressReachesServers(t *testing.T) {
	t.Run("http mode X-Forwarded-For", func(t *testing.T) {
		tt := startSeed(t, httpBackend(t), "", "   mode http\n   option forwardfor\n")
		body, err := get(tlsClient("127.0.0.7"), tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if want := "xff=127.0.0.7 proto=https"; !strings.Contains(body, want) {
			t.Fatalf("backend saw %q, want %q", body, want)
		}
	})
	t.Run("tcp mode send-proxy", func(t *testing.T) {
		seen := make(chan string, 1)
		port := proxyBackend(t, seen)
		tt := startSeed(t, port, " send-proxy", "")
		c := dialTLS(t, tt.port, "127.0.0.7")
		defer c.Close()
		fmt.Fprintf(c, "ping\n")
		select {
		case src := <-seen:
			if src != "127.0.0.7" {
				t.Fatalf("server saw PROXY source %s, want 127.0.0.7", src)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("server got no PROXY header")
		}
	})
}

func TestLeastconnSpreadsHeldConnections(t *testing.T) {
	port := echoBackend(t)
	tt := startSeed(t, port, "", "")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 100; i++ {
		c := dialTLS(t, tt.port, "")
		conns = append(conns, c)
		echo(t, c, "x")
	}
	children := tt.in.children(t)
	delete(children, 1) // the dispatcher
	var counts map[int]int
	waitFor(t, 5*time.Second, "100 server connections", func() bool {
		counts = tcpConnsTo(t, children, port)
		return counts[2]+counts[3]+counts[4]+counts[5] == 100
	})
	for n := 2; n <= 5; n++ {
		if counts[n] != 25 {
			t.Fatalf("connections per worker = %v, want 25 each", counts)
		}
	}
}

func TestBadClientsDoNotDisturbOthers(t *testing.T) {
	port := echoBackend(t)
	tt := startSeed(t, port, "", "")
	held := dialTLS(t, tt.port, "")
	defer held.Close()
	echo(t, held, "before")

	// A garbage PROXY header straight on a worker socket: closed.
	raw, err := net.Dial("unix", "@"+tt.abns+"-p2"+strings.Repeat("\x00", 107-len(tt.abns+"-p2")))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(raw, "PROXY GARBAGE 1.2.3.4\r\n\r\nhello")
	expectClosed(t, raw)

	// Plain text on the TLS port, through the dispatcher: closed.
	plain, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tt.port))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(plain, "GET / HTTP/1.0\r\n\r\n")
	expectClosed(t, plain)

	echo(t, held, "after")
	c := dialTLS(t, tt.port, "")
	defer c.Close()
	echo(t, c, "new")
}

// The dispatcher hands each client's socket to a worker: the connection is
// the worker's from then on, and goes on when the dispatcher's process
// dies and is replaced.
func TestHandedConnectionsOutliveTheDispatcher(t *testing.T) {
	port := echoBackend(t)
	tt := startSeed(t, port, "", "")
	held := dialTLS(t, tt.port, "")
	defer held.Close()
	echo(t, held, "before")
	dispatcher := tt.in.children(t)[1]
	if err := syscall.Kill(dispatcher, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a new process 1", func() bool {
		pid := tt.in.children(t)[1]
		return pid != 0 && pid != dispatcher
	})
	echo(t, held, "after")
	c := dialTLS(t, tt.port, "")
	defer c.Close()
	echo(t, c, "new")
}

func TestKilledWorkerIsReplaced(t *testing.T) {
	tt := startSeed(t, httpBackend(t), "", "")
	before := tt.in.children(t)
	victim := before[3]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a new process 3", func() bool {
		pid := tt.in.children(t)[3]
		return pid != 0 && pid != victim
	})
	client := tlsClient("")
	for i := 0; i < 200; i++ {
		if _, err := get(client, tt.url); err != nil {
			t.Fatalf("connection %d after the restart: %v", i, err)
		}
	}
	after := tt.in.children(t)
	for n, pid := range before {
		if n != 3 && after[n] != pid {
			t.Errorf("process %d changed pid from %d to %d", n, pid, after[n])
		}
	}
}

func TestDemo(t *testing.T) {
	startBinary(t, "127.0.0.1:8443")
	body, err := get(tlsClient(""), "https://127.0.0.1:8443/")
	if err != nil {
		t.Fatal(err)
	}
	if body != "hello from sluice\n" {
		t.Fatalf("demo answered %q", body)
	}
}

// dialTLS opens a TLS connection to the dispatcher, optionally from a given
// loopback source address, and completes the handshake.
func dialTLS(t *testing.T, port int, from string) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// echo sends a line and expects it back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if line != msg+"\n" {
		t.Fatalf("echo got %q, want %q", line, msg)
	}
}

// expectClosed checks that the peer closes the connection without data.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("connection not closed: %v", err)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "\x15") { // a TLS alert is fine
		t.Fatalf("got %q before close", b)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

// echoBackend runs a TCP echo server on 127.0.0.1 and returns its port.
func echoBackend(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// proxyBackend runs a TCP server that reads a PROXY header and reports the
// source address it names.
func proxyBackend(t *testing.T, seen chan<- string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h, err := proxyproto.Read(bufio.NewReader(c))
				if err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(h.SourceAddr.String())
				select {
				case seen <- host:
				default:
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
