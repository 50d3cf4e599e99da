package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStatsPageInChromium loads the stats page in headless Chromium, as an
// operator's browser would, and checks that a server drained through the
// stats socket shows as draining.
func TestStatsPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not on PATH, and CI is set")
		}
		t.Skip("chromium is not on PATH")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	port, pagePort := freePort(t), freePort(t)
	cfg := generationConfig(port, abnsName(t, "p"), writeCert(t), httpBackend(t), 3)
	cfg = strings.Replace(cfg, "global\n", "global\n    stats socket "+sock+" level admin\n", 1)
	cfg = strings.Replace(cfg, "    server app ", "    server other 127.0.0.1:9\n    server app ", 1)
	cfg += fmt.Sprintf("listen stats\n    mode http\n    bind 127.0.0.1:%d\n    stats enable\n    stats uri /stats\n    stats refresh 10s\n", pagePort)
	startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", pagePort))

	expectAnswer(t, sock, "set server worker/app state drain", "")
	url := fmt.Sprintf("http://127.0.0.1:%d/stats", pagePort)
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "chromium"), "--dump-dom", url)
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("chromium did not finish within 60s")
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	dom := string(out)
	if !regexp.MustCompile(`<tr class="[^"]*\bdrain\b[^"]*"><td class="name">app</td><td class="status[^"]*">DRAIN</td>`).MatchString(dom) {
		t.Fatalf("the stats page does not show app as draining:\n%s", dom)
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", pagePort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "haproxy_server_") {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
}
