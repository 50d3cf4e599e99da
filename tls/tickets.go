package tls

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"
)

// ticketKeysKept is how many ticket keys decrypt, as HAProxy's default
// TLS_TICKETS_NO.
const ticketKeysKept = 3

// ParseTicketKeys reads a tls-ticket-keys file, HAProxy's format: one
// base64 key per line, each of 48 bytes (AES-128 keys) or 80 bytes
// (AES-256 keys), all of the same size, at least 3. As in HAProxy, the
// last 3 keys decrypt and the penultimate one encrypts, so that appending
// a key and reloading rotates them, the appended key being known to every
// process before it encrypts anything.
//
// crypto/tls has its own ticket format with 32-byte keys, so each key is
// derived from a line's bytes with SHA-256: tickets from HAProxy do not
// resume with Sluice, but every Sluice process reading the same file
// derives the same keys. The result is in crypto/tls's order, the
// encrypting key first: penultimate, last, antepenultimate. Empty lines
// are skipped; name names the file in errors, which say file:line.
func ParseTicketKeys(name string, data []byte) ([][32]byte, error) {
	var raw [][]byte
	size := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: invalid base64 key: %w", name, i+1, err)
		}
		if len(key) != 48 && len(key) != 80 {
			return nil, fmt.Errorf("%s:%d: key of %d bytes, expected 48 (AES-128) or 80 (AES-256)", name, i+1, len(key))
		}
		if size == 0 {
			size = len(key)
		} else if len(key) != size {
			return nil, fmt.Errorf("%s:%d: key of %d bytes after keys of %d: sizes cannot be mixed", name, i+1, len(key), size)
		}
		raw = append(raw, key)
	}
	if len(raw) < ticketKeysKept {
		return nil, fmt.Errorf("%s: %d keys, at least %d are needed (the last %d are used, the penultimate one encrypts)", name, len(raw), ticketKeysKept, ticketKeysKept)
	}
	n := len(raw)
	order := [][]byte{raw[n-2], raw[n-1], raw[n-3]}
	keys := make([][32]byte, len(order))
	for i, k := range order {
		keys[i] = deriveTicketKey(k)
	}
	return keys, nil
}

func deriveTicketKey(line []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("sluice tls-ticket-keys\x00"))
	h.Write(line)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// A TicketRotator makes the session ticket keys the master shares with the
// workers when no tls-ticket-keys file is given: a fresh random key every
// interval, which encrypts, and the 2 before it, which still decrypt (3
// keys, as HAProxy keeps). A session thus resumes for 2 to 3 intervals.
// It is not safe for concurrent use; the master calls it from one place.
type TicketRotator struct {
	interval time.Duration
	rand     io.Reader
	keys     [][32]byte // newest first
	next     time.Time  // when the next key is due
}

// NewTicketRotator returns a rotator making a key every interval, from
// random (crypto/rand when nil).
func NewTicketRotator(interval time.Duration, random io.Reader) *TicketRotator {
	if random == nil {
		random = rand.Reader
	}
	return &TicketRotator{interval: interval, rand: random}
}

// Keys returns the keys at now, newest (encrypting) first, after making a
// new key when one is due; changed says whether they differ from the last
// call's, to push them to the workers. After a long pause (a suspended
// machine), one key is made, not one per missed interval.
func (r *TicketRotator) Keys(now time.Time) (keys [][32]byte, changed bool, err error) {
	if r.keys != nil && now.Before(r.next) {
		return append([][32]byte(nil), r.keys...), false, nil
	}
	var k [32]byte
	if _, err := io.ReadFull(r.rand, k[:]); err != nil {
		return nil, false, fmt.Errorf("make a session ticket key: %w", err)
	}
	r.keys = append([][32]byte{k}, r.keys...)
	if len(r.keys) > ticketKeysKept {
		r.keys = r.keys[:ticketKeysKept]
	}
	r.next = now.Add(r.interval)
	return append([][32]byte(nil), r.keys...), true, nil
}

// Next returns when the next key is due, for the master's timer.
func (r *TicketRotator) Next() time.Time { return r.next }
