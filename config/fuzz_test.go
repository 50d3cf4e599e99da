package config

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicelb/sluice/addr"
)

// FuzzLoadBytes feeds the parser and compiler arbitrary files: no input
// may panic or hang, every error must say where it is, and a configuration
// that loads must survive the JSON trip to the children.
//
// Host names and certificates are stubbed: a fuzzer must neither query DNS
// nor open whatever paths it invents; parse-resolv-conf reads the tests'
// resolv.conf.
func FuzzLoadBytes(f *testing.F) {
	seeds, err := filepath.Glob("testdata/compare/*.cfg")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, "testdata/seed.cfg")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.NewReplacer("@CERTDIR@", "testdata/certs", "@CERT@", "testdata/site.pem").Replace(string(data)))
	}
	f.Add(seed)
	f.Add("global\n    nbthread 4\n    cpu-map auto:1/all 0-63\n" + lst)
	f.Add(`listen "${A[*]}" from x` + "\n\tbind \"$B\\x41\" process odd thread 1/2-\n")
	f.Add(`resolvers dns
    nameserver ns1 10.0.0.1:53
    nameserver ns2 tcp@[2001:db8::1]
    nameserver ns3 app.example
    parse-resolv-conf
    accepted_payload_size 4096
    resolve_retries 2
    timeout resolve 5s
    timeout retry 1s
    hold valid 10s
    hold nx 1m
    hold obsolete 30s
backend b
    server s1 app.example:80 resolvers dns resolve-prefer ipv4 resolve-net 10.0.0.0/8 init-addr libc,none
    server-template web 1-3 nowhere.example:8080 resolvers dns init-addr last,10.0.0.2 id 7
    server-template svc 2 _http._tcp.app.example resolvers default check
` + lst)

	ld := &loader{
		resolve: func(_ context.Context, a addr.Addr) (addr.Addr, error) {
			if a.Host == "app.example" {
				a.Host = "192.0.2.10"
				return a, nil
			}
			return a, fmt.Errorf("resolve %s: no such host", a.Host)
		},
		checkCrt: func(path string) error {
			if strings.Contains(path, "missing") {
				return fmt.Errorf("stat %s: no such file", path)
			}
			return nil
		},
		resolvConf: "testdata/resolv.conf",
	}
	f.Fuzz(func(t *testing.T, text string) {
		cfg, warns, err := ld.loadBytes("fuzz.cfg", []byte(text))
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg %v with error %v", cfg != nil, err)
		}
		var diags []Diagnostic
		if err != nil {
			errs, ok := err.(*Errors)
			if !ok || len(errs.Diags) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			diags = errs.Diags
		}
		for _, d := range append(diags, warns...) {
			if d.Pos.File != "fuzz.cfg" || d.Pos.Line < 1 {
				t.Fatalf("message without file:line: %s", d)
			}
		}
		if cfg == nil {
			return
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var back Config
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cfg, &back) {
			t.Fatalf("JSON round trip differs: %s", data)
		}
	})
}
