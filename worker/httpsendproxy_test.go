package worker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

func testServers(t *testing.T) map[string]*backend.Server {
	t.Helper()
	mk := func(name, a string, sendProxy int) *config.Server {
		ad, err := addr.Parse(a)
		if err != nil {
			t.Fatal(err)
		}
		return &config.Server{Name: name, Addr: ad, SendProxy: sendProxy, Weight: 1, Rise: 2, Fall: 3}
	}
	p := &config.Proxy{Name: "b", Backend: true, Mode: config.ModeHTTP, Balance: config.BalanceRoundRobin, Servers: []*config.Server{
		mk("plain", "127.0.0.1:8080", 0),
		mk("tcp-v2", "127.0.0.1:8081", 2),
		mk("abns-v1", "abns@pool", 1),
	}}
	out := map[string]*backend.Server{}
	for _, s := range backend.New(p, nil).Servers() {
		out[s.Name()] = s
	}
	return out
}

// TestServerDialHost: a send-proxy server's dial host carries the client,
// so that pooled connections are never shared between clients, and still
// leads to the server's address.
func TestServerDialHost(t *testing.T) {
	servers := testServers(t)
	req := func(remote string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}))
	}
	for _, tt := range []struct {
		server  string
		want    string // the address dialled
		private bool   // two clients get two hosts
	}{
		{"plain", "127.0.0.1:8080", false},
		{"tcp-v2", "127.0.0.1:8081", true},
		{"abns-v1", "abns@pool", true},
	} {
		t.Run(tt.server, func(t *testing.T) {
			s := servers[tt.server]
			a := serverDialHost(s, req("192.0.2.1:1000"))
			b := serverDialHost(s, req("192.0.2.2:1000"))
			if (a != b) != tt.private {
				t.Errorf("hosts for two clients: %q and %q", a, b)
			}
			if a != serverDialHost(s, req("192.0.2.1:1000")) {
				t.Error("the same client gets two hosts")
			}
			if isEncodedHost(a) {
				a += ":80" // the transport adds the scheme's port
			}
			got, _, err := parseDialHost(a)
			if err != nil {
				t.Fatal(err)
			}
			if got.Key() != s.Addr().Key() {
				t.Errorf("dials %s, want %s", got.Key(), s.Addr().Key())
			}
		})
	}
}

// TestSendProxyHTTP: the header written on a new server connection
// carries the addresses of the client whose request opened it.
func TestSendProxyHTTP(t *testing.T) {
	servers := testServers(t)
	ctx := context.WithValue(context.Background(), infoKey, &requestInfo{server: servers["tcp-v2"], peer: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5555}})
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, net.Addr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}))
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		sendProxyHTTP(ctx, client)
		client.Close()
	}()
	src, err := readHeaderFrom2(server)
	if err != nil {
		t.Fatal(err)
	}
	if src != "192.0.2.7:5555" {
		t.Errorf("PROXY header source %s", src)
	}
	// A server without send-proxy gets nothing.
	var buf [1]byte
	c1, c2 := net.Pipe()
	defer c2.Close()
	go func() {
		sendProxyHTTP(context.WithValue(context.Background(), infoKey, &requestInfo{server: servers["plain"]}), c1)
		c1.Close()
	}()
	if n, _ := c2.Read(buf[:]); n != 0 {
		t.Error("bytes written for a server without send-proxy")
	}
}

func readHeaderFrom2(c net.Conn) (string, error) {
	pc, err := readProxyHeader(c, 0)
	if err != nil {
		return "", err
	}
	return pc.RemoteAddr().String(), nil
}
