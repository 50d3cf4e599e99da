package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.cfg":        "global\n    nbproc 2\n",
		"conf.d/2.cfg": "backend b\n    server s 127.0.0.1:80\n",
		"conf.d/1.cfg": "frontend f\n    bind :80\n    default_backend b\n",
		"conf.d/x.txt": "not read\n",
	})
	a, d := filepath.Join(dir, "a.cfg"), filepath.Join(dir, "conf.d")
	cfg, warns, err := Load([]string{a, d})
	if err != nil || len(warns) > 0 {
		t.Fatalf("Load: %v, warnings %v", err, warns)
	}
	wantFiles := []string{a, filepath.Join(d, "1.cfg"), filepath.Join(d, "2.cfg")}
	if !reflect.DeepEqual(cfg.Files, wantFiles) {
		t.Errorf("Files = %v, want %v", cfg.Files, wantFiles)
	}
	if cfg.Global.NbProc != 2 || cfg.Proxies[0].Name != "f" || cfg.Proxies[1].Name != "b" {
		t.Errorf("nbproc %d, proxies %s %s", cfg.Global.NbProc, cfg.Proxies[0].Name, cfg.Proxies[1].Name)
	}
	if p := cfg.Proxy("b").Servers[0].Pos; p.File != filepath.Join(d, "2.cfg") || p.Line != 2 {
		t.Errorf("server position %v", p)
	}
}

// TestFileEndsSection checks HAProxy's rule that each file starts outside
// any section.
func TestFileEndsSection(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"1.cfg": "listen l\n    bind :80\n",
		"2.cfg": "    server s 127.0.0.1:80\n",
	})
	_, _, err := Load([]string{dir})
	want := []string{filepath.Join(dir, "2.cfg") + ":1: unknown keyword 'server' out of section"}
	if got := errorStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

func TestLoadMissing(t *testing.T) {
	dir := writeFiles(t, map[string]string{"ok.cfg": lst, "empty/readme": ""})
	_, _, err := Load([]string{filepath.Join(dir, "nope.cfg"), filepath.Join(dir, "ok.cfg"), filepath.Join(dir, "empty")})
	want := []string{
		filepath.Join(dir, "nope.cfg") + ": cannot stat: no such file or directory",
		filepath.Join(dir, "empty") + ": directory " + filepath.Join(dir, "empty") + " has no *.cfg file",
	}
	if got := errorStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

// TestErrorsSorted checks that every error is reported, in file and line
// order, whichever step found it.
func TestErrorsSorted(t *testing.T) {
	_, _, err := load(`frontend f
    bind :80 ssl
    default_backend nope
    balence first
listen l
    bind :81
    server s 127.0.0.1:80 weight 300
`)
	want := []string{
		"t.cfg:2: bind :80: 'ssl' needs a certificate: add 'crt FILE' or 'crt-list FILE'",
		"t.cfg:3: frontend 'f': default_backend 'nope': no such backend",
		"t.cfg:4: unknown keyword 'balence' in 'frontend f' section (did you mean 'balance'?)",
		"t.cfg:7: server 's': 'weight' must be between 0 and 256, got 300",
	}
	if got := errorStrings(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("SLUICE_TEST_PORT", "8081")
	t.Setenv("SLUICE_TEST_OPTS", "accept-proxy maxconn 10")
	cfg := mustLoad(t, `listen "l-${SLUICE_TEST_PORT}"
    bind ":$SLUICE_TEST_PORT" "${SLUICE_TEST_OPTS[*]}"
    bind "${SLUICE_TEST_UNSET-127.0.0.1}:80"
    server "${.SECTION}" 127.0.0.1:80
`)
	p := cfg.Proxies[0]
	if p.Name != "l-8081" || p.Binds[0].Addr.Port != 8081 || !p.Binds[0].AcceptProxy || p.Binds[0].MaxConn != 10 ||
		p.Binds[1].Addr.Host != "127.0.0.1" || p.Servers[0].Name != "l-8081" {
		t.Errorf("proxy %+v", p)
	}
}

func TestDiagnosticString(t *testing.T) {
	tests := map[string]Diagnostic{
		"a.cfg:3: bad":          {Pos: Pos{"a.cfg", 3}, Msg: "bad"},
		"a.cfg: bad":            {Pos: Pos{"a.cfg", 0}, Msg: "bad"},
		"a.cfg:3: warning: odd": {Pos: Pos{"a.cfg", 3}, Warning: true, Msg: "odd"},
	}
	for want, d := range tests {
		if got := d.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
	e := &Errors{Diags: []Diagnostic{{Pos: Pos{"a", 1}, Msg: "x"}, {Pos: Pos{"b", 2}, Msg: "y"}}}
	if e.Error() != "a:1: x\nb:2: y" {
		t.Errorf("Error() = %q", e.Error())
	}
}

// TestJSONRoundTrip checks that the compiled configuration survives its
// trip from the master to the children unchanged.
func TestJSONRoundTrip(t *testing.T) {
	configs := map[string]string{
		"seed": seed,
		"full": `global
    nbproc 3
    cpu-map 1 0
    cpu-map 2-3 1-2
    maxconn 100
    stats socket /run/s.sock mode 600 level admin
    log 127.0.0.1 local0 info err
    hard-stop-after 1m
    user root
    daemon
resolvers dns
    nameserver ns1 10.0.0.1:53
    nameserver ns2 tcp@[2001:db8::1]:5353
    parse-resolv-conf
    hold obsolete 5s
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    option forwardfor except 10.0.0.0/8
    log global
    option httplog
    option redispatch
frontend f
    bind :80 process 1 name web maxconn 10
    bind :443 process 2-3 ssl crt testdata/site.pem alpn h2,http/1.1
    use_backend b
    default_backend b
backend b
    balance first
    server s1 127.0.0.1:81 check inter 1s weight 5 maxconn 3 backup
    server s2 app.example:82 disabled send-proxy-v2
    server s3 abns@w
    server s4 app.example:83 resolvers dns resolve-prefer ipv4 resolve-net 10.0.0.0/8 init-addr libc,none
    server-template t 1-3 nowhere.example:84 resolvers dns init-addr none id 20
    server-template u 2 _http._tcp.app.example resolvers dns
listen w
    bind abns@w process 3 accept-proxy
    server app 127.0.0.1:8080
`,
	}
	for name, text := range configs {
		cfg := mustLoad(t, text)
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var back Config
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(cfg, &back) {
			again, _ := json.Marshal(&back)
			t.Errorf("%s: round trip differs:\n%s\n%s", name, data, again)
		}
	}
}

func TestNotUTF8(t *testing.T) {
	_, _, err := LoadBytes("t.cfg", []byte("listen x\n    bind abns@\\xff\n    server s 127.0.0.1:80\n"))
	want := "t.cfg:2: the line holds bytes that are not UTF-8 text (after escapes and variables)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}
