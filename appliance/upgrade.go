package appliance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/control"
	"github.com/sluicelb/sluice/runtimeapi"
)

// UpgradeEnv carries, to a master re-executed for a binary upgrade, the
// descriptor of what the previous image handed over.
const UpgradeEnv = "SLUICE_UPGRADE"

// handoff is what a master passes to its own re-executed image: the
// listening sockets and the children's control sockets stay open across
// exec, the rest is state.
type handoff struct {
	Sockets    map[string]int      `json:"sockets"` // listener key -> descriptor
	Children   []handoffChild      `json:"children"`
	Generation int                 `json:"generation"`
	Reloads    int                 `json:"reloads"`
	Started    time.Time           `json:"started"`
	Changes    []runtimeapi.Change `json:"changes,omitempty"`
	Keys       keyState            `json:"keys"`
}

type handoffChild struct {
	Num        int       `json:"num"`
	PID        int       `json:"pid"`
	CtrlFD     int       `json:"ctrl_fd"`
	Generation int       `json:"generation"`
	Restarts   int       `json:"restarts"`
	Started    time.Time `json:"started"`
	Retired    bool      `json:"retired"`
	Keys       []string  `json:"keys"`
}

// reexec replaces the master's program by the binary now on disk, keeping
// its pid, its listening sockets and its children. It returns only if exec
// failed, with the master still running as before.
func (m *Master) reexec() error {
	h := handoff{
		Sockets:    make(map[string]int),
		Generation: m.generation,
		Reloads:    m.reloads,
		Started:    m.started,
		Changes:    m.changes.list(),
		Keys:       m.keys,
	}
	var inherit []int
	for key, f := range m.sockets.files {
		fd, err := rawFD(f)
		if err != nil {
			return fmt.Errorf("upgrade: socket %s: %w", key, err)
		}
		h.Sockets[key] = fd
		inherit = append(inherit, fd)
	}
	var dups []*os.File
	defer func() {
		for _, f := range dups {
			f.Close()
		}
	}()
	for _, c := range m.all() {
		if c.ctrl == nil || !c.alive() {
			continue
		}
		f, err := c.ctrl.File()
		if err != nil {
			return fmt.Errorf("upgrade: control socket of process %d: %w", c.num, err)
		}
		dups = append(dups, f)
		fd, err := rawFD(f)
		if err != nil {
			return fmt.Errorf("upgrade: control socket of process %d: %w", c.num, err)
		}
		hc := handoffChild{
			Num: c.num, PID: c.cmd.Process.Pid, CtrlFD: fd, Generation: c.generation,
			Restarts: c.restarts, Started: c.started, Retired: m.retired[c],
		}
		for k := range c.keys {
			hc.Keys = append(hc.Keys, k)
		}
		h.Children = append(h.Children, hc)
		inherit = append(inherit, hc.CtrlFD)
	}
	data, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	mfd, err := unix.MemfdCreate("sluice-upgrade", 0) // no CLOEXEC: the new image reads it
	if err != nil {
		return fmt.Errorf("upgrade: memfd: %w", err)
	}
	state := os.NewFile(uintptr(mfd), "sluice-upgrade")
	defer state.Close()
	if _, err := state.Write(data); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	for _, fd := range inherit {
		if err := setCloexec(fd, false); err != nil {
			return fmt.Errorf("upgrade: keep descriptor %d: %w", fd, err)
		}
	}
	env := append(withoutEnv(os.Environ(), UpgradeEnv), UpgradeEnv+"="+strconv.Itoa(mfd))
	m.log.Info("re-executing the master for the new binary", "binary", m.exe.path)
	err = syscall.Exec(m.exe.path, append([]string{m.exe.path}, os.Args[1:]...), env)
	for _, fd := range inherit {
		setCloexec(fd, true)
	}
	return fmt.Errorf("upgrade: exec %s: %w", m.exe.path, err)
}

// rawFD is f's descriptor number. Unlike f.Fd, it leaves the socket in
// non-blocking mode, which the children share with the master's copy.
func rawFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd int
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return 0, err
	}
	return fd, nil
}

func setCloexec(fd int, on bool) error {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.FD_CLOEXEC
	} else {
		flags &^= unix.FD_CLOEXEC
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags)
	return err
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// takeHandoff reads what a previous image of this master handed over, if
// this process is a re-executed master, and removes the variable so that
// children do not see it.
func takeHandoff() (*handoff, error) {
	v, ok := os.LookupEnv(UpgradeEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(UpgradeEnv)
	fd, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", UpgradeEnv, v, err)
	}
	f := os.NewFile(uintptr(fd), "sluice-upgrade")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("upgrade state: %w", err)
	}
	var h handoff
	if err := json.NewDecoder(f).Decode(&h); err != nil {
		return nil, fmt.Errorf("upgrade state: %w", err)
	}
	return &h, nil
}

// adopt takes over the sockets and children of the previous image.
func (m *Master) adopt(h *handoff) error {
	for key, fd := range h.Sockets {
		f := os.NewFile(uintptr(fd), key)
		setCloexec(fd, true)
		m.sockets.files[key] = f
	}
	m.generation, m.reloads, m.started = h.Generation, h.Reloads, h.Started
	m.keys = h.Keys
	for _, c := range h.Changes {
		m.changes.record(c)
	}
	for _, hc := range h.Children {
		f := os.NewFile(uintptr(hc.CtrlFD), "control")
		ctrl, err := control.FromFile(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("adopt process %d: %w", hc.Num, err)
		}
		proc, err := os.FindProcess(hc.PID)
		if err != nil {
			return fmt.Errorf("adopt process %d: %w", hc.Num, err)
		}
		c := &child{
			num: hc.Num, cmd: &exec.Cmd{Process: proc}, ctrl: ctrl, started: hc.Started,
			ready: true, restarts: hc.Restarts, generation: hc.Generation,
			exited: make(chan struct{}), keys: make(map[string]bool),
		}
		for _, k := range hc.Keys {
			c.keys[k] = true
		}
		go func() {
			proc.Wait() // still our child: exec kept the pid
			close(c.exited)
		}()
		if hc.Retired {
			m.retired[c] = true
		} else {
			m.children[c.num] = c
		}
	}
	m.log.Info("master re-executed for the new binary", "processes", len(m.children), "draining", len(m.retired), "generation", m.generation)
	return nil
}
