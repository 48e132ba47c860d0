package gnomeshell

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"tails-backup/internal/aptmirror"
	"tails-backup/internal/reporoot"
	"tails-backup/internal/testtool"
)

// Packages are the Debian packages of a test session: gjs serves org.freedesktop.Notifications
// (D-Bus activated; without it the name never appears), pinentry-gnome3 and gcr the passphrase
// prompt, the rest the GTK4/libadwaita windows driven through AT-SPI. .ci/deps test installs the
// same list on the host; the Debian 13 root file system gets it at build time.
var Packages = []string{"gnome-shell", "gjs", "dbus-x11", "libgl1-mesa-dri", "pinentry-gnome3", "gcr",
	"python3-gi", "gir1.2-gtk-4.0", "gir1.2-adw-1", "python3-pyatspi", "at-spi2-core"}

// languagePackages are what the Debian 13 root adds to Packages so that a session can run in
// another language (StartIn): locales, whose locale-gen build-trixie.sh runs for Locales (without
// a generated locale, setlocale fails and GTK and the shell stay in English, left to right), and
// the Noto fonts, which have the Arabic glyphs (without them Arabic shows as boxes).
var languagePackages = []string{"locales", "fonts-noto-core"}

//go:embed build-trixie.sh
var buildTrixie []byte

// trixieUID is the uid (and gid) of tbtest in the Debian 13 root file system.
const trixieUID = 1000

// buildTimeout bounds the build of the Debian 13 root file system (about 2.5 minutes when the
// mirror answers).
const buildTimeout = 20 * time.Minute

// trixieRoot returns the Debian 13 root file system under the repository's .cache, building it
// when it is missing or was built from another package list or script (its stamp differs).
// The caller holds a shared lock on it while its session runs, so that no other test process
// rebuilds it underneath (a build takes the lock exclusively); release it with the returned func.
func trixieRoot(t testing.TB) (string, func()) {
	t.Helper()
	testtool.Program(t, "debootstrap", "debootstrap")
	testtool.Program(t, "unshare", "util-linux")
	repo, err := reporoot.Find()
	if err != nil {
		t.Fatalf("gnomeshell: %v", err)
	}
	cache := filepath.Join(repo, ".cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("gnomeshell: %v", err)
	}
	root := filepath.Join(cache, "gnome-trixie")
	stampFile := root + ".stamp"
	lock, err := os.OpenFile(root+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("gnomeshell: %v", err)
	}
	unlock := func() { _ = lock.Close() } // closing the file releases the lock
	flock := func(how int) {
		if err := syscall.Flock(int(lock.Fd()), how); err != nil {
			unlock()
			t.Fatalf("gnomeshell: lock %s: %v", lock.Name(), err)
		}
	}
	want := stamp()
	built := func() bool { got, err := os.ReadFile(stampFile); return err == nil && string(got) == want }
	// Sessions share the root (a shared lock each); a build takes it alone.
	flock(syscall.LOCK_SH)
	if built() {
		return root, unlock
	}
	flock(syscall.LOCK_EX)
	if !built() { // another process may have built it meanwhile
		if err := build(t, root, stampFile, want); err != nil {
			unlock()
			t.Fatalf("gnomeshell: build the Debian 13 root file system of GNOME Shell 48 in %s: %v", root, err)
		}
	}
	flock(syscall.LOCK_SH)
	return root, unlock
}

// trixiePackages are the packages of the Debian 13 root.
func trixiePackages() []string { return append(slices.Clone(Packages), languagePackages...) }

// stamp identifies what the root file system is built from.
func stamp() string {
	h := sha256.New()
	h.Write(buildTrixie)
	fmt.Fprintf(h, "\x00%s\n", strings.Join(trixiePackages(), " "))
	return hex.EncodeToString(h.Sum(nil)) + "\n"
}

func build(t testing.TB, root, stampFile, want string) error {
	t.Helper()
	mirror, err := aptmirror.Debian(context.Background())
	if err != nil {
		return err
	}
	t.Logf("gnomeshell: building the Debian 13 root file system in %s from %s (about 3 minutes, once)", root, mirror)
	start := time.Now()
	_ = os.Remove(stampFile)
	tmp := root + ".tmp"
	for _, d := range []string{tmp, root} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	script := root + ".build.sh"
	if err := os.WriteFile(script, buildTrixie, 0o700); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", script, tmp, mirror}, trixiePackages()...)
	out, err := exec.CommandContext(ctx, "unshare", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", script, err, out)
	}
	if err := os.Rename(tmp, root); err != nil {
		return err
	}
	t.Logf("gnomeshell: Debian 13 root file system built in %v", time.Since(start).Round(time.Second))
	return os.WriteFile(stampFile, []byte(want), 0o644)
}
