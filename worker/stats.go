package worker

import (
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelb/sluice/runtimeapi"
)

// frontendCounters are a frontend's numbers in this process. They belong to
// the proxy name, not to a generation: a reload keeps counting in the same
// place, and connections of older generations still count.
type frontendCounters struct {
	cur, max, total   atomic.Int64
	bytesIn, bytesOut atomic.Int64
	denied, errors    atomic.Int64
	httpReqs          atomic.Int64
	http              [6]atomic.Int64 // by status class: other, 1xx..5xx
	last              atomic.Int64    // unix nanoseconds of the last connection
}

func (c *frontendCounters) open() {
	n := c.cur.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	c.total.Add(1)
	c.last.Store(time.Now().UnixNano())
}

func (c *frontendCounters) close() { c.cur.Add(-1) }

func (c *frontendCounters) response(status int, in, out int64) {
	c.httpReqs.Add(1)
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	c.http[class].Add(1)
	c.bytesIn.Add(in)
	c.bytesOut.Add(out)
}

func (c *frontendCounters) clear(all bool) {
	c.max.Store(c.cur.Load())
	if !all {
		return
	}
	for _, v := range []*atomic.Int64{&c.total, &c.bytesIn, &c.bytesOut, &c.denied, &c.errors, &c.httpReqs} {
		v.Store(0)
	}
	for i := range c.http {
		c.http[i].Store(0)
	}
}

func (c *frontendCounters) stats(limit int) *runtimeapi.FrontendStats {
	s := &runtimeapi.FrontendStats{
		Cur:       int(c.cur.Load()),
		Max:       int(c.max.Load()),
		Limit:     limit,
		Total:     c.total.Load(),
		BytesIn:   c.bytesIn.Load(),
		BytesOut:  c.bytesOut.Load(),
		Denied:    c.denied.Load(),
		Errors:    c.errors.Load(),
		HTTPReqs:  c.httpReqs.Load(),
		HTTPOther: c.http[0].Load(),
		HTTP1xx:   c.http[1].Load(),
		HTTP2xx:   c.http[2].Load(),
		HTTP3xx:   c.http[3].Load(),
		HTTP4xx:   c.http[4].Load(),
		HTTP5xx:   c.http[5].Load(),
	}
	if last := c.last.Load(); last != 0 {
		s.LastSession = time.Unix(0, last)
	}
	return s
}

// sessions are the process's established connections, for "show sess".
type sessions struct {
	mu   sync.Mutex
	next uint64
	all  map[uint64]*session
}

type session struct {
	id       uint64
	frontend string
	backend  string
	source   net.Addr
	started  time.Time
}

func (ss *sessions) add(frontend, backend string, source net.Addr) *session {
	s := &session{frontend: frontend, backend: backend, source: source, started: time.Now()}
	ss.mu.Lock()
	ss.next++
	s.id = ss.next
	if ss.all == nil {
		ss.all = make(map[uint64]*session)
	}
	ss.all[s.id] = s
	ss.mu.Unlock()
	return s
}

func (ss *sessions) remove(s *session) {
	ss.mu.Lock()
	delete(ss.all, s.id)
	ss.mu.Unlock()
}

func (ss *sessions) list() []runtimeapi.Session {
	ss.mu.Lock()
	out := make([]runtimeapi.Session, 0, len(ss.all))
	for _, s := range ss.all {
		src := ""
		if s.source != nil {
			src = s.source.String()
		}
		out = append(out, runtimeapi.Session{
			ID: s.id, Frontend: s.frontend, Backend: s.backend, Source: src, Age: time.Since(s.started),
		})
	}
	ss.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
