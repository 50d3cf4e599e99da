package control

import (
	"encoding/json"
	"fmt"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/runtimeapi"
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
	// Certs maps a crt path of the configuration to the PEM bundles it
	// holds (one for a file, one per file for a directory), read by the
	// master: children never read the file system for their configuration.
	Certs map[string][]string `json:"certs,omitempty"`
	// TicketKeys are the TLS session ticket keys every worker shares, so
	// that a client resumes whichever worker the dispatcher picks; the
	// first one encrypts.
	TicketKeys [][32]byte `json:"ticket_keys,omitempty"`
	// MaxConn is the effective per-process maxconn: global maxconn, or
	// what the descriptor limit allows.
	MaxConn int `json:"maxconn,omitempty"`

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
