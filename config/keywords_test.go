package config

import (
	"strings"
	"testing"
)

// lst is a valid listen section to put after the lines under test.
const lst = `
listen l
    bind :80
    server s 127.0.0.1:80
`

// TestKeywordTable checks the table itself: every keyword can be parsed,
// and no name is ambiguous where it is used.
func TestKeywordTable(t *testing.T) {
	seen := make(map[string]where)
	for _, kw := range keywords {
		if kw.status != unsupported && kw.parse == nil {
			t.Errorf("keyword '%s' has no parse function", kw.name)
		}
		if kw.in == 0 {
			t.Errorf("keyword '%s' is allowed nowhere", kw.name)
		}
		if kw.in&kw.ignored != 0 {
			t.Errorf("keyword '%s' is both allowed and ignored in the same place", kw.name)
		}
		if seen[kw.name]&(kw.in|kw.ignored) != 0 {
			t.Errorf("keyword '%s' appears twice for the same place", kw.name)
		}
		seen[kw.name] |= kw.in | kw.ignored
		if kw.args != 0 && kw.in&lineContexts != 0 {
			t.Errorf("keyword '%s' starts lines but declares option arguments", kw.name)
		}
	}
}

func TestGlobalKeywords(t *testing.T) {
	runCases(t, []loadCase{
		{name: "every keyword", cfg: `global
    nbproc 2
    cpu-map 1 0
    cpu-map auto:1-2 2-3
    maxconn 1000
    stats socket /run/sluice.sock mode 600 level admin user root group root
    stats socket ipv4@127.0.0.1:9999 level user uid 0 gid 0
    stats timeout 1m
    log 127.0.0.1 local0
    log stdout format raw daemon info
    hard-stop-after 30s
    server-state-file /var/lib/sluice/state
    tune.maxaccept -1
    tune.bufsize 32768
    user root
    group root
    chroot /
    pidfile /run/sluice.pid
    daemon
    master-worker no-exit-on-failure
` + lst, warns: []string{
			"t.cfg:13: warning: 'tune.maxaccept' has no effect: each sluice listener has its own accept loop, which accepts one connection per wakeup",
		}},
		{name: "uid and gid", cfg: "global\n    uid 10\n    gid 20\n" + lst},
		{name: "global with an argument", cfg: "global foo\n" + lst, errs: []string{"t.cfg:1: 'global' takes no argument (got 'foo')"}},

		{name: "nbproc zero", cfg: "global\n    nbproc 0\n" + lst, errs: []string{"t.cfg:2: 'nbproc' must be between 1 and 64, got 0"}},
		{name: "nbproc too big", cfg: "global\n    nbproc 65\n" + lst, errs: []string{"t.cfg:2: 'nbproc' must be between 1 and 64, got 65"}},
		{name: "nbproc not a number", cfg: "global\n    nbproc x\n" + lst, errs: []string{"t.cfg:2: 'nbproc' expects a number, got 'x'"}},
		{name: "nbproc without value", cfg: "global\n    nbproc\n" + lst, errs: []string{"t.cfg:2: 'nbproc' expects a number"}},
		{name: "nbproc two values", cfg: "global\n    nbproc 1 2\n" + lst, errs: []string{"t.cfg:2: 'nbproc': unexpected argument '2'"}},
		{name: "nbproc twice", cfg: "global\n    nbproc 2\n    nbproc 3\n" + lst, errs: []string{"t.cfg:3: 'nbproc' already specified at t.cfg:2"}},
		{name: "nbthread too big", cfg: "global\n    nbthread 65\n" + lst, errs: []string{"t.cfg:2: 'nbthread' must be between 1 and 64, got 65"}},
		{name: "nbproc and nbthread", cfg: "global\n    nbproc 2\n    nbthread 2\n" + lst, errs: []string{
			"t.cfg:3: nbproc 2 (at t.cfg:2) and nbthread 2: sluice runs one process per HAProxy thread, so set only one of them"}},
		{name: "nbproc 1 and nbthread", cfg: "global\n    nbproc 1\n    nbthread 4\n" + lst},

		{name: "cpu-map without cpus", cfg: "global\n    cpu-map 1\n" + lst, errs: []string{"t.cfg:2: 'cpu-map' expects a process or thread set and at least one CPU set"}},
		{name: "cpu-map thread group", cfg: "global\n    cpu-map 2/1 0\n" + lst, errs: []string{"t.cfg:2: 'cpu-map': thread group '2' does not exist (sluice has one: write '1/1')"}},
		{name: "cpu-map bad set", cfg: "global\n    cpu-map x 0\n" + lst, errs: []string{
			"t.cfg:2: 'cpu-map': 'x' is not a valid set (expected all, odd, even, N, N-M or N- with numbers from 1 to 64)"}},
		{name: "cpu-map bad cpus", cfg: "global\n    cpu-map 1 2-1\n" + lst, errs: []string{
			"t.cfg:2: 'cpu-map': '2-1' is not a valid CPU set (expected N, N-M or N- with CPU numbers from 0 to 1023)"}},
		{name: "cpu-map above nbproc", cfg: "global\n    nbproc 2\n    cpu-map 3 0\n" + lst, errs: []string{"t.cfg:3: 'cpu-map': process 3 does not exist (nbproc 2)"}},
		{name: "cpu-map above nbthread", cfg: "global\n    nbthread 2\n    cpu-map 1/1-3 0\n" + lst, errs: []string{"t.cfg:3: 'cpu-map': process 3 does not exist (nbthread 2)"}},
		{name: "cpu-map above deduced count", cfg: "global\n    cpu-map 2 0\n" + lst, errs: []string{
			"t.cfg:2: 'cpu-map': process 2 does not exist (1 processes, the highest process number of the binds)"}},
		{name: "cpu-map lone group with nbthread", cfg: "global\n    nbthread 2\n    cpu-map 2 0\n" + lst, errs: []string{
			"t.cfg:3: 'cpu-map 2': with nbthread, a lone number is a thread group and sluice has only group 1 (write '1/2' for threads)"}},
		{name: "cpu-map auto sizes", cfg: "global\n    nbthread 4\n    cpu-map auto:1/1-4 0-1\n" + lst, errs: []string{
			"t.cfg:3: 'cpu-map auto:': 4 processes for 2 CPUs (both sets must have the same size)"}},
		{name: "cpu-map auto all", cfg: "global\n    nbthread 4\n    cpu-map auto:1/all 0-3\n" + lst, errs: []string{
			"t.cfg:3: 'cpu-map auto:': 64 processes for 4 CPUs (both sets must have the same size)"}},

		{name: "maxconn zero", cfg: "global\n    maxconn 0\n" + lst, errs: []string{"t.cfg:2: 'maxconn' must be between 1 and 1073741824, got 0"}},
		{name: "maxconn twice", cfg: "global\n    maxconn 10\n    maxconn 20\n" + lst, errs: []string{"t.cfg:3: 'maxconn' already specified at t.cfg:2"}},

		{name: "stats socket without address", cfg: "global\n    stats socket\n" + lst, errs: []string{"t.cfg:2: 'stats socket' expects an address or the path of a unix socket"}},
		{name: "stats socket bad address", cfg: "global\n    stats socket foo@bar\n" + lst, errs: []string{
			`t.cfg:2: 'stats socket': address "foo@bar": unknown address family "foo" (expected ipv4@, ipv6@, tcp@, unix@, abns@ or abnsz@)`}},
		{name: "stats socket unknown option", cfg: "global\n    stats socket /s levl admin\n" + lst, errs: []string{
			"t.cfg:2: stats socket /s: unknown option 'levl' (did you mean 'level'?)"}},
		{name: "stats socket option without value", cfg: "global\n    stats socket /s mode\n" + lst, errs: []string{"t.cfg:2: stats socket /s: 'mode' expects a value"}},
		{name: "stats socket bad mode", cfg: "global\n    stats socket /s mode 999\n" + lst, errs: []string{
			"t.cfg:2: stats socket /s: 'mode' expects an octal file mode such as 660, got '999'"}},
		{name: "stats socket bad level", cfg: "global\n    stats socket /s level boss\n" + lst, errs: []string{
			"t.cfg:2: stats socket /s: 'level' expects 'user', 'operator' or 'admin', got 'boss'"}},
		{name: "stats socket unknown user", cfg: "global\n    stats socket /s user sluice-no-such-user\n" + lst, errs: []string{
			"t.cfg:2: stats socket /s: unknown user 'sluice-no-such-user'"}},
		{name: "stats socket unknown group", cfg: "global\n    stats socket /s group sluice-no-such-group\n" + lst, errs: []string{
			"t.cfg:2: stats socket /s: unknown group 'sluice-no-such-group'"}},
		{name: "stats socket bad uid", cfg: "global\n    stats socket /s uid -1\n" + lst, errs: []string{
			"t.cfg:2: stats socket /s: 'uid' must be at least 0, got -1"}},
		{name: "stats socket expose-fd", cfg: "global\n    stats socket /s expose-fd listeners\n" + lst, warns: []string{
			"t.cfg:2: warning: 'expose-fd listeners' has no effect: sluice's master always keeps the listening sockets"}},
		{name: "stats socket expose-fd other", cfg: "global\n    stats socket /s expose-fd all\n" + lst, errs: []string{
			"t.cfg:2: stats socket /s: 'expose-fd' only supports 'listeners', got 'all'"}},
		{name: "stats timeout zero", cfg: "global\n    stats timeout 0\n" + lst, errs: []string{"t.cfg:2: 'stats timeout' must be more than 0"}},
		{name: "stats timeout bad", cfg: "global\n    stats timeout 1x\n" + lst, errs: []string{
			"t.cfg:2: 'stats timeout' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '1x'"}},
		{name: "stats alone", cfg: "global\n    stats\n" + lst, errs: []string{"t.cfg:2: 'stats' expects one of: socket, timeout"}},
		{name: "stats unknown", cfg: "global\n    stats sockett /s\n" + lst, errs: []string{
			"t.cfg:2: unknown keyword 'stats sockett' in 'global' section (did you mean 'stats socket'?)"}},

		{name: "log global in global", cfg: "global\n    log global\n" + lst, errs: []string{
			"t.cfg:2: 'log global' is only for proxies: in the global section, name a log target"}},
		{name: "log without facility", cfg: "global\n    log 127.0.0.1\n" + lst, errs: []string{"t.cfg:2: 'log' expects a target and a facility"}},
		{name: "log options without facility", cfg: "global\n    log 127.0.0.1 len 100\n" + lst, errs: []string{"t.cfg:2: 'log' expects a facility after the target"}},
		{name: "log bad facility", cfg: "global\n    log 127.0.0.1 local9\n" + lst, errs: []string{"t.cfg:2: 'log': unknown facility 'local9' (did you mean 'local0'?)"}},
		{name: "log bad level", cfg: "global\n    log 127.0.0.1 local0 verbose\n" + lst, errs: []string{
			"t.cfg:2: 'log': unknown level 'verbose' (expected one of emerg, alert, crit, err, warning, notice, info, debug)"}},
		{name: "log bad min level", cfg: "global\n    log 127.0.0.1 local0 info loud\n" + lst, errs: []string{
			"t.cfg:2: 'log': unknown minimum level 'loud' (expected one of emerg, alert, crit, err, warning, notice, info, debug)"}},
		{name: "log extra", cfg: "global\n    log 127.0.0.1 local0 info err x\n" + lst, errs: []string{"t.cfg:2: 'log': unexpected argument 'x'"}},
		{name: "log len", cfg: "global\n    log 127.0.0.1 len 10 local0\n" + lst, errs: []string{"t.cfg:2: 'log': 'len' must be between 80 and 65535, got 10"}},
		{name: "log len without value", cfg: "global\n    log 127.0.0.1 local0 len\n" + lst, errs: []string{
			"t.cfg:2: 'log': unknown level 'len' (expected one of emerg, alert, crit, err, warning, notice, info, debug)"}},
		{name: "log format", cfg: "global\n    log 127.0.0.1 format iso local0\n" + lst, errs: []string{
			"t.cfg:2: 'log': format 'iso' is not supported (supported: rfc3164, local, rfc5424, short, raw)"}},
		{name: "log sample", cfg: "global\n    log 127.0.0.1 sample 1:2 local0\n" + lst, errs: []string{"t.cfg:2: 'log': 'sample' is not supported"}},
		{name: "log ring", cfg: "global\n    log ring@buf local0\n" + lst, errs: []string{
			"t.cfg:2: 'log': log target 'ring@buf' is not supported (use host[:port], [ipv6]:port, a unix socket path, stdout or stderr)"}},
		{name: "log bad address", cfg: "global\n    log 127.0.0.1:0 local0\n" + lst, errs: []string{
			"t.cfg:2: 'log': invalid log target '127.0.0.1:0' (use host[:port], [ipv6]:port, a unix socket path, stdout or stderr)"}},

		{name: "hard-stop-after", cfg: "global\n    hard-stop-after soon\n" + lst, errs: []string{
			"t.cfg:2: 'hard-stop-after' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got 'soon'"}},
		{name: "server-state-file", cfg: "global\n    server-state-file\n" + lst, errs: []string{"t.cfg:2: 'server-state-file' expects a file path"}},
		{name: "tune.maxaccept zero", cfg: "global\n    tune.maxaccept 0\n" + lst, errs: []string{"t.cfg:2: 'tune.maxaccept' must be -1 (no limit) or a positive number"}},
		{name: "tune.bufsize small", cfg: "global\n    tune.bufsize 100\n" + lst, errs: []string{"t.cfg:2: 'tune.bufsize' must be between 1024 and 1073741824, got 100"}},

		{name: "unknown user", cfg: "global\n    user sluice-no-such-user\n" + lst, errs: []string{"t.cfg:2: unknown user 'sluice-no-such-user'"}},
		{name: "unknown group", cfg: "global\n    group sluice-no-such-group\n" + lst, errs: []string{"t.cfg:2: unknown group 'sluice-no-such-group'"}},
		{name: "bad uid", cfg: "global\n    uid x\n" + lst, errs: []string{"t.cfg:2: 'uid' expects a number, got 'x'"}},
		{name: "bad gid", cfg: "global\n    gid -5\n" + lst, errs: []string{"t.cfg:2: 'gid' must be at least 0, got -5"}},
		{name: "user and uid", cfg: "global\n    user root\n    uid 0\n" + lst, errs: []string{"t.cfg:3: 'uid' conflicts with 'user' at t.cfg:2"}},
		{name: "group and gid", cfg: "global\n    gid 0\n    group root\n" + lst, errs: []string{"t.cfg:3: 'group' conflicts with 'gid' at t.cfg:2"}},
		{name: "chroot missing", cfg: "global\n    chroot /nonexistent/sluice\n" + lst, errs: []string{
			"t.cfg:2: 'chroot': stat /nonexistent/sluice: no such file or directory"}},
		{name: "chroot file", cfg: "global\n    chroot testdata/site.pem\n" + lst, errs: []string{"t.cfg:2: 'chroot': testdata/site.pem is not a directory"}},
		{name: "pidfile", cfg: "global\n    pidfile\n" + lst, errs: []string{"t.cfg:2: 'pidfile' expects a file path"}},
		{name: "daemon", cfg: "global\n    daemon 1\n" + lst, errs: []string{"t.cfg:2: 'daemon' takes no argument (got '1')"}},
		{name: "master-worker", cfg: "global\n    master-worker foo\n" + lst, errs: []string{"t.cfg:2: 'master-worker' only supports 'no-exit-on-failure'"}},
		{name: "unsupported", cfg: "global\n    ulimit-n 100\n" + lst, errs: []string{"t.cfg:2: 'ulimit-n' is not supported"}},
		{name: "proxy keyword", cfg: "global\n    mode http\n" + lst, errs: []string{"t.cfg:2: 'mode' not allowed in 'global' section (it belongs in proxy sections)"}},
		{name: "unknown", cfg: "global\n    maxconm 10\n" + lst, errs: []string{"t.cfg:2: unknown keyword 'maxconm' in 'global' section (did you mean 'maxconn'?)"}},
	})
}

