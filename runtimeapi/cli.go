package runtimeapi

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// level is a stats socket's access level, HAProxy's "level" bind option.
type level int

const (
	levelUser     level = iota // may only look
	levelOperator              // may also clear counters and list sessions
	levelAdmin                 // may change anything
)

func (l level) String() string {
	switch l {
	case levelOperator:
		return "operator"
	case levelAdmin:
		return "admin"
	}
	return "user"
}

// parseLevel reads a "level" option; empty means HAProxy's default,
// operator.
func parseLevel(s string) (level, error) {
	switch s {
	case "user":
		return levelUser, nil
	case "operator", "":
		return levelOperator, nil
	case "admin":
		return levelAdmin, nil
	}
	return 0, fmt.Errorf("unknown stats socket level %q (expected user, operator or admin)", s)
}

// session is one connection's state.
type session struct {
	level   level
	prompt  bool          // interactive mode
	timeout time.Duration // idle limit, "set timeout cli" changes it
	quit    bool          // close now, skip the rest of the line
}

// command is one runtime API command.
type command struct {
	name  string // its leading words, e.g. "show servers state"
	args  string // the rest of its syntax, for help
	help  string
	level level
	run   func(ctx context.Context, s *session, args []string) string
}

// cli runs the commands of one stats socket. Its connections share it.
type cli struct {
	app      Appliance
	log      *slog.Logger
	now      func() time.Time
	commands []command
}

func newCLI(app Appliance, log *slog.Logger) *cli {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &cli{app: app, log: log, now: time.Now}
	c.commands = []command{
		{"help", "[<command>]", "list matching or all commands", levelUser, c.help},
		{"prompt", "", "toggle interactive mode with prompt", levelUser, c.togglePrompt},
		{"quit", "", "disconnect", levelUser, c.quit},
		{"operator", "", "lower the level of the current CLI session to operator", levelUser, c.lowerLevel(levelOperator)},
		{"user", "", "lower the level of the current CLI session to user", levelUser, c.lowerLevel(levelUser)},
		{"show cli level", "", "display the level of the current CLI session", levelUser, c.showLevel},
		{"set timeout cli", "<delay>", "change this session's idle timeout (seconds)", levelUser, c.setTimeout},
		{"show info", "[typed]", "report information about the running processes", levelUser, c.showInfo},
		{"show stat", "[{<iid>|<proxy>} <type> <sid>] [typed] [up|no-maint]", "report counters for each proxy and server", levelUser, c.showStat},
		{"show servers state", "[<backend>]", "dump volatile server information (all or for a single backend)", levelUser, c.showServersState},
		{"show backend", "", "list backends", levelUser, c.showBackend},
		{"show proc", "", "show the master and its child processes", levelUser, c.showProc},
		{"show sess", "", "list the established sessions of every process", levelOperator, c.showSess},
		{"get weight", "<bk>/<srv>", "report a server's current weight", levelUser, c.getWeight},
		{"set weight", "<bk>/<srv> (<weight>|<weight>%)", "change a server's weight (deprecated, use 'set server')", levelAdmin, c.setWeight},
		{"set server", "<bk>/<srv> [state|health|agent|weight|addr] <value>", "change a server's state, weight or address", levelAdmin, c.setServer},
		{"enable server", "<bk>/<srv>", "enable a disabled server (use 'set server' instead)", levelAdmin, c.enableServer(true)},
		{"disable server", "<bk>/<srv>", "disable a server for maintenance (use 'set server' instead)", levelAdmin, c.enableServer(false)},
		{"set maxconn frontend", "<frontend> <value>", "change a frontend's maxconn setting", levelAdmin, c.setMaxConnFrontend},
		{"set maxconn server", "<bk>/<srv> <value>", "change a server's maxconn setting", levelAdmin, c.setMaxConnServer},
		{"set maxconn global", "<value>", "change the per-process maxconn setting", levelAdmin, c.setMaxConnGlobal},
		{"shutdown sessions server", "<bk>/<srv>", "kill sessions on a server", levelAdmin, c.shutdownSessions},
		{"clear counters", "", "clear max statistics counters", levelOperator, c.clearCounters(false)},
		{"clear counters all", "", "clear all statistics counters", levelAdmin, c.clearCounters(true)},
	}
	return c
}

