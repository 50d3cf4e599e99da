package config

import (
	"time"

	"github.com/sluicelb/sluice/addr"
)

// Config is the compiled, immutable configuration: defaults applied, ids
// assigned, addresses checked. The master builds it from the files and sends
// it to every child as JSON; children never read the files. Nothing may
// modify a Config after Load returns it.
type Config struct {
	Global    Global       `json:"global"`
	Proxies   []*Proxy     `json:"proxies"`   // frontends, backends and listens, in file order
	Resolvers []*Resolvers `json:"resolvers"` // resolvers sections, in file order
	Files     []string     `json:"files"`     // the files read, in order
	// Inactive lists the keywords used that parse but whose code has not
	// landed yet, with their positions; see NotActive.
	Inactive []Diagnostic `json:"inactive,omitempty"`
	// Caches are the cache sections, in file order.
	Caches []*Cache `json:"caches,omitempty"`
}

// Pos is where something was written, for messages.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// LogTarget is one "log" line: where log lines go.
type LogTarget struct {
	// Addr is a UDP syslog address (host:port, default port 514), a unix
	// datagram socket path (e.g. /dev/log) or "stdout"/"stderr".
	Addr     string `json:"addr"`
	Format   string `json:"format"`              // "rfc3164" (default), "rfc5424", "raw", "short"
	Facility string `json:"facility"`            // e.g. "local0"
	Level    string `json:"level"`               // max level, "" = all
	MinLevel string `json:"min_level,omitempty"` // more severe messages are capped to this level, "" = none
	MaxLen   int    `json:"max_len"`             // line length limit, default 1024
	Pos      Pos    `json:"pos"`
}

// StatsSocket is one "stats socket" line of global.
type StatsSocket struct {
	Addr  addr.Addr `json:"addr"`
	Mode  uint32    `json:"mode"`  // file mode for unix sockets, 0 = umask default
	Level string    `json:"level"` // "user", "operator" or "admin" (default "operator", as HAProxy)
	UID   int       `json:"uid"`   // -1 = unchanged
	GID   int       `json:"gid"`   // -1 = unchanged
	Pos   Pos       `json:"pos"`
}

// Global holds the global section.
type Global struct {
	// NbProc is the number of child processes (nbproc, or its synonym nbthread).
	NbProc int `json:"nbproc"`
	// CPUMap maps a process number (1-based) to the CPUs it is pinned to.
	CPUMap        map[int][]int `json:"cpu_map,omitempty"`
	MaxConn       int           `json:"maxconn"` // global maxconn; 0 = derived from the FD limit
	StatsSockets  []StatsSocket `json:"stats_sockets,omitempty"`
	StatsTimeout  time.Duration `json:"stats_timeout"` // default 10s
	Logs          []LogTarget   `json:"logs,omitempty"`
	HardStopAfter time.Duration `json:"hard_stop_after"` // 0 = wait forever
	// ServerStateFile is the global server-state-file path.
	ServerStateFile string `json:"server_state_file,omitempty"`
	MaxAccept       int    `json:"max_accept"` // tune.maxaccept, default 64
	BufSize         int    `json:"buf_size"`   // tune.bufsize, default 16384
	// MaxHdr is tune.http.maxhdr: the most header lines a request may
	// have (default 101, as HAProxy).
	MaxHdr  int    `json:"max_hdr"`
	User    string `json:"user,omitempty"`
	Group   string `json:"group,omitempty"`
	UID     int    `json:"uid"` // resolved from User or uid; -1 = unchanged
	GID     int    `json:"gid"` // resolved from Group or gid; -1 = unchanged
	Chroot  string `json:"chroot,omitempty"`
	PidFile string `json:"pid_file,omitempty"`
	Daemon  bool   `json:"daemon"`
	// NoStrictLimits is "no strict-limits": when the descriptor limit
	// cannot be raised for maxconn, lower maxconn with a warning instead of
	// refusing to start (HAProxy 2.6's strict-limits is on by default).
	NoStrictLimits bool `json:"no_strict_limits,omitempty"`
	// SSLDefaultBind and SSLDefaultServer are the ssl-default-bind-* and
	// ssl-default-server-* lists, already applied to binds and servers.
	SSLDefaultBind   SSLOptions `json:"ssl_default_bind"`
	SSLDefaultServer SSLOptions `json:"ssl_default_server"`
	// SSLServerVerify is ssl-server-verify: the verify default of ssl
	// servers ("required" when not set, as HAProxy).
	SSLServerVerify string `json:"ssl_server_verify,omitempty"`
	CrtBase         string `json:"crt_base,omitempty"`
	CABase          string `json:"ca_base,omitempty"`
	// ConfigSigningKeys are the config-signing-key lines: the public keys
	// whose signed bundles are the only configuration accepted.
	ConfigSigningKeys []SigningKey `json:"config_signing_keys,omitempty"`
}

