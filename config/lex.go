package config

import (
	"fmt"
	"strings"
)

// splitLine cuts one line into words the way HAProxy does (its
// configuration manual, sections 2.2 and 2.3):
//
//   - words are separated by unquoted, unescaped spaces and tabs;
//   - an unquoted '#' starts a comment;
//   - "double quotes" protect spaces, '#' and single quotes, and are the only
//     place where environment variables ($NAME, ${NAME}, ${NAME-default},
//     ${NAME[*]}) are expanded;
//   - 'single quotes' protect everything;
//   - outside single quotes a backslash escapes a space, '\', '#', a quote,
//     '$' (inside double quotes), and writes \t, \n, \r and \xNN; before any
//     other character it stands for itself.
//
// lookup returns the value of a variable, including the pseudo-variables
// .FILE, .LINE and .SECTION; an unset variable expands to nothing.
func splitLine(line string, lookup func(name string) (string, bool)) ([]string, error) {
	var (
		words          []string
		cur            strings.Builder
		inWord         bool // a word has started, even if it is still empty ("")
		squote, dquote bool
		quoteAt        int // where the open quote is, for the message
	)
	endWord := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	cutWord := func() { // a word break inside an expansion
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	i := 0
loop:
	for i < len(line) {
		c := line[i]
		switch {
		case c == 0:
			return nil, fmt.Errorf("NUL character at position %d", i+1)
		case c == '#' && !squote && !dquote:
			break loop
		case c == '"' && !squote:
			dquote = !dquote
			if dquote {
				quoteAt, inWord = i, true
			}
			i++
		case c == '\'' && !dquote:
			squote = !squote
			if squote {
				quoteAt, inWord = i, true
			}
			i++
		case c == '\\' && !squote:
			inWord = true
			n, b, err := unescape(line[i:], dquote)
			if err != nil {
				return nil, fmt.Errorf("%v at position %d", err, i+1)
			}
			cur.WriteByte(b)
			i += n
		case isSpace(c) && !squote && !dquote:
			endWord()
			i++
		case c == '$' && dquote:
			n, value, expand, err := expandVar(line[i:], lookup)
			if err != nil {
				return nil, fmt.Errorf("%v at position %d", err, i+1)
			}
			i += n
			if !expand {
				cur.WriteString(value)
				continue
			}
			// ${NAME[*]}: each space-separated part of the value is a word.
			for j, part := range strings.Fields(value) {
				if j > 0 || isSpace(value[0]) {
					cutWord()
				}
				cur.WriteString(part)
			}
			if value != "" && isSpace(value[len(value)-1]) {
				cutWord()
			}
			inWord = cur.Len() > 0
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if squote || dquote {
		return nil, fmt.Errorf("unmatched quote at position %d", quoteAt+1)
	}
	endWord()
	return words, nil
}

// unescape reads the escape sequence at the start of s (s[0] is a
// backslash) and returns how many bytes it takes and the byte it stands for.
func unescape(s string, dquote bool) (int, byte, error) {
	if len(s) < 2 {
		return 1, '\\', nil
	}
	switch s[1] {
	case ' ', '\\', '#', '\'', '"':
		return 2, s[1], nil
	case 't':
		return 2, '\t', nil
	case 'n':
		return 2, '\n', nil
	case 'r':
		return 2, '\r', nil
	case '$':
		if dquote {
			return 2, '$', nil
		}
	case 'x':
		if len(s) < 4 || !isHex(s[2]) || !isHex(s[3]) {
			return 0, 0, fmt.Errorf("truncated or invalid hexadecimal sequence")
		}
		return 4, unhex(s[2])<<4 | unhex(s[3]), nil
	}
	return 1, '\\', nil
}

// expandVar reads the variable reference at the start of s (s[0] is '$')
// and returns how many bytes it takes, its value, and whether the value is
// to be split into words (${NAME[*]}).
func expandVar(s string, lookup func(string) (string, bool)) (n int, value string, expand bool, err error) {
	i := 1
	brace := i < len(s) && s[i] == '{'
	if brace {
		i++
	}
	start := i
	if i >= len(s) || !(isAlpha(s[i]) || s[i] == '_' || s[i] == '.') {
		return 0, "", false, fmt.Errorf("forbidden first character in environment variable name")
	}
	if s[i] == '.' {
		i++
	}
	for i < len(s) && (isAlpha(s[i]) || isDigit(s[i]) || s[i] == '_') {
		i++
	}
	name := s[start:i]
	value, ok := lookup(name)
	if !ok && name[0] == '.' {
		return 0, "", false, fmt.Errorf("unknown pseudo-variable '%s'", name)
	}
	if !brace {
		return i, value, false, nil
	}
	if strings.HasPrefix(s[i:], "[") {
		if !strings.HasPrefix(s[i:], "[*]") {
			return 0, "", false, fmt.Errorf("invalid word expansion (only [*] is supported)")
		}
		expand = true
		i += 3
	}
	if i < len(s) && s[i] == '-' {
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return 0, "", false, fmt.Errorf("unmatched brace in environment variable name")
		}
		if !ok {
			value = s[i+1 : i+end]
		}
		i += end
	}
	if i >= len(s) || s[i] != '}' {
		return 0, "", false, fmt.Errorf("unmatched brace in environment variable name")
	}
	return i + 1, value, expand, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