// splitLine cuts an input line into commands at ';' and each command into
// words at spaces and tabs. A backslash makes the next character literal,
// so that a value may hold ';', a space or a backslash.
func splitLine(line string) [][]string {
	var (
		cmds   [][]string
		words  []string
		word   strings.Builder
		inWord bool
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && i+1 < len(line):
			i++
			word.WriteByte(line[i])
			inWord = true
		case ch == ';':
			endCmd()
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n':
			endWord()
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	endCmd()
	return cmds
}

// execLine runs the commands of one input line and returns the answer.
// Each command's output is followed by an empty line, or by the prompt in
// interactive mode, as HAProxy does. "quit" ends at once; leaving
// interactive mode closes the connection after the line.
func (c *cli) execLine(ctx context.Context, s *session, line string) string {
	cmds := splitLine(line)
	if len(cmds) == 0 {
		cmds = [][]string{nil} // an empty line still gets its terminator
	}
	var out strings.Builder
	for _, args := range cmds {
		text := c.exec(ctx, s, args)
		if s.quit {
			break
		}
		out.WriteString(noEmptyLines(text))
		if s.prompt {
			out.WriteString("\n> ")
		} else {
			out.WriteString("\n")
		}
	}
	return out.String()
}

// exec runs one command.
func (c *cli) exec(ctx context.Context, s *session, args []string) string {
	if len(args) == 0 {
		return ""
	}
	cmd, rest := c.lookup(args)
	if cmd == nil {
		return c.unknown(s, args)
	}
	if s.level < cmd.level {
		return "Permission denied\n"
	}
	return cmd.run(ctx, s, rest)
}

// lookup finds the command whose name is the longest prefix of args.
func (c *cli) lookup(args []string) (*command, []string) {
	var best *command
	bestLen := 0
	for i := range c.commands {
		words := strings.Fields(c.commands[i].name)
		if len(words) <= bestLen || len(words) > len(args) {
			continue
		}
		if equalWords(words, args[:len(words)]) {
			best, bestLen = &c.commands[i], len(words)
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, args[bestLen:]
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// unknown answers a command that does not exist with the commands that
// share its first words, so the answer says what was expected.
func (c *cli) unknown(s *session, args []string) string {
	var near []string
	for n := len(args); n > 0 && len(near) == 0; n-- {
		for _, cmd := range c.commands {
			words := strings.Fields(cmd.name)
			if cmd.level <= s.level && len(words) >= n && equalWords(args[:n], words[:n]) {
				near = append(near, cmd.name)
			}
		}
	}
	typed := truncate(strings.Join(args, " "), 80)
	if len(near) == 0 {
		return fmt.Sprintf("Unknown command: '%s'. Enter 'help' for the list of commands.\n", typed)
	}
	sort.Strings(near)
	return fmt.Sprintf("Unknown command: '%s'. Expected one of: %s.\n", typed, strings.Join(near, ", "))
}

// noEmptyLines drops empty lines from a command's output: an empty line
// ends an answer, so none may appear inside one.
func noEmptyLines(text string) string {
	if !strings.Contains(text, "\n\n") && !strings.HasPrefix(text, "\n") {
		return text
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		if l != "\n" {
			b.WriteString(l)
		}
	}
	return b.String()
}

// errorf formats a one-line answer.
func errorf(format string, args ...any) string {
	return oneLine(fmt.Sprintf(format, args...)) + "\n"
}

// oneLine keeps a message on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

func (c *cli) help(_ context.Context, s *session, args []string) string {
	var b strings.Builder
	b.WriteString("The following commands are valid at this level:\n")
	prefix := strings.Join(args, " ")
	for _, cmd := range c.commands {
		if cmd.level > s.level || !strings.HasPrefix(cmd.name, prefix) {
			continue
		}
		usage := cmd.name
		if cmd.args != "" {
			usage += " " + cmd.args
		}
		fmt.Fprintf(&b, "  %-40s: %s\n", usage, cmd.help)
	}
	return b.String()
}

func (c *cli) togglePrompt(_ context.Context, s *session, args []string) string {
	if len(args) > 0 {
		return errorf("'prompt' takes no argument.")
	}
	s.prompt = !s.prompt
	return ""
}

func (c *cli) quit(_ context.Context, s *session, _ []string) string {
	s.quit = true
	return ""
}

// lowerLevel returns the "operator" and "user" commands: a session may
// lower its level, never raise it.
func (c *cli) lowerLevel(to level) func(context.Context, *session, []string) string {
	return func(_ context.Context, s *session, args []string) string {
		if len(args) > 0 {
			return errorf("'%s' takes no argument.", to)
		}
		if to > s.level {
			return "Permission denied\n"
		}
		s.level = to
		return ""
	}
}

func (c *cli) showLevel(_ context.Context, s *session, args []string) string {
	if len(args) > 0 {
		return errorf("'show cli level' takes no argument.")
	}
	return s.level.String() + "\n"
}

// maxCLITimeout bounds "set timeout cli" (HAProxy caps it at 24 days).
const maxCLITimeout = 24 * 24 * time.Hour

func (c *cli) setTimeout(_ context.Context, s *session, args []string) string {
	if len(args) != 1 {
		return errorf("Expects an integer value: 'set timeout cli <seconds>'.")
	}
	n, err := parseInt(args[0])
	if err != nil || n <= 0 || time.Duration(n) > maxCLITimeout/time.Second {
		return errorf("Invalid timeout value: expected seconds from 1 to %d.", int64(maxCLITimeout/time.Second))
	}
	s.timeout = time.Duration(n) * time.Second
	return ""
}
