package dns

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	A, AAAA, SRV, CNAME := mdns.TypeA, mdns.TypeAAAA, mdns.TypeSRV, mdns.TypeCNAME
	dualStack := func(t *testing.T, z *zone) {
		z.set(t, "www.test", A, "www.test. 60 IN A 127.0.0.3", "www.test. 60 IN A 127.0.0.2")
		z.set(t, "www.test", AAAA, "www.test. 60 IN AAAA 2001:db8::2", "www.test. 60 IN AAAA 2001:db8::1")
	}
	manyA := func(t *testing.T, z *zone) {
		var rrs []string
		for i := 1; i <= 40; i++ {
			rrs = append(rrs, fmt.Sprintf("big.test. 60 IN A 127.0.1.%d", i))
		}
		z.set(t, "big.test", A, rrs...)
	}
	manyRecords := make([]Record, 0, 40)
	for i := 1; i <= 40; i++ {
		manyRecords = append(manyRecords, addr(fmt.Sprintf("127.0.1.%d", i)))
	}
	// A second server that refuses everything, to check the rotation.
	refusing := func(t *testing.T, name string) netip.AddrPort {
		z := newZone()
		z.setBehaviour(name, behaviour{rcode: mdns.RcodeRefused})
		return startServer(t, z)
	}

	tests := []struct {
		name    string
		setup   func(t *testing.T, z *zone)
		servers func(t *testing.T, good netip.AddrPort) []netip.AddrPort // default: the zone's server
		cfg     func(*Config)
		q       Query
		status  string
		want    []Record
		check   func(t *testing.T, r *Resolver, z *zone)
	}{
		{
			name:   "A only, ipv6 preferred falls back to A",
			setup:  func(t *testing.T, z *zone) { z.set(t, "v4.test", A, "v4.test. 60 IN A 127.0.0.2") },
			q:      Query{Name: "v4.test"},
			status: StatusValid,
			want:   []Record{addr("127.0.0.2")},
			check: func(t *testing.T, r *Resolver, z *zone) {
				s := r.Stats()[0]
				if s.Sent < 2 || s.Valid == 0 || s.AnyErr == 0 || s.Update == 0 {
					t.Errorf("want AAAA without data, then A valid and an update: %+v", s)
				}
			},
		},
		{
			name:   "dual stack, ipv6 preferred by default",
			setup:  dualStack,
			q:      Query{Name: "www.test"},
			status: StatusValid,
			want:   []Record{addr("2001:db8::1"), addr("2001:db8::2")},
			check: func(t *testing.T, r *Resolver, z *zone) {
				if n := z.count("www.test", A); n != 0 {
					t.Errorf("A asked %d times although AAAA answered", n)
				}
			},
		},
		{
			name:   "dual stack, ipv4 preferred",
			setup:  dualStack,
			q:      Query{Name: "WWW.test.", Prefer: PreferIPv4},
			status: StatusValid,
			want:   []Record{addr("127.0.0.2"), addr("127.0.0.3")},
		},
		{
			name: "resolve-net picks the addresses in the preferred network",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "net.test", A, "net.test. 60 IN A 127.0.1.1", "net.test. 60 IN A 127.0.2.1", "net.test. 60 IN A 127.0.2.2")
			},
			q:      Query{Name: "net.test", Prefer: PreferIPv4, Nets: []netip.Prefix{netip.MustParsePrefix("127.0.2.0/24"), netip.MustParsePrefix("192.0.2.0/24")}},
			status: StatusValid,
			want:   []Record{addr("127.0.2.1"), addr("127.0.2.2")},
		},
		{
			name: "resolve-net without a match keeps every address",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "net.test", A, "net.test. 60 IN A 127.0.1.1", "net.test. 60 IN A 127.0.2.1")
			},
			q:      Query{Name: "net.test", Prefer: PreferIPv4, Nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			status: StatusValid,
			want:   []Record{addr("127.0.1.1"), addr("127.0.2.1")},
		},
		{
			name: "CNAME chain within the answer",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "alias.test", CNAME, "alias.test. 60 IN CNAME mid.test.")
				z.set(t, "mid.test", CNAME, "mid.test. 60 IN CNAME real.test.")
				z.set(t, "real.test", A, "real.test. 60 IN A 127.0.0.9")
			},
			q:      Query{Name: "alias.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   []Record{addr("127.0.0.9")},
			check: func(t *testing.T, r *Resolver, z *zone) {
				if n := z.count("real.test", A); n != 0 {
					t.Errorf("chain target asked %d times although the answer had it", n)
				}
				if s := r.Stats()[0]; s.Cname == 0 {
					t.Errorf("Cname counter not incremented: %+v", s)
				}
			},
		},
		{
			name: "CNAME chain ending without data is re-queried",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "alias.test", CNAME, "alias.test. 60 IN CNAME elsewhere.test.")
				z.setBehaviour("alias.test", behaviour{partial: true})
				z.set(t, "elsewhere.test", A, "elsewhere.test. 60 IN A 127.0.0.10")
			},
			q:      Query{Name: "alias.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   []Record{addr("127.0.0.10")},
			check: func(t *testing.T, r *Resolver, z *zone) {
				if n := z.count("elsewhere.test", A); n == 0 {
					t.Error("CNAME target never asked")
				}
			},
		},
		{
			name: "CNAME loop is an error",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "loop1.test", CNAME, "loop1.test. 60 IN CNAME loop2.test.")
				z.set(t, "loop2.test", CNAME, "loop2.test. 60 IN CNAME loop1.test.")
			},
			q:      Query{Name: "loop1.test", Prefer: PreferIPv4},
			status: StatusOther,
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.CnameError == 0 {
					t.Errorf("CnameError counter not incremented: %+v", s)
				}
			},
		},
		{
			name: "SRV with additional records",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "_http._tcp.svc.test", SRV,
					"_http._tcp.svc.test. 60 IN SRV 0 0 8080 b.svc.test.",
					"_http._tcp.svc.test. 60 IN SRV 0 512 8081 a.svc.test.",
					"_http._tcp.svc.test. 60 IN SRV 0 65535 8082 c.svc.test.")
				z.setExtra(t, "_http._tcp.svc.test", SRV,
					"a.svc.test. 60 IN A 127.0.0.21", "a.svc.test. 60 IN AAAA 2001:db8::21",
					"b.svc.test. 60 IN A 127.0.0.22",
					"c.svc.test. 60 IN AAAA 2001:db8::23")
			},
			q:      Query{Name: "_http._tcp.svc.test", Prefer: PreferIPv4},
			status: StatusValid,
			want: []Record{
				srvRec("127.0.0.21", 8081, 3, "a.svc.test"),
				srvRec("127.0.0.22", 8080, 1, "b.svc.test"),
				srvRec("2001:db8::23", 8082, 256, "c.svc.test"),
			},
			check: func(t *testing.T, r *Resolver, z *zone) {
				for _, target := range []string{"a.svc.test", "b.svc.test", "c.svc.test"} {
					if n := z.count(target, A) + z.count(target, AAAA); n != 0 {
						t.Errorf("%s asked %d times although the additional section had it", target, n)
					}
				}
			},
		},
		{
			name: "SRV without additional records resolves each target",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "_http._tcp.svc.test", SRV,
					"_http._tcp.svc.test. 60 IN SRV 0 10 8080 a.svc.test.",
					"_http._tcp.svc.test. 60 IN SRV 0 10 8081 b.svc.test.")
				z.set(t, "a.svc.test", AAAA, "a.svc.test. 60 IN AAAA 2001:db8::31")
				z.set(t, "b.svc.test", A, "b.svc.test. 60 IN A 127.0.0.32")
			},
			q:      Query{Name: "_http._tcp.svc.test"},
			status: StatusValid,
			want: []Record{
				srvRec("127.0.0.32", 8081, 1, "b.svc.test"),
				srvRec("2001:db8::31", 8080, 1, "a.svc.test"),
			},
		},
		{
			name:   "SRV target . means no server",
			setup:  func(t *testing.T, z *zone) { z.set(t, "_x._tcp.svc.test", SRV, "_x._tcp.svc.test. 60 IN SRV 0 0 0 .") },
			q:      Query{Name: "_x._tcp.svc.test"},
			status: StatusValid,
		},
		{
			name: "TC bit: the same query over TCP",
			setup: func(t *testing.T, z *zone) {
				manyA(t, z)
				z.setBehaviour("big.test", behaviour{truncate: true})
			},
			q:      Query{Name: "big.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   manyRecords,
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.Truncated == 0 {
					t.Errorf("Truncated counter not incremented: %+v", s)
				}
			},
		},
		{
			name:   "reply larger than 512 bytes without EDNS0 is re-asked over TCP",
			setup:  manyA,
			q:      Query{Name: "big.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   manyRecords,
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.TooBig == 0 {
					t.Errorf("TooBig counter not incremented: %+v", s)
				}
			},
		},
		{
			name:   "EDNS0 payload size lets the large reply through UDP",
			setup:  manyA,
			cfg:    func(c *Config) { c.AcceptedPayloadSize = 4096 },
			q:      Query{Name: "big.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   manyRecords,
			check: func(t *testing.T, r *Resolver, z *zone) {
				z.mu.Lock()
				defer z.mu.Unlock()
				if z.ednsSize != 4096 || z.overTCP != 0 {
					t.Errorf("EDNS0 size %d, %d TCP queries; want 4096 and none", z.ednsSize, z.overTCP)
				}
			},
		},
		{
			name:   "tcp@ nameserver is asked over TCP",
			setup:  func(t *testing.T, z *zone) { z.set(t, "v4.test", A, "v4.test. 60 IN A 127.0.0.2") },
			cfg:    func(c *Config) { c.Nameservers[0].TCP = true },
			q:      Query{Name: "v4.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   []Record{addr("127.0.0.2")},
			check: func(t *testing.T, r *Resolver, z *zone) {
				z.mu.Lock()
				defer z.mu.Unlock()
				if z.overTCP == 0 {
					t.Error("no query over TCP")
				}
			},
		},
		{
			name: "replies with a wrong id or question are ignored",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "v4.test", A, "v4.test. 60 IN A 127.0.0.2")
				z.setBehaviour("v4.test", behaviour{bogus: true})
			},
			q:      Query{Name: "v4.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   []Record{addr("127.0.0.2")},
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.Outdated == 0 || s.Invalid == 0 {
					t.Errorf("Outdated and Invalid counters not incremented: %+v", s)
				}
			},
		},
		{
			name:   "NXDOMAIN",
			q:      Query{Name: "missing.test"},
			setup:  func(t *testing.T, z *zone) { z.setBehaviour("missing.test", behaviour{rcode: mdns.RcodeNameError}) },
			status: StatusNX,
		},
		{
			name:   "SERVFAIL",
			q:      Query{Name: "broken.test"},
			setup:  func(t *testing.T, z *zone) { z.setBehaviour("broken.test", behaviour{rcode: mdns.RcodeServerFailure}) },
			status: StatusOther,
		},
		{
			name:   "REFUSED",
			q:      Query{Name: "secret.test"},
			setup:  func(t *testing.T, z *zone) { z.setBehaviour("secret.test", behaviour{rcode: mdns.RcodeRefused}) },
			status: StatusRefused,
		},
		{
			name:   "no data for either family",
			q:      Query{Name: "empty.test"},
			status: StatusOther,
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.AnyErr < 2 {
					t.Errorf("AnyErr counter not incremented for both families: %+v", s)
				}
			},
		},
		{
			name: "unusable addresses are invalid",
			setup: func(t *testing.T, z *zone) {
				z.set(t, "zero.test", A, "zero.test. 60 IN A 0.0.0.0", "zero.test. 60 IN A 224.0.0.1")
			},
			q:      Query{Name: "zero.test", Prefer: PreferIPv4},
			status: StatusInvalid,
		},
		{
			name:    "timeout",
			q:       Query{Name: "v4.test"},
			servers: func(t *testing.T, _ netip.AddrPort) []netip.AddrPort { return []netip.AddrPort{silentServer(t)} },
			status:  StatusTimeout,
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.Timeout < 2 || s.Sent < 2 {
					t.Errorf("want 2 attempts timed out: %+v", s)
				}
			},
		},
		{
			name:   "silent nameserver: the next one answers",
			setup:  func(t *testing.T, z *zone) { z.set(t, "v4.test", A, "v4.test. 60 IN A 127.0.0.2") },
			q:      Query{Name: "v4.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   []Record{addr("127.0.0.2")},
			servers: func(t *testing.T, good netip.AddrPort) []netip.AddrPort {
				return []netip.AddrPort{silentServer(t), good}
			},
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.Timeout == 0 {
					t.Errorf("the silent nameserver was not tried first: %+v", s)
				}
			},
		},
		{
			name:   "refusing nameserver: the next one answers",
			setup:  func(t *testing.T, z *zone) { z.set(t, "v4.test", A, "v4.test. 60 IN A 127.0.0.2") },
			q:      Query{Name: "v4.test", Prefer: PreferIPv4},
			status: StatusValid,
			want:   []Record{addr("127.0.0.2")},
			servers: func(t *testing.T, good netip.AddrPort) []netip.AddrPort {
				return []netip.AddrPort{refusing(t, "v4.test"), good}
			},
			check: func(t *testing.T, r *Resolver, z *zone) {
				if s := r.Stats()[0]; s.Refused == 0 {
					t.Errorf("the refusing nameserver was not tried first: %+v", s)
				}
			},
		},
		{
			name:   "invalid name",
			q:      Query{Name: "bad..name"},
			status: StatusInvalid,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := newZone()
			if tc.setup != nil {
				tc.setup(t, z)
			}
			good := startServer(t, z)
			servers := []netip.AddrPort{good}
			if tc.servers != nil {
				servers = tc.servers(t, good)
			}
			cfg := testConfig(servers...)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			r := New(cfg, nil)
			w := watch(t, r, tc.q)
			w.waitFor(t, fmt.Sprintf("%s %v", tc.status, tc.want), is(tc.status, tc.want...))
			if tc.check != nil {
				tc.check(t, r, z)
			}
		})
	}
}

