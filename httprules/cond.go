package httprules

import (
	"fmt"
	"slices"
	"strings"
)

// Cond is an "if" or "unless" condition: an OR of ANDs of ACL tests, each
// possibly negated with '!'. A nil *Cond always holds.
type Cond struct {
	unless bool
	or     [][]condTerm
}

type condTerm struct {
	neg bool
	acl *acl
}

// Holds evaluates the condition.
func (c *Cond) Holds(t *Txn) bool {
	if c == nil {
		return true
	}
	any := false
	for _, and := range c.or {
		all := true
		for _, ct := range and {
			if ct.acl.match(t) == ct.neg {
				all = false
				break
			}
		}
		if all {
			any = true
			break
		}
	}
	return any != c.unless
}

// SplitCond cuts a rule's words at its "if" or "unless": the words before
// it and the condition's words (with the keyword), or nil when there is
// none.
func SplitCond(words []string) (before, cond []string) {
	for i, w := range words {
		if w == "if" || w == "unless" {
			return words[:i], words[i:]
		}
	}
	return words, nil
}

// ParseCond reads "if|unless TERMS", as written after a rule: TERMS are
// ACL names, '!' negations, anonymous ACLs "{ fetch [flags] patterns }",
// implicitly ANDed, and "||" or "or" between alternatives.
func ParseCond(words []string, acls *ACLs, side Side) (*Cond, error) {
	if len(words) == 0 {
		return nil, nil
	}
	c := &Cond{}
	switch words[0] {
	case "if":
	case "unless":
		c.unless = true
	default:
		return nil, fmt.Errorf("expected 'if' or 'unless', got '%s'", words[0])
	}
	rest := words[1:]
	if len(rest) == 0 {
		return nil, fmt.Errorf("'%s' expects a condition", words[0])
	}
	var and []condTerm
	for len(rest) > 0 {
		w := rest[0]
		switch {
		case w == "||" || w == "or":
			if len(and) == 0 {
				return nil, fmt.Errorf("'%s' without a condition before it", w)
			}
			c.or, and, rest = append(c.or, and), nil, rest[1:]
			continue
		case w == "&&" || w == "and":
			return nil, fmt.Errorf("'%s' is not an operator: conditions written one after the other are ANDed", w)
		}
		neg := false
		for strings.HasPrefix(w, "!") {
			neg, w = !neg, w[1:]
		}
		if w == "" {
			if len(rest) < 2 {
				return nil, fmt.Errorf("'!' without a condition after it")
			}
			rest = rest[1:]
			w = rest[0]
			if strings.HasPrefix(w, "!") {
				return nil, fmt.Errorf("'!' must be directly followed by an ACL name or '{'")
			}
		}
		var a *acl
		switch {
		case w == "{":
			end := slices.Index(rest, "}")
			if end < 0 {
				return nil, fmt.Errorf("missing '}' after '{'")
			}
			t, err := parseTerm(rest[1:end], side)
			if err != nil {
				return nil, fmt.Errorf("anonymous ACL: %w", err)
			}
			a, rest = &acl{terms: []*term{t}}, rest[end+1:]
		case strings.HasPrefix(w, "{"):
			return nil, fmt.Errorf("'%s': an anonymous ACL needs a space after '{' and before '}'", w)
		case w == "}":
			return nil, fmt.Errorf("'}' without '{'")
		default:
			var err error
			if a, err = acls.lookup(w, side); err != nil {
				return nil, err
			}
			rest = rest[1:]
		}
		and = append(and, condTerm{neg: neg, acl: a})
	}
	if len(and) == 0 {
		return nil, fmt.Errorf("missing condition after the last '||'")
	}
	c.or = append(c.or, and)
	return c, nil
}
