package config

import (
	"reflect"
	"testing"

	"github.com/sluicelb/sluice/vfs"
)

func TestConfigSigningKey(t *testing.T) {
	runCases(t, []loadCase{
		{name: "two keys", cfg: "global\n    config-signing-key /etc/sluice/a.pub\n    config-signing-key /etc/sluice/b.pub\n"},
		{name: "no path", cfg: "global\n    config-signing-key\n", errs: []string{
			"t.cfg:2: 'config-signing-key' expects a public key file (PREFIX.pub of 'sluice bundle keygen')",
		}},
		{name: "twice", cfg: "global\n    config-signing-key a.pub\n    config-signing-key a.pub\n", errs: []string{
			"t.cfg:3: 'config-signing-key': a.pub already given at t.cfg:2",
		}},
		{name: "not in a proxy", cfg: "listen x\n    bind :80\n    config-signing-key a.pub\n    server s 127.0.0.1:81\n", errs: []string{
			"t.cfg:3: 'config-signing-key' not allowed in 'listen x' section (it belongs in the 'global' section)",
		}},
	})
	cfg, _, err := load("global\n    config-signing-key /a.pub\n    config-signing-key /b.pub\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []SigningKey{{Path: "/a.pub", Pos: Pos{File: "t.cfg", Line: 2}}, {Path: "/b.pub", Pos: Pos{File: "t.cfg", Line: 3}}}
	if !reflect.DeepEqual(cfg.Global.ConfigSigningKeys, want) {
		t.Fatalf("keys = %+v, want %+v", cfg.Global.ConfigSigningKeys, want)
	}
}

func TestLoadFS(t *testing.T) {
	mem := vfs.NewMem(map[string][]byte{
		"/etc/sluice/conf.d/10-global.cfg": []byte("global\n    maxconn 100\n"),
		"/etc/sluice/conf.d/20-web.cfg":    []byte("listen web\n    bind 127.0.0.1:8080\n    server s 127.0.0.1:81\n"),
	})
	cfg, _, err := LoadFS(mem, []string{"/etc/sluice/conf.d"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Global.MaxConn != 100 || len(cfg.Proxies) != 1 {
		t.Fatalf("maxconn %d, %d proxies", cfg.Global.MaxConn, len(cfg.Proxies))
	}
	// The files a configuration names come from the same source: an
	// errorfile that exists only in memory (a bundle) is read.
	page := "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nbe right back\n"
	mem = vfs.NewMem(map[string][]byte{
		"/etc/sluice/sluice.cfg": []byte("listen web\n    mode http\n    bind 127.0.0.1:8080\n    errorfile 503 /etc/sluice/503.http\n    server s 127.0.0.1:81\n"),
		"/etc/sluice/503.http":   []byte(page),
	})
	cfg, _, err = LoadFS(mem, []string{"/etc/sluice/sluice.cfg"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Proxies[0].ErrorFiles[503]; got != page {
		t.Fatalf("errorfile from the source: %q", got)
	}
	_, _, err = LoadFS(mem, []string{"/etc/sluice/other.cfg"})
	if got := errorStrings(t, err); len(got) != 1 || got[0] != "/etc/sluice/other.cfg: cannot stat: file does not exist" {
		t.Fatalf("errors %q", got)
	}
}
