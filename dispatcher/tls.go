package dispatcher

import (
	"context"
	stdtls "crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/sluicelb/sluice/backend"
)

// defaultTLSTimeout bounds the handshake with an ssl server when the
// backend has no "timeout connect".
const defaultTLSTimeout = 5 * time.Second

// StartTLS encrypts a connection to an ssl server ("server ... ssl"): the
// PROXY header, if any, went in the clear before, as HAProxy sends it.
// clientSNI is the client's own server name, used with "sni ssl_fc_sni";
// "sni str(NAME)" is in the server's configuration already. c is closed
// when the handshake fails.
func StartTLS(ctx context.Context, c net.Conn, s *backend.Server, clientSNI string, timeout time.Duration) (net.Conn, error) {
	cfg := s.TLS()
	if sni := s.Config().TLS.SNI; sni != "" && cfg.ServerName == "" {
		// A name known only per connection: ssl_fc_sni here, the Host
		// header in http mode (which passes it as clientSNI too).
		cfg = cfg.Clone()
		cfg.ServerName = clientSNI
	}
	if timeout <= 0 {
		timeout = defaultTLSTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := stdtls.Client(c, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with server %s: %w", s.Name(), err)
	}
	return tc, nil
}

// ClientSNI returns the server name a TLS client asked for, "" for a
// connection that is not TLS.
func ClientSNI(c net.Conn) string {
	if tc, ok := c.(*stdtls.Conn); ok {
		return tc.ConnectionState().ServerName
	}
	return ""
}
