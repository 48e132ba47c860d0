// Package reporoot finds the tails-backup repository from a test or a tool run inside it.
package reporoot

import (
	"errors"
	"os"
	"path/filepath"
)

// Find returns the folder of go.mod at or above the working directory (go test runs a
// package's tests in its folder), or an error saying that there is none.
func Find() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the tails-backup repository (no go.mod above the working directory): run this from the repository")
		}
		dir = parent
	}
}
