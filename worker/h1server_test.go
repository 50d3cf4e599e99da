package worker

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// h1Front serves the connections made to the address it returns with
// handler, through the guard and serveH1.
func h1Front(t *testing.T, handler http.Handler) (string, *httpServer) {
	t.Helper()
	return h1FrontWith(t, handler, 0, nil)
}

// h1FrontWith is h1Front with a client timeout, and a channel that gets a
// value each time a connection ends (nil: none).
func h1FrontWith(t *testing.T, handler http.Handler, client time.Duration, ended chan<- struct{}) (string, *httpServer) {
	t.Helper()
	h := &httpServer{log: slog.New(slog.DiscardHandler), ln: newConnListener(), limits: testLimits,
		srv: &http.Server{}, routes: &httpRoutes{}, body: client}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); h.ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g := newH1Guard(c, testLimits, 0, 0, client, h.log)
			ci := &connInfo{done: func() {
				if ended != nil {
					ended <- struct{}{}
				}
			}, guard: g}
			h.conns.Store(g, ci)
			go h.serveH1With(handler, g, ci)
		}
	}()
	return ln.Addr().String(), h
}

// h1Dial connects to a front, with a deadline on everything it does.
func h1Dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readOne reads one response, its body and trailers.
func readOne(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return resp, string(body)
}

// closed tells whether the server closed the connection after what br
// has read.
func closed(br *bufio.Reader) bool {
	_, err := br.ReadByte()
	return err == io.EOF
}

func TestH1ServerFraming(t *testing.T) {
	big := strings.Repeat("b", 3000)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/small":
			io.WriteString(w, "small")
		case "/big":
			io.WriteString(w, big)
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, big)
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "7")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			io.WriteString(w, "not sent")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/early":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
		case "/abort":
			io.WriteString(w, big)
			panic(http.ErrAbortHandler)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		default: // does not read the body
			io.WriteString(w, r.Method+" "+r.URL.Path)
		}
	})
	addr, _ := h1Front(t, handler)
	cases := []struct {
		name, request, method string
		status                int
		body                  string
		length                int64 // -1: chunked or to the close
		chunked, close        bool
		header                map[string]string
		trailer               map[string]string
	}{
		{name: "Content-Length set", request: "GET /length HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "hello", length: 5},
		{name: "short body gets a length", request: "GET /small HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "small", length: 5},
		{name: "long body chunked", request: "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: big, length: -1, chunked: true},
		{name: "trailers", request: "GET /trailer HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: big, length: -1, chunked: true,
			trailer: map[string]string{"X-Sum": "42", "X-Late": "7"}},
		{name: "HTTP/1.0 long body to the close", request: "GET /big HTTP/1.0\r\n\r\n", status: 200, body: big, length: -1, close: true},
		{name: "HTTP/1.0 keep-alive", request: "GET /length HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", status: 200, body: "hello", length: 5,
			header: map[string]string{"Connection": "keep-alive"}},
		{name: "HTTP/1.0 without keep-alive", request: "GET /length HTTP/1.0\r\n\r\n", status: 200, body: "hello", length: 5, close: true},
		{name: "HEAD", method: "HEAD", request: "HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, length: -1},
		{name: "204", request: "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n", status: 204},
		{name: "handler closes", request: "GET /close HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "bye", length: 3, close: true},
		{name: "client closes", request: "GET /small HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", status: 200, body: "small", length: 5, close: true},
		{name: "100-continue without a body", request: "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", status: 200, body: "GET /", length: 5},
		{name: "unknown expectation", request: "GET / HTTP/1.1\r\nHost: a\r\nExpect: bananas\r\n\r\n", status: 417, length: 0, close: true},
		{name: "unread body is read", request: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd", status: 200, body: "POST /x", length: 7},
		{name: "chunked request body", request: "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 200, body: "abc", length: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, br := h1Dial(t, addr)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			// Twice on one connection, unless it closes.
			for range 2 {
				io.WriteString(c, tc.request)
				resp, body := readOne(t, br, method)
				if resp.StatusCode != tc.status || body != tc.body {
					t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
				}
				if tc.status != 204 && resp.ContentLength != tc.length {
					t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.length)
				}
				if chunked := len(resp.TransferEncoding) > 0; chunked != tc.chunked {
					t.Errorf("chunked %v, want %v", chunked, tc.chunked)
				}
				for k, v := range tc.header {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("%s: %q, want %q", k, got, v)
					}
				}
				for k, v := range tc.trailer {
					if got := resp.Trailer.Get(k); got != v {
						t.Errorf("trailer %s: %q, want %q", k, got, v)
					}
				}
				if tc.close {
					if !closed(br) {
						t.Error("the connection stayed open")
					}
					return
				}
			}
		})
	}

	t.Run("interim response", func(t *testing.T) {
		c, br := h1Dial(t, addr)
		io.WriteString(c, "GET /early HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, _ := readOne(t, br, "GET")
		if resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") == "" {
			t.Fatalf("first %d %v", resp.StatusCode, resp.Header)
		}
		if resp, body := readOne(t, br, "GET"); resp.StatusCode != 200 || body != "after hints" {
			t.Fatalf("then %d %q", resp.StatusCode, body)
		}
	})
	t.Run("aborted response closes", func(t *testing.T) {
		c, br := h1Dial(t, addr)
		io.WriteString(c, "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("the cut body read whole")
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		c, br := h1Dial(t, addr)
		io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
		for _, want := range []string{"GET /1", "POST /2", "GET /3"} {
			if _, body := readOne(t, br, "GET"); body != want {
				t.Fatalf("got %q, want %q", body, want)
			}
		}
	})
	t.Run("large unread body closes", func(t *testing.T) {
		c, br := h1Dial(t, addr)
		const n = 300 << 10
		io.WriteString(c, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 307200\r\n\r\n")
		go c.Write(make([]byte, n))
		resp, body := readOne(t, br, "POST")
		if resp.StatusCode != 200 || body != "POST /x" || !resp.Close {
			t.Fatalf("got %d %q close %v", resp.StatusCode, body, resp.Close)
		}
	})
}

func TestH1ServerExpectContinue(t *testing.T) {
	addr, _ := h1Front(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
			return
		}
		io.WriteString(w, "no thanks")
	}))

	// The handler reads: 100 Continue first, then the client sends.
	c, br := h1Dial(t, addr)
	io.WriteString(c, "POST /read HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	resp, _ := readOne(t, br, "POST")
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %d, want 100 first", resp.StatusCode)
	}
	io.WriteString(c, "data")
	if resp, body := readOne(t, br, "POST"); resp.StatusCode != 200 || body != "data" || resp.Close {
		t.Fatalf("got %d %q close %v", resp.StatusCode, body, resp.Close)
	}

	// It does not: no 100 Continue, and the connection closes, since the
	// client may still send the body.
	c, br = h1Dial(t, addr)
	io.WriteString(c, "POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if resp, body := readOne(t, br, "POST"); resp.StatusCode != 200 || body != "no thanks" || !resp.Close {
		t.Fatalf("got %d %q close %v", resp.StatusCode, body, resp.Close)
	}
}

func TestH1ServerFlushSendsHead(t *testing.T) {
	release := make(chan struct{})
	addr, _ := h1Front(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part one")
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, ", part two")
	}))
	c, br := h1Dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part one" {
		t.Fatalf("before the handler returned: %q %v", buf, err)
	}
	close(release)
	if rest, _ := io.ReadAll(resp.Body); string(rest) != ", part two" {
		t.Fatalf("rest %q", rest)
	}
}

