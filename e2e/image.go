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

// imageKey hashes the inputs of the image: the build script and the package list.
func imageKey(repo string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"e2e/image/build.sh", "e2e/image/packages"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// EnsureImage returns the cached image for the current inputs, building it (debootstrap from
// the machine's own Debian mirror) when it is missing. Concurrent runs wait for one build.
func EnsureImage(ctx context.Context, repo string, log Logger) (Image, error) {
	key, err := imageKey(repo)
	if err != nil {
		return Image{}, err
	}
	cache := filepath.Join(repo, ".cache", "e2e")
	dir := filepath.Join(cache, "image-"+key)
	img := Image{Dir: dir, Root: filepath.Join(dir, "root.img"), Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Image{}, err
	}
	lock, err := os.OpenFile(filepath.Join(cache, "image.lock"), os.O_CREATE|os.O_RDWR, 0o644)
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
	log.Logf("guest image: building %s with debootstrap from %s (a minute or two)", dir, mirror)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(repo, "e2e/image/build.sh"), dir, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("build the guest image: %w: %s", err, out)
	}
	log.Logf("guest image: built in %s", round(time.Since(start)))
	// Images of older inputs are of no more use.
	if old, _ := filepath.Glob(filepath.Join(cache, "image-*")); len(old) > 1 {
		for _, d := range old {
			if d != dir {
				os.RemoveAll(d)
			}
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
	good := func(uri, suites string) bool {
		return strings.HasPrefix(uri, "http") && !strings.Contains(uri, "security") &&
			strings.Contains(uri, "debian") && strings.Contains(" "+suites+" ", " bookworm ")
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