// SigningKey is one config-signing-key line: a public key file (PREFIX.pub
// of `sluice bundle keygen`).
type SigningKey struct {
	Path string `json:"path"`
	Pos  Pos    `json:"pos"`
}

// Mode is a proxy's mode.
type Mode string

const (
	ModeTCP  Mode = "tcp"
	ModeHTTP Mode = "http"
)

// Balance is a load-balancing algorithm.
type Balance string

const (
	BalanceRoundRobin Balance = "roundrobin" // HAProxy's default
	BalanceLeastConn  Balance = "leastconn"
	BalanceSource     Balance = "source"
	BalanceFirst      Balance = "first"
)

// Timeouts of a proxy. Zero means "not set" (no timeout).
type Timeouts struct {
	Connect time.Duration `json:"connect"`
	Client  time.Duration `json:"client"`
	Server  time.Duration `json:"server"`
	Tunnel  time.Duration `json:"tunnel"`
	Check   time.Duration `json:"check"`
	Queue   time.Duration `json:"queue"`
	// HTTPRequest and HTTPKeepAlive are used in http mode.
	HTTPRequest   time.Duration `json:"http_request"`
	HTTPKeepAlive time.Duration `json:"http_keep_alive"`
}

// Proxy is a frontend, a backend or a listen section.
type Proxy struct {
	Name string `json:"name"`
	ID   int    `json:"id"` // assigned like HAProxy: explicit "id", else the next free one from 1
	// Frontend is true for frontend and listen sections (they accept
	// connections); Backend is true for backend and listen sections (they
	// have servers).
	Frontend bool `json:"frontend"`
	Backend  bool `json:"backend"`
	Mode     Mode `json:"mode"`

	Binds []*Bind `json:"binds,omitempty"`
	// Processes are the processes this proxy runs in (1-based, sorted):
	// the processes of its binds, or for a backend, the processes of the
	// frontends that use it.
	Processes []int `json:"processes"`

	Balance Balance   `json:"balance"`
	Servers []*Server `json:"servers,omitempty"`

	// DefaultBackend and UseBackends name backends; for a listen section
	// without them the proxy is its own backend.
	DefaultBackend string       `json:"default_backend,omitempty"`
	UseBackends    []UseBackend `json:"use_backends,omitempty"`

	Timeouts Timeouts `json:"timeouts"`
	MaxConn  int      `json:"maxconn"` // frontend maxconn, default from defaults or 0 (global)
	Retries  int      `json:"retries"` // default 3
	// Redispatch is "option redispatch": a retry may go to another server.
	Redispatch bool `json:"redispatch"`
	// LoadServerState is "load-server-state-from-file global": at start,
	// the servers take the state saved in the global server-state-file.
	LoadServerState bool `json:"load_server_state,omitempty"`

	ForwardFor *ForwardFor `json:"forward_for,omitempty"` // option forwardfor

	// ACLs are the proxy's "acl" lines (the words after "acl"), and
	// HTTPRequest and HTTPResponse its "http-request" and "http-response"
	// lines (the words after the keyword), in file order. The config
	// package checks them with package httprules; the worker compiles the
	// same words again.
	ACLs         []RuleLine `json:"acls,omitempty"`
	HTTPRequest  []RuleLine `json:"http_request,omitempty"`
	HTTPResponse []RuleLine `json:"http_response,omitempty"`
	// ErrorFiles are the "errorfile CODE PATH" pages by status: the
	// file's content, a complete HTTP/1 response, read at load.
	ErrorFiles map[int]string `json:"error_files,omitempty"`
	// HTTPReuse is "http-reuse": "never", "safe" (the default),
	// "aggressive" or "always".
	HTTPReuse string `json:"http_reuse,omitempty"`

	// LogGlobal is "log global": log to the global log targets.
	LogGlobal bool        `json:"log_global"`
	Logs      []LogTarget `json:"logs,omitempty"` // proxy-local "log" lines
	// LogFormat is "tcplog", "httplog" or "" (HAProxy's short default).
	LogFormat string `json:"log_format,omitempty"`

	// Stats is the statistics page ("stats enable", "stats uri",
	// "stats refresh"). A proxy with it serves only the page, from the
	// master, which sees every process: it has no servers and runs in no
	// child process.
	Stats *StatsPage `json:"stats,omitempty"`

	// Compression is the "compression" lines (http mode); nil = none.
	Compression *Compression `json:"compression,omitempty"`
	// CacheUse and CacheStore name the cache sections of
	// "http-request cache-use" and "http-response cache-store"; "" = none.
	CacheUse   string `json:"cache_use,omitempty"`
	CacheStore string `json:"cache_store,omitempty"`

	Disabled bool `json:"disabled"`
	Pos      Pos  `json:"pos"`
}

