package config

import (
	"reflect"
	"testing"
)

func TestSSLKeywords(t *testing.T) {
	const srv = "    server s 127.0.0.1:80\n"
	bind := func(opts string) string {
		return "listen x\n    bind :443 ssl crt testdata/site.pem " + opts + "\n" + srv
	}
	runCases(t, []loadCase{
		{name: "versions", cfg: bind("ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3")},
		{name: "bad version", cfg: bind("ssl-min-ver TLS1.2"), errs: []string{
			"t.cfg:2: bind :443: 'ssl-min-ver' expects one of SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3 (got 'TLS1.2')"}},
		{name: "min above max", cfg: bind("ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2"), errs: []string{
			"t.cfg:2: bind :443: ssl-min-ver TLSv1.3 is above ssl-max-ver TLSv1.2"}},
		{name: "hole", cfg: bind("ssl-min-ver TLSv1.1 no-tlsv12"), errs: []string{
			"t.cfg:2: bind :443: 'no-tlsv12' would leave a hole between TLSv1.1 and TLSv1.3: use ssl-min-ver and ssl-max-ver"}},
		{name: "all off", cfg: bind("no-tlsv12 no-tlsv13"), errs: []string{
			"t.cfg:2: bind :443: every TLS version between TLSv1.2 and TLSv1.3 is turned off"}},
		{name: "verify value", cfg: bind("verify always"), errs: []string{
			"t.cfg:2: bind :443: 'verify' expects none, optional, required (got 'always')"}},
		{name: "verify without ca", cfg: bind("verify required"), errs: []string{
			"t.cfg:2: bind :443: 'verify required' needs a 'ca-file' with the certificate authorities that sign client certificates"}},
		{name: "crl without ca", cfg: bind("crl-file x.crl"), errs: []string{
			"t.cfg:2: bind :443: 'crl-file' needs 'ca-file' and 'verify'"}},
		{name: "tickets both ways", cfg: bind("tls-ticket-keys k no-tls-tickets"), errs: []string{
			"t.cfg:2: bind :443: 'tls-ticket-keys' and 'no-tls-tickets' contradict each other"}},
		{name: "ech name", cfg: bind("ech-public-name localhost"), errs: []string{
			"t.cfg:2: bind :443: 'ech-public-name' expects a DNS name (got 'localhost')"}},
		{name: "options without ssl", cfg: "listen x\n    bind :443 ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n" + srv, warns: []string{
			"t.cfg:2: warning: bind :443: TLS options have no effect without 'ssl'"}},
		{name: "missing crt-list", cfg: "listen x\n    bind :443 ssl crt-list testdata/nope.list\n" + srv, errs: []string{
			"t.cfg:2: bind :443: certificate 'testdata/nope.list': cannot stat: no such file or directory"}},
		{name: "default bind options", cfg: "global\n    ssl-default-bind-options prefer-client-ciphers\n" + lst, errs: []string{
			"t.cfg:2: 'ssl-default-bind-options': 'prefer-client-ciphers' is not an option sluice applies from here (allowed: ssl-min-ver, ssl-max-ver, no-sslv3, no-tlsv10, no-tlsv11, no-tlsv12, no-tlsv13, no-tls-tickets, strict-sni)"}},
		{name: "default bind options value", cfg: "global\n    ssl-default-bind-options ssl-min-ver TLSv9\n" + lst, errs: []string{
			"t.cfg:2: ssl-default-bind-options: 'ssl-min-ver' expects one of SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3 (got 'TLSv9')"}},
		{name: "dh param", cfg: "global\n    tune.ssl.default-dh-param 2048\n" + lst, warns: []string{
			"t.cfg:2: warning: 'tune.ssl.default-dh-param' has no effect: sluice offers only elliptic-curve and post-quantum key exchanges, never finite-field DHE"}},
		{name: "server verify by default", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:443 ssl\n", errs: []string{
			"t.cfg:3: server 's': verify is required (HAProxy's default, see 'ssl-server-verify') but no 'ca-file' is given: add 'ca-file FILE', or 'verify none' to accept any certificate"}},
		{name: "server verify none", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:443 ssl verify none sni str(app.example) alpn h2,http/1.1\n"},
		{name: "ssl-server-verify none", cfg: "global\n    ssl-server-verify none\nlisten x\n    bind :80\n    server s 127.0.0.1:443 ssl\n"},
		{name: "server verify optional", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:443 ssl verify optional\n", errs: []string{
			"t.cfg:3: server 's': 'verify' expects none, required (got 'optional')",
			"t.cfg:3: server 's': verify is required (HAProxy's default, see 'ssl-server-verify') but no 'ca-file' is given: add 'ca-file FILE', or 'verify none' to accept any certificate"}},
		{name: "server sni", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:443 ssl verify none sni app.example\n", errs: []string{
			"t.cfg:3: server 's': 'sni' expects str(NAME), ssl_fc_sni or req.hdr(host) (got 'app.example')"}},
		{name: "server sni host in tcp", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:443 ssl verify none sni req.hdr(host)\n", errs: []string{
			"t.cfg:3: server 's': 'sni req.hdr(host)' needs 'mode http'"}},
		{name: "server options without ssl", cfg: "listen x\n    bind :80\n    server s 127.0.0.1:443 sni str(a.example)\n", warns: []string{
			"t.cfg:3: warning: server 's': TLS options have no effect without 'ssl'"}},
	})
}

