package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// SSLOptions are the TLS settings of a bind or a server line, as written.
// The words (cipher, curve and version names) are checked by the tls
// package when the master loads the certificates, which `sluice -c` does
// too; the configuration only knows their syntax.
type SSLOptions struct {
	// MinVer and MaxVer are the protocol bounds ("TLSv1.2"), after the
	// global defaults and the no-tlsv1x options are applied: for binds
	// they are always set.
	MinVer       string `json:"min_ver,omitempty"`
	MaxVer       string `json:"max_ver,omitempty"`
	Ciphers      string `json:"ciphers,omitempty"`      // TLS 1.2 and below, OpenSSL names
	Ciphersuites string `json:"ciphersuites,omitempty"` // TLS 1.3
	Curves       string `json:"curves,omitempty"`       // key exchange groups, ':'-separated
	Verify       string `json:"verify,omitempty"`       // none, optional (binds), required
	CAFile       string `json:"ca_file,omitempty"`
	CRLFile      string `json:"crl_file,omitempty"`
	// noVersions are the versions turned off by no-sslv3 and no-tlsv1x,
	// folded into MinVer and MaxVer at the end of the load.
	noVersions []string
}

// BindSSL are the TLS options of a bind line beyond the certificates.
type BindSSL struct {
	SSLOptions
	// CrtList are crt-list files, in order after the crt options.
	CrtList []string `json:"crt_list,omitempty"`
	// TicketKeys is the tls-ticket-keys file; "" = keys made and rotated
	// by the master.
	TicketKeys   string `json:"ticket_keys,omitempty"`
	NoTLSTickets bool   `json:"no_tls_tickets,omitempty"`
	// StrictSNI refuses a handshake whose SNI matches no certificate
	// rather than serving the default one.
	StrictSNI bool `json:"strict_sni,omitempty"`
	// ECHPublicName turns Encrypted Client Hello on for the bind: the
	// master makes and rotates the keys, and this name is the public one
	// clients put in the outer ClientHello.
	ECHPublicName string `json:"ech_public_name,omitempty"`
}

// ServerSSL are the TLS options of a server line ("ssl" re-encrypts).
type ServerSSL struct {
	SSLOptions
	// SNI is the value of the "sni" option: "str(NAME)" for a fixed name,
	// "ssl_fc_sni" for the client's own SNI, "req.hdr(host)" (http mode).
	SNI  string   `json:"sni,omitempty"`
	Crt  string   `json:"crt,omitempty"` // client certificate shown to the server
	ALPN []string `json:"alpn,omitempty"`
}

// tlsVersions are the protocol names HAProxy's ssl-min-ver and ssl-max-ver
// take, oldest first; the no-* options name the same versions.
var tlsVersions = []struct{ name, no string }{
	{"SSLv3", "no-sslv3"},
	{"TLSv1.0", "no-tlsv10"},
	{"TLSv1.1", "no-tlsv11"},
	{"TLSv1.2", "no-tlsv12"},
	{"TLSv1.3", "no-tlsv13"},
}

// Sluice's default bounds for binds, as HAProxy 2.2 and later.
const (
	defaultMinVer = "TLSv1.2"
	defaultMaxVer = "TLSv1.3"
)

func versionIndex(name string) int {
	return slices.IndexFunc(tlsVersions, func(v struct{ name, no string }) bool { return v.name == name })
}

func checkVersion(kw, v string) error {
	if versionIndex(v) < 0 {
		return fmt.Errorf("'%s' expects one of SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3 (got '%s')", kw, v)
	}
	return nil
}

// sslOpts returns the options the option being read sets: the bind line's
// or the server line's.
func (p *parser) sslOpts() *SSLOptions {
	if p.bindLine != nil {
		return &p.bindLine.TLS.SSLOptions
	}
	return &p.serverLine.TLS.SSLOptions
}

