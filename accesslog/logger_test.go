package accesslog

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelb/sluice/config"
)

const line = `127.0.0.1:46552 [25/Nov/2026:10:12:01.234] dispatcher dispatcher/process2 0/0/5012 1234 -- 1/1/0/0/0 0/0`

func TestAppendFrame(t *testing.T) {
	now := time.Date(2026, 2, 6, 7, 8, 9, 123456789, time.FixedZone("", 3600))
	msg := []byte("hello world")
	tests := []struct {
		f    format
		want string
	}{
		{formatRFC3164, "<134>Feb  6 07:08:09 sluice[42]: hello world\n"},
		{formatRFC5424, "<134>1 2026-02-06T07:08:09.123456+01:00 host sluice 42 - - hello world\n"},
		{formatShort, "<6>hello world\n"},
		{formatPriority, "<134>hello world\n"},
		{formatTimed, "<6>2026-02-06T07:08:09.123456+01:00 hello world\n"},
		{formatISO, "2026-02-06T07:08:09.123456+01:00 hello world\n"},
		{formatRaw, "hello world\n"},
	}
	for _, tt := range tests {
		got := string(appendFrame(nil, tt.f, 16, LevelInfo, now, "host", "sluice", 42, msg, 1024))
		if got != tt.want {
			t.Errorf("format %d:\ngot  %q\nwant %q", tt.f, got, tt.want)
		}
	}
	// UTC is "+00:00", as HAProxy writes it.
	got := string(appendFrame(nil, formatISO, 16, LevelInfo, now.UTC(), "host", "sluice", 42, msg, 1024))
	if want := "2026-02-06T06:08:09.123456+00:00 hello world\n"; got != want {
		t.Errorf("UTC: got %q, want %q", got, want)
	}
	// maxLen bounds the frame without its newline, as HAProxy's "len".
	got = string(appendFrame(nil, formatRFC3164, 16, LevelErr, now, "host", "sluice", 42, []byte(strings.Repeat("x", 200)), 80))
	if len(got) != 81 || !strings.HasPrefix(got, "<131>Feb  6 07:08:09 sluice[42]: xxx") || !strings.HasSuffix(got, "x\n") {
		t.Errorf("truncated: %d bytes %q", len(got), got)
	}
	if n := testing.AllocsPerRun(100, func() {
		appendFrame(make([]byte, 0, 256)[:0], formatRFC5424, 16, LevelInfo, now, "host", "sluice", 42, msg, 1024)
	}); n > 1 { // the make
		t.Errorf("appendFrame allocates %v times", n)
	}
}

