package dispatcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

func TestForward(t *testing.T) {
	for _, accept := range accepts {
		t.Run(accept, func(t *testing.T) {
			for _, family := range []string{"tcp", "abns", "abnsz", "unix"} {
				for _, size := range []int{0, 1, 5, 1 << 20} {
					t.Run(family+"/"+strconv.Itoa(size), func(t *testing.T) {
						ln, a := listenOn(t, family)
						serve(ln, upperAfterEOF)
						p := tcpProxy(server("s1", 1, a))
						be := backend.New(p, nil)
						c, results := forwardBy(t, accept, be, p)

						data := payload(size)
						go func() {
							c.Write(data)
							c.CloseWrite()
						}()
						answer, err := io.ReadAll(c)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(answer, bytes.ToUpper(data)) {
							t.Fatalf("answer of %d bytes differs from the %d sent", len(answer), len(data))
						}
						r := result(t, results)
						if r.Term != "--" || r.Server != "s1" || r.Backend != "be" || r.Retries != 0 || r.Redispatched || r.Tc < 0 {
							t.Errorf("result %+v", r)
						}
						if r.BytesFromClient != int64(size) || r.BytesFromServer != int64(size) {
							t.Errorf("bytes from client %d, from server %d; want %d each", r.BytesFromClient, r.BytesFromServer, size)
						}
						noActive(t, be)
						st := be.Stats()
						if st.BytesIn != int64(size) || st.BytesOut != int64(size) || st.Total != 1 {
							t.Errorf("backend counters %+v", st)
						}
					})
				}
			}
		})
	}
}

