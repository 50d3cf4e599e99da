package httprules

import (
	"fmt"
	"strconv"
	"strings"
)

// Format is a log-format string as HAProxy's header and redirect values
// take: literal text, "%[fetch(arg),converter]" sample expressions, the
// aliases %ci %cp %fi %fp, and "%%" for a percent sign.
type Format struct {
	parts []formatPart
}

type formatPart struct {
	text  string
	fetch *sampleFetch
	convs []string // converters, applied in order
}

// converters are the sample converters sluice applies in log-format
// expressions.
var converters = map[string]func(string) string{
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
}

// aliases are the log-format variables that stand for a fetch.
var aliases = map[string]string{"ci": "src", "cp": "src_port", "fi": "dst", "fp": "dst_port"}

// ParseFormat reads a log-format string.
func ParseFormat(s string, side Side) (*Format, error) {
	f := &Format{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.parts = append(f.parts, formatPart{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("log-format '%s': '%%' at the end (write '%%%%' for a percent sign)", s)
		}
		switch next := s[i+1]; {
		case next == '%':
			lit.WriteByte('%')
			i += 2
		case next == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("log-format '%s': missing ']' after '%%['", s)
			}
			expr := s[i+2 : i+end]
			p, err := parseExpr(expr, side)
			if err != nil {
				return nil, fmt.Errorf("log-format '%s': %w", s, err)
			}
			flush()
			f.parts = append(f.parts, p)
			i += end + 1
		case next == '{':
			return nil, fmt.Errorf("log-format '%s': '%%{...}' options are not supported", s)
		default:
			j := i + 1
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				j++
			}
			name := s[i+1 : j]
			fetch, ok := aliases[name]
			if !ok {
				return nil, fmt.Errorf("log-format '%s': unknown variable '%%%s' (supported: %%[fetch], %%ci, %%cp, %%fi, %%fp, %%%%)", s, name)
			}
			p, err := parseExpr(fetch, side)
			if err != nil {
				return nil, err
			}
			flush()
			f.parts = append(f.parts, p)
			i = j
		}
	}
	flush()
	return f, nil
}

// parseExpr reads "fetch(arg),conv,conv".
func parseExpr(expr string, side Side) (formatPart, error) {
	// The argument may not hold a comma (see parseFetch), so the first
	// comma after the closing parenthesis starts the converters.
	fetchText, convText := expr, ""
	if i := strings.IndexByte(expr, ')'); i >= 0 {
		if j := strings.IndexByte(expr[i:], ','); j >= 0 {
			fetchText, convText = expr[:i+j], expr[i+j+1:]
		}
	} else if j := strings.IndexByte(expr, ','); j >= 0 {
		fetchText, convText = expr[:j], expr[j+1:]
	}
	if fetchText == "" {
		return formatPart{}, fmt.Errorf("empty sample expression '%%[%s]'", expr)
	}
	sf, _, err := parseFetch(fetchText, side)
	if err != nil {
		return formatPart{}, err
	}
	p := formatPart{fetch: &sf}
	if convText != "" {
		for _, c := range strings.Split(convText, ",") {
			if _, ok := converters[c]; !ok {
				return formatPart{}, fmt.Errorf("unknown converter '%s' (supported: lower, upper)", c)
			}
			p.convs = append(p.convs, c)
		}
	}
	return p, nil
}

// Eval builds the string for a transaction. A fetch that finds nothing
// gives an empty string; several values (a repeated header) give the
// last one, as HAProxy.
func (f *Format) Eval(t *Txn) string {
	if len(f.parts) == 1 && f.parts[0].fetch == nil {
		return f.parts[0].text
	}
	var b strings.Builder
	for _, p := range f.parts {
		if p.fetch == nil {
			b.WriteString(p.text)
			continue
		}
		vals := p.fetch.get(t)
		if len(vals) == 0 {
			continue
		}
		v := vals[len(vals)-1]
		for _, c := range p.convs {
			v = converters[c](v)
		}
		b.WriteString(v)
	}
	return b.String()
}

// String gives back a printable form, for messages.
func (f *Format) String() string {
	var b strings.Builder
	for _, p := range f.parts {
		if p.fetch == nil {
			b.WriteString(strings.ReplaceAll(p.text, "%", "%%"))
			continue
		}
		b.WriteString("%[" + p.fetch.name)
		if p.fetch.arg != "" {
			b.WriteString("(" + p.fetch.arg + ")")
		}
		for _, c := range p.convs {
			b.WriteString("," + c)
		}
		b.WriteString("]")
	}
	return strconv.Quote(b.String())
}
