package worker

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Go collects garbage only as a process allocates. A worker that just made
// thousands of TLS handshakes and now sits on the idle connections
// allocates nothing, so the handshakes' garbage stays resident until the
// runtime's forced collection two minutes later. quietRelease notices when
// a burst of allocation is over and gives that memory back at once. While
// traffic flows it does nothing: the collector paces itself then.
type quietRelease struct {
	quiet uint64 // at most this many bytes allocated in a tick is quiet
	burst uint64 // a release needs this many bytes allocated since the last

	last, released uint64 // the allocation counter at the last tick and release
}

// releaseTick is how often the allocation counter is read.
const releaseTick = 500 * time.Millisecond

// releaseWhenQuiet gives garbage back to the operating system after each
// burst of allocation, until ctx is done.
func releaseWhenQuiet(ctx context.Context) {
	q := quietRelease{quiet: 256 << 10, burst: 16 << 20}
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	q.last = allocated()
	q.released = q.last
	t := time.NewTicker(releaseTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if q.due(allocated()) {
			debug.FreeOSMemory()
			q.released = allocated()
		}
	}
}

// due takes the allocation counter at a tick and says whether to release
// now: the tick was quiet and a burst came before it.
func (q *quietRelease) due(allocated uint64) bool {
	quiet := allocated-q.last <= q.quiet
	q.last = allocated
	return quiet && allocated-q.released >= q.burst
}
