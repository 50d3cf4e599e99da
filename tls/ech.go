package tls

import (
	"crypto/ecdh"
	"crypto/rand"
	stdtls "crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/crypto/cryptobyte"
)

// ECH identifiers (RFC 9849, and RFC 9180 for HPKE).
const (
	ECHVersion        = 0xfe0d // ECHConfig version of RFC 9849 (draft-ietf-tls-esni-13 and later)
	HPKEX25519SHA256  = 0x0020 // KEM DHKEM(X25519, HKDF-SHA256)
	HPKEHKDFSHA256    = 0x0001 // KDF HKDF-SHA256
	HPKEAES128GCM     = 0x0001 // AEAD AES-128-GCM
	HPKEChaCha20Poly  = 0x0003 // AEAD ChaCha20Poly1305
	echPublicKeyBytes = 32     // X25519 public key
)

// An ECHCipherSuite is an HPKE KDF and AEAD pair.
type ECHCipherSuite struct {
	KDF, AEAD uint16
}

// An ECHConfig is one ECH configuration, the part of the ECHConfigList
// clients get (from DNS) to encrypt their ClientHello.
type ECHConfig struct {
	Version uint16 // ECHVersion; other versions are listed but not decoded
	// The fields below are only set for ECHVersion.
	ConfigID      uint8
	KEM           uint16
	PublicKey     []byte
	CipherSuites  []ECHCipherSuite
	MaxNameLength uint8
	PublicName    string
	Extensions    []byte // the extensions, encoded, without their length
}

// MarshalECHConfig encodes an ECHConfig of version ECHVersion:
//
//	uint16 version; uint16 length; uint8 config_id; uint16 kem_id;
//	opaque public_key<1..2^16-1>; HpkeSymmetricCipherSuite cipher_suites<4..2^16-4>;
//	uint8 maximum_name_length; opaque public_name<1..255>;
//	Extension extensions<0..2^16-1>
func MarshalECHConfig(c ECHConfig) ([]byte, error) {
	if c.Version != ECHVersion {
		return nil, fmt.Errorf("ECH config version 0x%04x: only 0x%04x is encoded", c.Version, ECHVersion)
	}
	if len(c.PublicKey) == 0 || len(c.CipherSuites) == 0 || len(c.PublicName) == 0 || len(c.PublicName) > 255 {
		return nil, errors.New("ECH config: public key, cipher suites and a public name of 1 to 255 bytes are required")
	}
	var b cryptobyte.Builder
	b.AddUint16(c.Version)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(c.ConfigID)
		b.AddUint16(c.KEM)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.PublicKey) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range c.CipherSuites {
				b.AddUint16(s.KDF)
				b.AddUint16(s.AEAD)
			}
		})
		b.AddUint8(c.MaxNameLength)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.PublicName)) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.Extensions) })
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ECH config: %w", err)
	}
	return out, nil
}

