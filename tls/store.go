// Package tls builds the TLS contexts of Sluice's binds: it loads
// certificates the way HAProxy's "crt" bind option does, selects one per
// handshake by SNI and key type, and makes the crypto/tls server
// configuration.
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
	certs    []*stdtls.Certificate            // in load order; certs[0] is the default
	exact    map[string][]*stdtls.Certificate // lower-case name -> candidates in load order
	wildcard map[string][]*stdtls.Certificate // "example.com" for "*.example.com"
	defaults []*stdtls.Certificate            // certs[0] and its siblings for the same name
	warnings []string
}

// NewStore makes a Store from certificates already in memory (for example
// from SelfSigned). The first one is the default. Each must carry a private
// key; Leaf is parsed when it is nil.
func NewStore(certs ...stdtls.Certificate) (*Store, error) {
	labels := make([]string, len(certs))
	for i := range certs {
		labels[i] = fmt.Sprintf("certificate %d", i+1)
	}
	return build(certs, labels)
}

// build makes a Store; labels name the certificates in messages.
func build(certs []stdtls.Certificate, labels []string) (*Store, error) {
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	s := &Store{
		exact:    make(map[string][]*stdtls.Certificate),
		wildcard: make(map[string][]*stdtls.Certificate),
	}
	now := time.Now()
	for i := range certs {
		c := certs[i] // copy: the Store owns its certificates
		if err := prepare(&c); err != nil {
			return nil, fmt.Errorf("%s: %w", labels[i], err)
		}
		if w := validityWarning(c.Leaf, now); w != "" {
			s.warnings = append(s.warnings, fmt.Sprintf("%s (%s): %s", labels[i], describe(c.Leaf), w))
		}
		s.add(&c)
	}
	s.defaults = s.siblings(s.certs[0])
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

func (s *Store) add(c *stdtls.Certificate) {
	s.certs = append(s.certs, c)
	for _, name := range names(c.Leaf) {
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			s.wildcard[rest] = append(s.wildcard[rest], c)
		} else if !strings.Contains(name, "*") {
			s.exact[name] = append(s.exact[name], c)
		}
		// Other wildcard forms ("w*.example.com") are not matched, as in HAProxy.
	}
}

// siblings returns c followed by the other certificates for c's first name,
// so that the default certificate has its ECDSA/RSA alternative too.
func (s *Store) siblings(c *stdtls.Certificate) []*stdtls.Certificate {
	out := []*stdtls.Certificate{c}
	ns := names(c.Leaf)
	if len(ns) == 0 {
		return out
	}
	var cands []*stdtls.Certificate
	if rest, ok := strings.CutPrefix(ns[0], "*."); ok {
		cands = s.wildcard[rest]
	} else {
		cands = s.exact[ns[0]]
	}
	for _, o := range cands {
		if o != c {
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
	if name := strings.ToLower(hello.ServerName); name != "" {
		if c := pick(s.exact[name], hello); c != nil {
			return c, nil
		}
		if _, parent, ok := strings.Cut(name, "."); ok {
			if c := pick(s.wildcard[parent], hello); c != nil {
				return c, nil
			}
		}
	}
	return pick(s.defaults, hello), nil
}

// pick returns the first ECDSA candidate the client supports, else the first
// candidate it supports, else the first candidate; nil if there are none.
func pick(cands []*stdtls.Certificate, hello *stdtls.ClientHelloInfo) *stdtls.Certificate {
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
	var supported *stdtls.Certificate
	for _, c := range cands {
		if h.SupportsCertificate(c) != nil {
			continue
		}
		if _, ok := c.PrivateKey.(*ecdsa.PrivateKey); ok {
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
	return append([]*stdtls.Certificate(nil), s.certs...)
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
