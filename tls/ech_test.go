package tls

import (
	"bytes"
	stdtls "crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestMarshalECHConfigLayout(t *testing.T) {
	pub := bytes.Repeat([]byte{0xab}, 32)
	got, err := MarshalECHConfig(ECHConfig{
		Version:       ECHVersion,
		ConfigID:      0x42,
		KEM:           HPKEX25519SHA256,
		PublicKey:     pub,
		CipherSuites:  []ECHCipherSuite{{HPKEHKDFSHA256, HPKEAES128GCM}, {HPKEHKDFSHA256, HPKEChaCha20Poly}},
		MaxNameLength: 0,
		PublicName:    "ech.example",
	})
	if err != nil {
		t.Fatal(err)
	}
	// RFC 9849 section 4, field by field.
	want := "fe0d" + // version
		"004c" + // length of the contents: 1+2+2+32+2+8+1+1+11+2 = 62... computed below
		"42" + // config_id
		"0020" + // kem_id DHKEM(X25519, HKDF-SHA256)
		"0020" + strings.Repeat("ab", 32) + // public_key<1..2^16-1>
		"0008" + "0001" + "0001" + "0001" + "0003" + // cipher_suites: HKDF-SHA256 with AES-128-GCM, ChaCha20Poly1305
		"00" + // maximum_name_length
		"0b" + hex.EncodeToString([]byte("ech.example")) + // public_name<1..255>
		"0000" // extensions<0..2^16-1>
	contents := 1 + 2 + 2 + 32 + 2 + 8 + 1 + 1 + 11 + 2
	want = strings.Replace(want, "004c", hex.EncodeToString([]byte{0, byte(contents)}), 1)
	if hex.EncodeToString(got) != want {
		t.Errorf("got  %x\nwant %s", got, want)
	}
	list := ECHConfigList([]stdtls.EncryptedClientHelloKey{{Config: got}, {Config: got}})
	if !bytes.Equal(list[:2], []byte{0, byte(2 * len(got))}) || !bytes.Equal(list[2:2+len(got)], got) {
		t.Errorf("list %x", list)
	}
	parsed, err := ParseECHConfigList(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != 2 || parsed[0].PublicName != "ech.example" || parsed[0].ConfigID != 0x42 || !bytes.Equal(parsed[0].PublicKey, pub) ||
		!reflect.DeepEqual(parsed[0].CipherSuites, []ECHCipherSuite{{1, 1}, {1, 3}}) {
		t.Errorf("parsed %+v", parsed)
	}
}

func TestParseECHConfigListErrors(t *testing.T) {
	good, _ := NewECHKey(1, "public.test")
	list := ECHConfigList([]stdtls.EncryptedClientHelloKey{good})
	unknown := []byte{0, 8, 0xfe, 0x0c, 0, 4, 1, 2, 3, 4} // another version: skipped
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
		n       int
	}{
		{"good", list, false, 1},
		{"unknown version kept undecoded", unknown, false, 1},
		{"empty", nil, true, 0},
		{"empty list", []byte{0, 0}, true, 0},
		{"truncated", list[:len(list)-1], true, 0},
		{"trailing", append(append([]byte{}, list...), 0), true, 0},
		{"bad inner length", append([]byte{0, byte(len(list) - 2)}, append([]byte{0xfe, 0x0d, 0, 1}, list[6:]...)...), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseECHConfigList(tt.in)
			if (err != nil) != tt.wantErr || len(got) != tt.n {
				t.Errorf("got %d configs, error %v", len(got), err)
			}
		})
	}
}

func FuzzECHConfigList(f *testing.F) {
	k, _ := NewECHKey(7, "public.test")
	f.Add(ECHConfigList([]stdtls.EncryptedClientHelloKey{k, k}))
	f.Add([]byte{0, 8, 0xfe, 0x0c, 0, 4, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		configs, err := ParseECHConfigList(data)
		if err != nil {
			return
		}
		// What parses re-encodes to the same bytes.
		var keys []stdtls.EncryptedClientHelloKey
		for _, c := range configs {
			if c.Version != ECHVersion {
				return
			}
			b, err := MarshalECHConfig(c)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", c, err)
			}
			keys = append(keys, stdtls.EncryptedClientHelloKey{Config: b})
		}
		if got := ECHConfigList(keys); !bytes.Equal(got, data) {
			t.Fatalf("round trip: %x, want %x", got, data)
		}
	})
}

// recorder is a net.Conn that keeps what is written through it.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// echHandshake connects with cli through a recorder and returns the
// server's and client's states and the client's bytes.
func echHandshake(t *testing.T, srv, cli *stdtls.Config) (stdtls.ConnectionState, stdtls.ConnectionState, []byte, error) {
	t.Helper()
	a, b := net.Pipe()
	rec := &recorder{Conn: a}
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	srvDone := make(chan error, 1)
	var srvState stdtls.ConnectionState
	go func() {
		defer b.Close()
		s := stdtls.Server(b, srv)
		err := s.Handshake()
		srvState = s.ConnectionState()
		srvDone <- err
	}()
	c := stdtls.Client(rec, cli)
	err := c.Handshake()
	// net.Pipe is unbuffered: close the client so that a server still
	// writing session tickets returns.
	c.Close()
	err = errors.Join(err, <-srvDone)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return srvState, c.ConnectionState(), rec.out.Bytes(), err
}

