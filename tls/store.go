// Package tls builds the TLS contexts of Sluice's binds and ssl servers.
//
// The master reads certificates the way HAProxy's "crt" and "crt-list"
// bind options do, with their OCSP responses (ReadCertsFS), and makes the
// keys every worker shares: session ticket keys (ParseTicketKeys for
// HAProxy's files) and Encrypted Client Hello keys (NewECHKey, with the
// ECHConfigList to publish). A worker turns them into crypto/tls
// configurations: NewServer for a bind, which picks a certificate per
// handshake by SNI and key type, and NewClient for a server line.
//
// Callers import it with an alias (tlsctx), since it shares its name with
// crypto/tls.
package tls

import (
	"crypto/ecdsa"
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A Store holds the certificates of one bind and picks one for each
// handshake. It is immutable once built, so it is safe for concurrent use.
//
// Selection follows HAProxy: an exact match of the client's SNI on a
// certificate's CN or DNS SANs, then a wildcard match ("*.example.com"
// matches exactly one label), then the default certificate, which is the
// first one loaded. When several certificates match the same name, the
// first ECDSA one the client supports wins, then the first one it supports
// at all; so an ECDSA and an RSA certificate for one site serve both modern
// and RSA-only clients. The default certificate takes part in this with the
// other certificates for its first name, so a client without SNI also gets
// the key type it supports.
type Store struct {
	certs    []*slot            // in load order; certs[0] is the default
	exact    map[string][]*slot // lower-case name -> candidates in load order
	wildcard map[string][]*slot // "example.com" for "*.example.com"
	defaults []*slot            // certs[0] and its siblings for the same name
	warnings []string
}

// A slot is one certificate of a Store with its crt-list filters.
type slot struct {
	cert *stdtls.Certificate
	neg  []string       // lower-case negative SNI filters: names or "*.parent"
	cfg  *stdtls.Config // the handshake's configuration (NewServer); nil in a plain Store
}

// excluded reports whether a negative filter of the slot matches name.
func (s *slot) excluded(name string) bool {
	for _, n := range s.neg {
		if n == name {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if _, parent, ok := strings.Cut(name, "."); ok && parent == rest {
				return true
			}
		}
	}
	return false
}

// storeItem is a certificate to put in a Store.
type storeItem struct {
	cert  stdtls.Certificate
	label string   // names the certificate in messages
	names []string // SNI filters; nil: the certificate's own names
	neg   []string // negative SNI filters, without the "!"
	cfg   *stdtls.Config
}

// NewStore makes a Store from certificates already in memory (for example
// from SelfSigned). The first one is the default. Each must carry a private
// key; Leaf is parsed when it is nil.
func NewStore(certs ...stdtls.Certificate) (*Store, error) {
	items := make([]storeItem, len(certs))
	for i := range certs {
		items[i] = storeItem{cert: certs[i], label: fmt.Sprintf("certificate %d", i+1)}
	}
	return build(items)
}

// build makes a Store.
func build(items []storeItem) (*Store, error) {
	if len(items) == 0 {
		return nil, errors.New("no certificate")
	}
	s := &Store{
		exact:    make(map[string][]*slot),
		wildcard: make(map[string][]*slot),
	}
	now := time.Now()
	firstNames := make(map[*slot]string)
	for i := range items {
		it := items[i]
		c := it.cert // copy: the Store owns its certificates
		if err := prepare(&c); err != nil {
			return nil, fmt.Errorf("%s: %w", it.label, err)
		}
		if w := validityWarning(c.Leaf, now); w != "" {
			s.warnings = append(s.warnings, fmt.Sprintf("%s (%s): %s", it.label, describe(c.Leaf), w))
		}
		sl := &slot{cert: &c, cfg: it.cfg}
		ns := it.names
		if ns == nil {
			ns = names(c.Leaf)
		}
		for _, n := range it.neg {
			n = strings.ToLower(n)
			if n == "*" {
				ns = it.names // "!*": not indexed by its own names
				continue
			}
			sl.neg = append(sl.neg, n)
		}
		if len(ns) > 0 {
			firstNames[sl] = strings.ToLower(ns[0])
		}
		s.add(sl, ns)
	}
	s.defaults = s.siblings(s.certs[0], firstNames[s.certs[0]])
	return s, nil
}

// prepare checks that c is usable by a server and fills in c.Leaf.
func prepare(c *stdtls.Certificate) error {
	if len(c.Certificate) == 0 {
		return errors.New("no certificate")
	}
	if c.PrivateKey == nil {
		return errors.New("no private key")
	}
	if c.Leaf == nil {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return fmt.Errorf("parse certificate: %w", err)
		}
		c.Leaf = leaf
	}
	return checkKeyMatch(c.Leaf, c.PrivateKey)
}

