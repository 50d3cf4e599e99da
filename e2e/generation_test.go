package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// masterCLI sends one command to the master CLI socket and returns the answer.
func masterCLI(t *testing.T, sock, cmd string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("master CLI: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(40 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("master CLI %q: %v", cmd, err)
	}
	return string(out)
}

func TestMasterCLIReload(t *testing.T) {
	backend := httpBackend(t)
	sock := filepath.Join(t.TempDir(), "master.sock")
	good := fmt.Sprintf("    server app 127.0.0.1:%d\n", backend)
	r := startReloadable(t, "http", good, "-S", sock)
	pids := r.in.children(t)

	if out := masterCLI(t, sock, "reload"); !strings.HasPrefix(out, "Success=1\n") {
		t.Fatalf("good reload answered %q", out)
	}
	r.write(t, good+"    balence leastconn\n")
	out := masterCLI(t, sock, "reload")
	if !strings.HasPrefix(out, "Success=0\n") || !strings.Contains(out, "sluice.cfg:17") || !strings.Contains(out, "'balence'") {
		t.Fatalf("bad reload answered %q", out)
	}
	check := exec.Command(sluiceBin, "-c", "-f", r.path)
	checkOut, err := check.CombinedOutput()
	if err == nil || !strings.Contains(string(checkOut), "sluice.cfg:17") {
		t.Fatalf("sluice -c on the same file: err=%v\n%s", err, checkOut)
	}
	if _, err := get(tlsClient(""), fmt.Sprintf("https://127.0.0.1:%d/", r.port)); err != nil {
		t.Fatalf("serving after a bad reload: %v", err)
	}
	if after := r.in.children(t); fmt.Sprint(after) != fmt.Sprint(pids) {
		t.Fatalf("processes changed: %v -> %v", pids, after)
	}

	proc := masterCLI(t, sock, "show proc")
	for _, want := range []string{"#<PID>", "master", "# workers", "dispatcher", "# old workers"} {
		if !strings.Contains(proc, want) {
			t.Fatalf("show proc lacks %q:\n%s", want, proc)
		}
	}
	for _, pid := range pids {
		if !strings.Contains(proc, fmt.Sprint(pid)) {
			t.Fatalf("show proc lacks worker pid %d:\n%s", pid, proc)
		}
	}
}

// generationConfig is a two-tier configuration with n processes: process 1
// dispatches to workers 2..n.
func generationConfig(port int, abns, cert string, backend, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    nbproc %d\ndefaults\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n", n)
	fmt.Fprintf(&b, "listen dispatcher\n    bind 127.0.0.1:%d process 1\n    balance leastconn\n", port)
	for w := 2; w <= n; w++ {
		fmt.Fprintf(&b, "    server w%d abns@%s-%d send-proxy-v2\n", w, abns, w)
	}
	b.WriteString("listen worker\n    mode http\n")
	for w := 2; w <= n; w++ {
		fmt.Fprintf(&b, "    bind abns@%s-%d process %d accept-proxy ssl crt %s\n", abns, w, w, cert)
	}
	fmt.Fprintf(&b, "    server app 127.0.0.1:%d\n", backend)
	return b.String()
}

// pidsGone waits until none of the pids runs any more.
func pidsGone(t *testing.T, pids map[int]int, within time.Duration) {
	t.Helper()
	waitFor(t, within, "the old processes to exit", func() bool {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				return false
			}
		}
		return true
	})
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

