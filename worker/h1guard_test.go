package worker

import (
	"bufio"
	"bytes"
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

var testLimits = h1Limits{maxHead: 15360, maxHeaders: 101}

func TestParseHead(t *testing.T) {
	good := []struct {
		head    string
		chunked bool
		length  int64
		upgrade bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, -1, false},
		{"GET / HTTP/1.0\r\n\r\n", false, -1, false},
		{"GET / HTTP/1.1\nHost: a\n\n", false, -1, false},
		{"POST /x?y HTTP/1.1\r\nHost: a:80\r\nContent-Length: 12\r\n\r\n", false, 12, false},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", true, -1, false},
		{"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", false, -1, false},
		{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", false, -1, false},
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false, -1, false},
		{"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false, -1, true},
		{"GET / HTTP/1.1\r\nHost: a\r\nX:\t v\xe9 \t\r\nEmpty:\r\n\r\n", false, -1, false},
		{"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", false, -1, false},
	}
	for _, c := range good {
		h, err := parseHead([]byte(c.head), testLimits)
		if err != nil {
			t.Errorf("%q: %v", c.head, err)
			continue
		}
		if h.chunked != c.chunked || h.length != c.length || h.upgrade != c.upgrade {
			t.Errorf("%q: %+v", c.head, h)
		}
		if end := headEnd([]byte(c.head + "rest")); end != len(c.head) {
			t.Errorf("%q: headEnd %d, want %d", c.head, end, len(c.head))
		}
	}
	bad := []struct{ head, why string }{
		{"\r\n", "empty request line"},
		{"GET /\r\n\r\n", "without HTTP version"},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "2 Host headers"},
		{"GET / HTTP/1.1\r\n\r\n", "no Host header"},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "2 Content-Length"},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length and Transfer-Encoding"},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "only a single 'chunked'"},
		{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "obs-fold"},
		{"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", "invalid character ' ' in header name"},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00\r\n\r\n", "control character"},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "bare CR"},
		{"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "invalid character"},
		{"GET a HTTP/1.1\r\nHost: a\r\n\r\n", "neither a path nor an absolute URL"},
		{"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid character '/' in Host"},
		{"GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n", "101 header lines, at most 100"},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", "not a number"},
		{"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", "not host:port"},
	}
	for _, c := range bad {
		_, err := parseHead([]byte(c.head), testLimits)
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%q: error %v, want one containing %q", c.head, err, c.why)
		}
	}
}

func TestChunkParser(t *testing.T) {
	good := []string{
		"0\r\n\r\n",
		"3\r\nabc\r\n0\r\n\r\n",
		"A;ext=1;b\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n",
		"3\nabc\n0\n\n",
		"00000003\r\nabc\r\n0\r\n\r\n",
	}
	for _, body := range good {
		// Byte by byte and in one piece.
		for _, step := range []int{1, len(body)} {
			p := chunkParser{lim: testLimits}
			var err error
			n, total := 0, 0
			for i := 0; i < len(body) && err == nil; i += step {
				n, err = p.feed([]byte(body[i:min(i+step, len(body))]))
				total += n
			}
			if err != nil || !p.done() || total != len(body) {
				t.Errorf("%q step %d: err %v done %v consumed %d", body, step, err, p.done(), total)
			}
		}
	}
	p := chunkParser{lim: testLimits}
	n, err := p.feed([]byte("0\r\n\r\nGET / HTTP/1.1\r\n"))
	if err != nil || n != 5 || !p.done() {
		t.Errorf("body then next request: %d %v", n, err)
	}
	bad := []string{"x\r\n", "-1\r\n", "0x3\r\n", "fffffffffffffffff\r\n", "\r\n", "3 \r\n", "3\rabc", "3\r\nabcd\r\n", "3;\x01\r\n", "0\r\nbad trailer\r\n\r\n"}
	for _, body := range bad {
		p := chunkParser{lim: testLimits}
		if _, err := p.feed([]byte(body)); err == nil {
			t.Errorf("%q: no error", body)
		}
	}
}

// guardOutput runs input through a guard and returns what net/http would
// read, until the guard has nothing more to give.
func guardOutput(t *testing.T, input string) (string, *h1guard) {
	t.Helper()
	client, server := net.Pipe()
	g := newH1Guard(server, testLimits, 0, 0, 0, slog.New(slog.DiscardHandler))
	go func() {
		client.Write([]byte(input))
		client.Close()
	}()
	g.SetReadDeadline(time.Now().Add(time.Second))
	out, err := io.ReadAll(g)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%q: %v", input, err)
	}
	return string(out), g
}

func TestGuardPassesValidRequests(t *testing.T) {
	stream := "GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /last HTTP/1.0\r\n\r\n"
	out, g := guardOutput(t, stream)
	if out != stream {
		t.Errorf("got %q", out)
	}
	if g.requests != 4 {
		t.Errorf("%d requests", g.requests)
	}
}

// Between requests a keep-alive connection holds no read buffer: most of
// them wait far longer than they read.
func TestGuardIdleHoldsNoBuffer(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	g := newH1Guard(server, testLimits, 0, 0, 0, slog.New(slog.DiscardHandler))
	req := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 2000) + "\r\n\r\n"
	go client.Write([]byte(req))
	got := make([]byte, len(req))
	if _, err := io.ReadFull(g, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != req {
		t.Fatalf("got %q", got)
	}
	if g.buf != nil {
		t.Errorf("the guard keeps a %d-byte buffer after the request", cap(g.buf))
	}
}

