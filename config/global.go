package config

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/addr"
)

// globalDraft is the global section as read, before compiling.
type globalDraft struct {
	Global
	// nbproc and nbthread as written (0 = not written); sluice treats them
	// as synonyms.
	nbproc, nbthread       int
	nbprocPos, nbthreadPos Pos
	cpuMaps                []cpuMapLine
	// set remembers single-valued settings already given, to refuse a
	// second one rather than silently pick one.
	set map[string]setting
	// defaultBind and defaultServer are what ssl-default-bind-options and
	// ssl-default-server-options set.
	defaultBind   BindSSL
	defaultServer ServerSSL
}

type setting struct {
	name string // the keyword that gave it
	pos  Pos
}

// cpuMapLine is one cpu-map line as written.
type cpuMapLine struct {
	pos   Pos
	auto  bool
	procs procSet // the processes (or threads) it maps
	cpus  []int   // the CPUs, in the order written
	// slash is true for the "1/<set>" form, whose set is threads; without
	// it the set is processes, or with nbthread the thread group.
	slash bool
}

// maxCPU is the largest CPU number cpu-map accepts (the size of Linux's
// default cpu_set_t).
const maxCPU = 1023

func newGlobalDraft() globalDraft {
	return globalDraft{
		Global: Global{
			StatsTimeout: 10 * time.Second,
			MaxAccept:    64,
			BufSize:      16384,
			MaxHdr:       101,
			UID:          -1,
			GID:          -1,
		},
		set: make(map[string]setting),
	}
}

// once refuses a second value for a single-valued setting. key groups
// keywords that set the same thing (user and uid).
func (p *parser) once(s *stmt, key string) error {
	if prev, ok := p.global.set[key]; ok {
		if prev.name != s.name {
			return fmt.Errorf("'%s' conflicts with '%s' at %s", s.name, prev.name, prev.pos)
		}
		return fmt.Errorf("'%s' already specified at %s", s.name, prev.pos)
	}
	p.global.set[key] = setting{name: s.name, pos: s.pos}
	return nil
}

// oneArg checks that a keyword has exactly one argument and returns it.
func oneArg(s *stmt, what string) (string, error) {
	switch {
	case len(s.args) == 0:
		return "", fmt.Errorf("'%s' expects %s", s.name, what)
	case len(s.args) > 1:
		return "", fmt.Errorf("'%s': unexpected argument '%s'", s.name, s.args[1])
	}
	return s.args[0], nil
}

// noArg checks that a keyword has no argument.
func noArg(s *stmt) error {
	if len(s.args) > 0 {
		return fmt.Errorf("'%s' takes no argument (got '%s')", s.name, s.args[0])
	}
	return nil
}

// intArg reads a keyword's single integer argument.
func intArg(s *stmt, min, max int) (int, error) {
	v, err := oneArg(s, "a number")
	if err != nil {
		return 0, err
	}
	n, err := parseInt(v, min, max)
	if err != nil {
		return 0, fmt.Errorf("'%s' %v", s.name, err)
	}
	return n, nil
}

// timeArg reads a keyword's single time argument.
func timeArg(s *stmt) (time.Duration, error) {
	v, err := oneArg(s, "a time (e.g. 30s)")
	if err != nil {
		return 0, err
	}
	d, err := parseTime(v)
	if err != nil {
		return 0, fmt.Errorf("'%s' %v", s.name, err)
	}
	return d, nil
}

func (p *parser) nbproc(s *stmt) error {
	n, err := intArg(s, 1, maxProcs)
	if err != nil {
		return err
	}
	p.global.nbproc, p.global.nbprocPos = n, s.pos
	return p.once(s, s.name)
}

func (p *parser) nbthread(s *stmt) error {
	n, err := intArg(s, 1, maxProcs)
	if err != nil {
		return err
	}
	p.global.nbthread, p.global.nbthreadPos = n, s.pos
	return p.once(s, s.name)
}

