package dns

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

var fuzzTypes = []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeSRV}

func fuzzQuery(kind uint8) *mdns.Msg {
	qtype := fuzzTypes[int(kind)%len(fuzzTypes)]
	name := "www.test."
	if qtype == mdns.TypeSRV {
		name = "_http._tcp.www.test."
	}
	return new(mdns.Msg).SetQuestion(name, qtype)
}

// FuzzAnswer feeds arbitrary bytes as the reply to a query: reading it must
// not panic, and must never yield an address a server could not use.
func FuzzAnswer(f *testing.F) {
	seed := func(kind uint8, build func(m *mdns.Msg)) {
		req := fuzzQuery(kind)
		m := new(mdns.Msg).SetReply(req)
		build(m)
		raw, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, raw)
	}
	rrs := func(s ...string) []mdns.RR { return mustRRs(f, s) }
	seed(0, func(m *mdns.Msg) {
		m.Answer = rrs("www.test. 60 IN CNAME a.test.", "a.test. 60 IN A 127.0.0.1", "a.test. 60 IN A 0.0.0.0")
	})
	seed(1, func(m *mdns.Msg) {
		m.Answer = rrs("www.test. 60 IN AAAA 2001:db8::1", "www.test. 60 IN AAAA ::", "www.test. 60 IN AAAA ::ffff:127.0.0.1")
		m.SetEdns0(4096, false)
	})
	seed(2, func(m *mdns.Msg) {
		m.Answer = rrs("_http._tcp.www.test. 60 IN SRV 0 10 80 a.test.", "_http._tcp.www.test. 60 IN SRV 0 10 0 b.test.")
		m.Extra = rrs("a.test. 60 IN A 127.0.0.1", "a.test. 60 IN AAAA ff02::1")
	})
	seed(0, func(m *mdns.Msg) { m.Truncated = true })
	seed(0, func(m *mdns.Msg) { m.Rcode = mdns.RcodeNameError })
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0, 0, 0x82, 0, 0, 1, 0, 0})

	f.Fuzz(func(t *testing.T, kind uint8, raw []byte) {
		req := fuzzQuery(kind)
		// Take the id from the reply so that mutations get past the id
		// check to the interesting part.
		if len(raw) >= 2 {
			req.Id = binary.BigEndian.Uint16(raw)
		}
		a := readAnswer(req, raw)
		if a.verdict != replyOK {
			return
		}
		_ = a.status()
		check := func(addrs []netip.Addr) {
			for _, addr := range addrs {
				if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() || addr.Is4In6() {
					t.Fatalf("unusable address %v from %x", addr, raw)
				}
			}
			for _, prefer := range []string{PreferIPv4, PreferIPv6} {
				picked := pick(addrs, prefer, nil)
				if len(picked) == 0 && len(addrs) > 0 {
					t.Fatalf("pick dropped every address of %v", addrs)
				}
			}
		}
		check(a.addrs)
		for _, s := range a.srvs {
			if s.port == 0 || s.target == "" || s.target == "." {
				t.Fatalf("unusable SRV record %+v from %x", s, raw)
			}
			check(s.addrs)
		}
		if a.next != "" && len(a.addrs) > 0 {
			t.Fatalf("both addresses and a name to ask next from %x", raw)
		}
	})
}

func TestReadAnswerRejects(t *testing.T) {
	t.Parallel()
	req := new(mdns.Msg).SetQuestion("www.test.", mdns.TypeA)
	reply := func(edit func(m *mdns.Msg)) []byte {
		m := new(mdns.Msg).SetReply(req)
		m.Answer = mustRRs(t, []string{"www.test. 60 IN A 127.0.0.1"})
		edit(m)
		raw, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name string
		raw  []byte
		want verdict
	}{
		{"the reply", reply(func(*mdns.Msg) {}), replyOK},
		{"question in another case", reply(func(m *mdns.Msg) { m.Question[0].Name = "WWW.Test." }), replyOK},
		{"wrong id", reply(func(m *mdns.Msg) { m.Id++ }), replyOutdated},
		{"wrong name", reply(func(m *mdns.Msg) { m.Question[0].Name = "evil.test." }), replyInvalid},
		{"wrong type", reply(func(m *mdns.Msg) { m.Question[0].Qtype = mdns.TypeAAAA }), replyInvalid},
		{"no question", reply(func(m *mdns.Msg) { m.Question = nil }), replyInvalid},
		{"two questions", reply(func(m *mdns.Msg) { m.Question = append(m.Question, m.Question[0]) }), replyInvalid},
		{"a query, not a response", reply(func(m *mdns.Msg) { m.Response = false }), replyInvalid},
		{"another opcode", reply(func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }), replyInvalid},
		{"short", []byte{1, 2, 3}, replyInvalid},
	}
	for _, tc := range tests {
		if got := readAnswer(req, tc.raw).verdict; got != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestPick(t *testing.T) {
	t.Parallel()
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	nets := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("127.0.2.0/24")}
	mixed := addrs("2001:db8:2::1", "127.0.1.1", "2001:db8:1::1", "127.0.2.1", "127.0.1.1")
	tests := []struct {
		name   string
		in     []netip.Addr
		prefer string
		nets   []netip.Prefix
		want   []netip.Addr
	}{
		{"ipv6 preferred", mixed, PreferIPv6, nil, addrs("2001:db8:1::1", "2001:db8:2::1")},
		{"ipv4 preferred, sorted and unique", mixed, PreferIPv4, nil, addrs("127.0.1.1", "127.0.2.1")},
		{"fallback to the other family", addrs("127.0.1.1"), PreferIPv6, nil, addrs("127.0.1.1")},
		{"net within the family", mixed, PreferIPv4, nets, addrs("127.0.2.1")},
		{"family ranks above net", addrs("2001:db8:2::1", "127.0.2.1"), PreferIPv6, nets, addrs("2001:db8:2::1")},
	}
	for _, tc := range tests {
		if got := pick(tc.in, tc.prefer, tc.nets); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    []Nameserver
		wantErr string
	}{
		{
			name: "typical",
			content: "# generated\nsearch example.test\nnameserver 127.0.0.53\n" +
				"nameserver ::1 ; local\noptions edns0 trust-ad\n  nameserver\t127.0.0.2  \n",
			want: []Nameserver{
				{Name: "127.0.0.53", Addr: netip.MustParseAddrPort("127.0.0.53:53")},
				{Name: "::1", Addr: netip.MustParseAddrPort("[::1]:53")},
				{Name: "127.0.0.2", Addr: netip.MustParseAddrPort("127.0.0.2:53")},
			},
		},
		{
			name:    "bad lines are reported, good ones kept",
			content: "nameserver not-an-ip\nnameserver\nnameserver 127.0.0.1\n",
			want:    []Nameserver{{Name: "127.0.0.1", Addr: netip.MustParseAddrPort("127.0.0.1:53")}},
			wantErr: ":1: nameserver address",
		},
		{name: "no nameserver", content: "search test\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ParseResolvConf(path)
			if !slices.Equal(got, tc.want) {
				t.Errorf("nameservers %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := ParseResolvConf(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("no error for a missing file")
	}
}
