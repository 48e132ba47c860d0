//go:build linux

package sysrefresh

import (
	"errors"
	"io"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Every tree access below goes through directory descriptors and single path components
// opened with O_NOFOLLOW, so no path is ever resolved through a symlink of the tree, on
// either side: the destination is a hostile stick, and reading its .disk/info through a
// planted symlink must not leak another file's first line.

func retry(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// openRoot opens the root directory of a tree. The root path itself comes from the caller
// (a mount point it validated); its last component must not be a symlink.
func openRoot(root string) (int, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}

func openDirAt(dirfd int, name string) (int, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}

// openDirRel opens the directory rel ("" or "." for root itself) beneath root, one component
// at a time, refusing symlinks. The caller closes the result.
func openDirRel(root int, rel string) (int, error) {
	fd, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	if rel == "" || rel == "." {
		return fd, nil
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." || c == ".." {
			unix.Close(fd)
			return -1, unix.EINVAL
		}
		next, err := openDirAt(fd, c)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// openFileRel opens the regular file rel beneath root for reading and returns it with its stat.
func openFileRel(root int, rel string) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	dir, name := path.Split(rel)
	dfd, err := openDirRel(root, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return -1, st, err
	}
	defer unix.Close(dfd)
	return openFileAt(dfd, name)
}

func openFileAt(dirfd int, name string) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	if !isReg(&st) {
		unix.Close(fd)
		return -1, st, unix.EINVAL
	}
	return fd, st, nil
}

func isReg(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }
func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	return retry(func() error { return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW) })
}

// readNames returns the sorted names in the directory open as fd.
func readNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, err
	}
	buf := make([]byte, 32<<10)
	var names []string
	for {
		var n int
		err := retry(func() (err error) {
			n, err = unix.ReadDirent(fd, buf)
			return err
		})
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}

// fdReader reads a descriptor.
type fdReader int

func (f fdReader) Read(p []byte) (int, error) {
	var n int
	err := retry(func() (err error) {
		n, err = unix.Read(int(f), p)
		return err
	})
	if err != nil {
		return 0, err
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// readBounded reads at most limit bytes of the regular file rel beneath root.
func readBounded(root int, rel string, limit int64) ([]byte, unix.Stat_t, error) {
	fd, st, err := openFileRel(root, rel)
	if err != nil {
		return nil, st, err
	}
	defer unix.Close(fd)
	b, err := io.ReadAll(io.LimitReader(fdReader(fd), limit))
	return b, st, err
}

// removeAllAt removes name inside dirfd, and everything under it if it is a directory,
// without following any symlink.
func removeAllAt(dirfd int, name string) error {
	var st unix.Stat_t
	if err := lstatAt(dirfd, name, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if !isDir(&st) {
		return ignoreENOENT(unix.Unlinkat(dirfd, name, 0))
	}
	fd, err := openDirAt(dirfd, name)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return ignoreENOENT(unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR))
}

func ignoreENOENT(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
