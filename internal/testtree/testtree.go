// Package testtree writes the small file trees of tests: a Tails system partition, a
// Persistent Storage's few files.
package testtree

import (
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
