package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Image is the cached guest image: a raw ext4 root file system and Debian's kernel and
// initramfs from its /boot.
type Image struct {
	Dir, Root, Kernel, Initrd string
}

// RepoRoot finds the repository root (the folder with go.mod) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the tails-backup repository (no go.mod above the working directory)")
		}
		dir = parent
	}
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
	mirror, err := DebianMirror()
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

// DebianMirror reads the Debian mirror of this machine's apt configuration: the first "deb"
// source of the main archive (not the security archive), from /etc/apt/sources.list or
// /etc/apt/sources.list.d/*.list and *.sources.
func DebianMirror() (string, error) {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	for _, f := range files {
		if uri := mirrorIn(f); uri != "" {
			return uri, nil
		}
	}
	return "", errors.New("no Debian mirror found in the apt configuration (/etc/apt/sources.list, /etc/apt/sources.list.d/)")
}

// mirrorIn returns the first main-archive Debian mirror of a one-line (.list) or deb822
// (.sources) apt file.
func mirrorIn(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// The same mirror serves both suites of the legs: the machine's own suite is enough.
	good := func(uri, suites string) bool {
		if !strings.HasPrefix(uri, "http") || strings.Contains(uri, "security") || !strings.Contains(uri, "debian") {
			return false
		}
		for _, l := range legs() {
			if strings.Contains(" "+suites+" ", " "+l.Suite+" ") {
				return true
			}
		}
		return false
	}
	sc := bufio.NewScanner(f)
	if strings.HasSuffix(path, ".sources") {
		var types, uris, suites string
		flush := func() string {
			defer func() { types, uris, suites = "", "", "" }()
			if !strings.Contains(" "+types+" ", " deb ") {
				return ""
			}
			for _, u := range strings.Fields(uris) {
				if good(u, suites) {
					return strings.TrimRight(u, "/")
				}
			}
			return ""
		}
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				if u := flush(); u != "" {
					return u
				}
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "types":
				types = strings.TrimSpace(v)
			case "uris":
				uris = strings.TrimSpace(v)
			case "suites":
				suites = strings.TrimSpace(v)
			}
		}
		return flush()
	}
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		rest := fields[1:]
		if strings.HasPrefix(rest[0], "[") { // options
			for len(rest) > 0 && !strings.HasSuffix(rest[0], "]") {
				rest = rest[1:]
			}
			if len(rest) > 0 {
				rest = rest[1:]
			}
		}
		if len(rest) >= 2 && good(rest[0], rest[1]) {
			return strings.TrimRight(rest[0], "/")
		}
	}
	return ""
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
