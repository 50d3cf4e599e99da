package appliance

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// The master CLI is HAProxy's master socket (-S): it reloads and lists the
// processes. Statistics and server state are on the stats sockets.

const cliHelp = `The following commands are valid at this level:
  help           : this message
  prompt         : toggle interactive mode with prompt
  quit           : disconnect
  reload         : reload the configuration files; answers Success=1 or Success=0 with the error
  show proc      : list the processes: master, current and old workers
`

// ServeCLI listens on the master CLI socket at path (a unix socket file,
// mode 0600) and answers until ctx ends.
func (m *Master) ServeCLI(ctx context.Context, path string) error {
	os.Remove(path) // a stale socket from a previous run
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("master CLI: listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("master CLI: chmod %s: %w", path, err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serveCLIConn(ctx, c)
		}
	}()
	return nil
}

// cliIdle closes master CLI connections that stay silent.
const cliIdle = 5 * time.Minute

func (m *Master) serveCLIConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	interactive := false
	for {
		if interactive {
			io.WriteString(c, "master> ")
		}
		c.SetReadDeadline(time.Now().Add(cliIdle))
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return
		}
		for _, cmd := range strings.Split(strings.TrimSpace(line), ";") {
			cmd = strings.Join(strings.Fields(cmd), " ")
			switch cmd {
			case "":
				continue
			case "quit":
				return
			case "prompt":
				interactive = !interactive
				continue
			}
			io.WriteString(c, m.cliCommand(ctx, cmd))
		}
		if !interactive {
			return
		}
	}
}

// cliCommand runs one master CLI command and returns its answer.
func (m *Master) cliCommand(ctx context.Context, cmd string) string {
	switch cmd {
	case "help":
		return cliHelp
	case "reload":
		var err error
		if cerr := m.call(ctx, func() { err = m.reloadLogged(ctx) }); cerr != nil {
			err = cerr
		}
		if err != nil {
			return "Success=0\n--\n" + err.Error() + "\n\n"
		}
		return "Success=1\n--\n\n"
	case "show proc":
		return m.showProc()
	}
	return fmt.Sprintf("Unknown command: '%s'\n%s", cmd, cliHelp)
}

// reloadLogged reloads and logs the outcome.
func (m *Master) reloadLogged(ctx context.Context) error {
	m.notify.reloading()
	err := m.reload(ctx, m.restart)
	if err != nil {
		m.log.Error("reload failed, configuration unchanged", "err", err.Error())
	}
	m.notify.reloaded(err)
	return err
}

// showProc lists the processes in the layout of HAProxy's master CLI, with
// Sluice's process number, generation, role and restarts added.
func (m *Master) showProc() string {
	var b strings.Builder
	row := func(pid int, typ, reloads string, up time.Duration, num, gen int, role string, restarts int) {
		fmt.Fprintf(&b, "%-15d %-15s %-15s %-15s %-15s %-9d %-12d %-18s %d\n",
			pid, typ, reloads, uptime(up), Version, num, gen, role, restarts)
	}
	m.call(context.Background(), func() {
		fmt.Fprintf(&b, "%-15s %-15s %-15s %-15s %-15s %-9s %-12s %-18s %s\n",
			"#<PID>", "<type>", "<reloads>", "<uptime>", "<version>", "<process>", "<generation>", "<role>", "<restarts>")
		row(os.Getpid(), "master", fmt.Sprintf("%d", m.reloads), time.Since(m.started), 0, m.generation, "master", 0)
		b.WriteString("# workers\n")
		for n := 1; n <= m.cfg.Global.NbProc; n++ {
			if c := m.children[n]; c != nil && c.alive() {
				row(c.cmd.Process.Pid, "worker", "0", time.Since(c.started), n, c.generation, role(m.cfg, n), c.restarts)
			}
		}
		b.WriteString("# old workers\n")
		for c := range m.retired {
			if c.alive() {
				row(c.cmd.Process.Pid, "worker", "1", time.Since(c.started), c.num, c.generation, "draining", c.restarts)
			}
		}
	})
	b.WriteString("\n")
	return b.String()
}

// uptime formats a duration as HAProxy does: 0d00h02m07s.
func uptime(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%dd%02dh%02dm%02ds", s/86400, s/3600%24, s/60%60, s%60)
}