// cpuMap reads "cpu-map [auto:]<set>[/<set>] <cpu-set>...". The sets are
// checked against the number of processes when compiling.
func (p *parser) cpuMap(s *stmt) error {
	if len(s.args) < 2 {
		return fmt.Errorf("'cpu-map' expects a process or thread set and at least one CPU set")
	}
	line := cpuMapLine{pos: s.pos}
	spec := s.args[0]
	spec, line.auto = strings.CutPrefix(spec, "auto:")
	group, threads, slash := strings.Cut(spec, "/")
	if slash {
		// HAProxy 2.x form: thread group 1, then the threads, which are
		// sluice's processes.
		if group != "1" {
			return fmt.Errorf("'cpu-map': thread group '%s' does not exist (sluice has one: write '1/%s')", group, threads)
		}
		spec, line.slash = threads, true
	}
	set, err := parseProcSet(spec)
	if err != nil {
		return fmt.Errorf("'cpu-map': %v", err)
	}
	set.pos, set.kwName = s.pos, "cpu-map"
	line.procs = set
	for _, c := range s.args[1:] {
		cpus, err := parseCPUSet(c)
		if err != nil {
			return fmt.Errorf("'cpu-map': %v", err)
		}
		line.cpus = append(line.cpus, cpus...)
	}
	p.global.cpuMaps = append(p.global.cpuMaps, line)
	return nil
}

// parseCPUSet reads "N", "N-M" or "N-" (up to 63, as HAProxy).
func parseCPUSet(s string) ([]int, error) {
	bad := fmt.Errorf("'%s' is not a valid CPU set (expected N, N-M or N- with CPU numbers from 0 to %d)", s, maxCPU)
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 0 || a > maxCPU || strings.HasPrefix(lo, "+") {
		return nil, bad
	}
	b := a
	if isRange {
		b = 63
		if hi != "" {
			b, err = strconv.Atoi(hi)
			if err != nil || strings.HasPrefix(hi, "+") {
				return nil, bad
			}
		}
		if b < a || b > maxCPU {
			return nil, bad
		}
	}
	var cpus []int
	for c := a; c <= b; c++ {
		cpus = append(cpus, c)
	}
	return cpus, nil
}

func (p *parser) globalMaxConn(s *stmt) error {
	n, err := intArg(s, 1, 1<<30)
	if err != nil {
		return err
	}
	p.global.MaxConn = n
	return p.once(s, s.name)
}

// statsSocket reads "stats socket <address|path> [options]".
func (p *parser) statsSocket(s *stmt) error {
	if len(s.args) == 0 {
		return fmt.Errorf("'stats socket' expects an address or the path of a unix socket")
	}
	a, err := addr.Parse(s.args[0])
	if err != nil {
		return fmt.Errorf("'stats socket': %v", err)
	}
	p.sock = &StatsSocket{Addr: a, Level: "operator", UID: -1, GID: -1, Pos: s.pos}
	p.options(s, onStatsSocket, "stats socket "+s.args[0], s.args[1:])
	p.global.StatsSockets = append(p.global.StatsSockets, *p.sock)
	p.sock = nil
	return nil
}

func (p *parser) socketMode(s *stmt) error {
	m, err := strconv.ParseUint(s.args[0], 8, 32)
	if err != nil || m > 0o777 {
		return fmt.Errorf("'mode' expects an octal file mode such as 660, got '%s'", s.args[0])
	}
	p.sock.Mode = uint32(m)
	return nil
}

func (p *parser) socketLevel(s *stmt) error {
	switch l := s.args[0]; l {
	case "user", "operator", "admin":
		p.sock.Level = l
		return nil
	default:
		return fmt.Errorf("'level' expects 'user', 'operator' or 'admin', got '%s'", l)
	}
}

func (p *parser) socketOwner(s *stmt) error {
	var id int
	var err error
	switch s.name {
	case "user":
		id, err = lookupUser(s.args[0])
	case "group":
		id, err = lookupGroup(s.args[0])
	default:
		id, err = parseInt(s.args[0], 0, math.MaxInt32)
		if err != nil {
			err = fmt.Errorf("'%s' %v", s.name, err)
		}
	}
	if err != nil {
		return err
	}
	if s.name == "user" || s.name == "uid" {
		p.sock.UID = id
	} else {
		p.sock.GID = id
	}
	return nil
}

