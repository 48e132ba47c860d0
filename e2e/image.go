package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/internal/aptmirror"
)

// Image is the cached guest image: a raw ext4 root file system and Debian's kernel and
// initramfs from its /boot.
type Image struct {
	Dir, Root, Kernel, Initrd string
}

// imageKey hashes the inputs of the image of a Debian suite: the suite, the build script and
// the package lists.
func imageKey(repo, suite string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "suite %s\n", suite)
	for _, f := range []string{"e2e/image/build.sh", "e2e/image/packages", "e2e/image/packages." + suite, "e2e/image/packages.apt"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// EnsureImage returns the cached image of a leg for the current inputs, building it
// (debootstrap of the leg's suite from the machine's own Debian mirror) when it is missing.
// Concurrent runs of a leg wait for one build; the legs build theirs at the same time. The
// images of both legs are kept side by side.
func EnsureImage(ctx context.Context, repo string, leg Leg, log Logger) (Image, error) {
	key, err := imageKey(repo, leg.Suite)
	if err != nil {
		return Image{}, err
	}
	cache := filepath.Join(repo, ".cache", "e2e")
	prefix := "image-" + leg.Suite + "-"
	dir := filepath.Join(cache, prefix+key)
	img := Image{Dir: dir, Root: filepath.Join(dir, "root.img"), Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Image{}, err
	}
	lock, err := os.OpenFile(filepath.Join(cache, "image-"+leg.Suite+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Image{}, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return Image{}, err
	}
	if _, err := os.Stat(img.Root); err == nil {
		log.Logf("guest image: cached in %s", dir)
		return img, nil
	}
	mirror, err := aptmirror.Debian(ctx)
	if err != nil {
		return Image{}, err
	}
	log.Logf("guest image: building %s with debootstrap of Debian %s from %s (a few minutes)", dir, leg.Suite, mirror)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(repo, "e2e/image/build.sh"), dir, mirror, leg.Suite, strconv.Itoa(leg.Tails))
	if out, err := cmd.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("build the guest image: %w: %s", err, out)
	}
	log.Logf("guest image: built in %s", round(time.Since(start)))
	// Images of older inputs of this suite are of no more use (nor those of before the legs).
	old, _ := filepath.Glob(filepath.Join(cache, prefix+"*"))
	if legacy, _ := filepath.Glob(filepath.Join(cache, "image-"+strings.Repeat("[0-9a-f]", 16))); len(legacy) > 0 {
		old = append(old, legacy...)
	}
	for _, d := range old {
		if d != dir {
			os.RemoveAll(d)
		}
	}
	return img, nil
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
