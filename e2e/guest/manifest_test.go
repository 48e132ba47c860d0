package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCheckTree: a backup holding each file old or new passes; a torn file, a lost file, an
// engine temporary and a file of neither manifest are each named.
func TestCheckTree(t *testing.T) {
	ctx := context.Background()
	write := func(root string, files map[string]string) {
		t.Helper()
		for p, c := range files {
			full := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(c), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	manifest := func(files map[string]string) map[string]Entry {
		t.Helper()
		root := t.TempDir()
		write(root, files)
		m, err := manifestOf(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	oldFiles := map[string]string{"a": "a1", "d/b": "b1", "gone": "g", "same": "s", "tails-backup/x": "own"}
	newFiles := map[string]string{"a": "a2", "d/b": "b2", "new": "n", "same": "s"}
	old, new := manifest(oldFiles), manifest(newFiles)
	if _, ok := old["tails-backup/x"]; ok {
		t.Fatal("the tails-backup folder is in the manifest")
	}
	tests := []struct {
		name                 string
		backup               map[string]string
		complete             bool
		old, new             int
		torn, missing, extra []string
		temps                []string
	}{
		{"all old", oldFiles, false, 3, 0, nil, nil, nil, nil},
		{"all new", newFiles, true, 0, 3, nil, nil, nil, nil},
		{"mixed", map[string]string{"a": "a2", "d/b": "b1", "same": "s", ".tails-backup.json": `{"state":"incomplete"}`}, false, 1, 1, nil, nil, nil, nil},
		{"new and an own file", map[string]string{"a": "a2", "d/b": "b2", "new": "n", "same": "s", "tails-backup/y": "backup's own"}, true, 0, 3, nil, nil, nil, nil},
		{"torn", map[string]string{"a": "a2", "d/b": "b", "same": "s", "new": "n"}, false, 0, 2, []string{"d/b"}, nil, nil, nil},
		{"lost", map[string]string{"a": "a2", "new": "n", "same": "s"}, false, 0, 2, nil, []string{"d", "d/b"}, nil, nil},
		{"neither", map[string]string{"a": "a2", "d/b": "b2", "new": "n", "same": "s", "d/stray": "x"}, false, 0, 3, nil, nil, []string{"d/stray"}, nil},
		{"temporary", map[string]string{"a": "a2", "d/b": "b2", "new": "n", "same": "s", "d/.tails-backup-123-abc-4.tmp": "b"}, false, 0, 3, nil, nil, nil, []string{"d/.tails-backup-123-abc-4.tmp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			write(root, tt.backup)
			c, err := checkTree(ctx, root, old, new)
			if err != nil {
				t.Fatal(err)
			}
			if c.Complete != tt.complete || c.Old != tt.old || c.New != tt.new || !slices.Equal(c.Torn, tt.torn) ||
				!slices.Equal(c.Missing, tt.missing) || !slices.Equal(c.Extra, tt.extra) || !slices.Equal(c.Temps, tt.temps) {
				t.Errorf("checkTree = %+v, want complete %v old %d new %d torn %q missing %q extra %q temps %q",
					c, tt.complete, tt.old, tt.new, tt.torn, tt.missing, tt.extra, tt.temps)
			}
		})
	}
}

// TestHashFile: the hash is of the content, whether its zeros are holes or written.
func TestHashFile(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, size int64, chunks map[int64]string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		for off, c := range chunks {
			if _, err := f.WriteAt([]byte(c), off); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	zeros := string(make([]byte, 3<<20))
	tests := []struct {
		name      string
		a, b      string
		wantEqual bool
	}{
		{"sparse and written zeros", mk("s1", 4<<20, map[int64]string{7 << 19: "x"}), mk("w1", 4<<20, map[int64]string{0: zeros, 7 << 19: "x"}), true},
		{"one byte differs", mk("s2", 4<<20, map[int64]string{1 << 20: "x"}), mk("s3", 4<<20, map[int64]string{1 << 20: "y"}), false},
		{"same data elsewhere", mk("s4", 4<<20, map[int64]string{1 << 20: "x"}), mk("s5", 4<<20, map[int64]string{2 << 20: "x"}), false},
		{"size differs", mk("s6", 4<<20, nil), mk("s7", 4<<20+1, nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ha, _, err := hashFile(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			hb, _, err := hashFile(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if (ha == hb) != tt.wantEqual {
				t.Errorf("hashes %s and %s: equal %v, want %v", ha, hb, ha == hb, tt.wantEqual)
			}
		})
	}
}

// TestTmpRe: the check of a pulled stick takes the mirror engine's temporaries, plain and
// resumable (sync/resume.go), for what they are, and no file of the user for one.
func TestTmpRe(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{".tails-backup-1234-abc123-7.tmp", true},
		{".tails-backup-part-0123456789abcdef0123456789abcdef.tmp", true},
		{".tails-backup-part-0123456789abcdef.tmp", false},
		{".tails-backup-part-0123456789ABCDEF0123456789abcdef.tmp", false},
		{"tails-backup-part-0123456789abcdef0123456789abcdef.tmp", false},
		{"film.mkv.tmp", false},
		{".tails-backup.json", false},
	} {
		if got := tmpRe.MatchString(c.name); got != c.want {
			t.Errorf("tmpRe.MatchString(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
