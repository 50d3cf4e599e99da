package worker

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/dispatcher"
)

// Servers with send-proxy or send-proxy-v2 in http mode: each new
// connection to the server starts with a PROXY header telling the client's
// addresses. This is what chains an http tier to another one over abns
// (a TLS pool forwarding to a compression pool, docs/compression.md) with
// the client's address intact.
//
// A PROXY header speaks for its whole connection, so such a connection
// must only ever carry the requests of the client it was opened for:
// the transport pools connections by dial host, and the dial host of a
// send-proxy server carries the client's addresses. As HAProxy's
// connections with send-proxy, they are private to their client.

// serverDialHost is the host a request to server s is sent to: the
// transport dials and pools by it.
func serverDialHost(s *backend.Server, in *http.Request) string {
	host := dialHost(s.Addr(), serverSNI(s, in))
	if s.Config().SendProxy == 0 {
		return host
	}
	if !isEncodedHost(host) {
		// A TCP server without SNI is dialled as "ip:port": encode it so
		// that it can carry the client part.
		host = hexHost(s.Addr().Key(), "")
	}
	local := ""
	if a, ok := in.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && a != nil {
		local = a.String()
	}
	client := hex.EncodeToString([]byte(in.RemoteAddr + " " + local))
	return host[:len(host)-len(unixHostSuffix)] + ".c" + client + unixHostSuffix
}

func isEncodedHost(host string) bool {
	return len(host) > len(unixHostSuffix) && host[len(host)-len(unixHostSuffix):] == unixHostSuffix
}

// hexHost is the dial host of a server's socket key and SNI ("s" keeps
// the label non-empty when there is no name).
func hexHost(key, sni string) string {
	return hex.EncodeToString([]byte(key)) + ".s" + hex.EncodeToString([]byte(sni)) + unixHostSuffix
}

// sendProxyHTTP writes the PROXY header a send-proxy server expects on a
// new connection, with the addresses of the client whose request opened
// it; nothing for other servers.
func sendProxyHTTP(ctx context.Context, c net.Conn) error {
	info, ok := ctx.Value(infoKey).(*requestInfo)
	if !ok || info.server.Config().SendProxy == 0 {
		return nil
	}
	s, src := info.server, info.peer
	dst, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	if src == nil || dst == nil {
		// Not a TCP client (it came over a unix socket): a LOCAL header,
		// as HAProxy sends.
		src, dst = nil, nil
	}
	return dispatcher.SendProxyHeader(c, s.Config().SendProxy, src, dst)
}
