package e2e

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statsCmd sends one command to a stats socket, as `socat stdio` does.
func statsCmd(t *testing.T, sock, cmd string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("stats socket: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("stats socket %q: %v", cmd, err)
	}
	return string(out)
}

// showStat returns the rows of "show stat" by "pxname/svname", each a map
// from column name to value.
func showStat(t *testing.T, sock string) map[string]map[string]string {
	t.Helper()
	out := statsCmd(t, sock, "show stat")
	if !strings.HasPrefix(out, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,") {
		t.Fatalf("show stat header: %q", out)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("show stat is not CSV: %v\n%s", err, out)
	}
	rows := make(map[string]map[string]string)
	for _, rec := range recs[1:] {
		row := make(map[string]string)
		for i, name := range recs[0] {
			if i < len(rec) {
				row[name] = rec[i]
			}
		}
		rows[row["pxname"]+"/"+row["svname"]] = row
	}
	return rows
}

// namedBackend is a TCP server answering each line with "name:line".
func namedBackend(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s:%s\n", name, sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// ask sends a line on c and returns the server name in the answer.
func ask(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	name, _, _ := strings.Cut(line, ":")
	return name
}

// runtimeSetup is a two-tier configuration (2 workers, tcp mode) whose
// worker backend has servers a and b, with an admin and a user stats socket.
type runtimeSetup struct {
	in         *instance
	port       int
	admin      string
	user       string
	path       string
	tmpl       string
	stateFile  string
	configArgs []string
}

const runtimeConfig = `global
    nbproc 3
    stats socket %[1]s mode 600 level admin
    stats socket %[2]s mode 600 level user
    server-state-file %[3]s
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    load-server-state-from-file global
listen dispatcher
    bind 127.0.0.1:%[4]d process 1
    balance leastconn
    server w2 abns@%[5]s-2 send-proxy-v2
    server w3 abns@%[5]s-3 send-proxy-v2
listen worker
    bind abns@%[5]s-2 process 2 accept-proxy ssl crt %[6]s
    bind abns@%[5]s-3 process 3 accept-proxy ssl crt %[6]s
    balance roundrobin
    server a 127.0.0.1:%[7]d
    server b 127.0.0.1:%[8]d
%[9]s`

func startRuntime(t *testing.T) *runtimeSetup {
	t.Helper()
	dir := t.TempDir()
	rs := &runtimeSetup{
		port:      freePort(t),
		admin:     filepath.Join(dir, "admin.sock"),
		user:      filepath.Join(dir, "user.sock"),
		path:      filepath.Join(dir, "sluice.cfg"),
		stateFile: filepath.Join(dir, "servers.state"),
	}
	rs.tmpl = fmt.Sprintf(runtimeConfig, rs.admin, rs.user, rs.stateFile, rs.port, abnsName(t, "r"), writeCert(t),
		namedBackend(t, "a"), namedBackend(t, "b"), "%s")
	rs.write(t, "")
	rs.start(t)
	return rs
}

func (rs *runtimeSetup) write(t *testing.T, extra string) {
	t.Helper()
	if err := os.WriteFile(rs.path, []byte(fmt.Sprintf(rs.tmpl, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (rs *runtimeSetup) start(t *testing.T) {
	t.Helper()
	rs.in = startBinary(t, fmt.Sprintf("127.0.0.1:%d", rs.port), "-f", rs.path)
	// Ready, not only started: a process that has not taken its
	// configuration yet has no rows to show.
	waitFor(t, 10*time.Second, "3 processes ready", func() bool { return strings.Count(rs.in.output.String(), "process ready") == 3 })
}

// servers opens n new connections and counts which server answered.
func (rs *runtimeSetup) servers(t *testing.T, n int) map[string]int {
	t.Helper()
	seen := make(map[string]int)
	for i := 0; i < n; i++ {
		c := dialTLS(t, rs.port, "")
		seen[ask(t, c, bufio.NewReader(c))]++
		c.Close()
	}
	return seen
}

func expectAnswer(t *testing.T, sock, cmd, want string) {
	t.Helper()
	if got := statsCmd(t, sock, cmd); strings.TrimSpace(got) != want {
		t.Fatalf("%q answered %q, want %q", cmd, got, want)
	}
}

func TestDrainMaintAndWeight(t *testing.T) {
	rs := startRuntime(t)
	if seen := rs.servers(t, 20); seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("both servers should get connections: %v", seen)
	}

	// A connection established on a keeps working while a drains.
	held := dialTLS(t, rs.port, "")
	defer held.Close()
	heldR := bufio.NewReader(held)
	for ask(t, held, heldR) != "a" {
		held.Close()
		held = dialTLS(t, rs.port, "")
		heldR = bufio.NewReader(held)
	}
	expectAnswer(t, rs.admin, "set server worker/a state drain", "")
	if seen := rs.servers(t, 20); seen["a"] != 0 {
		t.Fatalf("a drained but got new connections: %v", seen)
	}
	if got := ask(t, held, heldR); got != "a" {
		t.Fatalf("established connection moved to %q", got)
	}
	if row := showStat(t, rs.admin)["worker/a"]; row["status"] != "DRAIN" {
		t.Fatalf("show stat status of a: %q", row["status"])
	}

	expectAnswer(t, rs.admin, "set server worker/a state maint", "")
	if seen := rs.servers(t, 10); seen["a"] != 0 {
		t.Fatalf("a in maintenance but got connections: %v", seen)
	}
	expectAnswer(t, rs.admin, "set server worker/a state ready", "")
	if seen := rs.servers(t, 20); seen["a"] == 0 {
		t.Fatalf("a ready again but got nothing: %v", seen)
	}

	expectAnswer(t, rs.admin, "set server worker/a weight 0", "")
	expectAnswer(t, rs.admin, "set server worker/b weight 100", "")
	if seen := rs.servers(t, 20); seen["a"] != 0 {
		t.Fatalf("weight 0 vs 100 still sent to a: %v", seen)
	}
	expectAnswer(t, rs.admin, "get weight worker/a", "0 (initial 1)")

	// The user level only reads.
	expectAnswer(t, rs.user, "set server worker/a state ready", "Permission denied")
	if out := statsCmd(t, rs.user, "show stat"); !strings.HasPrefix(out, "# pxname") {
		t.Fatalf("user level show stat: %q", out)
	}
	// A wrong command changes nothing and says what was expected.
	if out := statsCmd(t, rs.admin, "set server worker/nosuch state drain"); !strings.Contains(out, "No such server") {
		t.Fatalf("unknown server answered %q", out)
	}
}

func TestShowStatAggregatesProcesses(t *testing.T) {
	port, sock := freePort(t), filepath.Join(t.TempDir(), "admin.sock")
	cfg := generationConfig(port, abnsName(t, "s"), writeCert(t), httpBackend(t), 5)
	cfg = strings.Replace(cfg, "global\n", "global\n    stats socket "+sock+" level admin\n", 1)
	in := startSluice(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
	waitFor(t, 10*time.Second, "5 processes", func() bool { return len(in.children(t)) == 5 })

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 40; i++ {
		held = append(held, dialTLS(t, port, ""))
	}
	var rows map[string]map[string]string
	waitFor(t, 10*time.Second, "40 sessions in show stat", func() bool {
		rows = showStat(t, sock)
		return rows["worker/FRONTEND"]["scur"] == "40"
	})
	for w := 2; w <= 5; w++ {
		if got := rows[fmt.Sprintf("dispatcher/w%d", w)]["scur"]; got != "10" {
			t.Fatalf("dispatcher/w%d scur = %q, want 10 (4 workers, 40 connections)\n%v", w, got, rows)
		}
	}
	if got := rows["dispatcher/FRONTEND"]["scur"]; got != "40" {
		t.Fatalf("dispatcher FRONTEND scur = %q, want 40", got)
	}
}

func TestStateSurvivesReloadAndRestart(t *testing.T) {
	rs := startRuntime(t)
	expectAnswer(t, rs.admin, "set server worker/a state drain", "")
	expectAnswer(t, rs.admin, "set server worker/b weight 7", "")

	check := func(when string) {
		t.Helper()
		rows := showStat(t, rs.admin)
		if rows["worker/a"]["status"] != "DRAIN" || rows["worker/b"]["weight"] != "7" {
			t.Fatalf("%s: a is %q, b weighs %q; want DRAIN and 7", when, rows["worker/a"]["status"], rows["worker/b"]["weight"])
		}
		if seen := rs.servers(t, 10); seen["a"] != 0 {
			t.Fatalf("%s: drained a got connections: %v", when, seen)
		}
	}

	// A reload that changes something else.
	rs.write(t, "    timeout server 31s\n")
	rs.in.cmd.Process.Signal(syscall.SIGUSR2)
	waitFor(t, 10*time.Second, "the reload", func() bool {
		return strings.Contains(rs.in.output.String(), "configuration reloaded")
	})
	check("after a reload")

	// A full restart: the state goes through the server-state-file, saved
	// the HAProxy way.
	state := statsCmd(t, rs.admin, "show servers state")
	if err := os.WriteFile(rs.stateFile, []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	rs.in.cmd.Process.Signal(syscall.SIGTERM)
	rs.in.cmd.Wait()
	rs.start(t)
	check("after a restart")
}

// rssKiB sums the resident memory of the master and its children.
func rssKiB(t *testing.T, in *instance) int {
	t.Helper()
	total := 0
	pids := []int{in.cmd.Process.Pid}
	for _, pid := range in.children(t) {
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var kb int
				fmt.Sscan(v, &kb)
				total += kb
			}
		}
	}
	return total
}

// flood sends n commands, valid and invalid, over interactive sessions of
// 500 commands each, and reads every answer.
func flood(t *testing.T, sock string, n int) {
	t.Helper()
	cmds := []string{
		"show info", "show stat", "get weight worker/a", "set server worker/b weight 3",
		"set server worker/b weight 1", "show servers state", "show sess",
		"set server worker/nosuch state drain", "set server worker/a weight 9999",
		"bogus command", "set server", "show stat -1 4 -1", "clear counters",
		"set maxconn global 99999999", "disable server worker/zz", "help",
	}
	for sent := 0; sent < n; {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(60 * time.Second))
		read := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, c)
			read <- err
		}()
		w := bufio.NewWriter(c)
		w.WriteString("prompt\n")
		for i := 0; i < 500 && sent < n; i++ {
			w.WriteString(cmds[sent%len(cmds)] + "\n")
			sent++
		}
		w.WriteString("quit\n")
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := <-read; err != nil {
			t.Fatalf("reading the answers: %v", err)
		}
		c.Close()
	}
}

// TestCommandFloodKeepsMemory: automation sends commands at high rates,
// many of them wrong; error paths must not leak.
func TestCommandFloodKeepsMemory(t *testing.T) {
	rs := startRuntime(t)
	flood(t, rs.admin, 2000) // warm up: buffers, pools, goroutine stacks
	before := rssKiB(t, rs.in)
	flood(t, rs.admin, 20000)
	// A child lets up to 16 MiB of garbage pile up before collecting, and
	// gives it back once the burst is over: what stays is what leaked.
	after := rssKiB(t, rs.in)
	waitFor(t, 10*time.Second, "memory back after 20,000 commands", func() bool {
		after = rssKiB(t, rs.in)
		return after-before <= 16*1024
	})
	t.Logf("RSS of all processes: %d KiB before, %d KiB after 20,000 commands (%+d KiB)", before, after, after-before)
	// And nothing changed that should not have.
	expectAnswer(t, rs.admin, "get weight worker/a", "1 (initial 1)")
	if out := strings.TrimSpace(statsCmd(t, rs.admin, "set maxconn global 99999999")); out == "" {
		t.Fatal("set maxconn global above the descriptor limit was accepted silently")
	}
}

// heldOn opens connections until one is served by server name, and returns
// it with its reader.
func (rs *runtimeSetup) heldOn(t *testing.T, name string) (net.Conn, *bufio.Reader) {
	t.Helper()
	for i := 0; i < 50; i++ {
		c := dialTLS(t, rs.port, "")
		r := bufio.NewReader(c)
		if ask(t, c, r) == name {
			return c, r
		}
		c.Close()
	}
	t.Fatalf("no connection reached server %s", name)
	return nil, nil
}

func TestEveryCommandThroughTheSocket(t *testing.T) {
	rs := startRuntime(t)
	excludes := func(what string, out map[string]int) {
		t.Helper()
		if out["a"] != 0 {
			t.Fatalf("%s: a still got connections: %v", what, out)
		}
	}
	for _, tc := range []struct{ off, on string }{
		{"set server worker/a health down", "set server worker/a health up"},
		{"set server worker/a health stopping", "set server worker/a health up"},
		{"set server worker/a agent down", "set server worker/a agent up"},
		{"disable server worker/a", "enable server worker/a"},
		{"set weight worker/a 0", "set weight worker/a 100%"},
	} {
		expectAnswer(t, rs.admin, tc.off, "")
		excludes(tc.off, rs.servers(t, 10))
		expectAnswer(t, rs.admin, tc.on, "")
		if seen := rs.servers(t, 20); seen["a"] == 0 {
			t.Fatalf("after %q, a gets nothing: %v", tc.on, seen)
		}
	}

	// Limits show in show stat (summed over the two worker processes).
	expectAnswer(t, rs.admin, "set maxconn server worker/b 7", "")
	expectAnswer(t, rs.admin, "set maxconn frontend worker 5", "")
	rows := showStat(t, rs.admin)
	if rows["worker/b"]["slim"] != "14" || rows["worker/FRONTEND"]["slim"] != "10" {
		t.Fatalf("slim: server %q frontend %q, want 14 and 10", rows["worker/b"]["slim"], rows["worker/FRONTEND"]["slim"])
	}

	// shutdown sessions closes what a server holds; show sess lists it first.
	held, r := rs.heldOn(t, "b")
	if out := statsCmd(t, rs.admin, "show sess"); !strings.Contains(out, "fe=worker") {
		t.Fatalf("show sess does not list the held session:\n%s", out)
	}
	expectAnswer(t, rs.admin, "shutdown sessions server worker/b", "")
	held.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("the session survived shutdown sessions (%v)", err)
	}
	held.Close()

	expectAnswer(t, rs.admin, "clear counters all", "")
	if got := showStat(t, rs.admin)["worker/b"]["stot"]; got != "0" {
		t.Fatalf("stot after clear counters all: %q", got)
	}
	info := statsCmd(t, rs.admin, "show info")
	for _, want := range []string{"Name: ", "Version: ", "Pid: ", "Nbproc: 3", "CurrConns: "} {
		if !strings.Contains(info, want) {
			t.Fatalf("show info lacks %q:\n%s", want, info)
		}
	}
	// A new address for a: new connections to a reach b's listener.
	bPort := strings.TrimPrefix(showStat(t, rs.admin)["worker/b"]["addr"], "127.0.0.1:")
	if out := statsCmd(t, rs.admin, "set server worker/a addr 127.0.0.1 port "+bPort); !strings.Contains(out, "port changed") {
		t.Fatalf("set server addr answered %q", out)
	}
	if seen := rs.servers(t, 10); seen["a"] != 0 || seen["b"] != 10 {
		t.Fatalf("after moving a to b's address: %v", seen)
	}

	if out := statsCmd(t, rs.admin, "help"); !strings.Contains(out, "set server") {
		t.Fatalf("help: %q", out)
	}
	if out := statsCmd(t, rs.admin, "show proc"); !strings.Contains(out, "worker") {
		t.Fatalf("show proc: %q", out)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
