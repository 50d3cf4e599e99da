package dns

import (
	"encoding/binary"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// maxCNAMEHops bounds how many CNAMEs one resolution follows, within an
// answer and across re-queries together, so that a loop or an absurdly long
// chain ends as an error instead of a query storm.
const maxCNAMEHops = 8

// verdict says whether a datagram is the reply to our query at all. Only
// replyOK answers are looked at; the others are counted and ignored while the
// query keeps waiting, so that a spoofed or stray packet cannot end it.
type verdict int

const (
	replyOK       verdict = iota
	replyOutdated         // well-formed reply carrying another query's id
	replyInvalid          // malformed, not a response, or another question
)

// srvRecord is one usable SRV record of an answer.
type srvRecord struct {
	target string       // lower-case FQDN with its trailing dot
	port   uint16       // never 0
	weight uint16       // the SRV weight as received
	addrs  []netip.Addr // the target's usable addresses found in the answer
}

// answer is what one reply says about our question. It is built by
// readAnswer, which does all the interpretation of untrusted bytes.
type answer struct {
	verdict   verdict
	truncated bool // TC bit: the same question must be asked over TCP
	rcode     int

	addrs []netip.Addr // A/AAAA: usable addresses at the end of the CNAME chain
	srvs  []srvRecord  // SRV: usable records at the end of the CNAME chain

	cnames   int    // CNAME hops followed inside this answer
	cnameErr bool   // CNAME loop or chain too long
	next     string // chain ended on a name without data: ask for it next
	anyErr   bool   // NOERROR but no record of the asked type
	badData  bool   // records of the asked type, none of them usable
}

// status maps an accepted reply to HAProxy's resolution statuses.
func (a *answer) status() string {
	switch a.rcode {
	case mdns.RcodeSuccess:
	case mdns.RcodeNameError:
		return StatusNX
	case mdns.RcodeRefused:
		return StatusRefused
	default: // SERVFAIL, FORMERR, NOTIMP, ...
		return StatusOther
	}
	switch {
	case a.cnameErr, a.anyErr:
		return StatusOther
	case a.badData:
		return StatusInvalid
	}
	return StatusValid
}

// readAnswer interprets raw as the reply to req. It never trusts the reply:
// the id, the QR bit, the opcode and the question must match req, and only
// records that give a usable address (or SRV port) are returned.
func readAnswer(req *mdns.Msg, raw []byte) answer {
	if len(raw) < 12 {
		return answer{verdict: replyInvalid}
	}
	id := binary.BigEndian.Uint16(raw)
	resp := new(mdns.Msg)
	if err := resp.Unpack(raw); err != nil {
		// A truncated reply may be cut in the middle of a record; its header
		// still tells us to retry over TCP, where everything is checked again,
		// so trusting it costs at most one TCP query.
		const qr, tc = 0x80, 0x02
		if id == req.Id && raw[2]&qr != 0 && raw[2]&tc != 0 {
			return answer{verdict: replyOK, truncated: true}
		}
		return answer{verdict: replyInvalid}
	}
	if resp.Id != req.Id {
		return answer{verdict: replyOutdated}
	}
	if !resp.Response || resp.Opcode != mdns.OpcodeQuery || !sameQuestion(resp.Question, req.Question) {
		return answer{verdict: replyInvalid}
	}
	a := answer{verdict: replyOK, truncated: resp.Truncated, rcode: resp.Rcode}
	if a.truncated || a.rcode != mdns.RcodeSuccess {
		return a
	}

	q := req.Question[0]
	end, data, hops, loop := followChain(indexRRs(resp.Answer), q.Name, q.Qtype)
	a.cnames = hops
	if loop {
		a.cnameErr = true
		return a
	}
	switch q.Qtype {
	case mdns.TypeA, mdns.TypeAAAA:
		a.addrs = addresses(data)
	case mdns.TypeSRV:
		// Targets' addresses may be in the additional section (or, from some
		// servers, in the answer section): look in both.
		pool := indexRRs(append(append([]mdns.RR(nil), resp.Extra...), resp.Answer...))
		var unavailable int
		for _, rr := range data {
			srv, ok := rr.(*mdns.SRV)
			if !ok {
				continue
			}
			target := lowerName(mdns.Fqdn(srv.Target))
			if target == "." {
				// RFC 2782: the service is decidedly not available here.
				unavailable++
				continue
			}
			if srv.Port == 0 {
				continue
			}
			_, v4, _, _ := followChain(pool, target, mdns.TypeA)
			_, v6, _, _ := followChain(pool, target, mdns.TypeAAAA)
			a.srvs = append(a.srvs, srvRecord{
				target: target,
				port:   srv.Port,
				weight: srv.Weight,
				addrs:  append(addresses(v4), addresses(v6)...),
			})
		}
		if len(data) > 0 && len(a.srvs) == 0 && unavailable == 0 {
			a.badData = true
		}
		return a
	}
	switch {
	case len(a.addrs) > 0:
	case len(data) > 0:
		a.badData = true
	case hops > 0:
		// The server gave the alias but not what it points to (typically the
		// target is outside its zone): the target has to be asked itself.
		a.next = end
	default:
		a.anyErr = true
	}
	return a
}

// sameQuestion reports whether a reply's question section is exactly our
// single question. Names compare case-insensitively (RFC 4343).
func sameQuestion(got, want []mdns.Question) bool {
	return len(got) == 1 && len(want) == 1 &&
		got[0].Qtype == want[0].Qtype &&
		got[0].Qclass == want[0].Qclass &&
		lowerName(got[0].Name) == lowerName(want[0].Name)
}

// rrIndex holds the Internet-class records of a section by lower-case owner.
type rrIndex map[string][]mdns.RR

func indexRRs(rrs []mdns.RR) rrIndex {
	idx := make(rrIndex, len(rrs))
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != mdns.ClassINET {
			continue
		}
		owner := lowerName(h.Name)
		idx[owner] = append(idx[owner], rr)
	}
	return idx
}

