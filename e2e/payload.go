package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildPayload makes the payload disk of a run: an ext4 image (made without mounting, by
// mkfs.ext4 -d) holding the Debian package tails-backup built from the working tree by
// `make deb`'s script (the package a Tails user installs, so that the package is what the
// scenarios test), the guest agent and the project's fake pinentry. The guest installs them at
// boot (e2e-guest install: dpkg -i), so a code change needs no new guest image. The package
// tails-backup-debian-extras is built too but not installed: the guest plays Tails, which has
// polkit and udev rules of its own.
func BuildPayload(ctx context.Context, repo, runDir string) (string, error) {
	dir := filepath.Join(runDir, "payload")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dist := filepath.Join(runDir, "dist")
	steps := []struct {
		argv []string
		env  []string
	}{
		// lintian runs in `make test` (TestDeb); here only the package matters.
		{[]string{"./.ci/deb", dist}, []string{"DEB_LINTIAN=no"}},
		// The test programs are static: they run on either Debian of the guest.
		{[]string{"go", "build", "-o", filepath.Join(dir, "e2e-guest"), "./e2e/guest"}, []string{"CGO_ENABLED=0"}},
		{[]string{"go", "build", "-o", filepath.Join(dir, "fakepinentry"), "./pinentry/pinentrytest/testdata/fakepinentry"}, []string{"CGO_ENABLED=0"}},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
		cmd.Dir, cmd.Env = repo, append(os.Environ(), s.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v: %w: %s", s.argv, err, out)
		}
	}
	debs, err := filepath.Glob(filepath.Join(dist, "tails-backup_*.deb"))
	if err != nil || len(debs) != 1 {
		return "", fmt.Errorf("make deb left %d packages tails-backup_*.deb in %s, want 1", len(debs), dist)
	}
	if err := os.Link(debs[0], filepath.Join(dir, filepath.Base(debs[0]))); err != nil {
		return "", err
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
