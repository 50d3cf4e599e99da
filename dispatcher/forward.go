// Package dispatcher is the tcp-mode path: pick a server for a connection,
// connect to it with retries, send the PROXY header the server wants, and
// move the bytes both ways until both sides are done. Between raw TCP and
// unix sockets the bytes move with splice(2), on one event loop per process
// (Loop); the dispatcher tier of the two-tier design runs entirely on it.
package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

// Result is what the access log says about a forwarded connection.
type Result struct {
	Backend, Server string
	Tw              time.Duration // time waiting in the queue
	Tc              time.Duration // time to connect to the server; -1 if never connected
	BytesFromClient int64
	BytesFromServer int64
	// Term is HAProxy's termination state: "--" for a normal end, else the
	// side and phase, e.g. "SC" (server connect), "sQ" (queue timeout),
	// "cD" (idle timeout), "CD"/"SD" (client/server aborted).
	Term         string
	Retries      int
	Redispatched bool
	SrvQueue     int
	BackendQueue int
}

// maxTurnAround caps the pause before a retry on the same server, as
// HAProxy's turn-around timer.
const maxTurnAround = time.Second

// Forward connects client, accepted by frontend fe, to a server of be and
// copies bytes both ways until both directions end, then calls done with
// the Result. src and dst are the client's addresses (from its PROXY header
// when it had one): a server with send-proxy gets them. client is closed
// before done is called.
//
// Between raw TCP and unix sockets the tunnel runs on lp, and Forward
// returns as soon as the tunnel is handed over: done is then called on
// another goroutine. It must not block: the caller's goroutine is gone, and
// it releases what the connection held. Other connections (TLS to the
// server or from the client), or all with a nil lp, are copied on Forward's
// goroutine, which returns after done.
func Forward(ctx context.Context, lp *Loop, client net.Conn, src, dst net.Addr, be *backend.Backend, fe *config.Proxy, done func(Result)) {
	p := be.Proxy()
	res := Result{Backend: be.Name(), Tc: -1, Term: "--"}
	server, s := connectAside(ctx, be, p, ClientSNI(client), src, dst, false, &res)
	if s == nil {
		client.Close()
		done(res)
		return
	}
	runTunnel(lp, client, server.conn, IdleTimeout(fe, p), s.Track, tunnelDone(s, res, done))
}

// ForwardSocket is Forward for a client taken as a Socket, with its
// addresses as src and dst. The tunnel runs on lp, which takes the socket
// as it is; a unix server is connected outside Go's netpoller for it too.
// With a server reached over TLS, or without a loop that runs, the socket
// goes to Go's netpoller and the tunnel runs as Forward's would. A server
// that ho takes (a worker's bind of this configuration) gets the socket
// itself, and done is called when the worker reports the connection over.
func ForwardSocket(ctx context.Context, lp *Loop, ho *Handoffs, client *Socket, be *backend.Backend, fe *config.Proxy, done func(Result)) {
	if lp == nil || lp.init() != nil {
		c, err := client.Conn() // closes the socket when it fails
		if err != nil {
			done(Result{Backend: be.Name(), Tc: -1, Term: "RC"})
			return
		}
		Forward(ctx, lp, c, client.Remote, client.Local, be, fe, done)
		return
	}
	p := be.Proxy()
	res := Result{Backend: be.Name(), Tc: -1, Term: "--"}
	// Not aside: this goroutine ends once the loop has the tunnel, and
	// its stack with it (with a server over TLS, rare behind a
	// dispatcher, it stays to copy).
	server, s := connect(ctx, be, p, ho, "", client.Remote, client.Local, true, &res)
	if s == nil {
		client.Close()
		done(res)
		return
	}
	end := tunnelDone(s, res, done)
	if server.ch != nil {
		if handOver(server.ch, client, s, end) {
			return
		}
		// The channel broke before it took the socket: forward it.
		var err error
		if server, err = dial(ctx, s, p, nil, "", client.Remote, client.Local, true); err != nil {
			client.Close()
			end(nil, 0, 0, "SC")
			return
		}
	}
	idle := IdleTimeout(fe, p)
	sfd, sTCP := server.fd, false
	if server.conn != nil {
		sock, isTCP, ok := rawSocket(server.conn)
		if !ok { // over TLS: copied on goroutines
			c, err := client.Conn() // closes the socket when it fails
			if err != nil {
				server.conn.Close()
				end(nil, 0, 0, "RC")
				return
			}
			runTunnel(lp, c, server.conn, idle, s.Track, end)
			return
		}
		fd, err := dupFD(sock)
		server.conn.Close()
		if err != nil {
			client.Close()
			end(nil, 0, 0, "RC")
			return
		}
		sfd, sTCP = fd, isTCP
	}
	t := lp.tunnel(client.fd, sfd, true, sTCP, idle)
	s.Track(t)
	lp.start(t, func(fromClient, fromServer int64, term string) {
		end(t, fromClient, fromServer, term)
	})
}

