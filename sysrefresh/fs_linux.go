//go:build linux

package sysrefresh

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// Every tree access below goes through directory descriptors and single path components
// opened with openat2 RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV (beneath.Open), so no path is ever
// resolved through a symlink of the tree nor into another file system mounted in it, on either
// side: the destination is a hostile stick, and reading its .disk/info through a planted
// symlink must not leak another file's first line. A mount met is EXDEV, which the callers
// turn into a *MountError naming the entry (pathErr): on Tails, amnesia owns every folder of
// the backup's FAT system partition (udisks mounts it with uid=1000) and may mount FUSE on one.

func retry(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// reopenRoot opens the tree's own descriptor of the root directory open as fd: "." beneath fd,
// a new open file description of the same directory (the caller's offset is left as it is),
// which can be listed even when fd is O_PATH.
func reopenRoot(fd int) (int, error) {
	return beneath.Open(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY)
}

// named is " name" for a message that names a root, or "" when the caller gave only its
// descriptor.
func named(name string) string {
	if name == "" {
		return ""
	}
	return " " + name
}

// openRoot opens the root directory of a tree at path, for the functions that take paths. The
// path itself comes from the caller (a mount point it validated); its last component must not
// be a symlink.
func openRoot(root string) (int, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}

// openDirAt opens the directory name inside dirfd, refusing a symlink and a mount point
// (EXDEV, beneath.Open).
func openDirAt(dirfd int, name string) (int, error) {
	return beneath.Open(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
}

// openDirRel opens the directory rel ("" or "." for root itself) beneath root, one component
// at a time, refusing symlinks; a mount met on the way is a *MountError naming the component
// (its Backup unset: pathErr sets it). The caller closes the result.
func openDirRel(root int, rel string) (int, error) {
	fd, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	if rel == "" || rel == "." {
		return fd, nil
	}
	cs := strings.Split(rel, "/")
	for i, c := range cs {
		if c == "" || c == "." || c == ".." {
			unix.Close(fd)
			return -1, unix.EINVAL
		}
		next, err := openDirAt(fd, c)
		unix.Close(fd)
		if errors.Is(err, unix.EXDEV) {
			return -1, &MountError{Path: strings.Join(cs[:i+1], "/")}
		}
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// openFileRel opens the regular file rel beneath root for reading and returns it with its
// stat; a mount met is a *MountError, as in openDirRel.
func openFileRel(root int, rel string) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	dir, name := path.Split(rel)
	dfd, err := openDirRel(root, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return -1, st, err
	}
	defer unix.Close(dfd)
	fd, st, err := openFileAt(dfd, name)
	if errors.Is(err, unix.EXDEV) {
		return -1, st, &MountError{Path: rel}
	}
	return fd, st, err
}

func openFileAt(dirfd int, name string) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := beneath.Open(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK)
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

// lstatAt is fstatat(AT_SYMLINK_NOFOLLOW) that refuses a mount point with EXDEV: through an
// O_PATH descriptor opened by beneath.Open, so that a FUSE file system mounted at name is never
// asked for its attributes (its daemon could make the call hang).
func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	fd, err := beneath.Open(dirfd, name, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fstat(fd, st)
}

// asMountError returns the *MountError in err, if any, as one of the backup's tree or of the
// running one; nil if err is not one.
func asMountError(err error, backup bool) *MountError {
	var me *MountError
	if !errors.As(err, &me) {
		return nil
	}
	return &MountError{Backup: backup, Path: me.Path}
}

// pathErr describes err, met at the entry p of the running tree or of the backup's: a mount
// (EXDEV, or a *MountError naming an entry on the way to p) is a *MountError of that tree,
// anything else "what the backup's "p": err".
func pathErr(backup bool, what, p string, err error) error {
	if me := asMountError(err, backup); me != nil {
		return me
	}
	switch {
	case errors.Is(err, unix.EXDEV):
		return &MountError{Backup: backup, Path: p}
	case backup:
		return fmt.Errorf("%s the backup's %q: %w", what, p, err)
	}
	return fmt.Errorf("%s the running system partition's %q: %w", what, p, err)
}

// readNames returns the sorted names in the directory open as fd.
func readNames(fd int) ([]string, error) {
	names, _, err := beneath.ReadNames(fd, nil, nil)
	return names, err
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

// removeAllAt removes name inside dirfd, the backup's entry rel, and everything under it if it
// is a directory, without following any symlink. A mount met, at rel or below, stops it with
// a *MountError before anything in that mount is removed (what came before it in the walk
// is removed).
func removeAllAt(dirfd int, name, rel string) error {
	var st unix.Stat_t
	if err := lstatAt(dirfd, name, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return pathErr(true, "stat", rel, err)
	}
	if !isDir(&st) {
		return ignoreENOENT(unix.Unlinkat(dirfd, name, 0))
	}
	if depthOf(rel) > MaxDepth {
		// What the scan before the writes saw was bounded; amnesia may nest more since.
		return &LimitError{Backup: true, Path: rel, Depth: true}
	}
	fd, err := openDirAt(dirfd, name)
	if err != nil {
		return pathErr(true, "open", rel, err)
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n, rel+"/"+n); err != nil {
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
