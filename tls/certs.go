package tls

import (
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/sluicelb/sluice/vfs"
	"golang.org/x/crypto/ocsp"
)

// ReadCertsFS reads the certificates of a bind through fsys (the disk, or
// a signed bundle's files, never the disk's then), for the master to send
// to the workers: the "crt" paths, then the crt-list files (see
// ParseCrtList), in order;
// the first certificate is the default one. Relative paths in crt-list
// files are taken from crtBase (certificates) and caBase (ca-file,
// crl-file), as HAProxy's crt-base and ca-base; empty means the current
// directory.
//
// A "crt" path is a PEM bundle or a directory. A bundle holds the
// certificate, its chain and its private key in any order, as HAProxy
// expects: the leaf is the certificate that matches the key, the others
// form the chain in file order; without a key in the bundle, the key is
// read from the same path suffixed with ".key". A directory contributes
// every regular file in it, in lexical order, except dotfiles and files
// ending in .key, .ocsp, .issuer, .sctl, .ca or .crl; subdirectories are
// ignored.
//
// Beside each certificate file, CERT.ocsp is the DER OCSP response to
// staple, as in HAProxy. It must be a successful response for that
// certificate, signed by its issuer (or by a responder the issuer
// delegated) when the issuer is known: the second certificate of the
// bundle, or CERT.issuer. A response that does not match is an error; one
// that has expired, or whose status is unknown, is left out with a warning,
// since stapling it would make strict clients fail.
//
// Warnings are problems that do not prevent serving: expired
// certificates, left out OCSP responses.
func ReadCertsFS(fsys vfs.FS, crt, crtList []string, crtBase, caBase string) ([]CertEntry, []string, error) {
	var entries []CertEntry
	var warnings []string
	now := time.Now()
	add := func(path string, sni []string, opts *BindOptions) error {
		e, warns, err := readCert(fsys, path, now)
		if err != nil {
			return err
		}
		e.SNI, e.Options = sni, opts
		entries = append(entries, e)
		warnings = append(warnings, warns...)
		return nil
	}
	for _, path := range crt {
		fi, err := fsys.Stat(path)
		if err != nil {
			return nil, nil, fmt.Errorf("load certificate %s: %w", path, bare(err))
		}
		files := []string{path}
		if fi.IsDir() {
			if files, err = certFiles(fsys, path); err != nil {
				return nil, nil, err
			}
			if len(files) == 0 {
				return nil, nil, fmt.Errorf("load certificates from %s: no certificate file in the directory", path)
			}
		}
		for _, f := range files {
			if err := add(f, nil, nil); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, list := range crtList {
		data, err := fsys.ReadFile(list)
		if err != nil {
			return nil, nil, fmt.Errorf("load crt-list %s: %w", list, bare(err))
		}
		lines, err := ParseCrtList(list, data)
		if err != nil {
			return nil, nil, fmt.Errorf("load crt-list %s", err)
		}
		for _, l := range lines {
			path := withBase(crtBase, l.Crt)
			if fi, err := fsys.Stat(path); err == nil && fi.IsDir() {
				return nil, nil, fmt.Errorf("%s:%d: %s is a directory: a crt-list names certificate files", list, l.Line, path)
			}
			if l.Options != nil {
				if err := readCAFiles(fsys, l.Options, caBase); err != nil {
					return nil, nil, fmt.Errorf("%s:%d: %w", list, l.Line, err)
				}
			}
			if err := add(path, l.SNI, l.Options); err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", list, l.Line, err)
			}
		}
	}
	if len(entries) == 0 {
		return nil, nil, errors.New("load certificates: no certificate")
	}
	return entries, warnings, nil
}

func withBase(base, path string) string {
	if base == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(base, path)
}

// readCAFiles reads the ca-file and crl-file an Options names.
func readCAFiles(fsys vfs.FS, o *BindOptions, caBase string) error {
	if o.CAFile != "" {
		o.CAFile = withBase(caBase, o.CAFile)
		data, err := fsys.ReadFile(o.CAFile)
		if err != nil {
			return fmt.Errorf("read ca-file %s: %w", o.CAFile, bare(err))
		}
		if _, err := parseCAs(data); err != nil {
			return fmt.Errorf("ca-file %s: %w", o.CAFile, err)
		}
		o.CA = data
	}
	if o.CRLFile != "" {
		o.CRLFile = withBase(caBase, o.CRLFile)
		data, err := fsys.ReadFile(o.CRLFile)
		if err != nil {
			return fmt.Errorf("read crl-file %s: %w", o.CRLFile, bare(err))
		}
		if _, err := parseCRLs(data); err != nil {
			return fmt.Errorf("crl-file %s: %w", o.CRLFile, err)
		}
		o.CRL = data
	}
	return nil
}

// readCert reads one certificate file with its OCSP response.
func readCert(fsys vfs.FS, path string, now time.Time) (CertEntry, []string, error) {
	var warnings []string
	c, err := loadBundle(fsys, path)
	if err != nil {
		return CertEntry{}, nil, err
	}
	if w := validityWarning(c.Leaf, now); w != "" {
		warnings = append(warnings, fmt.Sprintf("certificate %s (%s): %s", path, describe(c.Leaf), w))
	}
	pem, err := EncodePEM(&c)
	if err != nil {
		return CertEntry{}, nil, fmt.Errorf("load certificate %s: %w", path, err)
	}
	e := CertEntry{Path: path, PEM: pem}
	resp, err := fsys.ReadFile(path + ".ocsp")
	if errors.Is(err, fs.ErrNotExist) {
		return e, warnings, nil
	}
	if err != nil {
		return CertEntry{}, nil, fmt.Errorf("load certificate %s: read %s.ocsp: %w", path, path, bare(err))
	}
	issuer, err := readIssuer(fsys, path, &c)
	if err != nil {
		return CertEntry{}, nil, err
	}
	if err := CheckOCSP(resp, c.Leaf, issuer, now); err != nil {
		var stale *StaleOCSPError
		if !errors.As(err, &stale) {
			return CertEntry{}, nil, fmt.Errorf("load certificate %s: %s.ocsp: %w", path, path, err)
		}
		warnings = append(warnings, fmt.Sprintf("certificate %s: %s.ocsp not stapled: %v", path, path, err))
		return e, warnings, nil
	}
	e.OCSP = resp
	return e, warnings, nil
}

// readIssuer returns the issuer of a certificate: the next one of its
// chain, else the one in CERT.issuer; nil when neither exists.
func readIssuer(fsys vfs.FS, path string, c *stdtls.Certificate) (*x509.Certificate, error) {
	if len(c.Certificate) > 1 {
		issuer, err := x509.ParseCertificate(c.Certificate[1])
		if err != nil {
			return nil, fmt.Errorf("load certificate %s: chain: %w", path, err)
		}
		return issuer, nil
	}
	data, err := fsys.ReadFile(path + ".issuer")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: read %s.issuer: %w", path, path, bare(err))
	}
	certs, err := parseCertsAny(data)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %s.issuer: %w", path, path, err)
	}
	return certs[0], nil
}

