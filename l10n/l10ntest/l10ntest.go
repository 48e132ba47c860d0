// Package l10ntest compiles the project's catalogs (po/<lang>.po) into a temporary locale
// folder for tests, as `make` does for the installed ones.
package l10ntest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"tails-backup/internal/testtool"
	"tails-backup/l10n"
)

// PoDir is the project's po/ folder, found from this file's place in the tree.
func PoDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the po/ folder: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "po")
}

// Catalogs compiles po/<lang>.po of each lang with msgfmt into a new temporary folder laid out
// as /usr/share/locale, and returns it. The test is skipped (failed on CI) without msgfmt.
func Catalogs(t testing.TB, langs ...string) string {
	t.Helper()
	msgfmt := testtool.Program(t, "msgfmt", "gettext")
	dir := t.TempDir()
	for _, lang := range langs {
		mo := filepath.Join(dir, lang, "LC_MESSAGES", l10n.Domain+".mo")
		if err := os.MkdirAll(filepath.Dir(mo), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(msgfmt, "-c", "-o", mo, filepath.Join(PoDir(t), lang+".po")).CombinedOutput(); err != nil {
			t.Fatalf("msgfmt %s: %v\n%s", lang, err, out)
		}
	}
	return dir
}
