package session

import (
	"fmt"
	"strings"
)

// SizeText writes a size in decimal units, as the file managers show it: "15.5 GB", "512 bytes".
func SizeText(n int64) string {
	const unit = 1000 // what file managers show
	if n < unit {
		return Plural(int(n), "byte")
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// Plural: "1 file", "3 files".
func Plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

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
