package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
)

// resolveHost resolves name to addresses, asking first for the preferred
// family and, only when the name has no usable address of it, for the other
// one (as HAProxy does). NXDOMAIN is about the name, not the type, so it is
// not asked again for the other family; other errors are.
func (r *Resolver) resolveHost(ctx context.Context, name, prefer string) ([]netip.Addr, string, *nameserver) {
	first, second := mdns.TypeAAAA, mdns.TypeA
	if prefer == PreferIPv4 {
		first, second = second, first
	}
	a, ns, ok := r.lookup(ctx, name, first)
	if !ok {
		return nil, StatusTimeout, nil
	}
	if len(a.addrs) > 0 || a.rcode == mdns.RcodeNameError {
		return a.addrs, a.status(), ns
	}
	// No address of the preferred family, or an error about this type
	// (servers that only know IPv4 names often refuse AAAA queries):
	// ask for the other family, as HAProxy falls back to it.
	b, ns2, ok := r.lookup(ctx, name, second)
	if !ok {
		return nil, StatusTimeout, nil
	}
	if a.rcode != mdns.RcodeSuccess && len(b.addrs) == 0 {
		return nil, a.status(), ns
	}
	if b.anyErr && a.badData {
		// The other family has nothing: the preferred family's unusable
		// records say more about what is wrong.
		return nil, a.status(), ns
	}
	return b.addrs, b.status(), ns2
}

// lookup asks for name and qtype and, when an answer ends on a CNAME whose
// target it does not cover, asks for that target, up to maxCNAMEHops CNAMEs.
// ok is false when no nameserver answered.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (answer, *nameserver, bool) {
	hops := 0
	for {
		a, ns, ok := r.exchange(ctx, name, qtype)
		if !ok || a.next == "" {
			return a, ns, ok
		}
		hops += a.cnames
		if hops > maxCNAMEHops {
			ns.stats.cnameError.Add(1)
			return answer{verdict: replyOK, cnameErr: true}, ns, true
		}
		name = a.next
	}
}

// exchange asks the nameservers in turn, each attempt to the next one, until
// one answers NOERROR, every nameserver has answered with an error, or
// ResolveRetries attempts are spent. ok is false when no answer came; else
// the answer is the last one received.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (answer, *nameserver, bool) {
	n := len(r.ns)
	if n == 0 {
		return answer{}, nil, false
	}
	// Each exchange starts one nameserver further than the previous one,
	// spreading the load; the first starts with the first nameserver.
	start := int((r.turn.Add(1) - 1) % uint32(n))
	var (
		last     answer
		lastNS   *nameserver
		answered = make(map[*nameserver]bool, n)
	)
	for i := range r.cfg.ResolveRetries {
		ns := r.ns[(start+i)%n]
		deadline := time.Now().Add(r.cfg.TimeoutRetry)
		a, err := r.attempt(ctx, ns, name, qtype, deadline)
		if ctx.Err() != nil {
			return answer{}, nil, false
		}
		if err != nil {
			r.log.Debug("no answer", "nameserver", ns.Name, "name", name, "type", mdns.TypeToString[qtype], "err", err)
			// A network error can come back at once (ICMP unreachable):
			// keep the retry pace anyway, to never hammer a broken path.
			if _, ok := sleepUntil(ctx, deadline, nil); !ok {
				return answer{}, nil, false
			}
			continue
		}
		count(ns, a)
		if a.rcode == mdns.RcodeSuccess {
			return a, ns, true
		}
		// An error answer from one nameserver may be a broken nameserver:
		// ask the next one at once, but do not insist once all have spoken.
		last, lastNS = a, ns
		answered[ns] = true
		if len(answered) == n {
			break
		}
	}
	return last, lastNS, lastNS != nil
}

// count credits ns with an accepted answer.
func count(ns *nameserver, a answer) {
	c := &ns.stats
	switch a.rcode {
	case mdns.RcodeSuccess:
	case mdns.RcodeNameError:
		c.nx.Add(1)
		return
	case mdns.RcodeRefused:
		c.refused.Add(1)
		return
	default:
		c.other.Add(1)
		return
	}
	if a.cnames > 0 {
		c.cname.Add(1)
	}
	switch {
	case a.cnameErr:
		c.cnameError.Add(1)
	case a.anyErr:
		c.anyErr.Add(1)
	case a.badData:
		c.invalid.Add(1)
	case a.next == "":
		c.valid.Add(1)
	}
}

// errNoAnswer is the error of an attempt that got no acceptable reply.
var errNoAnswer = errors.New("no answer before the retry timeout")

// attempt asks ns once, over UDP then TCP if the reply is truncated, or over
// TCP only for a "tcp@" nameserver.
func (r *Resolver) attempt(ctx context.Context, ns *nameserver, name string, qtype uint16, deadline time.Time) (answer, error) {
	if ns.TCP {
		return r.askTCP(ctx, ns, r.newQuery(name, qtype), deadline)
	}
	a, err := r.askUDP(ctx, ns, r.newQuery(name, qtype), deadline)
	if err != nil || !a.truncated {
		return a, err
	}
	// RFC 7766: the full answer is to be had over TCP. It gets its own
	// retry timeout, as the UDP exchange may have used most of this one.
	return r.askTCP(ctx, ns, r.newQuery(name, qtype), time.Now().Add(r.cfg.TimeoutRetry))
}