func udpListener(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func unixgramListener(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c net.PacketConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 70000)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func newLogger(t *testing.T, targets ...config.LogTarget) *Logger {
	t.Helper()
	l, err := New(targets, "sluice", 42)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestUDP(t *testing.T) {
	rx := udpListener(t)
	hostname, _ := os.Hostname()
	tests := []struct {
		target config.LogTarget
		want   string // regular expression
	}{
		{config.LogTarget{Addr: rx.LocalAddr().String(), Facility: "local0"},
			`^<134>[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d sluice\[42\]: ` + regexp.QuoteMeta(line) + "\n$"},
		{config.LogTarget{Addr: "udp@" + rx.LocalAddr().String(), Format: "rfc5424", Facility: "local7"},
			`^<190>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d ` + regexp.QuoteMeta(hostname) + ` sluice 42 - - ` + regexp.QuoteMeta(line) + "\n$"},
		{config.LogTarget{Addr: "ipv4@" + rx.LocalAddr().String(), Format: "short", Facility: "daemon"},
			`^<6>` + regexp.QuoteMeta(line) + "\n$"},
		{config.LogTarget{Addr: rx.LocalAddr().String(), Format: "raw", Facility: "daemon"},
			`^` + regexp.QuoteMeta(line) + "\n$"},
		{config.LogTarget{Addr: rx.LocalAddr().String(), Format: "local", Facility: "user"},
			`^<14>[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d sluice\[42\]: ` + regexp.QuoteMeta(line) + "\n$"},
	}
	for _, tt := range tests {
		t.Run(tt.target.Addr+" "+tt.target.Format, func(t *testing.T) {
			l := newLogger(t, tt.target)
			l.Log([]byte(line + "\n")) // a trailing newline is not doubled
			if got := receive(t, rx); !regexp.MustCompile(tt.want).MatchString(got) {
				t.Errorf("got %q\nwant %s", got, tt.want)
			}
			if l.Dropped() != 0 {
				t.Errorf("dropped %d", l.Dropped())
			}
		})
	}
}

func TestUnixgram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	rx := unixgramListener(t, path)
	for _, addr := range []string{path, "unix@" + path} {
		l := newLogger(t, config.LogTarget{Addr: addr, Format: "priority", Facility: "local1"})
		l.Log([]byte(line))
		if got, want := receive(t, rx), "<142>"+line+"\n"; got != want {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
	}
}

// Several targets, each with its level filter and length limit.
func TestTargetsLevelAndLength(t *testing.T) {
	all, notice, short := udpListener(t), udpListener(t), udpListener(t)
	l := newLogger(t,
		config.LogTarget{Addr: all.LocalAddr().String(), Format: "raw"},
		config.LogTarget{Addr: notice.LocalAddr().String(), Format: "raw", Level: "notice"},
		config.LogTarget{Addr: short.LocalAddr().String(), Format: "raw", MaxLen: 80},
	)
	l.Log([]byte(line))                                 // info: not for the notice target
	l.LogAt(LevelWarning, []byte("Server b/s is DOWN")) // for all
	if got := receive(t, all); got != line+"\n" {
		t.Errorf("all: %q", got)
	}
	if got := receive(t, all); got != "Server b/s is DOWN\n" {
		t.Errorf("all: %q", got)
	}
	if got := receive(t, notice); got != "Server b/s is DOWN\n" {
		t.Errorf("notice: got %q, want only the warning", got)
	}
	if got := receive(t, short); got != line[:80]+"\n" {
		t.Errorf("short: %q", got)
	}
}

func TestStdout(t *testing.T) {
	l := newLogger(t, config.LogTarget{Addr: "stdout"}, config.LogTarget{Addr: "stderr", Format: "short"})
	var out, errOut bytes.Buffer
	l.targets[0].w, l.targets[1].w = &out, &errOut // instead of os.Stdout and os.Stderr
	l.Log([]byte(line))
	if out.String() != line+"\n" {
		t.Errorf("stdout: %q (want raw by default)", out.String())
	}
	if errOut.String() != "<6>"+line+"\n" {
		t.Errorf("stderr: %q", errOut.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestDropCounting(t *testing.T) {
	l := newLogger(t, config.LogTarget{Addr: "stdout"})
	l.targets[0].w = failingWriter{}
	l.Log([]byte(line))
	l.Log([]byte(line))
	if l.Dropped() != 2 {
		t.Errorf("dropped %d, want 2", l.Dropped())
	}
}

// A receiver that does not read fills its queue; Log must not wait for it.
func TestNeverBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slow.sock")
	unixgramListener(t, path) // never read
	l := newLogger(t, config.LogTarget{Addr: path})
	start := time.Now()
	const n = 5000 // far beyond the default queue of 512 datagrams
	for range n {
		l.Log([]byte(line))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d lines took %v", n, d)
	}
	if l.Dropped() == 0 || l.Dropped() >= n {
		t.Errorf("dropped %d of %d", l.Dropped(), n)
	}
}

// A restarted syslog daemon (a new socket at the same path) is found again.
func TestUnixgramReconnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	missing := newLogger(t, config.LogTarget{Addr: path, Format: "raw"}) // nothing listens yet
	missing.Log([]byte("lost"))
	if missing.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", missing.Dropped())
	}

	rx := unixgramListener(t, path)
	l := newLogger(t, config.LogTarget{Addr: path, Format: "raw"})
	l.Log([]byte("first"))
	if got := receive(t, rx); got != "first\n" {
		t.Fatalf("got %q", got)
	}
	rx.Close()
	os.Remove(path)
	rx = unixgramListener(t, path)

	// Sends fail until the Logger dials again, at most once a second.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the new socket was not found")
		}
		l.Log(fmt.Appendf(nil, "again %d", i))
		rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		buf := make([]byte, 100)
		if n, _, err := rx.ReadFrom(buf); err == nil {
			if !strings.HasPrefix(string(buf[:n]), "again ") {
				t.Fatalf("got %q", buf[:n])
			}
			break
		}
	}
	// The line "lost" to a missing receiver is counted, the others too.
	if l.Dropped() == 0 {
		t.Error("no drop counted while the receiver was away")
	}
}

