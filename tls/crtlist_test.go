package tls

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicelb/sluice/vfs"
)

func TestParseCrtList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []CrtListLine
		wantErr string
	}{
		{
			name: "HAProxy's example",
			in: "cert1.pem !*\n" +
				"# comment\n" +
				"cert2.pem [alpn h2,http/1.1]\n" +
				"certW.pem                   *.domain.tld !secure.domain.tld\n" +
				"certS.pem [curves X25519:P-256 ciphers ECDHE-ECDSA-AES256-GCM-SHA384] secure.domain.tld\n",
			want: []CrtListLine{
				{Line: 1, Crt: "cert1.pem", SNI: []string{"!*"}},
				{Line: 3, Crt: "cert2.pem", Options: &BindOptions{ALPN: []string{"h2", "http/1.1"}}},
				{Line: 4, Crt: "certW.pem", SNI: []string{"*.domain.tld", "!secure.domain.tld"}},
				{Line: 5, Crt: "certS.pem", Options: &BindOptions{Curves: "X25519:P-256", Ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384"}, SNI: []string{"secure.domain.tld"}},
			},
		},
		{
			name: "blank lines, CRLF, tabs, spaces inside brackets",
			in:   "\r\n  \n\t# indented comment\r\n/etc/ssl/a.pem\t[ verify required ca-file ca.pem crl-file crl.pem ]\ta.test\r\n",
			want: []CrtListLine{
				{Line: 4, Crt: "/etc/ssl/a.pem", Options: &BindOptions{Verify: "required", CAFile: "ca.pem", CRLFile: "crl.pem"}, SNI: []string{"a.test"}},
			},
		},
		{
			name: "versions and ciphersuites",
			in:   "a.pem [ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256]",
			want: []CrtListLine{
				{Line: 1, Crt: "a.pem", Options: &BindOptions{MinVersion: "TLSv1.3", MaxVersion: "TLSv1.3", Ciphersuites: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"}},
			},
		},
		{name: "empty brackets", in: "a.pem []", want: []CrtListLine{{Line: 1, Crt: "a.pem", Options: &BindOptions{}}}},
		{name: "empty file", in: "", want: nil},
		{name: "unsupported option", in: "a.pem\nb.pem [npn h2]", wantErr: "list:2: b.pem: crt-list option \"npn\" is not supported"},
		{name: "unknown option", in: "a.pem [foo bar]", wantErr: "list:1: a.pem: unknown crt-list option \"foo\""},
		{name: "option without value", in: "a.pem [alpn]", wantErr: "\"alpn\" expects a value"},
		{name: "unclosed bracket", in: "a.pem [alpn h2", wantErr: "without a closing ']'"},
		{name: "options after filters", in: "a.pem a.test [alpn h2]", wantErr: "options in brackets come right after"},
		{name: "options first", in: "[alpn h2] a.pem", wantErr: "the certificate file comes first"},
		{name: "bad cipher", in: "a.pem [ciphers DHE-RSA-AES128-GCM-SHA256]", wantErr: "not a cipher Go's TLS implements"},
		{name: "bad version", in: "a.pem [ssl-min-ver SSLv3]", wantErr: "SSLv3"},
		{name: "bad verify", in: "a.pem [verify sometimes]", wantErr: "verify \"sometimes\""},
		{name: "twice", in: "a.pem [curves X25519 curves P-256]", wantErr: "given twice"},
		{name: "bare negation", in: "a.pem !", wantErr: "empty negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCrtList("list", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzCrtList(f *testing.F) {
	f.Add([]byte("cert1.pem !*\ncert2.pem [alpn h2,http/1.1 verify optional ca-file x]\ncertW.pem *.domain.tld !secure.domain.tld\n"))
	f.Add([]byte("a.pem [curves X25519:P-256 ciphers ECDHE-ECDSA-AES256-GCM-SHA384] secure.domain.tld"))
	f.Add([]byte("a.pem [ [ ] ]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseCrtList("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		for _, l := range lines {
			if l.Crt == "" || l.Line < 1 {
				t.Fatalf("bad line %+v", l)
			}
			for _, s := range l.SNI {
				if s == "" || s == "!" {
					t.Fatalf("empty filter in %+v", l)
				}
			}
		}
	})
}

// The crt-list lines Sluice accepts are accepted by HAProxy too (haproxy
// -c does not bind, so the port does not matter).
func TestCrtListHAProxyAgrees(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed")
	}
	dir := t.TempDir()
	ca := newCert(t, certSpec{cn: "CA", ca: true})
	writeFile(t, dir, "ca.pem", ca.certPEM())
	for _, n := range []string{"a", "b", "c", "d"} {
		c := newCert(t, certSpec{cn: n + ".test", dns: []string{n + ".test"}})
		writeFile(t, dir, n+".pem", c.bundle(t))
	}
	list := "# Sluice's crt-list\n" +
		"a.pem !*\n" +
		"b.pem [alpn h2,http/1.1 ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3] b.test *.b.test !x.b.test\n" +
		"c.pem [ verify required ca-file " + filepath.Join(dir, "ca.pem") + " curves X25519:P-256 ]\n" +
		"d.pem [ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256 ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256]\n"
	if _, err := ParseCrtList("list", []byte(list)); err != nil {
		t.Fatal(err)
	}
	listPath := writeFile(t, dir, "list", []byte(list))
	cfg := writeFile(t, dir, "haproxy.cfg", []byte("global\n  crt-base "+dir+"\n"+
		"defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"+
		"frontend f\n  bind 127.0.0.1:1 ssl crt-list "+listPath+"\n  default_backend b\n"+
		"backend b\n  server s 127.0.0.1:1\n"))
	out, err := exec.Command(haproxy, "-c", "-f", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	// And the file reads as a whole.
	if _, _, err := ReadCertsFS(vfs.Disk{}, nil, []string{listPath}, dir, dir); err != nil {
		t.Fatal(err)
	}
}
