// Command benchtool is the benchmark helper that scripts/bench builds and
// drives. It does only what no standard tool (ab, wrk, h2load) measures:
//
//	backend     the server behind the load balancer: HTTP ("/" small,
//	            "/1m" 1 MiB) and a TCP echo
//	rate        keep-alive HTTPS GETs at a fixed rate, p50/p99 latency
//	            (wrk2 is not in Debian)
//	hold        open N TLS connections, keep them idle until stopped
//	handshakes  new TLS handshakes as fast as possible (the 9am storm)
//	storm       echo latency of established TLS sessions, calm then storm
//	cpu, rss    CPU seconds and resident memory of a process tree (/proc)
//	child       the pid of a sluice child process by process number
//	spread      connections per worker (abns listener, or -master: child process)
//	freeport    a free loopback TCP port
//	wait        wait until an address completes a TLS handshake
//	report      the results table: medians per server and ratios
//
// Every load is bounded in time; every subcommand prints its results as
// key=value words on one line, which the script collects.
package main

import (
	"fmt"
	"os"
)

var commands = map[string]func(args []string) error{
	"backend":    cmdBackend,
	"rate":       cmdRate,
	"hold":       cmdHold,
	"handshakes": cmdHandshakes,
	"storm":      cmdStorm,
	"cpu":        cmdCPU,
	"rss":        cmdRSS,
	"child":      cmdChild,
	"spread":     cmdSpread,
	"freeport":   cmdFreePort,
	"wait":       cmdWait,
	"report":     cmdReport,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: benchtool backend|rate|hold|handshakes|storm|cpu|rss|child|spread|freeport|wait|report [flags]")
		os.Exit(2)
	}
	if err := commands[os.Args[1]](os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
