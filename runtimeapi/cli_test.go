package runtimeapi

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/backend"
)

func TestSplitLine(t *testing.T) {
	tests := []struct {
		line string
		want [][]string
	}{
		{"", nil},
		{"   \t ", nil},
		{"show info", [][]string{{"show", "info"}}},
		{"  show   stat\ttyped  ", [][]string{{"show", "stat", "typed"}}},
		{"show info;show stat", [][]string{{"show", "info"}, {"show", "stat"}}},
		{"show info ; ; show stat;", [][]string{{"show", "info"}, {"show", "stat"}}},
		{`set server a\;b/c state ready`, [][]string{{"set", "server", "a;b/c", "state", "ready"}}},
		{`a\ b c\\d`, [][]string{{`a b`, `c\d`}}},
		{`trailing\`, [][]string{{`trailing\`}}},
		{"show info\r", [][]string{{"show", "info"}}},
	}
	for _, tt := range tests {
		if got := splitLine(tt.line); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitLine(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	c, _ := testCLI(t)
	tests := []struct {
		args     []string
		wantName string
		wantRest []string
	}{
		{[]string{"clear", "counters"}, "clear counters", []string{}},
		{[]string{"clear", "counters", "all"}, "clear counters all", []string{}},
		{[]string{"set", "maxconn", "server", "b/s", "3"}, "set maxconn server", []string{"b/s", "3"}},
		{[]string{"set", "server", "b/s", "state", "ready"}, "set server", []string{"b/s", "state", "ready"}},
		{[]string{"show", "servers", "state", "be"}, "show servers state", []string{"be"}},
		{[]string{"show", "servers"}, "", nil},
		{[]string{"nope"}, "", nil},
	}
	for _, tt := range tests {
		cmd, rest := c.lookup(tt.args)
		name := ""
		if cmd != nil {
			name = cmd.name
		}
		if name != tt.wantName || (cmd != nil && !reflect.DeepEqual(rest, tt.wantRest)) {
			t.Errorf("lookup(%q) = %q %q, want %q %q", tt.args, name, rest, tt.wantName, tt.wantRest)
		}
	}
}

// TestAnswers checks the exact answer of commands that need no
// statistics or whose answer is short, including every error.
func TestAnswers(t *testing.T) {
	tests := []struct {
		level level
		line  string
		want  string
	}{
		// Generic.
		{levelAdmin, "", "\n"},
		{levelUser, "nope", "Unknown command: 'nope'. Enter 'help' for the list of commands.\n\n"},
		{levelUser, "show servers", "Unknown command: 'show servers'. Expected one of: show servers state.\n\n"},
		{levelUser, "set maxconn", "Unknown command: 'set maxconn'. Expected one of: set timeout cli.\n\n"},
		{levelAdmin, "set maxconn", "Unknown command: 'set maxconn'. Expected one of: set maxconn frontend, set maxconn global, set maxconn server.\n\n"},
		{levelUser, "show cli level", "user\n\n"},
		{levelOperator, "show cli level", "operator\n\n"},
		{levelAdmin, "user;show cli level", "\nuser\n\n"},
		{levelUser, "operator", "Permission denied\n\n"},
		{levelUser, "set timeout cli 0", "Invalid timeout value: expected seconds from 1 to 2073600.\n\n"},
		{levelUser, "set timeout cli", "Expects an integer value: 'set timeout cli <seconds>'.\n\n"},
		{levelUser, "prompt now", "'prompt' takes no argument.\n\n"},
		{levelUser, "show backend", "# name\nbe_app\nweb\noff\nsock\n\n"},
		{levelUser, "show backend x", "'show backend' takes no argument.\n\n"},
		{levelUser, "show info json", "'show info' only supports 'typed', not 'json'.\n\n"},
		{levelUser, "show stat json", "'show stat json' is not supported; 'show stat' expects [{<iid>|<proxy>} <type> <sid>] [typed] [up|no-maint].\n\n"},
		{levelUser, "show stat 1 2", "'show stat' expects [{<iid>|<proxy>} <type> <sid>] [typed] [up|no-maint].\n\n"},
		{levelUser, "show stat nope 1 -1", "No such proxy.\n\n"},
		{levelUser, "show stat fe_main x -1", "'show stat' expects [{<iid>|<proxy>} <type> <sid>] [typed] [up|no-maint].\n\n"},
		{levelUser, "show servers state nope", "Can't find backend.\n\n"},
		{levelUser, "show servers state fe_main", "Can't find backend.\n\n"},
		{levelUser, "show servers state a b", "'show servers state' expects at most one backend name.\n\n"},
		{levelUser, "show proc x", "'show proc' takes no argument.\n\n"},
		{levelOperator, "show sess 0x1", "'show sess' takes no argument here: per-session details are not available.\n\n"},

		// get weight.
		{levelUser, "get weight be_app/s1", "100 (initial 100)\n\n"},
		{levelUser, "get weight #2/#2", "50 (initial 50)\n\n"},
		{levelUser, "get weight be_app", "Require 'backend/server'.\n\n"},
		{levelUser, "get weight", "Require 'backend/server'.\n\n"},
		{levelUser, "get weight nope/s1", "No such backend.\n\n"},
		{levelUser, "get weight fe_main/s1", "No such backend.\n\n"},
		{levelUser, "get weight be_app/nope", "No such server.\n\n"},
		{levelUser, "get weight be_app/#9", "No such server.\n\n"},
		{levelUser, "get weight off/o1", "Proxy is disabled.\n\n"},

		// set server.
		{levelAdmin, "set server", "Require 'backend/server'.\n\n"},
		{levelAdmin, "set server be_app/s1", "'set server <srv>' only supports 'agent', 'health', 'state', 'weight', 'addr' and 'fqdn'.\n\n"},
		{levelAdmin, "set server be_app/s1 color x", "'set server <srv>' only supports 'agent', 'health', 'state', 'weight', 'addr' and 'fqdn'.\n\n"},
		{levelAdmin, "set server be_app/nope state ready", "No such server.\n\n"},
		{levelAdmin, "set server be_app/s1 state up", "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"},
		{levelAdmin, "set server be_app/s1 state", "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"},
		{levelAdmin, "set server be_app/s1 state ready now", "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"},
		{levelAdmin, "set server be_app/s1 health maint", "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n\n"},
		{levelAdmin, "set server be_app/s1 agent stopping", "'set server <srv> agent' expects 'up' or 'down'.\n\n"},
		{levelAdmin, "set server be_app/s1 weight", "Require <weight> or <weight%>.\n\n"},
		{levelAdmin, "set server be_app/s1 weight abc", "Require <weight> or <weight%>.\n\n"},
		{levelAdmin, "set server be_app/s1 weight 257", "Absolute weight can only be between 0 and 256 inclusive.\n\n"},
		{levelAdmin, "set server be_app/s1 weight -1", "Absolute weight can only be between 0 and 256 inclusive.\n\n"},
		{levelAdmin, "set server be_app/s1 weight -5%", "Relative weight must be positive.\n\n"},
		{levelAdmin, "set server be_app/s1 addr", "set server <b>/<s> addr requires an address and an optional port.\n\n"},
		{levelAdmin, "set server be_app/s1 addr 10.0.0.5 80", "set server <b>/<s> addr requires an address and an optional port.\n\n"},
		{levelAdmin, "set server be_app/s1 addr 10.0.0.5 prt 80", "set server <b>/<s> addr requires an address and an optional port.\n\n"},
		{levelAdmin, "set server be_app/s1 addr example.com", "Invalid addr 'example.com'.\n\n"},
		{levelAdmin, "set server be_app/s1 addr 10.0.0.5 port 0", "problem converting port '0' to an int from 1 to 65535.\n\n"},
		{levelAdmin, "set server be_app/s1 addr 10.0.0.5 port http", "problem converting port 'http' to an int from 1 to 65535.\n\n"},
		{levelAdmin, "set server sock/u1 addr 10.0.0.5", "Update for the current server address family is only supported through configuration file.\n\n"},
		{levelAdmin, "set server be_app/s1 addr 10.0.0.1", "no need to change the addr by 'stats socket command'\n\n"},
		{levelAdmin, "set server be_app/s1 addr 10.0.0.7 port 80", "IP changed from '10.0.0.1' to '10.0.0.7', no need to change the port by 'stats socket command'\n\n"},
		{levelAdmin, "set server web/w1 addr ::2 port 81", "IP changed from '::1' to '::2', port changed from '8080' to '81' by 'stats socket command'\n\n"},

		// set weight, enable/disable.
		{levelAdmin, "set weight be_app/s1", "Require <weight> or <weight%>.\n\n"},
		{levelAdmin, "set weight be_app/s1 1 2", "Require <weight> or <weight%>.\n\n"},
		{levelAdmin, "set weight nope/s1 1", "No such backend.\n\n"},
		{levelAdmin, "enable server be_app", "Require 'backend/server'.\n\n"},
		{levelAdmin, "disable server", "Require 'backend/server'.\n\n"},
		{levelAdmin, "disable server be_app/s1 now", "Require 'backend/server'.\n\n"},

		// set maxconn.
		{levelAdmin, "set maxconn frontend", "A frontend name is expected.\n\n"},
		{levelAdmin, "set maxconn frontend be_app 10", "No such frontend.\n\n"},
		{levelAdmin, "set maxconn frontend fe_main", "Integer value expected.\n\n"},
		{levelAdmin, "set maxconn frontend fe_main ten", "Integer value expected.\n\n"},
		{levelAdmin, "set maxconn frontend fe_main -1", "Value out of range.\n\n"},
		{levelAdmin, "set maxconn server be_app/s1", "Require <maxconn>.\n\n"},
		{levelAdmin, "set maxconn server be_app/s1 x", "Require <maxconn> as an integer.\n\n"},
		{levelAdmin, "set maxconn server be_app/s1 -3", "Value out of range.\n\n"},
		{levelAdmin, "set maxconn server be_app/zz 3", "No such server.\n\n"},
		{levelAdmin, "set maxconn global", "Expecting an integer argument.\n\n"},
		{levelAdmin, "set maxconn global many", "Expecting an integer argument.\n\n"},
		{levelAdmin, "set maxconn global 1001", "Value out of range: the descriptor limit (maxsock 2035) fits a maxconn from 1 to 1000 (0 restores it).\n\n"},
		{levelAdmin, "set maxconn global -1", "Value out of range: the descriptor limit (maxsock 2035) fits a maxconn from 1 to 1000 (0 restores it).\n\n"},

		// shutdown, clear.
		{levelAdmin, "shutdown sessions server", "Require 'backend/server'.\n\n"},
		{levelAdmin, "shutdown sessions server be_app/nope", "No such server.\n\n"},
		{levelAdmin, "shutdown sessions", "Unknown command: 'shutdown sessions'. Expected one of: shutdown sessions server.\n\n"},
		{levelAdmin, "clear counters now", "'clear counters' expects nothing or 'all'.\n\n"},

		// set server fqdn is the one change operators may make.
		{levelOperator, "set server be_app/s1 state drain", "Permission denied\n\n"},
		{levelUser, "set server be_app/s1 fqdn a.example", "Permission denied\n\n"},
		{levelOperator, "set server be_app/s1 fqdn a.example", "set server <b>/<s> fqdn requires a resolvers section: add 'resolvers <name>' to the server line.\n\n"},
		{levelOperator, "set server be_app/s1 fqdn", "'set server <srv> fqdn' expects a FQDN.\n\n"},

		// Successful changes answer with the empty line only.
		{levelAdmin, "set server be_app/s1 state drain", "\n"},
		{levelOperator, "clear counters", "\n"},
	}
	for _, tt := range tests {
		c, app := testCLI(t)
		got := run(c, tt.level, tt.line)
		if got != tt.want {
			t.Errorf("%s %q:\n got %q\nwant %q", tt.level, tt.line, got, tt.want)
		}
		if strings.HasSuffix(tt.want, ".\n\n") && len(app.changes()) > 0 {
			t.Errorf("%q: an error answer still changed %v", tt.line, app.changes())
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestChanges checks what each change command asks the appliance to do.
func TestChanges(t *testing.T) {
	tests := []struct {
		line string
		want Change
	}{
		{"set server be_app/s1 state ready", Change{Backend: "be_app", Server: "s1", Admin: ptr(backend.Ready)}},
		{"set server be_app/s1 state drain", Change{Backend: "be_app", Server: "s1", Admin: ptr(backend.Drain)}},
		{"set server #2/#1 state maint", Change{Backend: "be_app", Server: "s1", Admin: ptr(backend.Maint)}},
		{"set server be_app/s2 health up", Change{Backend: "be_app", Server: "s2", Health: ptr(backend.Up)}},
		{"set server be_app/s2 health stopping", Change{Backend: "be_app", Server: "s2", Health: ptr(backend.Stopping)}},
		{"set server be_app/s2 health down", Change{Backend: "be_app", Server: "s2", Health: ptr(backend.Down)}},
		{"set server be_app/s2 agent up", Change{Backend: "be_app", Server: "s2", AgentUp: ptr(true)}},
		{"set server be_app/s2 agent down", Change{Backend: "be_app", Server: "s2", AgentUp: ptr(false)}},
		{"set server be_app/s1 weight 0", Change{Backend: "be_app", Server: "s1", Weight: ptr(0)}},
		{"set server be_app/s1 weight 256", Change{Backend: "be_app", Server: "s1", Weight: ptr(256)}},
		{"set server be_app/s2 weight 50%", Change{Backend: "be_app", Server: "s2", Weight: ptr(25)}},
		{"set server be_app/s2 weight 1000%", Change{Backend: "be_app", Server: "s2", Weight: ptr(256)}},
		{"set server be_app/s2 weight 99999999999999999%", Change{Backend: "be_app", Server: "s2", Weight: ptr(256)}},
		{"set weight be_app/s2 0%", Change{Backend: "be_app", Server: "s2", Weight: ptr(0)}},
		{"set weight be_app/s2 7", Change{Backend: "be_app", Server: "s2", Weight: ptr(7)}},
		{"set server be_app/s1 addr 10.0.0.5", Change{Backend: "be_app", Server: "s1", Addr: ptr("10.0.0.5")}},
		{"set server be_app/s1 addr 10.0.0.5 port 8080", Change{Backend: "be_app", Server: "s1", Addr: ptr("10.0.0.5:8080")}},
		{"set server web/w1 addr 2001:db8::7 port 81", Change{Backend: "web", Server: "w1", Addr: ptr("[2001:db8::7]:81")}},
		{"enable server be_app/s1", Change{Backend: "be_app", Server: "s1", Admin: ptr(backend.Ready)}},
		{"disable server be_app/s1", Change{Backend: "be_app", Server: "s1", Admin: ptr(backend.Maint)}},
		{"set maxconn frontend fe_main 100", Change{Frontend: "fe_main", MaxConnFrontend: ptr(100)}},
		{"set maxconn frontend #1 0", Change{Frontend: "fe_main", MaxConnFrontend: ptr(0)}},
		{"set maxconn frontend web 3", Change{Frontend: "web", MaxConnFrontend: ptr(3)}},
		{"set maxconn server be_app/s2 10", Change{Backend: "be_app", Server: "s2", MaxConnServer: ptr(10)}},
		{"set maxconn global 1000", Change{MaxConnGlobal: ptr(1000)}},
		{"set maxconn global 10", Change{MaxConnGlobal: ptr(10)}},
		{"set maxconn global 0", Change{MaxConnGlobal: ptr(1000)}},
		{"shutdown sessions server be_app/s1", Change{Backend: "be_app", Server: "s1", ShutdownSessions: true}},
		{"clear counters", Change{ClearCounters: true}},
		{"clear counters all", Change{ClearCountersAll: true}},
	}
	for _, tt := range tests {
		c, app := testCLI(t)
		out := run(c, levelAdmin, tt.line)
		got := app.changes()
		if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
			t.Errorf("%q (answer %q): changes %+v, want %+v", tt.line, out, got, tt.want)
		}
	}
}

// TestPermissions follows HAProxy's levels: user only looks; operator may
// also list sessions and clear the maxima; admin may change anything.
func TestPermissions(t *testing.T) {
	changes := []string{
		"set server be_app/s1 state drain", "set server be_app/s1 weight 1", "set weight be_app/s1 1",
		"enable server be_app/s1", "disable server be_app/s1", "set maxconn frontend fe_main 1",
		"set maxconn server be_app/s1 1", "set maxconn global 1", "shutdown sessions server be_app/s1",
		"clear counters all",
	}
	for _, line := range changes {
		for _, lvl := range []level{levelUser, levelOperator} {
			c, app := testCLI(t)
			if got := run(c, lvl, line); got != "Permission denied\n\n" {
				t.Errorf("%s %q = %q, want Permission denied", lvl, line, got)
			}
			// Permission comes before argument checks, as in HAProxy.
			if got := run(c, lvl, line+" extra junk"); got != "Permission denied\n\n" {
				t.Errorf("%s %q + junk = %q, want Permission denied", lvl, line, got)
			}
			if n := len(app.changes()); n != 0 {
				t.Errorf("%s %q made %d changes", lvl, line, n)
			}
		}
	}
	c, _ := testCLI(t)
	if got := run(c, levelUser, "clear counters"); got != "Permission denied\n\n" {
		t.Errorf("user clear counters = %q", got)
	}
	if got := run(c, levelUser, "show sess"); got != "Permission denied\n\n" {
		t.Errorf("user show sess = %q", got)
	}
	for _, line := range []string{"show info", "show stat", "show servers state", "show backend", "show proc", "get weight be_app/s1", "help"} {
		if got := run(c, levelUser, line); strings.Contains(got, "Permission denied") {
			t.Errorf("user %q was denied", line)
		}
	}
	// help lists only what the level may run.
	help := run(c, levelUser, "help")
	if strings.Contains(help, "set server") || !strings.Contains(help, "show stat") {
		t.Errorf("user help lists the wrong commands:\n%s", help)
	}
	if help := run(c, levelAdmin, "help"); !strings.Contains(help, "set server") || !strings.Contains(help, "clear counters all") {
		t.Errorf("admin help misses commands:\n%s", help)
	}
	if help := run(c, levelAdmin, "help set maxconn"); strings.Count(help, "\n") != 5 {
		t.Errorf("help set maxconn:\n%s", help)
	}
}

func TestApplyError(t *testing.T) {
	c, app := testCLI(t)
	app.applyErr = errBoom
	got := run(c, levelAdmin, "set server be_app/s1 state maint")
	want := "Cannot apply 'set server be_app/s1 state maint': boom.\n\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSnapshotErrors(t *testing.T) {
	c, app := testCLI(t)
	app.snaps, app.snapErr = nil, errBoom
	for _, line := range []string{"show stat", "show info", "show servers state", "get weight be_app/s1", "set server be_app/s1 addr 1.2.3.4"} {
		got := run(c, levelAdmin, line)
		if got != "Cannot collect the processes' statistics: collect process statistics: boom.\n\n" {
			t.Errorf("%q = %q", line, got)
		}
	}
	if got := run(c, levelAdmin, "show sess"); got != "Cannot collect the processes' sessions: boom.\n\n" {
		t.Errorf("show sess = %q", got)
	}
	if n := len(app.changes()); n != 0 {
		t.Errorf("%d changes made without statistics", n)
	}

	// A partial answer is used: process 2 is missing, so web/w1, which only
	// process 2 runs, shows down, and be_app/s1 as process 1 sees it.
	c, app = testCLI(t)
	app.snaps, app.snapErr = app.snaps[:1], errBoom
	v, fail := c.view(context.Background())
	if v == nil {
		t.Fatalf("partial snapshots: %s", fail)
	}
	if got := v.proxy("web").server("w1").status; got != "DOWN" {
		t.Errorf("w1 with no report: %s, want DOWN", got)
	}
	if got := v.proxy("be_app").server("s1").status; got != "UP" {
		t.Errorf("s1 from process 1 only: %s, want UP", got)
	}
}

// TestLineProtocol checks prompt mode, ';' chains and quit.
func TestLineProtocol(t *testing.T) {
	c, _ := testCLI(t)
	ctx := context.Background()
	s := &session{level: levelAdmin, timeout: time.Second}

	if got := c.execLine(ctx, s, "show cli level;show backend"); got != "admin\n\n# name\nbe_app\nweb\noff\nsock\n\n" {
		t.Errorf("chain: %q", got)
	}
	if got := c.execLine(ctx, s, "prompt"); got != "\n> " || !s.prompt {
		t.Errorf("prompt: %q (prompt %v)", got, s.prompt)
	}
	if got := c.execLine(ctx, s, "show cli level"); got != "admin\n\n> " {
		t.Errorf("in prompt mode: %q", got)
	}
	if got := c.execLine(ctx, s, ""); got != "\n> " {
		t.Errorf("empty line in prompt mode: %q", got)
	}
	if got := c.execLine(ctx, s, "show cli level;quit;show backend"); got != "admin\n\n> " || !s.quit {
		t.Errorf("quit: %q (quit %v)", got, s.quit)
	}
	s = &session{level: levelAdmin, prompt: true, timeout: time.Second}
	if got := c.execLine(ctx, s, "prompt;show cli level"); got != "\nadmin\n\n" || s.prompt {
		t.Errorf("prompt off: %q (prompt %v)", got, s.prompt)
	}
}

func TestNoEmptyLines(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		"a\n":          "a\n",
		"a\n\nb\n":     "a\nb\n",
		"\na\n\n\nb\n": "a\nb\n",
	} {
		if got := noEmptyLines(in); got != want {
			t.Errorf("noEmptyLines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]level{"user": levelUser, "operator": levelOperator, "": levelOperator, "admin": levelAdmin} {
		if got, err := parseLevel(in); err != nil || got != want {
			t.Errorf("parseLevel(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := parseLevel("root"); err == nil {
		t.Error("parseLevel(root) succeeded")
	}
}

func TestShowResolvers(t *testing.T) {
	c, _ := testCLI(t)
	out := run(c, levelUser, "show resolvers")
	for _, want := range []string{"Resolvers section dns\n", " nameserver ns1:\n", "  sent:        4\n", "  timeout:     1\n", "  outdated:    0\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("show resolvers lacks %q:\n%s", want, out)
		}
	}
	if out := run(c, levelUser, "show resolvers nope"); !strings.Contains(out, "Can't find that resolvers section") {
		t.Fatalf("unknown section: %q", out)
	}
}
