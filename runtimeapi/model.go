// Package runtimeapi answers HAProxy's runtime API commands (stats socket)
// and serves the stats page and Prometheus metrics. It reads what every
// process reports and aggregates it; changes go to the master, which
// applies them in every process and keeps them across reloads.
package runtimeapi

import (
	"context"
	"time"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

// Appliance is what the runtime API reads and steers. The master
// implements it.
type Appliance interface {
	// Config is the configuration running now.
	Config() *config.Config
	// Info describes the master and its processes.
	Info() Info
	// Snapshots asks every live child process for its counters and state.
	Snapshots(ctx context.Context) ([]Snapshot, error)
	// Resolvers reports the DNS resolvers' counters, per section and
	// nameserver, in configuration order.
	Resolvers() []ResolverStats
	// Apply makes a change in every process and keeps it across reloads
	// and child restarts. The runtime API validates the change against
	// Config first.
	Apply(ctx context.Context, c Change) error

	// CertFiles lists the certificate files of the ssl binds, in
	// configuration order, and the version staged by SetCert, if any.
	CertFiles() []CertFile
	// SetCert stages a new version of a certificate file, as HAProxy's
	// transactions: a PEM bundle for NAME, a base64 OCSP response for
	// NAME.ocsp. One transaction at a time; created is false when it
	// updates the ongoing one.
	SetCert(name, payload string) (created bool, err error)
	// CommitCert applies the staged version in every process: the next
	// handshakes use it.
	CommitCert(ctx context.Context, name string) error
	// AbortCert drops the staged version.
	AbortCert(name string) error
	// SetOCSPResponse staples a DER OCSP response to the certificate it
	// is about, in every process.
	SetOCSPResponse(ctx context.Context, der []byte) error
	// ECH lists the Encrypted Client Hello configurations in use.
	ECH() []ECHInfo
}

// Info is about the master and its children, for "show info" and
// "show proc".
type Info struct {
	Version     string
	ReleaseDate string // "show info" Release_date, e.g. "2025/01/31"; may be empty
	PID         int
	Started     time.Time
	MaxConn     int // global maxconn as applied
	MaxSock     int // descriptor limit
	Reloads     int
	Processes   []ProcessInfo
	Generation  int // configuration generation, counts reloads from 1
}

// ProcessInfo is one child process.
type ProcessInfo struct {
	Num        int // process number, from 1
	PID        int
	Role       string // "dispatcher", "worker" or "worker+dispatcher", from the binds it serves
	Generation int    // process generation: starts at 1, grows when processes are replaced for nbproc or binary changes
	Started    time.Time
	Restarts   int
	Alive      bool
}

// Snapshot is what one child process reports.
type Snapshot struct {
	Process  int
	PID      int
	Proxies  []ProxyStats
	Sessions []Session
}

// ProxyStats are one proxy's numbers in one process. A listen section has
// both Frontend and Backend parts.
type ProxyStats struct {
	Name     string
	ID       int
	Frontend *FrontendStats    // nil when the proxy is not a frontend or does not run here
	Backend  *backend.Counters // nil when it is not a backend or does not run here
	Servers  []ServerStats     // in id order, with the backend part
}

// FrontendStats are a frontend's counters.
type FrontendStats struct {
	Cur         int
	Max         int
	Limit       int // maxconn, 0 = none
	Total       int64
	BytesIn     int64
	BytesOut    int64
	Denied      int64
	Errors      int64 // bad PROXY headers, failed TLS handshakes
	HTTPReqs    int64
	HTTP1xx     int64
	HTTP2xx     int64
	HTTP3xx     int64
	HTTP4xx     int64
	HTTP5xx     int64
	HTTPOther   int64
	LastSession time.Time
}

// ServerStats are one server's live state and counters in one process.
type ServerStats struct {
	Name  string
	ID    int
	State backend.State
}

// Session is one established connection, for "show sess".
type Session struct {
	ID       uint64
	Frontend string
	Backend  string
	Server   string
	Source   string // client address
	Age      time.Duration
	Idle     time.Duration
}

// Change is one operational change, applied to every process. Exactly one
// of the pointer fields is set (besides the names).
type Change struct {
	Backend string // backend name, for server changes
	Server  string // server name, for server changes
	// Frontend names the frontend for SetMaxConnFrontend.
	Frontend string

	Admin           *backend.Admin
	Health          *backend.Health
	AgentUp         *bool
	Weight          *int    // absolute weight, already computed from "N%"
	Addr            *string // "IP" or "IP:PORT", validated
	MaxConnServer   *int
	MaxConnFrontend *int
	MaxConnGlobal   *int
	// FQDN is "set server B/S fqdn NAME": the server is resolved from that
	// name from now on.
	FQDN *string `json:"fqdn,omitempty"`

	// Resolved is what DNS says a server's address is now: the master
	// resolves every name once and shares the outcome with every process.
	Resolved *Resolution `json:"resolved,omitempty"`

	// Check is a health-check result: the master runs every check once and
	// shares what it finds with every process.
	Check *backend.CheckState `json:"check,omitempty"`

	ShutdownSessions bool // close the server's established connections
	ClearCounters    bool // "clear counters": max values and rates
	ClearCountersAll bool // "clear counters all": every counter
}

// Resolution is a server's address as DNS gives it.
type Resolution struct {
	Present bool   `json:"present"`          // false: DNS has no record for it (maintenance)
	Addr    string `json:"addr,omitempty"`   // "IP:PORT"
	Weight  int    `json:"weight,omitempty"` // from an SRV record; 0 keeps the weight
}

// ResolverStats are the counters of one resolvers section.
type ResolverStats struct {
	Section     string
	Nameservers []NameserverStats
}

// NameserverStats are HAProxy's "show resolvers" counters of a nameserver.
type NameserverStats struct {
	Name                                             string
	Sent, SndError, Valid, Update, Cname, CnameError uint64
	AnyErr, Nx, Timeout, Refused, Other, Invalid     uint64
	TooBig, Truncated, Outdated                      uint64
}
