//go:build linux

// Package tailstest lets tests run code as amnesia against a Persistent Storage root made as
// Tails makes it, which root (the tests) can read but amnesia (the session) cannot list.
package tailstest

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// PersistenceRoot makes a folder as Tails makes a Persistent Storage root (root:root,
// mode 0770, access ACL user:amnesia:--x) holding marker (mode 0644) unless it is nil, in a
// folder amnesia can reach, and a copy of this test binary that amnesia can run (go test
// builds it in a folder only root may enter). It skips unless it runs as root on a file
// system with POSIX ACLs.
func PersistenceRoot(t *testing.T, marker []byte) (root, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the Persistent Storage root belongs to root, and the read runs as amnesia")
	}
	base, err := os.MkdirTemp("", "amnesia-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	root = filepath.Join(base, "TailsData_unlocked")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(base, 0o755))
	must(os.Mkdir(root, 0o770))
	must(os.Chmod(root, 0o770))
	if err := unix.Setxattr(root, tails.ACLXattrAccess, tails.EncodeACL(tails.PersistenceRootACL(0)), 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("%s has no POSIX ACLs", base)
		}
		t.Fatal(err)
	}
	if marker != nil {
		p := filepath.Join(root, tails.MarkerName)
		must(os.WriteFile(p, marker, 0o644))
		must(os.Chmod(p, 0o644))
	}
	exe, err := os.Executable()
	must(err)
	bin = filepath.Join(base, "test-binary")
	src, err := os.Open(exe)
	must(err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	must(err)
	_, err = io.Copy(dst, src)
	must(errors.Join(err, dst.Close()))
	return root, bin
}

// RunAsAmnesia runs the test named helper of the test binary bin as amnesia (uid and gid
// 1000) with env added, and returns the line it printed after "RESULT ".
func RunAsAmnesia(t *testing.T, bin, helper string, env ...string) string {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^"+helper+"$", "-test.count=1")
	cmd.Dir = filepath.Dir(bin)
	// Under -race, the child would wait a second before exiting.
	cmd.Env = append(append(os.Environ(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tails.AmnesiaUID, Gid: tails.AmnesiaUID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s as amnesia: %v\n%s", helper, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(l, "RESULT "); ok {
			return r
		}
	}
	t.Fatalf("%s as amnesia printed no result:\n%s", helper, out)
	return ""
}