// newQuery builds a recursive query with a random id (crypto/rand, through
// miekg's Id) and, if the configuration asks for it, an EDNS0 OPT record.
func (r *Resolver) newQuery(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype) // SetQuestion draws the random id
	m.RecursionDesired = true
	if r.payload > 512 {
		m.SetEdns0(uint16(r.payload), false)
	}
	return m
}

// askUDP sends req from a fresh socket, so from a random source port, and
// waits for its reply until deadline, skipping stray datagrams.
func (r *Resolver) askUDP(ctx context.Context, ns *nameserver, req *mdns.Msg, deadline time.Time) (answer, error) {
	packed, err := req.Pack()
	if err != nil {
		return answer{}, fmt.Errorf("packing query for %s: %w", req.Question[0].Name, err)
	}
	// A connected socket: the kernel only hands us datagrams from the
	// nameserver's address and port, and reports ICMP errors.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", ns.Addr.String())
	if err != nil {
		ns.stats.sndError.Add(1)
		return answer{}, fmt.Errorf("opening UDP socket to %s: %w", ns.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.SetDeadline(deadline); err != nil {
		return answer{}, fmt.Errorf("setting UDP deadline: %w", err)
	}
	if _, err := conn.Write(packed); err != nil {
		ns.stats.sndError.Add(1)
		return answer{}, fmt.Errorf("sending UDP query to %s: %w", ns.Addr, err)
	}
	ns.stats.sent.Add(1)

	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return answer{}, r.readError(ns, "UDP", err)
		}
		a := readAnswer(req, buf[:n])
		if !r.accept(ns, a) {
			continue
		}
		switch {
		case a.truncated:
			ns.stats.truncated.Add(1)
		case n > r.payload:
			// More than we announced: a sloppy server or a middlebox. Treat
			// it as truncated rather than trust a size we did not allow.
			ns.stats.tooBig.Add(1)
			a.truncated = true
		}
		return a, nil
	}
}

// askTCP sends req over a new TCP connection and waits for its reply until
// deadline, skipping replies to other queries.
func (r *Resolver) askTCP(ctx context.Context, ns *nameserver, req *mdns.Msg, deadline time.Time) (answer, error) {
	packed, err := req.Pack()
	if err != nil {
		return answer{}, fmt.Errorf("packing query for %s: %w", req.Question[0].Name, err)
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", ns.Addr.String())
	if err != nil {
		if isTimeout(err) {
			ns.stats.timeout.Add(1)
		} else {
			ns.stats.sndError.Add(1)
		}
		return answer{}, fmt.Errorf("connecting to %s over TCP: %w", ns.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.SetDeadline(deadline); err != nil {
		return answer{}, fmt.Errorf("setting TCP deadline: %w", err)
	}
	// RFC 1035 4.2.2: over TCP each message is preceded by its length.
	msg := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(packed)), uint16(len(packed)))
	if _, err := conn.Write(append(msg, packed...)); err != nil {
		ns.stats.sndError.Add(1)
		return answer{}, fmt.Errorf("sending TCP query to %s: %w", ns.Addr, err)
	}
	ns.stats.sent.Add(1)

	var size [2]byte
	for {
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return answer{}, r.readError(ns, "TCP", err)
		}
		buf := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(conn, buf); err != nil {
			return answer{}, r.readError(ns, "TCP", err)
		}
		a := readAnswer(req, buf)
		if !r.accept(ns, a) {
			continue
		}
		// A truncated answer over TCP cannot be completed: as HAProxy, call
		// it an error rather than use part of a record set.
		if a.truncated {
			ns.stats.truncated.Add(1)
			a = answer{verdict: replyOK, rcode: mdns.RcodeServerFailure}
		}
		return a, nil
	}
}

// accept counts and logs a reply that is not the one awaited.
func (r *Resolver) accept(ns *nameserver, a answer) bool {
	switch a.verdict {
	case replyOutdated:
		ns.stats.outdated.Add(1)
		r.log.Debug("ignoring reply with another query's id", "nameserver", ns.Name)
		return false
	case replyInvalid:
		ns.stats.invalid.Add(1)
		r.log.Debug("ignoring invalid reply", "nameserver", ns.Name)
		return false
	}
	return true
}

// readError counts a failed read and wraps it.
func (r *Resolver) readError(ns *nameserver, proto string, err error) error {
	if isTimeout(err) {
		ns.stats.timeout.Add(1)
		return fmt.Errorf("%s from %s: %w", proto, ns.Addr, errNoAnswer)
	}
	ns.stats.sndError.Add(1)
	return fmt.Errorf("reading %s reply from %s: %w", proto, ns.Addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