// StatsPage is a proxy's statistics page.
type StatsPage struct {
	URI     string        `json:"uri"`     // default "/haproxy?stats", as HAProxy
	Refresh time.Duration `json:"refresh"` // 0 = no automatic refresh
}

// ForwardFor is "option forwardfor [except NET] [header NAME] [if-none]".
type ForwardFor struct {
	Except string `json:"except,omitempty"` // CIDR whose clients get no header
	Header string `json:"header"`           // default "X-Forwarded-For"
	IfNone bool   `json:"if_none"`
}

// UseBackend is "use_backend NAME [if|unless COND]".
type UseBackend struct {
	Backend string `json:"backend"`
	// Cond is the condition's words, from "if" or "unless"; empty when
	// the line has none.
	Cond []string `json:"cond,omitempty"`
	Pos  Pos      `json:"pos"`
}

// RuleLine is the words of one acl, http-request or http-response line,
// after its keyword.
type RuleLine struct {
	Words []string `json:"words"`
	Pos   Pos      `json:"pos"`
}

// Bind is one bind line.
type Bind struct {
	Addr addr.Addr `json:"addr"`
	// Processes are the processes that accept on this bind (1-based,
	// sorted): from "process N|N-M|all|odd|even" (or "thread ..."), else the
	// proxy's bind-process, else every process.
	Processes   []int    `json:"processes"`
	AcceptProxy bool     `json:"accept_proxy"`
	SSL         bool     `json:"ssl"`
	Crt         []string `json:"crt,omitempty"` // certificate files or directories, in order
	ALPN        []string `json:"alpn,omitempty"`
	TLS         BindSSL  `json:"tls"` // the other ssl options
	Name        string   `json:"name,omitempty"`
	ID          int      `json:"id"` // listener id within the proxy, from 1
	MaxConn     int      `json:"maxconn"`
	Pos         Pos      `json:"pos"`
}

// Server is one server line.
type Server struct {
	Name string    `json:"name"`
	ID   int       `json:"id"` // explicit "id", else the next free one from 1 in the backend
	Addr addr.Addr `json:"addr"`
	// SendProxy is 0 (none), 1 (send-proxy) or 2 (send-proxy-v2).
	SendProxy int           `json:"send_proxy"`
	Check     bool          `json:"check"`
	Inter     time.Duration `json:"inter"` // default 2s
	Rise      int           `json:"rise"`  // default 2
	Fall      int           `json:"fall"`  // default 3
	Weight    int           `json:"weight"`
	MaxConn   int           `json:"maxconn"` // 0 = no limit
	Backup    bool          `json:"backup"`
	Disabled  bool          `json:"disabled"`
	// SSL re-encrypts to the server ("ssl"), with the TLS options.
	SSL bool      `json:"ssl,omitempty"`
	TLS ServerSSL `json:"tls"`
	// Proto is "proto h2": http mode speaks HTTP/2 to the server (h2c
	// with prior knowledge, or h2 by ALPN with ssl). "" is HTTP/1.1.
	Proto string `json:"proto,omitempty"`
	// LocalProcess is the process number owning the bind this server's
	// address points at, when that bind is one of ours (a worker socket of
	// the two-tier design); 0 otherwise. The dispatcher takes such a server
	// out the moment the master sees that process die.
	LocalProcess int `json:"local_process,omitempty"`

	// FQDN is the host name the address was written with, "" when it is
	// an IP literal or a socket path. Addr keeps the port (0 for an SRV
	// name) and, once resolved at load, the IP address in Addr.Host; when
	// NoAddr is set Addr.Host still holds the name and must not be dialled.
	FQDN string `json:"fqdn,omitempty"`
	// Resolvers names the resolvers section that resolves FQDN at run
	// time ("resolvers" option); "" = resolved once, at load.
	Resolvers string `json:"resolvers,omitempty"`
	// ResolvePrefer is the address family run-time resolution prefers:
	// "ipv4" or "ipv6" (HAProxy's default).
	ResolvePrefer string `json:"resolve_prefer"`
	// ResolveNets are the networks (CIDRs, in order) whose addresses
	// run-time resolution prefers ("resolve-net").
	ResolveNets []string `json:"resolve_nets,omitempty"`
	// InitAddr is how the address is found at start, in order: "last",
	// "libc", "none" or an IP address. Default: HAProxy's "last", "libc",
	// plus "none" when Resolvers is set. Load applies it: see NoAddr.
	InitAddr []string `json:"init_addr,omitempty"`
	// NoAddr is set when the server starts without an address (init-addr
	// none, or an SRV name): it is in maintenance ("MAINT (resolution)")
	// until DNS gives it one.
	NoAddr bool `json:"no_addr,omitempty"`
	// Template is the prefix of the server-template line the server comes
	// from, "" for a server line.
	Template string `json:"template,omitempty"`
	// SRV is set when FQDN is a DNS SRV name (it starts with '_'): the
	// address and port come from the SRV records, at run time.
	SRV bool `json:"srv,omitempty"`

	Pos Pos `json:"pos"`
}

