package backend

import "io"

// Track registers a client connection using s, so that ShutdownSessions can
// close it; Untrack removes it when the connection ends.
func (s *Server) Track(c io.Closer) {
	s.b.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[io.Closer]struct{})
	}
	s.conns[c] = struct{}{}
	s.b.mu.Unlock()
}

// Untrack forgets a connection given to Track.
func (s *Server) Untrack(c io.Closer) {
	s.b.mu.Lock()
	delete(s.conns, c)
	s.b.mu.Unlock()
}

// ShutdownSessions closes every tracked connection of the server and says
// how many there were.
func (s *Server) ShutdownSessions() int {
	s.b.mu.Lock()
	conns := make([]io.Closer, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.b.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

// ClearCounters resets the maximums ("clear counters") or every counter
// ("clear counters all") of the backend and its servers.
func (b *Backend) ClearCounters(all bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear := func(c *Counters, cur int) {
		queued := c.QueueCur // a gauge, not a counter
		if all {
			*c = Counters{}
		}
		c.QueueCur = queued
		c.Max, c.QueueMax = cur, queued
	}
	clear(&b.live.stats, b.live.cur)
	for _, s := range b.servers {
		clear(&s.live.stats, s.live.cur)
	}
}