// TestHoldOnErrors checks that an error keeps the last valid records for the
// hold of its kind, counted from the last valid answer, and no longer.
func TestHoldOnErrors(t *testing.T) {
	t.Parallel()
	const hold = 300 * time.Millisecond
	tests := []struct {
		name   string
		fail   behaviour
		status string
	}{
		{"nx", behaviour{rcode: mdns.RcodeNameError}, StatusNX},
		{"servfail", behaviour{rcode: mdns.RcodeServerFailure}, StatusOther},
		{"refused", behaviour{rcode: mdns.RcodeRefused}, StatusRefused},
		{"timeout", behaviour{drop: true}, StatusTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := newZone()
			z.set(t, "app.test", mdns.TypeA, "app.test. 60 IN A 127.0.0.2")
			cfg := testConfig(startServer(t, z))
			cfg.TimeoutRetry = 30 * time.Millisecond
			// Only the hold under test is short: another one in force
			// would make the records last far beyond the deadline below.
			cfg.Hold = Hold{NX: time.Hour, Timeout: time.Hour, Refused: time.Hour, Other: time.Hour}
			switch tc.status {
			case StatusNX:
				cfg.Hold.NX = hold
			case StatusOther:
				cfg.Hold.Other = hold
			case StatusRefused:
				cfg.Hold.Refused = hold
			case StatusTimeout:
				cfg.Hold.Timeout = hold
			}
			r := New(cfg, nil)
			w := watch(t, r, Query{Name: "app.test", Prefer: PreferIPv4})
			w.waitFor(t, "valid", is(StatusValid, addr("127.0.0.2")))

			validAfter := freshAnswer(t, z, "app.test", mdns.TypeA)
			z.setBehaviour("app.test", tc.fail)
			w.waitFor(t, "error with held records", is(tc.status, addr("127.0.0.2")))
			_, dropped := w.waitFor(t, "records dropped", is(tc.status))
			if d := dropped.Sub(validAfter); d < hold {
				t.Errorf("records dropped %v after the last valid answer, before the %v hold", d, hold)
			}

			// Recovery brings them back.
			z.setBehaviour("app.test", behaviour{})
			w.waitFor(t, "valid again", is(StatusValid, addr("127.0.0.2")))
		})
	}
}

