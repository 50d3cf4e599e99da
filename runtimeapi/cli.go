package runtimeapi

import (
	"context"
	"fmt"
	"io"
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
	words []string // name split into words, set by newCLI
}

// cli runs the commands of one stats socket. Its connections share it.
type cli struct {
	app      Appliance
	log      *slog.Logger
	now      func() time.Time
	commands []command
	maxWords int // the most words a command name has
}

func newCLI(app Appliance, log *slog.Logger) *cli {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &cli{app: app, log: log, now: time.Now}
	c.commands = []command{
		{name: "help", args: "[<command>]", help: "list matching or all commands", level: levelUser, run: c.help},
		{name: "prompt", args: "", help: "toggle interactive mode with prompt", level: levelUser, run: c.togglePrompt},
		{name: "quit", args: "", help: "disconnect", level: levelUser, run: c.quit},
		{name: "operator", args: "", help: "lower the level of the current CLI session to operator", level: levelUser, run: c.lowerLevel(levelOperator)},
		{name: "user", args: "", help: "lower the level of the current CLI session to user", level: levelUser, run: c.lowerLevel(levelUser)},
		{name: "show cli level", args: "", help: "display the level of the current CLI session", level: levelUser, run: c.showLevel},
		{name: "set timeout cli", args: "<delay>", help: "change this session's idle timeout (seconds)", level: levelUser, run: c.setTimeout},
		{name: "show info", args: "[typed]", help: "report information about the running processes", level: levelUser, run: c.showInfo},
		{name: "show stat", args: "[{<iid>|<proxy>} <type> <sid>] [typed] [up|no-maint]", help: "report counters for each proxy and server", level: levelUser, run: c.showStat},
		{name: "show servers state", args: "[<backend>]", help: "dump volatile server information (all or for a single backend)", level: levelUser, run: c.showServersState},
		{name: "show backend", args: "", help: "list backends", level: levelUser, run: c.showBackend},
		{name: "show resolvers", args: "[<resolvers section id>]", help: "dump counters from all resolvers section and associated name servers", level: levelUser, run: c.showResolvers},
		{name: "show proc", args: "", help: "show the master and its child processes", level: levelUser, run: c.showProc},
		{name: "show sess", args: "", help: "list the established sessions of every process", level: levelOperator, run: c.showSess},
		{name: "get weight", args: "<bk>/<srv>", help: "report a server's current weight", level: levelUser, run: c.getWeight},
		{name: "set weight", args: "<bk>/<srv> (<weight>|<weight>%)", help: "change a server's weight (deprecated, use 'set server')", level: levelAdmin, run: c.setWeight},
		{name: "set server", args: "<bk>/<srv> [state|health|agent|weight|addr|fqdn] <value>", help: "change a server's state, weight, address or name (fqdn: operator; the rest: admin)", level: levelOperator, run: c.setServer},
		{name: "enable server", args: "<bk>/<srv>", help: "enable a disabled server (use 'set server' instead)", level: levelAdmin, run: c.enableServer(true)},
		{name: "disable server", args: "<bk>/<srv>", help: "disable a server for maintenance (use 'set server' instead)", level: levelAdmin, run: c.enableServer(false)},
		{name: "set maxconn frontend", args: "<frontend> <value>", help: "change a frontend's maxconn setting", level: levelAdmin, run: c.setMaxConnFrontend},
		{name: "set maxconn server", args: "<bk>/<srv> <value>", help: "change a server's maxconn setting", level: levelAdmin, run: c.setMaxConnServer},
		{name: "set maxconn global", args: "<value>", help: "change the per-process maxconn setting", level: levelAdmin, run: c.setMaxConnGlobal},
		{name: "shutdown sessions server", args: "<bk>/<srv>", help: "kill sessions on a server", level: levelAdmin, run: c.shutdownSessions},
		{name: "clear counters", args: "", help: "clear max statistics counters", level: levelOperator, run: c.clearCounters(false)},
		{name: "clear counters all", args: "", help: "clear all statistics counters", level: levelAdmin, run: c.clearCounters(true)},
	}
	c.commands = append(c.commands, c.sslCommands()...)
	for i := range c.commands {
		c.commands[i].words = strings.Fields(c.commands[i].name)
		c.maxWords = max(c.maxWords, len(c.commands[i].words))
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

// payloadMark ends a command line whose last command takes a payload: the
// lines that follow, up to an empty line, as HAProxy's CLI.
const payloadMark = "<<"

// cutPayload splits a line read with its payload (see readCommand) into
// the command line and the payload, which becomes the last command's last
// argument.
func cutPayload(line string) (cmd, payload string, ok bool) {
	first, rest, multi := strings.Cut(line, "\n")
	trimmed := strings.TrimRight(first, " \t")
	if !strings.HasSuffix(trimmed, payloadMark) {
		return line, "", false
	}
	cmd = strings.TrimSuffix(trimmed, payloadMark)
	if !multi {
		return cmd, "", true
	}
	return cmd, rest, true
}

// execLine runs the commands of one input line and returns the answer;
// see runLine.
func (c *cli) execLine(ctx context.Context, s *session, line string) string {
	var out strings.Builder
	c.runLine(ctx, s, line, &out)
	return out.String()
}

// runLine runs the commands of one input line, writing each answer as
// soon as it is ready so that a long ';' chain is never held in memory.
// Each answer is followed by an empty line, or by the prompt in
// interactive mode, as HAProxy does; each command gets the session's
// timeout. "quit" ends at once.
func (c *cli) runLine(ctx context.Context, s *session, line string, w io.Writer) error {
	line, payload, hasPayload := cutPayload(line)
	cmds := splitLine(line)
	if len(cmds) == 0 {
		cmds = [][]string{nil} // an empty line still gets its terminator
	}
	if hasPayload {
		last := len(cmds) - 1
		cmds[last] = append(cmds[last], payload)
	}
	for _, args := range cmds {
		timeout := s.timeout
		if timeout <= 0 {
			timeout = defaultTimeout
		}
		cmdCtx, cancel := context.WithTimeout(ctx, timeout)
		text := c.exec(cmdCtx, s, args)
		cancel()
		if s.quit {
			return nil
		}
		end := "\n"
		if s.prompt {
			end = "\n> "
		}
		if _, err := io.WriteString(w, noEmptyLines(text)+end); err != nil {
			return err
		}
	}
	return nil
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
		words := c.commands[i].words
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
	for n := min(len(args), c.maxWords); n > 0 && len(near) == 0; n-- {
		for _, cmd := range c.commands {
			words := cmd.words
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