func TestGuardRefuses(t *testing.T) {
	valid := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct{ name, input string }{
		{"bad head", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n"},
		{"bad chunk in the same packet", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 16000)},
	}
	for _, c := range cases {
		out, g := guardOutput(t, valid+c.input+valid)
		want := valid + "GET " + g.rejectPath + " HTTP/1.1\r\nHost: sluice.invalid\r\nConnection: close\r\n\r\n"
		if out != want {
			t.Errorf("%s: got %q, want %q", c.name, out, want)
		}
		if code := g.refused(g.rejectPath); code != 400 {
			t.Errorf("%s: status %d", c.name, code)
		}
		if g.refused("/.sluice-refused/other") != 0 {
			t.Errorf("%s: another path is refused too", c.name)
		}
	}
}

func TestGuardH2Preface(t *testing.T) {
	input := h2Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	out, _ := guardOutput(t, input)
	if out != input {
		t.Errorf("got %q", out)
	}
}

func TestGuardUpgrade(t *testing.T) {
	client, server := net.Pipe()
	g := newH1Guard(server, testLimits, 0, 0, 0, slog.New(slog.DiscardHandler))
	head := "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	go client.Write([]byte(head + "\x81\x05 not http"))
	buf := make([]byte, 1024)
	n, err := g.Read(buf)
	if err != nil || string(buf[:n]) != head {
		t.Fatalf("head: %q %v", buf[:n], err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		g.upgraded(true)
	}()
	n, err = g.Read(buf)
	if err != nil || string(buf[:n]) != "\x81\x05 not http" {
		t.Fatalf("tunnel: %q %v", buf[:n], err)
	}
	client.Close()
}

func TestGuardRequestTimeout(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	g := newH1Guard(server, testLimits, 100*time.Millisecond, 100*time.Millisecond, 0, slog.New(slog.DiscardHandler))
	go client.Write([]byte("GET / HTTP/1.1\r\n"))
	buf := make([]byte, 1024)
	n, err := g.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("GET "+g.rejectPath)) || g.refused(g.rejectPath) != 408 {
		t.Fatalf("%q %v", buf[:n], err)
	}
}

// FuzzParseHead checks that no head makes the parser panic, and that a
// head it accepts is one net/http's reader accepts too.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := headEnd(b)
		if end < 0 {
			return
		}
		if _, err := parseHead(b[:end], testLimits); err != nil {
			return
		}
		if _, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:end]))); err != nil {
			t.Fatalf("accepted head %q, net/http refuses it: %v", b[:end], err)
		}
		out, _ := guardOutputFuzz(b[:end])
		if out != string(b[:end]) {
			t.Fatalf("accepted head %q passed as %q", b[:end], out)
		}
	})
}

// guardOutputFuzz is guardOutput without a testing.T.
func guardOutputFuzz(head []byte) (string, error) {
	client, server := net.Pipe()
	g := newH1Guard(server, testLimits, 0, 0, 0, slog.New(slog.DiscardHandler))
	go func() {
		client.Write(head)
		client.Close()
	}()
	g.SetReadDeadline(time.Now().Add(time.Second))
	out, err := io.ReadAll(g)
	return string(out), err
}

// FuzzChunked checks that no body makes the chunk parser panic or
// consume more than it was given.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{"0\r\n\r\n", "3\r\nabc\r\n0\r\nT: x\r\n\r\n", "A;x=y\r\n0123456789\r\n0\r\n\r\n"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		if step <= 0 {
			step = 1
		}
		p := chunkParser{lim: testLimits}
		for i := 0; i < len(b); i += step {
			piece := b[i:min(i+step, len(b))]
			n, err := p.feed(piece)
			if n < 0 || n > len(piece) {
				t.Fatalf("consumed %d of %d", n, len(piece))
			}
			if err != nil || p.done() {
				return
			}
		}
	})
}

// FuzzGuard runs byte streams through the guard: what it passes on is
// always a prefix of the stream, possibly followed by the stand-in
// request of a refusal, and net/http reads every request in it.
func FuzzGuard(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		g := newH1Guard(server, testLimits, 0, 0, 0, slog.New(slog.DiscardHandler))
		go func() {
			client.Write(in)
			client.Close()
		}()
		// A refused stream ends with the guard waiting for net/http to
		// give up: the deadline ends it.
		g.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		out, _ := io.ReadAll(g)
		g.Close()
		stand := "GET " + g.rejectPath + " HTTP/1.1\r\nHost: sluice.invalid\r\nConnection: close\r\n\r\n"
		passed := strings.TrimSuffix(string(out), stand)
		if !bytes.HasPrefix(in, []byte(passed)) {
			t.Fatalf("passed %q, not a prefix of %q", out, in)
		}
		r := bufio.NewReader(strings.NewReader(string(out)))
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				if err != io.EOF && strings.HasSuffix(string(out), stand) {
					t.Fatalf("net/http cannot read what the guard passed (%q): %v", out, err)
				}
				return
			}
			io.Copy(io.Discard, req.Body)
		}
	})
}

// BenchmarkParseHead is the guard's cost for a typical browser request
// head.
func BenchmarkParseHead(b *testing.B) {
	head := []byte("GET /static/app.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\n" +
		"Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: https://www.example.com/\r\n" +
		"Cookie: session=0123456789abcdef; theme=dark\r\nConnection: keep-alive\r\n\r\n")
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		if end := headEnd(head); end != len(head) {
			b.Fatal(end)
		}
		if _, err := parseHead(head, testLimits); err != nil {
			b.Fatal(err)
		}
	}
}
