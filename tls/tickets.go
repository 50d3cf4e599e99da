package tls

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
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
