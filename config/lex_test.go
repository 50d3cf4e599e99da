package config

import (
	"reflect"
	"testing"
)

func TestSplitLine(t *testing.T) {
	env := map[string]string{
		"HOST":  "10.0.0.1",
		"EMPTY": "",
		"LIST":  " a  b c ",
		"SP":    "x y",
	}
	lookup := func(name string) (string, bool) {
		if name == ".LINE" {
			return "7", true
		}
		v, ok := env[name]
		return v, ok
	}
	tests := []struct {
		line string
		want []string
		err  string
	}{
		{line: "", want: nil},
		{line: "   \t  ", want: nil},
		{line: "# only a comment", want: nil},
		{line: "  bind :80   process 1 ", want: []string{"bind", ":80", "process", "1"}},
		{line: "global#comment", want: []string{"global"}},
		{line: "mode http # trailing", want: []string{"mode", "http"}},
		{line: "log-format \"%t %s\"", want: []string{"log-format", "%t %s"}},
		{line: "a 'b c' d", want: []string{"a", "b c", "d"}},
		{line: `a "b"'c'd`, want: []string{"a", "bcd"}},
		{line: `a "#not a comment" '#' \#`, want: []string{"a", "#not a comment", "#", "#"}},
		{line: `a b\ c`, want: []string{"a", "b c"}},
		{line: `a \\ \' \"`, want: []string{"a", `\`, `'`, `"`}},
		{line: `a \t\n\r`, want: []string{"a", "\t\n\r"}},
		{line: `s\x31 \x41\x62`, want: []string{"s1", "Ab"}},
		{line: `a \1 \q`, want: []string{"a", `\1`, `\q`}},
		{line: `a 'single \n $HOST'`, want: []string{"a", `single \n $HOST`}},
		{line: `a "" b`, want: []string{"a", "", "b"}},
		{line: "a\r", want: []string{"a"}},

		// Environment variables, only inside double quotes.
		{line: `bind "$HOST:80"`, want: []string{"bind", "10.0.0.1:80"}},
		{line: `bind "${HOST}:80"`, want: []string{"bind", "10.0.0.1:80"}},
		{line: `bind $HOST:80`, want: []string{"bind", "$HOST:80"}},
		{line: `bind '${HOST}'`, want: []string{"bind", "${HOST}"}},
		{line: `a "${UNSET}x"`, want: []string{"a", "x"}},
		{line: `a "${UNSET-127.0.0.1}:80"`, want: []string{"a", "127.0.0.1:80"}},
		{line: `a "${EMPTY-default}"`, want: []string{"a", ""}},
		{line: `a "${HOST-default}"`, want: []string{"a", "10.0.0.1"}},
		{line: `a "${SP}"`, want: []string{"a", "x y"}},
		{line: `a "${LIST[*]}"`, want: []string{"a", "a", "b", "c"}},
		{line: `a "p${SP[*]}s"`, want: []string{"a", "px", "ys"}},
		{line: `a "${UNSET[*]}" b`, want: []string{"a", "b"}},
		{line: `a "\$HOST" \$`, want: []string{"a", "$HOST", `\$`}},
		{line: `a "line ${.LINE}"`, want: []string{"a", "line 7"}},
		{line: `a "$HOST$HOST"`, want: []string{"a", "10.0.0.110.0.0.1"}},

		{line: `a "b`, err: "unmatched quote at position 3"},
		{line: `a 'b`, err: "unmatched quote at position 3"},
		{line: `a "${HOST"`, err: "unmatched brace in environment variable name at position 4"},
		{line: `a "${HOST-x"`, err: "unmatched brace in environment variable name at position 4"},
		{line: `a "${1X}"`, err: "forbidden first character in environment variable name at position 4"},
		{line: `a "$"`, err: "forbidden first character in environment variable name at position 4"},
		{line: `a "${.NOPE}"`, err: "unknown pseudo-variable '.NOPE' at position 4"},
		{line: `a "${LIST[x]}"`, err: "invalid word expansion (only [*] is supported) at position 4"},
		{line: `a \x4`, err: "truncated or invalid hexadecimal sequence at position 3"},
		{line: `a \xZZ`, err: "truncated or invalid hexadecimal sequence at position 3"},
		{line: "a \x00", err: "NUL character at position 3"},
	}
	for _, tt := range tests {
		got, err := splitLine(tt.line, lookup)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("splitLine(%q) error = %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("splitLine(%q): %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitLine(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}