func TestSections(t *testing.T) {
	runCases(t, []loadCase{
		{name: "out of section", cfg: "    maxconn 100\n" + lst, errs: []string{"t.cfg:1: unknown keyword 'maxconn' out of section"}},
		{name: "misspelt section", cfg: "listn x\n" + lst, errs: []string{"t.cfg:1: unknown keyword 'listn' out of section (did you mean 'listen'?)"}},
		{name: "unsupported section", cfg: "peers p\n    peer a 10.0.0.1:1000\n    whatever\n" + lst, errs: []string{"t.cfg:1: section 'peers' is not supported"}},
		{name: "resolvers", cfg: "resolvers dns\n    nameserver ns1 10.0.0.1:53\n" + lst},
		{name: "resolvers without nameserver", cfg: "resolvers dns\n" + lst, errs: []string{
			"t.cfg:1: resolvers 'dns' has no nameserver: add 'nameserver NAME ADDRESS' or 'parse-resolv-conf'"}},
		{name: "resolvers without name", cfg: "resolvers\n    nameserver ns1 10.0.0.1:53\n" + lst, errs: []string{"t.cfg:1: 'resolvers' expects a name"}},
		{name: "resolvers twice", cfg: "resolvers dns\n    nameserver ns1 10.0.0.1:53\nresolvers dns\n    nameserver ns1 10.0.0.1:53\n" + lst, errs: []string{
			"t.cfg:3: resolvers section 'dns' is already defined at t.cfg:1"}},
		{name: "resolvers extra word", cfg: "resolvers dns x\n    nameserver ns1 10.0.0.1:53\n" + lst, errs: []string{"t.cfg:1: 'resolvers dns': unexpected 'x'"}},
		{name: "resolvers invalid name", cfg: "resolvers d/ns\n    nameserver ns1 10.0.0.1:53\n" + lst, errs: []string{
			"t.cfg:1: character '/' is not permitted in resolvers name 'd/ns'"}},
		{name: "proxy without name", cfg: "frontend\n    bind :80\n" + lst, errs: []string{"t.cfg:1: 'frontend' expects a name"}},
		{name: "proxy extra word", cfg: "listen x y\n    bind :81\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:1: 'listen x': unexpected 'y' (expected nothing or 'from' and the name of a defaults section)"}},
		{name: "from without name", cfg: "defaults d\nlisten x from\n    bind :81\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: 'listen x from' expects the name of a defaults section"}},
		{name: "from unknown", cfg: "listen x from d\n    bind :81\n    server s 127.0.0.1:80\ndefaults d\n", errs: []string{
			"t.cfg:1: defaults section 'd' not found for listen 'x'"}},
		{name: "from itself", cfg: "defaults d from d\n" + lst, errs: []string{"t.cfg:1: defaults section 'd' not found for defaults 'd'"}},
		{name: "from ambiguous", cfg: "defaults d\ndefaults d\nlisten x from d\n    bind :81\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:3: ambiguous defaults section name 'd' referenced by listen 'x': it is defined at t.cfg:1 and t.cfg:2"}},
		{name: "from invalid name", cfg: "defaults d/x\nlisten x from d/x\n    bind :81\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: character '/' is not permitted in the name of defaults section 'd/x', which listen 'x' references"}},
		{name: "defaults names may repeat", cfg: "defaults d\ndefaults d\n" + lst},
		{name: "invalid proxy name", cfg: "backend b*\n    server s 127.0.0.1:80\n" + lst, errs: []string{"t.cfg:1: character '*' is not permitted in backend name 'b*'"}},
	})
}