func (s *Store) add(sl *slot, names []string) {
	s.certs = append(s.certs, sl)
	for _, name := range names {
		name = strings.ToLower(name)
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			s.wildcard[rest] = append(s.wildcard[rest], sl)
		} else if !strings.Contains(name, "*") {
			s.exact[name] = append(s.exact[name], sl)
		}
		// Other wildcard forms ("w*.example.com") are not matched, as in HAProxy.
	}
}

// siblings returns sl followed by the other certificates for its first
// name, so that the default certificate has its ECDSA/RSA alternative too.
func (s *Store) siblings(sl *slot, first string) []*slot {
	out := []*slot{sl}
	if first == "" {
		return out
	}
	var cands []*slot
	if rest, ok := strings.CutPrefix(first, "*."); ok {
		cands = s.wildcard[rest]
	} else {
		cands = s.exact[first]
	}
	for _, o := range cands {
		if o != sl {
			out = append(out, o)
		}
	}
	return out
}

// names returns the lower-case, de-duplicated names a certificate serves:
// its DNS SANs and its CN, as HAProxy indexes both. IP SANs are left out
// because SNI never carries an address.
func names(leaf *x509.Certificate) []string {
	var out []string
	seen := make(map[string]bool)
	for _, n := range append([]string{leaf.Subject.CommonName}, leaf.DNSNames...) {
		n = strings.ToLower(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

// GetCertificate picks the certificate for a handshake. It is meant for
// crypto/tls.Config.GetCertificate and never returns an error: a client that
// supports none of the candidates gets the first one and the handshake fails
// in crypto/tls with a precise alert.
func (s *Store) GetCertificate(hello *stdtls.ClientHelloInfo) (*stdtls.Certificate, error) {
	return s.lookup(hello).cert, nil
}

// lookup picks the slot for a handshake: exact name, then wildcard, then
// the default, skipping candidates whose negative filters match the name.
func (s *Store) lookup(hello *stdtls.ClientHelloInfo) *slot {
	if sl := s.match(hello); sl != nil {
		return sl
	}
	return pick(s.defaults, "", hello)
}

// match is lookup without the default: nil when no certificate is for the
// client's SNI.
func (s *Store) match(hello *stdtls.ClientHelloInfo) *slot {
	name := strings.ToLower(hello.ServerName)
	if name == "" {
		return nil
	}
	if sl := pick(s.exact[name], name, hello); sl != nil {
		return sl
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		return pick(s.wildcard[parent], name, hello)
	}
	return nil
}

// pick returns the first ECDSA candidate the client supports, else the first
// candidate it supports, else the first candidate; nil if there are none.
// Candidates excluded from name by a negative filter do not count.
func pick(cands []*slot, name string, hello *stdtls.ClientHelloInfo) *slot {
	if name != "" {
		var kept []*slot
		for _, c := range cands {
			if !c.excluded(name) {
				kept = append(kept, c)
			}
		}
		if len(kept) < len(cands) {
			cands = kept
		}
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0] // nothing to choose: skip the capability checks
	}
	// The name already matched (or we are falling back to the default), and
	// SupportsCertificate would re-check it with Go's rules, which ignore the
	// CN: ask only about versions, signature schemes and cipher suites.
	h := *hello
	h.ServerName = ""
	var supported *slot
	for _, c := range cands {
		if h.SupportsCertificate(c.cert) != nil {
			continue
		}
		if _, ok := c.cert.PrivateKey.(*ecdsa.PrivateKey); ok {
			return c
		}
		if supported == nil {
			supported = c
		}
	}
	if supported != nil {
		return supported
	}
	return cands[0]
}

// Certificates returns the certificates in load order; the first is the
// default. The caller must not modify them.
func (s *Store) Certificates() []*stdtls.Certificate {
	out := make([]*stdtls.Certificate, len(s.certs))
	for i, sl := range s.certs {
		out[i] = sl.cert
	}
	return out
}

// Warnings returns problems that do not prevent serving, such as expired
// certificates, one message per problem, naming the file.
func (s *Store) Warnings() []string {
	return append([]string(nil), s.warnings...)
}

func validityWarning(leaf *x509.Certificate, now time.Time) string {
	switch {
	case now.After(leaf.NotAfter):
		return "expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(leaf.NotBefore):
		return "not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// describe names a certificate for messages.
func describe(leaf *x509.Certificate) string {
	if leaf.Subject.CommonName != "" {
		return "CN=" + leaf.Subject.CommonName
	}
	if len(leaf.DNSNames) > 0 {
		return "DNS:" + leaf.DNSNames[0]
	}
	return "serial " + leaf.SerialNumber.String()
}
