package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// behaviour makes the test server misbehave for one name.
type behaviour struct {
	rcode    int           // answer with this rcode and no records
	drop     bool          // never answer
	truncate bool          // over UDP, answer with the TC bit and no records
	bogus    bool          // first send a reply with a wrong id and one with a wrong question
	partial  bool          // do not follow a CNAME of this name: the client has to
	delay    time.Duration // answer late, to make queries overlap
}

type qkey struct {
	name  string
	qtype uint16
}

// zone is the data and behaviour of the in-process authoritative server;
// tests change it while the resolver runs.
type zone struct {
	mu        sync.Mutex
	answers   map[qkey][]mdns.RR
	extra     map[qkey][]mdns.RR
	behave    map[string]behaviour
	queries   map[qkey]int
	overTCP   int
	inflight  map[string]int
	maxFlight map[string]int
	ednsSize  uint16 // UDP size of the last query's OPT record, 0 if none
}

func newZone() *zone {
	return &zone{
		answers:   make(map[qkey][]mdns.RR),
		extra:     make(map[qkey][]mdns.RR),
		behave:    make(map[string]behaviour),
		queries:   make(map[qkey]int),
		inflight:  make(map[string]int),
		maxFlight: make(map[string]int),
	}
}

func mustRRs(t testing.TB, rrs []string) []mdns.RR {
	t.Helper()
	var out []mdns.RR
	for _, s := range rrs {
		rr, err := mdns.NewRR(s)
		if err != nil {
			t.Fatalf("bad test record %q: %v", s, err)
		}
		out = append(out, rr)
	}
	return out
}

// set replaces the answer records of name and qtype.
func (z *zone) set(t testing.TB, name string, qtype uint16, rrs ...string) {
	parsed := mustRRs(t, rrs)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.answers[qkey{mdns.Fqdn(name), qtype}] = parsed
}

// setExtra replaces the additional records sent with name and qtype.
func (z *zone) setExtra(t testing.TB, name string, qtype uint16, rrs ...string) {
	parsed := mustRRs(t, rrs)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.extra[qkey{mdns.Fqdn(name), qtype}] = parsed
}

func (z *zone) setBehaviour(name string, b behaviour) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.behave[mdns.Fqdn(name)] = b
}

func (z *zone) count(name string, qtype uint16) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[qkey{mdns.Fqdn(name), qtype}]
}

func (z *zone) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	name := lowerName(q.Name)
	udp := w.LocalAddr().Network() == "udp"

	z.mu.Lock()
	z.queries[qkey{name, q.Qtype}]++
	if !udp {
		z.overTCP++
	}
	z.ednsSize = 0
	if opt := req.IsEdns0(); opt != nil {
		z.ednsSize = opt.UDPSize()
	}
	z.inflight[name]++
	z.maxFlight[name] = max(z.maxFlight[name], z.inflight[name])
	b := z.behave[name]
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	// Follow CNAMEs within the zone, as an authoritative server does.
	cur := name
	for range 20 {
		if rrs := z.answers[qkey{cur, q.Qtype}]; len(rrs) > 0 {
			m.Answer = append(m.Answer, rrs...)
			m.Extra = append(m.Extra, z.extra[qkey{cur, q.Qtype}]...)
			break
		}
		cname := z.answers[qkey{cur, mdns.TypeCNAME}]
		if len(cname) == 0 {
			break
		}
		m.Answer = append(m.Answer, cname...)
		if z.behave[cur].partial {
			break
		}
		cur = lowerName(cname[0].(*mdns.CNAME).Target)
	}
	z.mu.Unlock()

	if b.delay > 0 {
		time.Sleep(b.delay) // the server being slow is the point here
	}
	// Done before replying: the client may ask again as soon as it has the
	// reply, and that is not an overlap.
	z.mu.Lock()
	z.inflight[name]--
	z.mu.Unlock()
	switch {
	case b.drop:
		return
	case b.rcode != 0:
		m.Answer, m.Extra = nil, nil
		m.Rcode = b.rcode
	case b.truncate && udp:
		m.Answer, m.Extra = nil, nil
		m.Truncated = true
	}
	if b.bogus && udp {
		poison := []mdns.RR{
			&mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.IPv4(127, 6, 6, 6)},
			&mdns.AAAA{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: 60}, AAAA: net.ParseIP("2001:db8::666")},
		}
		wrongID := m.Copy()
		wrongID.Id++
		wrongID.Answer = poison
		_ = w.WriteMsg(wrongID)
		wrongQ := m.Copy()
		wrongQ.Question = []mdns.Question{{Name: "other.test.", Qtype: q.Qtype, Qclass: q.Qclass}}
		wrongQ.Answer = poison
		_ = w.WriteMsg(wrongQ)
		garbage := []byte{byte(m.Id >> 8), byte(m.Id), 0x84, 0, 0, 1}
		_, _ = w.Write(garbage)
	}
	_ = w.WriteMsg(m)
}

