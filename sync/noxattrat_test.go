//go:build linux

package sync

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"tails-backup/internal/testtool"
	"tails-backup/sync/internal/noxattrat"
)

const noXattrAtChild = "SYNC_TEST_NOXATTRAT_CHILD"

// TestMirrorUnderXattrAtFilter runs the engine in a child process whose *xattrat system calls
// fail with ENOSYS (a seccomp filter, as on Tails 7's Linux 6.12 and as mirrorbench measures the
// 6.12 path), and checks that the run really read xattrs through /proc/self/fd paths and left an
// exact copy, on a first copy and on an update of xattrs and ACLs. Without the filter, on a
// kernel that has the calls, the same run must take the *xattrat path, so that the check above
// means something.
func TestMirrorUnderXattrAtFilter(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	rsync := testtool.Program(t, "rsync", "rsync")
	if os.Getenv(noXattrAtChild) == "" {
		src, dst := t.TempDir(), t.TempDir()
		xattrTree(t, src)
		var proc atomic.Bool
		proc.Store(true)
		opts := Options{NoSync: true, xattrPath: func(p bool) { proc.Store(p) }}
		if _, err := Mirror(t.Context(), src, dst, opts); err != nil {
			t.Fatal(err)
		}
		var noAt atomic.Bool
		if _, err := xattrsAt(openDirFD(t, src), "f", &noAt); err != nil {
			t.Fatal(err)
		}
		if !noAt.Load() && proc.Load() {
			t.Error("without the filter, on a kernel with listxattrat, the run read xattrs through /proc paths")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestMirrorUnderXattrAtFilter$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), noXattrAtChild+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "filtered: fallback taken, copies exact") {
			t.Fatalf("the child did not run the check:\n%s", out)
		}
		return
	}

	if err := noxattrat.Install(); err != nil {
		t.Fatal(err)
	}
	src, dst := t.TempDir(), t.TempDir()
	xattrTree(t, src)
	check := func(what string, wantChanges bool) {
		t.Helper()
		var proc, called atomic.Bool
		opts := Options{NoSync: true, xattrPath: func(p bool) { proc.Store(p); called.Store(true) }}
		rep, err := Mirror(t.Context(), src, dst, opts)
		if err != nil || rep.ErrorCount != 0 {
			t.Fatalf("%s: %v, %+v", what, err, rep)
		}
		if !called.Load() || !proc.Load() {
			t.Fatalf("%s: under the filter the run did not take the /proc path", what)
		}
		if wantChanges != (rep.Changes() != 0) {
			t.Fatalf("%s: %d changes", what, rep.Changes())
		}
		out, err := exec.Command(rsync, "-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum", src+"/", dst+"/").CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Fatalf("%s: rsync disagrees (%v):\n%s", what, err, out)
		}
	}
	check("first copy", true)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Lsetxattr(filepath.Join(src, "d/f"), "user.k", []byte("changed"), 0))
	must(unix.Lremovexattr(filepath.Join(src, "d/e"), "trusted.dir"))
	must(unix.Lsetxattr(filepath.Join(src, "d/l"), "trusted.k", []byte("changed on the link"), 0))
	exec.Command("setfacl", "-m", "u:1001:rw", filepath.Join(src, "d/f")).Run()
	check("update of xattrs and ACLs", true)
	check("no-op", false)
	t.Log("filtered: fallback taken, copies exact")
}

// xattrTree makes a small tree with xattrs on a file, a symlink and a folder, and ACLs.
func xattrTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "d/e"), 0o750))
	must(os.WriteFile(filepath.Join(root, "d/f"), []byte("data"), 0o600))
	must(os.WriteFile(filepath.Join(root, "f"), []byte("top"), 0o644))
	must(os.Link(filepath.Join(root, "d/f"), filepath.Join(root, "hard")))
	must(os.Symlink("f", filepath.Join(root, "d/l")))
	must(unix.Lsetxattr(filepath.Join(root, "d/f"), "user.k", []byte("v"), 0))
	must(unix.Lsetxattr(filepath.Join(root, "f"), "user.top", make([]byte, 3000), 0))
	must(unix.Lsetxattr(filepath.Join(root, "d/l"), "trusted.k", []byte("on the link"), 0))
	must(unix.Lsetxattr(filepath.Join(root, "d/e"), "trusted.dir", []byte("x"), 0))
	exec.Command("setfacl", "-m", "u:1000:r", filepath.Join(root, "d/f")).Run()
	exec.Command("setfacl", "-d", "-m", "u:4242:rwx", filepath.Join(root, "d")).Run()
}