// sslWord reads the options that take one word: ssl-min-ver, ssl-max-ver,
// ciphers, ciphersuites, curves, verify, ca-file, crl-file.
func (p *parser) sslWord(s *stmt) error {
	o, v := p.sslOpts(), s.args[0]
	if v == "" {
		return fmt.Errorf("'%s' expects a value", s.name)
	}
	switch s.name {
	case "ssl-min-ver", "ssl-max-ver":
		if err := checkVersion(s.name, v); err != nil {
			return err
		}
		if s.name == "ssl-min-ver" {
			o.MinVer = v
		} else {
			o.MaxVer = v
		}
	case "ciphers":
		o.Ciphers = v
	case "ciphersuites":
		o.Ciphersuites = v
	case "curves":
		o.Curves = v
	case "verify":
		allowed := []string{"none", "optional", "required"}
		if p.serverLine != nil {
			allowed = []string{"none", "required"}
		}
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("'verify' expects %s (got '%s')", strings.Join(allowed, ", "), v)
		}
		o.Verify = v
	case "ca-file":
		o.CAFile = p.withBase(p.global.CABase, v)
	case "crl-file":
		o.CRLFile = p.withBase(p.global.CABase, v)
	}
	return nil
}

// noVersion reads no-sslv3 and no-tlsv1x.
func (p *parser) noVersion(s *stmt) error {
	o := p.sslOpts()
	for _, v := range tlsVersions {
		if v.no == s.name {
			o.noVersions = append(o.noVersions, v.name)
		}
	}
	return nil
}

// withBase prefixes a relative path with crt-base or ca-base, as HAProxy.
func (p *parser) withBase(base, path string) string {
	if base == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(base, path)
}

func (p *parser) crtList(s *stmt) error {
	if s.args[0] == "" {
		return fmt.Errorf("'crt-list' expects a file")
	}
	p.bindLine.TLS.CrtList = append(p.bindLine.TLS.CrtList, p.withBase(p.global.CrtBase, s.args[0]))
	return nil
}

func (p *parser) ticketKeys(s *stmt) error {
	if s.args[0] == "" {
		return fmt.Errorf("'tls-ticket-keys' expects a file")
	}
	p.bindLine.TLS.TicketKeys = s.args[0]
	return nil
}

func (p *parser) noTLSTickets(s *stmt) error {
	p.bindLine.TLS.NoTLSTickets = true
	return nil
}

func (p *parser) strictSNI(s *stmt) error {
	p.bindLine.TLS.StrictSNI = true
	return nil
}

func (p *parser) echPublicName(s *stmt) error {
	name := strings.ToLower(s.args[0])
	if !validHostName(name) {
		return fmt.Errorf("'ech-public-name' expects a DNS name (got '%s')", s.args[0])
	}
	p.bindLine.TLS.ECHPublicName = name
	return nil
}

