//go:build linux

package sysident

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

const (
	versionReadLimit  = 4 << 10  // bytes read from a version file
	maxVersionLen     = 200      // bytes of its first line
	identityReadLimit = 64 << 10 // bytes hashed from an identity file
)

// ReadVersion returns the Tails version of the system partition tree at mediumRoot: the first
// line of the first of DefaultVersionFiles present in it.
func ReadVersion(mediumRoot string) (string, error) {
	return ReadVersionOpts(mediumRoot, Options{})
}

// ReadVersionOpts is ReadVersion with the candidate files of opts.VersionFiles.
func ReadVersionOpts(mediumRoot string, opts Options) (string, error) {
	root, err := openRoot(mediumRoot)
	if err != nil {
		return "", fmt.Errorf("open the system partition %s: %w", mediumRoot, err)
	}
	defer unix.Close(root)
	v, _, err := readVersion(root, opts.withDefaults())
	if err != nil {
		return "", fmt.Errorf("%s: %w", mediumRoot, err)
	}
	return v, nil
}

// ReadVersionFD is ReadVersionOpts on the system partition tree open as the directory root,
// which the caller opened and checked and keeps open.
func ReadVersionFD(root int, opts Options) (string, error) {
	v, _, err := readVersion(root, opts.withDefaults())
	return v, err
}

// readVersion returns the version and the file it came from.
func readVersion(root int, opts Options) (string, string, error) {
	var problems []string
	for _, f := range opts.VersionFiles {
		b, err := readBounded(root, f, versionReadLimit)
		if errors.Is(err, ErrOtherFileSystem) {
			return "", "", err // not a missing version: something is mounted in the way
		}
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			}
			continue
		}
		v, err := parseVersion(b)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		return v, f, nil
	}
	if len(problems) > 0 {
		return "", "", fmt.Errorf("%w (%s)", ErrNoVersion, strings.Join(problems, "; "))
	}
	return "", "", fmt.Errorf("%w (looked for %s)", ErrNoVersion, strings.Join(opts.VersionFiles, ", "))
}

// parseVersion takes the first line, trimmed; it must be non-empty, valid UTF-8, printable
// and at most maxVersionLen bytes (it ends up in notifications and the marker).
func parseVersion(b []byte) (string, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	} else if len(b) >= versionReadLimit {
		return "", errors.New("first line too long")
	}
	s := strings.TrimSpace(string(b))
	switch {
	case s == "":
		return "", errors.New("empty first line")
	case len(s) > maxVersionLen:
		return "", fmt.Errorf("first line longer than %d bytes", maxVersionLen)
	case !utf8.ValidString(s):
		return "", errors.New("first line is not UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "", errors.New("first line has control characters")
	}
	return s, nil
}

// Identify returns the identity of the system partition tree at root.
func Identify(root string, opts Options) (Identity, error) {
	fd, err := openRoot(root)
	if err != nil {
		return Identity{}, fmt.Errorf("open the system partition %s: %w", root, err)
	}
	defer unix.Close(fd)
	id, err := identify(fd, opts.withDefaults())
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", root, err)
	}
	return id, nil
}

// IdentifyFD is Identify on the system partition tree open as the directory root, which the
// caller opened and checked and keeps open.
func IdentifyFD(root int, opts Options) (Identity, error) {
	return identify(root, opts.withDefaults())
}

func identify(root int, opts Options) (Identity, error) {
	v, vf, err := readVersion(root, opts)
	if err != nil {
		return Identity{}, err
	}
	h := sha256.New()
	add := func(name string, b []byte) {
		// Length-prefixed fields: no two different inputs hash alike.
		h.Write([]byte(strconv.Itoa(len(name)) + ":" + name + strconv.Itoa(len(b)) + ":"))
		h.Write(b)
	}
	for _, f := range append([]string{vf}, opts.IdentityFiles...) {
		b, err := readBounded(root, f, identityReadLimit)
		switch {
		case errors.Is(err, unix.ENOENT):
			add(f, []byte("absent"))
		case err != nil:
			return Identity{}, fmt.Errorf("read %s: %w", f, err)
		default:
			add(f, append([]byte("present:"), b...))
		}
	}
	f, st, err := openFile(root, opts.LastFile)
	switch {
	case errors.Is(err, unix.ENOENT):
		add(opts.LastFile, []byte("absent"))
	case err != nil:
		return Identity{}, fmt.Errorf("stat %s: %w", opts.LastFile, err)
	default:
		f.Close()
		add(opts.LastFile, []byte("size "+strconv.FormatInt(st.Size(), 10)))
	}
	return Identity{Version: v, Digest: hex.EncodeToString(h.Sum(nil))}, nil
}

// openRoot opens the root directory of a tree at path, for the functions that take paths. The
// path itself comes from the caller (a mount point it validated) and may go through symlinks
// (/lib is one, to usr/lib, on Tails: the running system partition is /lib/live/mount/medium);
// its last component must not be one.
func openRoot(root string) (int, error) {
	for {
		fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openFile opens the regular file rel beneath root for reading, with beneath.Open: no
// component is a symlink nor leaves root, none is on another file system, so that reading a
// hostile backup's .disk/info through a planted symlink cannot leak another file's first line,
// and a file system mounted in the tree is never asked anything. A mount met on the way is a
// *MountError naming the entry mounted on. Anything but a regular file is EINVAL (O_NONBLOCK:
// a FIFO does not block the open).
func openFile(root int, rel string) (*os.File, os.FileInfo, error) {
	fd, err := beneath.Open(root, rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if errors.Is(err, unix.EXDEV) {
		return nil, nil, mountOn(root, rel)
	}
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, unix.EINVAL
	}
	return f, st, nil
}

// mountOn returns the *MountError for rel, whose opening beneath root crossed a mount (EXDEV):
// it names the first component of rel that is on another file system, found by opening each
// leading part of rel in turn (O_PATH: nothing mounted is read), or rel itself when none is
// any more.
func mountOn(root int, rel string) error {
	cs := strings.Split(rel, "/")
	for i := range cs {
		p := strings.Join(cs[:i+1], "/")
		fd, err := beneath.Open(root, p, unix.O_PATH)
		if errors.Is(err, unix.EXDEV) {
			return &MountError{Path: p}
		}
		if err == nil {
			unix.Close(fd)
		}
	}
	return &MountError{Path: rel}
}

// readBounded reads at most limit bytes of the regular file rel beneath root (openFile).
func readBounded(root int, rel string, limit int64) ([]byte, error) {
	f, _, err := openFile(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
