// Package testtool finds the programs that tests run, failing rather than skipping a test whose
// program is missing on CI (the environment variable CI set), where .ci/deps must install it.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// OnCI tells whether the tests run on CI, where every program they need must be installed.
func OnCI() bool { return os.Getenv("CI") != "" }

// Program returns the path of the program name, looked up in PATH and then in the extra paths
// given; when it is missing, it skips the test, or fails it on CI. pkg is the Debian package
// that has it, named in the message.
func Program(t testing.TB, name, pkg string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "%s is missing (Debian package %s)", name, pkg)
	return ""
}

// Missing skips the test because something it needs is not installed, or fails it on CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if OnCI() {
		t.Fatalf(format+"; CI is set, so it must be installed: add it to .ci/deps test", args...)
	}
	t.Skipf(format+"; install it (.ci/deps test does) to run this test", args...)
}
