package tls

import (
	stdtls "crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// A CertEntry is one certificate of a bind as the master sends it to the
// workers: everything read from files, so that workers never touch the
// file system.
type CertEntry struct {
	Path string `json:"path"` // the file it came from, for messages
	PEM  []byte `json:"pem"`  // chain (leaf first) and private key
	OCSP []byte `json:"ocsp,omitempty"`
	// SNI are the crt-list filters: names, "*.parent" wildcards, "!name"
	// negative filters, "!*" to not index the certificate's own names.
	// Empty: the certificate's own names (CN and DNS SANs).
	SNI []string `json:"sni,omitempty"`
	// Options are the crt-list line's settings, over the bind's (see
	// BindOptions.Merge); nil for none.
	Options *BindOptions `json:"options,omitempty"`
}

// SharedKeys hold the session ticket keys and the ECH keys of the binds of
// a process. The master generates them and sends the same bytes to every
// worker, so that a client resumes on any worker and its encrypted hello is
// understood by all. They can be replaced at any time, handshakes running:
// every Config built by NewServer with these SharedKeys reads them at each
// handshake. Make them with NewSharedKeys.
type SharedKeys struct {
	tickets atomic.Pointer[ticketKeys]
	ech     atomic.Pointer[[]stdtls.EncryptedClientHelloKey]
}

// ticketKeys are session ticket keys, and a Config used only for them
// (EncryptTicket and DecryptTicket): it keeps crypto/tls's ticket format,
// and its automatic per-process keys when keys is empty.
type ticketKeys struct {
	keys [][32]byte
	cfg  *stdtls.Config
}

// NewSharedKeys returns keys with random per-process ticket keys and no ECH
// key, until SetTickets and SetECH are called.
func NewSharedKeys() *SharedKeys {
	k := &SharedKeys{}
	k.SetTickets(nil)
	k.SetECH(nil)
	return k
}

// SetTickets sets the session ticket keys: the first encrypts new tickets,
// all decrypt. No keys means random per-process keys, rotated by crypto/tls.
// Setting the keys in force again changes nothing (the random keys in
// particular are kept).
func (k *SharedKeys) SetTickets(keys [][32]byte) {
	if cur := k.tickets.Load(); cur != nil && slices.Equal(cur.keys, keys) {
		return
	}
	t := &ticketKeys{keys: slices.Clone(keys), cfg: &stdtls.Config{}}
	if len(keys) > 0 {
		t.cfg.SetSessionTicketKeys(keys)
	}
	k.tickets.Store(t)
}

// SetECH sets the ECH keys the server accepts; those with SendAsRetry are
// offered to clients that used an unknown configuration.
func (k *SharedKeys) SetECH(keys []stdtls.EncryptedClientHelloKey) {
	keys = append([]stdtls.EncryptedClientHelloKey{}, keys...) // never nil: crypto/tls wants a non-nil slice
	k.ech.Store(&keys)
}

// ECH returns the current ECH keys. The caller must not modify them.
func (k *SharedKeys) ECH() []stdtls.EncryptedClientHelloKey {
	return *k.ech.Load()
}

func (k *SharedKeys) wrap(cs stdtls.ConnectionState, ss *stdtls.SessionState) ([]byte, error) {
	return k.tickets.Load().cfg.EncryptTicket(cs, ss)
}

func (k *SharedKeys) unwrap(identity []byte, cs stdtls.ConnectionState) (*stdtls.SessionState, error) {
	return k.tickets.Load().cfg.DecryptTicket(identity, cs)
}

func (k *SharedKeys) getECH(*stdtls.ClientHelloInfo) ([]stdtls.EncryptedClientHelloKey, error) {
	return k.ECH(), nil
}

// NewServer returns the crypto/tls configuration of a bind.
//
// The certificate is chosen per handshake as HAProxy does: a certificate
// whose names (or crt-list filters) contain the client's SNI, then one with
// a matching wildcard, negative filters excluding, then the default, which
// is the first entry (with StrictSNI, none: the handshake fails); among
// candidates for the same name, ECDSA for clients that support it, else
// RSA (see Store). The chosen entry's settings apply to the handshake: its
// crt-list options over opts. OCSP responses are stapled.
//
// Key exchanges and cipher suites are crypto/tls's defaults unless the
// options say otherwise: in Go 1.26, X25519MLKEM768 (hybrid post-quantum)
// first, and no RSA key exchange or 3DES. Leaving them unset keeps the
// GODEBUG switches working and picks up Go's future improvements.
//
// With keys, session tickets and ECH use the shared keys (and follow their
// updates); with nil keys, tickets use per-process random keys and ECH is
// off.
func NewServer(entries []CertEntry, opts BindOptions, keys *SharedKeys) (*stdtls.Config, error) {
	bind, err := opts.settings()
	if err != nil {
		return nil, err
	}
	base := &stdtls.Config{}
	if keys != nil {
		base.WrapSession = keys.wrap
		base.UnwrapSession = keys.unwrap
		base.GetEncryptedClientHelloKeys = keys.getECH
	}
	items := make([]storeItem, 0, len(entries))
	for i, e := range entries {
		label := e.Path
		if label == "" {
			label = fmt.Sprintf("certificate %d", i+1)
		}
		c, err := stdtls.X509KeyPair(e.PEM, e.PEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", label, err)
		}
		c.OCSPStaple = e.OCSP
		s := bind
		if e.Options != nil {
			merged := e.Options.Merge(opts)
			if s, err = merged.settings(); err != nil {
				return nil, fmt.Errorf("certificate %s: %w", label, err)
			}
		}
		cfg := base.Clone()
		s.apply(cfg)
		cfg.Certificates = []stdtls.Certificate{c}
		it := storeItem{cert: c, label: "certificate " + label, cfg: cfg}
		for _, f := range e.SNI {
			if n, ok := strings.CutPrefix(f, "!"); ok {
				it.neg = append(it.neg, n)
			} else {
				it.names = append(it.names, f)
			}
		}
		items = append(items, it)
	}
	store, err := build(items)
	if err != nil {
		return nil, err
	}
	cfg := base.Clone()
	bind.apply(cfg)
	cfg.GetConfigForClient = func(hello *stdtls.ClientHelloInfo) (*stdtls.Config, error) {
		if opts.StrictSNI {
			if sl := store.match(hello); sl != nil {
				return sl.cfg, nil
			}
			return nil, fmt.Errorf("strict-sni: no certificate for server name %q", hello.ServerName)
		}
		return store.lookup(hello).cfg, nil
	}
	// The per-entry Configs have their certificate; this one's GetCertificate
	// is never called, but keeps the Config valid on its own.
	cfg.GetCertificate = store.GetCertificate
	return cfg, nil
}

// apply sets the settings on a Config.
func (s *settings) apply(cfg *stdtls.Config) {
	cfg.MinVersion = s.min
	cfg.MaxVersion = s.max
	cfg.CipherSuites = s.ciphers
	cfg.CurvePreferences = s.curves
	cfg.NextProtos = s.alpn
	cfg.ClientAuth = s.clientAuth
	cfg.ClientCAs = s.cas
	cfg.SessionTicketsDisabled = s.noTickets
	if len(s.crls) > 0 {
		cfg.VerifyConnection = checkCRLs(s.crls, time.Now)
	}
}