// The client shuts its write half first: the server still answers.
// Then the other way round: the server says its part and shuts, and the
// client still sends.
func TestForwardHalfClose(t *testing.T) {
	for _, family := range []string{"tcp", "abns"} {
		t.Run(family+"/client first", func(t *testing.T) {
			ln, a := listenOn(t, family)
			serve(ln, func(c net.Conn) {
				req, _ := io.ReadAll(c) // ends with the client's half-close
				// Answer in pieces, well after the client stopped sending.
				for _, part := range []string{"got ", strconv.Itoa(len(req)), " bytes"} {
					if _, err := c.Write([]byte(part)); err != nil {
						return
					}
				}
			})
			p := tcpProxy(server("s1", 1, a))
			be := backend.New(p, nil)
			c, results := forward(t, be, p)
			c.Write([]byte("hello"))
			c.CloseWrite()
			answer, err := io.ReadAll(c)
			if err != nil || string(answer) != "got 5 bytes" {
				t.Fatalf("answer %q, %v", answer, err)
			}
			if r := result(t, results); r.Term != "--" || r.BytesFromClient != 5 || r.BytesFromServer != 11 {
				t.Errorf("result %+v", r)
			}
		})
		t.Run(family+"/server first", func(t *testing.T) {
			ln, a := listenOn(t, family)
			received := make(chan string, 1)
			serve(ln, func(c net.Conn) {
				c.Write([]byte("banner"))
				c.(interface{ CloseWrite() error }).CloseWrite()
				req, _ := io.ReadAll(c)
				received <- string(req)
			})
			p := tcpProxy(server("s1", 1, a))
			be := backend.New(p, nil)
			c, results := forward(t, be, p)
			banner, err := io.ReadAll(c) // the server's half-close reaches the client
			if err != nil || string(banner) != "banner" {
				t.Fatalf("banner %q, %v", banner, err)
			}
			c.Write([]byte("late request"))
			c.CloseWrite()
			select {
			case got := <-received:
				if got != "late request" {
					t.Errorf("server got %q", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("server never got the request sent after its half-close")
			}
			if r := result(t, results); r.Term != "--" || r.BytesFromClient != 12 || r.BytesFromServer != 6 {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// A server with send-proxy / send-proxy-v2 gets the client's addresses.
func TestForwardProxyHeader(t *testing.T) {
	for _, accept := range accepts {
		t.Run(accept, func(t *testing.T) {
			for _, family := range []string{"tcp", "abns"} {
				for _, version := range []int{1, 2} {
					t.Run(family+"/v"+strconv.Itoa(version), func(t *testing.T) {
						ln, a := listenOn(t, family)
						headers := make(chan *proxyproto.Header, 1)
						serve(ln, func(c net.Conn) {
							pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE))
							h := pc.ProxyHeader()
							headers <- h
							if h != nil {
								upperAfterEOF(pc)
							}
						})
						p := tcpProxy(server("s1", 1, a, sendProxy(version)))
						be := backend.New(p, nil)
						c, results := forwardBy(t, accept, be, p)
						c.Write([]byte("data after the header"))
						c.CloseWrite()
						answer, _ := io.ReadAll(c)
						h := <-headers
						if h == nil {
							t.Fatal("server got no valid PROXY header")
						}
						if h.Version != byte(version) || h.Command != proxyproto.PROXY || h.TransportProtocol != proxyproto.TCPv4 {
							t.Errorf("header version %d command %v protocol %v", h.Version, h.Command, h.TransportProtocol)
						}
						// The client's source is the client end's local address;
						// the destination is the address it connected to.
						if h.SourceAddr.String() != c.LocalAddr().String() || h.DestinationAddr.String() != c.RemoteAddr().String() {
							t.Errorf("header %v -> %v, client %v -> %v", h.SourceAddr, h.DestinationAddr, c.LocalAddr(), c.RemoteAddr())
						}
						if string(answer) != "DATA AFTER THE HEADER" {
							t.Errorf("answer %q", answer)
						}
						// The header is not part of the counted bytes.
						if r := result(t, results); r.Term != "--" || r.BytesFromClient != 21 {
							t.Errorf("result %+v", r)
						}
					})
				}
			}
		})
	}
}

// The dispatcher tier reads a PROXY header from the client (accept-proxy),
// wraps the connection, and passes the addresses on: the bytes the header
// read buffered past itself reach the server, and the server's header
// carries the original client.
func TestForwardAcceptProxyChain(t *testing.T) {
	ln, a := listenOn(t, "abns")
	headers := make(chan *proxyproto.Header, 1)
	serve(ln, func(c net.Conn) {
		pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE))
		headers <- pc.ProxyHeader()
		upperAfterEOF(pc)
	})
	p := tcpProxy(server("s1", 1, a, sendProxy(2)))
	be := backend.New(p, nil)
	c, acc := tcpPair(t)
	defer c.Close()
	orig := &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 51000}
	front := &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 443}
	hdr := proxyproto.HeaderProxyFromAddrs(1, orig, front)
	raw, _ := hdr.Format()
	// Header and data in one write, so the reader buffers data too.
	body := payload(100 << 10)
	go func() {
		c.Write(append(raw, body...))
		c.CloseWrite()
	}()
	pc := proxyproto.NewConn(acc, proxyproto.WithPolicy(proxyproto.REQUIRE))
	if _, err := pc.Read(nil); err != nil {
		t.Fatal(err)
	}
	results := make(chan Result, 1)
	go Forward(context.Background(), testLoop(t), pc, pc.RemoteAddr(), pc.LocalAddr(), be, p, func(r Result) { results <- r })
	answer, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(answer, bytes.ToUpper(body)) {
		t.Fatalf("answer of %d bytes (%v), sent %d", len(answer), err, len(body))
	}
	h := <-headers
	if h == nil || h.SourceAddr.String() != orig.String() || h.DestinationAddr.String() != front.String() {
		t.Errorf("server header %+v", h)
	}
	if r := result(t, results); r.Term != "--" || r.BytesFromClient != int64(len(body)) || r.BytesFromServer != int64(len(body)) {
		t.Errorf("result %+v", r)
	}
}

func TestSendProxyHeader(t *testing.T) {
	tcp4a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 40000}
	tcp4b := &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 443}
	tcp6a := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 40000}
	tcp6b := &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 443}
	unixA := &net.UnixAddr{Name: "@client", Net: "unix"}
	unixB := &net.UnixAddr{Name: "@worker", Net: "unix"}
	for _, tc := range []struct {
		name     string
		version  int
		src, dst net.Addr
		v1       string                               // the exact v1 line
		v2       proxyproto.ProtocolVersionAndCommand // v2 command
		v2proto  proxyproto.AddressFamilyAndProtocol
	}{
		{"none", 0, tcp4a, tcp4b, "", 0, 0},
		{"v1 tcp4", 1, tcp4a, tcp4b, "PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\n", 0, 0},
		{"v1 tcp6", 1, tcp6a, tcp6b, "PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n", 0, 0},
		{"v1 unix", 1, unixA, unixB, "PROXY UNKNOWN\r\n", 0, 0},
		{"v1 tcp from unix", 1, unixA, tcp4b, "PROXY UNKNOWN\r\n", 0, 0},
		{"v1 nil", 1, nil, nil, "PROXY UNKNOWN\r\n", 0, 0},
		{"v2 tcp4", 2, tcp4a, tcp4b, "", proxyproto.PROXY, proxyproto.TCPv4},
		{"v2 tcp6", 2, tcp6a, tcp6b, "", proxyproto.PROXY, proxyproto.TCPv6},
		{"v2 unix", 2, unixA, unixB, "", proxyproto.LOCAL, proxyproto.UNSPEC},
		{"v2 mixed", 2, tcp4a, unixB, "", proxyproto.LOCAL, proxyproto.UNSPEC},
		{"v2 nil", 2, nil, nil, "", proxyproto.LOCAL, proxyproto.UNSPEC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := SendProxyHeader(&buf, tc.version, tc.src, tc.dst); err != nil {
				t.Fatal(err)
			}
			switch tc.version {
			case 0:
				if buf.Len() != 0 {
					t.Fatalf("wrote %q", buf.Bytes())
				}
				return
			case 1:
				if buf.String() != tc.v1 {
					t.Fatalf("wrote %q, want %q", buf.String(), tc.v1)
				}
			}
			// Whatever was written parses back, with the addresses.
			wire := buf.Len()
			buf.WriteString("after")
			br := bufio.NewReader(&buf)
			h, err := proxyproto.Read(br)
			if err != nil {
				t.Fatalf("go-proxyproto cannot read %q: %v", buf.Bytes(), err)
			}
			if rest, _ := io.ReadAll(br); string(rest) != "after" {
				t.Errorf("header of %d bytes ate into the data: %q left", wire, rest)
			}
			if tc.version == 2 {
				if h.Version != 2 || h.Command != tc.v2 || h.TransportProtocol != tc.v2proto {
					t.Errorf("v2 header command %v protocol %v, want %v %v", h.Command, h.TransportProtocol, tc.v2, tc.v2proto)
				}
			}
			if h.Command == proxyproto.PROXY && h.TransportProtocol != proxyproto.UNSPEC {
				if h.SourceAddr.String() != tc.src.String() || h.DestinationAddr.String() != tc.dst.String() {
					t.Errorf("addresses %v -> %v, want %v -> %v", h.SourceAddr, h.DestinationAddr, tc.src, tc.dst)
				}
			}
		})
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

