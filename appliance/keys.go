package appliance

import (
	"context"
	"crypto/rand"
	stdtls "crypto/tls"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
	"github.com/sluicelb/sluice/runtimeapi"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// How the master rotates the keys it shares with the workers.
//
// Session tickets: a new encrypting key every 12 hours, the last three kept
// for decryption, so a session resumes for 24 to 36 hours: long enough for
// the next morning's reconnection of an RDP user, short enough that a
// stolen key opens little.
//
// ECH: a new key every day, the previous one kept, so that clients using
// the configuration published the day before (a DNS TTL) still connect.
const (
	ticketRotation = 12 * time.Hour
	ticketKeep     = 3
	echRotation    = 24 * time.Hour
	echKeep        = 2
)

// keyState is the master's shared TLS keys with their ages. It is part of
// the state a binary upgrade hands over, so it is plain data.
type keyState struct {
	Tickets   [][32]byte `json:"tickets"` // newest first
	TicketsAt time.Time  `json:"tickets_at"`
	// ECH are the keys of each public name, newest first.
	ECH   map[string][]stdtls.EncryptedClientHelloKey `json:"ech,omitempty"`
	ECHAt map[string]time.Time                        `json:"ech_at,omitempty"`
	// NextConfigID numbers ECH configurations, so that a client's config
	// id names one key.
	NextConfigID uint8 `json:"next_config_id"`
}

// clone returns a copy that rotate can change without changing k: a
// reload rotates a copy and keeps it only once it succeeded.
func (k keyState) clone() keyState {
	k.ECH = maps.Clone(k.ECH)
	k.ECHAt = maps.Clone(k.ECHAt)
	return k
}

// rotate makes the keys cfg needs that are missing or due at now: ticket
// keys always, ECH keys for each public name the ssl binds use (the keys
// of names no longer used are dropped). It reports whether anything
// changed.
func (k *keyState) rotate(cfg *config.Config, now time.Time) (bool, error) {
	changed := false
	if len(k.Tickets) == 0 || now.Sub(k.TicketsAt) >= ticketRotation {
		var key [32]byte
		if _, err := rand.Read(key[:]); err != nil {
			return false, fmt.Errorf("session ticket key: %w", err)
		}
		k.Tickets = append([][32]byte{key}, k.Tickets...)
		k.Tickets = k.Tickets[:min(len(k.Tickets), ticketKeep)]
		k.TicketsAt = now
		changed = true
	}
	names := echNames(cfg)
	for name := range k.ECH {
		if !slices.Contains(names, name) {
			delete(k.ECH, name)
			delete(k.ECHAt, name)
			changed = true
		}
	}
	for _, name := range names {
		if len(k.ECH[name]) > 0 && now.Sub(k.ECHAt[name]) < echRotation {
			continue
		}
		key, err := tlsctx.NewECHKey(k.NextConfigID, name)
		if err != nil {
			return false, fmt.Errorf("ECH key for %s: %w", name, err)
		}
		k.NextConfigID++
		if k.ECH == nil {
			k.ECH = make(map[string][]stdtls.EncryptedClientHelloKey)
			k.ECHAt = make(map[string]time.Time)
		}
		// Only the newest key is offered to a client whose configuration
		// is stale (retry configs); the older ones still decrypt.
		keys := []stdtls.EncryptedClientHelloKey{key}
		for _, old := range k.ECH[name] {
			old.SendAsRetry = false
			keys = append(keys, old)
		}
		k.ECH[name] = keys[:min(len(keys), echKeep)]
		k.ECHAt[name] = now
		changed = true
	}
	return changed, nil
}

// nextRotation is when rotate next has something to do.
func (k *keyState) nextRotation() time.Time {
	next := k.TicketsAt.Add(ticketRotation)
	for _, at := range k.ECHAt {
		if t := at.Add(echRotation); t.Before(next) {
			next = t
		}
	}
	return next
}

// msg is the keys as the workers get them.
func (k *keyState) msg() control.Keys {
	return control.Keys{Tickets: k.Tickets, ECH: k.ECH}
}

// echNames lists the ECH public names of the ssl binds, in order.
func echNames(cfg *config.Config) []string {
	var names []string
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			if n := b.TLS.ECHPublicName; b.SSL && n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// rotateKeys rotates what is due and sends the new keys to every running
// child. A child that misses them (restarting) gets them with its
// configuration.
func (m *Master) rotateKeys() {
	changed, err := m.keys.rotate(m.cfg, time.Now())
	if err != nil {
		m.log.Error("rotate TLS keys", "err", err)
		return
	}
	if !changed {
		return
	}
	keys := m.keys.msg()
	for num, c := range m.children {
		if c.ctrl == nil || !c.alive() {
			continue
		}
		if err := c.ctrl.Send(control.Msg{Kind: control.KindKeys, Keys: &keys}); err != nil {
			m.log.Warn("send TLS keys", "process", num, "err", err)
		}
	}
	m.log.Info("TLS keys rotated")
}

// tlsMsg is the TLS material a child gets with its configuration.
func (m *Master) tlsMsg() *control.TLS {
	t := *m.tls
	t.Keys = m.keys.msg()
	return &t
}

// ECH lists the Encrypted Client Hello configurations to publish.
func (m *Master) ECH() []runtimeapi.ECHInfo {
	var out []runtimeapi.ECHInfo
	m.call(context.Background(), func() {
		for _, name := range echNames(m.cfg) {
			// Publish the newest key only: clients that fetched the
			// previous one keep working until it is dropped.
			keys := m.keys.ECH[name]
			if len(keys) == 0 {
				continue
			}
			list := tlsctx.ECHConfigList(keys[:1])
			rr := tlsctx.HTTPSRecord(name+".", 300, 0, echALPN(m.cfg, name), list)
			out = append(out, runtimeapi.ECHInfo{PublicName: name, ConfigList: list, HTTPS: rr.String()})
		}
	})
	return out
}

// echALPN is the ALPN of the first bind with that ECH public name, for the
// HTTPS record.
func echALPN(cfg *config.Config, name string) []string {
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			if b.SSL && b.TLS.ECHPublicName == name {
				return b.ALPN
			}
		}
	}
	return nil
}
