//go:build linux

package sync

import (
	"context"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIsTempName: the names of the engine's temporaries, of both forms, are left out of a
// source listing; any other name, however close, is copied.
func TestIsTempName(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		// Skipped: the forms the engine makes.
		{".tails-backup-part-0123456789abcdef0123456789abcdef.tmp", true},
		{".tails-backup-part-ffffffffffffffffffffffffffffffff.tmp", true},
		{".tails-backup-1234-abcdef-1.tmp", true},
		{".tails-backup-1-0-1.tmp", true}, // pid 1, start time 0 in its low 24 bits
		{".tails-backup-4194304-ffffff-18446744073709551615.tmp", true},
		{".tails-backup-98765-a-42.tmp", true},

		// Kept: a user's files, and anything the engine does not make.
		{".tails-backup-notes", false},
		{".tails-backup-notes.tmp", false},
		{".tails-backup.json", false}, // the marker, excluded by its own rule
		{"tails-backup-cache", false},
		{".tails-backup-1.tmp", false},
		{".tails-backup-1234-abcdef.tmp", false},                 // two numbers
		{".tails-backup-1234-abcdef-1-2.tmp", false},             // four
		{".tails-backup-1234-abcdef-1.tmp.bak", false},           // another suffix
		{".tails-backup-1234-abcdef-1.TMP", false},               // upper case suffix
		{"tails-backup-1234-abcdef-1.tmp", false},                // not hidden
		{".tails-backup-01234-abcdef-1.tmp", false},              // a leading zero
		{".tails-backup-0-abcdef-1.tmp", false},                  // pid 0
		{".tails-backup-1234-0abcde-1.tmp", false},               // a leading zero in hex
		{".tails-backup-1234-abcdef-01.tmp", false},              // a leading zero
		{".tails-backup-1234-abcdef-0.tmp", false},               // numbered from 1
		{".tails-backup-1234-abcdef0-1.tmp", false},              // 7 hex digits
		{".tails-backup-1234-ABCDEF-1.tmp", false},               // upper-case hex
		{".tails-backup-12a4-abcdef-1.tmp", false},               // hex pid
		{".tails-backup-1234-abcdef-1a.tmp", false},              // hex number
		{".tails-backup-12345678901-abc-1.tmp", false},           // 11-digit pid
		{".tails-backup-1-abc-123456789012345678901.tmp", false}, // 21 digits
		{".tails-backup--abcdef-1.tmp", false},
		{".tails-backup-1234--1.tmp", false},
		{".tails-backup-1234-abcdef-.tmp", false},
		{".tails-backup-.tmp", false},
		{".tails-backup-+1-abc-1.tmp", false},
		{".tails-backup- 1-abc-1.tmp", false},
		{".tails-backup-part-notes.tmp", false},
		{".tails-backup-part-0123456789abcdef0123456789abcde.tmp", false},   // 31 digits
		{".tails-backup-part-0123456789ABCDEF0123456789abcdef.tmp", false},  // upper case
		{".tails-backup-part-0123456789abcdef0123456789abcdef.tmp~", false}, // an editor's backup
		{"", false},
	} {
		if got := isTempName(c.name); got != c.want {
			t.Errorf("isTempName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestIsTempNameKnowsTheEngine: the names a runner gives its temporaries, plain and resumable,
// are the ones isTempName recognises, whatever the process id and start time.
func TestIsTempNameKnowsTheEngine(t *testing.T) {
	open := func() root {
		p := t.TempDir()
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return root{fd, p}
	}
	r, err := newRunner(context.Background(), open(), open(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for range 3 {
		if n := r.tmpName(); !isTempName(n) {
			t.Errorf("the runner's temporary %q is not recognised", n)
		}
	}
	for _, stem := range []string{".tails-backup-1-0", ".tails-backup-4194304-ffffff", ".tails-backup-300-1a"} {
		r.tmpStem = stem
		if n := r.tmpName(); !isTempName(n) {
			t.Errorf("the temporary %q is not recognised", n)
		}
	}
	st := unix.Stat_t{Size: 5 << 20, Ino: 7}
	for i := range 3 {
		if n := partialName(fmt.Sprintf("film-%d.mkv", i), &st); !isTempName(n) {
			t.Errorf("the resumable temporary %q is not recognised", n)
		}
	}
}
