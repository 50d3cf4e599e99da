package control

import (
	stdtls "crypto/tls"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/runtimeapi"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// Kind says what a message is about.
type Kind string

const (
	// KindConfig (master to child): the configuration to run, with the
	// listening sockets of the binds this process accepts on.
	KindConfig Kind = "config"
	// KindPeer (master to child): another process died or is ready again.
	KindPeer Kind = "peer"
	// KindStop (master to child): stop accepting, finish established
	// connections, then exit.
	KindStop Kind = "stop"
	// KindReady (child to master): the configuration is running.
	KindReady Kind = "ready"
	// KindStatsRequest (master to child): report counters and state; the
	// answer is a KindStats message with the same ID.
	KindStatsRequest Kind = "stats-request"
	// KindStats (child to master): the answer to a KindStatsRequest.
	KindStats Kind = "stats"
	// KindKeys (master to child): the shared TLS keys were rotated.
	KindKeys Kind = "keys"
	// KindChange (master to child): apply an operational change (runtime
	// API, health checks) to the running configuration.
	KindChange Kind = "change"
)

// Msg is every message of the channel; Kind says which fields are set.
type Msg struct {
	Kind Kind `json:"kind"`

	// KindConfig.
	Process   int            `json:"process,omitempty"`
	Config    *config.Config `json:"config,omitempty"`
	Listeners []Listener     `json:"listeners,omitempty"`
	// TLS is what the ssl binds and servers need from files, and the
	// shared keys, read and made by the master: children never read the
	// file system for their configuration.
	TLS *TLS `json:"tls,omitempty"`
	// MaxConn is the effective per-process maxconn: global maxconn, or
	// what the descriptor limit allows.
	MaxConn int `json:"maxconn,omitempty"`

	// KindKeys.
	Keys *Keys `json:"keys,omitempty"`

	// KindPeer.
	Peer  int  `json:"peer,omitempty"`
	Alive bool `json:"alive,omitempty"`

	// KindReady and errors.
	Error string `json:"error,omitempty"`

	// KindStatsRequest and KindStats.
	ID       uint64               `json:"id,omitempty"`
	Snapshot *runtimeapi.Snapshot `json:"snapshot,omitempty"`

	// KindChange, and with KindConfig the changes in force, applied in
	// order after the configuration: they survive child restarts this way.
	Changes []runtimeapi.Change `json:"changes,omitempty"`
}

// TLS is the material of the ssl binds and servers.
type TLS struct {
	// Certs are the certificates of each crt and crt-list path of the
	// configuration (one entry per certificate: a directory or a crt-list
	// holds several).
	Certs map[string][]tlsctx.CertEntry `json:"certs,omitempty"`
	// Files are the contents of the ca-file and crl-file files, and of
	// the client certificates of ssl servers, by path.
	Files map[string][]byte `json:"files,omitempty"`
	// TicketFiles are the keys of each tls-ticket-keys file, the
	// encrypting one first.
	TicketFiles map[string][][32]byte `json:"ticket_files,omitempty"`
	Keys        Keys                  `json:"keys"`
}

// Keys are the TLS keys the master makes and rotates, the same for every
// worker: so a client resumes its session, or has its hello decrypted,
// whichever worker the dispatcher picks.
type Keys struct {
	// Tickets are the session ticket keys of binds without a
	// tls-ticket-keys file, the encrypting one first.
	Tickets [][32]byte `json:"tickets,omitempty"`
	// ECH are the Encrypted Client Hello keys by public name, newest
	// first.
	ECH map[string][]stdtls.EncryptedClientHelloKey `json:"ech,omitempty"`
}

// Listener names the socket of one bind (addr.Addr.Key) and where its
// descriptor is: an inherited descriptor number, or when Attached, an index
// into the descriptors that came with the message.
type Listener struct {
	Key      string `json:"key"`
	FD       int    `json:"fd"`
	Attached bool   `json:"attached,omitempty"`
}

// Decode parses a received message body.
func Decode(m Message) (Msg, error) {
	var msg Msg
	if err := json.Unmarshal(m.Body, &msg); err != nil {
		return msg, fmt.Errorf("decode control message: %w", err)
	}
	return msg, nil
}

// Entries returns the certificates of an ssl bind, in the order of its crt
// then crt-list options: the first is the default.
func (t *TLS) Entries(b *config.Bind) []tlsctx.CertEntry {
	var out []tlsctx.CertEntry
	for _, p := range append(append([]string(nil), b.Crt...), b.TLS.CrtList...) {
		out = append(out, t.Certs[p]...)
	}
	return out
}

// BindOptions returns the TLS settings of an ssl bind, with the contents
// of its ca-file and crl-file.
func (t *TLS) BindOptions(b *config.Bind) tlsctx.BindOptions {
	o := b.TLS.SSLOptions
	return tlsctx.BindOptions{
		MinVersion:   o.MinVer,
		MaxVersion:   o.MaxVer,
		Ciphers:      o.Ciphers,
		Ciphersuites: o.Ciphersuites,
		Curves:       o.Curves,
		ALPN:         b.ALPN,
		Verify:       o.Verify,
		CA:           t.Files[o.CAFile],
		CRL:          t.Files[o.CRLFile],
		CAFile:       o.CAFile,
		CRLFile:      o.CRLFile,
		StrictSNI:    b.TLS.StrictSNI,
		NoTLSTickets: b.TLS.NoTLSTickets,
	}
}

// ServerOptions returns the TLS settings of an ssl server, with the
// contents of its files. A fixed "sni str(NAME)" is part of them; the
// per-connection forms (ssl_fc_sni, req.hdr(host)) are set by the caller.
func (t *TLS) ServerOptions(s *config.Server) tlsctx.ServerSSLOptions {
	o := s.TLS.SSLOptions
	sni := ""
	if name, ok := strings.CutPrefix(s.TLS.SNI, "str("); ok {
		sni = strings.TrimSuffix(name, ")")
	}
	return tlsctx.ServerSSLOptions{
		Verify:       o.Verify,
		CA:           t.Files[o.CAFile],
		CRL:          t.Files[o.CRLFile],
		CAFile:       o.CAFile,
		CRLFile:      o.CRLFile,
		SNI:          sni,
		ALPN:         s.TLS.ALPN,
		MinVersion:   o.MinVer,
		MaxVersion:   o.MaxVer,
		Ciphers:      o.Ciphers,
		Ciphersuites: o.Ciphersuites,
		Cert:         t.Files[s.TLS.Crt],
		CertFile:     s.TLS.Crt,
	}
}
