package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ipBackend serves HTTP on ip:port and answers with its ip.
func ipBackend(t *testing.T, ip string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, ip)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// dnsServer is a dnsmasq serving the names of a hosts file that the test
// rewrites.
type dnsServer struct {
	port  int
	hosts string
	cmd   *exec.Cmd
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dnsmasq is not on PATH, and CI is set")
		}
		t.Skip("dnsmasq is not on PATH")
	}
	d := &dnsServer{hosts: filepath.Join(t.TempDir(), "hosts")}
	d.set(t)
	// The port is free for UDP when chosen, but dnsmasq also listens on TCP
	// and another process may take the port meanwhile: try a few ports.
	for attempt := 0; attempt < 5; attempt++ {
		d.port = freeUDPPort(t)
		d.cmd = exec.Command(bin, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
			"--listen-address=127.0.0.1", fmt.Sprintf("--port=%d", d.port), "--addn-hosts="+d.hosts,
			"--local-ttl=0", "--pid-file=", "--user="+currentUser(), "--log-facility=-")
		var out syncBuffer
		d.cmd.Stdout, d.cmd.Stderr = &out, &out
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(d.cmd)
		if d.answers(exited) {
			cmd := d.cmd
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return d
		}
		d.cmd.Process.Kill()
		<-exited
		t.Logf("dnsmasq on port %d did not start: %s", d.port, out.String())
	}
	t.Fatal("dnsmasq did not start")
	return nil
}

// answers waits until dnsmasq answers a query, or exits. Until it answers,
// its signal handlers may not be set: a SIGHUP from set would kill it.
func (d *dnsServer) answers(exited <-chan struct{}) bool {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", d.port))
	}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := r.LookupHost(ctx, "probe.sluice.test")
		cancel()
		if err == nil {
			return true
		}
	}
	return false
}

func currentUser() string {
	if os.Getuid() == 0 {
		return "root"
	}
	return os.Getenv("USER")
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// set makes name app.sluice.test resolve to ips, and has dnsmasq reread it.
func (d *dnsServer) set(t *testing.T, ips ...string) {
	t.Helper()
	var b strings.Builder
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s app.sluice.test\n", ip)
	}
	d.setHosts(t, b.String())
}

// setHosts replaces the hosts file ("IP NAME" lines).
func (d *dnsServer) setHosts(t *testing.T, lines string) {
	t.Helper()
	lines = "127.0.0.1 probe.sluice.test\n" + lines
	if err := os.WriteFile(d.hosts, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if d.cmd != nil {
		d.cmd.Process.Signal(syscall.SIGHUP)
	}
}

func TestDNSScalesServers(t *testing.T) {
	dns := startDNS(t)
	backendPort := freePort(t)
	all := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"}
	for _, ip := range all {
		ipBackend(t, ip, backendPort)
	}
	port := freePort(t)
	sock := filepath.Join(t.TempDir(), "admin.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s level admin
resolvers local
    nameserver dnsmasq 127.0.0.1:%d
    hold valid 1s
    timeout resolve 200ms
    timeout retry 200ms
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
listen web
    bind 127.0.0.1:%d
    balance roundrobin
    server-template app 6 app.sluice.test:%d resolvers local init-addr none
`, sock, dns.port, port, backendPort)
	dns.set(t, all[:2]...)
	startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// seen returns the set of backends answering over 40 requests.
	seen := func() string {
		client := &http.Client{Timeout: 5 * time.Second}
		defer client.CloseIdleConnections()
		set := make(map[string]bool)
		for i := 0; i < 40; i++ {
			if body, err := get(client, url); err == nil {
				set[body] = true
			}
		}
		var out []string
		for ip := range set {
			out = append(out, ip)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	// With init-addr none the slots wait in maintenance until the first
	// answer reaches the process, and requests before that get 503, as
	// in HAProxy: the load starts once the first two servers answer.
	waitFor(t, 5*time.Second, "traffic to reach exactly "+strings.Join(all[:2], ","), func() bool { return seen() == strings.Join(all[:2], ",") })
	ctx, stop := context.WithTimeout(context.Background(), 90*time.Second)
	defer stop()
	var failed, ok atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	wg.Add(2)
	for i := 0; i < 2; i++ {
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				if _, err := get(client, url); err != nil && ctx.Err() == nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}

	for _, step := range [][]string{all, all[:1]} {
		dns.set(t, step...)
		changed := time.Now()
		want := strings.Join(step, ",")
		// hold valid (1s) + 1s, plus the time the check itself takes.
		waitFor(t, 2*time.Second+time.Second, "traffic to reach exactly "+want, func() bool { return seen() == want })
		t.Logf("%d servers: traffic reached exactly them after %v", len(step), time.Since(changed).Round(10*time.Millisecond))
	}
	// With one record, the other five slots wait in maintenance.
	rows := showStat(t, sock)
	maint := 0
	for i := 1; i <= 6; i++ {
		if rows[fmt.Sprintf("web/app%d", i)]["status"] == "MAINT (resolution)" {
			maint++
		}
	}
	if maint != 5 {
		t.Fatalf("%d slots in MAINT (resolution), want 5", maint)
	}
	if out := statsCmd(t, sock, "show resolvers"); !strings.Contains(out, "nameserver dnsmasq:") || strings.Contains(out, "valid:       0\n") {
		t.Fatalf("show resolvers:\n%s", out)
	}
	stop()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed while the servers scaled; first: %v", n, n+ok.Load(), firstErr.Load())
	}
}

func TestSetServerFQDN(t *testing.T) {
	dns := startDNS(t)
	backendPort := freePort(t)
	ipBackend(t, "127.0.0.2", backendPort)
	ipBackend(t, "127.0.0.3", backendPort)
	dns.setHosts(t, "127.0.0.2 one.sluice.test\n127.0.0.3 two.sluice.test\n")
	port, sock := freePort(t), filepath.Join(t.TempDir(), "operator.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s level operator
resolvers local
    nameserver dnsmasq 127.0.0.1:%d
    timeout resolve 200ms
    timeout retry 200ms
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
listen web
    bind 127.0.0.1:%d
    server s1 one.sluice.test:%d resolvers local init-addr none
`, sock, dns.port, port, backendPort)
	startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	answers := func(want string) func() bool {
		return func() bool {
			body, err := get(client, url)
			return err == nil && body == want
		}
	}
	waitFor(t, 5*time.Second, "one.sluice.test to be served", answers("127.0.0.2"))
	expectAnswer(t, sock, "set server web/s1 weight 5", "Permission denied")
	expectAnswer(t, sock, "set server web/s1 fqdn two.sluice.test", "")
	waitFor(t, 5*time.Second, "the server to follow two.sluice.test", answers("127.0.0.3"))
	if out := statsCmd(t, sock, "set server web/s1 fqdn bad_name!"); !strings.Contains(out, "Invalid FQDN") {
		t.Fatalf("a bad name answered %q", out)
	}
}