// validHostName accepts a DNS name of letters, digits and hyphens, with at
// least one dot, as an ECH public name must be.
func validHostName(n string) bool {
	if len(n) == 0 || len(n) > 253 || !strings.Contains(n, ".") {
		return false
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (p *parser) serverSSL(s *stmt) error {
	p.serverLine.SSL = true
	return nil
}

func (p *parser) serverSNI(s *stmt) error {
	v := s.args[0]
	switch {
	case v == "ssl_fc_sni", v == "req.hdr(host)", v == "hdr(host)":
	case strings.HasPrefix(v, "str(") && strings.HasSuffix(v, ")") && len(v) > len("str()"):
	default:
		return fmt.Errorf("'sni' expects str(NAME), ssl_fc_sni or req.hdr(host) (got '%s')", v)
	}
	p.serverLine.TLS.SNI = v
	return nil
}

func (p *parser) serverCrt(s *stmt) error {
	if s.args[0] == "" {
		return fmt.Errorf("'crt' expects a file")
	}
	p.serverLine.TLS.Crt = p.withBase(p.global.CrtBase, s.args[0])
	return nil
}

func (p *parser) serverALPN(s *stmt) error {
	protos, err := parseALPN(s.args[0])
	if err != nil {
		return err
	}
	p.serverLine.TLS.ALPN = protos
	return nil
}

// parseALPN reads a comma-separated ALPN protocol list.
func parseALPN(v string) ([]string, error) {
	var out []string
	for _, proto := range strings.Split(v, ",") {
		if proto == "" || len(proto) > 255 {
			return nil, fmt.Errorf("'alpn' expects a comma-separated list of protocol names (1 to 255 bytes each), got '%s'", v)
		}
		out = append(out, proto)
	}
	return out, nil
}

// Global TLS settings.

// sslDefault reads ssl-default-bind-ciphers, -ciphersuites, -curves and
// their server counterparts.
func (p *parser) sslDefault(s *stmt) error {
	v, err := oneArg(s, "a list")
	if err != nil {
		return err
	}
	o := &p.global.SSLDefaultBind
	if strings.HasPrefix(s.name, "ssl-default-server-") {
		o = &p.global.SSLDefaultServer
	}
	switch {
	case strings.HasSuffix(s.name, "-ciphers"):
		o.Ciphers = v
	case strings.HasSuffix(s.name, "-ciphersuites"):
		o.Ciphersuites = v
	case strings.HasSuffix(s.name, "-curves"):
		o.Curves = v
	}
	return p.once(s, s.name)
}

// defaultBindOptions are the words ssl-default-bind-options takes: the bind
// options about protocol versions and tickets.
var defaultBindOptions = []string{"ssl-min-ver", "ssl-max-ver", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "no-tls-tickets", "strict-sni"}

// defaultServerOptions are the words ssl-default-server-options takes.
var defaultServerOptions = []string{"ssl-min-ver", "ssl-max-ver", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13"}

// sslDefaultOptions reads ssl-default-bind-options and
// ssl-default-server-options by parsing their words as options of an
// empty bind or server line.
func (p *parser) sslDefaultOptions(s *stmt) error {
	if len(s.args) == 0 {
		return fmt.Errorf("'%s' expects options", s.name)
	}
	allowed, domain := defaultBindOptions, onBind
	if s.name == "ssl-default-server-options" {
		allowed, domain = defaultServerOptions, onServer
	}
	// Check the option names first; values (TLSv1.2 after ssl-min-ver)
	// are checked when the options are read.
	for i := 0; i < len(s.args); i++ {
		w := s.args[i]
		if !slices.Contains(allowed, w) {
			return fmt.Errorf("'%s': '%s' is not an option sluice applies from here (allowed: %s)", s.name, w, strings.Join(allowed, ", "))
		}
		if w == "ssl-min-ver" || w == "ssl-max-ver" {
			i++
		}
	}
	errs := len(p.errs)
	if domain == onBind {
		p.bindLine = &bindDraft{}
		p.options(s, onBind, s.name, s.args)
		p.global.defaultBind = p.bindLine.TLS
		p.bindLine = nil
	} else {
		p.serverLine = &Server{}
		p.options(s, onServer, s.name, s.args)
		p.global.defaultServer = p.serverLine.TLS
		p.serverLine = nil
	}
	if len(p.errs) > errs {
		return nil // already reported by options
	}
	return p.once(s, s.name)
}

func (p *parser) sslServerVerify(s *stmt) error {
	v, err := oneArg(s, "'none' or 'required'")
	if err != nil {
		return err
	}
	if v != "none" && v != "required" {
		return fmt.Errorf("'ssl-server-verify' expects 'none' or 'required' (got '%s')", v)
	}
	p.global.SSLServerVerify = v
	return p.once(s, s.name)
}

func (p *parser) sslBase(s *stmt) error {
	dir, err := oneArg(s, "a directory")
	if err != nil {
		return err
	}
	if s.name == "crt-base" {
		p.global.CrtBase = dir
	} else {
		p.global.CABase = dir
	}
	return p.once(s, s.name)
}

// dhParam accepts HAProxy's Diffie-Hellman settings, common in existing
// configurations, with a warning: sluice never offers finite-field DHE.
func (p *parser) dhParam(s *stmt) error {
	if _, err := oneArg(s, "a value"); err != nil {
		return err
	}
	p.warnf(s.pos, "'%s' has no effect: sluice offers only elliptic-curve and post-quantum key exchanges, never finite-field DHE", s.name)
	return nil
}

// finishSSL applies the global TLS defaults to every ssl bind and ssl
// server, folds the no-tlsv1x options into the version bounds, and checks
// what the configuration alone can check.
func (p *parser) finishSSL() {
	g := &p.global
	for _, d := range p.proxies {
		for _, b := range d.binds {
			if !b.SSL {
				if !reflect.DeepEqual(b.TLS, BindSSL{}) {
					p.warnf(b.Pos, "bind %s: TLS options have no effect without 'ssl'", b.line)
				}
				continue
			}
			t := &b.TLS
			fill(&t.SSLOptions, g.SSLDefaultBind)
			fill(&t.SSLOptions, g.defaultBind.SSLOptions)
			t.NoTLSTickets = t.NoTLSTickets || g.defaultBind.NoTLSTickets
			t.StrictSNI = t.StrictSNI || g.defaultBind.StrictSNI
			if err := foldVersions(&t.SSLOptions, defaultMinVer, defaultMaxVer); err != nil {
				p.errorf(b.Pos, "bind %s: %v", b.line, err)
			}
			if t.Verify == "" {
				t.Verify = "none"
			}
			if t.Verify != "none" && t.CAFile == "" {
				p.errorf(b.Pos, "bind %s: 'verify %s' needs a 'ca-file' with the certificate authorities that sign client certificates", b.line, t.Verify)
			}
			if t.CRLFile != "" && t.CAFile == "" {
				p.errorf(b.Pos, "bind %s: 'crl-file' needs 'ca-file' and 'verify'", b.line)
			}
			if t.ECHPublicName != "" && t.MaxVer != "TLSv1.3" {
				p.errorf(b.Pos, "bind %s: 'ech-public-name' needs TLS 1.3, which 'ssl-max-ver %s' (or a no-tlsv13) rules out", b.line, t.MaxVer)
			}
			if t.TicketKeys != "" && t.NoTLSTickets {
				p.errorf(b.Pos, "bind %s: 'tls-ticket-keys' and 'no-tls-tickets' contradict each other", b.line)
			}
		}
		for _, s := range d.Servers {
			if !s.SSL {
				if s.TLS.SNI != "" || s.TLS.CAFile != "" || s.TLS.Verify != "" || s.TLS.Crt != "" {
					p.warnf(s.Pos, "server '%s': TLS options have no effect without 'ssl'", s.Name)
				}
				continue
			}
			t := &s.TLS
			fill(&t.SSLOptions, g.SSLDefaultServer)
			fill(&t.SSLOptions, g.defaultServer.SSLOptions)
			if err := foldVersions(&t.SSLOptions, defaultMinVer, defaultMaxVer); err != nil {
				p.errorf(s.Pos, "server '%s': %v", s.Name, err)
			}
			if t.Verify == "" {
				t.Verify = g.SSLServerVerify
				if t.Verify == "" {
					t.Verify = "required"
				}
			}
			if t.Verify == "required" && t.CAFile == "" {
				p.errorf(s.Pos, "server '%s': verify is required (HAProxy's default, see 'ssl-server-verify') but no 'ca-file' is given: add 'ca-file FILE', or 'verify none' to accept any certificate", s.Name)
			}
			if (t.SNI == "req.hdr(host)" || t.SNI == "hdr(host)") && d.Mode != ModeHTTP {
				p.errorf(s.Pos, "server '%s': 'sni %s' needs 'mode http'", s.Name, t.SNI)
			}
		}
	}
}

// fill sets the fields of o that are empty from defaults.
func fill(o *SSLOptions, defaults SSLOptions) {
	set := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	set(&o.MinVer, defaults.MinVer)
	set(&o.MaxVer, defaults.MaxVer)
	set(&o.Ciphers, defaults.Ciphers)
	set(&o.Ciphersuites, defaults.Ciphersuites)
	set(&o.Curves, defaults.Curves)
	o.noVersions = append(o.noVersions, defaults.noVersions...)
}

// foldVersions turns ssl-min-ver, ssl-max-ver and the no-* options into a
// contiguous range of versions: a no-* option raises the minimum or lowers
// the maximum; one that would leave a hole is an error, since TLS
// negotiates a range.
func foldVersions(o *SSLOptions, defMin, defMax string) error {
	if o.MinVer == "" {
		o.MinVer = defMin
	}
	if o.MaxVer == "" {
		o.MaxVer = defMax
	}
	lo, hi := versionIndex(o.MinVer), versionIndex(o.MaxVer)
	if lo > hi {
		return fmt.Errorf("ssl-min-ver %s is above ssl-max-ver %s", o.MinVer, o.MaxVer)
	}
	off := make([]bool, len(tlsVersions))
	for _, v := range o.noVersions {
		off[versionIndex(v)] = true
	}
	for lo <= hi && off[lo] {
		lo++
	}
	for hi >= lo && off[hi] {
		hi--
	}
	if lo > hi {
		return fmt.Errorf("every TLS version between %s and %s is turned off", o.MinVer, o.MaxVer)
	}
	for i := lo; i <= hi; i++ {
		if off[i] {
			return fmt.Errorf("'%s' would leave a hole between %s and %s: use ssl-min-ver and ssl-max-ver", tlsVersions[i].no, tlsVersions[lo].name, tlsVersions[hi].name)
		}
	}
	o.MinVer, o.MaxVer = tlsVersions[lo].name, tlsVersions[hi].name
	o.noVersions = nil
	return nil
}
