package appliance

import (
	"fmt"

	"github.com/sluicelb/sluice/config"
	tlsctx "github.com/sluicelb/sluice/tls"
)

// readCerts loads every certificate the ssl binds name, which checks them
// (key matches, chain parses), and returns them as PEM bundles by crt path
// for the children, which never read the file system for their
// configuration (and may run in a chroot).
func readCerts(cfg *config.Config) (map[string][]string, error) {
	certs := make(map[string][]string)
	var errs []config.Diagnostic
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			for _, path := range b.Crt {
				if _, done := certs[path]; done {
					continue
				}
				store, err := tlsctx.LoadCertificates([]string{path})
				if err != nil {
					errs = append(errs, config.Diagnostic{Pos: b.Pos, Msg: fmt.Sprintf("bind %s: %v", b.Addr.Text, err)})
					continue
				}
				var bundles []string
				for _, c := range store.Certificates() {
					pem, err := tlsctx.EncodePEM(c)
					if err != nil {
						return nil, fmt.Errorf("%s:%d: encode certificate of %s: %w", b.Pos.File, b.Pos.Line, path, err)
					}
					bundles = append(bundles, string(pem))
				}
				certs[path] = bundles
			}
		}
	}
	if len(errs) > 0 {
		return nil, &config.Errors{Diags: errs}
	}
	return certs, nil
}

// Check runs the checks that need more than the configuration files'
// text: it loads every certificate. `sluice -c` and a starting master run it.
func Check(cfg *config.Config) error {
	_, err := readCerts(cfg)
	return err
}
