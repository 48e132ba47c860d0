//go:build linux

package sysrefresh

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
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
	return readVersionNamed(root, mediumRoot, opts)
}

// ReadVersionFD is ReadVersionOpts on the system partition tree open as the directory root,
// which the caller opened and checked and keeps open.
func ReadVersionFD(root int, opts Options) (string, error) {
	return readVersionNamed(root, "", opts)
}

func readVersionNamed(root int, name string, opts Options) (string, error) {
	v, _, err := readVersion(root, opts.withDefaults())
	if err != nil {
		return "", withName(name, err)
	}
	return v, nil
}

// readVersion returns the version and the file it came from.
func readVersion(root int, opts Options) (string, string, error) {
	var problems []string
	for _, f := range opts.VersionFiles {
		b, _, err := readBounded(root, f, versionReadLimit)
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

// Identity tells two system partitions apart.
type Identity struct {
	// Version is the first line of the version file, for people.
	Version string
	// Digest covers the version file, the identity files (absent ones count as absent) and
	// the size of LastFile: it changes with every full release and every incremental upgrade.
	Digest string
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
		b, _, err := readBounded(root, f, identityReadLimit)
		switch {
		case errors.Is(err, unix.ENOENT):
			add(f, []byte("absent"))
		case err != nil:
			return Identity{}, fmt.Errorf("read %s: %w", f, err)
		default:
			add(f, append([]byte("present:"), b...))
		}
	}
	fd, st, err := openFileRel(root, opts.LastFile)
	switch {
	case errors.Is(err, unix.ENOENT):
		add(opts.LastFile, []byte("absent"))
	case err != nil:
		return Identity{}, fmt.Errorf("stat %s: %w", opts.LastFile, err)
	default:
		unix.Close(fd)
		add(opts.LastFile, []byte("size "+strconv.FormatInt(st.Size, 10)))
	}
	return Identity{Version: v, Digest: hex.EncodeToString(h.Sum(nil))}, nil
}

// Check reads the identities of the running system partition src and the backup's dst;
// differ is true when dst needs a refresh. A refresh that was interrupted leaves dst's
// identity files old, so differ stays true until a refresh completes.
func Check(src, dst string, opts Options) (srcID, dstID Identity, differ bool, err error) {
	if srcID, err = Identify(src, opts); err != nil {
		return
	}
	if dstID, err = Identify(dst, opts); err != nil {
		if me := asMountError(err, true); me != nil {
			err = me
		}
		return
	}
	return srcID, dstID, srcID.Digest != dstID.Digest, nil
}
