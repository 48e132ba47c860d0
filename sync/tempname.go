//go:build linux

package sync

import "strings"

// The engine's own temporaries in a source tree.
//
// A run writes each new entry under a temporary name in the destination folder and renames
// it over its name once its data is on the device: a plain temporary (runner.tmpName,
// ".tails-backup-PID-HEX-SEQ.tmp") or, for a large file, a resumable one (partialName,
// ".tails-backup-part-HASH.tmp"). A run that is killed, whose stick is pulled, or that is
// cancelled (the resumable ones) leaves them there, and that tree may later be a source: a
// backup whose last update was interrupted is the source of a restore or of 'tails-backup
// sync', and a Persistent Storage that a restore was cancelled in is the source of the next
// update. Copied, they would be hidden files in the destination holding a part of a file that
// the destination has whole under its own name anyway.
//
// So a source listing never holds them, in every run, as if they were excluded: no option
// turns this on, because any tree that was once a destination may hold them and a caller
// that forgets the option would bring back the bug. Nothing is lost: the names are matched
// exactly as the engine makes them (fixed prefix and suffix, a fixed number of lower-case hex
// digits for the resumable ones, decimal and hex numbers without leading zeros for the plain
// ones), which no person or program names a file by chance; a user's ".tails-backup-notes"
// or ".tails-backup-1.tmp" is copied as any file. In the destination, nothing changes: a
// temporary that the source lacks is deleted like any extra entry (the resumable ones after
// the copies of their folder, which may resume them).

// isTempName tells whether name is one the engine gives its temporaries, which a source
// listing leaves out.
func isTempName(name string) bool {
	return isPartialName(name) || isPlainTempName(name)
}

// plainTempPrefix begins the names of runner.tmpName: ".tails-backup-" followed by the process
// id in decimal, "-", the low 24 bits of the run's start time in nanoseconds in hex, "-", the
// temporary's number in the run, from 1, in decimal, and ".tmp".
const plainTempPrefix = ".tails-backup-"

// isPlainTempName tells whether name has the form of runner.tmpName's names.
func isPlainTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, plainTempPrefix)
	if !ok {
		return false
	}
	if rest, ok = strings.CutSuffix(rest, partialSuffix); !ok {
		return false
	}
	parts := strings.Split(rest, "-")
	return len(parts) == 3 &&
		isNumber(parts[0], "0123456789", 10) && parts[0] != "0" && // a pid: 1 to 2^22 on Linux
		isNumber(parts[1], "0123456789abcdef", 6) && // 24 bits
		isNumber(parts[2], "0123456789", 20) && parts[2] != "0" // a uint64 counted from 1
}

// isNumber tells whether s is a number as fmt's %d or %x writes it: one to max digits of
// digits, no leading zero but in "0".
func isNumber(s, digits string, max int) bool {
	if s == "" || len(s) > max || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := range len(s) {
		if strings.IndexByte(digits, s[i]) < 0 {
			return false
		}
	}
	return true
}
