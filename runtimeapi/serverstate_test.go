package runtimeapi

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicelb/sluice/backend"
)

// TestServerStateRoundTrip parses what "show servers state" prints.
func TestServerStateRoundTrip(t *testing.T) {
	c, _ := testCLI(t)
	out := run(c, levelUser, "show servers state")
	got, err := ParseServerState(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []SavedServer{
		{BackendID: 2, BackendName: "be_app", ServerID: 1, ServerName: "s1", Addr: "10.0.0.1", OpState: OpStopped,
			UserWeight: 100, InitialWeight: 100, SinceLastChange: 90 * time.Second, CheckStatus: 7, CheckResult: 2,
			CheckState: CheckConfigured | CheckEnabled, Port: 80},
		{BackendID: 2, BackendName: "be_app", ServerID: 2, ServerName: "s2", Addr: "10.0.0.2", OpState: OpRunning,
			AdminState: AdminForcedDrain, UserWeight: 50, InitialWeight: 50, SinceLastChange: time.Hour, CheckHealth: 4, Port: 80},
		{BackendID: 2, BackendName: "be_app", ServerID: 3, ServerName: "bk", Addr: "10.0.0.3", OpState: OpRunning,
			UserWeight: 10, InitialWeight: 10, SinceLastChange: time.Hour, CheckHealth: 4, Port: 80},
		{BackendID: 3, BackendName: "web", ServerID: 1, ServerName: "w1", Addr: "::1", OpState: OpRunning,
			UserWeight: 1, InitialWeight: 1, SinceLastChange: time.Hour, CheckHealth: 4, Port: 8080},
		{BackendID: 5, BackendName: "sock", ServerID: 1, ServerName: "u1", OpState: OpStopped,
			AdminState: AdminForcedMaint | AdminConfigMaint, UserWeight: 1, InitialWeight: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed:\n%+v\nwant:\n%+v", got, want)
	}
	if got[0].Health() != backend.Down || got[0].Admin() != backend.Ready {
		t.Errorf("s1: %v %v", got[0].Health(), got[0].Admin())
	}
	if got[1].Admin() != backend.Drain || got[1].Health() != backend.Up {
		t.Errorf("s2: %v %v", got[1].Admin(), got[1].Health())
	}
	if got[4].Admin() != backend.Maint {
		t.Errorf("u1: %v", got[4].Admin())
	}

	// And printing the parsed servers gives the same text back.
	var b strings.Builder
	writeServerState(&b, got)
	if b.String()+"\n" != out {
		t.Errorf("reprinted:\n%s\noriginal:\n%s", b.String(), out)
	}
}

func TestParseServerState(t *testing.T) {
	// An HAProxy 1.8 file (19 fields) with comments and blank lines.
	old := "1\n# be_id be_name ...\n\n1 be 1 s1 192.0.2.1 2 0 7 10 35 6 3 4 6 0 0 0 s1.example.com 443\n"
	got, err := ParseServerState(strings.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	want := []SavedServer{{BackendID: 1, BackendName: "be", ServerID: 1, ServerName: "s1", Addr: "192.0.2.1",
		OpState: 2, UserWeight: 7, InitialWeight: 10, SinceLastChange: 35 * time.Second, CheckStatus: 6,
		CheckResult: 3, CheckHealth: 4, CheckState: 6, FQDN: "s1.example.com", Port: 443}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got, err := ParseServerState(strings.NewReader("")); err != nil || got != nil {
		t.Errorf("empty: %v, %v", got, err)
	}

	line := func(fields string) string { return "1\n" + fields + "\n" }
	bad := []struct{ in, want string }{
		{"2\n", `server state line 1: unsupported format version "2" (expected 1)`},
		{line("1 be 1 s1"), "server state line 2: 4 fields, expected 19 to 25"},
		{line("1 be 1 s1 - 2 0 1 1 0 0 0 0 0 0 0 0 - 80 - 0 0 - - 0 extra"), "server state line 2: 26 fields, expected 19 to 25"},
		{line("x be 1 s1 - 2 0 1 1 0 0 0 0 0 0 0 0 - 80"), `server state line 2: be_id "x" is not a number from 0 to 2147483647`},
		{line("1 be 1 s1 not-an-ip 2 0 1 1 0 0 0 0 0 0 0 0 - 80"), `server state line 2: srv_addr "not-an-ip" is not an IP address`},
		{line("1 be 1 s1 - 4 0 1 1 0 0 0 0 0 0 0 0 - 80"), `server state line 2: srv_op_state "4" is not a number from 0 to 3`},
		{line("1 be 1 s1 - 2 0 257 1 0 0 0 0 0 0 0 0 - 80"), `server state line 2: srv_uweight "257" is not a number from 0 to 256`},
		{line("1 be 1 s1 - 2 0 1 1 0 0 0 0 0 0 0 0 - 70000"), `server state line 2: srv_port "70000" is not a number from 0 to 65535`},
		{line("1 - 1 s1 - 2 0 1 1 0 0 0 0 0 0 0 0 - 80"), "server state line 2: be_name is missing"},
		{"1\n" + strings.Repeat("x", maxStateLine+1) + "\n", "server state line 2: longer than 65536 bytes"},
	}
	for _, tt := range bad {
		_, err := ParseServerState(strings.NewReader(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseServerState(%.40q) error %v, want %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseServerState(f *testing.F) {
	c, _ := testCLI(f)
	f.Add(run(c, levelUser, "show servers state"))
	f.Add("1\n1 be 1 s1 192.0.2.1 2 0 7 10 35 6 3 4 6 0 0 0 s1.example.com 443\n")
	f.Add("1\n# comment\n\n")
	f.Add("")
	f.Add("2\n")
	f.Fuzz(func(t *testing.T, in string) {
		servers, err := ParseServerState(strings.NewReader(in))
		if err != nil {
			return
		}
		// Whatever parses prints back to something that parses the same.
		var b strings.Builder
		writeServerState(&b, servers)
		again, err := ParseServerState(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("reparse of %q: %v", b.String(), err)
		}
		if len(servers) != len(again) || (len(servers) > 0 && !reflect.DeepEqual(servers, again)) {
			t.Fatalf("round trip changed\n%+v\ninto\n%+v", servers, again)
		}
	})
}
