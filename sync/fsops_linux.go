//go:build linux

package sync

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// Every destination operation below takes a directory file descriptor and a single path
// component, or a file descriptor, so no path is ever resolved through a destination symlink.
// Metadata is written through O_PATH descriptors and their /proc/self/fd magic links
// (beneath.FDPath), which reach the very inode that was opened (a symlink stays a symlink: see
// TestProcFDActsOnSymlink). Opening a directory entry, a path beneath a root and listing a
// directory are in internal/beneath.

func isDir(st *unix.Stat_t) bool     { return st.Mode&unix.S_IFMT == unix.S_IFDIR }
func isReg(st *unix.Stat_t) bool     { return st.Mode&unix.S_IFMT == unix.S_IFREG }
func isSymlink(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFLNK }
func sameType(a, b *unix.Stat_t) bool {
	return a.Mode&unix.S_IFMT == b.Mode&unix.S_IFMT
}
func sameInode(a, b *unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// allocated is the space a file's data takes on disk, which is what a sparse copy needs.
func allocated(st *unix.Stat_t) int64 {
	if a := st.Blocks * 512; a < st.Size {
		return a
	}
	return st.Size
}

func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
	}
}

// openPathAt opens name inside dirfd as an O_PATH descriptor, refusing to follow a symlink.
func openPathAt(dirfd int, name string) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}

// openFileAt opens the regular file name inside dirfd for reading. O_NONBLOCK keeps a FIFO that
// replaced the file in the meantime from blocking; the caller checks the type with fstat.
func openFileAt(dirfd int, name string) (int, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
		if err == unix.EPERM { // O_NOATIME needs ownership or CAP_FOWNER
			fd, err = unix.Openat(dirfd, name, flags, 0)
		}
		return err
	})
	return fd, err
}

func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	return ignoringEINTR(func() error {
		return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
	})
}

func fstat(fd int, st *unix.Stat_t) error {
	return ignoringEINTR(func() error { return unix.Fstat(fd, st) })
}

// readlinkAt returns the exact bytes of the symlink name inside dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Readlinkat(dirfd, name, buf)
			return err
		})
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// xattr is one extended attribute; POSIX ACLs are the system.posix_acl_* ones.
type xattr struct {
	name  string
	value []byte
}

// xattrReader lists and reads the attributes of an inode: the entry name of the directory dirfd
// with listxattrat/getxattrat (Linux 6.13+), or else the inode a path names, follow selecting
// the non-l system calls, for /proc/self/fd paths.
type xattrReader struct {
	path   string
	follow bool
	dirfd  int
	name   string
	at     bool
	fd     int
	byFD   bool // flistxattr/fgetxattr on fd, an open (not O_PATH) descriptor
}

// xattrsAt reads the xattrs of the entry name of the directory dirfd without following it:
// with the *xattrat system calls where the kernel has them, which resolve a single name, and
// otherwise through the /proc/self/fd path of the directory, which costs about three times as
// much. noAt records that the kernel lacks them.
func xattrsAt(dirfd int, name string, noAt *atomic.Bool) ([]xattr, error) {
	if !noAt.Load() {
		x, err := readXattrs(xattrReader{dirfd: dirfd, name: name, at: true})
		if err != unix.ENOSYS {
			return x, err
		}
		noAt.Store(true)
	}
	return readXattrs(xattrReader{path: beneath.AtPath(dirfd, name)})
}

func (x xattrReader) list(buf []byte) (int, error) {
	switch {
	case x.byFD:
		return unix.Flistxattr(x.fd, buf)
	case x.at:
		return listxattrat(x.dirfd, x.name, buf)
	case x.follow:
		return unix.Listxattr(x.path, buf)
	}
	return unix.Llistxattr(x.path, buf)
}

func (x xattrReader) get(attr string, buf []byte) (int, error) {
	switch {
	case x.byFD:
		return unix.Fgetxattr(x.fd, attr, buf)
	case x.at:
		return getxattrat(x.dirfd, x.name, attr, buf)
	case x.follow:
		return unix.Getxattr(x.path, attr, buf)
	}
	return unix.Lgetxattr(x.path, attr, buf)
}

// System call numbers of listxattrat and getxattrat (Linux 6.13), the same on every
// architecture that uses the generic table and on x86-64.
const (
	sysGetxattrat  = 464
	sysListxattrat = 465
)

