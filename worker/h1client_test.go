package worker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedServer answers each request head it reads with the next of
// answers (the last one repeats), and counts its connections. An answer
// "CLOSE" closes the connection without a word.
type scriptedServer struct {
	addr  string
	conns atomic.Int32
	heads chan string
}

func newScriptedServer(t *testing.T, answers ...string) *scriptedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{addr: ln.Addr().String(), heads: make(chan string, 100)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var next atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					s.heads <- head.String()
					i := int(next.Add(1)) - 1
					a := answers[min(i, len(answers)-1)]
					if a == "CLOSE" {
						return
					}
					if _, err := io.WriteString(c, a); err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func testH1Client() *h1Client {
	var d net.Dialer
	return newH1Client(func(ctx context.Context, network, hostport string) (net.Conn, error) {
		return d.DialContext(ctx, network, hostport)
	}, 2*time.Second)
}

func getReq(t *testing.T, method, addr string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://"+addr+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestH1ClientFraming: every way a response body can end, and whether the
// connection is used again after it.
func TestH1ClientFraming(t *testing.T) {
	for _, tt := range []struct {
		name   string
		method string
		answer string
		body   string
		reused bool // the second request goes over the first connection
	}{
		{"content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello", true},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", "hello", true},
		{"empty", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "", true},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "", true},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", "", true},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "", true},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", "hello", false},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello", false},
		{"bytes after the response", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello!", "hello", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newScriptedServer(t, tt.answer)
			c := testH1Client()
			defer c.closeIdle()
			for i := 0; i < 2; i++ {
				resp, err := c.RoundTrip(getReq(t, tt.method, s.addr))
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != tt.body {
					t.Fatalf("body %q, %v; want %q", body, err, tt.body)
				}
			}
			want := int32(2)
			if tt.reused {
				want = 1
			}
			if got := s.conns.Load(); got != want {
				t.Errorf("%d server connections, want %d", got, want)
			}
		})
	}
}

// TestH1ClientCloseDelimited: a body without a length ends with the
// connection, which is not reused.
func TestH1ClientCloseDelimited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil the end")
			c.Close()
		}
	}()
	c := testH1Client()
	resp, err := c.RoundTrip(getReq(t, "GET", ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "until the end" {
		t.Fatalf("body %q, %v", body, err)
	}
	if len(c.idle) != 0 {
		t.Error("a close-delimited connection was pooled")
	}
}

// TestH1ClientInformational: 1xx responses reach the trace (ReverseProxy
// forwards them), then the final response is returned.
func TestH1ClientInformational(t *testing.T) {
	s := newScriptedServer(t, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := testH1Client()
	var got []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, code)
		if h.Get("Link") != "</a.css>" {
			t.Errorf("1xx headers %v", h)
		}
		return nil
	}}
	r := getReq(t, "GET", s.addr)
	r = r.WithContext(httptrace.WithClientTrace(r.Context(), trace))
	resp, err := c.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got) != 1 || got[0] != 103 {
		t.Errorf("status %d, 1xx %v", resp.StatusCode, got)
	}
}

// TestH1ClientRetriesStaleConnection: a pooled connection the server
// closed is dropped and the request sent again on a new one.
func TestH1ClientRetriesStaleConnection(t *testing.T) {
	s := newScriptedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "CLOSE", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := testH1Client()
	defer c.closeIdle()
	for i := 0; i < 2; i++ {
		resp, err := c.RoundTrip(getReq(t, "GET", s.addr))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("%d server connections, want 2", got)
	}
}

// silentServer accepts one connection, reads it and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	return ln.Addr().String()
}

// TestH1ClientErrors: how failures come back (proxyError maps them to
// 502 and 504), and that a failed connection is never pooled.
func TestH1ClientErrors(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		addr := silentServer(t)
		c := testH1Client()
		c.headerTimeout = 50 * time.Millisecond
		_, err := c.RoundTrip(getReq(t, "GET", addr))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("err %v, want a timeout", err)
		}
	})
	t.Run("closed before answering", func(t *testing.T) {
		s := newScriptedServer(t, "CLOSE")
		_, err := testH1Client().RoundTrip(getReq(t, "GET", s.addr))
		if err == nil {
			t.Error("no error")
		}
	})
	t.Run("cut in the body", func(t *testing.T) {
		s := newScriptedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
		c := testH1Client()
		resp, err := c.RoundTrip(getReq(t, "GET", s.addr))
		if err != nil {
			t.Fatal(err)
		}
		// The scripted server waits for another request: the body ends
		// with the deadline of the client's cancellation instead.
		resp.Body.Close()
		if len(c.idle) != 0 {
			t.Error("a connection left mid-body was pooled")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		addr := silentServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		r := getReq(t, "GET", addr).WithContext(ctx)
		_, err := testH1Client().RoundTrip(r)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
	t.Run("head too large", func(t *testing.T) {
		s := newScriptedServer(t, "HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 100)+"\r\n\r\n")
		c := testH1Client()
		c.maxHead = 64
		if _, err := c.RoundTrip(getReq(t, "GET", s.addr)); err == nil {
			t.Error("no error")
		}
	})
}

// TestH1ClientCovers: what goes through the lean client, the rest through
// http.Transport.
func TestH1ClientCovers(t *testing.T) {
	c := testH1Client()
	for _, tt := range []struct {
		name string
		mk   func() *http.Request
		want bool
	}{
		{"get", func() *http.Request { r, _ := http.NewRequest("GET", "http://s/", nil); return r }, true},
		{"head", func() *http.Request { r, _ := http.NewRequest("HEAD", "http://s/", nil); return r }, true},
		{"post without a body", func() *http.Request { r, _ := http.NewRequest("POST", "http://s/", nil); return r }, false},
		{"put with a body", func() *http.Request { r, _ := http.NewRequest("PUT", "http://s/", strings.NewReader("x")); return r }, false},
		{"upgrade", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://s/", nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		}, false},
	} {
		if got := c.covers(tt.mk()); got != tt.want {
			t.Errorf("%s: covers %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestH1ClientIdleTimeout: connections idle too long are closed, not
// reused.
func TestH1ClientIdleTimeout(t *testing.T) {
	s := newScriptedServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	c := testH1Client()
	c.idleTimeout = 20 * time.Millisecond
	defer c.closeIdle()
	for i := 0; i < 2; i++ {
		resp, err := c.RoundTrip(getReq(t, "GET", s.addr))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(100 * time.Millisecond)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("%d server connections, want 2", got)
	}
	c.mu.Lock()
	n := len(c.idle)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d hosts with idle connections after the idle timeout", n)
	}
}