func TestSSLDefaults(t *testing.T) {
	cfg := mustLoad(t, `global
    crt-base testdata
    ca-base /etc/ssl/ca
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256
    ssl-default-bind-curves X25519MLKEM768:X25519
    ssl-default-bind-options no-sslv3 no-tlsv10 no-tlsv11 no-tlsv13 no-tls-tickets
    ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256
listen x
    bind :443 ssl crt site.pem ca-file clients.pem verify optional
    bind :8443 ssl crt site.pem ciphers ECDHE-RSA-AES256-GCM-SHA384 ssl-max-ver TLSv1.3 ech-public-name Public.Example
    server s 127.0.0.1:443 ssl ca-file /abs/ca.pem crt client.pem
`)
	l := cfg.Proxy("x")
	want := []BindSSL{
		{SSLOptions: SSLOptions{MinVer: "TLSv1.2", MaxVer: "TLSv1.2", Ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256", Curves: "X25519MLKEM768:X25519",
			Verify: "optional", CAFile: "/etc/ssl/ca/clients.pem"}, NoTLSTickets: true},
		{SSLOptions: SSLOptions{MinVer: "TLSv1.2", MaxVer: "TLSv1.2", Ciphers: "ECDHE-RSA-AES256-GCM-SHA384", Curves: "X25519MLKEM768:X25519",
			Verify: "none"}, NoTLSTickets: true, ECHPublicName: "public.example"},
	}
	for i, w := range want {
		if got := l.Binds[i].TLS; !reflect.DeepEqual(got, w) {
			t.Errorf("bind %d TLS = %+v\nwant %+v", i, got, w)
		}
	}
	if l.Binds[0].Crt[0] != "testdata/site.pem" {
		t.Errorf("crt = %v, want crt-base applied", l.Binds[0].Crt)
	}
	s := l.Servers[0]
	wantS := ServerSSL{SSLOptions: SSLOptions{MinVer: "TLSv1.2", MaxVer: "TLSv1.3", Ciphersuites: "TLS_AES_128_GCM_SHA256", Verify: "required", CAFile: "/abs/ca.pem"}, Crt: "testdata/client.pem"}
	if !s.SSL || !reflect.DeepEqual(s.TLS, wantS) {
		t.Errorf("server TLS = %v %+v\nwant %+v", s.SSL, s.TLS, wantS)
	}
}
