package worker

import (
	stdtls "crypto/tls"
	"fmt"
	"sync"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// serverTLS builds the TLS configuration of an ssl bind from what the
// master sent: the certificates in the order of the bind's crt and
// crt-list options (the first is the default), the bind's settings, and
// the process's shared keys.
func serverTLS(b *config.Bind, t *control.TLS, keys *keyring) (*stdtls.Config, error) {
	shared := keys.shared(b.TLS.TicketKeys, b.TLS.ECHPublicName)
	return tlsctx.NewServer(t.Entries(b), t.BindOptions(b), shared)
}

// A keyring holds the shared TLS keys of a process's ssl binds: one
// tlsctx.SharedKeys per ticket source (the master's rotated keys, or a
// tls-ticket-keys file) and ECH public name. It outlives generations, so
// that a rotation reaches every bind, including those of a generation
// still draining.
type keyring struct {
	mu          sync.Mutex
	keys        control.Keys
	ticketFiles map[string][][32]byte
	byUse       map[keyUse]*tlsctx.SharedKeys
}

type keyUse struct {
	ticketFile string // "" for the master's keys
	echName    string // "" for none
}

func newKeyring() *keyring {
	return &keyring{byUse: make(map[keyUse]*tlsctx.SharedKeys)}
}

// shared returns the SharedKeys of a use, made on first use.
func (r *keyring) shared(ticketFile, echName string) *tlsctx.SharedKeys {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := keyUse{ticketFile, echName}
	k, ok := r.byUse[u]
	if !ok {
		k = tlsctx.NewSharedKeys()
		r.byUse[u] = k
		r.fill(u, k)
	}
	return k
}

// update takes the keys and ticket files of a configuration message.
func (r *keyring) update(t *control.TLS) {
	if t == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ticketFiles = t.TicketFiles
	r.keys = t.Keys
	r.refill()
}

// rotate takes the master's new keys.
func (r *keyring) rotate(keys control.Keys) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = keys
	r.refill()
}

// refill sets every SharedKeys from the current keys, under r.mu.
func (r *keyring) refill() {
	for u, k := range r.byUse {
		r.fill(u, k)
	}
}

// fill sets k from the current keys, under r.mu.
func (r *keyring) fill(u keyUse, k *tlsctx.SharedKeys) {
	if u.ticketFile != "" {
		if fk, ok := r.ticketFiles[u.ticketFile]; ok {
			k.SetTickets(fk)
		}
	} else {
		k.SetTickets(r.keys.Tickets)
	}
	if u.echName != "" {
		k.SetECH(r.keys.ECH[u.echName])
	}
}

// setServerTLS gives each ssl server of a backend its TLS client
// configuration.
func setServerTLS(be *backend.Backend, t *control.TLS) error {
	for _, s := range be.Servers() {
		sc := s.Config()
		if !sc.SSL {
			continue
		}
		if t == nil {
			return fmt.Errorf("%s:%d: server '%s': no TLS material from the master", sc.Pos.File, sc.Pos.Line, sc.Name)
		}
		c, err := tlsctx.NewClient(t.ServerOptions(sc))
		if err != nil {
			return fmt.Errorf("%s:%d: server '%s': %w", sc.Pos.File, sc.Pos.Line, sc.Name, err)
		}
		s.SetTLS(c)
	}
	return nil
}