func TestConcurrentLog(t *testing.T) {
	rx := udpListener(t)
	l := newLogger(t, config.LogTarget{Addr: rx.LocalAddr().String(), Format: "raw"}, config.LogTarget{Addr: "stdout"})
	var out bytes.Buffer
	l.targets[1].w = &out
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				l.Log(fmt.Appendf(nil, "g%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	if n := strings.Count(out.String(), "\n"); n != 400 {
		t.Errorf("%d lines on stdout, want 400", n)
	}
	for range 10 { // some datagrams, whole
		if got := receive(t, rx); !regexp.MustCompile(`^g\d-\d+\n$`).MatchString(got) {
			t.Errorf("datagram %q", got)
		}
	}
}

func TestClose(t *testing.T) {
	rx := udpListener(t)
	l := newLogger(t, config.LogTarget{Addr: rx.LocalAddr().String()})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Log([]byte(line))
	if l.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", l.Dropped())
	}
	var none *Logger
	none.Log([]byte(line)) // a nil Logger logs nothing
}

func TestLogDoesNotAllocate(t *testing.T) {
	rx := udpListener(t)
	l := newLogger(t, config.LogTarget{Addr: rx.LocalAddr().String(), Format: "rfc5424"})
	msg := []byte(line)
	if n := testing.AllocsPerRun(100, func() { l.Log(msg) }); n != 0 {
		t.Errorf("Log allocates %v times", n)
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in, network, want string
	}{
		{"127.0.0.1", "udp", "127.0.0.1:514"},
		{"127.0.0.1:5140", "udp", "127.0.0.1:5140"},
		{"udp@127.0.0.1:5140", "udp", "127.0.0.1:5140"},
		{"[::1]:5140", "udp", "[::1]:5140"},
		{"[::1]", "udp", "[::1]:514"},
		{"::1:", "udp", "[::1]:514"},
		{"ipv6@::1:5140", "udp6", "[::1]:5140"},
		{"udp4@127.0.0.1", "udp4", "127.0.0.1:514"},
		{"localhost:5140", "udp", ":5140"}, // resolved: the IP depends on the host
		{"/dev/log", "unixgram", "/dev/log"},
		{"unix@/run/log.sock", "unixgram", "/run/log.sock"},
	}
	for _, tt := range tests {
		var tg target
		if err := tg.parseAddr(tt.in); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if tg.network != tt.network || !strings.HasSuffix(tg.raddr.String(), tt.want) {
			t.Errorf("%s: got %s %s, want %s %s", tt.in, tg.network, tg.raddr, tt.network, tt.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	pos := config.Pos{File: "/etc/sluice.cfg", Line: 7}
	tests := []struct {
		target config.LogTarget
		want   string
	}{
		{config.LogTarget{Addr: "127.0.0.1", Format: "json", Pos: pos}, `/etc/sluice.cfg:7: log 127.0.0.1: unknown format "json"`},
		{config.LogTarget{Addr: "127.0.0.1", Facility: "local9"}, `log 127.0.0.1: unknown facility "local9"`},
		{config.LogTarget{Addr: "127.0.0.1", Level: "verbose"}, `unknown level "verbose"`},
		{config.LogTarget{Addr: "ring@buf"}, `unsupported address type "ring@"`},
		{config.LogTarget{Addr: "127.0.0.1:99999"}, `invalid port "99999"`},
		{config.LogTarget{Addr: "unix@"}, `empty unix socket path`},
		{config.LogTarget{Addr: "::1"}, `invalid IPv6 address ":" (write [address]:port)`}, // the last colon starts the port
		{config.LogTarget{Addr: "no.such.host.invalid:514"}, `no.such.host.invalid`},
	}
	for _, tt := range tests {
		_, err := New([]config.LogTarget{tt.target}, "sluice", 1)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.target, err, tt.want)
		}
	}
}

func BenchmarkLogUDP(b *testing.B) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	go func() { // drain, so that the benchmark measures sending
		buf := make([]byte, 2048)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
		}
	}()
	l, err := New([]config.LogTarget{{Addr: rx.LocalAddr().String()}}, "sluice", 1)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := sampleEntry()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendHTTP(buf[:0], &e)
		l.Log(buf)
	}
}
