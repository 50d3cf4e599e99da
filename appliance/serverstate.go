package appliance

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/runtimeapi"
)

// loadServerState reads the global server-state-file, as HAProxy does at
// start for the backends with "load-server-state-from-file global", and
// keeps what it says as run-time changes: so the operational state saved
// with "show servers state" survives a full restart. A missing file is
// not an error (the first start); an unreadable one is.
func (m *Master) loadServerState(cfg *config.Config) error {
	path := cfg.Global.ServerStateFile
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		m.log.Info("no server state file yet", "path", path)
		return nil
	}
	if err != nil {
		return fmt.Errorf("server-state-file: %w", err)
	}
	defer f.Close()
	saved, err := runtimeapi.ParseServerState(f)
	if err != nil {
		return fmt.Errorf("server-state-file %s: %w", path, err)
	}
	applied := 0
	for _, s := range saved {
		for _, c := range stateChanges(cfg, s) {
			m.changes.record(c)
			applied++
		}
	}
	m.log.Info("server state loaded", "path", path, "servers", len(saved), "changes", applied)
	return nil
}

// stateChanges turns one saved server into the changes that restore it:
// administrative state, and the run-time weight and address when the
// configuration's own values are those the state was saved against.
func stateChanges(cfg *config.Config, s runtimeapi.SavedServer) []runtimeapi.Change {
	p := cfg.Proxy(s.BackendName)
	if p == nil || !p.Backend || !p.LoadServerState {
		return nil
	}
	var sc *config.Server
	for _, c := range p.Servers {
		if c.ID == s.ServerID && c.Name == s.ServerName {
			sc = c
		}
	}
	if sc == nil {
		for _, c := range p.Servers {
			if c.Name == s.ServerName {
				sc = c
			}
		}
	}
	if sc == nil {
		return nil
	}
	target := runtimeapi.Change{Backend: p.Name, Server: sc.Name}
	var out []runtimeapi.Change
	if admin := s.Admin(); admin != backend.Ready || sc.Disabled {
		c := target
		c.Admin = &admin
		out = append(out, c)
	}
	if s.InitialWeight == sc.Weight && s.UserWeight != sc.Weight {
		c := target
		w := s.UserWeight
		c.Weight = &w
		out = append(out, c)
	}
	if ip := net.ParseIP(s.Addr); ip != nil && sc.FQDN != "" && slices.Contains(sc.InitAddr, "last") {
		// init-addr last: a server resolved from DNS starts at the address
		// it had, until DNS answers again.
		port := s.Port
		if port == 0 {
			port = sc.Addr.Port
		}
		c := target
		c.Resolved = &runtimeapi.Resolution{Present: true, Addr: net.JoinHostPort(ip.String(), strconv.Itoa(port))}
		return append(out, c)
	}
	if ip := net.ParseIP(s.Addr); ip != nil && sc.Addr.Family == addr.TCP && net.ParseIP(sc.Addr.Host) != nil && s.Addr != sc.Addr.Host {
		port := s.Port
		if port == 0 {
			port = sc.Addr.Port
		}
		c := target
		a := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		c.Addr = &a
		out = append(out, c)
	}
	return out
}
