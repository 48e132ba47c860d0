//go:build linux

package sysrefresh

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"tails-backup/internal/treehash"

	"tails-backup/internal/testtool"
)

// mountOver mounts another file system on the folder at, of the kind:
//   - "fuse": bindfs, a FUSE file system showing a private folder. On Tails, udisks mounts
//     the backup's FAT system partition with uid=1000, so amnesia owns every folder of it and
//     may mount FUSE there (fusermount is setuid root): this is the attack;
//   - "tmpfs": a new tmpfs, another device number;
//   - "bind": a bind mount of a private folder of the same file system as the trees here, so
//     the device number is the same and only the mount crossing tells it apart (only root can
//     do this one).
//
// The mount is empty; it is unmounted when the test ends.
func mountOver(t *testing.T, kind, at string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	var argv []string
	switch kind {
	case "fuse":
		testtool.Program(t, "bindfs", "bindfs")
		if _, err := os.Stat("/dev/fuse"); err != nil {
			t.Skipf("no FUSE here: %v", err)
		}
		argv = []string{"bindfs", "-o", "nonempty", t.TempDir(), at}
	case "tmpfs":
		argv = []string{"mount", "-t", "tmpfs", "-o", "size=4m", "tbtest", at}
	case "bind":
		argv = []string{"mount", "--bind", t.TempDir(), at}
	default:
		t.Fatalf("mount kind %q", kind)
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

// TestRefreshOtherFileSystem: a file system mounted on a folder of either system partition is
// never entered: not written into, nothing deleted in it, nothing read from it. The refresh
// stops before it writes anything, with a *MountError naming the folder.
func TestRefreshOtherFileSystem(t *testing.T) {
	tests := []struct {
		name   string
		backup bool   // mounted on the backup's tree, else on the running one
		at     string // where, relative to the root
		files  map[string]string
	}{
		// The refresh would write its bootx64.efi into the mount and delete "keep" there.
		{name: "backup folder the refresh writes into", backup: true, at: "EFI/BOOT",
			files: map[string]string{"bootx64.efi": "not the backup's", "keep": "someone else's file"}},
		// utils/mbr is not on the running system: the refresh would delete it, and so
		// everything in the mount.
		{name: "backup folder the refresh deletes", backup: true, at: "utils/mbr",
			files: map[string]string{"mbr.bin": "someone else's", "sub/deep": "someone else's too"}},
		// A temporary folder left by an interrupted refresh is removed before anything else.
		{name: "backup temporary", backup: true, at: "live/" + TempPrefix + "0badcafe",
			files: map[string]string{"data": "someone else's"}},
		// The version would be read from the other file system, and the new one written there.
		{name: "backup version folder", backup: true, at: ".disk",
			files: map[string]string{"info": "Tails 6.10 - 20241203\n"}},
		// The refresh would copy the other file system's files onto the backup.
		{name: "running folder", backup: false, at: "EFI/debian",
			files: map[string]string{"grub.cfg": "from another file system", "extra": "from another file system"}},
	}
	for _, kind := range []string{"fuse", "tmpfs", "bind"} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				src, dst := makeSource(t), t.TempDir()
				makeBackup(t, dst)
				// Left by an interrupted refresh: not removed either, the refusal comes first.
				writeFile(t, dst, "doc/"+TempPrefix+"12345678", "leftover", 0)
				root := src
				if tt.backup {
					root = dst
				}
				at := filepath.Join(root, tt.at)
				mountOver(t, kind, at)
				for rel, content := range tt.files {
					writeFile(t, at, rel, content, 0)
				}
				mounted, dstBefore := treehash.Of(t, at), treehash.Of(t, dst)

				_, err := Refresh(context.Background(), src, dst, testOpts())
				var me *MountError
				if !errors.As(err, &me) || !errors.Is(err, ErrOtherFileSystem) || me.Path != tt.at || me.Backup != tt.backup {
					t.Errorf("got %v (%#v), want a *MountError for %q, backup %v", err, me, tt.at, tt.backup)
				}
				if after := treehash.Of(t, at); !mapsEqual(mounted, after) {
					t.Errorf("the mounted file system changed:\n%v\n%v", mounted, after)
				}
				if after := treehash.Of(t, dst); !mapsEqual(dstBefore, after) {
					t.Errorf("the backup changed:\n%v\n%v", dstBefore, after)
				}
				if _, err := Plan(src, dst, testOpts()); !errors.Is(err, ErrOtherFileSystem) {
					t.Errorf("Plan: %v, want ErrOtherFileSystem", err)
				}
				if tt.at == ".disk" {
					if _, _, _, err := Check(src, dst, testOpts()); !errors.Is(err, ErrOtherFileSystem) {
						t.Errorf("Check: %v, want ErrOtherFileSystem", err)
					}
				}
			})
		}
	}
}
