package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildPayload makes the payload disk of a run: an ext4 image (made without mounting, by
// mkfs.ext4 -d) holding the staging tree of `make install DESTDIR=` built from the working
// tree (static), the guest agent and the project's fake pinentry. The guest installs it at boot
// (e2e-guest install), so a code change needs no new guest image.
func BuildPayload(ctx context.Context, repo, runDir string) (string, error) {
	dir := filepath.Join(runDir, "payload")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	env := append(os.Environ(), "CGO_ENABLED=0")
	steps := [][]string{
		{"make", "-s", "--no-print-directory", "install", "DESTDIR=" + filepath.Join(dir, "stage"), "BIN=" + filepath.Join(runDir, "tails-backup")},
		{"go", "build", "-o", filepath.Join(dir, "e2e-guest"), "./e2e/guest"},
		{"go", "build", "-o", filepath.Join(dir, "fakepinentry"), "./agent/testdata/fakepinentry"},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Dir, cmd.Env = repo, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v: %w: %s", s, err, out)
		}
	}
	img := filepath.Join(runDir, "payload.img")
	os.Remove(img)
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "e2e-payload", "-d", dir, img, "128M").CombinedOutput(); err != nil {
		return "", fmt.Errorf("make the payload disk: %w: %s", err, out)
	}
	return img, nil
}

// sparseFile makes (or empties) a sparse file of size bytes: a blank disk.
func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
