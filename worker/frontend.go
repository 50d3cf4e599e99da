package worker

import (
	"context"
	stdtls "crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluicelb/sluice/accesslog"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/dispatcher"
)

// defaultHandshakeTimeout bounds the PROXY header and the TLS handshake when
// the proxy sets no client timeout, so a silent client cannot hold a slot.
const defaultHandshakeTimeout = 10 * time.Second

// frontend serves the connections of one bind.
type frontend struct {
	proxy   *config.Proxy
	bind    *config.Bind
	backend *backend.Backend // nil when the proxy has no backend
	beProxy *config.Proxy
	tls     *stdtls.Config // nil without ssl
	http    *httpServer    // nil in tcp mode
	alog    *accesslog.Logger
	log     *slog.Logger

	proxySlots slots // frontend maxconn
	bindSlots  slots // bind maxconn
	// conns counts the proxy's established connections in this process,
	// shared by its binds.
	conns *atomic.Int64
}

func (fe *frontend) active() int { return int(fe.conns.Load()) }

// serve handles one accepted connection; release is called once when the
// connection is over.
func (fe *frontend) serve(c net.Conn, release func()) {
	accepted := time.Now()
	fe.conns.Add(1)
	done := func() {
		fe.conns.Add(-1)
		release()
	}
	conn := c
	src, dst := c.RemoteAddr(), c.LocalAddr()
	if fe.bind.AcceptProxy {
		pc, err := readProxyHeader(c, fe.handshakeTimeout())
		if err != nil {
			fe.log.Warn("bad PROXY header, connection closed", "frontend", fe.proxy.Name, "from", c.RemoteAddr().String(), "err", err)
			c.Close()
			done()
			return
		}
		conn, src, dst = pc, pc.RemoteAddr(), pc.LocalAddr()
	}
	if fe.tls != nil {
		tc := stdtls.Server(conn, fe.tls)
		ctx, cancel := context.WithTimeout(context.Background(), fe.handshakeTimeout())
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			fe.log.Info("TLS handshake failed", "frontend", fe.proxy.Name, "client", src.String(), "err", err)
			c.Close()
			done()
			return
		}
		conn = tc
	}
	if fe.http != nil {
		fe.http.serve(conn, done)
		return
	}
	fe.forward(conn, src, dst, accepted)
	done()
}

// forward runs a tcp-mode connection to the end.
func (fe *frontend) forward(conn net.Conn, src, dst net.Addr, accepted time.Time) {
	defer conn.Close()
	if fe.backend == nil {
		fe.log.Warn("no backend for connection", "frontend", fe.proxy.Name)
		return
	}
	res := dispatcher.Forward(context.Background(), conn, src, dst, fe.backend, fe.beProxy)
	if fe.alog != nil {
		fe.logTCP(src, dst, accepted, res)
	}
}

func (fe *frontend) handshakeTimeout() time.Duration {
	if t := fe.proxy.Timeouts.Client; t > 0 {
		return t
	}
	return defaultHandshakeTimeout
}

// readProxyHeader reads the PROXY header a socket marked accept-proxy must
// start with, within timeout. A missing or malformed header is an error.
func readProxyHeader(c net.Conn, timeout time.Duration) (*proxyproto.Conn, error) {
	pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(timeout))
	// A zero-length read processes the header and reports its error.
	if _, err := pc.Read(nil); err != nil {
		return nil, fmt.Errorf("read PROXY header: %w", err)
	}
	return pc, nil
}

// slots is a counting limit; a nil slots is unlimited.
type slots chan struct{}

func newSlots(n int) slots {
	if n <= 0 {
		return nil
	}
	return make(slots, n)
}

func (s slots) release() {
	if s != nil {
		<-s
	}
}

// acquire waits for a slot; it returns false if stop closes first.
func (s slots) acquire(stop <-chan struct{}) bool {
	if s == nil {
		return true
	}
	select {
	case s <- struct{}{}:
		return true
	case <-stop:
		return false
	}
}
