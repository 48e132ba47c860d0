package testtree

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	root := t.TempDir()
	when := time.Date(2025, 1, 7, 10, 0, 0, 0, time.UTC)
	Write(t, root, map[string]string{".disk/info": "Tails 7.2\n", "live/a/b": "x"}, when)
	for rel, want := range map[string]string{".disk/info": "Tails 7.2\n", "live/a/b": "x"} {
		p := filepath.Join(root, rel)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", rel, got, err, want)
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.ModTime().Equal(when) || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v, %v; want mode 0644 and time %v", rel, fi.ModTime(), fi.Mode(), when)
		}
	}
	// A zero time leaves the time of the write.
	Write(t, root, map[string]string{"now": ""}, time.Time{})
	if fi, err := os.Stat(filepath.Join(root, "now")); err != nil || time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("now: %v, %v; want the time of the write", fi, err)
	}
}

// TestFind: the entries of a tree whose names match, at any depth, relative to the root.
func TestFind(t *testing.T) {
	root := t.TempDir()
	Write(t, root, map[string]string{"a.tmp": "", "b": "", "d/c.tmp": "", "d/e/f.tmp": "", "d/e/g": ""}, time.Time{})
	got := Find(t, root, func(name string) bool { return strings.HasSuffix(name, ".tmp") })
	want := []string{"a.tmp", "d/c.tmp", "d/e/f.tmp"}
	if !slices.Equal(got, want) {
		t.Fatalf("Find = %q, want %q", got, want)
	}
	if got := Find(t, root, func(string) bool { return false }); len(got) != 0 {
		t.Fatalf("Find with no match = %q", got)
	}
}
