package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// seed is the configuration of the design brief, which must run verbatim.
const seed = `listen dispatcher
   bind :1234 process 1
   balance leastconn
   server process2 abns@p2 send-proxy
   server process3 abns@p3 send-proxy
listen worker
   bind abns@p2 process 2 accept-proxy ssl crt testdata/site.pem
   bind abns@p3 process 3 accept-proxy ssl crt testdata/site.pem
   server app 127.0.0.1:8080
`

func TestSeed(t *testing.T) {
	cfg, warns, err := load(seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) > 0 {
		t.Errorf("warnings: %v", warns)
	}
	if cfg.Global.NbProc != 3 {
		t.Errorf("NbProc = %d, want 3 (the highest process of the binds)", cfg.Global.NbProc)
	}
	d, w := cfg.Proxy("dispatcher"), cfg.Proxy("worker")
	if d == nil || w == nil {
		t.Fatal("missing proxy")
	}
	if d.ID != 1 || w.ID != 2 || !d.Frontend || !d.Backend || d.Mode != ModeTCP || d.Balance != BalanceLeastConn || w.Balance != BalanceRoundRobin {
		t.Errorf("proxies: %+v %+v", d, w)
	}
	if !reflect.DeepEqual(d.Processes, []int{1}) || !reflect.DeepEqual(w.Processes, []int{2, 3}) {
		t.Errorf("processes: dispatcher %v, worker %v", d.Processes, w.Processes)
	}
	for i, s := range d.Servers {
		if s.ID != i+1 || s.SendProxy != 1 || s.LocalProcess != i+2 || s.Weight != 1 || s.Inter != 2*time.Second || s.Rise != 2 || s.Fall != 3 {
			t.Errorf("server %+v", s)
		}
	}
	for i, b := range w.Binds {
		if b.ID != i+1 || !b.SSL || !b.AcceptProxy || !reflect.DeepEqual(b.Crt, []string{"testdata/site.pem"}) || !reflect.DeepEqual(b.Processes, []int{i + 2}) {
			t.Errorf("bind %+v", b)
		}
	}
	if s := w.Servers[0]; s.LocalProcess != 0 || s.Addr.Host != "127.0.0.1" || s.Addr.Port != 8080 {
		t.Errorf("app server %+v", s)
	}
	if d.Retries != 3 || d.MaxConn != 0 {
		t.Errorf("defaults: retries %d, maxconn %d", d.Retries, d.MaxConn)
	}
}

// TestSeedFile loads the seed from its file, with Load.
func TestSeedFile(t *testing.T) {
	cfg, warns, err := Load([]string{"testdata/seed.cfg"})
	if err != nil || len(warns) > 0 {
		t.Fatalf("Load: %v, warnings %v", err, warns)
	}
	if cfg.Global.NbProc != 3 || len(cfg.Proxies) != 2 {
		t.Errorf("nbproc %d, %d proxies", cfg.Global.NbProc, len(cfg.Proxies))
	}
}

// TestTwoTierExample is the configuration HAProxy's author gave for
// two-tier dispatch (haproxy mailing list, May 2014), with nbproc as HAProxy
// 1.5 needed it, ssl on the workers and checks on the dispatcher.
func TestTwoTierExample(t *testing.T) {
	cfg, warns, err := load(`global
    nbproc 5
    cpu-map 1 0
    cpu-map 2-5 1-3

listen dispatcher
   bind :1234 process 1
   balance leastconn
   server process2 abns@p2 send-proxy check
   server process3 abns@p3 send-proxy check
   server process4 abns@p4 send-proxy check
   server process5 abns@p5 send-proxy check

listen worker
   bind abns@p2 process 2 accept-proxy ssl crt testdata/site.pem
   bind abns@p3 process 3 accept-proxy ssl crt testdata/site.pem
   bind abns@p4 process 4 accept-proxy ssl crt testdata/site.pem
   bind abns@p5 process 5 accept-proxy ssl crt testdata/site.pem
   server app 127.0.0.1:8080
`)
	if err != nil || len(warns) > 0 {
		t.Fatalf("load: %v, warnings %v", err, warns)
	}
	for i, s := range cfg.Proxy("dispatcher").Servers {
		if !s.Check || s.LocalProcess != i+2 {
			t.Errorf("server %s: check %v, local process %d", s.Name, s.Check, s.LocalProcess)
		}
	}
	want := map[int][]int{1: {0}, 2: {1, 2, 3}, 3: {1, 2, 3}, 4: {1, 2, 3}, 5: {1, 2, 3}}
	if !reflect.DeepEqual(cfg.Global.CPUMap, want) {
		t.Errorf("CPUMap = %v, want %v", cfg.Global.CPUMap, want)
	}
	if got := cfg.Proxy("worker").Processes; !reflect.DeepEqual(got, []int{2, 3, 4, 5}) {
		t.Errorf("worker processes %v", got)
	}
}

