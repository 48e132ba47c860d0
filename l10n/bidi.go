package l10n

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The Unicode bidirectional controls of a text in a language written right to left (Unicode
// Standard Annex #9). What shows a text (GNOME Shell's banners through Pango, GTK's labels, a
// terminal that knows bidi) takes the direction of each paragraph from its first strong letter
// (rule P2), the letters inside an isolate excepted: an Arabic sentence that begins with a path
// or a stick's name ("/dev/sdb غير موصول") would be laid out left to right, and a Latin value
// inside Arabic text ("SanDisk Cruzer Blade, 16.0 GB") may have its parts reordered by the
// neutral characters around it (the comma, the dot of a size).
const (
	// RLM (RIGHT-TO-LEFT MARK) is a strong right-to-left character that shows nothing: at the
	// start of a paragraph, it makes the paragraph right to left.
	RLM = "\u200f"
	// FSI (FIRST STRONG ISOLATE) and PDI (POP DIRECTIONAL ISOLATE) enclose a value that is laid
	// out on its own, in the direction of its own first strong letter, and counts as one
	// neutral character for the text around it.
	FSI = "\u2068"
	PDI = "\u2069"
)

// Isolate encloses a value inserted in a text (a path, a device's name, a size, a name given by
// the system) between FSI and PDI in a language written right to left, so that it reads in its
// own direction and leaves the sentence's order alone; in another language it returns v as is.
// Tr and TrN isolate their text arguments themselves: Isolate is for a value shown outside a
// sentence of the catalog.
func (l *Locale) Isolate(v string) string {
	if !l.RTL() || v == "" {
		return v
	}
	return FSI + v + PDI
}

// bidiArgs isolates the text arguments of a translation in a language written right to left
// (strings, errors, fmt.Stringers, formatted with %s, %v or %q): see Isolate. Numbers are left
// alone: European digits take the direction around them.
func (l *Locale) bidiArgs(args []any) []any {
	if !l.RTL() {
		return args
	}
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = l.Isolate(v)
		case error:
			out[i] = l.Isolate(v.Error())
		case fmt.Stringer:
			out[i] = l.Isolate(v.String())
		default:
			out[i] = a
		}
	}
	return out
}

// bidiText makes a translated text (formatted, or a format given to fmt.Errorf) start right to
// left in a language written right to left: each of its paragraphs (lines: a notification's
// body, the command line's output) gets an RLM before it when its first strong letter, outside
// isolates, is left to right (it begins with a Latin name such as "Tails", or with a verb:
// "%w: ..."), or when it has no letter outside its isolates: the Arabic "%[1]s، %[2]s" of a
// stick's name and size. Without the RLM, that one, itself isolated in a sentence, would be laid
// out left to right (an isolate without a strong letter is), and the size read before the name.
// A paragraph without letters nor values (a number, a list's separator) takes the direction of
// what shows it, and is left as it is, as are other languages.
func (l *Locale) bidiText(s string) string {
	if !l.RTL() || s == "" {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	for i, line := range lines {
		if d := firstStrong(line); d == 'L' || d == 0 && strings.Contains(line, FSI) {
			lines[i] = RLM + line
		}
	}
	return strings.Join(lines, "")
}

// firstStrong is the direction of the first strong character of s, skipping the isolates (as
// rule P2 does): 'R' for right to left, 'L' for left to right, 0 when s has none.
func firstStrong(s string) byte {
	depth := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r == '\u2066' || r == '\u2067' || r == '\u2068': // LRI, RLI, FSI
			depth++
		case r == '\u2069': // PDI
			depth = max(depth-1, 0)
		case depth > 0:
		case r == '\u200f' || r == '\u202b' || r == '\u202e' || rtlLetter(r): // RLM, RLE, RLO
			return 'R'
		case r == '\u200e' || r == '\u202a' || r == '\u202d' || unicode.IsLetter(r): // LRM, LRE, LRO
			return 'L'
		}
	}
	return 0
}

// rtlScripts are the scripts whose letters are strong right to left (bidi classes R and AL).
var rtlScripts = []*unicode.RangeTable{unicode.Arabic, unicode.Hebrew, unicode.Syriac, unicode.Thaana, unicode.Nko,
	unicode.Samaritan, unicode.Mandaic, unicode.Adlam, unicode.Hanifi_Rohingya, unicode.Yezidi}

func rtlLetter(r rune) bool {
	// Arabic's digits and signs are in its script but are not strong letters.
	return unicode.IsLetter(r) && unicode.IsOneOf(rtlScripts, r)
}