// Resolvers is a resolvers section: the name servers that resolve the
// servers' names at run time, and how.
type Resolvers struct {
	Name string `json:"name"`
	// Nameservers are the nameserver lines, and those parse-resolv-conf
	// read, in order. There is at least one.
	Nameservers []Nameserver `json:"nameservers,omitempty"`
	// ParseResolvConf is set when the section has "parse-resolv-conf".
	ParseResolvConf bool `json:"parse_resolv_conf,omitempty"`
	// AcceptedPayloadSize is the EDNS0 payload size announced, 512-65535
	// (default 512).
	AcceptedPayloadSize int `json:"accepted_payload_size"`
	// ResolveRetries is the number of queries sent before giving up, at
	// least 1 (default 3).
	ResolveRetries int           `json:"resolve_retries"`
	TimeoutResolve time.Duration `json:"timeout_resolve"` // time between two resolutions of a name, default 1s
	TimeoutRetry   time.Duration `json:"timeout_retry"`   // time between two queries without a valid answer, default 1s
	Hold           Hold          `json:"hold"`
	Pos            Pos           `json:"pos"`
}

// Nameserver is one name server of a resolvers section.
type Nameserver struct {
	// Name is the nameserver's name; for parse-resolv-conf, its address as
	// written in resolv.conf.
	Name string `json:"name"`
	Addr string `json:"addr"` // "ip:port" ("[ipv6]:port"), the port 53 by default
	// TCP is set for a tcp@ address: queries go over TCP only. Otherwise
	// they go over UDP.
	TCP bool `json:"tcp,omitempty"`
	Pos Pos  `json:"pos"` // the nameserver line, or the parse-resolv-conf line
}

// Hold are a resolvers section's hold periods ("hold STATUS T"), as in
// HAProxy: how long a past valid answer outweighs an error of each kind,
// how long a valid answer is reused, and how long records missing from
// the answers are kept.
type Hold struct {
	Valid    time.Duration `json:"valid"`    // default 10s
	NX       time.Duration `json:"nx"`       // default 30s
	Timeout  time.Duration `json:"timeout"`  // default 30s
	Refused  time.Duration `json:"refused"`  // default 30s
	Other    time.Duration `json:"other"`    // default 30s
	Obsolete time.Duration `json:"obsolete"` // default 0
}

// Resolver returns the resolvers section with that name, or nil.
func (c *Config) Resolver(name string) *Resolvers {
	for _, r := range c.Resolvers {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Proxy returns the proxy with that name, or nil.
func (c *Config) Proxy(name string) *Proxy {
	for _, p := range c.Proxies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// RunsIn reports whether the proxy runs in process n.
func (p *Proxy) RunsIn(n int) bool {
	for _, x := range p.Processes {
		if x == n {
			return true
		}
	}
	return false
}

// AcceptsIn reports whether the bind accepts connections in process n.
func (b *Bind) AcceptsIn(n int) bool {
	for _, x := range b.Processes {
		if x == n {
			return true
		}
	}
	return false
}