// freshAnswer waits until the server has been asked for name and qtype again
// and returns a time before that query: the answer to it, built from the
// zone as it is now, reaches the resolver after the returned time.
func freshAnswer(t *testing.T, z *zone, name string, qtype uint16) time.Time {
	t.Helper()
	before := time.Now()
	waitCount(t, z, name, qtype, z.count(name, qtype)+1)
	return before
}

// waitCount waits until the server has been asked n times for name and qtype.
func waitCount(t *testing.T, z *zone, name string, qtype uint16, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for z.count(name, qtype) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s asked %d times, want %d", name, z.count(name, qtype), n)
		}
		time.Sleep(2 * time.Millisecond) // polling the server's counter
	}
}

// TestHoldObsolete checks that a record missing from valid answers stays for
// hold obsolete, and that by default it goes at once.
func TestHoldObsolete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		obsolete time.Duration
	}{
		{"held", 300 * time.Millisecond},
		{"default", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := newZone()
			z.set(t, "app.test", mdns.TypeA, "app.test. 60 IN A 127.0.0.2", "app.test. 60 IN A 127.0.0.3")
			cfg := testConfig(startServer(t, z))
			cfg.Hold.Obsolete = tc.obsolete
			r := New(cfg, nil)
			w := watch(t, r, Query{Name: "app.test", Prefer: PreferIPv4})
			w.waitFor(t, "both records", is(StatusValid, addr("127.0.0.2"), addr("127.0.0.3")))

			lastSeen := freshAnswer(t, z, "app.test", mdns.TypeA)
			z.set(t, "app.test", mdns.TypeA, "app.test. 60 IN A 127.0.0.2", "app.test. 60 IN A 127.0.0.4")
			before := z.count("app.test", mdns.TypeA)
			res, at := w.waitFor(t, "the new record", func(res Result) bool {
				return len(res.Records) > 0 && res.Records[len(res.Records)-1] == addr("127.0.0.4")
			})
			if tc.obsolete > 0 {
				want := []Record{addr("127.0.0.2"), addr("127.0.0.3"), addr("127.0.0.4")}
				if !is(StatusValid, want...)(res) {
					t.Fatalf("the obsolete record was not held: %+v", res)
				}
				_, at = w.waitFor(t, "obsolete record dropped", is(StatusValid, addr("127.0.0.2"), addr("127.0.0.4")))
				if d := at.Sub(lastSeen); d < tc.obsolete {
					t.Errorf("obsolete record dropped %v after it was last seen, before its %v hold", d, tc.obsolete)
				}
				if n := z.count("app.test", mdns.TypeA) - before; n < 3 {
					t.Errorf("only %d answers during the hold: the test proves nothing", n)
				}
			} else if !is(StatusValid, addr("127.0.0.2"), addr("127.0.0.4"))(res) {
				t.Fatalf("the obsolete record was held without hold obsolete: %+v at %v", res, at.Sub(lastSeen))
			}
		})
	}
}

