package pot

import (
	"fmt"
	"strconv"
	"strings"
)

// Entry is one entry of a PO file.
type Entry struct {
	ID, Plural string
	Str        []string // msgstr, or msgstr[0..n-1]
	Flags      []string // "fuzzy", "python-format"...
	Line       int      // where the entry starts, for messages
}

// Key identifies the entry as Message.Key does.
func (e Entry) Key() string { return e.ID + "\x00" + e.Plural }

// HasFlag tells whether the entry has the flag f.
func (e Entry) HasFlag(f string) bool {
	for _, x := range e.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// ParsePO reads the entries of a PO file (or template), header included (its ID is ""),
// obsolete entries (#~) left out. It reads what gettext's tools write: keywords msgctxt,
// msgid, msgid_plural, msgstr and msgstr[n], each followed by strings in double quotes,
// continued on the next lines.
func ParsePO(text string) ([]Entry, error) {
	var out []Entry
	var cur *Entry
	var target *string // the string the continuation lines extend
	flush := func() {
		if cur != nil {
			out = append(out, *cur)
		}
		cur, target = nil, nil
	}
	start := func(line int) {
		if cur == nil {
			cur = &Entry{Line: line}
		}
	}
	lines := strings.Split(text, "\n")
	for i, raw := range lines {
		n := i + 1
		l := strings.TrimSpace(raw)
		switch {
		case l == "":
			flush()
			continue
		case strings.HasPrefix(l, "#~"):
			continue
		case strings.HasPrefix(l, "#,"):
			if cur != nil && (cur.ID != "" || cur.Str != nil) {
				flush()
			}
			start(n)
			for _, f := range strings.Split(l[2:], ",") {
				if f = strings.TrimSpace(f); f != "" {
					cur.Flags = append(cur.Flags, f)
				}
			}
			continue
		case strings.HasPrefix(l, "#"):
			continue
		case strings.HasPrefix(l, `"`):
			if target == nil {
				return nil, fmt.Errorf("line %d: a string that continues nothing", n)
			}
			s, err := strconv.Unquote(l)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			*target += s
			continue
		}
		key, rest, ok := strings.Cut(l, " ")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is no PO keyword and string", n, l)
		}
		s, err := strconv.Unquote(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		switch {
		case key == "msgctxt":
			return nil, fmt.Errorf("line %d: msgctxt is not used by tails-backup", n)
		case key == "msgid":
			if cur != nil && cur.Str != nil {
				flush()
			}
			start(n)
			cur.ID, target = s, &cur.ID
		case key == "msgid_plural" && cur != nil:
			cur.Plural, target = s, &cur.Plural
		case key == "msgstr" && cur != nil && cur.Plural == "" && cur.Str == nil:
			cur.Str = []string{s}
			target = &cur.Str[0]
		case strings.HasPrefix(key, "msgstr[") && strings.HasSuffix(key, "]") && cur != nil && cur.Plural != "":
			idx, err := strconv.Atoi(key[len("msgstr[") : len(key)-1])
			if err != nil || idx != len(cur.Str) {
				return nil, fmt.Errorf("line %d: %s out of order", n, key)
			}
			cur.Str = append(cur.Str, s)
			target = &cur.Str[idx]
		default:
			return nil, fmt.Errorf("line %d: unexpected %s", n, key)
		}
	}
	flush()
	return out, nil
}

// Header returns the value of a field of the header entry ("Plural-Forms"), "" if missing.
func Header(entries []Entry, field string) string {
	for _, e := range entries {
		if e.ID == "" && e.Plural == "" && len(e.Str) == 1 {
			for _, l := range strings.Split(e.Str[0], "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), field) {
					return strings.TrimSpace(v)
				}
			}
		}
	}
	return ""
}