func TestGlobalValues(t *testing.T) {
	cfg := mustLoad(t, `global
    nbthread 4
    maxconn 1000
    stats socket /run/sluice.sock mode 660 level admin user root group root
    stats socket ipv4@127.0.0.1:9999
    stats timeout 1m
    log 127.0.0.1 local0
    log /dev/log len 2048 format rfc5424 daemon info err
    hard-stop-after 30s
    server-state-file /var/lib/sluice/state
    tune.maxaccept -1
    tune.bufsize 32768
    user root
    gid 7
    chroot /
    pidfile /run/sluice.pid
    daemon
    master-worker
`+lst)
	want := Global{
		NbProc:  4,
		MaxConn: 1000,
		StatsSockets: []StatsSocket{
			{Addr: cfg.Global.StatsSockets[0].Addr, Mode: 0o660, Level: "admin", UID: 0, GID: 0, Pos: Pos{"t.cfg", 4}},
			{Addr: cfg.Global.StatsSockets[1].Addr, Level: "operator", UID: -1, GID: -1, Pos: Pos{"t.cfg", 5}},
		},
		StatsTimeout: time.Minute,
		Logs: []LogTarget{
			{Addr: "127.0.0.1:514", Format: "rfc3164", Facility: "local0", MaxLen: 1024, Pos: Pos{"t.cfg", 7}},
			{Addr: "/dev/log", Format: "rfc5424", Facility: "daemon", Level: "info", MinLevel: "err", MaxLen: 2048, Pos: Pos{"t.cfg", 8}},
		},
		HardStopAfter:   30 * time.Second,
		ServerStateFile: "/var/lib/sluice/state",
		MaxAccept:       -1,
		BufSize:         32768,
		MaxHdr:          101,
		User:            "root",
		UID:             0,
		GID:             7,
		Chroot:          "/",
		PidFile:         "/run/sluice.pid",
		Daemon:          true,
	}
	if !reflect.DeepEqual(cfg.Global, want) {
		t.Errorf("Global =\n%+v\nwant\n%+v", cfg.Global, want)
	}
	if a := cfg.Global.StatsSockets[0].Addr; a.Name != "/run/sluice.sock" {
		t.Errorf("socket address %+v", a)
	}
	if a := cfg.Global.StatsSockets[1].Addr; a.Host != "127.0.0.1" || a.Port != 9999 {
		t.Errorf("socket address %+v", a)
	}
}

func TestGlobalDefaults(t *testing.T) {
	cfg := mustLoad(t, lst)
	want := Global{NbProc: 1, StatsTimeout: 10 * time.Second, MaxAccept: 64, BufSize: 16384, MaxHdr: 101, UID: -1, GID: -1}
	if !reflect.DeepEqual(cfg.Global, want) {
		t.Errorf("Global = %+v, want %+v", cfg.Global, want)
	}
}