// TestOneQueryPerName checks that watchers of the same Query share one loop,
// so one query in flight, and that a late watcher gets the result at once.
func TestOneQueryPerName(t *testing.T) {
	t.Parallel()
	z := newZone()
	z.set(t, "shared.test", mdns.TypeA, "shared.test. 60 IN A 127.0.0.2")
	// A slow server makes overlapping queries visible if there were any.
	z.setBehaviour("shared.test", behaviour{delay: 30 * time.Millisecond})
	cfg := testConfig(startServer(t, z))
	// No retry may overlap a slow answer, even on a loaded machine.
	cfg.TimeoutRetry = 2 * time.Second
	r := New(cfg, nil)
	q := Query{Name: "shared.test", Prefer: PreferIPv4}
	start := time.Now()
	var ws []*watcher
	for range 5 {
		ws = append(ws, watch(t, r, q))
	}
	for _, w := range ws {
		w.waitFor(t, "valid", is(StatusValid, addr("127.0.0.2")))
	}
	late := watch(t, r, Query{Name: "Shared.test.", Prefer: PreferIPv4})
	late.waitFor(t, "valid for the late watcher", is(StatusValid, addr("127.0.0.2")))

	// Let a few more rounds run.
	waitCount(t, z, "shared.test", mdns.TypeA, z.count("shared.test", mdns.TypeA)+3)
	z.mu.Lock()
	maxFlight := z.maxFlight["shared.test."]
	z.mu.Unlock()
	if maxFlight != 1 {
		t.Errorf("%d queries in flight at once for one name, want 1", maxFlight)
	}
	// Rounds start at least TimeoutResolve apart.
	elapsed := time.Since(start)
	if n, most := z.count("shared.test", mdns.TypeA), int(elapsed/cfg.TimeoutResolve)+1; n > most {
		t.Errorf("%d queries in %v: more than one per %v", n, elapsed, cfg.TimeoutResolve)
	}
	r.mu.Lock()
	loops := len(r.loops)
	r.mu.Unlock()
	if loops != 1 {
		t.Errorf("%d loops for one query", loops)
	}
}

