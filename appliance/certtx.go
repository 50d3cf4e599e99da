package appliance

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluicelb/sluice/control"
	"github.com/sluicelb/sluice/runtimeapi"
	tlsctx "github.com/sluicelb/sluice/tls"
	"github.com/sluicelb/sluice/vfs"
)

// certTx is the runtime API's certificate transaction: a new version of one
// certificate file, staged by "set ssl cert" and applied by "commit ssl
// cert". As in HAProxy, there is one transaction at a time, and what it
// changes lives in memory: a reload reads the files again, and drops the
// transaction, which was staged against the files the reload replaced.
type certTx struct {
	name  string
	entry tlsctx.CertEntry // the new PEM and OCSP response
}

// certNames returns the certificate files in use, in configuration order,
// with one entry of each (a file may appear in several binds).
func (m *Master) certNames() ([]string, map[string]tlsctx.CertEntry) {
	var names []string
	byName := make(map[string]tlsctx.CertEntry)
	for _, p := range m.cfg.Proxies {
		for _, b := range p.Binds {
			if !b.SSL {
				continue
			}
			for _, e := range m.tls.Entries(b) {
				if _, ok := byName[e.Path]; !ok {
					names = append(names, e.Path)
					byName[e.Path] = e
				}
			}
		}
	}
	return names, byName
}

// CertFiles lists the certificate files for "show ssl cert".
func (m *Master) CertFiles() []runtimeapi.CertFile {
	var out []runtimeapi.CertFile
	m.call(context.Background(), func() {
		names, byName := m.certNames()
		for _, n := range names {
			out = append(out, certFile(n, byName[n], false))
		}
		if m.certTx != nil {
			out = append(out, certFile(m.certTx.name, m.certTx.entry, true))
		}
	})
	return out
}

func certFile(name string, e tlsctx.CertEntry, pending bool) runtimeapi.CertFile {
	f := runtimeapi.CertFile{Name: name, OCSP: len(e.OCSP) > 0, Pending: pending}
	rest := e.PEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			f.Chain = append(f.Chain, c)
		}
	}
	return f
}

// SetCert stages a new version of a certificate file: a PEM bundle for
// the file itself, a base64 OCSP response for FILE.ocsp.
func (m *Master) SetCert(name, payload string) (created bool, err error) {
	cerr := m.call(context.Background(), func() {
		created, err = m.setCert(name, payload)
	})
	if cerr != nil {
		return false, cerr
	}
	return created, err
}

func (m *Master) setCert(name, payload string) (bool, error) {
	file, isOCSP := strings.CutSuffix(name, ".ocsp")
	// From a signed bundle nothing unsigned gets in (see Source): a
	// certificate and its key come in a new bundle. An OCSP response may
	// still be set, since it is checked against the certificate's issuer.
	if !isOCSP && m.src.Bundle != "" {
		return false, fmt.Errorf("this process runs from the signed bundle %s: a certificate must come in a new signed bundle, not from the runtime API (only '%s.ocsp' can be set)", m.src.Bundle, file)
	}
	if m.certTx != nil && m.certTx.name != file {
		return false, fmt.Errorf("The ongoing transaction is about '%s' but you are trying to set '%s'", m.certTx.name, file)
	}
	_, byName := m.certNames()
	current, ok := byName[file]
	if !ok {
		return false, errors.New("Can't replace a certificate which is not referenced by the configuration!")
	}
	if m.certTx != nil {
		current = m.certTx.entry
	}
	next := current
	if isOCSP {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(payload), ""))
		if err != nil {
			return false, errors.New("the OCSP response is not valid base64")
		}
		if _, err := tlsctx.MatchOCSP(der, []tlsctx.CertEntry{current}, time.Now()); err != nil {
			return false, err
		}
		next.OCSP = der
	} else {
		// Read as the file itself would be (any order, PEM normalised,
		// expiry warned), so that a commit serves what a reload would.
		fsys := vfs.NewMem(map[string][]byte{file: []byte(payload)})
		entries, warnings, err := tlsctx.ReadCertsFS(fsys, []string{file}, nil, "", "")
		if err != nil {
			return false, err
		}
		for _, w := range warnings {
			m.log.Warn("set ssl cert: " + w)
		}
		next.PEM = entries[0].PEM
		next.OCSP = nil // a response is about one certificate: set FILE.ocsp again
	}
	// Building a server checks everything a worker would: the key matches
	// the certificate.
	if _, err := tlsctx.NewServer([]tlsctx.CertEntry{next}, tlsctx.BindOptions{}, nil); err != nil {
		return false, err
	}
	created := m.certTx == nil
	m.certTx = &certTx{name: file, entry: next}
	return created, nil
}

