package l10n

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Verb is one formatting verb of a text: the argument it reads (1 for the first) and its
// letter ('s', 'd', 'v', ...). A '*' width or precision reads an argument too, reported with
// the verb '*'; a verb fmt would refuse (a bad index, a number after an index, no verb at the
// end) is reported with the verb '!'.
type Verb struct {
	Arg  int
	Verb rune
}

func (v Verb) String() string { return fmt.Sprintf("%%[%d]%c", v.Arg, v.Verb) }

// Verbs lists the verbs of a Go format in order, following fmt's own parsing: flags, an
// optional [n] index, width, precision, an optional index, the verb; "%%" is no verb.
func Verbs(s string) []Verb {
	var out []Verb
	arg := 1 // the next argument, 1-based
	for i := 0; i < len(s); {
		if s[i] != '%' {
			i++
			continue
		}
		i++
		good := true
		for i < len(s) && (s[i] == '#' || s[i] == '0' || s[i] == '+' || s[i] == '-' || s[i] == ' ') {
			i++
		}
		// index parses an [n] at i, as fmt's argNumber does: a bad one skips to its ']' (or
		// skips the '[' when there is none) and spoils the verb.
		index := func() (after bool) {
			if i >= len(s) || s[i] != '[' {
				return false
			}
			rest := s[i:]
			end := strings.IndexByte(rest, ']')
			if len(rest) < 3 || end < 0 {
				good = false
				i++
				return false
			}
			n, ok := 0, end > 1
			for _, c := range rest[1:end] {
				if c < '0' || c > '9' || n > 1e6 {
					ok = false
					break
				}
				n = n*10 + int(c-'0')
			}
			i += end + 1
			if !ok {
				good = false
				return false
			}
			if n < 1 {
				good = false
			} else {
				arg = n
			}
			return true
		}
		digits := func() bool {
			start, n := i, 0
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				if n > 1e6 {
					i = len(s) // fmt gives up on a huge width: no verb
					return true
				}
				n = n*10 + int(s[i]-'0')
				i++
			}
			return i > start
		}
		after := index()
		if i < len(s) && s[i] == '*' {
			out = append(out, Verb{Arg: arg, Verb: '*'})
			arg++
			i++
			after = false
		} else if digits() && after {
			good = false // "%[1]3d": fmt wants "%3[1]d"
		}
		if i+1 < len(s) && s[i] == '.' {
			i++
			if after {
				good = false
			}
			after = index()
			if i < len(s) && s[i] == '*' {
				out = append(out, Verb{Arg: arg, Verb: '*'})
				arg++
				i++
				after = false
			} else {
				digits() // fmt accepts "%.[1]2f"
			}
		}
		if !after {
			index()
		}
		if i >= len(s) {
			out = append(out, Verb{Arg: arg, Verb: '!'})
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '%':
		case !good:
			out = append(out, Verb{Arg: arg, Verb: '!'})
		default:
			out = append(out, Verb{Arg: arg, Verb: r})
			arg++
		}
	}
	return out
}

// VerbSet is the verbs of a text as a sorted set without repetition, for comparing a
// translation's with its msgid's.
func VerbSet(s string) []Verb {
	vs := Verbs(s)
	slices.SortFunc(vs, func(a, b Verb) int {
		if a.Arg != b.Arg {
			return a.Arg - b.Arg
		}
		return int(a.Verb - b.Verb)
	})
	return slices.Compact(vs)
}
