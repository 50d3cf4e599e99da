package worker

import (
	"net"
	"sync"

	"github.com/sluicelb/sluice/dispatcher"
)

// handoffs is a process's part in passing client sockets between tiers
// (dispatcher/handoff.go): as a dispatcher it hands its clients to the
// workers of its servers (out); as a worker it serves the clients
// dispatchers hand to its binds.
type handoffs struct {
	out *dispatcher.Handoffs
	p   *Process
}

// serveChannel serves the handoff channel a dispatcher opened on a bind of
// fe, and calls done once the dispatcher has closed it and every
// connection it handed over has ended. Each connection is served by the
// bind's frontend in the configuration in force when it arrives, as if
// accepted there with its PROXY header.
func (h *handoffs) serveChannel(fe *frontend, c net.Conn, done func()) {
	r, err := dispatcher.AcceptHandoffs(c)
	if err != nil {
		fe.log.Warn("handoff channel refused", "frontend", fe.proxy.Name, "err", err)
		c.Close()
		done()
		return
	}
	var (
		running sync.WaitGroup
		mu      sync.Mutex
		conns   = make(map[uint64]net.Conn)
		ended   = make(chan struct{})
	)
	go func() {
		select {
		case <-h.p.stopping:
			r.GoAway()
		case <-ended:
		}
	}()
	key := fe.bind.Addr.Key()
	take := func(id uint64, c *dispatcher.HandedConn) {
		cur := h.p.gen.Load().frontends[key]
		if cur == nil || !cur.bind.AcceptProxy { // the bind changed since
			c.Close()
			r.Done(id, 0, 0)
			return
		}
		mu.Lock()
		conns[id] = c
		mu.Unlock()
		// Wait for slots as a listener at maxconn would, even while the
		// process stops: the dispatcher counts this connection as ours.
		h.p.acquireHanded(cur)
		running.Add(1)
		go cur.serve(c, func() {
			h.p.releaseSlots(cur)
			mu.Lock()
			delete(conns, id)
			mu.Unlock()
			in, out := c.Bytes()
			r.Done(id, in, out)
			running.Done()
		})
	}
	cut := func(id uint64) {
		mu.Lock()
		c := conns[id]
		mu.Unlock()
		if c != nil {
			c.Close()
		}
	}
	if err := r.Serve(take, cut); err != nil {
		fe.log.Warn("handoff channel", "frontend", fe.proxy.Name, "err", err)
	}
	close(ended)
	running.Wait()
	r.Close()
	done()
}