func TestProxyValues(t *testing.T) {
	cfg := mustLoad(t, `defaults
    mode http
    balance source
    timeout connect 1s
    timeout client 2s
    timeout server 3s
    timeout tunnel 4s
    timeout check 5s
    timeout queue 6s
    timeout http-request 7s
    timeout http-keep-alive 8s
    maxconn 100
    option forwardfor except 10.0.0.0/8 header X-Real-IP if-none
    log global
    log 127.0.0.1 local0
    option httplog
    retries 2
    option redispatch

frontend f
    id 10
    bind :80
    use_backend b
    default_backend b
    disabled

backend b
    no log
    log stderr local1
    no option redispatch
    server s 127.0.0.1:80
`)
	f, b := cfg.Proxy("f"), cfg.Proxy("b")
	timeouts := Timeouts{Connect: time.Second, Client: 2 * time.Second, Server: 3 * time.Second, Tunnel: 4 * time.Second,
		Check: 5 * time.Second, Queue: 6 * time.Second, HTTPRequest: 7 * time.Second, HTTPKeepAlive: 8 * time.Second}
	if f.ID != 10 || b.ID != 1 || f.Mode != ModeHTTP || f.Timeouts != timeouts || f.MaxConn != 100 || !f.Disabled ||
		f.DefaultBackend != "b" || !reflect.DeepEqual(f.UseBackends, []UseBackend{{Backend: "b", Pos: Pos{"t.cfg", 23}}}) {
		t.Errorf("frontend %+v", f)
	}
	if !reflect.DeepEqual(f.ForwardFor, &ForwardFor{Except: "10.0.0.0/8", Header: "X-Real-IP", IfNone: true}) {
		t.Errorf("forwardfor %+v", f.ForwardFor)
	}
	if !f.LogGlobal || len(f.Logs) != 1 || f.Logs[0].Addr != "127.0.0.1:514" || f.LogFormat != "httplog" {
		t.Errorf("frontend logs: global %v, %+v, format %q", f.LogGlobal, f.Logs, f.LogFormat)
	}
	if b.Balance != BalanceSource || b.Retries != 2 || b.Redispatch || b.LogGlobal || len(b.Logs) != 1 || b.Logs[0].Addr != "stderr" || b.DefaultBackend != "" || b.LogFormat != "" {
		t.Errorf("backend %+v", b)
	}
	if !reflect.DeepEqual(b.Processes, []int{1}) {
		t.Errorf("backend processes %v", b.Processes)
	}
}

func TestServerAndBindValues(t *testing.T) {
	cfg := mustLoad(t, `listen l
    bind 127.0.0.1:8443,[::1]:8443 name tls maxconn 50 ssl crt testdata/site.pem crt testdata/certs alpn h2,http/1.1 accept-proxy
    bind unix@/run/l.sock id 7
    server a 127.0.0.1:80 check inter 500ms rise 1 fall 5 weight 0 maxconn 10 backup disabled id 3 send-proxy-v2
    server b app.example:80
    server c /run/app.sock send-proxy
`)
	l := cfg.Proxy("l")
	defaultTLS := BindSSL{SSLOptions: SSLOptions{MinVer: "TLSv1.2", MaxVer: "TLSv1.3", Verify: "none"}}
	want := []Bind{
		{Addr: l.Binds[0].Addr, Processes: []int{1}, AcceptProxy: true, SSL: true, Crt: []string{"testdata/site.pem", "testdata/certs"},
			ALPN: []string{"h2", "http/1.1"}, TLS: defaultTLS, Name: "tls", ID: 1, MaxConn: 50, Pos: Pos{"t.cfg", 2}},
		{Addr: l.Binds[1].Addr, Processes: []int{1}, AcceptProxy: true, SSL: true, Crt: []string{"testdata/site.pem", "testdata/certs"},
			ALPN: []string{"h2", "http/1.1"}, TLS: defaultTLS, Name: "tls", ID: 2, MaxConn: 50, Pos: Pos{"t.cfg", 2}},
		{Addr: l.Binds[2].Addr, Processes: []int{1}, ID: 7, Pos: Pos{"t.cfg", 3}},
	}
	for i := range want {
		if !reflect.DeepEqual(*l.Binds[i], want[i]) {
			t.Errorf("bind %d = %+v\nwant %+v", i, *l.Binds[i], want[i])
		}
	}
	if l.Binds[0].Addr.Text != "127.0.0.1:8443" || l.Binds[1].Addr.Text != "[::1]:8443" || l.Binds[2].Addr.Name != "/run/l.sock" {
		t.Errorf("bind addresses %+v %+v %+v", l.Binds[0].Addr, l.Binds[1].Addr, l.Binds[2].Addr)
	}
	a := *l.Servers[0]
	wantA := Server{Name: "a", ID: 3, Addr: addrOf(t, "127.0.0.1:80"), SendProxy: 2, Check: true, Inter: 500 * time.Millisecond, Rise: 1, Fall: 5,
		Weight: 0, MaxConn: 10, Backup: true, Disabled: true, ResolvePrefer: "ipv6", InitAddr: []string{"last", "libc"}, Pos: Pos{"t.cfg", 4}}
	if !reflect.DeepEqual(a, wantA) {
		t.Errorf("server a = %+v\nwant %+v", a, wantA)
	}
	// Ids continue from the free ones; names resolve at load.
	if b := l.Servers[1]; b.ID != 1 || b.Addr.Host != "192.0.2.10" || b.Addr.Text != "app.example:80" || b.FQDN != "app.example" || b.NoAddr || b.Weight != 1 {
		t.Errorf("server b = %+v", b)
	}
	if c := l.Servers[2]; c.ID != 2 || c.SendProxy != 1 || c.Addr.Name != "/run/app.sock" {
		t.Errorf("server c = %+v", c)
	}
}

