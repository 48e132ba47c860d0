package ext4img

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tails-backup/internal/testtool"
)

func TestCreateReformatRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	for _, tool := range []string{"mkfs.ext4", "mount", "losetup"} {
		testtool.Program(t, tool, "e2fsprogs, mount or util-linux")
	}
	dir := t.TempDir()
	ctx := context.Background()
	im, err := Create(ctx, filepath.Join(dir, "x.img"), filepath.Join(dir, "mnt"), "TailsData", 64<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Remove()
	f := filepath.Join(im.MountPoint, "f")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("setfacl", "-m", "u:1000:r", f).CombinedOutput(); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("ACLs on the image: %v %s", err, out)
	}
	if err := im.Reformat(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Fatalf("file survived the reformat: %v", err)
	}
	if err := im.Remove(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("losetup", "-j", im.Path).Output()
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("loop device left: %s", out)
	}
	if _, err := os.Stat(im.Path); !os.IsNotExist(err) {
		t.Errorf("image file left: %v", err)
	}
}
