package runtimeapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
)

// serverStateHeader is the column line of HAProxy 2.6's "show servers
// state" (format version 1), which is also the server-state-file format.
const serverStateHeader = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state " +
	"srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result " +
	"srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id " +
	"srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr " +
	"srv_agent_port"

// Field counts of a version 1 line: HAProxy 1.8 wrote up to srv_port (19),
// 2.0 added srvrecord, 2.1 the ssl, check and agent columns (25).
const (
	serverStateMinFields = 19
	serverStateMaxFields = 25
)

// Server operational states (srv_op_state), HAProxy's SRV_ST_*.
const (
	OpStopped  = 0
	OpStarting = 1
	OpRunning  = 2
	OpStopping = 3
)

// Server administrative state bits (srv_admin_state), HAProxy's SRV_ADMF_*.
const (
	AdminForcedMaint    = 0x01 // set from the runtime API or a state file
	AdminInheritedMaint = 0x02 // from a tracked server
	AdminConfigMaint    = 0x04 // "disabled" in the configuration
	AdminForcedDrain    = 0x08
	AdminInheritedDrain = 0x10
	AdminResolveMaint   = 0x20 // address resolution failed
	AdminFQDNMaint      = 0x40 // FQDN set from the runtime API
)

// Check state bits (srv_check_state, srv_agent_state), HAProxy's CHK_ST_*.
const (
	CheckInProgress = 0x01
	CheckConfigured = 0x02
	CheckEnabled    = 0x04
	CheckPaused     = 0x08
	CheckAgent      = 0x10
)

// SavedServer is one line of "show servers state" and of a server state
// file. "-" in a text column reads as "".
type SavedServer struct {
	BackendID       int
	BackendName     string
	ServerID        int
	ServerName      string
	Addr            string // IP address, "" when none
	OpState         int    // OpStopped, OpStarting, OpRunning or OpStopping
	AdminState      int    // Admin* bits
	UserWeight      int    // current weight
	InitialWeight   int    // configured weight
	SinceLastChange time.Duration
	CheckStatus     int // HAProxy's HCHK_STATUS_* number
	CheckResult     int // HAProxy's CHK_RES_* number
	CheckHealth     int
	CheckState      int // Check* bits
	AgentState      int // Check* bits
	BackendForcedID bool
	ServerForcedID  bool
	FQDN            string
	Port            int
	SRVRecord       string
	UseSSL          bool
	CheckPort       int
	CheckAddr       string
	AgentAddr       string
	AgentPort       int
}

// Admin is the administrative state the saved bits mean to Sluice:
// maintenance for any maintenance bit but resolution, else drain for any
// drain bit.
func (s SavedServer) Admin() backend.Admin {
	switch {
	// Resolution maintenance is DNS's to lift, not a state to restore.
	case s.AdminState&(AdminForcedMaint|AdminInheritedMaint|AdminConfigMaint|AdminFQDNMaint) != 0:
		return backend.Maint
	case s.AdminState&(AdminForcedDrain|AdminInheritedDrain) != 0:
		return backend.Drain
	}
	return backend.Ready
}

// Health is the operational state the saved line means to Sluice.
func (s SavedServer) Health() backend.Health {
	switch s.OpState {
	case OpStopped:
		return backend.Down
	case OpStopping:
		return backend.Stopping
	}
	return backend.Up
}

// savedFromState describes a live server the way HAProxy's dump does.
func savedFromState(pv *proxyView, sv *serverView, now time.Time) SavedServer {
	st, sc := sv.state, sv.cfg
	s := SavedServer{
		BackendID:     pv.cfg.ID,
		BackendName:   pv.cfg.Name,
		ServerID:      sc.ID,
		ServerName:    sc.Name,
		UserWeight:    st.Weight,
		InitialWeight: sc.Weight,
		CheckStatus:   checkStatusNum(st.CheckStatus),
		CheckResult:   checkResult(st.CheckStatus),
		CheckHealth:   st.CheckHealth,
		Port:          st.Addr.Port,
	}
	if !st.LastChange.IsZero() {
		s.SinceLastChange = time.Duration(seconds(now, st.LastChange)) * time.Second
	}
	if st.Addr.Family == addr.TCP {
		if ip := net.ParseIP(st.Addr.Host); ip != nil {
			s.Addr = ip.String()
		} else if st.Addr.Host != "" {
			s.FQDN = st.Addr.Host
		}
	}
	if sc.Addr.Family == addr.TCP && net.ParseIP(sc.Addr.Host) == nil && sc.Addr.Host != "" {
		s.FQDN = sc.Addr.Host // a configured name stays the server's FQDN once resolved
	}
	switch {
	case st.Admin == backend.Maint || st.ProcessDown || st.AgentDown || st.Health == backend.Down:
		s.OpState = OpStopped
	case st.Health == backend.Stopping:
		s.OpState = OpStopping
	default:
		s.OpState = OpRunning
	}
	switch st.Admin {
	case backend.Maint:
		s.AdminState = AdminForcedMaint
		if sc.Disabled {
			s.AdminState |= AdminConfigMaint
		}
	case backend.Drain:
		s.AdminState = AdminForcedDrain
	}
	if st.Unresolved {
		s.AdminState |= AdminResolveMaint
		s.OpState = OpStopped
		s.Addr = "" // the name has no address yet
	}
	if sc.FQDN != "" {
		s.FQDN = sc.FQDN
	}
	if sc.Check {
		s.CheckState = CheckConfigured | CheckEnabled
		if st.Admin == backend.Maint {
			s.CheckState |= CheckPaused
		}
	}
	return s
}

