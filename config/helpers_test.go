package config

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicelb/sluice/addr"
)

// testLoader is the loader of the tests: host names resolve without DNS
// (app.example is 192.0.2.10, self.example is 127.0.0.1, the rest fails);
// certificates are checked for real, from testdata; parse-resolv-conf
// reads testdata/resolv.conf (nameservers 192.0.2.53 and 2001:db8::53).
func testLoader() *loader {
	return &loader{
		resolve: func(_ context.Context, a addr.Addr) (addr.Addr, error) {
			switch a.Host {
			case "app.example":
				a.Host = "192.0.2.10"
			case "self.example":
				a.Host = "127.0.0.1"
			default:
				return a, fmt.Errorf("resolve %s: no such host", a.Host)
			}
			return a, nil
		},
		checkCrt:   checkCrt,
		resolvConf: "testdata/resolv.conf",
	}
}

// load loads text as the file t.cfg with testLoader.
func load(text string) (*Config, []Diagnostic, error) {
	return testLoader().loadBytes("t.cfg", []byte(text))
}

// mustLoad loads text and fails the test on any error.
func mustLoad(t *testing.T, text string) *Config {
	t.Helper()
	cfg, _, err := load(text)
	if err != nil {
		t.Fatalf("load:\n%v", err)
	}
	return cfg
}

func diagStrings(diags []Diagnostic) []string {
	var out []string
	for _, d := range diags {
		out = append(out, d.String())
	}
	return out
}

func errorStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not *Errors: %v", err, err)
	}
	return diagStrings(errs.Diags)
}

// loadCase is a configuration with every error and warning it must give.
type loadCase struct {
	name  string
	cfg   string
	errs  []string
	warns []string
}

func runCases(t *testing.T, cases []loadCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, warns, err := load(c.cfg)
			gotErrs := errorStrings(t, err)
			if !reflect.DeepEqual(gotErrs, c.errs) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(gotErrs, "\n"), strings.Join(c.errs, "\n"))
			}
			if got := diagStrings(warns); !reflect.DeepEqual(got, c.warns) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.warns, "\n"))
			}
			if (err == nil) != (cfg != nil) {
				t.Errorf("cfg = %v with err = %v: want exactly one of them", cfg != nil, err)
			}
		})
	}
}

func addrOf(t *testing.T, s string) addr.Addr {
	t.Helper()
	a, err := addr.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