func TestDefaultsInheritance(t *testing.T) {
	cfg := mustLoad(t, `defaults
    mode http
    retries 5
    timeout client 5s

listen a
    bind :81
    server s 127.0.0.1:80

defaults web
    timeout server 9s

listen b
    bind :82
    server s 127.0.0.1:80

defaults tcp from web
    balance first

listen c from web
    bind :83
    server s 127.0.0.1:80

listen d
    bind :84
    server s 127.0.0.1:80

listen e from tcp
    mode http
    bind :85
    server s 127.0.0.1:80
`)
	tests := []struct {
		name    string
		mode    Mode
		retries int
		client  time.Duration
		server  time.Duration
		balance Balance
	}{
		{"a", ModeHTTP, 5, 5 * time.Second, 0, BalanceRoundRobin},
		// A later defaults section replaces the earlier one as a whole.
		{"b", ModeTCP, 3, 0, 9 * time.Second, BalanceRoundRobin},
		{"c", ModeTCP, 3, 0, 9 * time.Second, BalanceRoundRobin},
		// The latest defaults section applies, even a named one.
		{"d", ModeTCP, 3, 0, 9 * time.Second, BalanceFirst},
		{"e", ModeHTTP, 3, 0, 9 * time.Second, BalanceFirst},
	}
	for _, tt := range tests {
		p := cfg.Proxy(tt.name)
		if p.Mode != tt.mode || p.Retries != tt.retries || p.Timeouts.Client != tt.client || p.Timeouts.Server != tt.server || p.Balance != tt.balance {
			t.Errorf("listen %s: mode %s, retries %d, client %v, server %v, balance %s; want %+v",
				tt.name, p.Mode, p.Retries, p.Timeouts.Client, p.Timeouts.Server, p.Balance, tt)
		}
	}
}

func TestIDs(t *testing.T) {
	cfg := mustLoad(t, `frontend f
    bind :80
    bind :81 id 1
    bind :82
    default_backend b
backend b
    id 1
    server s1 127.0.0.1:80
    server s2 127.0.0.1:80 id 1
    server s3 127.0.0.1:80
listen l
    id 3
    bind :83
    server s 127.0.0.1:80
backend c
    server s 127.0.0.1:80
`)
	ids := func(p *Proxy) (out []int) {
		out = append(out, p.ID)
		for _, b := range p.Binds {
			out = append(out, b.ID)
		}
		for _, s := range p.Servers {
			out = append(out, s.ID)
		}
		return out
	}
	for name, want := range map[string][]int{"f": {2, 2, 1, 3}, "b": {1, 2, 1, 3}, "l": {3, 1, 1}, "c": {4, 1}} {
		if got := ids(cfg.Proxy(name)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ids %v, want %v", name, got, want)
		}
	}
}