func TestProxyKeywords(t *testing.T) {
	runCases(t, []loadCase{
		{name: "every keyword", cfg: `defaults
    mode http
    bind-process all
    balance source
    default_backend b
    timeout connect 1s
    timeout client 2s
    timeout server 3s
    timeout tunnel 4s
    timeout check 5s
    timeout queue 6s
    timeout http-request 7s
    timeout http-keep-alive 8s
    maxconn 100
    option forwardfor
    log global
    log 127.0.0.1 local0
    option httplog
    retries 2
    option redispatch
    disabled
    enabled

frontend f
    id 10
    bind :80
    use_backend b
    option tcplog

backend b
    no log
    no option redispatch
    server s 127.0.0.1:80
`},
		{name: "mode missing", cfg: "defaults\n    mode\n" + lst, errs: []string{"t.cfg:2: 'mode' expects 'tcp' or 'http'"}},
		{name: "mode health", cfg: "defaults\n    mode health\n" + lst, errs: []string{"t.cfg:2: 'mode health' does not exist any more (nor in HAProxy)"}},
		{name: "mode udp", cfg: "defaults\n    mode udp\n" + lst, errs: []string{"t.cfg:2: unknown proxy mode 'udp' (expected 'tcp' or 'http')"}},

		{name: "bind without address", cfg: "listen x\n    bind\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: 'bind' expects an address (ip:port, [ipv6]:port, *:port, :port, abns@name, unix@path...)"},
			warns: []string{"t.cfg:1: warning: listen 'x' has no bind line: it accepts no connection (declare it as a backend if that is what it is)"}},
		{name: "bind bad address", cfg: "listen x\n    bind 10.0.0.1\n    server s 127.0.0.1:80\n", errs: []string{
			`t.cfg:2: bind: address "10.0.0.1": expected host:port, [ipv6]:port or :port`},
			warns: []string{"t.cfg:1: warning: listen 'x' has no bind line: it accepts no connection (declare it as a backend if that is what it is)"}},
		{name: "bind unknown option", cfg: "listen x\n    bind :80 acept-proxy\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :80: unknown option 'acept-proxy' (did you mean 'accept-proxy'?)"}},
		{name: "bind option without value", cfg: "listen x\n    bind :80 ssl crt\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :80: 'crt' expects a value",
			"t.cfg:2: bind :80: 'ssl' needs a certificate: add 'crt FILE' or 'crt-list FILE'"}},
		{name: "bind bad process", cfg: "listen x\n    bind :80 process 0\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :80: 'process': '0' is not a valid set (expected all, odd, even, N, N-M or N- with numbers from 1 to 64)"}},
		{name: "bind thread group", cfg: "listen x\n    bind :80 thread 2/1\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :80: 'thread 2/1': sluice has one thread group, numbered 1 (write 'thread 1/1')"}},
		{name: "bind process above nbproc", cfg: "global\n    nbproc 2\nlisten x\n    bind :80 process 2-3\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:4: bind :80: 'process 2-3': process 3 does not exist (nbproc 2)"}},
		{name: "bind process names none", cfg: "global\n    nbproc 1\nlisten x\n    bind :80 process even\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:4: bind :80: 'process even' names no process (nbproc 1)"}},
		{name: "bind id on several addresses", cfg: "listen x\n    bind :80,:81 id 3\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :80,:81: 'id' cannot be set on a bind line with several addresses"}},
		{name: "bind id zero", cfg: "listen x\n    bind :80 id 0\n    server s 127.0.0.1:80\n", errs: []string{"t.cfg:2: bind :80: 'id' must be at least 1, got 0"}},
		{name: "bind maxconn", cfg: "listen x\n    bind :80 maxconn x\n    server s 127.0.0.1:80\n", errs: []string{"t.cfg:2: bind :80: 'maxconn' expects a number, got 'x'"}},
		{name: "bind alpn", cfg: "listen x\n    bind :80 ssl crt testdata/site.pem alpn h2,,http/1.1\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :80: 'alpn' expects a comma-separated list of protocol names (1 to 255 bytes each), got 'h2,,http/1.1'"}},
		{name: "bind in backend", cfg: "backend b\n    bind :81\n    server s 127.0.0.1:80\n" + lst, warns: []string{
			"t.cfg:2: warning: 'bind' ignored because backend 'b' has no frontend capability"}},
		{name: "bind in defaults", cfg: "defaults\n    bind :81\n" + lst, errs: []string{"t.cfg:2: 'bind' not allowed in 'defaults' section"}},

		{name: "bind-process without value", cfg: "listen x\n    bind-process\n    bind :80\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: 'bind-process' expects a process set (all, odd, even, N, N-M or N-)"}},
		{name: "bind-process above nbproc", cfg: "global\n    nbproc 2\nlisten x\n    bind-process 1 3\n    bind :80\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:4: 'bind-process 3': process 3 does not exist (nbproc 2)"}},

		{name: "balance missing", cfg: "defaults\n    balance\n" + lst, errs: []string{"t.cfg:2: 'balance' expects an algorithm (roundrobin, leastconn, source or first)"}},
		{name: "balance unsupported", cfg: "defaults\n    balance uri\n" + lst, errs: []string{
			"t.cfg:2: balance 'uri' is not supported (supported: roundrobin, leastconn, source, first)"}},
		{name: "balance extra", cfg: "defaults\n    balance first 2\n" + lst, errs: []string{"t.cfg:2: 'balance': unexpected argument '2'"}},
		{name: "balance in frontend", cfg: "frontend f\n    bind :81\n    balance first\n    default_backend l\n" + lst, warns: []string{
			"t.cfg:3: warning: 'balance' ignored because frontend 'f' has no backend capability"}},

		{name: "server without address", cfg: "listen x\n    bind :80\n    server s\n", errs: []string{"t.cfg:3: 'server' expects a name and an address"}},
		{name: "server bad name", cfg: "listen x\n    bind :80\n    server a/b 127.0.0.1:80\n", errs: []string{"t.cfg:3: character '/' is not permitted in server name 'a/b'"}},
		{name: "server bad address", cfg: "listen x\n    bind :80\n    server s 127.0.0.1\n", errs: []string{
			`t.cfg:3: server 's': address "127.0.0.1": expected host:port, [ipv6]:port or :port`}},
		{name: "server unknown option", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:80 chek\n", errs: []string{
			"t.cfg:3: server 's': unknown option 'chek' (did you mean 'check'?)"}},
		{name: "server bad values", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:80 inter 0 rise 0 fall x weight 257 maxconn -1 id 0\n", errs: []string{
			"t.cfg:3: server 's': 'inter' must be at least 1ms",
			"t.cfg:3: server 's': 'rise' must be at least 1, got 0",
			"t.cfg:3: server 's': 'fall' expects a number, got 'x'",
			"t.cfg:3: server 's': 'weight' must be between 0 and 256, got 257",
			"t.cfg:3: server 's': 'maxconn' must be at least 0, got -1",
			"t.cfg:3: server 's': 'id' must be at least 1, got 0"}},
		{name: "server bad inter", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:80 inter 2x\n", errs: []string{
			"t.cfg:3: server 's': 'inter' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '2x'"}},
		{name: "server in frontend", cfg: "frontend f\n    bind :81\n    server s 127.0.0.1:80\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: 'server' not allowed because frontend 'f' has no backend capability"}},
		{name: "server in defaults", cfg: "defaults\n    server s 127.0.0.1:80\n" + lst, errs: []string{"t.cfg:2: 'server' not allowed in 'defaults' section"}},

		{name: "default_backend missing name", cfg: "frontend f\n    bind :81\n    default_backend\n" + lst, errs: []string{
			"t.cfg:3: 'default_backend' expects a backend name"},
			warns: []string{"t.cfg:1: warning: frontend 'f' has no default_backend nor use_backend: it has nowhere to send connections"}},
		{name: "default_backend extra", cfg: "frontend f\n    bind :81\n    default_backend l m\n" + lst, errs: []string{
			"t.cfg:3: 'default_backend': unexpected argument 'm'"},
			warns: []string{"t.cfg:1: warning: frontend 'f' has no default_backend nor use_backend: it has nowhere to send connections"}},
		{name: "default_backend in backend", cfg: "backend b\n    default_backend l\n    server s 127.0.0.1:80\n" + lst, warns: []string{
			"t.cfg:2: warning: 'default_backend' ignored because backend 'b' has no frontend capability"}},
		{name: "use_backend if", cfg: "frontend f\n    bind :81\n    use_backend l if local\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: 'use_backend l': no such ACL: 'local' (declare it with an 'acl' line before its first use)"}},
		{name: "use_backend unless in tcp mode", cfg: "frontend f\n    bind :81\n    acl local src 127.0.0.1\n    use_backend l unless local\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:4: frontend 'f': 'use_backend l unless ...': conditions on use_backend are only supported in 'mode http'"}},
		{name: "use_backend extra", cfg: "frontend f\n    bind :81\n    use_backend l m\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: 'use_backend l': unexpected 'm' (only 'if' or 'unless' and a condition may follow)"}},
		{name: "use_backend dynamic", cfg: "frontend f\n    bind :81\n    use_backend be_%[req.hdr(host)]\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: 'use_backend be_%[req.hdr(host)]': dynamic backend names are not supported"}},
		{name: "use_backend missing name", cfg: "frontend f\n    bind :81\n    use_backend\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: 'use_backend' expects a backend name"}},
		{name: "use_backend in defaults", cfg: "defaults\n    use_backend l\n" + lst, errs: []string{"t.cfg:2: 'use_backend' not allowed in 'defaults' section"}},
		{name: "acl", cfg: "frontend f\n    bind :81\n    acl local src 127.0.0.1\n    default_backend l\n" + lst},

		{name: "timeout alone", cfg: "frontend f\n    bind :81\n    timeout\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: 'timeout' expects one of: client, http-keep-alive, http-request"}},
		{name: "timeout unknown", cfg: "defaults\n    timeout conect 1s\n" + lst, errs: []string{
			"t.cfg:2: unknown keyword 'timeout conect' in 'defaults' section (did you mean 'timeout connect'?)"}},
		{name: "timeout unsupported", cfg: "defaults\n    timeout tarpit 1s\n" + lst, errs: []string{"t.cfg:2: 'timeout tarpit' is not supported"}},
		{name: "timeout without value", cfg: "defaults\n    timeout client\n" + lst, errs: []string{"t.cfg:2: 'timeout client' expects a time (e.g. 30s)"}},
		{name: "timeout two values", cfg: "defaults\n    timeout client 1s 2s\n" + lst, errs: []string{"t.cfg:2: 'timeout client': unexpected argument '2s'"}},
		{name: "timeout bad values", cfg: "defaults\n" +
			"    timeout connect 1x\n    timeout client 2x\n    timeout server 3x\n    timeout tunnel 4x\n" +
			"    timeout check 5x\n    timeout queue 6x\n    timeout http-request 7x\n    timeout http-keep-alive 8x\n" + lst, errs: []string{
			"t.cfg:2: 'timeout connect' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '1x'",
			"t.cfg:3: 'timeout client' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '2x'",
			"t.cfg:4: 'timeout server' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '3x'",
			"t.cfg:5: 'timeout tunnel' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '4x'",
			"t.cfg:6: 'timeout check' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '5x'",
			"t.cfg:7: 'timeout queue' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '6x'",
			"t.cfg:8: 'timeout http-request' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '7x'",
			"t.cfg:9: 'timeout http-keep-alive' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '8x'"}},
		{name: "timeout overflow", cfg: "defaults\n    timeout server 25d\n" + lst, errs: []string{
			"t.cfg:2: 'timeout server' is too large: '25d' (the maximum is 2147483647 ms, about 24.8 days)"}},
		{name: "timeouts on the wrong side", cfg: "frontend f\n    bind :81\n    timeout connect 1s\n    default_backend b\nbackend b\n    timeout client 1s\n    server s 127.0.0.1:80\n", warns: []string{
			"t.cfg:3: warning: 'timeout connect' ignored because frontend 'f' has no backend capability",
			"t.cfg:6: warning: 'timeout client' ignored because backend 'b' has no frontend capability"}},

		{name: "maxconn negative", cfg: "defaults\n    maxconn -1\n" + lst, errs: []string{"t.cfg:2: 'maxconn' must be at least 0, got -1"}},
		{name: "maxconn in backend", cfg: "backend b\n    maxconn 10\n    server s 127.0.0.1:80\n" + lst, warns: []string{
			"t.cfg:2: warning: 'maxconn' ignored because backend 'b' has no frontend capability"}},

		{name: "forwardfor bad word", cfg: "defaults\n    mode http\n    option forwardfor always\n" + lst, errs: []string{
			"t.cfg:3: 'option forwardfor' only supports 'except', 'header' and 'if-none' (got 'always')"}},
		{name: "forwardfor header without name", cfg: "defaults\n    mode http\n    option forwardfor header\n" + lst, errs: []string{
			"t.cfg:3: 'option forwardfor header' expects a value"}},
		{name: "forwardfor bad network", cfg: "defaults\n    mode http\n    option forwardfor except 10.0.0.0/33\n" + lst, errs: []string{
			"t.cfg:3: 'option forwardfor except': '10.0.0.0/33' is not an address or a network"}},
		{name: "forwardfor in tcp", cfg: "defaults\n    option forwardfor\n" + lst, warns: []string{
			"t.cfg:2: warning: 'option forwardfor' ignored for listen 'l' as it requires HTTP mode"}},
		{name: "no forwardfor", cfg: "defaults\n    no option forwardfor\n" + lst, errs: []string{"t.cfg:2: 'no' is not supported for 'option forwardfor'"}},

		{name: "no log with argument", cfg: "defaults\n    no log global\n" + lst, errs: []string{"t.cfg:2: 'log' takes no argument (got 'global')"}},
		{name: "proxy log error", cfg: "defaults\n    log 127.0.0.1\n" + lst, errs: []string{"t.cfg:2: 'log' expects a target and a facility"}},
		{name: "tcplog with argument", cfg: "defaults\n    option tcplog clf\n" + lst, errs: []string{"t.cfg:2: 'option tcplog' takes no argument (got 'clf')"}},
		{name: "httplog in tcp", cfg: "listen x\n    log stdout local0\n    option httplog\n    bind :80\n    server s 127.0.0.1:80\n", warns: []string{
			"t.cfg:3: warning: 'option httplog' not usable with listen 'x' (needs 'mode http'): falling back to 'option tcplog'"}},
		{name: "log format without log", cfg: "defaults\n    log global\n    option tcplog\n" + lst, warns: []string{
			"t.cfg:3: warning: 'option tcplog' ignored for listen 'l' since it has no log address"}},
		{name: "tcplog in backend", cfg: "backend b\n    option tcplog\n    server s 127.0.0.1:80\n" + lst, warns: []string{
			"t.cfg:2: warning: 'option tcplog' ignored because backend 'b' has no frontend capability"}},
		{name: "no tcplog", cfg: "defaults\n    no option tcplog\n" + lst, errs: []string{"t.cfg:2: 'no' is not supported for 'option tcplog'"}},

		{name: "retries negative", cfg: "defaults\n    retries -1\n" + lst, errs: []string{"t.cfg:2: 'retries' must be at least 0, got -1"}},
		{name: "redispatch interval", cfg: "defaults\n    option redispatch 2\n" + lst, errs: []string{"t.cfg:2: 'option redispatch' takes no argument (got '2')"}},
		{name: "disabled with argument", cfg: "defaults\n    disabled now\n" + lst, errs: []string{"t.cfg:2: 'disabled' takes no argument (got 'now')"}},
		{name: "id zero", cfg: "listen x\n    id 0\n    bind :80\n    server s 127.0.0.1:80\n", errs: []string{"t.cfg:2: 'id' must be at least 1, got 0"}},
		{name: "id in defaults", cfg: "defaults\n    id 3\n" + lst, errs: []string{"t.cfg:2: 'id' not allowed in 'defaults' section"}},
		{name: "option alone", cfg: "defaults\n    option\n" + lst, errs: []string{"t.cfg:2: 'option' expects one of: forwardfor, http-keep-alive, http-server-close, httpclose, httplog, redispatch, tcplog"}},
		{name: "option unknown", cfg: "defaults\n    option redispach\n" + lst, errs: []string{
			"t.cfg:2: unknown keyword 'option redispach' in 'defaults' section (did you mean 'option redispatch'?)"}},
		{name: "option unsupported", cfg: "defaults\n    option httpchk GET /\n" + lst, errs: []string{"t.cfg:2: 'option httpchk' is not supported"}},
		{name: "no on a plain keyword", cfg: "defaults\n    no balance\n" + lst, errs: []string{"t.cfg:2: 'no' is not supported for 'balance'"}},
		{name: "global keyword in proxy", cfg: "defaults\n    cpu-map 1 0\n" + lst, errs: []string{
			"t.cfg:2: 'cpu-map' not allowed in 'defaults' section (it belongs in the 'global' section)"}},
		{name: "unknown keyword", cfg: "listen worker\n    bind :80\n    balence leastconn\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:3: unknown keyword 'balence' in 'listen worker' section (did you mean 'balance'?)"}},
		{name: "unknown keyword far from any", cfg: "listen worker\n    bind :80\n    zzzzzzzz\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:3: unknown keyword 'zzzzzzzz' in 'listen worker' section"}},
	})
}

