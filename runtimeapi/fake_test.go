package runtimeapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

// fakeApp is an Appliance with fixed answers that records the changes.
type fakeApp struct {
	mu       sync.Mutex
	cfg      *config.Config
	info     Info
	snaps    []Snapshot
	snapErr  error
	applyErr error
	applied  []Change

	certs       []CertFile
	certPayload string
}

func (f *fakeApp) Config() *config.Config { return f.cfg }
func (f *fakeApp) Info() Info             { return f.info }

func (f *fakeApp) Resolvers() []ResolverStats {
	return []ResolverStats{{Section: "dns", Nameservers: []NameserverStats{{Name: "ns1", Sent: 4, Valid: 3, Timeout: 1}}}}
}

func (f *fakeApp) Snapshots(ctx context.Context) ([]Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.snaps, f.snapErr
}

func (f *fakeApp) Apply(ctx context.Context, c Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return f.applyErr
	}
	f.applied = append(f.applied, c)
	return nil
}

func (f *fakeApp) changes() []Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Change(nil), f.applied...)
}

// testNow is the fixture's clock.
var testNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func mustAddr(t testing.TB, s string) addr.Addr {
	t.Helper()
	a, err := addr.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fixture is a two-process configuration:
//
//	frontend fe_main (id 1, tcp, processes 1-2) -> backend be_app
//	backend be_app (id 2): s1 (check), s2, bk (backup)
//	listen web (id 3, http, process 2): w1 on [::1]:8080
//	backend off (id 4, disabled): o1
//	backend sock (id 5): u1 on a unix socket
//
// Process 1 sees s1 up, process 2 sees it down; both see s2 draining.
func fixture(t testing.TB) *fakeApp {
	t.Helper()
	cfg := &config.Config{
		Global: config.Global{NbProc: 2, MaxConn: 1000},
		Proxies: []*config.Proxy{
			{
				Name: "fe_main", ID: 1, Frontend: true, Mode: config.ModeTCP,
				Binds:     []*config.Bind{{Addr: mustAddr(t, ":8443"), Processes: []int{1, 2}, ID: 1}},
				Processes: []int{1, 2}, MaxConn: 500, DefaultBackend: "be_app",
			},
			{
				Name: "be_app", ID: 2, Backend: true, Mode: config.ModeTCP, Balance: config.BalanceRoundRobin,
				Processes: []int{1, 2},
				Servers: []*config.Server{
					{Name: "s1", ID: 1, Addr: mustAddr(t, "10.0.0.1:80"), Check: true, Rise: 2, Fall: 3, Weight: 100},
					{Name: "s2", ID: 2, Addr: mustAddr(t, "10.0.0.2:80"), Rise: 2, Fall: 3, Weight: 50, MaxConn: 20},
					{Name: "bk", ID: 3, Addr: mustAddr(t, "10.0.0.3:80"), Rise: 2, Fall: 3, Weight: 10, Backup: true},
				},
			},
			{
				Name: "web", ID: 3, Frontend: true, Backend: true, Mode: config.ModeHTTP, Balance: config.BalanceLeastConn,
				Binds:     []*config.Bind{{Addr: mustAddr(t, ":8080"), Processes: []int{2}, ID: 1}},
				Processes: []int{2},
				Servers: []*config.Server{
					{Name: "w1", ID: 1, Addr: mustAddr(t, "[::1]:8080"), Rise: 2, Fall: 3, Weight: 1},
				},
			},
			{
				Name: "off", ID: 4, Backend: true, Mode: config.ModeTCP, Disabled: true,
				Servers: []*config.Server{{Name: "o1", ID: 1, Addr: mustAddr(t, "10.0.0.9:80"), Weight: 1}},
			},
			{
				Name: "sock", ID: 5, Backend: true, Mode: config.ModeTCP, Balance: config.BalanceFirst,
				Servers: []*config.Server{{Name: "u1", ID: 1, Addr: mustAddr(t, "unix@/run/app.sock"), Weight: 1, Disabled: true}},
			},
		},
	}
	be := cfg.Proxies[1]
	s1, s2, bk := be.Servers[0], be.Servers[1], be.Servers[2]
	state := func(sc *config.Server, cur, max int, total int64) backend.State {
		return backend.State{
			Weight: sc.Weight, Addr: sc.Addr, MaxConn: sc.MaxConn, CheckHealth: sc.Rise + sc.Fall - 1,
			LastChange: testNow.Add(-time.Hour),
			Counters:   backend.Counters{Cur: cur, Max: max, Total: total, BytesIn: 10 * total, BytesOut: 20 * total},
		}
	}
	// Process 1: everything fine but s2 draining.
	p1s1 := state(s1, 2, 3, 60)
	p1s1.CheckStatus, p1s1.CheckTime = "L4OK", 2*time.Millisecond
	p1s1.Counters.LastSession = testNow.Add(-5 * time.Second)
	p1s2 := state(s2, 1, 2, 40)
	p1s2.Admin = backend.Drain
	p1bk := state(bk, 0, 0, 0)
	// Process 2: s1 failed its checks.
	p2s1 := state(s1, 0, 4, 30)
	p2s1.Health, p2s1.CheckHealth, p2s1.CheckStatus, p2s1.CheckTime = backend.Down, 0, "L4CON", 3*time.Millisecond
	p2s1.LastChange = testNow.Add(-90 * time.Second)
	p2s1.Counters.CheckFails, p2s1.Counters.CheckDowns, p2s1.Counters.ConnErrors = 7, 1, 2
	p2s2 := state(s2, 4, 6, 50)
	p2s2.Admin = backend.Drain
	p2bk := state(bk, 1, 1, 5)
	w1 := cfg.Proxies[2].Servers[0]
	p2w1 := state(w1, 1, 1, 9)

	snaps := []Snapshot{
		{
			Process: 1, PID: 101,
			Proxies: []ProxyStats{
				{Name: "fe_main", ID: 1, Frontend: &FrontendStats{Cur: 3, Max: 5, Limit: 500, Total: 100, BytesIn: 1000, BytesOut: 2000, Errors: 1}},
				{Name: "be_app", ID: 2, Backend: &backend.Counters{Cur: 3, Max: 4, Total: 100, BytesIn: 1000, BytesOut: 2000, Denied: 1, LastSession: testNow.Add(-5 * time.Second)},
					Servers: []ServerStats{{Name: "s1", ID: 1, State: p1s1}, {Name: "s2", ID: 2, State: p1s2}, {Name: "bk", ID: 3, State: p1bk}}},
			},
			Sessions: []Session{{ID: 7, Frontend: "fe_main", Backend: "be_app", Server: "s1", Source: "192.0.2.1:40000", Age: 65 * time.Second, Idle: 2 * time.Second}},
		},
		{
			Process: 2, PID: 102,
			Proxies: []ProxyStats{
				{Name: "fe_main", ID: 1, Frontend: &FrontendStats{Cur: 2, Max: 4, Limit: 500, Total: 50, BytesIn: 500, BytesOut: 700}},
				{Name: "be_app", ID: 2, Backend: &backend.Counters{Cur: 5, Max: 6, Total: 85, BytesIn: 800, BytesOut: 1600, ConnErrors: 2, Retries: 1},
					Servers: []ServerStats{{Name: "s1", ID: 1, State: p2s1}, {Name: "s2", ID: 2, State: p2s2}, {Name: "bk", ID: 3, State: p2bk}}},
				{Name: "web", ID: 3, Frontend: &FrontendStats{Cur: 1, Max: 2, Total: 9, HTTPReqs: 12, HTTP2xx: 10, HTTP5xx: 2},
					Backend: &backend.Counters{Cur: 1, Max: 1, Total: 9},
					Servers: []ServerStats{{Name: "w1", ID: 1, State: p2w1}}},
			},
			Sessions: []Session{{ID: 1, Frontend: "web", Backend: "web", Source: "[2001:db8::1]:5555", Age: 3 * time.Second}},
		},
	}
	return &fakeApp{
		cfg: cfg,
		info: Info{
			Version: "1.2.3", ReleaseDate: "2025/01/01", PID: 100, Started: testNow.Add(-(26*time.Hour + time.Minute + time.Second)),
			MaxConn: 1000, MaxSock: 2035, Reloads: 2, Generation: 3,
			Processes: []ProcessInfo{
				{Num: 1, PID: 101, Role: "dispatcher", Generation: 1, Started: testNow.Add(-time.Hour), Alive: true},
				{Num: 2, PID: 102, Role: "worker", Generation: 2, Started: testNow.Add(-90 * time.Second), Restarts: 1, Alive: true},
			},
		},
		snaps: snaps,
	}
}

// testCLI is a cli on the fixture with the fixture's clock.
func testCLI(t testing.TB) (*cli, *fakeApp) {
	app := fixture(t)
	c := newCLI(app, nil)
	c.now = func() time.Time { return testNow }
	return c, app
}

// run executes one line on a fresh one-shot session at the level.
func run(c *cli, lvl level, line string) string {
	s := &session{level: lvl, timeout: time.Second}
	return c.execLine(context.Background(), s, line)
}

var errBoom = errors.New("boom")

// The certificate side of the fake: one committed file and at most one
// staged version, as the master keeps them.
func (f *fakeApp) CertFiles() []CertFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]CertFile(nil), f.certs...)
}

func (f *fakeApp) SetCert(name, payload string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if payload == "" {
		return false, errors.New("no certificate in the payload")
	}
	f.certPayload = payload
	for i, c := range f.certs {
		if c.Pending {
			f.certs[i].Name = name
			return false, nil
		}
	}
	f.certs = append(f.certs, CertFile{Name: name, Pending: true})
	return true, nil
}

func (f *fakeApp) CommitCert(ctx context.Context, name string) error {
	return f.AbortCert(name)
}

func (f *fakeApp) AbortCert(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.certs {
		if c.Pending && c.Name == name {
			f.certs = append(f.certs[:i], f.certs[i+1:]...)
			return nil
		}
	}
	return errors.New("No ongoing transaction!")
}

func (f *fakeApp) SetOCSPResponse(ctx context.Context, der []byte) error {
	if string(der) != "ocsp" {
		return errors.New("no certificate matches this response")
	}
	return nil
}

func (f *fakeApp) ECH() []ECHInfo {
	return []ECHInfo{{PublicName: "public.example", ConfigList: []byte{0, 1}, HTTPS: "example.com. 300 IN HTTPS 1 . ech=AAE="}}
}
