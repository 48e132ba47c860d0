// Package testtree writes and searches the small file trees of tests: a Tails system
// partition, a Persistent Storage's few files.
package testtree

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Write writes files (a path relative to root and its content) under root, making the
// folders they need (0755; the files 0644), and, unless mtime is zero, gives each file that
// modification time (a system partition's files have the time of the release that made them).
func Write(t testing.TB, root string, files map[string]string, mtime time.Time) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if !mtime.IsZero() {
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Find lists, relative to root, the entries under root (root itself included, as ".") whose
// names match, in lexical order.
func Find(t testing.TB, root string, match func(name string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if match(d.Name()) {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
