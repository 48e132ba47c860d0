package treegen

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Manifest lists every entry under root, root included as ".", one line each in lexical order:
// path, type, mode, owner, size, mtime in nanoseconds, symlink target, xattrs (ACLs included) with a
// digest of their values, a digest of regular files' content, and for the second and later names of
// a hard-linked file the first name. Two trees with equal manifests are equal for the mirror's
// purposes, whatever their inode numbers; directory sizes and atimes are left out as they depend on
// history.
func Manifest(root string) ([]string, error) {
	var lines []string
	firstName := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		line, err := manifestLine(p, rel, firstName)
		if err != nil {
			return err
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", root, err)
	}
	return lines, nil
}

func manifestLine(p, rel string, firstName map[uint64]string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "", fmt.Errorf("lstat %s: %w", p, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q %s %04o %d:%d mtime=%d", rel, typeName(st.Mode), st.Mode&0o7777, st.Uid, st.Gid,
		st.Mtim.Nano())
	xa, err := xattrDigest(p)
	if err != nil {
		return "", err
	}
	b.WriteString(xa)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " -> %q", target)
	case unix.S_IFREG:
		if first, ok := firstName[st.Ino]; ok {
			fmt.Fprintf(&b, " hardlink=%q", first)
			return b.String(), nil
		}
		if st.Nlink > 1 {
			firstName[st.Ino] = rel
		}
		sum, err := fileDigest(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, " size=%d nlink=%d sha256=%s", st.Size, st.Nlink, sum)
	}
	return b.String(), nil
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFREG:
		return "file"
	case unix.S_IFLNK:
		return "symlink"
	default:
		return fmt.Sprintf("type%o", mode&unix.S_IFMT)
	}
}

// xattrDigest lists the xattr names of p (not following symlinks) with a short digest of each value.
func xattrDigest(p string) (string, error) {
	names, err := listXattrs(p)
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		v, err := getXattr(p, n)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(v)
		fmt.Fprintf(&b, " %s=%x", n, sum[:6])
	}
	return b.String(), nil
}

// listXattrs returns the xattr names of p, not following a final symlink.
func listXattrs(p string) ([]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if err != nil {
			err = fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		return nil, err
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var names []string
	for _, n := range strings.Split(string(buf[:size]), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

// getXattr returns one xattr value of p, not following a final symlink.
func getXattr(p, name string) ([]byte, error) {
	size, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
	}
	buf := make([]byte, size)
	size, err = unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
	}
	return buf[:size], nil
}

func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12]), nil
}
