package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadable is a two-tier configuration written to a file that a test
// rewrites and reloads.
type reloadable struct {
	in   *instance
	path string
	port int
	tmpl string
}

const reloadConfig = `global
    nbproc 3
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen dispatcher
    bind 127.0.0.1:%[1]d process 1
    balance leastconn
    server w2 abns@%[2]s-2 send-proxy-v2
    server w3 abns@%[2]s-3 send-proxy-v2
listen worker
    mode %[4]s
    bind abns@%[2]s-2 process 2 accept-proxy ssl crt %[3]s
    bind abns@%[2]s-3 process 3 accept-proxy ssl crt %[3]s
%[5]s`

func startReloadable(t *testing.T, mode, servers string, args ...string) *reloadable {
	t.Helper()
	r := &reloadable{port: freePort(t), path: filepath.Join(t.TempDir(), "sluice.cfg")}
	r.tmpl = fmt.Sprintf(reloadConfig, r.port, abnsName(t, "w"), writeCert(t), mode, "%s")
	r.write(t, servers)
	r.in = startBinary(t, fmt.Sprintf("127.0.0.1:%d", r.port), append(args, "-f", r.path)...)
	waitFor(t, 10*time.Second, "3 processes", func() bool { return len(r.in.children(t)) == 3 })
	return r
}

func (r *reloadable) write(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(r.path, []byte(fmt.Sprintf(r.tmpl, body)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reload rewrites the file and signals the master, then waits until the
// master logs the outcome of that reload.
func (r *reloadable) reload(t *testing.T, body string) {
	t.Helper()
	r.write(t, body)
	before := strings.Count(r.in.output.String(), "configuration reloaded\" files")
	failed := strings.Count(r.in.output.String(), "reload failed")
	if err := r.in.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload", func() bool {
		out := r.in.output.String()
		return strings.Count(out, "configuration reloaded\" files") > before || strings.Count(out, "reload failed") > failed
	})
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	a, b := httpBackend(t), httpBackend(t)
	configs := []string{
		fmt.Sprintf("    server a 127.0.0.1:%d weight 10\n    server b 127.0.0.1:%d weight 1\n", a, b),
		fmt.Sprintf("    server b 127.0.0.1:%d weight 5\n    server a 127.0.0.1:%d weight 1\n    option forwardfor\n", b, a),
	}
	r := startReloadable(t, "http", configs[0])
	pids := r.in.children(t)

	load := startLoad(fmt.Sprintf("https://127.0.0.1:%d/", r.port))
	// 50 reloads spread over about 15 s of load.
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 50; i++ {
		<-tick.C
		r.reload(t, configs[(i+1)%2])
	}
	load.stopAndCheck(t, 100)
	if after := r.in.children(t); fmt.Sprint(after) != fmt.Sprint(pids) {
		t.Fatalf("processes changed across reloads: %v -> %v", pids, after)
	}
	t.Logf("%d requests, 50 reloads, no failure", load.ok.Load())
}

func TestLongConnectionSurvivesReloads(t *testing.T) {
	port := echoBackend(t)
	r := startReloadable(t, "tcp", fmt.Sprintf("    server app 127.0.0.1:%d\n", port))
	pids := r.in.children(t)
	c := dialTLS(t, r.port, "")
	defer c.Close()
	echo(t, c, "before")
	owner := tcpConnsTo(t, pids, port)
	for i := 0; i < 50; i++ {
		r.reload(t, fmt.Sprintf("    server app 127.0.0.1:%d weight %d\n", port, 1+i%2))
		if n := len(r.in.children(t)); n != 3 {
			t.Fatalf("reload %d: %d processes", i, n)
		}
	}
	echo(t, c, "after")
	if now := tcpConnsTo(t, r.in.children(t), port); fmt.Sprint(now) != fmt.Sprint(owner) {
		t.Fatalf("the connection moved: %v -> %v", owner, now)
	}
}

func TestReloadBadFileChangesNothing(t *testing.T) {
	backend := httpBackend(t)
	good := fmt.Sprintf("    server app 127.0.0.1:%d\n", backend)
	r := startReloadable(t, "http", good)
	r.reload(t, good+"    balence leastconn\n")
	out := r.in.output.String()
	if !strings.Contains(out, "reload failed") || !strings.Contains(out, "sluice.cfg:17") || !strings.Contains(out, "balence") {
		t.Fatalf("the failed reload does not name the line:\n%s", out)
	}
	if _, err := get(tlsClient(""), fmt.Sprintf("https://127.0.0.1:%d/", r.port)); err != nil {
		t.Fatalf("serving after a bad reload: %v", err)
	}
}

func TestReloadAddsAndRemovesBinds(t *testing.T) {
	backend := httpBackend(t)
	extra := freePort(t)
	good := fmt.Sprintf("    server app 127.0.0.1:%d\n", backend)
	r := startReloadable(t, "http", good)
	added := good + fmt.Sprintf("listen extra\n    mode http\n    bind 127.0.0.1:%d process 2\n    server app 127.0.0.1:%d\n", extra, backend)
	r.reload(t, added)
	if _, err := get(tlsClient(""), fmt.Sprintf("http://127.0.0.1:%d/", extra)); err != nil {
		t.Fatalf("new bind after reload: %v", err)
	}
	r.reload(t, good)
	waitFor(t, 5*time.Second, "the removed port to close", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", extra))
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}
