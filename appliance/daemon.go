package appliance

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// daemonEnv marks the copy of the master that runs in the background.
const daemonEnv = "SLUICE_DAEMONIZED"

// Daemonize implements global "daemon": the first call starts a copy of this
// program with the same arguments in a new session, detached from the
// terminal, and reports true (the caller exits); in that copy it reports false.
func Daemonize() (parent bool, err error) {
	if os.Getenv(daemonEnv) != "" {
		os.Unsetenv(daemonEnv)
		return false, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("daemon: find own binary: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("daemon: %w", err)
	}
	defer null.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("daemon: start: %w", err)
	}
	return true, nil
}
