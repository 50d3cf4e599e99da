package worker

import (
	"context"
	stdtls "crypto/tls"
	"net"
)

// handshakeGate bounds how many TLS handshakes of a process compute at the
// same moment. A full handshake is a burst of public-key work. When
// hundreds arrive together (the 9am storm), runnable handshake goroutines
// would keep every CPU of the process busy, and Go's scheduler only looks
// for sockets that became readable when a CPU runs out of goroutines (or
// every 10 ms): the established sessions' echoes would wait for the storm.
// A handshake holds a token only while it computes and gives it back while
// it waits for the client. With one token fewer than the process's CPUs,
// one CPU is always left for established sessions and for polling, the
// priority HAProxy gives established traffic over its handshakes.
type handshakeGate chan struct{}

func newHandshakeGate(n int) handshakeGate {
	return make(handshakeGate, max(n, 1))
}

// server runs the server side of a TLS handshake over c, through the gate.
func (g handshakeGate) server(ctx context.Context, c net.Conn, cfg *stdtls.Config) (*stdtls.Conn, error) {
	gc := &gatedConn{Conn: c, gate: g, ctx: ctx}
	tc := stdtls.Server(gc, cfg)
	if err := g.acquire(ctx); err != nil {
		return nil, err
	}
	gc.held = true
	err := tc.HandshakeContext(ctx)
	if gc.held {
		g.release()
		gc.held = false
	}
	return tc, err
}

func (g handshakeGate) acquire(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g handshakeGate) release() { <-g }

// gatedConn is the socket under a TLS connection. During the handshake its
// reads give the gate's token back while they wait and take it again
// before the handshake computes on what they read. After the handshake it
// only passes reads through.
type gatedConn struct {
	net.Conn
	gate handshakeGate
	ctx  context.Context
	// held: the handshake holds a token. Only the handshake's goroutine
	// touches it, and the connection is served after the handshake ends.
	held bool
}

func (c *gatedConn) Read(b []byte) (int, error) {
	if !c.held {
		return c.Conn.Read(b)
	}
	c.gate.release()
	c.held = false
	n, err := c.Conn.Read(b)
	if aerr := c.gate.acquire(c.ctx); aerr != nil {
		return n, aerr
	}
	c.held = true
	return n, err
}
