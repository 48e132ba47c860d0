// Package app holds the tests that run the Backup app (a PyGObject program, app/tailsbackup) from
// the Go test suite: its Python unit tests, and its AT-SPI journey in the real GNOME Shell.
package app

import (
	"os/exec"
	"testing"

	"tails-backup/internal/gnomeshell/apptest"
)

// TestPythonUnit runs the app's Python unit tests (app/tests/test_*.py): the view models.
func TestPythonUnit(t *testing.T) {
	apptest.RequirePython(t, "import gi", "python3-gi")
	cmd := exec.Command(apptest.Python, "-m", "unittest", "discover", "-s", "tests")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m unittest: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
