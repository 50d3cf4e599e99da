package appliance

import (
	"fmt"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/config"
)

// fdReserve is what a process needs besides its connections: the control
// socket, log sockets, standard streams, the runtime's own descriptors.
const fdReserve = 32

// limits is the outcome of sizing the descriptor table from global maxconn.
type limits struct {
	MaxConn int    // effective per-process maxconn
	MaxSock int    // descriptors one process may need
	Warning string // set when maxconn had to be lowered to fit the limit
}

// sizeLimits applies HAProxy's rule: every connection may need two sockets
// (client and server), plus one per listener and per health-checked server,
// plus a reserve. Each child is its own process with its own table, so the
// figure is per process. When maxconn is not set it is derived from the hard
// limit, as HAProxy derives it from ulimit -n.
func sizeLimits(cfg *config.Config) (limits, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return limits{}, fmt.Errorf("getrlimit: %w", err)
	}
	fixed := fdReserve
	for _, p := range cfg.Proxies {
		fixed += len(p.Binds)
		for _, s := range p.Servers {
			if s.Check {
				fixed++
			}
		}
	}
	hard := int(min(lim.Max, 1<<30))
	out := limits{MaxConn: cfg.Global.MaxConn}
	if out.MaxConn == 0 {
		out.MaxConn = max((hard-fixed)/2, 1)
	}
	out.MaxSock = 2*out.MaxConn + fixed
	if out.MaxSock > hard {
		// Raising the hard limit needs CAP_SYS_RESOURCE; try, then fit.
		want := syscall.Rlimit{Cur: uint64(out.MaxSock), Max: uint64(out.MaxSock)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			return out, nil
		}
		fit := max((hard-fixed)/2, 1)
		if !cfg.Global.NoStrictLimits {
			return limits{}, fmt.Errorf("FD limit (%d) too low for maxconn=%d/maxsock=%d: raise the hard 'ulimit -n' to %d, lower maxconn to %d, or set 'no strict-limits' in the global section to lower it automatically",
				hard, out.MaxConn, out.MaxSock, out.MaxSock, fit)
		}
		out.Warning = fmt.Sprintf("FD limit (%d) too low for maxconn=%d/maxsock=%d; maxconn lowered to %d (raise the hard 'ulimit -n' to %d to keep it)",
			hard, out.MaxConn, out.MaxSock, fit, out.MaxSock)
		out.MaxConn, out.MaxSock = fit, 2*fit+fixed
	}
	// syscall.Setrlimit (not unix.Setrlimit) so that the runtime does not
	// restore the original soft limit in the children it starts.
	want := syscall.Rlimit{Cur: uint64(out.MaxSock), Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return out, fmt.Errorf("setrlimit nofile %d: %w", out.MaxSock, err)
	}
	return out, nil
}

// startPinned runs start on a thread pinned to cpus, so that the child it
// forks inherits that affinity (sched_setaffinity acts on one thread), then
// restores the thread's mask.
func startPinned(cpus []int, start func() error) error {
	if len(cpus) == 0 {
		return start()
	}
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("cpu-map: sched_setaffinity %v: %w", cpus, err)
	}
	err := start()
	// If the mask cannot be restored, the thread stays locked to this
	// goroutine and dies with it instead of running others pinned.
	if unix.SchedSetaffinity(0, &old) == nil {
		runtime.UnlockOSThread()
	}
	return err
}