func TestSendProxyHeaderWriteError(t *testing.T) {
	src := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	for _, v := range []int{1, 2} {
		if err := SendProxyHeader(errWriter{}, v, src, src); err == nil {
			t.Errorf("v%d: no error from a failing writer", v)
		}
		if err := SendProxyHeader(errWriter{}, v, nil, nil); err == nil {
			t.Errorf("v%d UNKNOWN/LOCAL: no error from a failing writer", v)
		}
	}
}

func TestForwardRetries(t *testing.T) {
	for _, accept := range accepts {
		t.Run(accept, func(t *testing.T) {
			for _, tc := range []struct {
				name         string
				servers      []string // "ok" servers listen, others refuse
				retries      int
				redispatch   bool
				wantServer   string
				wantTerm     string
				wantRetries  int
				redispatched bool
				connErrors   map[string]int64
				minTime      time.Duration // turn-around pauses before retrying the same server
			}{
				{"redispatch to the second server", []string{"bad", "ok"}, 3, true,
					"ok", "--", 1, true, map[string]int64{"bad": 1}, 0},
				{"without redispatch, retries stay on the server", []string{"bad", "ok"}, 2, false,
					"bad", "SC", 2, false, map[string]int64{"bad": 3, "ok": 0}, 2 * 20 * time.Millisecond},
				{"redispatch, every server refuses", []string{"bad", "bad2"}, 3, true,
					"", "SC", 3, true, map[string]int64{"bad": 2, "bad2": 2}, 0},
				{"redispatch, the only server refuses", []string{"bad"}, 2, true,
					"bad", "SC", 2, true, map[string]int64{"bad": 3}, 2 * 20 * time.Millisecond},
				{"no retries", []string{"bad", "ok"}, 0, true,
					"bad", "SC", 0, false, map[string]int64{"bad": 1, "ok": 0}, 0},
				{"first server fine", []string{"ok", "bad"}, 3, true,
					"ok", "--", 0, false, map[string]int64{"bad": 0}, 0},
			} {
				t.Run(tc.name, func(t *testing.T) {
					var servers []*config.Server
					for i, name := range tc.servers {
						a := refusedAddr(t)
						if name == "ok" {
							var ln net.Listener
							ln, a = listenOn(t, "abns")
							serve(ln, upperAfterEOF)
						}
						servers = append(servers, server(name, i+1, a))
					}
					p := tcpProxy(servers...)
					p.Retries, p.Redispatch = tc.retries, tc.redispatch
					p.Timeouts.Connect = 20 * time.Millisecond
					be := backend.New(p, nil)
					start := time.Now()
					c, results := forwardBy(t, accept, be, p)
					c.Write([]byte("x"))
					c.CloseWrite()
					answer, _ := io.ReadAll(c)
					r := result(t, results)
					took := time.Since(start)
					if tc.wantServer != "" && r.Server != tc.wantServer {
						t.Errorf("server %q, want %q", r.Server, tc.wantServer)
					}
					if r.Term != tc.wantTerm || r.Retries != tc.wantRetries || r.Redispatched != tc.redispatched {
						t.Errorf("term %q retries %d redispatched %v; want %q %d %v", r.Term, r.Retries, r.Redispatched,
							tc.wantTerm, tc.wantRetries, tc.redispatched)
					}
					if tc.wantTerm == "--" {
						if string(answer) != "X" || r.Tc < 0 {
							t.Errorf("answer %q, Tc %v", answer, r.Tc)
						}
					} else if len(answer) != 0 || r.Tc != -1 || r.BytesFromClient != 0 {
						t.Errorf("failed connection: answer %q, result %+v", answer, r)
					}
					for name, want := range tc.connErrors {
						if got := be.Server(name).State().Counters.ConnErrors; got != want {
							t.Errorf("server %s: %d connection errors, want %d", name, got, want)
						}
					}
					if st := be.Stats(); st.Retries != int64(tc.wantRetries) {
						t.Errorf("backend retries %d, want %d", st.Retries, tc.wantRetries)
					}
					if took < tc.minTime {
						t.Errorf("took %v: retries on the same server did not pause (want >= %v)", took, tc.minTime)
					}
					noActive(t, be)
				})
			}
		})
	}
}

