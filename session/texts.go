package session

import (
	"strings"
)

// OneLine replaces the control characters a name may hold (a file name, a label), so that a
// line printed stays a line.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
