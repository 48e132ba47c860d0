// Package app holds the tests that run the Backup app (a PyGObject program, app/tailsbackup) from
// the Go test suite: its Python unit tests, and its AT-SPI journey in the real GNOME Shell.
package app

import (
	"os/exec"
	"testing"

	"tails-backup/internal/testtool"
)

// python is the Python that has PyGObject (Debian's: another python3 on PATH may lack gi).
const python = "/usr/bin/python3"

// requirePython skips the test, or fails it on CI, when python cannot import what modules names
// (Python import statements).
func requirePython(t *testing.T, modules, pkgs string) {
	t.Helper()
	testtool.Program(t, "python3", "python3", python)
	if out, err := exec.Command(python, "-c", modules).CombinedOutput(); err != nil {
		testtool.Missing(t, "%s cannot run %q: %v: %s (Debian packages %s)", python, modules, err, out, pkgs)
	}
}

// TestPythonUnit runs the app's Python unit tests (app/tests/test_*.py): the view models.
func TestPythonUnit(t *testing.T) {
	requirePython(t, "import gi", "python3-gi")
	cmd := exec.Command(python, "-m", "unittest", "discover", "-s", "tests")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m unittest: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