func TestH1ServerShutdown(t *testing.T) {
	busy, release := make(chan struct{}), make(chan struct{})
	addr, h := h1Front(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(busy)
			<-release
		}
		io.WriteString(w, "ok")
	}))
	idle, idleBr := h1Dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readOne(t, idleBr, "GET")
	active, activeBr := h1Dial(t, addr)
	io.WriteString(active, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-busy

	h.shutdown()
	if !closed(idleBr) {
		t.Error("the idle connection stayed open")
	}
	close(release)
	if resp, body := readOne(t, activeBr, "GET"); body != "ok" || !resp.Close {
		t.Errorf("the busy one: %q, close %v", body, resp.Close)
	}
	if !closed(activeBr) {
		t.Error("the busy connection stayed open after its response")
	}
}

// FuzzH1Server runs byte streams from a client through the guard and the
// server, with a handler whose behaviour the request path picks: the
// server neither panics nor hangs, and what it writes starts as a
// response.
func FuzzH1Server(f *testing.F) {
	for _, s := range []string{
		"GET /length HTTP/1.1\r\nHost: a\r\n\r\nHEAD /big HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"POST /flush HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcdeGET /close HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			io.Copy(w, r.Body)
		case "/big":
			w.Write(make([]byte, 5000))
		case "/length":
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abcd") // one byte too many: refused
		case "/flush":
			io.WriteString(w, "x")
			http.NewResponseController(w).Flush()
			io.ReadAll(r.Body)
		case "/close":
			w.Header().Set("Connection", "close")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		h := &httpServer{log: slog.New(slog.DiscardHandler), ln: newConnListener(), limits: testLimits, srv: &http.Server{}, routes: &httpRoutes{}}
		h.ln.Close() // HTTP/2 has nowhere to go: the connection closes
		g := newH1Guard(server, testLimits, time.Second, time.Second, time.Second, h.log)
		ci := &connInfo{done: func() {}, guard: g}
		done := make(chan struct{})
		go func() {
			h.serveH1With(handler, g, ci)
			close(done)
		}()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			client.Write(in)
			client.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(client)
		if err != nil {
			t.Fatalf("reading the answers: %v", err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not end")
		}
		if len(out) > 0 && !strings.HasPrefix(string(out), "HTTP/1.1 ") {
			t.Fatalf("answer %q", out)
		}
	})
}

// A client that stops reading its response: the write times out after
// timeout client, and the handler (with its server connection) is let go.
func TestH1ServerClientStopsReading(t *testing.T) {
	ended := make(chan error, 1)
	addr, _ := h1FrontWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
	}), 200*time.Millisecond, nil)
	c, _ := h1Dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case err := <-ended:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the handler's write failed with %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still writes to a client that does not read")
	}
}

// A connection that closes with a request body left unread reads and
// drops the rest first: closing with unread input would make the kernel
// reset the connection, and many clients (Windows' among them) drop an
// answer they have not read yet when the reset comes. Here the client
// reads only after the server has closed, and sees an orderly end.
func TestH1ServerLingersBeforeClosing(t *testing.T) {
	ended, sent := make(chan struct{}, 1), make(chan struct{})
	addr, _ := h1FrontWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-sent                         // the whole body is on its way
		io.WriteString(w, "no thanks") // and is not read
	}), 0, ended)
	c, br := h1Dial(t, addr)
	const n = 300 << 10 // beyond the 256 KiB read for the next request
	go func() {
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 307200\r\n\r\n")
		c.Write(make([]byte, n))
		close(sent)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	resp, body := readOne(t, br, "POST")
	if body != "no thanks" || !resp.Close {
		t.Fatalf("got %q, close %v", body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the answer: %v, want the connection closed, not reset", err)
	}
}