func listxattrat(dirfd int, name string, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	var bp unsafe.Pointer
	if len(buf) > 0 {
		bp = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.Syscall6(sysListxattrat, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(bp), uintptr(len(buf)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// xattrArgs is struct xattr_args of getxattrat(2).
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

func getxattrat(dirfd int, name, attr string, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return 0, err
	}
	args := xattrArgs{size: uint32(len(buf))}
	if len(buf) > 0 {
		args.value = uint64(uintptr(unsafe.Pointer(&buf[0])))
	}
	n, _, errno := unix.Syscall6(sysGetxattrat, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// readXattrs returns every attribute of the inode, sorted by name. A file system without
// xattr support has none.
func readXattrs(x xattrReader) ([]xattr, error) {
	var stack [512]byte
	buf := stack[:]
	var n int
	for {
		err := ignoringEINTR(func() (err error) {
			n, err = x.list(buf)
			return err
		})
		if err == unix.ERANGE {
			size, err := x.list(nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, size+64)
			continue
		}
		if err == unix.ENOTSUP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if n == 0 {
		return nil, nil
	}
	names := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
	out := make([]xattr, 0, len(names))
	val := make([]byte, 256)
	for _, name := range names {
		if name == "" {
			continue
		}
		for {
			var m int
			err := ignoringEINTR(func() (err error) {
				m, err = x.get(name, val)
				return err
			})
			if err == unix.ERANGE {
				size, err := x.get(name, nil)
				if err != nil {
					return nil, err
				}
				val = make([]byte, size+64)
				continue
			}
			if err == unix.ENODATA { // removed since it was listed
				break
			}
			if err != nil {
				return nil, err
			}
			out = append(out, xattr{name: name, value: bytes.Clone(val[:m])})
			break
		}
	}
	slices.SortFunc(out, func(a, b xattr) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

func xattrsEqual(a, b []xattr) bool {
	return slices.EqualFunc(a, b, func(x, y xattr) bool {
		return x.name == y.name && bytes.Equal(x.value, y.value)
	})
}

// fdXattrs reads the xattrs of the inode open as fd: with flistxattr/fgetxattr, which resolve
// no path, unless fd is an O_PATH descriptor, which they refuse with EBADF: then through its
// /proc/self/fd magic link, which reaches the very inode (a symlink stays a symlink).
func fdXattrs(fd int) ([]xattr, error) {
	x, err := readXattrs(xattrReader{fd: fd, byFD: true})
	if err == unix.EBADF {
		return readXattrs(xattrReader{path: beneath.FDPath(fd), follow: true})
	}
	return x, err
}

// regularXattrs reads the xattrs of the regular file name of the directory dirfd, which lstat
// found to be a regular file. Without the *xattrat system calls (Linux 6.12, Tails' kernel), an
// open, flistxattr and close cost about 60% of one listxattr through the /proc/self/fd path of
// the directory (BenchmarkXattrPaths in xattr_bench_test.go); with them, listxattrat alone is cheaper. The open is the
// one contentEqual makes (O_NOFOLLOW, O_NONBLOCK: a symlink or FIFO put there since the lstat is
// not followed nor waited for); a name that cannot be opened so is read the usual way.
func regularXattrs(dirfd int, name string, noAt *atomic.Bool) ([]xattr, error) {
	if !noAt.Load() {
		return xattrsAt(dirfd, name, noAt)
	}
	fd, err := openFileAt(dirfd, name)
	if err != nil {
		return xattrsAt(dirfd, name, noAt)
	}
	defer unix.Close(fd)
	return readXattrs(xattrReader{fd: fd, byFD: true})
}

// inode is a destination inode whose metadata is written: through its descriptor fd when
// that is an open file or directory (fsetxattr, fchmod, futimens resolve no path), otherwise
// (an O_PATH descriptor, for a symlink or an entry compared but not opened) through its
// /proc/self/fd magic link.
type inode struct {
	fd     int
	opened bool
}

func newInode(fd int) inode {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return inode{fd: fd, opened: err == nil && fl&unix.O_PATH == 0}
}

func (n inode) xattrs() ([]xattr, error) {
	if n.opened {
		return readXattrs(xattrReader{fd: n.fd, byFD: true})
	}
	return readXattrs(xattrReader{path: beneath.FDPath(n.fd), follow: true})
}

func (n inode) removexattr(name string) error {
	if n.opened {
		return unix.Fremovexattr(n.fd, name)
	}
	return unix.Removexattr(beneath.FDPath(n.fd), name)
}

func (n inode) setxattr(name string, value []byte) error {
	if n.opened {
		return unix.Fsetxattr(n.fd, name, value, 0)
	}
	return unix.Setxattr(beneath.FDPath(n.fd), name, value, 0)
}

func (n inode) chmod(mode uint32) error {
	if n.opened {
		return unix.Fchmod(n.fd, mode)
	}
	return unix.Chmod(beneath.FDPath(n.fd), mode)
}

func (n inode) setMtime(mtime unix.Timespec) error {
	if n.opened {
		return beneath.Futimens(n.fd, [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtime})
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, beneath.FDPath(n.fd), []unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtime}, 0)
}

// writeXattrs makes the attributes of the inode exactly want, given that it has have now;
// changed tells whether it set or removed any.
func writeXattrs(n inode, want, have []xattr) (changed bool, err error) {
	for _, h := range have {
		if !slices.ContainsFunc(want, func(w xattr) bool { return w.name == h.name }) {
			err := ignoringEINTR(func() error { return n.removexattr(h.name) })
			if err != nil && err != unix.ENODATA {
				return changed, &opError{op: "removexattr " + h.name, err: err}
			}
			changed = true
		}
	}
	for _, w := range want {
		i := slices.IndexFunc(have, func(h xattr) bool { return h.name == w.name })
		if i >= 0 && bytes.Equal(have[i].value, w.value) {
			continue
		}
		if err := ignoringEINTR(func() error { return n.setxattr(w.name, w.value) }); err != nil {
			return changed, &opError{op: "setxattr " + w.name, err: err}
		}
		changed = true
	}
	return changed, nil
}

// opError names the system call that failed on the destination.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// readError marks a failure to read the source, which is reported for that file only.
type readError struct{ err error }

func (e *readError) Error() string { return "read: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// isNoSpace tells whether err means the destination is full.
func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}

// isDeviceFailure tells whether err means the destination device is gone or unusable, which
// ends the run instead of being reported file by file.
func isDeviceFailure(err error) bool {
	var re *readError
	if errors.As(err, &re) {
		return false
	}
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ESHUTDOWN)
}

// readFull reads len(buf) bytes at off unless the file ends first.
func readFull(fd int, buf []byte, off int64) (int, error) {
	done := 0
	for done < len(buf) {
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Pread(fd, buf[done:], off+int64(done))
			return err
		})
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

func writeFull(fd int, buf []byte, off int64) error {
	for len(buf) > 0 {
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Pwrite(fd, buf, off)
			return err
		})
		if err != nil {
			return err
		}
		buf = buf[n:]
		off += int64(n)
	}
	return nil
}
