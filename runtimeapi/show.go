package runtimeapi

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/config"
)

// view collects and aggregates for a command; on failure it returns the
// one-line answer instead. A partial collection is logged and used.
func (c *cli) view(ctx context.Context) (*view, string) {
	v, err := collect(ctx, c.app, c.now())
	if v == nil {
		c.log.Warn("runtime API: no statistics", "err", err)
		return nil, errorf("Cannot collect the processes' statistics: %v.", err)
	}
	if err != nil {
		c.log.Warn("runtime API: some processes did not report", "err", err)
	}
	return v, ""
}

// infoField is one "show info" line, with HAProxy's field position and
// typed-format tags.
type infoField struct {
	pos   int
	name  string
	tags  string
	typ   string
	value string
}

// showInfo prints HAProxy's "show info" fields that Sluice has. Figures
// that measure traffic (CurrConns, CumConns, CumReq, TotalBytesOut) are
// summed over the processes; limits (Maxconn, Maxsock) are per process,
// as configured, the way HAProxy's typed format treats configuration
// values. Process_num is 0: the answer is the master's, for all processes.
func (c *cli) showInfo(ctx context.Context, _ *session, args []string) string {
	typed := false
	for _, a := range args {
		switch a {
		case "typed":
			typed = true
		default:
			return errorf("'show info' only supports 'typed', not '%s'.", truncate(a, 40))
		}
	}
	v, fail := c.view(ctx)
	if v == nil {
		return fail
	}
	info := v.info
	var cur, cum, req, bytesOut int64
	listeners := 0
	for _, pv := range v.proxies {
		listeners += len(pv.cfg.Binds)
		if pv.fe != nil {
			cur += int64(pv.fe.Cur)
			cum += pv.fe.Total
			req += pv.fe.HTTPReqs
			bytesOut += pv.fe.BytesOut
		}
	}
	up := seconds(v.now, info.Started)
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	fields := []infoField{
		{0, "Name", "POS", "str", "Sluice"},
		{1, "Version", "POS", "str", info.Version},
		{2, "Release_date", "POS", "str", info.ReleaseDate},
		{4, "Nbproc", "CGS", "u32", itoa(int64(v.cfg.Global.NbProc))},
		{5, "Process_num", "KGP", "u32", "0"},
		{6, "Pid", "SGP", "u32", itoa(int64(info.PID))},
		{7, "Uptime", "MDP", "str", fmt.Sprintf("%dd %dh%02dm%02ds", up/86400, up%86400/3600, up%3600/60, up%60)},
		{8, "Uptime_sec", "MDP", "u32", itoa(up)},
		{13, "Ulimit-n", "CGP", "u32", itoa(int64(info.MaxSock))},
		{14, "Maxsock", "CLP", "u32", itoa(int64(info.MaxSock))},
		{15, "Maxconn", "CLP", "u32", itoa(int64(info.MaxConn))},
		{16, "Hard_maxconn", "CLP", "u32", itoa(int64(hardMaxConn(info, v.cfg)))},
		{17, "CurrConns", "MGP", "u32", itoa(cur)},
		{18, "CumConns", "MCP", "u32", itoa(cum)},
		{19, "CumReq", "MCP", "u32", itoa(req)},
		{52, "Stopping", "SGP", "u32", "0"},
		{55, "Listeners", "MGP", "u32", itoa(int64(listeners))},
		{61, "TotalBytesOut", "MGP", "u64", itoa(bytesOut)},
		{70, "Start_time_sec", "MGP", "u32", itoa(info.Started.Unix())},
	}
	var b strings.Builder
	for _, f := range fields {
		val := oneLine(f.value)
		if typed {
			fmt.Fprintf(&b, "%d.%s.%d:%s:%s:%s\n", f.pos, f.name, 0, f.tags, f.typ, val)
		} else {
			fmt.Fprintf(&b, "%s: %s\n", f.name, val)
		}
	}
	return b.String()
}