// exposeFD accepts HAProxy's "expose-fd listeners", which hands listening
// sockets to a new process on reload: sluice's master always keeps them.
func (p *parser) exposeFD(s *stmt) error {
	if s.args[0] != "listeners" {
		return fmt.Errorf("'expose-fd' only supports 'listeners', got '%s'", s.args[0])
	}
	p.warnf(s.pos, "'expose-fd listeners' has no effect: sluice's master always keeps the listening sockets")
	return nil
}

func (p *parser) statsTimeout(s *stmt) error {
	d, err := timeArg(s)
	if err != nil {
		return err
	}
	if d == 0 {
		return fmt.Errorf("'stats timeout' must be more than 0")
	}
	p.global.StatsTimeout = d
	return p.once(s, s.name)
}

// globalLog reads a "log" line of the global section ("log global" has no
// meaning there).
func (p *parser) globalLog(s *stmt) error {
	if len(s.args) == 1 && s.args[0] == "global" {
		return fmt.Errorf("'log global' is only for proxies: in the global section, name a log target")
	}
	t, err := parseLog(s)
	if err != nil {
		return err
	}
	p.global.Logs = append(p.global.Logs, t)
	return nil
}

func (p *parser) hardStopAfter(s *stmt) error {
	d, err := timeArg(s)
	if err != nil {
		return err
	}
	p.global.HardStopAfter = d
	return p.once(s, s.name)
}

func (p *parser) serverStateFile(s *stmt) error {
	path, err := oneArg(s, "a file path")
	if err != nil {
		return err
	}
	p.global.ServerStateFile = path
	return p.once(s, s.name)
}

func (p *parser) tuneMaxAccept(s *stmt) error {
	n, err := intArg(s, -1, 1<<20)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("'tune.maxaccept' must be -1 (no limit) or a positive number")
	}
	p.global.MaxAccept = n
	p.warnf(s.pos, "'tune.maxaccept' has no effect: each sluice listener has its own accept loop, which accepts one connection per wakeup")
	return p.once(s, s.name)
}

func (p *parser) tuneBufSize(s *stmt) error {
	n, err := intArg(s, 1024, 1<<30)
	if err != nil {
		return err
	}
	p.global.BufSize = n
	return p.once(s, s.name)
}

// user, uid, group and gid set who the child processes run as; names are
// resolved now so that a typo is found at load, not when a child starts.
func (p *parser) user(s *stmt) error {
	name, err := oneArg(s, "a user name")
	if err != nil {
		return err
	}
	if err := p.once(s, "uid"); err != nil {
		return err
	}
	p.global.User = name
	p.global.UID, err = lookupUser(name)
	return err
}

func (p *parser) uid(s *stmt) error {
	n, err := intArg(s, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	p.global.UID = n
	return p.once(s, "uid")
}

func (p *parser) group(s *stmt) error {
	name, err := oneArg(s, "a group name")
	if err != nil {
		return err
	}
	if err := p.once(s, "gid"); err != nil {
		return err
	}
	p.global.Group = name
	p.global.GID, err = lookupGroup(name)
	return err
}

func (p *parser) gid(s *stmt) error {
	n, err := intArg(s, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	p.global.GID = n
	return p.once(s, "gid")
}

func lookupUser(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return -1, fmt.Errorf("unknown user '%s'", name)
	}
	return strconv.Atoi(u.Uid)
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("unknown group '%s'", name)
	}
	return strconv.Atoi(g.Gid)
}

// chroot is applied to the children; the directory must exist now.
func (p *parser) chroot(s *stmt) error {
	dir, err := oneArg(s, "a directory")
	if err != nil {
		return err
	}
	if err := p.once(s, s.name); err != nil {
		return err
	}
	p.global.Chroot = dir
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("'chroot': %v", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("'chroot': %s is not a directory", dir)
	}
	return nil
}

func (p *parser) pidFile(s *stmt) error {
	path, err := oneArg(s, "a file path")
	if err != nil {
		return err
	}
	p.global.PidFile = path
	return p.once(s, s.name)
}

func (p *parser) daemon(s *stmt) error {
	p.global.Daemon = true
	return noArg(s)
}

// strictLimits reads "[no] strict-limits".
func (p *parser) strictLimits(s *stmt) error {
	p.global.NoStrictLimits = s.neg
	return noArg(s)
}

