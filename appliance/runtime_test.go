package appliance

import (
	"testing"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/runtimeapi"
)

func load(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, _, err := config.LoadBytes("t.cfg", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func cfgWith(t *testing.T, weight, extra string) *config.Config {
	return load(t, "defaults\n    load-server-state-from-file global\nlisten web\n    bind 127.0.0.1:8000\n    server a 127.0.0.1:81 weight "+weight+extra+"\n    server b 127.0.0.1:82\n")
}

func TestChangeLogRebase(t *testing.T) {
	drain, w := backend.Drain, 7
	addr := "127.0.0.1:90"
	for _, tc := range []struct {
		name string
		next *config.Config
		kept int // of the three changes to server a
	}{
		{"same configuration", cfgWith(t, "1", ""), 3},
		{"configured weight changes: run-time weight dropped", cfgWith(t, "2", ""), 2},
		{"disabled added: admin state dropped", cfgWith(t, "1", " disabled"), 2},
		{"server gone: all dropped", load(t, "listen web\n    bind 127.0.0.1:8000\n    server b 127.0.0.1:82\n"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l changeLog
			l.record(runtimeapi.Change{Backend: "web", Server: "a", Admin: &drain})
			l.record(runtimeapi.Change{Backend: "web", Server: "a", Weight: &w})
			l.record(runtimeapi.Change{Backend: "web", Server: "a", Addr: &addr})
			l.record(runtimeapi.Change{Backend: "web", Server: "a", ShutdownSessions: true}) // an action: not kept
			l.rebase(cfgWith(t, "1", ""), tc.next)
			if got := len(l.list()); got != tc.kept {
				t.Fatalf("%d changes kept, want %d: %+v", got, tc.kept, l.list())
			}
		})
	}
}

func TestChangeLogKeepsLatestInOrder(t *testing.T) {
	var l changeLog
	w1, w2, maint := 1, 2, backend.Maint
	l.record(runtimeapi.Change{Backend: "web", Server: "a", Weight: &w1})
	l.record(runtimeapi.Change{Backend: "web", Server: "a", Admin: &maint})
	l.record(runtimeapi.Change{Backend: "web", Server: "a", Weight: &w2})
	got := l.list()
	if len(got) != 2 || got[0].Admin == nil || got[1].Weight == nil || *got[1].Weight != 2 {
		t.Fatalf("list = %+v, want the admin change then weight 2", got)
	}
}

func TestStateChanges(t *testing.T) {
	cfg := cfgWith(t, "10", "")
	for _, tc := range []struct {
		name  string
		saved runtimeapi.SavedServer
		want  func([]runtimeapi.Change) bool
	}{
		{"drained, run-time weight", runtimeapi.SavedServer{BackendName: "web", ServerID: 1, ServerName: "a", AdminState: runtimeapi.AdminForcedDrain, UserWeight: 3, InitialWeight: 10},
			func(c []runtimeapi.Change) bool {
				return len(c) == 2 && *c[0].Admin == backend.Drain && *c[1].Weight == 3
			}},
		{"weight saved against another configured weight", runtimeapi.SavedServer{BackendName: "web", ServerID: 1, ServerName: "a", UserWeight: 3, InitialWeight: 5},
			func(c []runtimeapi.Change) bool { return len(c) == 0 }},
		{"address", runtimeapi.SavedServer{BackendName: "web", ServerID: 1, ServerName: "a", Addr: "127.0.0.9", Port: 91, UserWeight: 10, InitialWeight: 10},
			func(c []runtimeapi.Change) bool { return len(c) == 1 && *c[0].Addr == "127.0.0.9:91" }},
		{"matched by name when the id moved", runtimeapi.SavedServer{BackendName: "web", ServerID: 9, ServerName: "b", AdminState: runtimeapi.AdminForcedMaint, UserWeight: 1, InitialWeight: 1},
			func(c []runtimeapi.Change) bool {
				return len(c) == 1 && c[0].Server == "b" && *c[0].Admin == backend.Maint
			}},
		{"unknown backend", runtimeapi.SavedServer{BackendName: "nope", ServerName: "a", AdminState: runtimeapi.AdminForcedMaint},
			func(c []runtimeapi.Change) bool { return len(c) == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stateChanges(cfg, tc.saved); !tc.want(got) {
				t.Fatalf("stateChanges = %+v", got)
			}
		})
	}
	// Without load-server-state-from-file, nothing is loaded.
	plain := load(t, "listen web\n    bind 127.0.0.1:8000\n    server a 127.0.0.1:81\n")
	if got := stateChanges(plain, runtimeapi.SavedServer{BackendName: "web", ServerID: 1, ServerName: "a", AdminState: runtimeapi.AdminForcedMaint}); len(got) != 0 {
		t.Fatalf("loaded without load-server-state-from-file: %+v", got)
	}
}

func TestRole(t *testing.T) {
	cfg := load(t, "global\n    nbproc 4\nlisten d\n    bind 127.0.0.1:8000 process 1\n    server w abns@x send-proxy-v2\nlisten w\n    bind abns@x process 2 accept-proxy\n    bind 127.0.0.1:8001 process 3\n    bind abns@y process 3 accept-proxy\n    server s 127.0.0.1:80\n")
	for n, want := range map[int]string{1: "dispatcher", 2: "worker", 3: "worker+dispatcher", 4: "idle"} {
		if got := role(cfg, n); got != want {
			t.Errorf("role(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestStateChangesInitAddrLast(t *testing.T) {
	cfg := load(t, "resolvers dns\n    nameserver ns 127.0.0.1:53\ndefaults\n    load-server-state-from-file global\nlisten web\n    bind 127.0.0.1:8000\n    server-template app 2 app.invalid:8080 resolvers dns init-addr last,none\n")
	got := stateChanges(cfg, runtimeapi.SavedServer{BackendName: "web", ServerID: 1, ServerName: "app1", Addr: "10.0.0.5", Port: 8080, UserWeight: 1, InitialWeight: 1})
	if len(got) != 1 || got[0].Resolved == nil || !got[0].Resolved.Present || got[0].Resolved.Addr != "10.0.0.5:8080" {
		t.Fatalf("stateChanges = %+v, want app1 at its last address 10.0.0.5:8080", got)
	}
}
