//go:build linux

package sysident

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mountOver mounts an empty file system of the kind on the folder at, until the test ends:
// "tmpfs", another device number, or "bind", a bind mount of a private folder of the same file
// system, which only the mount crossing tells apart.
func mountOver(t *testing.T, kind, at string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	argv := []string{"mount", "-t", "tmpfs", "-o", "size=1m", "tbtest", at}
	if kind == "bind" {
		argv = []string{"mount", "--bind", t.TempDir(), at}
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v %s", argv, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", at).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", at, err, out)
			_ = exec.Command("umount", "-l", at).Run()
		}
	})
}

// TestMountInTheTree: a file system mounted on a folder of a system partition (amnesia may
// mount FUSE on the backup's) is never read: the version and the identity fail with a
// *MountError naming the folder, not with ErrNoVersion, which would let the helper take the
// backup for an empty system partition.
func TestMountInTheTree(t *testing.T) {
	for _, kind := range []string{"tmpfs", "bind"} {
		for _, tt := range []struct {
			at          string // the folder mounted on
			versionToo  bool   // ReadVersion meets it too, not only Identify
			mountedFile string // written into the mount: never read
		}{
			{at: ".disk", versionToo: true, mountedFile: "info"},
			{at: "live", mountedFile: "Tails.module"},
		} {
			t.Run(kind+"/"+tt.at, func(t *testing.T) {
				root := t.TempDir()
				writeFile(t, root, ".disk/info", "Tails 6.10\n")
				writeFile(t, root, "live/Tails.module", "filesystem.squashfs\n")
				writeFile(t, root, "live/filesystem.squashfs", "squash")
				at := filepath.Join(root, tt.at)
				mountOver(t, kind, at)
				writeFile(t, at, tt.mountedFile, "Tails 9.9 from another file system\n")

				check := func(what string, err error) {
					t.Helper()
					var me *MountError
					if !errors.As(err, &me) || !errors.Is(err, ErrOtherFileSystem) || me.Path != tt.at || me.Backup {
						t.Errorf("%s: got %v (%#v), want a *MountError for %q", what, err, me, tt.at)
					}
					if errors.Is(err, ErrNoVersion) || (err != nil && strings.Contains(err.Error(), "9.9")) {
						t.Errorf("%s: %v", what, err)
					}
				}
				if tt.versionToo {
					v, err := ReadVersion(root)
					check("ReadVersion", err)
					if v != "" {
						t.Errorf("ReadVersion = %q", v)
					}
				}
				id, err := Identify(root, Options{})
				check("Identify", err)
				if id != (Identity{}) {
					t.Errorf("Identify = %+v", id)
				}
			})
		}
	}
}
