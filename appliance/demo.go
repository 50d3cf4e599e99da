package appliance

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/config"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// DemoAddr is where the built-in demo listens.
const DemoAddr = "127.0.0.1:8443"

// DemoGreeting is what the demo's built-in backend answers.
const DemoGreeting = "hello from sluice\n"

// demoConfig is the two-tier configuration the demo runs: one dispatcher
// process, two TLS worker processes, and a backend served by the master.
const demoConfig = `global
    nbproc 3

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

listen dispatcher
    bind %[1]s process 1
    balance leastconn
    server worker2 abnsz@%[2]s-w2 send-proxy-v2
    server worker3 abnsz@%[2]s-w3 send-proxy-v2

listen worker
    mode http
    option forwardfor
    bind abnsz@%[2]s-w2 process 2 accept-proxy ssl crt %[3]s alpn h2,http/1.1
    bind abnsz@%[2]s-w3 process 3 accept-proxy ssl crt %[3]s alpn h2,http/1.1
    server app abnsz@%[2]s-app
`

// Demo prepares the built-in demo: a self-signed certificate kept in memory
// (a memfd the master reads like a file), a backend answering DemoGreeting
// served by this process until ctx ends, and the configuration that ties
// them together.
func Demo(ctx context.Context) (*config.Config, error) {
	_, pem, err := tlsctx.SelfSigned("localhost", "127.0.0.1", "::1")
	if err != nil {
		return nil, fmt.Errorf("demo certificate: %w", err)
	}
	fd, err := unix.MemfdCreate("sluice-demo.pem", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("demo certificate: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "sluice-demo.pem")
	if _, err := f.Write(pem); err != nil {
		f.Close()
		return nil, fmt.Errorf("demo certificate: %w", err)
	}
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	certPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
	prefix := fmt.Sprintf("sluice-demo-%d", os.Getpid())

	app, err := addr.Parse("abnsz@" + prefix + "-app")
	if err != nil {
		return nil, err
	}
	ln, err := app.Listen(ctx)
	if err != nil {
		return nil, fmt.Errorf("demo backend: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, DemoGreeting)
	})}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()

	text := fmt.Sprintf(demoConfig, DemoAddr, prefix, certPath)
	cfg, _, err := config.LoadBytes("built-in demo", []byte(text))
	if err != nil {
		return nil, err
	}
	return cfg, nil
}