// handOver passes client to the worker on ch, and reports its end to end;
// false when ch broke first and client is still to be forwarded.
func handOver(ch *handoffChannel, client *Socket, s *backend.Server, end func(io.Closer, int64, int64, string)) bool {
	var header bytes.Buffer
	if err := SendProxyHeader(&header, s.Config().SendProxy, client.Remote, client.Local); err != nil {
		return false // forwarding says why
	}
	var hc io.Closer
	var mu sync.Mutex // hc is set after the worker may have reported already
	mu.Lock()
	hc, err := ch.hand(client.fd, header.Bytes(), func(fromClient, toClient int64, term string) {
		mu.Lock()
		defer mu.Unlock()
		end(hc, fromClient, toClient, term)
	})
	if err == nil {
		s.Track(hc)
	}
	mu.Unlock()
	if err != nil && !errors.Is(err, errHandoffEnded) {
		return false
	}
	client.Close() // the worker has its own descriptor now
	return true
}

// tunnelDone returns what a tunnel to s calls when it has ended: it
// completes res with the bytes each way and the termination state,
// releases the server and reports res to done.
func tunnelDone(s *backend.Server, res Result, done func(Result)) func(c io.Closer, fromClient, fromServer int64, term string) {
	return func(c io.Closer, fromClient, fromServer int64, term string) {
		res.BytesFromClient, res.BytesFromServer, res.Term = fromClient, fromServer, term
		s.Transfer(fromClient, fromServer)
		s.Untrack(c)
		s.Release()
		done(res)
	}
}

// dialed is a connection connect made to a server: conn, or for a tunnel
// the loop will run, fd (conn nil), a unix socket outside Go's netpoller,
// or the channel to hand the client's socket over on (ch).
type dialed struct {
	conn net.Conn
	fd   int
	ch   *handoffChannel
}

// connectAside runs connect on a goroutine of its own and waits for it.
// Dialing, the PROXY header and a TLS handshake grow a goroutine's stack to
// 8 KiB; run here, that stack would stay with the connection for its whole
// life while this goroutine sits in the tunnel, and most connections are
// idle most of the time. A goroutine that ends gives its stack back.
func connectAside(ctx context.Context, be *backend.Backend, p *config.Proxy, sni string, src, dst net.Addr, forLoop bool, res *Result) (dialed, *backend.Server) {
	// The outcome comes back by value so that nothing the goroutine
	// touched stays on the heap for the connection's life.
	type outcome struct {
		server dialed
		s      *backend.Server
		res    Result
	}
	done := make(chan outcome, 1)
	start := *res
	go func() {
		o := outcome{res: start}
		o.server, o.s = connect(ctx, be, p, nil, sni, src, dst, forLoop, &o.res)
		done <- o
	}()
	o := <-done
	*res = o.res
	return o.server, o.s
}

// connect picks a server and connects to it, retrying up to p.Retries
// times: without "option redispatch" on the same server, which keeps its
// slot; with it, on another server when one can take the connection. A
// retry on the same server waits a turn-around pause first, unless the
// failure was a timeout, as HAProxy does. It returns a nil server when no
// connection could be made, with res saying why. sni is the client's
// server name, for "sni ssl_fc_sni"; forLoop is dial's.
func connect(ctx context.Context, be *backend.Backend, p *config.Proxy, ho *Handoffs, sni string, src, dst net.Addr, forLoop bool, res *Result) (dialed, *backend.Server) {
	var s, failed *backend.Server // failed: the server the last attempt used
	var lastErr error             // why it failed
	for attempt := 0; ; attempt++ {
		if s == nil {
			queued := time.Now()
			var err error
			s, err = be.Acquire(ctx, src, failed)
			res.Tw += time.Since(queued)
			if err != nil {
				res.Term = "SC"
				if errors.Is(err, backend.ErrQueueTimeout) {
					res.Term = "sQ"
				}
				return dialed{fd: -1}, nil
			}
			res.Server = s.Name()
		}
		if s == failed && !isTimeout(lastErr) {
			turnAround(ctx, p)
		}
		start := time.Now()
		d, err := dial(ctx, s, p, ho, sni, src, dst, forLoop)
		if err == nil {
			res.Tc = time.Since(start)
			return d, s
		}
		retry := attempt < p.Retries && ctx.Err() == nil
		redispatch := retry && p.Redispatch
		s.ConnectFailed(retry, redispatch)
		if !retry {
			s.Release()
			res.Term = "SC"
			return dialed{fd: -1}, nil
		}
		res.Retries++
		failed, lastErr = s, err
		if redispatch {
			// Acquire again, avoiding the failed server if it can.
			res.Redispatched = true
			s.Release()
			s = nil
		}
	}
}

