package tls

import (
	stdtls "crypto/tls"
	"reflect"
	"strings"
	"testing"
)

func TestBindOptionsCheck(t *testing.T) {
	ca := newCert(t, certSpec{cn: "CA", ca: true})
	all13 := "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
	tests := []struct {
		name    string
		opts    BindOptions
		wantErr string
	}{
		{"defaults", BindOptions{}, ""},
		{"everything", BindOptions{MinVersion: "TLSv1.2", MaxVersion: "TLSv1.3", Ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256,ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305", Ciphersuites: all13, Curves: "X25519MLKEM768:X25519:P-256:secp384r1", ALPN: []string{"h2", "http/1.1"}, Verify: "optional", CA: ca.certPEM()}, ""},
		{"TLS 1.0 accepted", BindOptions{MinVersion: "TLSv1.0"}, ""},
		{"DER CA", BindOptions{Verify: "required", CA: ca.der}, ""},
		{"ciphersuites in another order", BindOptions{Ciphersuites: "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"}, ""},
		{"SSLv3", BindOptions{MinVersion: "SSLv3"}, "Go does not implement SSLv3"},
		{"unknown version", BindOptions{MaxVersion: "TLSv1.4"}, `ssl-max-ver "TLSv1.4"`},
		{"min above max", BindOptions{MinVersion: "TLSv1.3", MaxVersion: "TLSv1.2"}, "ssl-min-ver TLSv1.3 is above ssl-max-ver TLSv1.2"},
		{"max below default min", BindOptions{MaxVersion: "TLSv1.1"}, "ssl-min-ver TLSv1.2 is above"},
		{"DHE cipher", BindOptions{Ciphers: "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256"}, `"DHE-RSA-AES128-GCM-SHA256" is not a cipher Go's TLS implements`},
		{"cipher-string keyword", BindOptions{Ciphers: "HIGH:!aNULL"}, `"HIGH" is an OpenSSL cipher-string keyword`},
		{"exclusion", BindOptions{Ciphers: "ECDHE-RSA-AES128-GCM-SHA256:!MD5"}, `"!MD5"`},
		{"combination", BindOptions{Ciphers: "ECDHE+AESGCM"}, "cipher-string keyword"},
		{"TLS 1.3 suite in ciphers", BindOptions{Ciphers: "TLS_AES_128_GCM_SHA256"}, "belongs in ciphersuites"},
		{"restricted ciphersuites", BindOptions{Ciphersuites: "TLS_AES_256_GCM_SHA384"}, "cannot restrict them"},
		{"CCM ciphersuite", BindOptions{Ciphersuites: all13 + ":TLS_AES_128_CCM_SHA256"}, `"TLS_AES_128_CCM_SHA256" is not a TLS 1.3 suite Go implements`},
		{"unknown curve", BindOptions{Curves: "X448"}, `curves: "X448"`},
		{"empty ALPN protocol", BindOptions{ALPN: []string{""}}, "alpn"},
		{"bad verify", BindOptions{Verify: "yes"}, `verify "yes"`},
		{"verify without CA", BindOptions{Verify: "required"}, "needs a ca-file"},
		{"CA with verify none", BindOptions{CA: ca.certPEM(), CAFile: "ca.pem"}, "ca-file ca.pem has no effect with verify none"},
		{"CRL with verify none", BindOptions{CRL: []byte("x"), CRLFile: "crl.pem"}, "crl-file crl.pem has no effect"},
		{"bad CA", BindOptions{Verify: "required", CA: []byte("junk"), CAFile: "ca.pem"}, "ca-file ca.pem:"},
		{"bad CRL", BindOptions{Verify: "required", CA: ca.certPEM(), CRL: []byte("junk"), CRLFile: "crl.pem"}, "crl-file crl.pem:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Check()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestBindOptionsMerge(t *testing.T) {
	defaults := BindOptions{MinVersion: "TLSv1.2", Ciphers: "ECDHE-RSA-AES128-GCM-SHA256", Curves: "X25519", ALPN: []string{"h2"}, Verify: "optional", CA: []byte("ca"), CAFile: "ca.pem"}
	o := BindOptions{MinVersion: "TLSv1.3", ALPN: []string{"http/1.1"}, CA: []byte("mine"), CAFile: "mine.pem"}
	got := o.Merge(defaults)
	want := BindOptions{MinVersion: "TLSv1.3", Ciphers: "ECDHE-RSA-AES128-GCM-SHA256", Curves: "X25519", ALPN: []string{"http/1.1"}, Verify: "optional", CA: []byte("mine"), CAFile: "mine.pem"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got := (BindOptions{}).Merge(defaults); !reflect.DeepEqual(got, defaults) {
		t.Errorf("empty merge %+v", got)
	}
}

func TestSampleFetchesNames(t *testing.T) {
	f := SampleFetches(stdtls.ConnectionState{Version: stdtls.VersionTLS12, CipherSuite: stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ServerName: "a.test"})
	if f.Protocol != "TLSv1.2" || f.Cipher != "ECDHE-ECDSA-AES128-GCM-SHA256" || f.SNI != "a.test" || f.ClientCert {
		t.Errorf("%+v", f)
	}
	if f := SampleFetches(stdtls.ConnectionState{Version: stdtls.VersionTLS13, CipherSuite: stdtls.TLS_AES_256_GCM_SHA384}); f.Protocol != "TLSv1.3" || f.Cipher != "TLS_AES_256_GCM_SHA384" {
		t.Errorf("%+v", f)
	}
	// Every cipher Go has gets an OpenSSL name from the table.
	for _, cs := range append(stdtls.CipherSuites(), stdtls.InsecureCipherSuites()...) {
		if n := cipherName(cs.ID); strings.HasPrefix(n, "TLS_") && cs.SupportedVersions[0] != stdtls.VersionTLS13 {
			t.Errorf("no OpenSSL name for %s", cs.Name)
		}
	}
}

func TestOnelineDN(t *testing.T) {
	c := newCert(t, certSpec{cn: "client é"})
	if got := OnelineDN(c.x509.RawSubject); got != `/CN=client \xC3\xA9` {
		t.Errorf("got %q", got)
	}
}
