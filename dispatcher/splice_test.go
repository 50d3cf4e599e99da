package dispatcher

import (
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pipeFDs counts this process's pipe descriptors.
func pipeFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}

// Idle tunnels must not hold splice pipes: each costs two descriptors, and
// a dispatcher holding thousands of idle sessions would run out.
func TestIdleTunnelsHoldNoPipes(t *testing.T) {
	const tunnels = 100
	before := pipeFDs(t)
	tc := tunnelCase{"tcp-unix loop", "tcp", "unix", false, 0}
	lp := testLoop(t)
	for i := 0; i < tunnels; i++ {
		client, server, _, _ := setupTunnelOn(t, lp, tc, 0)
		// One exchange each way, so both directions have spliced and are
		// now waiting for more.
		client.Write([]byte("x"))
		if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		server.Write([]byte("y"))
		if _, err := io.ReadFull(client, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if held := pipeFDs(t) - before; held > 2*maxFreePipes {
		t.Fatalf("%d idle tunnels hold %d pipe descriptors; at most the pool's %d expected", tunnels, held, 2*maxFreePipes)
	}
}

// A pipe an aborted copy left a few bytes in is emptied and reused; one
// with more is closed. Either way the next burst gets an empty pipe.
func TestPipePoolTakesBackAbortedPipes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		left   int
		reused bool
	}{
		{"empty", 0, true},
		{"a TLS alert", 24, true},
		{"the most discarded", maxDiscard, true},
		{"more", maxDiscard + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pp pipePool
			p, err := pp.get()
			if err != nil {
				t.Fatal(err)
			}
			if tc.left > 0 {
				if n, err := unix.Write(p.w, payload(tc.left)); n != tc.left || err != nil {
					t.Fatalf("write %d: %d, %v", tc.left, n, err)
				}
			}
			p.n = tc.left
			pp.put(p)
			if got := len(pp.free) == 1 && pp.free[0] == p; got != tc.reused {
				t.Fatalf("reused = %v, want %v", got, tc.reused)
			}
			if !tc.reused {
				if _, err := unix.Write(p.w, []byte("x")); err == nil {
					t.Fatal("the pipe was not closed")
				}
				return
			}
			if p.n != 0 {
				t.Fatalf("pooled pipe has n = %d", p.n)
			}
			if _, err := unix.Read(p.r, make([]byte, 1)); err != unix.EAGAIN {
				t.Fatalf("pooled pipe read: %v, want EAGAIN (empty)", err)
			}
			unix.Close(p.r)
			unix.Close(p.w)
		})
	}
}