// A StaleOCSPError says an OCSP response is well formed and for the right
// certificate, but not worth stapling: expired, not yet valid, or of
// unknown status.
type StaleOCSPError struct{ Reason string }

func (e *StaleOCSPError) Error() string { return e.Reason }

// CheckOCSP checks an OCSP response (DER) for stapling with leaf: a
// successful response about leaf's serial, signed by issuer (or a
// responder it delegated) when issuer is not nil, of status good or
// revoked (HAProxy staples both: a revoked certificate should be refused
// by clients), and valid at now; the last two give a *StaleOCSPError. The
// runtime API's "set ssl ocsp-response" runs the same check.
func CheckOCSP(resp []byte, leaf, issuer *x509.Certificate, now time.Time) error {
	r, err := ocsp.ParseResponseForCert(resp, leaf, issuer)
	if err != nil {
		return fmt.Errorf("OCSP response for %s (serial %s): %w", describe(leaf), leaf.SerialNumber, err)
	}
	switch {
	case r.Status == ocsp.Unknown:
		return &StaleOCSPError{"OCSP status unknown"}
	case now.Before(r.ThisUpdate):
		return &StaleOCSPError{"OCSP response not valid before " + r.ThisUpdate.UTC().Format(time.RFC3339)}
	case !r.NextUpdate.IsZero() && now.After(r.NextUpdate):
		return &StaleOCSPError{"OCSP response expired on " + r.NextUpdate.UTC().Format(time.RFC3339)}
	}
	return nil
}

// MatchOCSP finds the entry an OCSP response is for (by serial number and
// signature, see CheckOCSP), for the runtime API's "set ssl
// ocsp-response", which does not say which certificate it updates. The
// issuer is the second certificate of the entry's chain, if any.
func MatchOCSP(resp []byte, entries []CertEntry, now time.Time) (int, error) {
	var firstErr error
	for i, e := range entries {
		c, err := stdtls.X509KeyPair(e.PEM, e.PEM)
		if err != nil {
			return -1, fmt.Errorf("certificate %s: %w", e.Path, err)
		}
		r, err := ocsp.ParseResponse(resp, nil)
		if err != nil {
			return -1, fmt.Errorf("OCSP response: %w", err)
		}
		if r.SerialNumber.Cmp(c.Leaf.SerialNumber) != 0 {
			continue
		}
		var issuer *x509.Certificate
		if len(c.Certificate) > 1 {
			if issuer, err = x509.ParseCertificate(c.Certificate[1]); err != nil {
				return -1, fmt.Errorf("certificate %s: chain: %w", e.Path, err)
			}
		}
		err = CheckOCSP(resp, c.Leaf, issuer, now)
		if err == nil {
			return i, nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("certificate %s: %w", e.Path, err)
		}
	}
	if firstErr != nil {
		return -1, firstErr
	}
	return -1, errors.New("OCSP response: no loaded certificate has its serial number")
}