// dial connects to s, sends the PROXY header s wants, then with ssl
// starts TLS. forLoop says the loop will run the tunnel: a unix server
// without ssl is then connected outside Go's netpoller, which saves the
// poller's registration, the loop's duplicate and Go's address lookups;
// and a server ho takes gets the client's socket on a channel instead,
// when the channel is open or opens.
func dial(ctx context.Context, s *backend.Server, p *config.Proxy, ho *Handoffs, sni string, src, dst net.Addr, forLoop bool) (dialed, error) {
	a := s.Addr()
	if forLoop && ho.takes(s) {
		if ch := ho.channel(a, p.Timeouts.Connect); ch != nil {
			return dialed{fd: -1, ch: ch}, nil
		}
	}
	if forLoop && a.Family != addr.TCP && s.TLS() == nil {
		fd, err := dialUnix(a)
		if err != nil {
			return dialed{fd: -1}, err
		}
		if err := SendProxyHeader(fdWriter(fd), s.Config().SendProxy, src, dst); err != nil {
			closeFD(fd)
			return dialed{fd: -1}, err
		}
		return dialed{fd: fd}, nil
	}
	c, err := a.Dial(ctx, p.Timeouts.Connect)
	if err != nil {
		return dialed{fd: -1}, err
	}
	if err := SendProxyHeader(c, s.Config().SendProxy, src, dst); err != nil {
		c.Close()
		return dialed{fd: -1}, err
	}
	if s.TLS() != nil {
		if c, err = StartTLS(ctx, c, s, sni, p.Timeouts.Connect); err != nil {
			return dialed{fd: -1}, err // StartTLS closed the connection
		}
	}
	return dialed{conn: c, fd: -1}, nil
}

// turnAround is the pause before connecting again to a server that just
// refused: min("timeout connect", 1s), or until ctx is done.
func turnAround(ctx context.Context, p *config.Proxy) {
	pause := min(maxTurnAround, p.Timeouts.Connect)
	if pause <= 0 {
		pause = maxTurnAround
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// IdleTimeout is how long a tcp-mode connection may stay without traffic
// in either direction: the backend's "timeout tunnel" when set, else the
// shorter of the frontend's "timeout client" and the backend's "timeout
// server"; 0 means never.
func IdleTimeout(fe, be *config.Proxy) time.Duration {
	if t := be.Timeouts.Tunnel; t > 0 {
		return t
	}
	client, server := fe.Timeouts.Client, be.Timeouts.Server
	switch {
	case client == 0:
		return server
	case server == 0:
		return client
	}
	return min(client, server)
}

// SendProxyHeader writes a PROXY header of that version (0 = none) for a
// connection from src to dst. Addresses that are not TCP (a client that
// came over a unix socket) give a LOCAL (v2) or UNKNOWN (v1) header, as
// HAProxy sends.
func SendProxyHeader(w io.Writer, version int, src, dst net.Addr) error {
	if version == 0 {
		return nil
	}
	_, srcTCP := src.(*net.TCPAddr)
	_, dstTCP := dst.(*net.TCPAddr)
	if !srcTCP || !dstTCP {
		if version == 1 {
			_, err := io.WriteString(w, "PROXY UNKNOWN\r\n")
			return err
		}
		src, dst = nil, nil // HeaderProxyFromAddrs makes a LOCAL header
	}
	h := proxyproto.HeaderProxyFromAddrs(byte(version), src, dst)
	if _, err := h.WriteTo(w); err != nil {
		return fmt.Errorf("send PROXY header: %w", err)
	}
	return nil
}