func TestProcesses(t *testing.T) {
	cfg := mustLoad(t, `global
    nbproc 4

defaults
    bind-process 1-2

frontend f
    bind :80
    bind :81 process 4
    use_backend b1
    default_backend b2

frontend g
    bind-process odd
    bind :82
    bind :83 thread 1/2
    default_backend b2

backend b1
    server s 127.0.0.1:80

backend b2
    server s 127.0.0.1:80

backend unused
    server s 127.0.0.1:80

listen l
    bind-process all
    bind :84
    bind :85 process even
    server local 127.0.0.1:83
    server twice 127.0.0.1:86
    server notlocal 127.0.0.1:84

listen m
    bind 127.0.0.1:86 process 2
    bind 127.0.0.1:86 process 3
    server s 127.0.0.1:80
`)
	tests := map[string]struct {
		binds [][]int
		procs []int
	}{
		"f":      {[][]int{{1, 2}, {4}}, []int{1, 2, 4}},
		"g":      {[][]int{{1, 3}, {2}}, []int{1, 2, 3}},
		"b1":     {nil, []int{1, 2, 4}},
		"b2":     {nil, []int{1, 2, 3, 4}},
		"unused": {nil, []int{}},
		"l":      {[][]int{{1, 2, 3, 4}, {2, 4}}, []int{1, 2, 3, 4}},
	}
	for name, want := range tests {
		p := cfg.Proxy(name)
		var binds [][]int
		for _, b := range p.Binds {
			binds = append(binds, b.Processes)
		}
		if !reflect.DeepEqual(binds, want.binds) || !reflect.DeepEqual(p.Processes, want.procs) {
			t.Errorf("%s: binds %v, processes %v; want %v, %v", name, binds, p.Processes, want.binds, want.procs)
		}
	}
	if !cfg.Proxy("b2").RunsIn(3) || cfg.Proxy("b1").RunsIn(3) || !cfg.Proxy("f").Binds[1].AcceptsIn(4) {
		t.Error("RunsIn/AcceptsIn")
	}
	local := map[string]int{}
	for _, s := range cfg.Proxy("l").Servers {
		local[s.Name] = s.LocalProcess
	}
	// local: 127.0.0.1:83 is no bind's key (g binds :83); twice: two
	// processes; notlocal: :84 is not 127.0.0.1:84.
	if want := map[string]int{"local": 0, "twice": 0, "notlocal": 0}; !reflect.DeepEqual(local, want) {
		t.Errorf("LocalProcess %v, want %v", local, want)
	}
}

func TestLocalProcess(t *testing.T) {
	cfg := mustLoad(t, `listen d
    bind :80 process 1
    server w2 abns@w2
    server w3 abnsz@w3
    server w4 unix@/run/w4.sock
    server w5 127.0.0.1:8005
    server w6 self.example:8006
listen w
    bind abns@w2 process 2
    bind abnsz@w3 process 3
    bind /run/w4.sock process 4
    bind 127.0.0.1:8005 process 5
    bind 127.0.0.1:8006 process 6
    server app 127.0.0.1:8080
`)
	for i, s := range cfg.Proxy("d").Servers {
		if s.LocalProcess != i+2 {
			t.Errorf("server %s: LocalProcess %d, want %d", s.Name, s.LocalProcess, i+2)
		}
	}
}

func TestProcessCount(t *testing.T) {
	tests := []struct {
		cfg  string
		want int
	}{
		{lst, 1},
		{"global\n    nbproc 4\n" + lst, 4},
		{"global\n    nbthread 4\n" + lst, 4},
		{"global\n    nbproc 1\n    nbthread 3\n" + lst, 3},
		{"listen x\n    bind :81 process 2-5\n    server s 127.0.0.1:80\n", 5},
		{"listen x\n    bind :81 process 3-\n    server s 127.0.0.1:80\n", 3},
		{"listen x\n    bind-process 6\n    bind :81\n    server s 127.0.0.1:80\n", 6},
		{"listen x\n    bind :81 process all\n    server s 127.0.0.1:80\n", 1},
	}
	for _, tt := range tests {
		cfg := mustLoad(t, tt.cfg)
		if cfg.Global.NbProc != tt.want {
			t.Errorf("NbProc = %d, want %d for\n%s", cfg.Global.NbProc, tt.want, tt.cfg)
		}
	}
}

