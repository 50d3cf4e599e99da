package appliance

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier tells systemd (Type=notify) where the master is: READY=1 once
// every child runs its configuration, RELOADING=1 while a reload runs and
// READY=1 again after it, STOPPING=1 when it stops. Without NOTIFY_SOCKET
// (not started by systemd) it does nothing.
type notifier struct {
	log *slog.Logger
	// ready is true once READY=1 was sent for the start.
	ready bool
}

func (n *notifier) send(states ...string) {
	sent, err := daemon.SdNotify(false, strings.Join(states, "\n"))
	if err != nil {
		n.log.Warn("sd_notify", "err", err)
	} else if sent {
		n.log.Debug("sd_notify", "state", strings.Join(states, " "))
	}
}

// started sends READY=1 the first time every child is ready.
func (n *notifier) started(m *Master) {
	if n.ready {
		return
	}
	for num := 1; num <= m.cfg.Global.NbProc; num++ {
		if c := m.children[num]; c == nil || !c.ready {
			return
		}
	}
	n.ready = true
	n.send(daemon.SdNotifyReady, fmt.Sprintf("STATUS=running %d processes (%s)", m.cfg.Global.NbProc, m.src.describe()), fmt.Sprintf("MAINPID=%d", unix.Getpid()))
}

// reloading sends RELOADING=1 with the monotonic time systemd (253 and
// later) wants with it to tell this reload from an earlier one.
func (n *notifier) reloading() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		n.send(daemon.SdNotifyReloading)
		return
	}
	n.send(daemon.SdNotifyReloading, fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000))
}

// reloaded sends READY=1 after a reload, with its outcome as the status
// `systemctl status` shows.
func (n *notifier) reloaded(err error) {
	status := "STATUS=configuration reloaded"
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		status = "STATUS=reload refused, previous configuration kept: " + first
	}
	n.send(daemon.SdNotifyReady, status)
}

func (n *notifier) stopping() {
	n.send(daemon.SdNotifyStopping)
}