// ParseECHConfigList decodes an ECHConfigList (ECHConfig list<4..2^16-1>
// with its 2-byte length). Configurations of other versions are returned
// with only Version set, as clients skip them.
func ParseECHConfigList(data []byte) ([]ECHConfig, error) {
	s := cryptobyte.String(data)
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) || !s.Empty() {
		return nil, errors.New("ECHConfigList: bad length")
	}
	if len(list) < 4 {
		return nil, errors.New("ECHConfigList: empty")
	}
	var out []ECHConfig
	for !list.Empty() {
		var c ECHConfig
		var body cryptobyte.String
		if !list.ReadUint16(&c.Version) || !list.ReadUint16LengthPrefixed(&body) {
			return nil, fmt.Errorf("ECHConfigList: config %d: truncated", len(out)+1)
		}
		if c.Version == ECHVersion {
			if err := parseECHContents(body, &c); err != nil {
				return nil, fmt.Errorf("ECHConfigList: config %d: %w", len(out)+1, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func parseECHContents(s cryptobyte.String, c *ECHConfig) error {
	var pub, suites, name, exts cryptobyte.String
	if !s.ReadUint8(&c.ConfigID) || !s.ReadUint16(&c.KEM) ||
		!s.ReadUint16LengthPrefixed(&pub) || len(pub) == 0 ||
		!s.ReadUint16LengthPrefixed(&suites) || len(suites) < 4 || len(suites)%4 != 0 ||
		!s.ReadUint8(&c.MaxNameLength) ||
		!s.ReadUint8LengthPrefixed(&name) || len(name) == 0 ||
		!s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return errors.New("malformed")
	}
	c.PublicKey = append([]byte{}, pub...)
	for !suites.Empty() {
		var cs ECHCipherSuite
		suites.ReadUint16(&cs.KDF)
		suites.ReadUint16(&cs.AEAD)
		c.CipherSuites = append(c.CipherSuites, cs)
	}
	c.PublicName = string(name)
	c.Extensions = append([]byte{}, exts...)
	return nil
}

// NewECHKey makes an ECH key: an X25519 key pair, with a configuration
// offering HKDF-SHA256 with AES-128-GCM or ChaCha20Poly1305, the given
// config ID (which lets the server find the key without trial decryption)
// and the public name clients put in the outer ClientHello (a name the
// server has a certificate for, used when ECH is rejected). The key is
// offered as a retry configuration.
func NewECHKey(configID uint8, publicName string) (stdtls.EncryptedClientHelloKey, error) {
	return newECHKey(rand.Reader, configID, publicName)
}

func newECHKey(random io.Reader, configID uint8, publicName string) (stdtls.EncryptedClientHelloKey, error) {
	if err := checkPublicName(publicName); err != nil {
		return stdtls.EncryptedClientHelloKey{}, err
	}
	priv, err := ecdh.X25519().GenerateKey(random)
	if err != nil {
		return stdtls.EncryptedClientHelloKey{}, fmt.Errorf("make an ECH key: %w", err)
	}
	cfg, err := MarshalECHConfig(ECHConfig{
		Version:   ECHVersion,
		ConfigID:  configID,
		KEM:       HPKEX25519SHA256,
		PublicKey: priv.PublicKey().Bytes(),
		CipherSuites: []ECHCipherSuite{
			{HPKEHKDFSHA256, HPKEAES128GCM},
			{HPKEHKDFSHA256, HPKEChaCha20Poly},
		},
		PublicName: publicName,
	})
	if err != nil {
		return stdtls.EncryptedClientHelloKey{}, err
	}
	return stdtls.EncryptedClientHelloKey{Config: cfg, PrivateKey: priv.Bytes(), SendAsRetry: true}, nil
}

// checkPublicName checks an ECH public name is a DNS host name (letters,
// digits and hyphens, dot-separated labels of 1 to 63 bytes), and not an
// IPv4 address, as RFC 9849 requires and clients check.
func checkPublicName(name string) error {
	bad := func(why string) error { return fmt.Errorf("ECH public name %q: %s", name, why) }
	if name == "" || len(name) > 253 {
		return bad("must be a host name of 1 to 253 bytes")
	}
	if net.ParseIP(name) != nil {
		return bad("an address cannot be a public name")
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return bad("labels are 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen")
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("character %q is not allowed in a host name", c))
			}
		}
	}
	return nil
}

// ECHConfigList returns the ECHConfigList of keys, to publish.
func ECHConfigList(keys []stdtls.EncryptedClientHelloKey) []byte {
	n := 0
	for _, k := range keys {
		n += len(k.Config)
	}
	out := make([]byte, 2, 2+n)
	out[0], out[1] = byte(n>>8), byte(n)
	for _, k := range keys {
		out = append(out, k.Config...)
	}
	return out
}

// ECHBase64 is an ECHConfigList in base64, the form of the "ech" parameter
// in DNS zone files and of most tools (curl --ech ecl:...).
func ECHBase64(list []byte) string {
	return base64.StdEncoding.EncodeToString(list)
}

// HTTPSRecord returns the DNS HTTPS record (RFC 9460) announcing the
// service at owner with the ECH configurations: priority 1 (service mode),
// target "." (the owner itself), the ALPN protocols when given, the port
// when not 0 or 443, and "ech".
func HTTPSRecord(owner string, ttl uint32, port uint16, alpn []string, echList []byte) *dns.HTTPS {
	rr := &dns.HTTPS{SVCB: dns.SVCB{
		Hdr:      dns.RR_Header{Name: dns.Fqdn(owner), Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: ttl},
		Priority: 1,
		Target:   ".",
	}}
	// Keys in increasing order, as RFC 9460 requires: alpn (1), port (3), ech (5).
	if len(alpn) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBAlpn{Alpn: append([]string(nil), alpn...)})
	}
	if port != 0 && port != 443 {
		rr.Value = append(rr.Value, &dns.SVCBPort{Port: port})
	}
	rr.Value = append(rr.Value, &dns.SVCBECHConfig{ECH: append([]byte(nil), echList...)})
	return rr
}