func TestECHHandshake(t *testing.T) {
	public := newCert(t, certSpec{cn: "public.test", dns: []string{"public.test"}})
	secret := newCert(t, certSpec{cn: "secret.test", dns: []string{"secret.test"}})
	// How the master rotates the keys (appliance/keys.go, whose test
	// handshakes with them) is not this package's: here, a current key
	// offered as the retry configuration, then a previous one that still
	// decrypts.
	newKey := func(id uint8) stdtls.EncryptedClientHelloKey {
		k, err := NewECHKey(id, "public.test")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	oldKey, curKey := newKey(1), newKey(2)
	shared := NewSharedKeys()
	shared.SetECH([]stdtls.EncryptedClientHelloKey{oldKey})
	srv := newServer(t, []CertEntry{entry(t, public), entry(t, secret)}, BindOptions{}, shared)
	oldList := ECHConfigList([]stdtls.EncryptedClientHelloKey{oldKey})

	connect := func(list []byte) (stdtls.ConnectionState, stdtls.ConnectionState, []byte, error) {
		cli := &stdtls.Config{ServerName: "secret.test", RootCAs: pool(public, secret), EncryptedClientHelloConfigList: list, MinVersion: stdtls.VersionTLS13}
		return echHandshake(t, srv, cli)
	}
	srvState, cliState, wire, err := connect(oldList)
	if err != nil {
		t.Fatal(err)
	}
	if !cliState.ECHAccepted || !srvState.ECHAccepted {
		t.Errorf("ECH not accepted: client %v server %v", cliState.ECHAccepted, srvState.ECHAccepted)
	}
	if srvState.ServerName != "secret.test" || !cliState.PeerCertificates[0].Equal(secret.x509) {
		t.Errorf("server name %q, certificate %s", srvState.ServerName, describe(cliState.PeerCertificates[0]))
	}
	if !bytes.Contains(wire, []byte("public.test")) || bytes.Contains(wire, []byte("secret.test")) {
		t.Error("the outer hello does not carry the public name only")
	}
	if f := SampleFetches(srvState); !f.ECH || f.SNI != "secret.test" {
		t.Errorf("fetches %+v", f)
	}

	// With a newer key in front, a client with the old configuration
	// still gets through, and the new list works too.
	oldKey.SendAsRetry = false
	shared.SetECH([]stdtls.EncryptedClientHelloKey{curKey, oldKey})
	curList := ECHConfigList([]stdtls.EncryptedClientHelloKey{curKey})
	for _, list := range [][]byte{oldList, curList} {
		if _, cs, _, err := connect(list); err != nil || !cs.ECHAccepted {
			t.Fatalf("two keys: accepted %v, %v", cs.ECHAccepted, err)
		}
	}

	// Once the old key is gone, its client is told the configurations
	// to retry with: those of keys with SendAsRetry.
	shared.SetECH([]stdtls.EncryptedClientHelloKey{curKey})
	_, _, _, err = connect(oldList)
	var rej *stdtls.ECHRejectionError
	if !errors.As(err, &rej) {
		t.Fatalf("error %v, want an ECH rejection", err)
	}
	if !bytes.Equal(rej.RetryConfigList, curList) {
		t.Errorf("retry configs %x, want the current key's", rej.RetryConfigList)
	}

	// A client without ECH is served as before.
	if _, cs, _, err := echHandshake(t, srv, &stdtls.Config{ServerName: "secret.test", RootCAs: pool(secret)}); err != nil || cs.ECHAccepted {
		t.Fatalf("without ECH: %v", err)
	}
}

func TestHTTPSRecord(t *testing.T) {
	k, _ := NewECHKey(3, "public.test")
	list := ECHConfigList([]stdtls.EncryptedClientHelloKey{k})
	rr := HTTPSRecord("www.example.com", 300, 8443, []string{"h2", "http/1.1"}, list)
	want := "www.example.com.\t300\tIN\tHTTPS\t1 . alpn=\"h2,http/1.1\" port=\"8443\" ech=\"" + ECHBase64(list) + "\""
	if rr.String() != want {
		t.Errorf("got  %s\nwant %s", rr.String(), want)
	}
	// It packs and parses back, and the zone-file form reads back too.
	msg := new(dns.Msg)
	msg.Answer = []dns.RR{rr}
	wire, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	back := new(dns.Msg)
	if err := back.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	if back.Answer[0].String() != want {
		t.Errorf("unpacked %s", back.Answer[0])
	}
	parsed, err := dns.NewRR(want)
	if err != nil || !bytes.Equal(parsed.(*dns.HTTPS).Value[2].(*dns.SVCBECHConfig).ECH, list) {
		t.Errorf("zone form: %v", err)
	}
	if s := HTTPSRecord("a.test.", 60, 443, nil, list).String(); s != "a.test.\t60\tIN\tHTTPS\t1 . ech=\""+ECHBase64(list)+"\"" {
		t.Errorf("minimal record %s", s)
	}
}