// showStat prints the CSV (or typed) statistics of every proxy, summed
// over the processes; see view for the rules and aggregatePID for the pid
// column.
func (c *cli) showStat(ctx context.Context, _ *session, args []string) string {
	const usage = "'show stat' expects [{<iid>|<proxy>} <type> <sid>] [typed] [up|no-maint]."
	f := allRows()
	typed := false
	var pos []string
	for _, a := range args {
		switch a {
		case "typed":
			typed = true
		case "up":
			f.upOnly = true
		case "no-maint":
			f.noMaint = true
		case "json", "desc", "domain":
			return errorf("'show stat %s' is not supported; %s", a, usage)
		default:
			pos = append(pos, a)
		}
	}
	switch len(pos) {
	case 0:
	case 3:
		cfg := c.app.Config()
		if cfg == nil {
			return errorf("No configuration is running.")
		}
		if p := cfg.Proxy(pos[0]); p != nil {
			f.iid = p.ID
		} else if n, err := parseInt(pos[0]); err == nil && (n == -1 || n > 0) {
			f.iid = n
		} else {
			return errorf("No such proxy.")
		}
		t, err1 := parseInt(pos[1])
		sid, err2 := parseInt(pos[2])
		if err1 != nil || err2 != nil || (t < 1 && t != -1) || (sid < 1 && sid != -1) {
			return errorf(usage)
		}
		f.types, f.sid = t, sid
	default:
		return errorf(usage)
	}
	v, fail := c.view(ctx)
	if v == nil {
		return fail
	}
	var b strings.Builder
	if typed {
		writeTyped(&b, v.rows(f))
	} else {
		writeCSV(&b, v.rows(f))
	}
	return b.String()
}

// showServersState prints the server state of every backend, or of one.
func (c *cli) showServersState(ctx context.Context, _ *session, args []string) string {
	if len(args) > 1 {
		return errorf("'show servers state' expects at most one backend name.")
	}
	name := ""
	if len(args) == 1 {
		cfg := c.app.Config()
		if cfg == nil {
			return errorf("No configuration is running.")
		}
		p := findProxy(cfg, args[0], func(p *config.Proxy) bool { return p.Backend })
		if p == nil {
			return errorf("Can't find backend.")
		}
		name = p.Name
	}
	v, fail := c.view(ctx)
	if v == nil {
		return fail
	}
	var saved []SavedServer
	for _, pv := range v.proxies {
		if name != "" && pv.cfg.Name != name {
			continue
		}
		for _, sv := range pv.servers {
			saved = append(saved, savedFromState(pv, sv, v.now))
		}
	}
	var b strings.Builder
	writeServerState(&b, saved)
	return b.String()
}

