package cache

import (
	"strconv"
	"strings"
	"time"
)

// Directives are the directives of Cache-Control header values (RFC 9111,
// 5.2), by lower-case name; a directive without value maps to "".
type Directives map[string]string

// ParseCacheControl reads Cache-Control header values. Quoted values lose
// their quotes; a directive given twice keeps its first value, and
// elements that are not tokens are skipped.
func ParseCacheControl(values []string) Directives {
	d := Directives{}
	for _, v := range values {
		for _, elem := range splitOutsideQuotes(v) {
			name, val, _ := strings.Cut(elem, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" || strings.ContainsAny(name, " \t\"") {
				continue
			}
			val = strings.TrimSpace(val)
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if _, seen := d[name]; !seen {
				d[name] = val
			}
		}
	}
	return d
}

// splitOutsideQuotes splits at commas that are not inside a quoted string
// (no-cache="Set-Cookie, Set-Cookie2" is one element).
func splitOutsideQuotes(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// Has reports whether the directive is present.
func (d Directives) Has(name string) bool {
	_, ok := d[name]
	return ok
}

// Seconds returns a delta-seconds directive (max-age, s-maxage). A value
// that is not a non-negative number is treated as 0 — stale at once — so a
// garbled header never makes a response live longer (RFC 9111, 4.2.1);
// values past the range are capped.
func (d Directives) Seconds(name string) (time.Duration, bool) {
	v, ok := d[name]
	if !ok {
		return 0, false
	}
	return deltaSeconds(v), true
}

// deltaSeconds reads delta-seconds (a directive's value, or Age) with
// Seconds' rules.
func deltaSeconds(v string) time.Duration {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange && !strings.HasPrefix(v, "-") {
			return maxDelta
		}
		return 0
	}
	if n < 0 {
		return 0
	}
	if n > int64(maxDelta/time.Second) {
		return maxDelta
	}
	return time.Duration(n) * time.Second
}

// maxDelta is RFC 9111's largest delta-seconds worth keeping (2^31 s).
const maxDelta = (1 << 31) * time.Second