func TestCPUMap(t *testing.T) {
	tests := []struct {
		global string
		want   map[int][]int
	}{
		{"nbproc 4\n    cpu-map all 0-1", map[int][]int{1: {0, 1}, 2: {0, 1}, 3: {0, 1}, 4: {0, 1}}},
		{"nbproc 4\n    cpu-map odd 0\n    cpu-map 3 5", map[int][]int{1: {0}, 3: {5}}},
		{"nbproc 3\n    cpu-map auto:1-3 4 6 5", map[int][]int{1: {4}, 2: {5}, 3: {6}}},
		{"nbproc 2\n    cpu-map auto:all 0-63", map[int][]int{1: {0}, 2: {1}}},
		{"nbthread 4\n    cpu-map auto:1/1-4 0-3", map[int][]int{1: {0}, 2: {1}, 3: {2}, 4: {3}}},
		{"nbthread 4\n    cpu-map auto:1/1-4 0-3\n    cpu-map 1/2 7", map[int][]int{1: {0}, 2: {7}, 3: {2}, 4: {3}}},
		{"nbthread 2\n    cpu-map 1 0-3", map[int][]int{1: {0, 1, 2, 3}, 2: {0, 1, 2, 3}}},
		{"nbthread 2\n    cpu-map auto:1/1-2 9", map[int][]int{1: {9}, 2: {9}}},
		{"nbproc 2\n    cpu-map 1/2 3", map[int][]int{2: {3}}},
		{"nbproc 2", nil},
	}
	for _, tt := range tests {
		cfg := mustLoad(t, "global\n    "+tt.global+"\n"+lst)
		if !reflect.DeepEqual(cfg.Global.CPUMap, tt.want) {
			t.Errorf("%q: CPUMap = %v, want %v", tt.global, cfg.Global.CPUMap, tt.want)
		}
	}
}

func TestModeChecks(t *testing.T) {
	cfg, warns, err := load(`frontend f
    option httplog
    option forwardfor
    log stdout local0
    bind :80
    default_backend b
backend b
    option forwardfor
    server s 127.0.0.1:80
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"t.cfg:2: warning: 'option httplog' not usable with frontend 'f' (needs 'mode http'): falling back to 'option tcplog'",
		"t.cfg:3: warning: 'option forwardfor' ignored for frontend 'f' as it requires HTTP mode",
		"t.cfg:8: warning: 'option forwardfor' ignored for backend 'b' as it requires HTTP mode",
	}
	if got := diagStrings(warns); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	if f := cfg.Proxy("f"); f.LogFormat != "tcplog" || f.ForwardFor != nil || cfg.Proxy("b").ForwardFor != nil {
		t.Errorf("frontend %+v", f)
	}
}

func TestCrtDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".hidden"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := load("listen x\n    bind :443 ssl crt " + dir + "\n    server s 127.0.0.1:80\n")
	want := []string{"t.cfg:2: bind :443: certificate '" + dir + "': directory " + dir + " holds no certificate file"}
	if got := errorStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

func TestNotActive(t *testing.T) {
	cfg := mustLoad(t, "global\n    stats socket /run/s.sock level admin\n    stats timeout 5s\n    server-state-file /tmp/state\n    maxconn 10\n"+lst)
	// Every keyword of the mission is active now; the mechanism stays for
	// keywords that come with later work.
	var want []string
	if got := diagStrings(cfg.NotActive()); !reflect.DeepEqual(got, want) {
		t.Errorf("NotActive() = %q, want %q", got, want)
	}
	if got := mustLoad(t, seed).NotActive(); len(got) != 0 {
		t.Errorf("seed: NotActive() = %v", got)
	}
}
