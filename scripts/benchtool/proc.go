package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on Linux
// whatever the kernel's HZ).
const userHZ = 100

// statFields returns the fields of a /proc stat line after the command
// name, which may hold spaces and parentheses: fields[0] is the state,
// fields[1] the ppid, fields[11..14] utime, stime, cutime, cstime.
func statFields(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("%s: short", path)
	}
	return f, nil
}

// tree returns pid and all its descendants, from the ppid of every process.
func tree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

func pidArg(fs *flag.FlagSet) (int, error) {
	if fs.NArg() != 1 {
		return 0, errors.New("need one PID")
	}
	return strconv.Atoi(fs.Arg(0))
}

// cmdCPU prints the CPU seconds (user+system) of a process and all its
// descendants, including the children they have already reaped (cutime,
// cstime). With -thread, only the thread whose TID is the PID: HAProxy's
// thread 1, which runs on the main thread.
func cmdCPU(args []string) error {
	fs := flag.NewFlagSet("cpu", flag.ExitOnError)
	thread := fs.Bool("thread", false, "only the main thread (TID = PID)")
	fs.Parse(args)
	pid, err := pidArg(fs)
	if err != nil {
		return err
	}
	if *thread {
		f, err := statFields(fmt.Sprintf("/proc/%d/task/%d/stat", pid, pid))
		if err != nil {
			return err
		}
		fmt.Printf("%.2f\n", float64(ticks(f[11])+ticks(f[12]))/userHZ)
		return nil
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return err
	}
	fmt.Printf("%.2f\n", treeCPU(pid))
	return nil
}

// treeCPU returns the CPU seconds of pid and its descendants.
func treeCPU(pid int) float64 {
	var total int64
	for _, p := range tree(pid) {
		f, err := statFields(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // exited meanwhile
		}
		total += ticks(f[11]) + ticks(f[12]) + ticks(f[13]) + ticks(f[14])
	}
	return float64(total) / userHZ
}

func ticks(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// cmdRSS prints the resident memory, in KiB, summed over a process and all
// its descendants (VmRSS: pages shared between processes count in each).
func cmdRSS(args []string) error {
	fs := flag.NewFlagSet("rss", flag.ExitOnError)
	fs.Parse(args)
	pid, err := pidArg(fs)
	if err != nil {
		return err
	}
	var total int64
	for _, p := range tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb
			}
		}
	}
	fmt.Println(total)
	return nil
}

// cmdChild prints the pid of the sluice child running process number N
// (the master marks each child with SLUICE_CHILD=N in its environment).
func cmdChild(args []string) error {
	fs := flag.NewFlagSet("child", flag.ExitOnError)
	fs.Parse(args)
	if fs.NArg() != 2 {
		return errors.New("usage: child MASTER_PID N")
	}
	master, _ := strconv.Atoi(fs.Arg(0))
	want := []byte("SLUICE_CHILD=" + fs.Arg(1))
	for _, p := range tree(master)[1:] {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
		if err != nil {
			continue
		}
		if slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			fmt.Println(p)
			return nil
		}
	}
	return fmt.Errorf("no child %s under %d", fs.Arg(1), master)
}

// cmdSpread counts the connections each worker holds. By default, from
// /proc/net/unix: the established connections of each abstract unix
// listener whose name starts with the prefix (an accepted socket carries
// its listener's name, the dispatcher's connecting side none). Each worker
// listener belongs to exactly one worker (a Sluice process or a HAProxy
// thread: "thread N" binds are served by that thread alone), so these are
// the connections each worker holds when the dispatcher forwards bytes.
//
// With -master PID -port PORT, per child process of that master instead:
// the sockets it holds that are either such accepted unix sockets, or
// established TCP connections whose local port is PORT (clients that a
// Sluice dispatcher handed over to the worker). The child that listens on
// PORT is the dispatcher and is left out.
func cmdSpread(args []string) error {
	fs := flag.NewFlagSet("spread", flag.ExitOnError)
	master := fs.Int("master", 0, "count per child process of this master")
	port := fs.Int("port", 0, "with -master: the dispatcher's TCP port")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: spread [-master PID -port PORT] ABNS_PREFIX")
	}
	named, listeners, err := unixSockets("@" + fs.Arg(0))
	if err != nil {
		return err
	}
	counts := map[string]int{}
	if *master == 0 {
		for name := range listeners {
			counts[name] += 0 // a worker with no connection counts as 0
		}
		for _, name := range named {
			counts[name]++
		}
	} else {
		established, listening, err := tcpSockets(*port)
		if err != nil {
			return err
		}
		for _, pid := range tree(*master)[1:] {
			socks := socketInodes(pid)
			if slices.ContainsFunc(socks, func(i string) bool { return listening[i] }) {
				continue // the dispatcher
			}
			n := 0
			for _, i := range socks {
				if established[i] || named[i] != "" {
					n++
				}
			}
			counts[strconv.Itoa(pid)] = n
		}
	}
	if len(counts) == 0 {
		return fmt.Errorf("no worker found for %s", fs.Arg(0))
	}
	names := slices.Sorted(maps.Keys(counts))
	total, lo, hi := 0, int(^uint(0)>>1), 0
	var per []string
	for _, n := range names {
		c := counts[n]
		total += c
		lo, hi = min(lo, c), max(hi, c)
		per = append(per, strconv.Itoa(c))
	}
	fmt.Printf("total=%d workers=%d min=%d max=%d spread=%d counts=%s\n", total, len(names), lo, hi, hi-lo, strings.Join(per, ","))
	return nil
}

// unixSockets reads /proc/net/unix: the connected sockets accepted on a
// listener whose name starts with prefix (inode to listener name), and the
// names of those listeners.
func unixSockets(prefix string) (named map[string]string, listeners map[string]bool, err error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	named, listeners = map[string]string{}, map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 || !strings.HasPrefix(fl[7], prefix) {
			continue
		}
		name := strings.TrimRight(fl[7], "@") // HAProxy pads abns names with NULs, shown as '@'
		switch fl[5] {
		case "01":
			listeners[name] = true
		case "03":
			named[fl[6]] = name
		}
	}
	return named, listeners, sc.Err()
}

// tcpSockets reads /proc/net/tcp and tcp6: the inodes of the established
// connections and of the listeners whose local port is port.
func tcpSockets(port int) (established, listening map[string]bool, err error) {
	established, listening = map[string]bool{}, map[string]bool{}
	hexPort := fmt.Sprintf(":%04X", port)
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(line)
			if len(fl) < 10 || !strings.HasSuffix(fl[1], hexPort) {
				continue
			}
			switch fl[3] {
			case "01":
				established[fl[9]] = true
			case "0A":
				listening[fl[9]] = true
			}
		}
	}
	return established, listening, nil
}

// socketInodes returns the inodes of the sockets pid holds.
func socketInodes(pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"))
	}
	return out
}

// cmdFreePort prints a loopback TCP port that was free a moment ago.
func cmdFreePort(args []string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}
