package runtimeapi

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzCommand runs any line at admin level against the fixture: no panic,
// every command answers with its terminator and no empty line inside, and
// nothing malformed reaches the appliance.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		"show info", "show stat", "show stat typed", "show stat be_app 4 -1 up", "show servers state be_app",
		"show proc", "show sess", "show backend", "help", "help set", "prompt", "quit", "user;operator",
		"set server be_app/s1 state drain", "set server #2/#1 weight 50%", "set weight be_app/s2 0",
		"set server web/w1 addr ::2 port 81", "set maxconn global 0", "set maxconn frontend fe_main 3",
		"set maxconn server be_app/s1 9", "get weight be_app/s1", "enable server be_app/s1",
		"disable server be_app/s1", "shutdown sessions server be_app/s1", "clear counters all",
		`set server a\;b/c state ready;show info`, "set timeout cli 5", "\\", ";;;", "show stat -1 -1 -1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, app := testCLI(t)
		ctx := context.Background()
		// Each command answers nothing or whole lines.
		s := &session{level: levelAdmin, timeout: time.Second}
		for _, args := range splitLine(line) {
			text := c.exec(ctx, s, args)
			if s.quit {
				break
			}
			if text != "" && !strings.HasSuffix(text, "\n") {
				t.Fatalf("%q answers a partial line: %q", args, text)
			}
		}
		// The whole line's answer ends with a terminator or the prompt.
		s = &session{level: levelAdmin, timeout: time.Second}
		out := c.execLine(ctx, s, line)
		if !s.quit && !strings.HasSuffix(out, "\n") && !strings.HasSuffix(out, "\n> ") {
			t.Fatalf("answer to %q is not terminated: %q", line, out)
		}
		for _, ch := range app.changes() {
			if ch.Backend != "" && app.cfg.Proxy(ch.Backend) == nil {
				t.Fatalf("%q changed unknown backend %q", line, ch.Backend)
			}
			if ch.Weight != nil && (*ch.Weight < 0 || *ch.Weight > 256) {
				t.Fatalf("%q set weight %d", line, *ch.Weight)
			}
			if ch.MaxConnGlobal != nil && (*ch.MaxConnGlobal < 1 || *ch.MaxConnGlobal > 1000) {
				t.Fatalf("%q set maxconn global %d", line, *ch.MaxConnGlobal)
			}
		}
	})
}