// showBackend lists the backends, as HAProxy's "show backend".
func (c *cli) showBackend(_ context.Context, _ *session, args []string) string {
	if len(args) > 0 {
		return errorf("'show backend' takes no argument.")
	}
	cfg := c.app.Config()
	if cfg == nil {
		return errorf("No configuration is running.")
	}
	var b strings.Builder
	b.WriteString("# name\n")
	for _, p := range cfg.Proxies {
		if p.Backend {
			b.WriteString(p.Name)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// showProc prints HAProxy's master CLI "show proc" table, with three more
// columns: the process number, its generation and its role. The type
// column is "worker" for every child, as in HAProxy, whatever its role.
// A child's reloads column is "-": Sluice children live through reloads
// (they get the new configuration), and how many they saw is not known;
// restarts after a crash show in the restarts column. Dead children are
// listed under "# dead workers".
func (c *cli) showProc(_ context.Context, _ *session, args []string) string {
	if len(args) > 0 {
		return errorf("'show proc' takes no argument.")
	}
	info := c.app.Info()
	now := c.now()
	var b strings.Builder
	line := func(pid int, typ, reloads string, started time.Time, num, gen int, role, restarts string) {
		fmt.Fprintf(&b, "%-15d %-15s %-15s %-15s %-15s %-15d %-15d %-15s %s\n",
			pid, typ, reloads, procUptime(now, started), dash(oneLine(info.Version)), num, gen, role, restarts)
	}
	fmt.Fprintf(&b, "%-15s %-15s %-15s %-15s %-15s %-15s %-15s %-15s %s\n",
		"#<PID>", "<type>", "<reloads>", "<uptime>", "<version>", "<process>", "<generation>", "<role>", "<restarts>")
	line(info.PID, "master", strconv.Itoa(info.Reloads), info.Started, 0, info.Generation, "master", "-")
	for _, section := range []struct {
		title string
		alive bool
	}{{"# workers", true}, {"# dead workers", false}} {
		first := true
		for _, p := range info.Processes {
			if p.Alive != section.alive {
				continue
			}
			if first {
				b.WriteString(section.title + "\n")
				first = false
			}
			line(p.PID, "worker", "-", p.Started, p.Num, p.Generation, dash(oneLine(p.Role)), strconv.Itoa(p.Restarts))
		}
	}
	return b.String()
}

// procUptime is HAProxy's "show proc" uptime: 0d00h02m07s.
func procUptime(now, started time.Time) string {
	if started.IsZero() {
		return "-"
	}
	s := seconds(now, started)
	return fmt.Sprintf("%dd%02dh%02dm%02ds", s/86400, s%86400/3600, s%3600/60, s%60)
}

// showSess lists every process's sessions, one line each. HAProxy's first
// field is the session's address; Sluice's is 0x followed by the process
// number (2 hex digits) and the session id (14 hex digits), unique across
// processes. Fields HAProxy prints that Sluice has no notion of are left
// out; proc= says which process holds the session.
func (c *cli) showSess(ctx context.Context, _ *session, args []string) string {
	if len(args) > 0 {
		return errorf("'show sess' takes no argument here: per-session details are not available.")
	}
	snaps, err := c.app.Snapshots(ctx)
	if err != nil {
		if len(snaps) == 0 {
			return errorf("Cannot collect the processes' sessions: %v.", err)
		}
		c.log.Warn("runtime API: some processes did not report", "err", err)
	}
	var b strings.Builder
	for _, sn := range snaps {
		for _, ss := range sn.Sessions {
			id := uint64(sn.Process&0xff)<<56 | ss.ID&(1<<56-1)
			fmt.Fprintf(&b, "0x%016x: proto=%s src=%s fe=%s be=%s srv=%s age=%s idle=%s proc=%d\n",
				id, sessProto(ss.Source), dashNone(ss.Source), dashNone(ss.Frontend), dashNone(ss.Backend),
				dashNone(ss.Server), humanDuration(ss.Age), humanDuration(ss.Idle), sn.Process)
		}
	}
	return b.String()
}

// sessProto names a session's transport as HAProxy's "show sess" does.
func sessProto(src string) string {
	host, _, err := net.SplitHostPort(src)
	if err != nil {
		return "unix_stream"
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "tcpv6"
	}
	return "tcpv4"
}

// dashNone is HAProxy's "<NONE>" for a missing name, and keeps a value
// on one line and in one word.
func dashNone(s string) string {
	if s == "" {
		return "<NONE>"
	}
	return strings.Join(strings.Fields(s), "_")
}

// humanDuration prints a duration as HAProxy's human_time: 1d2h3m4s, with
// leading zero units left out.
func humanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}} {
		if s >= u.n || b.Len() > 0 {
			fmt.Fprintf(&b, "%d%s", s/u.n, u.unit)
			s %= u.n
		}
	}
	fmt.Fprintf(&b, "%ds", s)
	return b.String()
}

// showResolvers prints HAProxy's "show resolvers": per section, per
// nameserver, the query counters.
func (c *cli) showResolvers(_ context.Context, _ *session, args []string) string {
	if len(args) > 1 {
		return errorf("'show resolvers' takes at most a resolvers section name.")
	}
	all := c.app.Resolvers()
	var b strings.Builder
	found := false
	for _, r := range all {
		if len(args) == 1 && r.Section != args[0] {
			continue
		}
		found = true
		fmt.Fprintf(&b, "Resolvers section %s\n", r.Section)
		for _, ns := range r.Nameservers {
			fmt.Fprintf(&b, " nameserver %s:\n", ns.Name)
			for _, f := range []struct {
				name string
				v    uint64
			}{
				{"sent", ns.Sent}, {"snd_error", ns.SndError}, {"valid", ns.Valid}, {"update", ns.Update},
				{"cname", ns.Cname}, {"cname_error", ns.CnameError}, {"any_err", ns.AnyErr}, {"nx", ns.Nx},
				{"timeout", ns.Timeout}, {"refused", ns.Refused}, {"other", ns.Other}, {"invalid", ns.Invalid},
				{"too_big", ns.TooBig}, {"truncated", ns.Truncated}, {"outdated", ns.Outdated},
			} {
				fmt.Fprintf(&b, "  %-12s %d\n", f.name+":", f.v)
			}
		}
	}
	if len(args) == 1 && !found {
		return errorf("Can't find that resolvers section")
	}
	return b.String()
}