// startServer serves z over UDP and TCP on the same random loopback port.
func startServer(t *testing.T, z *zone) netip.AddrPort {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		ln, err := net.Listen("tcp", addr.String())
		if err != nil { // the port is taken for TCP: try another
			pc.Close()
			continue
		}
		for _, s := range []*mdns.Server{{PacketConn: pc, Handler: z}, {Listener: ln, Handler: z}} {
			started := make(chan struct{})
			s.NotifyStartedFunc = func() { close(started) }
			served := make(chan error, 1)
			go func() { served <- s.ActivateAndServe() }()
			select {
			case <-started:
			case err := <-served:
				t.Fatalf("test server: %v", err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = s.ShutdownContext(ctx)
			})
		}
		return addr
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return netip.AddrPort{}
}

// silentServer returns an address whose socket takes queries and never
// answers (and, being open, sends no ICMP error either).
func silentServer(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// watcher records what a Watch notifies.
type watcher struct {
	mu      sync.Mutex
	results []Result
	at      []time.Time
	signal  chan struct{}
	cursor  int // first result waitFor still looks at
}

// watch runs r.Watch(q) until the test ends.
func watch(t *testing.T, r *Resolver, q Query) *watcher {
	t.Helper()
	w := &watcher{signal: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(ctx, q, func(res Result) {
			w.mu.Lock()
			w.results = append(w.results, res)
			w.at = append(w.at, time.Now())
			w.mu.Unlock()
			select {
			case w.signal <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return w
}

// waitFor returns the first result not yet looked at that satisfies ok, and
// when it was notified; it fails the test after a generous deadline.
func (w *watcher) waitFor(t *testing.T, what string, ok func(Result) bool) (Result, time.Time) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for ; w.cursor < len(w.results); w.cursor++ {
			if res := w.results[w.cursor]; ok(res) {
				at := w.at[w.cursor]
				w.cursor++
				w.mu.Unlock()
				return res, at
			}
		}
		all := slices.Clone(w.results)
		w.mu.Unlock()
		select {
		case <-w.signal:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %+v", what, all)
		}
	}
}

// is matches a result by status and records.
func is(status string, recs ...Record) func(Result) bool {
	return func(res Result) bool {
		return res.Status == status && slices.Equal(res.Records, recs)
	}
}

func addr(s string) Record { return Record{Addr: netip.MustParseAddr(s)} }

func srvRec(a string, port uint16, weight int, target string) Record {
	return Record{Addr: netip.MustParseAddr(a), Port: port, Weight: weight, Target: target}
}

// testConfig is quick enough for tests: rounds every 20ms, retries 100ms.
func testConfig(ns ...netip.AddrPort) Config {
	cfg := Config{
		Name:           "test",
		ResolveRetries: 2,
		TimeoutResolve: 20 * time.Millisecond,
		TimeoutRetry:   100 * time.Millisecond,
	}
	for i, a := range ns {
		cfg.Nameservers = append(cfg.Nameservers, Nameserver{Name: fmt.Sprintf("ns%d", i+1), Addr: a})
	}
	return cfg
}
