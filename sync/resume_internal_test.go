//go:build linux

package sync

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPartialName: the name of a resumable temporary changes with every part of what identifies
// the source version and with the destination name, has the form isPartialName recognises, and
// fits any file system's 255-byte names whatever the file's name.
func TestPartialName(t *testing.T) {
	base := unix.Stat_t{Size: 200 << 20, Ino: 4242,
		Mtim: unix.Timespec{Sec: 1_790_000_000, Nsec: 123}, Ctim: unix.Timespec{Sec: 1_790_000_001, Nsec: 456}}
	const name = "film.mkv"
	want := partialName(name, &base)
	if !isPartialName(want) || len(want) != partialNameLen {
		t.Fatalf("partialName gave %q, which isPartialName refuses", want)
	}
	if again := partialName(name, &base); again != want {
		t.Fatalf("partialName is not stable: %q then %q", want, again)
	}
	for _, c := range []struct {
		what   string
		name   string
		change func(*unix.Stat_t)
	}{
		{"size", name, func(s *unix.Stat_t) { s.Size++ }},
		{"mtime seconds", name, func(s *unix.Stat_t) { s.Mtim.Sec++ }},
		{"mtime nanoseconds", name, func(s *unix.Stat_t) { s.Mtim.Nsec++ }},
		{"ctime seconds", name, func(s *unix.Stat_t) { s.Ctim.Sec++ }},
		{"ctime nanoseconds", name, func(s *unix.Stat_t) { s.Ctim.Nsec++ }},
		{"inode", name, func(s *unix.Stat_t) { s.Ino++ }},
		{"name", "film.mkw", func(*unix.Stat_t) {}},
		{"a longer name", name + "\x00", func(*unix.Stat_t) {}},
	} {
		s := base
		c.change(&s)
		if got := partialName(c.name, &s); got == want {
			t.Errorf("another %s gives the same temporary %q", c.what, got)
		}
	}
	// What does not identify the version: owner, mode, device number (which a reboot changes).
	s := base
	s.Uid, s.Mode, s.Dev = 1000, 0o100600, 77
	if got := partialName(name, &s); got != want {
		t.Errorf("another owner, mode or device gives another temporary %q, not %q", got, want)
	}
	if got := partialName(strings.Repeat("é", 127), &base); !isPartialName(got) || len(got) > 255 {
		t.Errorf("the temporary of a 254-byte name is %q", got)
	}
}

// TestIsPartialName: only the names partialName makes are taken for resumable temporaries; the
// run deletes those the source lacks after its copies, so another name must not be held back.
func TestIsPartialName(t *testing.T) {
	ok := ".tails-backup-part-0123456789abcdef0123456789abcdef.tmp"
	for _, c := range []struct {
		name string
		want bool
	}{
		{ok, true},
		{".tails-backup-part-0123456789ABCDEF0123456789abcdef.tmp", false}, // upper case
		{".tails-backup-part-0123456789abcdef0123456789abcde.tmp", false},  // 31 digits
		{".tails-backup-part-0123456789abcdef0123456789abcdef0.tmp", false},
		{".tails-backup-part-0123456789abcdef0123456789abcdeg.tmp", false},
		{".tails-backup-part-0123456789abcdef0123456789abcdef.tm", false},
		{".tails-backup-part-0123456789abcdef0123456789abcdef.tmpx", false},
		{"tails-backup-part-0123456789abcdef0123456789abcdef.tmp", false},
		{".tails-backup-1234-abcdef-1.tmp", false}, // a plain temporary
		{".tails-backup-part-/123456789abcdef0123456789abcdef.tmp", false},
		{"", false},
		{ok[:len(ok)-1] + "\x00", false},
	} {
		if got := isPartialName(c.name); got != c.want {
			t.Errorf("isPartialName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// FuzzIsPartialName: isPartialName accepts a name exactly when it is the prefix, 32 lower-case
// hexadecimal digits and the suffix, and never panics.
func FuzzIsPartialName(f *testing.F) {
	f.Add(".tails-backup-part-0123456789abcdef0123456789abcdef.tmp")
	f.Add(".tails-backup-part-.tmp")
	f.Add(".tails-backup-99-ab-1.tmp")
	f.Add("")
	f.Fuzz(func(t *testing.T, name string) {
		got := isPartialName(name)
		hexDigits := strings.TrimSuffix(strings.TrimPrefix(name, partialPrefix), partialSuffix)
		want := strings.HasPrefix(name, partialPrefix) && strings.HasSuffix(name, partialSuffix) &&
			len(name) == len(partialPrefix)+len(hexDigits)+len(partialSuffix) && len(hexDigits) == partialHexLen &&
			strings.Trim(hexDigits, "0123456789abcdef") == ""
		if got != want {
			t.Errorf("isPartialName(%q) = %v, want %v", name, got, want)
		}
	})
}

// TestCommonPrefix: the length of the equal start of two buffers, across the block steps.
func TestCommonPrefix(t *testing.T) {
	a := make([]byte, 3*4096+100)
	for i := range a {
		a[i] = byte(i * 7)
	}
	for _, at := range []int{0, 1, 4095, 4096, 4097, 8191, 12288, 12387, len(a)} {
		b := append([]byte(nil), a...)
		if at < len(b) {
			b[at] ^= 1
		}
		if got := commonPrefix(a, b); got != at {
			t.Errorf("a difference at %d: commonPrefix = %d", at, got)
		}
	}
}