func TestChecks(t *testing.T) {
	runCases(t, []loadCase{
		{name: "same frontend names", cfg: "frontend f\n    bind :81\n    default_backend l\nfrontend f\n    bind :82\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:4: frontend 'f' has the same name as frontend 'f' declared at t.cfg:1"}},
		{name: "same backend names", cfg: "backend b\n    server s 127.0.0.1:80\nbackend b\n    server s 127.0.0.1:80\n" + lst, errs: []string{
			"t.cfg:3: backend 'b' has the same name as backend 'b' declared at t.cfg:1"}},
		{name: "listen and frontend names", cfg: "frontend l\n    bind :81\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:5: listen 'l' has the same name as frontend 'l' declared at t.cfg:1"}},
		{name: "frontend and backend names", cfg: "frontend b\n    bind :81\n    default_backend b\nbackend b\n    server s 127.0.0.1:80\n"},
		{name: "same proxy ids", cfg: "frontend f\n    id 3\n    bind :81\n    default_backend l\nbackend b\n    id 3\n    server s 127.0.0.1:80\n" + lst, errs: []string{
			"t.cfg:5: backend 'b' reuses id 3 of frontend 'f' (declared at t.cfg:1)"}},
		{name: "same server names", cfg: "listen x\n    bind :81\n    server s 127.0.0.1:80\n    server s 127.0.0.1:81\n", errs: []string{
			"t.cfg:4: listen 'x': server 's' already defined at t.cfg:3"}},
		{name: "same server ids", cfg: "listen x\n    bind :81\n    server s 127.0.0.1:80 id 2\n    server t 127.0.0.1:81 id 2\n", errs: []string{
			"t.cfg:4: server 't' reuses id 2 of server 's' (declared at t.cfg:3)"}},
		{name: "same bind ids", cfg: "listen x\n    bind :81 id 4\n    bind :82 id 4\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:3: bind :82 reuses id 4 of bind :81 (declared at t.cfg:2)"}},
		{name: "missing backend", cfg: "frontend f\n    bind :81\n    default_backend m\n" + lst, errs: []string{
			"t.cfg:3: frontend 'f': default_backend 'm': no such backend"}},
		{name: "misspelt backend", cfg: "frontend f\n    bind :81\n    use_backend workers\n    default_backend l\nbackend worker\n    server s 127.0.0.1:80\n" + lst, errs: []string{
			"t.cfg:3: frontend 'f': use_backend 'workers': no such backend (did you mean 'worker'?)"}},
		{name: "backend is a frontend", cfg: "frontend f\n    bind :81\n    default_backend g\nfrontend g\n    bind :82\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: frontend 'f': default_backend 'g' is a frontend, not a backend"}},
		{name: "missing backend from defaults", cfg: "defaults\n    default_backend nope\nfrontend f\n    bind :81\n" + lst, errs: []string{
			"t.cfg:2: frontend 'f': default_backend 'nope': no such backend",
			"t.cfg:2: listen 'l': default_backend 'nope': no such backend"},
			warns: []string{"t.cfg:2: warning: listen 'l' has servers, but its backend rules take every connection: the servers are never used"}},
		{name: "http frontend tcp backend", cfg: "frontend f\n    mode http\n    bind :81\n    use_backend l\n" + lst, errs: []string{
			"t.cfg:4: http frontend 'f' cannot use tcp listen 'l' in its use_backend (see 'mode')"}},
		{name: "tcp frontend http backend", cfg: "frontend f\n    bind :81\n    default_backend b\nbackend b\n    mode http\n    server s 127.0.0.1:80\n"},
		{name: "frontend without bind", cfg: "frontend f\n    default_backend l\n" + lst, warns: []string{
			"t.cfg:1: warning: frontend 'f' has no bind line: it accepts no connection (declare it as a backend if that is what it is)"}},
		{name: "frontend without backend", cfg: "frontend f\n    bind :81\n" + lst, warns: []string{
			"t.cfg:1: warning: frontend 'f' has no default_backend nor use_backend: it has nowhere to send connections"}},
		{name: "listen with servers and default_backend", cfg: "listen x\n    bind :81\n    default_backend l\n    server s 127.0.0.1:80\n" + lst, warns: []string{
			"t.cfg:3: warning: listen 'x' has servers, but its backend rules take every connection: the servers are never used"}},
		{name: "abns server without bind", cfg: "listen x\n    bind :81\n    server s abns@nowhere\n", warns: []string{
			"t.cfg:3: warning: server 's': no bind of this configuration listens on abns@nowhere"}},
		{name: "abnsz server to abns bind", cfg: "listen x\n    bind :81\n    server s abnsz@w\nlisten y\n    bind abns@w\n    server s 127.0.0.1:80\n", warns: []string{
			"t.cfg:3: warning: server 's': no bind of this configuration listens on abnsz@w"}},
		{name: "ssl without crt", cfg: "listen x\n    bind :443 ssl\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :443: 'ssl' needs a certificate: add 'crt FILE' or 'crt-list FILE'"}},
		{name: "missing crt", cfg: "listen x\n    bind :443 ssl crt testdata/nope.pem\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :443: certificate 'testdata/nope.pem': cannot stat: no such file or directory"}},
		{name: "crt directory", cfg: "listen x\n    bind :443 ssl crt testdata/certs crt testdata/site.pem\n    server s 127.0.0.1:80\n"},
		{name: "empty crt directory", cfg: "listen x\n    bind :443 ssl crt testdata/compare/empty\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind :443: certificate 'testdata/compare/empty': cannot stat: no such file or directory"}},
		{name: "crt without ssl", cfg: "listen x\n    bind :443 crt testdata/site.pem alpn h2\n    server s 127.0.0.1:80\n", warns: []string{
			"t.cfg:2: warning: bind :443: 'crt' has no effect without 'ssl'",
			"t.cfg:2: warning: bind :443: 'alpn' has no effect without 'ssl'"}},
		{name: "unresolvable server", cfg: "listen x\n    bind :81\n    server s nowhere.example:80\n", errs: []string{
			"t.cfg:3: server 's': resolve nowhere.example: no such host"}},
		{name: "unresolvable bind", cfg: "listen x\n    bind nowhere.example:80\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:2: bind nowhere.example:80: resolve nowhere.example: no such host"}},
	})
}