// TestWatchStops checks that the loop of a query ends with its last watcher
// and that Watch returns when its context ends.
func TestWatchStops(t *testing.T) {
	t.Parallel()
	z := newZone()
	z.set(t, "app.test", mdns.TypeA, "app.test. 60 IN A 127.0.0.2")
	r := New(testConfig(startServer(t, z)), nil)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	got := make(chan Result, 10)
	for range 2 {
		wg.Go(func() {
			r.Watch(ctx, Query{Name: "app.test"}, func(res Result) {
				select {
				case got <- res:
				default:
				}
			})
		})
	}
	<-got
	cancel()
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.loops) != 0 {
		t.Errorf("%d loops left after the last watcher", len(r.loops))
	}
}

// TestSRVTargetHold checks that an SRV target resolved by its own query keeps
// its addresses through errors, for the hold of the error.
func TestSRVTargetHold(t *testing.T) {
	t.Parallel()
	z := newZone()
	z.set(t, "_http._tcp.svc.test", mdns.TypeSRV,
		"_http._tcp.svc.test. 60 IN SRV 0 0 8080 a.svc.test.",
		"_http._tcp.svc.test. 60 IN SRV 0 0 8081 b.svc.test.")
	z.set(t, "a.svc.test", mdns.TypeA, "a.svc.test. 60 IN A 127.0.0.41")
	z.set(t, "b.svc.test", mdns.TypeA, "b.svc.test. 60 IN A 127.0.0.42")
	cfg := testConfig(startServer(t, z))
	const hold = 200 * time.Millisecond
	cfg.Hold.Other = hold
	r := New(cfg, nil)
	w := watch(t, r, Query{Name: "_http._tcp.svc.test", Prefer: PreferIPv4})
	both := []Record{srvRec("127.0.0.41", 8080, 1, "a.svc.test"), srvRec("127.0.0.42", 8081, 1, "b.svc.test")}
	w.waitFor(t, "both targets", is(StatusValid, both...))

	validAfter := freshAnswer(t, z, "a.svc.test", mdns.TypeA)
	z.setBehaviour("a.svc.test", behaviour{rcode: mdns.RcodeServerFailure})
	_, dropped := w.waitFor(t, "failing target dropped", is(StatusValid, both[1]))
	if d := dropped.Sub(validAfter); d < hold {
		t.Errorf("target dropped %v after its last valid answer, before the %v hold", d, hold)
	}
}

