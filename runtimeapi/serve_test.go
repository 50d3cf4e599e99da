package runtimeapi

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serveUnix runs Serve on a unix socket in a temporary directory and
// stops it when the test ends, checking that it returns.
func serveUnix(t *testing.T, level string, timeout time.Duration) (string, *fakeApp, func()) {
	t.Helper()
	app := fixture(t)
	path := filepath.Join(t.TempDir(), "stats.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, level, app, timeout, nil) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return path, app, stop
}

// socat sends input and reads the answer until the server closes, as
// `echo input | socat stdio unix-connect:path` does.
func socat(t *testing.T, path, input string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, input); err != nil {
		t.Fatal(err)
	}
	c.(*net.UnixConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read answer to %q: %v", input, err)
	}
	return string(out)
}

// readUntil reads from c until the text read so far ends with suffix.
func readUntil(t *testing.T, c net.Conn, suffix string) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(b), suffix) {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			t.Fatalf("read until %q: %v (got %q)", suffix, err, b)
		}
	}
	return string(b)
}

func TestServeOneShot(t *testing.T) {
	path, app, _ := serveUnix(t, "admin", time.Second)

	info := socat(t, path, "show info\n")
	if !strings.HasPrefix(info, "Name: Sluice\nVersion: 1.2.3\n") || !strings.HasSuffix(info, "\n\n") {
		t.Errorf("show info:\n%s", info)
	}
	if got := socat(t, path, "show cli level;show backend\n"); got != "admin\n\n# name\nbe_app\nweb\noff\nsock\n\n" {
		t.Errorf("chain: %q", got)
	}
	// One-shot mode answers one line only.
	if got := socat(t, path, "show cli level\nshow backend\n"); got != "admin\n\n" {
		t.Errorf("two lines in one-shot mode: %q", got)
	}
	// A last line without its newline is still a line.
	if got := socat(t, path, "show cli level"); got != "admin\n\n" {
		t.Errorf("no newline: %q", got)
	}
	if got := socat(t, path, "set server be_app/s1 state maint\n"); got != "\n" {
		t.Errorf("set server: %q", got)
	}
	if n := len(app.changes()); n != 1 {
		t.Errorf("%d changes, want 1", n)
	}
	_, rows := parseStat(t, socat(t, path, "show stat\n"))
	if len(rows) != 10 {
		t.Errorf("show stat: %d rows", len(rows))
	}
	if got := socat(t, path, strings.Repeat("x", maxLine+10)+"\n"); got != "Command line too long.\n\n" {
		t.Errorf("long line: %.80q", got)
	}
	if got := socat(t, path, ""); got != "" {
		t.Errorf("nothing sent: %q", got)
	}
}

func TestServeUserLevel(t *testing.T) {
	path, app, _ := serveUnix(t, "user", time.Second)
	for _, line := range []string{"set server be_app/s1 state drain", "clear counters", "show sess", "operator"} {
		if got := socat(t, path, line+"\n"); got != "Permission denied\n\n" {
			t.Errorf("user %q: %q", line, got)
		}
	}
	if got := socat(t, path, "get weight be_app/s2\n"); got != "50 (initial 50)\n\n" {
		t.Errorf("get weight: %q", got)
	}
	if n := len(app.changes()); n != 0 {
		t.Errorf("user level made %d changes", n)
	}
}

func TestServePrompt(t *testing.T) {
	path, _, _ := serveUnix(t, "operator", time.Second)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "prompt\n")
	if got := readUntil(t, c, "> "); got != "\n> " {
		t.Errorf("prompt: %q", got)
	}
	io.WriteString(c, "show cli level\n")
	if got := readUntil(t, c, "> "); got != "operator\n\n> " {
		t.Errorf("command: %q", got)
	}
	io.WriteString(c, "user;show cli level\n")
	if got := readUntil(t, c, "user\n\n> "); got != "\n> user\n\n> " {
		t.Errorf("chain: %q", got)
	}
	io.WriteString(c, "set server be_app/s1 state drain\n")
	if got := readUntil(t, c, "> "); got != "Permission denied\n\n> " {
		t.Errorf("lowered level: %q", got)
	}
	io.WriteString(c, "quit\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("after quit: %q, %v", rest, err)
	}
}

func TestServeIdleTimeout(t *testing.T) {
	path, _, _ := serveUnix(t, "admin", 100*time.Millisecond)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "prompt\n")
	readUntil(t, c, "> ")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("idle connection: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
}

// TestServeConnectionLimit checks that a busy socket makes clients wait
// instead of failing.
func TestServeConnectionLimit(t *testing.T) {
	path, _, _ := serveUnix(t, "admin", 5*time.Second)
	var held []net.Conn
	for range maxConns {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "prompt\n")
		readUntil(t, c, "> ")
		held = append(held, c)
	}
	answer := make(chan string, 1)
	go func() {
		c, err := net.Dial("unix", path)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer c.Close()
		io.WriteString(c, "show cli level\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		answer <- string(b)
	}()
	select {
	case got := <-answer:
		t.Fatalf("answered beyond the limit: %q", got)
	case <-time.After(100 * time.Millisecond):
	}
	held[0].Close()
	if got := <-answer; got != "admin\n\n" {
		t.Errorf("waiting client: %q", got)
	}
}

// TestServeNoLeak sends many commands, some failing, then stops the
// server with a connection open: no goroutine may stay behind.
func TestServeNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	path, app, stop := serveUnix(t, "admin", time.Second)
	app.snapErr = nil
	for i := range 300 {
		line := []string{"show stat\n", "set server be_app/nope state drain\n", "nope\n", "get weight be_app/s1\n"}[i%4]
		if got := socat(t, path, line); !strings.HasSuffix(got, "\n") {
			t.Fatalf("%q: %q", line, got)
		}
	}
	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "prompt\n")
	readUntil(t, idle, "> ")
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Serve returned, %d before", n, before)
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(idle); err != nil {
		t.Errorf("open connection not closed by stop: %v", err)
	}
}

func TestServeBadLevel(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(context.Background(), ln, "root", fixture(t), 0, nil); err == nil {
		t.Fatal("Serve accepted level root")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener not closed: %v", err)
	}
}
