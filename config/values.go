package config

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxTimeMS is HAProxy's largest time value: timers are signed 32-bit
// millisecond counts.
const maxTimeMS = math.MaxInt32

// parseTime reads a HAProxy time value: a decimal number with an optional
// unit among us, ms (the default), s, m, h and d.
func parseTime(s string) (time.Duration, error) {
	digits := 0
	for digits < len(s) && isDigit(s[digits]) {
		digits++
	}
	units := map[string]time.Duration{
		"us": time.Microsecond, "ms": time.Millisecond, "": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
	}
	unit, ok := units[s[digits:]]
	if digits == 0 || !ok {
		return 0, fmt.Errorf("expects a time such as 30s (a number with an optional unit: us, ms, s, m, h or d), got '%s'", s)
	}
	n, err := strconv.ParseUint(s[:digits], 10, 64)
	if err != nil || n > uint64(maxTimeMS*time.Millisecond/unit) {
		return 0, fmt.Errorf("is too large: '%s' (the maximum is %d ms, about 24.8 days)", s, maxTimeMS)
	}
	return time.Duration(n) * unit, nil
}

// parseInt reads a decimal integer between min and max. Like parseTime's,
// its messages follow the keyword's name: "'weight' must be ...".
func parseInt(s string, min, max int) (int, error) {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("expects a number, got '%s'", s)
	case max == math.MaxInt32 && (err != nil && s[0] == '-' || err == nil && n < min):
		return 0, fmt.Errorf("must be at least %d, got %s", min, s)
	case err != nil || n < min || n > max:
		return 0, fmt.Errorf("must be between %d and %d, got %s", min, max, s)
	}
	return n, nil
}

// maxProcs is the largest process (or thread) number, as in HAProxy
// (one bit per process in a 64-bit mask).
const maxProcs = 64

// procSet is a process (or thread) set as written: "all", "odd", "even",
// "N", "N-M" or "N-". Which numbers it stands for depends on the number of
// processes, known only once every file is read.
type procSet struct {
	text   string
	lo, hi int  // for ranges; hi == 0 means open ("N-")
	step   int  // 1 for ranges and "all", 2 for "odd" and "even"
	named  bool // all, odd or even
	pos    Pos
	kwName string // "process", "thread", "bind-process" or "cpu-map", for messages
}

func parseProcSet(s string) (procSet, error) {
	switch s {
	case "all":
		return procSet{text: s, lo: 1, step: 1, named: true}, nil
	case "odd":
		return procSet{text: s, lo: 1, step: 2, named: true}, nil
	case "even":
		return procSet{text: s, lo: 2, step: 2, named: true}, nil
	}
	bad := fmt.Errorf("'%s' is not a valid set (expected all, odd, even, N, N-M or N- with numbers from 1 to %d)", s, maxProcs)
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > maxProcs || strings.HasPrefix(lo, "+") {
		return procSet{}, bad
	}
	set := procSet{text: s, lo: a, hi: a, step: 1}
	if isRange {
		set.hi = 0
		if hi != "" {
			b, err := strconv.Atoi(hi)
			if err != nil || b < a || b > maxProcs || strings.HasPrefix(hi, "+") {
				return procSet{}, bad
			}
			set.hi = b
		}
	}
	return set, nil
}

// highest is the largest number the set names explicitly (0 for all, odd
// and even), used to find the number of processes when nothing sets it.
func (s procSet) highest() int {
	if s.named {
		return 0
	}
	return max(s.lo, s.hi)
}

// expand returns the numbers of the set up to limit (the number of
// processes, or maxProcs for cpu-map's automatic pairing).
func (s procSet) expand(limit int) []int {
	hi := s.hi
	if hi == 0 || hi > limit {
		hi = limit
	}
	var out []int
	for n := s.lo; n <= hi; n += s.step {
		out = append(out, n)
	}
	return out
}

// union merges sorted sets of numbers.
func union(sets ...[]int) []int {
	seen := make(map[int]bool)
	var out []int
	for _, set := range sets {
		for _, n := range set {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Ints(out)
	return out
}

// invalidNameChar returns the first character HAProxy does not permit in proxy
// and server names (letters, digits, '-', '_', '.' and ':' are), or 0.
func invalidNameChar(name string) rune {
	for _, c := range name {
		if !(c < 128 && (isAlpha(byte(c)) || isDigit(byte(c))) || strings.ContainsRune("-_.:", c)) {
			return c
		}
	}
	return 0
}

// nearest returns the candidate closest to word by edit distance, if it is
// close enough to be a likely typo, or "".
func nearest(word string, candidates []string) string {
	if len(word) > 64 {
		return ""
	}
	// A typo is a few edits, fewer than the word's length.
	best, bestDist := "", min(len(word)/4+1, len(word)-1)+1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean is the " (did you mean 'X'?)" suffix of a message, or "".
func didYouMean(word string, candidates []string) string {
	if s := nearest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean '%s'?)", s)
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