// TestEveryErrorHasALine checks that whatever the mistake, its message
// says where it is.
func TestEveryErrorHasALine(t *testing.T) {
	for _, text := range []string{
		"frontend f\n    bind :80\n    default_backend nope\n",
		"listen x\n    bind :80 ssl\n    server s nowhere.example:80\n",
		"global\n    nbproc 2\n    nbthread 3\n",
	} {
		_, _, err := load(text)
		for _, line := range errorStrings(t, err) {
			if !strings.HasPrefix(line, "t.cfg:") || strings.HasPrefix(line, "t.cfg: ") {
				t.Errorf("no line in %q", line)
			}
		}
	}
}

func TestStatsPageKeywords(t *testing.T) {
	const page = "listen stats\n    mode http\n    bind 127.0.0.1:8404\n"
	runCases(t, []loadCase{
		{name: "page", cfg: page + "    stats enable\n    stats uri /stats\n    stats refresh 10s\n" + lst},
		{name: "uri alone enables it", cfg: page + "    stats uri /s\n" + lst},
		{name: "uri without slash", cfg: page + "    stats uri stats\n" + lst,
			errs: []string{"t.cfg:4: 'stats uri' expects a path starting with '/', got 'stats'"}},
		{name: "refresh not a time", cfg: page + "    stats refresh soon\n" + lst,
			errs: []string{"t.cfg:4: 'stats refresh' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got 'soon'"}},
		{name: "tcp mode", cfg: "listen stats\n    bind 127.0.0.1:8404\n    stats enable\n" + lst,
			errs: []string{"t.cfg:1: listen 'stats': the stats page needs 'mode http'"}},
		{name: "with servers", cfg: page + "    stats enable\n    server s 127.0.0.1:80\n" + lst,
			errs: []string{"t.cfg:1: listen 'stats': sluice serves the stats page from the master, in a proxy of its own: move the servers and backends of this proxy to another one"}},
		{name: "ssl bind", cfg: "listen stats\n    mode http\n    bind 127.0.0.1:8404 ssl crt testdata/site.pem\n    stats enable\n" + lst,
			errs: []string{"t.cfg:3: bind 127.0.0.1:8404: ssl on the stats page's bind is not supported; serve it on a local or private address"}},
		{name: "auth refused", cfg: page + "    stats auth admin:secret\n" + lst,
			errs: []string{"t.cfg:4: 'stats auth' is not supported"}},
	})
}

func TestStrictLimits(t *testing.T) {
	if cfg := mustLoad(t, "global\n    no strict-limits\n"+lst); !cfg.Global.NoStrictLimits {
		t.Error("no strict-limits not set")
	}
	if cfg := mustLoad(t, "global\n    strict-limits\n"+lst); cfg.Global.NoStrictLimits {
		t.Error("strict-limits set no strict-limits")
	}
	runCases(t, []loadCase{{name: "argument", cfg: "global\n    strict-limits yes\n" + lst, errs: []string{"t.cfg:2: 'strict-limits' takes no argument (got 'yes')"}}})
}
