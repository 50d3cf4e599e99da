// Package e2e holds the end-to-end tests: they build the real sluice binary,
// run it on loopback with real clients and servers, and look at its processes
// through /proc.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tlsctx "github.com/sluicelb/sluice/tls"
)

// sluiceBin is the binary under test, built once by TestMain.
var sluiceBin string

// nameSeq makes abstract socket names unique within this test binary.
var nameSeq atomic.Int64

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", sluiceBin, "../cmd/sluice")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// abnsName returns an abstract socket name no other test uses.
func abnsName(t *testing.T, what string) string {
	clean := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("sluice-e2e-%d-%d-%s-%s", os.Getpid(), nameSeq.Add(1), clean, what)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeCert writes a self-signed ECDSA PEM bundle (cert and key in one file,
// as HAProxy expects) and returns its path.
func writeCert(t *testing.T) string {
	t.Helper()
	_, pem, err := tlsctx.SelfSigned("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "site.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// instance is a running sluice master.
type instance struct {
	cmd    *exec.Cmd
	output *syncBuffer
}

// startSluice writes cfg to a file and runs `sluice -f` on it, then waits
// until addr accepts connections. The process is stopped when the test ends.
func startSluice(t *testing.T, cfg string, waitAddr string) *instance {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return startBinary(t, waitAddr, "-f", path)
}

func startBinary(t *testing.T, waitAddr string, args ...string) *instance {
	t.Helper()
	return startExe(t, sluiceBin, waitAddr, args...)
}

// startExe runs the sluice binary at exe (a copy, for upgrade tests).
func startExe(t *testing.T, exe, waitAddr string, args ...string) *instance {
	t.Helper()
	in := &instance{output: &syncBuffer{}}
	in.cmd = exec.Command(exe, args...)
	in.cmd.Stdout, in.cmd.Stderr = in.output, in.output
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { in.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			in.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("sluice output:\n%s", in.output.String())
		}
	})
	if waitAddr != "" {
		waitFor(t, 10*time.Second, "sluice listening on "+waitAddr, func() bool {
			c, err := net.DialTimeout("tcp", waitAddr, 200*time.Millisecond)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
	}
	return in
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children returns the pids of the master's child processes by process number.
func (in *instance) children(t *testing.T) map[int]int {
	t.Helper()
	out := make(map[int]int)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(pid) != in.cmd.Process.Pid {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("SLUICE_CHILD=")); ok {
				n, _ := strconv.Atoi(string(v))
				out[n] = pid
			}
		}
	}
	return out
}

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name may hold spaces and parentheses: parse after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || f[0] == "Z" {
		return -1
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// tcpConnsTo counts, for each pid, its TCP sockets connected to the given
// loopback port: how many connections each worker holds to a server.
func tcpConnsTo(t *testing.T, pids map[int]int, port int) map[int]int {
	t.Helper()
	remote := map[string]bool{} // inodes of established sockets to port
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "01" { // 01 = ESTABLISHED
				continue
			}
			_, hexPort, _ := strings.Cut(fields[2], ":")
			p, _ := strconv.ParseInt(hexPort, 16, 32)
			if int(p) == port {
				remote[fields[9]] = true
			}
		}
		f.Close()
	}
	out := make(map[int]int)
	for num, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err != nil {
				continue
			}
			if inode, ok := strings.CutPrefix(link, "socket:["); ok && remote[strings.TrimSuffix(inode, "]")] {
				out[num]++
			}
		}
	}
	return out
}

// httpBackend runs an HTTP server on 127.0.0.1 that answers with the
// X-Forwarded-For and X-Forwarded-Proto it received.
func httpBackend(t *testing.T) int {
	t.Helper()
	return serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%s proto=%s\n", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	}))
}

// serveHTTP serves h on a new 127.0.0.1 port for the rest of the test and
// returns the port.
func serveHTTP(t *testing.T, h http.Handler) int {
	t.Helper()
	return serveServer(t, &http.Server{Handler: h})
}

// serveServer runs srv on a new 127.0.0.1 port for the rest of the test
// and returns the port.
func serveServer(t *testing.T, srv *http.Server) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// tlsClient returns an HTTP client that trusts any certificate and, when
// from is set, connects from that local address; keep-alive is off so that
// every request is a new connection through both tiers.
func tlsClient(from string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:       d.DialContext,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
	}
}

// keepAliveClient reuses its TLS connections.
func keepAliveClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
