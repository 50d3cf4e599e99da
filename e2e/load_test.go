package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load is a bounded background load of HTTPS requests: two clients opening
// a new TLS connection per request and two reusing keep-alive connections.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       context.CancelFunc
	ctx        context.Context
	wg         sync.WaitGroup

	mu       sync.Mutex
	failures []time.Time // when each failed request started
}

// startLoad runs the load against url for at most a minute, until
// stopAndCheck.
func startLoad(url string) *load {
	l := &load{}
	l.ctx, l.stop = context.WithTimeout(context.Background(), time.Minute)
	run := func(keepAlive bool) {
		defer l.wg.Done()
		client := tlsClient("")
		if keepAlive {
			client = keepAliveClient()
		}
		// Idle keep-alive connections would hold old processes until
		// their idle timeout.
		defer client.CloseIdleConnections()
		for l.ctx.Err() == nil {
			start := time.Now()
			if _, err := get(client, url); err != nil {
				if l.ctx.Err() != nil {
					return
				}
				l.failed.Add(1)
				kind := "new connection"
				if keepAlive {
					kind = "keep-alive"
				}
				l.firstErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", kind, err))
				l.mu.Lock()
				l.failures = append(l.failures, start)
				l.mu.Unlock()
				continue
			}
			l.ok.Add(1)
		}
	}
	l.wg.Add(4)
	go run(false)
	go run(false)
	go run(true)
	go run(true)
	return l
}

// stopAndCheck ends the load and fails the test if a request failed or
// fewer than min succeeded.
func (l *load) stopAndCheck(t *testing.T, min int64) {
	t.Helper()
	l.stop()
	l.wg.Wait()
	if n := l.failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, n+l.ok.Load(), l.firstErr.Load())
	}
	if l.ok.Load() < min {
		t.Fatalf("only %d requests went through", l.ok.Load())
	}
}

// progress waits until n more requests have succeeded.
func (l *load) progress(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	waitFor(t, 20*time.Second, fmt.Sprintf("%d more requests", n), func() bool { return l.ok.Load() >= target })
}

// failedSince counts the failed requests that started at or after t.
func (l *load) failedSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, f := range l.failures {
		if !f.Before(t) {
			n++
		}
	}
	return n
}