func TestForwardTerm(t *testing.T) {
	for _, accept := range accepts {
		t.Run(accept, func(t *testing.T) {
			t.Run("SC no server", func(t *testing.T) {
				ln, a := listenOn(t, "abns")
				serve(ln, upperAfterEOF)
				p := tcpProxy(server("s1", 1, a, func(s *config.Server) { s.Disabled = true }))
				be := backend.New(p, nil)
				c, results := forwardBy(t, accept, be, p)
				r := result(t, results)
				if r.Term != "SC" || r.Server != "" || r.Tc != -1 {
					t.Errorf("result %+v", r)
				}
				// The client is closed.
				if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
					t.Errorf("client read %d, %v", n, err)
				}
			})
			t.Run("sQ queue timeout", func(t *testing.T) {
				ln, a := listenOn(t, "abns")
				serve(ln, upperAfterEOF)
				p := tcpProxy(server("s1", 1, a, func(s *config.Server) { s.MaxConn = 1 }))
				p.Timeouts.Queue = 30 * time.Millisecond
				be := backend.New(p, nil)
				held, err := be.Acquire(context.Background(), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer held.Release()
				_, results := forwardBy(t, accept, be, p)
				r := result(t, results)
				if r.Term != "sQ" || r.Tw < 30*time.Millisecond || r.Tc != -1 {
					t.Errorf("result %+v", r)
				}
			})
			for _, family := range []string{"tcp", "abns"} {
				t.Run("cD idle timeout/"+family, func(t *testing.T) {
					ln, a := listenOn(t, family)
					serve(ln, func(c net.Conn) { io.Copy(io.Discard, c) }) // never answers
					p := tcpProxy(server("s1", 1, a))
					p.Timeouts.Tunnel = 100 * time.Millisecond
					be := backend.New(p, nil)
					start := time.Now()
					c, results := forwardBy(t, accept, be, p)
					c.Write([]byte("hello"))
					r := result(t, results)
					if r.Term != "cD" || r.BytesFromClient != 5 {
						t.Errorf("result %+v", r)
					}
					if took := time.Since(start); took < 100*time.Millisecond {
						t.Errorf("cut after %v", took)
					}
				})
			}
			t.Run("CD client reset", func(t *testing.T) {
				ln, a := listenOn(t, "abns")
				accepted := make(chan struct{})
				serve(ln, func(c net.Conn) { close(accepted); io.Copy(io.Discard, c) })
				p := tcpProxy(server("s1", 1, a))
				be := backend.New(p, nil)
				c, results := forwardBy(t, accept, be, p)
				<-accepted
				c.SetLinger(0)
				c.Close()
				if r := result(t, results); r.Term != "CD" {
					t.Errorf("result %+v", r)
				}
			})
			t.Run("SD server reset", func(t *testing.T) {
				ln, a := listenOn(t, "tcp")
				serve(ln, func(c net.Conn) {
					c.(*net.TCPConn).SetLinger(0)
				})
				p := tcpProxy(server("s1", 1, a))
				be := backend.New(p, nil)
				_, results := forwardBy(t, accept, be, p)
				if r := result(t, results); r.Term != "SD" {
					t.Errorf("result %+v", r)
				}
			})
		})
	}
}
