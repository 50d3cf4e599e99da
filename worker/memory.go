package worker

import (
	"context"
	"os"
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

// gcHeapFloor is the heap a child lets grow to before Go's collector runs.
// Go's default (GOGC=100) collects when the heap has doubled since the last
// collection: a worker's live heap is a few MiB, so under keep-alive load
// that was a collection every few MiB allocated, and about a tenth of the
// worker's CPU. Above the floor the default pacing applies.
const gcHeapFloor = 16 << 20

// gcPercentFor is the GOGC value that puts the next collection at floor
// bytes of heap, or at twice live when that is more. Go never collects
// below 4 MiB × GOGC/100 either, hence the cap.
func gcPercentFor(live, floor uint64) int {
	if live >= floor/2 {
		return 100
	}
	return int(min(floor*100/max(live, 1)-100, floor*100/(4<<20)))
}

// releaseWhenQuiet gives garbage back to the operating system after each
// burst of allocation, until ctx is done. It also keeps the collector's
// target at gcHeapFloor at least, unless GOGC is set in the environment.
func releaseWhenQuiet(ctx context.Context, cpus *cpus) {
	q := quietRelease{quiet: 256 << 10, burst: 4 << 20}
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	allocated := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	_, userGOGC := os.LookupEnv("GOGC")
	percent := 100
	floor := func() {
		if userGOGC {
			return
		}
		// allocated() read the live heap too.
		if p := gcPercentFor(sample[1].Value.Uint64(), gcHeapFloor); p < percent*9/10 || p > percent*11/10 {
			percent = p
			debug.SetGCPercent(p)
		}
	}
	q.last = allocated()
	floor()
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
			cpus.withSpare(debug.FreeOSMemory)
			q.released = allocated()
		}
		floor()
	}
}

// due takes the allocation counter at a tick and says whether to release
// now: the tick was quiet and a burst came before it.
func (q *quietRelease) due(allocated uint64) bool {
	quiet := allocated-q.last <= q.quiet
	q.last = allocated
	return quiet && allocated-q.released >= q.burst
}