// TestHoldValid checks that a watcher joining a loop whose last valid answer
// is older than hold valid gets a resolution without waiting for the round.
func TestHoldValid(t *testing.T) {
	t.Parallel()
	z := newZone()
	z.set(t, "app.test", mdns.TypeA, "app.test. 60 IN A 127.0.0.2")
	cfg := testConfig(startServer(t, z))
	cfg.TimeoutResolve = time.Hour // only a joining watcher can cause a second query
	cfg.Hold.Valid = time.Nanosecond
	r := New(cfg, nil)
	q := Query{Name: "app.test", Prefer: PreferIPv4}
	watch(t, r, q).waitFor(t, "valid", is(StatusValid, addr("127.0.0.2")))
	if n := z.count("app.test", mdns.TypeA); n != 1 {
		t.Fatalf("%d queries before the second watcher, want 1", n)
	}
	watch(t, r, q).waitFor(t, "valid for the second watcher", is(StatusValid, addr("127.0.0.2")))
	waitCount(t, z, "app.test", mdns.TypeA, 2)
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg := withDefaults(Config{Hold: Hold{NX: -1, Obsolete: 5 * time.Second}})
	want := Hold{Valid: 10 * time.Second, NX: 0, Timeout: 30 * time.Second, Refused: 30 * time.Second, Other: 30 * time.Second, Obsolete: 5 * time.Second}
	if cfg.Hold != want || cfg.ResolveRetries != 3 || cfg.TimeoutResolve != time.Second || cfg.TimeoutRetry != time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
}