// masterWorker accepts HAProxy's "master-worker [no-exit-on-failure]":
// sluice always runs as a master and its workers, and restarts a worker
// that dies rather than exiting.
func (p *parser) masterWorker(s *stmt) error {
	if len(s.args) > 1 || len(s.args) == 1 && s.args[0] != "no-exit-on-failure" {
		return fmt.Errorf("'master-worker' only supports 'no-exit-on-failure'")
	}
	return nil
}

// parseLog reads "log <target> [len <n>] [format <f>] <facility> [<level>
// [<minlevel>]]", for the global section and proxies.
func parseLog(s *stmt) (LogTarget, error) {
	t := LogTarget{Format: "rfc3164", MaxLen: 1024, Pos: s.pos}
	args := s.args
	if len(args) < 2 {
		return t, fmt.Errorf("'log' expects a target and a facility")
	}
	target, err := logTarget(args[0])
	if err != nil {
		return t, fmt.Errorf("'log': %v", err)
	}
	t.Addr, args = target, args[1:]
	for len(args) > 0 && (args[0] == "len" || args[0] == "format" || args[0] == "sample") {
		if len(args) < 2 {
			return t, fmt.Errorf("'log': '%s' expects a value", args[0])
		}
		switch args[0] {
		case "len":
			if t.MaxLen, err = parseInt(args[1], 80, 65535); err != nil {
				return t, fmt.Errorf("'log': 'len' %v", err)
			}
		case "format":
			if !slices.Contains(logFormats, args[1]) {
				return t, fmt.Errorf("'log': format '%s' is not supported (supported: %s)", args[1], strings.Join(logFormats, ", "))
			}
			t.Format = args[1]
		case "sample":
			return t, fmt.Errorf("'log': 'sample' is not supported")
		}
		args = args[2:]
	}
	if len(args) == 0 {
		return t, fmt.Errorf("'log' expects a facility after the target")
	}
	if !slices.Contains(facilities, args[0]) {
		return t, fmt.Errorf("'log': unknown facility '%s'%s", args[0], didYouMean(args[0], facilities))
	}
	t.Facility = args[0]
	if len(args) > 1 {
		if !slices.Contains(levels, args[1]) {
			return t, fmt.Errorf("'log': unknown level '%s' (expected one of %s)", args[1], strings.Join(levels, ", "))
		}
		t.Level = args[1]
	}
	if len(args) > 2 {
		if !slices.Contains(levels, args[2]) {
			return t, fmt.Errorf("'log': unknown minimum level '%s' (expected one of %s)", args[2], strings.Join(levels, ", "))
		}
		t.MinLevel = args[2]
	}
	if len(args) > 3 {
		return t, fmt.Errorf("'log': unexpected argument '%s'", args[3])
	}
	return t, nil
}

var facilities = []string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

var levels = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

var logFormats = []string{"rfc3164", "local", "rfc5424", "short", "raw"}

// logTarget normalizes a log target: "stdout", "stderr", a unix socket
// path, or a UDP host:port (port 514 by default).
func logTarget(s string) (string, error) {
	switch s {
	case "stdout", "fd@1":
		return "stdout", nil
	case "stderr", "fd@2":
		return "stderr", nil
	}
	if path, ok := strings.CutPrefix(s, "unix@"); ok || strings.HasPrefix(s, "/") {
		if !ok {
			path = s
		}
		if path == "" {
			return "", fmt.Errorf("empty unix socket path in log target '%s'", s)
		}
		return path, nil
	}
	host := s
	if prefix, rest, ok := strings.Cut(s, "@"); ok {
		if !slices.Contains([]string{"udp", "udp4", "udp6", "ipv4", "ipv6"}, prefix) {
			return "", fmt.Errorf("log target '%s' is not supported (use host[:port], [ipv6]:port, a unix socket path, stdout or stderr)", s)
		}
		host = rest
	}
	hostport := host
	switch {
	case net.ParseIP(host) != nil:
		hostport = net.JoinHostPort(host, "514")
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"), !strings.Contains(host, ":"):
		hostport = host + ":514"
	}
	a, err := addr.Parse(hostport)
	if err != nil || a.Family != addr.TCP || a.Host == "" {
		return "", fmt.Errorf("invalid log target '%s' (use host[:port], [ipv6]:port, a unix socket path, stdout or stderr)", s)
	}
	return a.String(), nil
}
