package testtree

import (
	"os"
	"path/filepath"
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
