package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// res is a valid resolvers section to put before the lines under test.
const res = `resolvers dns
    nameserver ns1 10.0.0.1:53
`

// loadResolvConf loads text with the test loader reading a resolv.conf
// holding conf ("" = no such file).
func loadResolvConf(t *testing.T, conf, text string) (*Config, []Diagnostic, error) {
	t.Helper()
	ld := testLoader()
	ld.resolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	if conf != "" {
		if err := os.WriteFile(ld.resolvConf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ld.loadBytes("t.cfg", []byte(text))
}

func TestResolversKeywords(t *testing.T) {
	runCases(t, []loadCase{
		{name: "every keyword", cfg: `resolvers dns
    nameserver ns1 10.0.0.1:53
    nameserver ns2 udp@10.0.0.2
    nameserver ns3 tcp@[2001:db8::1]:5353
    nameserver ns4 app.example:53
    parse-resolv-conf
    accepted_payload_size 8192
    resolve_retries 5
    timeout resolve 2s
    timeout retry 500ms
    hold valid 5s
    hold nx 10s
    hold timeout 11s
    hold refused 12s
    hold other 13s
    hold obsolete 14s
` + lst},
		{name: "parse-resolv-conf alone", cfg: "resolvers dns\n    parse-resolv-conf\n" + lst},
		{name: "keyword outside resolvers", cfg: "defaults\n    timeout resolve 1s\n" + lst, errs: []string{
			"t.cfg:2: 'timeout resolve' not allowed in 'defaults' section (it belongs in 'resolvers' sections)"}},
		{name: "nameserver in a proxy", cfg: "listen x\n    bind :81\n    nameserver ns1 10.0.0.1:53\n    server s 127.0.0.1:80\n", errs: []string{
			"t.cfg:3: 'nameserver' not allowed in 'listen x' section (it belongs in 'resolvers' sections)"}},
		{name: "nameserver in global", cfg: "global\n    nameserver ns1 10.0.0.1:53\n" + res + lst, errs: []string{
			"t.cfg:2: 'nameserver' not allowed in 'global' section (it belongs in 'resolvers' sections)"}},
		{name: "proxy keyword in resolvers", cfg: res + "    mode http\n" + lst, errs: []string{
			"t.cfg:3: 'mode' not allowed in 'resolvers dns' section (it belongs in proxy sections)"}},
		{name: "global keyword in resolvers", cfg: res + "    nbproc 2\n" + lst, errs: []string{
			"t.cfg:3: 'nbproc' not allowed in 'resolvers dns' section (it belongs in the 'global' section)"}},
		{name: "unknown keyword", cfg: res + "    nameservr ns2 10.0.0.2:53\n" + lst, errs: []string{
			"t.cfg:3: unknown keyword 'nameservr' in 'resolvers dns' section (did you mean 'nameserver'?)"}},
		{name: "unknown keyword far from any", cfg: res + "    resolution_pool_size 64\n" + lst, errs: []string{
			"t.cfg:3: unknown keyword 'resolution_pool_size' in 'resolvers dns' section"}},
		{name: "no", cfg: res + "    no parse-resolv-conf\n" + lst, errs: []string{"t.cfg:3: 'no' is not supported for 'parse-resolv-conf'"}},
		{name: "lines of a bad section are checked", cfg: "resolvers\n    nameserver ns1 10.0.0.1:0\n" + lst, errs: []string{
			"t.cfg:1: 'resolvers' expects a name",
			"t.cfg:2: 'nameserver ns1': address '10.0.0.1:0': port '0' is not a number from 1 to 65535"}},

		{name: "nameserver without address", cfg: res + "    nameserver ns2\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver' expects a name and an address (ip[:port], udp@ip[:port] or tcp@ip[:port])"}},
		{name: "nameserver bad name", cfg: res + "    nameserver n/s 10.0.0.2:53\n" + lst, errs: []string{
			"t.cfg:3: character '/' is not permitted in nameserver name 'n/s'"}},
		{name: "nameserver option", cfg: res + "    nameserver ns2 10.0.0.2:53 ssl\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': unexpected 'ssl' (nameserver options are not supported)"}},
		{name: "nameserver twice", cfg: res + "    nameserver ns1 10.0.0.2:53\n" + lst, errs: []string{
			"t.cfg:3: resolvers 'dns': nameserver 'ns1' already defined at t.cfg:2"}},
		{name: "same nameserver name in two sections", cfg: res + "resolvers dns2\n    nameserver ns1 10.0.0.1:53\n" + lst},
		{name: "nameserver unix socket", cfg: res + "    nameserver ns2 unix@/run/dns.sock\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address 'unix@/run/dns.sock' is not supported: use ip[:port], udp@ip[:port] or tcp@ip[:port]"}},
		{name: "nameserver abstract socket", cfg: res + "    nameserver ns2 abns@dns\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address 'abns@dns' is not supported: use ip[:port], udp@ip[:port] or tcp@ip[:port]"}},
		{name: "nameserver path", cfg: res + "    nameserver ns2 /run/dns.sock\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '/run/dns.sock' is not supported: use ip[:port], udp@ip[:port] or tcp@ip[:port]"}},
		{name: "nameserver bare ipv6", cfg: res + "    nameserver ns2 2001:db8::1\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '2001:db8::1': write IPv6 addresses in brackets, as in [2001:db8::1]:53"}},
		{name: "nameserver ipv4 in brackets", cfg: res + "    nameserver ns2 [10.0.0.2]:53\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '[10.0.0.2]:53': invalid host '10.0.0.2'"}},
		{name: "nameserver port zero", cfg: res + "    nameserver ns2 10.0.0.2:0\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '10.0.0.2:0': port '0' is not a number from 1 to 65535"}},
		{name: "nameserver port word", cfg: res + "    nameserver ns2 tcp@10.0.0.2:dns\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address 'tcp@10.0.0.2:dns': port 'dns' is not a number from 1 to 65535"}},
		{name: "nameserver empty port", cfg: res + "    nameserver ns2 10.0.0.2:\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '10.0.0.2:': port '' is not a number from 1 to 65535"}},
		{name: "nameserver port range", cfg: res + "    nameserver ns2 10.0.0.2:53-54\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '10.0.0.2:53-54': port ranges are not supported"}},
		{name: "nameserver every address", cfg: res + "    nameserver ns2 *:53\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '*:53': invalid host '*'"}},
		{name: "nameserver bad host", cfg: res + "    nameserver ns2 -dns-.example\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': address '-dns-.example': invalid host '-dns-.example'"}},
		{name: "nameserver host name that does not resolve", cfg: res + "    nameserver ns2 nowhere.example:53\n" + lst, errs: []string{
			"t.cfg:3: 'nameserver ns2': resolve nowhere.example: no such host"}},

		{name: "parse-resolv-conf with argument", cfg: res + "    parse-resolv-conf now\n" + lst, errs: []string{
			"t.cfg:3: 'parse-resolv-conf' takes no argument (got 'now')"}},
		{name: "parse-resolv-conf twice", cfg: "resolvers dns\n    parse-resolv-conf\n    parse-resolv-conf\n" + lst, warns: []string{
			"t.cfg:3: warning: 'parse-resolv-conf': testdata/resolv.conf:3: nameserver '192.0.2.53' is already defined at t.cfg:2, skipped",
			"t.cfg:3: warning: 'parse-resolv-conf': testdata/resolv.conf:4: nameserver '2001:db8::53' is already defined at t.cfg:2, skipped"}},
		{name: "nameserver named like one of resolv.conf", cfg: "resolvers dns\n    parse-resolv-conf\n    nameserver 192.0.2.53 10.0.0.1:53\n" + lst, errs: []string{
			"t.cfg:3: resolvers 'dns': nameserver '192.0.2.53' already defined at t.cfg:2"}},

		{name: "accepted_payload_size small", cfg: res + "    accepted_payload_size 511\n" + lst, errs: []string{
			"t.cfg:3: 'accepted_payload_size' must be between 512 and 65535, got 511"}},
		{name: "accepted_payload_size large", cfg: res + "    accepted_payload_size 65536\n" + lst, errs: []string{
			"t.cfg:3: 'accepted_payload_size' must be between 512 and 65535, got 65536"}},
		{name: "accepted_payload_size word", cfg: res + "    accepted_payload_size big\n" + lst, errs: []string{
			"t.cfg:3: 'accepted_payload_size' expects a number, got 'big'"}},
		{name: "accepted_payload_size without value", cfg: res + "    accepted_payload_size\n" + lst, errs: []string{
			"t.cfg:3: 'accepted_payload_size' expects a number"}},
		{name: "accepted_payload_size two values", cfg: res + "    accepted_payload_size 512 1024\n" + lst, errs: []string{
			"t.cfg:3: 'accepted_payload_size': unexpected argument '1024'"}},
		{name: "resolve_retries zero", cfg: res + "    resolve_retries 0\n" + lst, errs: []string{
			"t.cfg:3: 'resolve_retries' must be at least 1, got 0"}},
		{name: "resolve_retries word", cfg: res + "    resolve_retries x\n" + lst, errs: []string{
			"t.cfg:3: 'resolve_retries' expects a number, got 'x'"}},
		{name: "resolve_retries without value", cfg: res + "    resolve_retries\n" + lst, errs: []string{
			"t.cfg:3: 'resolve_retries' expects a number"}},

		{name: "timeout alone", cfg: res + "    timeout\n" + lst, errs: []string{"t.cfg:3: 'timeout' expects one of: resolve, retry"}},
		{name: "timeout unknown", cfg: res + "    timeout retri 1s\n" + lst, errs: []string{
			"t.cfg:3: unknown keyword 'timeout retri' in 'resolvers dns' section (did you mean 'timeout retry'?)"}},
		{name: "timeout of proxies", cfg: res + "    timeout connect 1s\n" + lst, errs: []string{
			"t.cfg:3: 'timeout connect' not allowed in 'resolvers dns' section (it belongs in proxy sections)"}},
		{name: "timeout resolve zero", cfg: res + "    timeout resolve 0\n" + lst, errs: []string{"t.cfg:3: 'timeout resolve' must be more than 0"}},
		{name: "timeout retry zero", cfg: res + "    timeout retry 0s\n" + lst, errs: []string{"t.cfg:3: 'timeout retry' must be more than 0"}},
		{name: "timeout retry bad", cfg: res + "    timeout retry 1x\n" + lst, errs: []string{
			"t.cfg:3: 'timeout retry' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '1x'"}},
		{name: "timeout resolve without value", cfg: res + "    timeout resolve\n" + lst, errs: []string{
			"t.cfg:3: 'timeout resolve' expects a time (e.g. 30s)"}},
		{name: "timeout resolve overflow", cfg: res + "    timeout resolve 25d\n" + lst, errs: []string{
			"t.cfg:3: 'timeout resolve' is too large: '25d' (the maximum is 2147483647 ms, about 24.8 days)"}},

		{name: "hold alone", cfg: res + "    hold\n" + lst, errs: []string{"t.cfg:3: 'hold' expects one of: nx, obsolete, other, refused, timeout, valid"}},
		{name: "hold unknown", cfg: res + "    hold nxdomain 1s\n" + lst, errs: []string{
			"t.cfg:3: unknown keyword 'hold nxdomain' in 'resolvers dns' section"}},
		{name: "hold misspelt", cfg: res + "    hold refuse 1s\n" + lst, errs: []string{
			"t.cfg:3: unknown keyword 'hold refuse' in 'resolvers dns' section (did you mean 'hold refused'?)"}},
		{name: "hold without value", cfg: res + "    hold nx\n" + lst, errs: []string{"t.cfg:3: 'hold nx' expects a time (e.g. 30s)"}},
		{name: "hold bad values", cfg: res + "    hold valid 1x\n    hold nx 2x\n    hold timeout 3x\n    hold refused 4x\n    hold other 5x\n    hold obsolete 6x\n" + lst, errs: []string{
			"t.cfg:3: 'hold valid' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '1x'",
			"t.cfg:4: 'hold nx' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '2x'",
			"t.cfg:5: 'hold timeout' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '3x'",
			"t.cfg:6: 'hold refused' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '4x'",
			"t.cfg:7: 'hold other' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '5x'",
			"t.cfg:8: 'hold obsolete' expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '6x'"}},
		{name: "hold two values", cfg: res + "    hold nx 1s 2s\n" + lst, errs: []string{"t.cfg:3: 'hold nx': unexpected argument '2s'"}},
	})
}