// followChain follows CNAMEs from name through byOwner and returns the name
// the chain ends at, the records of type qtype owned by that name, the number
// of hops, and whether the chain loops or is longer than maxCNAMEHops.
func followChain(byOwner rrIndex, name string, qtype uint16) (end string, data []mdns.RR, hops int, loop bool) {
	end = lowerName(name)
	for {
		var alias string
		for _, rr := range byOwner[end] {
			if rr.Header().Rrtype == qtype {
				data = append(data, rr)
			}
			if c, ok := rr.(*mdns.CNAME); ok {
				alias = lowerName(mdns.Fqdn(c.Target))
			}
		}
		if len(data) > 0 || alias == "" {
			return end, data, hops, false
		}
		hops++
		if hops > maxCNAMEHops {
			return end, nil, hops, true
		}
		end = alias
	}
}

// addresses returns the usable addresses of A and AAAA records.
func addresses(rrs []mdns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		var (
			addr netip.Addr
			ok   bool
		)
		switch v := rr.(type) {
		case *mdns.A:
			addr, ok = netip.AddrFromSlice(v.A)
			addr = addr.Unmap()
			ok = ok && addr.Is4()
		case *mdns.AAAA:
			addr, ok = netip.AddrFromSlice(v.AAAA)
			// An IPv4-mapped address in an AAAA record is not a real IPv6
			// destination; it would also blur the family preference.
			ok = ok && addr.Is6() && !addr.Is4In6()
		}
		if ok && usable(addr) {
			out = append(out, addr)
		}
	}
	return out
}

// usable reports whether a server could be reached at addr: an unspecified,
// multicast or broadcast address from DNS is a mistake or an attack.
func usable(addr netip.Addr) bool {
	return addr.IsValid() && !addr.IsUnspecified() && !addr.IsMulticast() &&
		addr != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// lowerName lower-cases the ASCII letters of a domain name, which is all DNS
// case-insensitivity covers (RFC 4343).
func lowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}
