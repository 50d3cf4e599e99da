package config

import (
	"reflect"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "0", want: 0},
		{in: "100", want: 100 * time.Millisecond},
		{in: "100us", want: 100 * time.Microsecond},
		{in: "5ms", want: 5 * time.Millisecond},
		{in: "30s", want: 30 * time.Second},
		{in: "2m", want: 2 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "24d", want: 24 * 24 * time.Hour},
		{in: "2147483647", want: 2147483647 * time.Millisecond},
		{in: "2147483648", err: "is too large: '2147483648' (the maximum is 2147483647 ms, about 24.8 days)"},
		{in: "25d", err: "is too large: '25d' (the maximum is 2147483647 ms, about 24.8 days)"},
		{in: "99999999999999999999999", err: "is too large: '99999999999999999999999' (the maximum is 2147483647 ms, about 24.8 days)"},
		{in: "10x", err: "expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '10x'"},
		{in: "1.5s", err: "expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '1.5s'"},
		{in: "10S", err: "expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '10S'"},
		{in: "s", err: "expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got 's'"},
		{in: "-1", err: "expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '-1'"},
		{in: "", err: "expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got ''"},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("parseTime(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in       string
		min, max int
		want     int
		err      string
	}{
		{in: "0", min: 0, max: 256, want: 0},
		{in: "256", min: 0, max: 256, want: 256},
		{in: "257", min: 0, max: 256, err: "must be between 0 and 256, got 257"},
		{in: "-1", min: 0, max: 256, err: "must be between 0 and 256, got -1"},
		{in: "x", min: 0, max: 256, err: "expects a number, got 'x'"},
		{in: "", min: 0, max: 256, err: "expects a number, got ''"},
		{in: "0", min: 1, max: 2147483647, err: "must be at least 1, got 0"},
		{in: "-99999999999999999999", min: 1, max: 2147483647, err: "must be at least 1, got -99999999999999999999"},
		{in: "99999999999999999999", min: 1, max: 2147483647, err: "must be between 1 and 2147483647, got 99999999999999999999"},
	}
	for _, tt := range tests {
		got, err := parseInt(tt.in, tt.min, tt.max)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("parseInt(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseInt(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestProcSet(t *testing.T) {
	tests := []struct {
		in      string
		n       int
		want    []int
		highest int
	}{
		{in: "1", n: 4, want: []int{1}, highest: 1},
		{in: "2-3", n: 4, want: []int{2, 3}, highest: 3},
		{in: "2-", n: 4, want: []int{2, 3, 4}, highest: 2},
		{in: "all", n: 3, want: []int{1, 2, 3}},
		{in: "odd", n: 4, want: []int{1, 3}},
		{in: "even", n: 5, want: []int{2, 4}},
		{in: "even", n: 1, want: nil},
		{in: "64", n: 64, want: []int{64}, highest: 64},
	}
	for _, tt := range tests {
		set, err := parseProcSet(tt.in)
		if err != nil {
			t.Errorf("parseProcSet(%q): %v", tt.in, err)
			continue
		}
		if got := set.expand(tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q.expand(%d) = %v, want %v", tt.in, tt.n, got, tt.want)
		}
		if got := set.highest(); got != tt.highest {
			t.Errorf("%q.highest() = %d, want %d", tt.in, got, tt.highest)
		}
	}
	for _, bad := range []string{"", "0", "65", "3-2", "x", "1-x", "-1", "+1", "1-+2", "1--2"} {
		_, err := parseProcSet(bad)
		want := "'" + bad + "' is not a valid set (expected all, odd, even, N, N-M or N- with numbers from 1 to 64)"
		if err == nil || err.Error() != want {
			t.Errorf("parseProcSet(%q) error = %v, want %q", bad, err, want)
		}
	}
}

func TestParseCPUSet(t *testing.T) {
	got, err := parseCPUSet("2-4")
	if err != nil || !reflect.DeepEqual(got, []int{2, 3, 4}) {
		t.Errorf("parseCPUSet(2-4) = %v, %v", got, err)
	}
	got, err = parseCPUSet("62-")
	if err != nil || !reflect.DeepEqual(got, []int{62, 63}) {
		t.Errorf("parseCPUSet(62-) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "-1", "4-2", "1024", "x", "64-"} {
		if _, err := parseCPUSet(bad); err == nil {
			t.Errorf("parseCPUSet(%q) succeeded", bad)
		}
	}
}

func TestNearest(t *testing.T) {
	words := []string{"balance", "bind", "option redispatch", "timeout connect", "check", "weight"}
	tests := map[string]string{
		"balence":          "balance",
		"bnid":             "bind",
		"option redispach": "option redispatch",
		"timeout conect":   "timeout connect",
		"chek":             "check",
		"xyz":              "",
		"completelyother":  "",
		"":                 "",
	}
	for in, want := range tests {
		if got := nearest(in, words); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	tests := map[string]string{
		"10.0.0.0/8":            "10.0.0.0/8",
		"10.1.2.3/8":            "10.0.0.0/8",
		"10.1.2.3":              "10.1.2.3/32",
		"10.0.0.0/255.255.0.0":  "10.0.0.0/16",
		"::1":                   "::1/128",
		"2001:db8::/32":         "2001:db8::/32",
		"::ffff:10.0.0.1/128":   "::ffff:10.0.0.1/128",
		"192.168.0.0/255.0.255": "",
		"10.0.0.0/33":           "",
		"nope":                  "",
	}
	for in, want := range tests {
		got, err := parseNetwork(in)
		if want == "" {
			if err == nil {
				t.Errorf("parseNetwork(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("parseNetwork(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestLogTarget(t *testing.T) {
	tests := map[string]string{
		"stdout":           "stdout",
		"fd@1":             "stdout",
		"stderr":           "stderr",
		"fd@2":             "stderr",
		"/dev/log":         "/dev/log",
		"unix@/dev/log":    "/dev/log",
		"127.0.0.1":        "127.0.0.1:514",
		"127.0.0.1:1514":   "127.0.0.1:1514",
		"udp@127.0.0.1":    "127.0.0.1:514",
		"ipv4@10.0.0.1:99": "10.0.0.1:99",
		"::1":              "[::1]:514",
		"[::1]":            "[::1]:514",
		"[::1]:1514":       "[::1]:1514",
		"logs.example":     "logs.example:514",
		"logs.example:600": "logs.example:600",
		"ring@buf":         "",
		"fd@3":             "",
		"tcp@10.0.0.1:514": "",
		"127.0.0.1:0":      "",
		"unix@":            "",
		"a b":              "",
	}
	for in, want := range tests {
		got, err := logTarget(in)
		if want == "" {
			if err == nil {
				t.Errorf("logTarget(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("logTarget(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