func TestProcessCountChangeUnderLoad(t *testing.T) {
	backend := httpBackend(t)
	port, abns, cert := freePort(t), abnsName(t, "g"), writeCert(t)
	path := filepath.Join(t.TempDir(), "sluice.cfg")
	write := func(n int) {
		if err := os.WriteFile(path, []byte(generationConfig(port, abns, cert, backend, n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(3)
	in := startBinary(t, fmt.Sprintf("127.0.0.1:%d", port), "-f", path)
	waitFor(t, 10*time.Second, "3 processes", func() bool { return len(in.children(t)) == 3 })
	old := in.children(t)

	load := startLoad(fmt.Sprintf("https://127.0.0.1:%d/", port))
	load.progress(t, 20)
	write(4)
	in.cmd.Process.Signal(syscall.SIGUSR2)
	waitFor(t, 20*time.Second, "the new generation", func() bool {
		return strings.Contains(in.output.String(), "generation=2")
	})
	load.progress(t, 20) // the new generation serves
	load.stopAndCheck(t, 20)
	// The old dispatcher drains once its clients' connections end (the
	// load's keep-alive connections went through it until now).
	pidsGone(t, old, 20*time.Second)
	if n := len(in.children(t)); n != 4 {
		t.Fatalf("%d processes after going to nbproc 4", n)
	}
}

func TestBinaryUpgradeUnderLoad(t *testing.T) {
	backend := httpBackend(t)
	dir := t.TempDir()
	exe := filepath.Join(dir, "sluice")
	copyFile(t, sluiceBin, exe)
	port, abns, cert := freePort(t), abnsName(t, "u"), writeCert(t)
	path := filepath.Join(dir, "sluice.cfg")
	if err := os.WriteFile(path, []byte(generationConfig(port, abns, cert, backend, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	in := startExe(t, exe, fmt.Sprintf("127.0.0.1:%d", port), "-f", path)
	waitFor(t, 10*time.Second, "3 processes", func() bool { return len(in.children(t)) == 3 })
	old := in.children(t)
	long := dialTLS(t, port, "")
	defer long.Close()

	load := startLoad(fmt.Sprintf("https://127.0.0.1:%d/", port))
	load.progress(t, 20)
	// Install a new binary the way packages do: write aside, rename over.
	copyFile(t, sluiceBin, exe+".new")
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	in.cmd.Process.Signal(syscall.SIGUSR2)
	waitFor(t, 20*time.Second, "the new generation", func() bool {
		return strings.Contains(in.output.String(), `reason="the binary changed"`) &&
			strings.Contains(in.output.String(), "generation=2")
	})
	// The master re-executes itself on the new binary, same pid, sockets
	// kept: the load goes on without a failure.
	waitFor(t, 20*time.Second, "the master to re-execute", func() bool {
		return strings.Contains(in.output.String(), "master re-executed for the new binary")
	})
	master := in.cmd.Process.Pid
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", master)); err != nil || strings.HasSuffix(exe, "(deleted)") {
		t.Fatalf("the master runs %q (%v), want the new binary", exe, err)
	}
	load.progress(t, 20)
	load.stopAndCheck(t, 20)
	// The long connection (to an http-mode worker) still answers.
	long.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(long, "GET / HTTP/1.1\r\nHost: sluice\r\n\r\n")
	if status, err := bufio.NewReader(long).ReadString('\n'); err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("the long connection after the upgrade: %q, %v", status, err)
	}
	// The old generation drains: it lives while the long connection does,
	// and the re-executed master reaps it.
	long.Close()
	pidsGone(t, old, 20*time.Second)
	waitFor(t, 10*time.Second, "the re-executed master to see the old processes exit", func() bool {
		out := in.output.String()
		i := strings.Index(out, "master re-executed")
		return strings.Count(out[i:], "old process exited") >= 1
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestKilledMasterLetsConnectionsFinish(t *testing.T) {
	port := echoBackend(t)
	r := startReloadable(t, "tcp", fmt.Sprintf("    server app 127.0.0.1:%d\n", port))
	pids := r.in.children(t)
	c := dialTLS(t, r.port, "")
	defer c.Close()
	echo(t, c, "before")
	if err := r.in.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	echo(t, c, "after the master died")
	c.Close()
	pidsGone(t, pids, 20*time.Second)
}

// logTime returns the time of the first log line containing all of words.
func logTime(out string, words ...string) (time.Time, bool) {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if !all {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		return t, err == nil
	}
	return time.Time{}, false
}

func TestKilledWorkerUnderLoad(t *testing.T) {
	backend := httpBackend(t)
	port := freePort(t)
	cfg := generationConfig(port, abnsName(t, "k"), writeCert(t), backend, 4)
	in := startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
	waitFor(t, 10*time.Second, "4 processes", func() bool { return len(in.children(t)) == 4 })
	victim := in.children(t)[3]

	load := startLoad(fmt.Sprintf("https://127.0.0.1:%d/", port))
	load.progress(t, 50)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var noticed, ready time.Time
	waitFor(t, 10*time.Second, "the death to be noticed and a new process 3", func() bool {
		out := in.output.String()
		var ok bool
		if noticed, ok = logTime(out, "process exited", "process=3"); !ok {
			return false
		}
		after := out[strings.Index(out, "process exited"):]
		ready, ok = logTime(after, "process ready", "process=3")
		return ok
	})
	if took := ready.Sub(noticed); took > time.Second {
		t.Errorf("the new process 3 was serving %v after the death, want within 1s", took)
	}
	load.progress(t, 100)
	if n := load.failedSince(noticed); n > 0 {
		t.Fatalf("%d requests started after the death was noticed failed; first error: %v", n, load.firstErr.Load())
	}
	load.stop()
	load.wg.Wait()
	t.Logf("%d requests, %d failed before the death was noticed (in flight on the killed worker)", load.ok.Load(), load.failed.Load())
}
