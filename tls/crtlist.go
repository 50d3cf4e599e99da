package tls

import (
	"fmt"
	"strings"
)

// A CrtListLine is one certificate line of a crt-list file, as written.
type CrtListLine struct {
	Line int    // line number in the file, from 1
	Crt  string // the certificate file, as written (relative to crt-base)
	// Options are the settings between brackets, nil without brackets.
	// CAFile and CRLFile hold the paths as written (relative to ca-base);
	// CA and CRL are not read.
	Options *BindOptions
	SNI     []string // SNI filters, "!" negative ones included
}

// ParseCrtList parses a crt-list file, HAProxy's format: one certificate
// per line,
//
//	<crtfile> [\[<sslbindconf> ...\]] [[!]<snifilter> ...]
//
// where sslbindconf are bind options for this certificate: alpn, ciphers,
// ciphersuites, curves, ssl-min-ver, ssl-max-ver, verify, ca-file and
// crl-file. Empty lines and lines starting with '#' are skipped. name
// names the file in errors, which say file:line.
func ParseCrtList(name string, data []byte) ([]CrtListLine, error) {
	var out []CrtListLine
	for i, text := range strings.Split(string(data), "\n") {
		ln := i + 1
		text = strings.TrimSpace(strings.TrimSuffix(text, "\r"))
		if text == "" || text[0] == '#' {
			continue
		}
		l, err := parseCrtListLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, ln, err)
		}
		l.Line = ln
		out = append(out, l)
	}
	return out, nil
}

func parseCrtListLine(text string) (CrtListLine, error) {
	var l CrtListLine
	var crt, rest string
	if i := strings.IndexAny(text, " \t"); i >= 0 {
		crt, rest = text[:i], text[i+1:]
	} else {
		crt, rest = text, ""
	}
	if strings.HasPrefix(crt, "[") || strings.HasPrefix(crt, "!") {
		return l, fmt.Errorf("line starts with %q: the certificate file comes first", crt)
	}
	l.Crt = crt
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return l, fmt.Errorf("%s: '[' without a closing ']'", crt)
		}
		opts, err := parseCrtListOptions(strings.Fields(rest[1:end]))
		if err != nil {
			return l, fmt.Errorf("%s: %w", crt, err)
		}
		l.Options = opts
		rest = rest[end+1:]
	}
	for _, f := range strings.Fields(rest) {
		if strings.ContainsAny(f, "[]") {
			return l, fmt.Errorf("%s: misplaced %q: options in brackets come right after the certificate file", crt, f)
		}
		if f == "!" {
			return l, fmt.Errorf("%s: empty negative SNI filter '!'", crt)
		}
		l.SNI = append(l.SNI, f)
	}
	return l, nil
}

// crtListUnsupported are HAProxy's crt-list options Sluice does not have.
var crtListUnsupported = map[string]bool{
	"allow-0rtt": true, "ca-verify-file": true, "ecdhe": true, "no-ca-names": true, "npn": true,
	"ocsp-update": true, "ca-ignore-err": true, "crt-ignore-err": true,
}

func parseCrtListOptions(words []string) (*BindOptions, error) {
	o := &BindOptions{}
	for i := 0; i < len(words); i++ {
		kw := words[i]
		if crtListUnsupported[kw] {
			return nil, fmt.Errorf("crt-list option %q is not supported by Sluice", kw)
		}
		var field *string
		switch kw {
		case "alpn", "ciphers", "ciphersuites", "curves", "ssl-min-ver", "ssl-max-ver", "verify", "ca-file", "crl-file":
		default:
			return nil, fmt.Errorf("unknown crt-list option %q (supported: alpn, ciphers, ciphersuites, curves, ssl-min-ver, ssl-max-ver, verify, ca-file, crl-file)", kw)
		}
		if i+1 >= len(words) {
			return nil, fmt.Errorf("crt-list option %q expects a value", kw)
		}
		i++
		v := words[i]
		switch kw {
		case "alpn":
			o.ALPN = strings.Split(v, ",")
			for _, p := range o.ALPN {
				if p == "" {
					return nil, fmt.Errorf("alpn %q: empty protocol name", v)
				}
			}
			continue
		case "ciphers":
			field = &o.Ciphers
		case "ciphersuites":
			field = &o.Ciphersuites
		case "curves":
			field = &o.Curves
		case "ssl-min-ver":
			field = &o.MinVersion
		case "ssl-max-ver":
			field = &o.MaxVersion
		case "verify":
			field = &o.Verify
		case "ca-file":
			field = &o.CAFile
		case "crl-file":
			field = &o.CRLFile
		}
		if *field != "" {
			return nil, fmt.Errorf("crt-list option %q given twice", kw)
		}
		*field = v
	}
	// Check the words now, so that errors point at the crt-list line; the
	// combination with the bind's options is checked by NewServer (and by
	// BindOptions.Check on the merged options).
	if err := o.checkWords(); err != nil {
		return nil, err
	}
	switch o.Verify {
	case "", "none", "optional", "required":
	default:
		return nil, fmt.Errorf("verify %q: expected none, optional or required", o.Verify)
	}
	return o, nil
}