func TestParseResolvConf(t *testing.T) {
	const text = "resolvers dns\n    parse-resolv-conf\n" + lst
	tests := []struct {
		name, conf  string
		errs, warns []string
		servers     []Nameserver
	}{
		{name: "missing file", errs: []string{"t.cfg:2: 'parse-resolv-conf': RESOLV: cannot open: no such file or directory"}},
		{name: "no nameserver", conf: "search example\noptions ndots:2\n", errs: []string{"t.cfg:2: 'parse-resolv-conf': RESOLV lists no nameserver"}},
		{name: "only bad lines", conf: "nameserver\nnameserver dns.example\n", errs: []string{"t.cfg:2: 'parse-resolv-conf': RESOLV lists no nameserver"},
			warns: []string{
				"t.cfg:2: warning: 'parse-resolv-conf': RESOLV:1: nameserver line without an address, skipped",
				"t.cfg:2: warning: 'parse-resolv-conf': RESOLV:2: 'dns.example' is not an IP address, skipped"}},
		{name: "nameservers", conf: "# comment\nnameserver 10.0.0.1\n  nameserver   fe80::1%eth0  \nnameserver 10.0.0.1\n",
			warns: []string{"t.cfg:2: warning: 'parse-resolv-conf': RESOLV:4: nameserver '10.0.0.1' is already defined at t.cfg:2, skipped"},
			servers: []Nameserver{
				{Name: "10.0.0.1", Addr: "10.0.0.1:53", Pos: Pos{"t.cfg", 2}},
				{Name: "fe80::1%eth0", Addr: "[fe80::1%eth0]:53", Pos: Pos{"t.cfg", 2}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld := testLoader()
			ld.resolvConf = filepath.Join(t.TempDir(), "resolv.conf")
			if tt.conf != "" {
				if err := os.WriteFile(ld.resolvConf, []byte(tt.conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, warns, err := ld.loadBytes("t.cfg", []byte(text))
			fix := func(lines []string) (out []string) {
				for _, l := range lines {
					out = append(out, strings.ReplaceAll(l, "RESOLV", ld.resolvConf))
				}
				return out
			}
			if got, want := errorStrings(t, err), fix(tt.errs); !reflect.DeepEqual(got, want) {
				t.Errorf("errors %q, want %q", got, want)
			}
			if got, want := diagStrings(warns), fix(tt.warns); !reflect.DeepEqual(got, want) {
				t.Errorf("warnings %q, want %q", got, want)
			}
			if cfg != nil && !reflect.DeepEqual(cfg.Resolvers[0].Nameservers, tt.servers) {
				t.Errorf("nameservers %+v, want %+v", cfg.Resolvers[0].Nameservers, tt.servers)
			}
		})
	}
}

func TestResolversValues(t *testing.T) {
	cfg := mustLoad(t, `resolvers dns
    nameserver ns1 10.0.0.1
    nameserver ns2 udp@10.0.0.2:5353
    parse-resolv-conf
    nameserver ns3 tcp@[2001:db8::1]:5353
    nameserver ns4 tcp4@app.example
    accepted_payload_size 8192
    resolve_retries 5
    timeout resolve 2s
    timeout retry 500ms
    hold valid 5s
    hold nx 10s
    hold timeout 11s
    hold refused 12s
    hold other 13s
    hold obsolete 14s
resolvers plain
    nameserver ns1 [::1]
`+lst)
	want := []*Resolvers{{
		Name: "dns",
		Nameservers: []Nameserver{
			{Name: "ns1", Addr: "10.0.0.1:53", Pos: Pos{"t.cfg", 2}},
			{Name: "ns2", Addr: "10.0.0.2:5353", Pos: Pos{"t.cfg", 3}},
			{Name: "192.0.2.53", Addr: "192.0.2.53:53", Pos: Pos{"t.cfg", 4}},
			{Name: "2001:db8::53", Addr: "[2001:db8::53]:53", Pos: Pos{"t.cfg", 4}},
			{Name: "ns3", Addr: "[2001:db8::1]:5353", TCP: true, Pos: Pos{"t.cfg", 5}},
			{Name: "ns4", Addr: "192.0.2.10:53", TCP: true, Pos: Pos{"t.cfg", 6}},
		},
		ParseResolvConf:     true,
		AcceptedPayloadSize: 8192,
		ResolveRetries:      5,
		TimeoutResolve:      2 * time.Second,
		TimeoutRetry:        500 * time.Millisecond,
		Hold:                Hold{Valid: 5 * time.Second, NX: 10 * time.Second, Timeout: 11 * time.Second, Refused: 12 * time.Second, Other: 13 * time.Second, Obsolete: 14 * time.Second},
		Pos:                 Pos{"t.cfg", 1},
	}, {
		// HAProxy's defaults.
		Name:                "plain",
		Nameservers:         []Nameserver{{Name: "ns1", Addr: "[::1]:53", Pos: Pos{"t.cfg", 18}}},
		AcceptedPayloadSize: 512,
		ResolveRetries:      3,
		TimeoutResolve:      time.Second,
		TimeoutRetry:        time.Second,
		Hold:                Hold{Valid: 10 * time.Second, NX: 30 * time.Second, Timeout: 30 * time.Second, Refused: 30 * time.Second, Other: 30 * time.Second},
		Pos:                 Pos{"t.cfg", 17},
	}}
	if !reflect.DeepEqual(cfg.Resolvers, want) {
		for i := range cfg.Resolvers {
			t.Errorf("resolvers %d = %+v", i, *cfg.Resolvers[i])
		}
	}
	if cfg.Resolver("plain") != cfg.Resolvers[1] || cfg.Resolver("nope") != nil {
		t.Error("Resolver()")
	}
	if got := mustLoad(t, lst).Resolvers; got == nil || len(got) != 0 {
		t.Errorf("Resolvers = %#v, want an empty list", got)
	}
}

func TestServerDNSOptions(t *testing.T) {
	const l = "listen x\n    bind :81\n"
	runCases(t, []loadCase{
		{name: "every option", cfg: res + l + "    server s app.example:80 resolvers dns resolve-prefer ipv4 resolve-net 10.0.0.0/8,192.168.0.0/255.255.0.0 init-addr libc,none\n"},
		{name: "resolvers after the proxy", cfg: l + "    server s app.example:80 resolvers dns\n" + res},
		{name: "resolvers on an address", cfg: res + l + "    server s 127.0.0.1:80 resolvers dns\n"},
		{name: "resolvers missing", cfg: res + l + "    server s app.example:80 resolvers dnss\n", errs: []string{
			"t.cfg:5: server 's': resolvers 'dnss': no such resolvers section (did you mean 'dns'?)"}},
		{name: "resolvers without sections", cfg: l + "    server s app.example:80 resolvers dns\n", errs: []string{
			"t.cfg:3: server 's': resolvers 'dns': no such resolvers section"}},
		{name: "resolvers without value", cfg: res + l + "    server s app.example:80 resolvers\n", errs: []string{
			"t.cfg:5: server 's': 'resolvers' expects a value"}},
		{name: "resolvers empty", cfg: res + l + "    server s app.example:80 resolvers \"\"\n", errs: []string{
			"t.cfg:5: server 's': 'resolvers' expects the name of a resolvers section"}},
		{name: "implicit default resolvers", cfg: l + "    server s app.example:80 resolvers default\n    server t app.example:80 resolvers default\n"},
		{name: "resolve-prefer", cfg: res + l + "    server s app.example:80 resolve-prefer ipv5\n", errs: []string{
			"t.cfg:5: server 's': 'resolve-prefer' expects 'ipv4' or 'ipv6', got 'ipv5'"}},
		{name: "resolve-prefer without value", cfg: res + l + "    server s app.example:80 resolve-prefer\n", errs: []string{
			"t.cfg:5: server 's': 'resolve-prefer' expects a value"}},
		{name: "resolve-net", cfg: res + l + "    server s app.example:80 resolve-net 10.0.0.0/33\n", errs: []string{
			"t.cfg:5: server 's': 'resolve-net': '10.0.0.0/33' is not an address or a network"}},
		{name: "resolve-net empty item", cfg: res + l + "    server s app.example:80 resolve-net 10.0.0.0/8,,10.1.0.0/16\n", errs: []string{
			"t.cfg:5: server 's': 'resolve-net': '' is not an address or a network"}},
		{name: "init-addr", cfg: res + l + "    server s app.example:80 init-addr libc,dns\n", errs: []string{
			"t.cfg:5: server 's': 'init-addr': unknown method 'dns' (expected last, libc, none or an IP address)"}},
		{name: "init-addr bad address", cfg: res + l + "    server s app.example:80 init-addr none,10.0.0.300\n", errs: []string{
			"t.cfg:5: server 's': 'init-addr': unknown method '10.0.0.300' (expected last, libc, none or an IP address)"}},
		{name: "init-addr zone", cfg: res + l + "    server s app.example:80 init-addr fe80::1%eth0\n", errs: []string{
			"t.cfg:5: server 's': 'init-addr': unknown method 'fe80::1%eth0' (expected last, libc, none or an IP address)"}},
		{name: "init-addr empty", cfg: res + l + "    server s app.example:80 init-addr ,\n", errs: []string{
			"t.cfg:5: server 's': 'init-addr' expects a comma-separated list of methods: last, libc, none or an IP address"}},
		{name: "init-addr error alone", cfg: l + "    server s nowhere.example:80 init-addr dns\n", errs: []string{
			"t.cfg:3: server 's': 'init-addr': unknown method 'dns' (expected last, libc, none or an IP address)"}},
		{name: "nameserver error alone", cfg: "resolvers dns\n    nameserver ns1 10.0.0.1:0\n" + lst, errs: []string{
			"t.cfg:2: 'nameserver ns1': address '10.0.0.1:0': port '0' is not a number from 1 to 65535"}},
		{name: "init-addr empty items", cfg: res + l + "    server s nowhere.example:80 init-addr ,none,\n"},
		{name: "resolve-opts", cfg: res + l + "    server s app.example:80 resolve-opts allow-dup-ip\n", errs: []string{
			"t.cfg:5: server 's': unknown option 'resolve-opts' (did you mean 'resolve-net'?)"}},

		{name: "name that does not resolve", cfg: l + "    server s nowhere.example:80\n", errs: []string{
			"t.cfg:3: server 's': resolve nowhere.example: no such host"}},
		{name: "libc only", cfg: res + l + "    server s nowhere.example:80 resolvers dns init-addr libc\n", errs: []string{
			"t.cfg:5: server 's': resolve nowhere.example: no such host"}},
		{name: "resolvers default to none", cfg: res + l + "    server s nowhere.example:80 resolvers dns\n", warns: []string{
			"t.cfg:5: warning: server 's': resolve nowhere.example: no such host: starting without an address, in maintenance until its resolvers give it one"}},
		{name: "libc then none without resolvers", cfg: l + "    server s nowhere.example:80 init-addr libc,none\n", warns: []string{
			"t.cfg:3: warning: server 's': resolve nowhere.example: no such host: starting without an address, in maintenance until one is set at run time"}},
		{name: "libc then address", cfg: l + "    server s nowhere.example:80 init-addr libc,10.0.0.9\n", warns: []string{
			"t.cfg:3: warning: server 's': resolve nowhere.example: no such host: using the init-addr address 10.0.0.9"}},
		{name: "none", cfg: l + "    server s nowhere.example:80 init-addr none\n"},
		{name: "last alone", cfg: l + "    server s nowhere.example:80 init-addr last\n", errs: []string{
			"t.cfg:3: server 's': no init-addr method gives 'nowhere.example' an address at load ('last' is applied when the process starts, from the server-state-file): add 'libc', 'none' or an IP address"}},
		{name: "last then none", cfg: l + "    server s nowhere.example:80 init-addr last,none\n"},

		{name: "srv", cfg: res + l + "    server s _http._tcp.app.example resolvers dns\n"},
		{name: "srv with port", cfg: res + l + "    server s _http._tcp.app.example:80 resolvers dns\n", errs: []string{
			"t.cfg:5: server 's': '_http._tcp.app.example' is an SRV name: it takes no port, which comes from its SRV records (remove ':80')"}},
		{name: "srv bad name", cfg: res + l + "    server s _http._tcp..example resolvers dns\n", errs: []string{
			`t.cfg:5: server 's': address "_http._tcp..example": invalid SRV name`}},
		{name: "srv without resolvers", cfg: l + "    server s _http._tcp.app.example\n", errs: []string{
			"t.cfg:3: server 's': the SRV name '_http._tcp.app.example' needs 'resolvers': it can only be resolved at run time"}},
		{name: "srv with libc", cfg: res + l + "    server s _http._tcp.app.example resolvers dns init-addr last,libc\n", errs: []string{
			"t.cfg:5: server 's': the SRV name '_http._tcp.app.example' is only resolved at run time: its init-addr needs 'none'"}},
		{name: "srv with address", cfg: res + l + "    server s _http._tcp.app.example resolvers dns init-addr 10.0.0.1\n", errs: []string{
			"t.cfg:5: server 's': 'init-addr 10.0.0.1' cannot be used with the SRV name '_http._tcp.app.example', whose port comes from DNS (use 'none')"}},
	})
}

func TestImplicitDefaultResolvers(t *testing.T) {
	text := "listen x\n    bind :81\n    server s app.example:80 resolvers default\n    server t app.example:80 resolvers default\n"
	cfg, warns, err := load(text)
	if err != nil || len(warns) > 0 {
		t.Fatalf("load: %v, warnings %v", err, warns)
	}
	want := newResolvers("default", Pos{"t.cfg", 3})
	want.ParseResolvConf = true
	want.Nameservers = []Nameserver{
		{Name: "192.0.2.53", Addr: "192.0.2.53:53", Pos: Pos{"t.cfg", 3}},
		{Name: "2001:db8::53", Addr: "[2001:db8::53]:53", Pos: Pos{"t.cfg", 3}},
	}
	if len(cfg.Resolvers) != 1 || !reflect.DeepEqual(cfg.Resolvers[0], want) {
		t.Errorf("resolvers %+v, want %+v", cfg.Resolvers, want)
	}
	// A section named default is used as it is.
	cfg = mustLoad(t, "resolvers default\n    nameserver ns1 10.0.0.1:53\n"+text)
	if len(cfg.Resolvers) != 1 || cfg.Resolvers[0].Nameservers[0].Name != "ns1" {
		t.Errorf("resolvers %+v", cfg.Resolvers)
	}
	// Without a usable resolv.conf, every server says so.
	_, _, err = loadResolvConf(t, "", text)
	var got []string
	for _, line := range errorStrings(t, err) {
		got = append(got, line[:strings.Index(line, " (")])
	}
	wantErrs := []string{
		"t.cfg:3: server 's': no resolvers section 'default', and none could be made from resolv.conf",
		"t.cfg:4: server 't': no resolvers section 'default', and none could be made from resolv.conf",
	}
	if !reflect.DeepEqual(got, wantErrs) {
		t.Errorf("errors %q, want %q", errorStrings(t, err), wantErrs)
	}
}

func TestServerDNSValues(t *testing.T) {
	cfg := mustLoad(t, res+`listen x
    bind :81
    server a app.example:80 resolvers dns resolve-prefer ipv4 resolve-net 10.0.0.0/8,192.168.0.1/255.255.0.0,10.1.2.3 init-addr libc,none
    server b nowhere.example:81 resolvers dns
    server c nowhere.example:82 init-addr last,10.0.0.9,libc
    server d _http._tcp.app.example resolvers dns check
    server e 127.0.0.1:83 init-addr none resolvers dns
    server f /run/app.sock
`)
	x := cfg.Proxy("x")
	type dns struct {
		host     string
		port     int
		fqdn     string
		res      string
		prefer   string
		nets     []string
		initAddr []string
		noAddr   bool
		srv      bool
	}
	want := map[string]dns{
		"a": {"192.0.2.10", 80, "app.example", "dns", "ipv4", []string{"10.0.0.0/8", "192.168.0.0/16", "10.1.2.3/32"}, []string{"libc", "none"}, false, false},
		"b": {"nowhere.example", 81, "nowhere.example", "dns", "ipv6", nil, []string{"last", "libc", "none"}, true, false},
		"c": {"10.0.0.9", 82, "nowhere.example", "", "ipv6", nil, []string{"last", "10.0.0.9", "libc"}, false, false},
		"d": {"_http._tcp.app.example", 0, "_http._tcp.app.example", "dns", "ipv6", nil, []string{"last", "libc", "none"}, true, true},
		"e": {"127.0.0.1", 83, "", "dns", "ipv6", nil, []string{"none"}, false, false},
		"f": {"", 0, "", "", "ipv6", nil, []string{"last", "libc"}, false, false},
	}
	for _, s := range x.Servers {
		got := dns{s.Addr.Host, s.Addr.Port, s.FQDN, s.Resolvers, s.ResolvePrefer, s.ResolveNets, s.InitAddr, s.NoAddr, s.SRV}
		if !reflect.DeepEqual(got, want[s.Name]) {
			t.Errorf("server %s: %+v\nwant %+v", s.Name, got, want[s.Name])
		}
		if s.Template != "" {
			t.Errorf("server %s: template %q", s.Name, s.Template)
		}
	}
	if d := x.Servers[3]; d.Addr.Text != "_http._tcp.app.example" || !d.Check {
		t.Errorf("server d %+v", d)
	}
}

func TestServerTemplateKeyword(t *testing.T) {
	const l = "listen x\n    bind :81\n"
	runCases(t, []loadCase{
		{name: "template", cfg: res + l + "    server-template srv 3 app.example:80 resolvers dns check\n"},
		{name: "range from zero", cfg: res + l + "    server-template srv 0-2 app.example:80\n"},
		{name: "without address", cfg: l + "    server-template srv 3\n", errs: []string{
			"t.cfg:3: 'server-template' expects a prefix, a number of servers or a range (N or LOW-HIGH) and an address (FQDN[:PORT])"}},
		{name: "bad prefix", cfg: l + "    server-template s/rv 3 app.example:80\n", errs: []string{
			"t.cfg:3: character '/' is not permitted in server-template prefix 's/rv'"}},
		{name: "zero", cfg: l + "    server-template srv 0 app.example:80\n", errs: []string{
			"t.cfg:3: server-template 'srv': '0' is not a number of servers nor a range of numbers (N, or LOW-HIGH)"}},
		{name: "reversed range", cfg: l + "    server-template srv 3-1 app.example:80\n", errs: []string{
			"t.cfg:3: server-template 'srv': '3-1' is not a number of servers nor a range of numbers (N, or LOW-HIGH)"}},
		{name: "word", cfg: l + "    server-template srv x app.example:80\n", errs: []string{
			"t.cfg:3: server-template 'srv': 'x' is not a number of servers nor a range of numbers (N, or LOW-HIGH)"}},
		{name: "bad range end", cfg: l + "    server-template srv 2-x app.example:80\n", errs: []string{
			"t.cfg:3: server-template 'srv': '2-x' is not a number of servers nor a range of numbers (N, or LOW-HIGH)"}},
		{name: "signed", cfg: l + "    server-template srv +2 app.example:80\n", errs: []string{
			"t.cfg:3: server-template 'srv': '+2' is not a number of servers nor a range of numbers (N, or LOW-HIGH)"}},
		{name: "most servers", cfg: l + "    server-template srv 5-10004 127.0.0.1:80\n"},
		{name: "too many by one", cfg: l + "    server-template srv 10001 app.example:80\n", errs: []string{
			"t.cfg:3: server-template 'srv': '10001' makes 10001 servers: at most 10000 servers per line"}},
		{name: "bad address", cfg: l + "    server-template srv 2 app.example\n", errs: []string{
			`t.cfg:3: server-template 'srv': address "app.example": expected host:port, [ipv6]:port or :port`}},
		{name: "srv with port", cfg: res + l + "    server-template srv 2 _http._tcp.app.example:80 resolvers dns\n", errs: []string{
			"t.cfg:5: server-template 'srv': '_http._tcp.app.example' is an SRV name: it takes no port, which comes from its SRV records (remove ':80')"}},
		{name: "srv without resolvers", cfg: l + "    server-template srv 2 _http._tcp.app.example\n", errs: []string{
			"t.cfg:3: server-template 'srv': the SRV name '_http._tcp.app.example' needs 'resolvers': it can only be resolved at run time"}},
		{name: "unknown option", cfg: l + "    server-template srv 2 app.example:80 chek\n", errs: []string{
			"t.cfg:3: server-template 'srv': unknown option 'chek' (did you mean 'check'?)"}},
		{name: "bad option value", cfg: l + "    server-template srv 2 app.example:80 weight 300\n", errs: []string{
			"t.cfg:3: server-template 'srv': 'weight' must be between 0 and 256, got 300"}},
		{name: "missing resolvers", cfg: res + l + "    server-template srv 3 app.example:80 resolvers dnss\n", errs: []string{
			"t.cfg:5: server-template 'srv': resolvers 'dnss': no such resolvers section (did you mean 'dns'?)"}},
		{name: "name that does not resolve", cfg: l + "    server-template srv 3 nowhere.example:80\n", errs: []string{
			"t.cfg:3: server-template 'srv': resolve nowhere.example: no such host"}},
		{name: "name that does not resolve with resolvers", cfg: res + l + "    server-template srv 3 nowhere.example:80 resolvers dns\n", warns: []string{
			"t.cfg:5: warning: server-template 'srv': resolve nowhere.example: no such host: starting without an address, in maintenance until its resolvers give it one"}},
		{name: "same name as a server", cfg: l + "    server-template srv 3 app.example:80\n    server srv2 127.0.0.1:80\n", errs: []string{
			"t.cfg:4: listen 'x': server 'srv2' already defined at t.cfg:3"}},
		{name: "overlapping templates", cfg: l + "    server-template srv 1-2 app.example:80\n    server-template srv 2-3 app.example:80\n", errs: []string{
			"t.cfg:4: listen 'x': server 'srv2' already defined at t.cfg:3"}},
		{name: "id taken", cfg: l + "    server a 127.0.0.1:80 id 2\n    server-template srv 3 app.example:80 id 2\n", errs: []string{
			"t.cfg:4: server 'srv1' reuses id 2 of server 'a' (declared at t.cfg:3)"}},
		{name: "in a frontend", cfg: "frontend f\n    bind :81\n    server-template srv 3 app.example:80\n    default_backend l\n" + lst, errs: []string{
			"t.cfg:3: 'server-template' not allowed because frontend 'f' has no backend capability"}},
		{name: "in defaults", cfg: "defaults\n    server-template srv 3 app.example:80\n" + lst, errs: []string{
			"t.cfg:2: 'server-template' not allowed in 'defaults' section"}},
	})
}

func TestServerTemplate(t *testing.T) {
	cfg := mustLoad(t, res+`backend b
    server a 127.0.0.1:80 id 3
    server-template web 3 app.example:8080 resolvers dns check weight 5
    server-template slot 4-5 nowhere.example:80 resolvers dns init-addr none id 10
    server-template svc 2 _http._tcp.app.example resolvers dns resolve-prefer ipv4 resolve-net 10.0.0.0/8
    server-template fix 1 nowhere.example:81 init-addr libc,192.0.2.99
    server z 127.0.0.1:81
`)
	type slot struct {
		name, template string
		id             int
		host           string
		port           int
		noAddr, srv    bool
		line           int
	}
	var got []slot
	for _, s := range cfg.Proxy("b").Servers {
		got = append(got, slot{s.Name, s.Template, s.ID, s.Addr.Host, s.Addr.Port, s.NoAddr, s.SRV, s.Pos.Line})
	}
	want := []slot{
		{"a", "", 3, "127.0.0.1", 80, false, false, 4},
		{"web1", "web", 1, "192.0.2.10", 8080, false, false, 5},
		{"web2", "web", 2, "192.0.2.10", 8080, false, false, 5},
		{"web3", "web", 4, "192.0.2.10", 8080, false, false, 5},
		{"slot4", "slot", 10, "nowhere.example", 80, true, false, 6},
		{"slot5", "slot", 5, "nowhere.example", 80, true, false, 6},
		{"svc1", "svc", 6, "_http._tcp.app.example", 0, true, true, 7},
		{"svc2", "svc", 7, "_http._tcp.app.example", 0, true, true, 7},
		{"fix1", "fix", 8, "192.0.2.99", 81, false, false, 8},
		{"z", "", 9, "127.0.0.1", 81, false, false, 9},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("servers:\n%+v\nwant\n%+v", got, want)
	}
	b := cfg.Proxy("b")
	for _, s := range b.Servers[1:4] {
		if !s.Check || s.Weight != 5 || s.FQDN != "app.example" || s.Resolvers != "dns" || !reflect.DeepEqual(s.InitAddr, []string{"last", "libc", "none"}) {
			t.Errorf("server %+v", s)
		}
	}
	svc1, svc2 := b.Servers[6], b.Servers[7]
	if svc1.ResolvePrefer != "ipv4" || !reflect.DeepEqual(svc1.ResolveNets, []string{"10.0.0.0/8"}) || svc1.FQDN != "_http._tcp.app.example" {
		t.Errorf("server %+v", svc1)
	}
	// Each server has its own copy of the lists.
	svc1.ResolveNets[0] = "x"
	svc1.InitAddr[0] = "x"
	if svc2.ResolveNets[0] != "10.0.0.0/8" || svc2.InitAddr[0] != "last" {
		t.Errorf("servers share their lists: %+v", svc2)
	}
}

func TestServerTemplateIDsWithoutTemplateID(t *testing.T) {
	// HAProxy numbers template servers in file order like other servers.
	cfg := mustLoad(t, res+"listen x\n    bind :81\n    server a 127.0.0.1:81\n    server-template srv 3 app.example:80\n    server b 127.0.0.1:82\n    server-template t 2-3 _x._tcp.app.example resolvers dns\n    server c 127.0.0.1:83 disabled\n")
	var ids []int
	var names []string
	for _, s := range cfg.Proxy("x").Servers {
		ids, names = append(ids, s.ID), append(names, s.Name)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if want := []string{"a", "srv1", "srv2", "srv3", "b", "t2", "t3", "c"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
}
