package reporoot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	root, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "reporoot", "reporoot.go")); err != nil {
		t.Errorf("Find() = %s, which does not hold this package: %v", root, err)
	}
	t.Chdir(t.TempDir())
	if got, err := Find(); err == nil {
		t.Errorf("Find() outside the repository = %s, want an error", got)
	}
}
