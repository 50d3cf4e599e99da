package worker

import (
	stdtls "crypto/tls"
	"fmt"

	"github.com/sluicelb/sluice/config"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// serverTLS builds the TLS configuration of an ssl bind from the PEM bundles
// the master sent, in the order of the bind's crt arguments (the first
// certificate is the default one).
func serverTLS(b *config.Bind, certs map[string][]string, ticketKeys [][32]byte) (*stdtls.Config, error) {
	var list []stdtls.Certificate
	for _, path := range b.Crt {
		for _, bundle := range certs[path] {
			c, err := stdtls.X509KeyPair([]byte(bundle), []byte(bundle))
			if err != nil {
				return nil, fmt.Errorf("certificate from %s: %w", path, err)
			}
			list = append(list, c)
		}
	}
	store, err := tlsctx.NewStore(list...)
	if err != nil {
		return nil, err
	}
	cfg := tlsctx.ServerConfig(store, b.ALPN)
	if len(ticketKeys) > 0 {
		cfg.SetSessionTicketKeys(ticketKeys)
	}
	return cfg, nil
}