// writeServerState prints the version line, the header and one line per
// server, as "show servers state" does.
func writeServerState(b *strings.Builder, servers []SavedServer) {
	b.WriteString("1\n")
	b.WriteString(serverStateHeader)
	b.WriteByte('\n')
	for _, s := range servers {
		fmt.Fprintf(b, "%d %s %d %s %s %d %d %d %d %d %d %d %d %d %d %d %d %s %d %s %d %d %s %s %d\n",
			s.BackendID, dash(s.BackendName), s.ServerID, dash(s.ServerName), dash(s.Addr),
			s.OpState, s.AdminState, s.UserWeight, s.InitialWeight,
			int64(s.SinceLastChange/time.Second), s.CheckStatus, s.CheckResult, s.CheckHealth,
			s.CheckState, s.AgentState, boolInt(s.BackendForcedID), boolInt(s.ServerForcedID),
			dash(s.FQDN), s.Port, dash(s.SRVRecord), boolInt(s.UseSSL), s.CheckPort,
			dash(s.CheckAddr), dash(s.AgentAddr), s.AgentPort)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func undash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxStateLine bounds one line of a server state file; HAProxy's lines
// are well under 1 KiB.
const maxStateLine = 64 << 10

// ParseServerState reads the format "show servers state" prints and
// "server-state-file" holds: a version line ("1"), then lines of 19 to 25
// space-separated fields. Lines starting with '#' and empty lines are
// skipped. An empty input gives no servers and no error, as HAProxy treats
// a missing state.
func ParseServerState(r io.Reader) ([]SavedServer, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxStateLine)
	var out []SavedServer
	version := false
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !version {
			if line != "1" {
				return nil, fmt.Errorf("server state line %d: unsupported format version %q (expected 1)", n, truncate(line, 40))
			}
			version = true
			continue
		}
		s, err := parseSavedServer(strings.Fields(line))
		if err != nil {
			return nil, fmt.Errorf("server state line %d: %w", n, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("server state line %d: longer than %d bytes", n+1, maxStateLine)
		}
		return nil, fmt.Errorf("read server state: %w", err)
	}
	return out, nil
}

func parseSavedServer(f []string) (SavedServer, error) {
	var s SavedServer
	if len(f) < serverStateMinFields || len(f) > serverStateMaxFields {
		return s, fmt.Errorf("%d fields, expected %d to %d", len(f), serverStateMinFields, serverStateMaxFields)
	}
	// Pad the optional trailing columns with their "none" values.
	defaults := []string{"-", "0", "0", "-", "-", "0"}
	f = append(f, defaults[len(f)-serverStateMinFields:]...)

	p := fieldParser{fields: f}
	s.BackendID = p.int(0, "be_id", 0, 1<<31-1)
	s.BackendName = p.name(1, "be_name")
	s.ServerID = p.int(2, "srv_id", 0, 1<<31-1)
	s.ServerName = p.name(3, "srv_name")
	s.Addr = undash(f[4])
	if s.Addr != "" && net.ParseIP(s.Addr) == nil {
		p.fail(fmt.Errorf("srv_addr %q is not an IP address", truncate(s.Addr, 60)))
	}
	s.OpState = p.int(5, "srv_op_state", OpStopped, OpStopping)
	s.AdminState = p.int(6, "srv_admin_state", 0, 0xff)
	s.UserWeight = p.int(7, "srv_uweight", 0, backend.MaxWeight)
	s.InitialWeight = p.int(8, "srv_iweight", 0, backend.MaxWeight)
	s.SinceLastChange = time.Duration(p.int(9, "srv_time_since_last_change", 0, 1<<31-1)) * time.Second
	s.CheckStatus = p.int(10, "srv_check_status", 0, len(checkStatuses())-1)
	s.CheckResult = p.int(11, "srv_check_result", 0, 4)
	s.CheckHealth = p.int(12, "srv_check_health", 0, 1<<31-1)
	s.CheckState = p.int(13, "srv_check_state", 0, 0xff)
	s.AgentState = p.int(14, "srv_agent_state", 0, 0xff)
	s.BackendForcedID = p.int(15, "bk_f_forced_id", 0, 1) == 1
	s.ServerForcedID = p.int(16, "srv_f_forced_id", 0, 1) == 1
	s.FQDN = undash(f[17])
	s.Port = p.int(18, "srv_port", 0, 65535)
	s.SRVRecord = undash(f[19])
	s.UseSSL = p.int(20, "srv_use_ssl", 0, 1) == 1
	s.CheckPort = p.int(21, "srv_check_port", 0, 65535)
	s.CheckAddr = undash(f[22])
	s.AgentAddr = undash(f[23])
	s.AgentPort = p.int(24, "srv_agent_port", 0, 65535)
	return s, p.err
}

// fieldParser reads numbered fields and keeps the first error.
type fieldParser struct {
	fields []string
	err    error
}

func (p *fieldParser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *fieldParser) int(i int, name string, lo, hi int) int {
	v, err := strconv.Atoi(p.fields[i])
	if err != nil || v < lo || v > hi {
		p.fail(fmt.Errorf("%s %q is not a number from %d to %d", name, truncate(p.fields[i], 40), lo, hi))
		return 0
	}
	return v
}

func (p *fieldParser) name(i int, what string) string {
	if p.fields[i] == "-" {
		p.fail(fmt.Errorf("%s is missing", what))
		return ""
	}
	return p.fields[i]
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
