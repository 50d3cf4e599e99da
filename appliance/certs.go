package appliance

import (
	"fmt"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/control"
	tlsctx "github.com/sluicelb/sluice/tls"
	"github.com/sluicelb/sluice/vfs"
)

// readTLS reads every file the ssl binds and servers name (certificates,
// crt-lists with the OCSP responses beside the certificates, CA and CRL
// files, ticket key files) and checks that each bind and server can be
// built from them, so that a mistake is an error with the line that made
// it, at start or reload, rather than a child refusing its configuration.
// Children get the contents: they never read the file system for their
// configuration, and may run in a chroot. Files are read through fsys: the
// disk, or a signed bundle's files.
func readTLS(cfg *config.Config, fsys vfs.FS) (*control.TLS, []string, error) {
	t := &control.TLS{
		Certs:       make(map[string][]tlsctx.CertEntry),
		Files:       make(map[string][]byte),
		TicketFiles: make(map[string][][32]byte),
	}
	var errs []config.Diagnostic
	var warnings []string
	fail := func(pos config.Pos, format string, args ...any) {
		errs = append(errs, config.Diagnostic{Pos: pos, Msg: fmt.Sprintf(format, args...)})
	}
	readFile := func(path string) error {
		if path == "" {
			return nil
		}
		if _, done := t.Files[path]; done {
			return nil
		}
		data, err := fsys.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		t.Files[path] = data
		return nil
	}
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			if !b.SSL {
				continue
			}
			label := "bind " + b.Addr.Text
			ok := true
			for _, path := range b.Crt {
				if err := readCerts(t, cfg, fsys, path, false, &warnings); err != nil {
					fail(b.Pos, "%s: %v", label, err)
					ok = false
				}
			}
			for _, path := range b.TLS.CrtList {
				if err := readCerts(t, cfg, fsys, path, true, &warnings); err != nil {
					fail(b.Pos, "%s: %v", label, err)
					ok = false
				}
			}
			for _, path := range []string{b.TLS.CAFile, b.TLS.CRLFile} {
				if err := readFile(path); err != nil {
					fail(b.Pos, "%s: %v", label, err)
					ok = false
				}
			}
			if f := b.TLS.TicketKeys; f != "" {
				if _, done := t.TicketFiles[f]; !done {
					data, err := fsys.ReadFile(f)
					if err == nil {
						t.TicketFiles[f], err = tlsctx.ParseTicketKeys(f, data)
					}
					if err != nil {
						fail(b.Pos, "%s: tls-ticket-keys: %v", label, err)
						ok = false
					}
				}
			}
			if !ok {
				continue
			}
			if _, err := tlsctx.NewServer(t.Entries(b), t.BindOptions(b), nil); err != nil {
				fail(b.Pos, "%s: %v", label, err)
			}
		}
		for _, s := range p.Servers {
			if !s.SSL {
				continue
			}
			ok := true
			for _, path := range []string{s.TLS.CAFile, s.TLS.CRLFile, s.TLS.Crt} {
				if err := readFile(path); err != nil {
					fail(s.Pos, "server '%s': %v", s.Name, err)
					ok = false
				}
			}
			if !ok {
				continue
			}
			if _, err := tlsctx.NewClient(t.ServerOptions(s)); err != nil {
				fail(s.Pos, "server '%s': %v", s.Name, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, warnings, &config.Errors{Diags: errs}
	}
	return t, warnings, nil
}

// readCerts reads a crt (file or directory) or crt-list path into t, once.
func readCerts(t *control.TLS, cfg *config.Config, fsys vfs.FS, path string, list bool, warnings *[]string) error {
	if _, done := t.Certs[path]; done {
		return nil
	}
	crt, crtList := []string{path}, []string(nil)
	if list {
		crt, crtList = nil, crt
	}
	entries, warns, err := tlsctx.ReadCertsFS(fsys, crt, crtList, cfg.Global.CrtBase, cfg.Global.CABase)
	if err != nil {
		return err
	}
	*warnings = append(*warnings, warns...)
	t.Certs[path] = entries
	return nil
}

// CheckLoaded runs the checks that need more than the configuration
// files' text: it reads every certificate and TLS file, from the
// configuration's source. `sluice -c` and a starting master run it. The
// warnings are about certificates that load but deserve attention
// (expired, stale OCSP response). The signing keys are not read here:
// Source.Load already read them from the trust files, and refuses a
// configuration to run that names any.
func CheckLoaded(ld *Loaded) ([]string, error) {
	_, warnings, err := readTLS(ld.Config, ld.FS)
	return warnings, err
}
