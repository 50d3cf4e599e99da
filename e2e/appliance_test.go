package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const distDir = "../appliance/dist"

// unitLines returns the values of a key in the unit file, in order.
func unitLines(t *testing.T, key string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(distDir, "sluice.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// applianceConfig is the shipped /etc/sluice/sluice.cfg with the machine's
// paths, ports and socket names replaced by the test's.
func applianceConfig(t *testing.T, dir string, port, statsPort int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(distDir, "sluice.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	abns := abnsName(t, "w")
	cfg := strings.NewReplacer(
		"/etc/sluice/certs/site.pem", writeCert(t),
		"/run/sluice/admin.sock", filepath.Join(dir, "admin.sock"),
		"bind :443 ", fmt.Sprintf("bind 127.0.0.1:%d ", port),
		"bind :8404 ", fmt.Sprintf("bind 127.0.0.1:%d ", statsPort),
		"127.0.0.1:8404", fmt.Sprintf("127.0.0.1:%d", statsPort),
		"abns@sluice-w", "abns@"+abns,
		"maxconn 100000", "maxconn 1000",
	).Replace(string(data))
	path := filepath.Join(dir, "sluice.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnitNotify runs the unit's ExecStart command line, with the shipped
// configuration, under a NOTIFY_SOCKET the test reads, as systemd would:
// READY=1 once it serves, RELOADING=1 then READY=1 for a reload (SIGUSR2,
// the unit's ExecReload), STOPPING=1 on SIGTERM.
func TestUnitNotify(t *testing.T) {
	dir := t.TempDir()
	port, statsPort := freePort(t), freePort(t)
	cfg := applianceConfig(t, dir, port, statsPort)

	execStart := unitLines(t, "ExecStart")
	if len(execStart) != 1 {
		t.Fatalf("ExecStart lines: %q", execStart)
	}
	if got := unitLines(t, "ExecReload"); len(got) != 1 || got[0] != "/bin/kill -USR2 $MAINPID" {
		t.Fatalf("ExecReload = %q, want /bin/kill -USR2 $MAINPID", got)
	}
	var args []string
	for i, w := range strings.Fields(execStart[0]) {
		switch {
		case i == 0:
			if w != "/usr/bin/sluice" {
				t.Fatalf("ExecStart runs %s", w)
			}
		case w == "$SLUICE_OPTS":
			args = append(args, "-f", cfg)
		case strings.HasPrefix(w, "/run/sluice/"):
			args = append(args, filepath.Join(dir, filepath.Base(w)))
		default:
			args = append(args, w)
		}
	}

	notifyPath := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed, want %s", want)
			}
			if !strings.Contains("\n"+m+"\n", "\n"+want+"\n") {
				t.Fatalf("notification %q, want %s", m, want)
			}
			return m
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s notification within 15s", want)
		}
		return ""
	}

	out := &syncBuffer{}
	cmd := exec.Command(sluiceBin, args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("sluice output:\n%s", out.String())
		}
	})

	ready := next("READY=1")
	if !strings.Contains(ready, fmt.Sprintf("MAINPID=%d", cmd.Process.Pid)) {
		t.Errorf("READY notification %q does not name the master's pid", ready)
	}
	// READY means serving: HTTPS answers through both tiers at once, with
	// the stats page standing in for the servers.
	body, err := get(tlsClient(""), fmt.Sprintf("https://127.0.0.1:%d/", port))
	if err != nil || !strings.Contains(body, "Statistics Report") {
		t.Fatalf("HTTPS right after READY=1: %v\n%.300s", err, body)
	}

	cmd.Process.Signal(syscall.SIGUSR2)
	if m := next("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING notification %q without MONOTONIC_USEC", m)
	}
	if m := next("READY=1"); !strings.Contains(m, "STATUS=configuration reloaded") {
		t.Errorf("after reload: %q", m)
	}

	// A reload refused says so in the status, and READY=1 comes back: the
	// old configuration keeps serving.
	if err := os.WriteFile(cfg, []byte("global\n    nbproc 3\n    bogus-keyword\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGUSR2)
	next("RELOADING=1")
	if m := next("READY=1"); !strings.Contains(m, "STATUS=reload refused") {
		t.Errorf("after a refused reload: %q", m)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("sluice did not exit after SIGTERM")
	}
}

// TestUnitVerify runs systemd-analyze verify on the units, with the
// programs they name taken from this tree.
func TestUnitVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the units are not verified")
	}
	dist, err := filepath.Abs(distDir)
	if err != nil {
		t.Fatal(err)
	}
	programs := strings.NewReplacer(
		"/usr/lib/sluice/", dist+"/",
		"/usr/bin/sluice", sluiceBin,
	)
	dir := t.TempDir()
	var paths []string
	for _, name := range []string{"sluice.service", "sluice-selftest.service"} {
		data, err := os.ReadFile(filepath.Join(distDir, name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(programs.Replace(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestVagrantfile runs `vagrant validate` on the Vagrantfile (scripts/test
// installs vagrant from Debian's packages); without vagrant it checks the
// Ruby syntax only, and says so.
func TestVagrantfile(t *testing.T) {
	path, err := filepath.Abs("../Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	if vagrant, err := exec.LookPath("vagrant"); err == nil {
		// A copy alone in a directory: validate reads no other file, and
		// leaves its .vagrant directory there.
		dir := t.TempDir()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(vagrant, "validate", "--ignore-provider")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "VAGRANT_HOME="+filepath.Join(dir, "home"), "VAGRANT_CHECKPOINT_DISABLE=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "validated successfully") {
			t.Fatalf("vagrant validate: %v\n%s", err, out)
		}
		return
	}
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("neither vagrant nor ruby is installed: the Vagrantfile is not checked")
	}
	t.Log("vagrant is not installed: checking the Vagrantfile's Ruby syntax only")
	if out, err := exec.Command(ruby, "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("ruby -c Vagrantfile: %v\n%s", err, out)
	}
}
