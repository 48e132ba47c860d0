//go:build linux

package noxattrat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

const childEnv = "NOXATTRAT_TEST_CHILD"

// TestInstallRefusesXattrAt runs itself again in a child process (the filter cannot be removed),
// installs the filter there, and checks that listxattrat fails with ENOSYS while llistxattr on
// the same file, and every other call the test makes, still works.
func TestInstallRefusesXattrAt(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestInstallRefusesXattrAt$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "filtered: listxattrat refused") {
			t.Fatalf("the child did not run the check:\n%s", out)
		}
		return
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Install(); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	name, _ := unix.BytePtrFromString("f")
	buf := make([]byte, 256)
	_, _, errno := unix.Syscall6(Listxattrat, uintptr(dfd), uintptr(unsafe.Pointer(name)), unix.AT_SYMLINK_NOFOLLOW,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
	if errno != unix.ENOSYS {
		t.Fatalf("listxattrat under the filter: errno %v, want ENOSYS", errno)
	}
	if _, err := unix.Llistxattr(f, buf); err != nil && err != unix.ENOTSUP {
		t.Fatalf("llistxattr under the filter: %v", err)
	}
	t.Log("filtered: listxattrat refused, llistxattr works")
}
