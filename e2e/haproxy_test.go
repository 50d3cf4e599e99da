package e2e

import (
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

// startHAProxy runs Debian's haproxy in the foreground on cfg and stops it,
// by its PID, when the test ends.
func startHAProxy(t *testing.T, cfg string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("haproxy is not installed (scripts/test installs it)")
		}
		t.Skip("haproxy is not installed")
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
}

// waitAbns waits until a padded abstract socket accepts connections.
func waitAbns(t *testing.T, name string) {
	t.Helper()
	waitFor(t, 10*time.Second, "abns@"+name, func() bool {
		c, err := net.Dial("unix", "@"+name+strings.Repeat("\x00", 107-len(name)))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func waitTCP(t *testing.T, port int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("port %d", port), func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

const haproxyDefaults = `global
    nbthread 1
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
`

// checkClientAddress makes TLS requests from 127.0.0.7 through both tiers
// and expects the server to see that address in X-Forwarded-For.
func checkClientAddress(t *testing.T, port int) {
	t.Helper()
	client := tlsClient("127.0.0.7")
	for i := 0; i < 20; i++ {
		body, err := get(client, fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !strings.Contains(body, "xff=127.0.0.7 ") {
			t.Fatalf("request %d: server saw %q, want X-Forwarded-For 127.0.0.7", i, body)
		}
	}
}

func TestHAProxyDispatcherSluiceWorkers(t *testing.T) {
	backend, port, name, cert := httpBackend(t), freePort(t), abnsName(t, "w"), writeCert(t)
	startSluice(t, fmt.Sprintf(`listen worker
    mode http
    option forwardfor
    bind abns@%[1]s-p1 process 1 accept-proxy ssl crt %[2]s
    bind abns@%[1]s-p2 process 2 accept-proxy ssl crt %[2]s
    server app 127.0.0.1:%[3]d
`, name, cert, backend), "")
	waitAbns(t, name+"-p1")
	waitAbns(t, name+"-p2")
	startHAProxy(t, haproxyDefaults+fmt.Sprintf(`listen dispatcher
    mode tcp
    bind 127.0.0.1:%[1]d
    balance leastconn
    server w1 abns@%[2]s-p1 send-proxy-v2
    server w2 abns@%[2]s-p2 send-proxy
`, port, name))
	waitTCP(t, port)
	checkClientAddress(t, port)
}

func TestSluiceDispatcherHAProxyWorkers(t *testing.T) {
	backend, port, name, cert := httpBackend(t), freePort(t), abnsName(t, "h"), writeCert(t)
	startHAProxy(t, haproxyDefaults+fmt.Sprintf(`listen worker
    mode http
    option forwardfor
    bind abns@%[1]s-h1 accept-proxy ssl crt %[2]s
    bind abns@%[1]s-h2 accept-proxy ssl crt %[2]s
    server app 127.0.0.1:%[3]d
`, name, cert, backend))
	waitAbns(t, name+"-h1")
	waitAbns(t, name+"-h2")
	startSluice(t, fmt.Sprintf(`listen dispatcher
    bind 127.0.0.1:%[1]d
    balance leastconn
    server h1 abns@%[2]s-h1 send-proxy-v2
    server h2 abns@%[2]s-h2 send-proxy
`, port, name), fmt.Sprintf("127.0.0.1:%d", port))
	checkClientAddress(t, port)
}
