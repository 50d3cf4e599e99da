package dispatcher

import (
	"io"
	"os"
	"strings"
	"testing"
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
	tc := tunnelCase{"tcp-unix splice", "tcp", "unix", false}
	for i := 0; i < tunnels; i++ {
		client, server, _ := setupTunnel(t, tc, 0)
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