// CommitCert applies the transaction in every process.
func (m *Master) CommitCert(ctx context.Context, name string) error {
	var err error
	if cerr := m.call(ctx, func() { err = m.commitCert(name) }); cerr != nil {
		return cerr
	}
	return err
}

func (m *Master) commitCert(name string) error {
	if m.certTx == nil {
		return errors.New("No ongoing transaction!")
	}
	if m.certTx.name != name {
		return fmt.Errorf("The ongoing transaction is about '%s' but you are trying to commit '%s'!", m.certTx.name, name)
	}
	matched := false
	next := m.withCert(func(e tlsctx.CertEntry) (tlsctx.CertEntry, bool) {
		if e.Path != name {
			return e, false
		}
		e.PEM, e.OCSP = m.certTx.entry.PEM, m.certTx.entry.OCSP
		matched = true
		return e, true
	})
	m.certTx = nil
	if !matched {
		// Reloads drop the transaction, so this is a safety net: never
		// answer Success for a change that went nowhere.
		return fmt.Errorf("Can't commit a certificate which is not referenced by the configuration: '%s'! The transaction is dropped.", name)
	}
	m.setConfig(m.cfg, next)
	if err := m.push(); err != nil {
		return err
	}
	m.log.Info("certificate replaced from the runtime API", "file", name)
	return nil
}

// withCert returns a copy of the TLS material with f applied to every
// certificate entry; the current one is shared with children that may
// still be reading it, so it is never modified.
func (m *Master) withCert(f func(tlsctx.CertEntry) (tlsctx.CertEntry, bool)) *control.TLS {
	next := *m.tls
	next.Certs = maps.Clone(m.tls.Certs)
	for path, entries := range next.Certs {
		changed := slices.Clone(entries)
		any := false
		for i, e := range changed {
			if ne, ok := f(e); ok {
				changed[i], any = ne, true
			}
		}
		if any {
			next.Certs[path] = changed
		}
	}
	return &next
}

// AbortCert drops the transaction.
func (m *Master) AbortCert(name string) error {
	var err error
	cerr := m.call(context.Background(), func() {
		switch {
		case m.certTx == nil:
			err = errors.New("No ongoing transaction!")
		case m.certTx.name != name:
			err = fmt.Errorf("The ongoing transaction is about '%s' but you are trying to abort a transaction for '%s'", m.certTx.name, name)
		default:
			m.certTx = nil
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// SetOCSPResponse staples a response to the certificates it is about (the
// same certificate may be in several files), in every process.
func (m *Master) SetOCSPResponse(ctx context.Context, der []byte) error {
	var err error
	if cerr := m.call(ctx, func() { err = m.setOCSP(der) }); cerr != nil {
		return cerr
	}
	return err
}

func (m *Master) setOCSP(der []byte) error {
	matched := 0
	var lastErr error
	now := time.Now()
	next := m.withCert(func(e tlsctx.CertEntry) (tlsctx.CertEntry, bool) {
		if _, err := tlsctx.MatchOCSP(der, []tlsctx.CertEntry{e}, now); err != nil {
			lastErr = err
			return e, false
		}
		e.OCSP = der
		matched++
		return e, true
	})
	if matched == 0 {
		return fmt.Errorf("no certificate in use matches this response (%v)", lastErr)
	}
	m.setConfig(m.cfg, next)
	return m.push()
}
