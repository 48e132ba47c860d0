package beneath

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// strict is the resolution of Open: never out of the root, through no symlink nor magic link
// (/proc/self/fd/N), into no other mount.
const strict = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// retry calls op again while it fails with EINTR (a signal arrived) or EAGAIN (openat2 gives
// it when a rename or mount elsewhere raced the lookup and the kernel cannot tell whether the
// path stayed beneath the root).
func retry(op func() (int, error)) (int, error) {
	for {
		fd, err := op()
		if err != unix.EINTR && err != unix.EAGAIN {
			return fd, err
		}
	}
}

// Open opens rel, a path relative to the directory open as root, with flags (O_NOFOLLOW and
// O_CLOEXEC are added), resolving it with openat2 so that no component is a symlink or a magic
// link, none leaves root (an absolute path or a ".." above root is refused) and none crosses
// into another mount (a mount point, even a bind mount of the same file system, is refused:
// the file system mounted there is not asked anything). rel "." opens root itself again, as a
// new open file description. With O_PATH, a symlink as the last component is opened itself,
// never followed. O_CREAT is not supported (the mode is 0).
//
// It returns the new descriptor and nil, or -1 and the errno:
//   - ELOOP: a component is a symlink (the last one too, unless O_PATH or O_DIRECTORY);
//   - ENOTDIR: with O_DIRECTORY, the last component is a symlink or not a directory;
//   - EXDEV: rel leaves root ("..", an absolute path) or crosses a mount;
//   - ENOENT, ENOTDIR, EACCES...: as openat(2) for the same path;
//   - ENOSYS: the kernel has no openat2 (before Linux 5.6).
//
// EINTR and EAGAIN are retried, never returned.
func Open(root int, rel string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC), Resolve: strict}
	fd, err := retry(func() (int, error) { return unix.Openat2(root, rel, &how) })
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// OpenAbs opens the absolute, clean path with flags (O_NOFOLLOW and O_CLOEXEC are added)
// without following any symlink or magic link on the way (openat2 RESOLVE_NO_SYMLINKS): it
// may cross mounts, which is how a mount point is reached.
//
// It returns the new descriptor and nil; or -1 and an error that is not an *os.PathError when
// path is relative or not clean (nothing was opened); or -1 and an *os.PathError (Op
// "openat2") wrapping the errno: ELOOP when a component is a symlink (ENOTDIR for the last one
// with O_DIRECTORY), ENOENT, ENOTDIR, EACCES as open(2) gives them. EINTR and EAGAIN are retried, never returned.
func OpenAbs(path string, flags int) (int, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return -1, fmt.Errorf("%q is not a clean absolute path", path)
	}
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := retry(func() (int, error) { return unix.Openat2(unix.AT_FDCWD, path, &how) })
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: path, Err: err}
	}
	return fd, nil
}

// OpenDir opens the directory entry name (a single component) of the directory open as dirfd
// for reading, refusing a symlink (O_DIRECTORY|O_NOFOLLOW). Unlike Open, it is a plain openat:
// it does not refuse a mount point, which the caller tells by the device of what it opened.
//
// It returns the new descriptor and nil, or -1 and the errno: ENOTDIR when name is a symlink
// (O_DIRECTORY wins over O_NOFOLLOW's ELOOP) or not a directory, ENOENT, EACCES as openat(2)
// gives them. EINTR is retried, never returned.
func OpenDir(dirfd int, name string) (int, error) {
	fd, err := retry(func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// Futimens sets the access and modification times of the file open as fd (not O_PATH), as
// futimens(3): utimensat with a NULL path, which acts on fd itself (a path, even "" with
// AT_EMPTY_PATH, is looked up). A time of Nsec UTIME_OMIT is left as it is, UTIME_NOW sets the
// current time. It returns nil or the errno (EBADF for an O_PATH descriptor, EPERM, EROFS).
func Futimens(fd int, ts [2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

const procSelfFD = "/proc/self/fd/"

// FDPath is a path naming exactly the inode open as fd, whatever happens to its name since:
// the magic link /proc/self/fd/N. The calls that follow it (stat, getxattr, utimensat without
// AT_SYMLINK_NOFOLLOW) act on that inode itself, even when it is a symlink open as O_PATH.
func FDPath(fd int) string { return procSelfFD + strconv.Itoa(fd) }

// AtPath names the entry name inside the directory open as dirfd; the calls that do not follow
// a symlink (lgetxattr...) act on name itself. Name must be a single component.
func AtPath(dirfd int, name string) string {
	return procSelfFD + strconv.Itoa(dirfd) + "/" + name
}

// DefaultBufSize is the size of the buffer ReadNames allocates when given none.
const DefaultBufSize = 32 << 10

// ReadNames returns the sorted names of the directory open as fd, without "." and "..", and
// what they cost of budget (NameCost of each), which the caller gives back (Budget.Give) when
// it drops them. It reads from the start of the directory whatever the descriptor's offset,
// a buffer at a time; buf is that buffer (reused by a caller that lists many directories;
// nil allocates one of DefaultBufSize).
//
// It returns the names, their cost and nil; or nil, 0 and ErrNoBudget, having given back what
// it took, as soon as the names would go beyond budget (of one listing or of all: a folder of
// millions of entries costs at most one buffer more than the budget); or nil, 0 and the errno
// of lseek or getdents (EBADF for an O_PATH descriptor, ENOTDIR, EIO). A nil budget has no
// limit. EINTR is retried, never returned.
//
// The whole list is read, sorted, before it is returned: getdents returns names in the order
// of the file system's hash, and a caller merging two sorted listings cannot take a directory
// a chunk at a time.
func ReadNames(fd int, buf []byte, budget *Budget) ([]string, int64, error) {
	if len(buf) == 0 {
		buf = make([]byte, DefaultBufSize)
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	var names []string
	var cost int64
	for {
		n, err := retry(func() (int, error) { return unix.ReadDirent(fd, buf) })
		if err != nil {
			budget.Give(cost)
			return nil, 0, err
		}
		if n <= 0 {
			break
		}
		had := len(names)
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		var c int64
		for _, name := range names[had:] {
			c += NameCost(name)
		}
		if (budget != nil && cost+c > budget.PerList) || !budget.Take(c) {
			budget.Give(cost)
			return nil, 0, ErrNoBudget
		}
		cost += c
	}
	slices.Sort(names)
	return names, cost, nil
}

// NameCost is what a name held in a listing costs: its bytes and its string header, doubled
// for the slack of the growing slice and the allocator's rounding.
func NameCost(name string) int64 { return int64(len(name)) + 32 }

// Budget bounds the memory of one directory listing (PerList), and of all the listings held at
// once (Limit), counted by NameCost. Its zero value allows nothing; a nil *Budget allows
// everything. It is safe for concurrent use; set PerList and Limit before.
type Budget struct {
	PerList, Limit int64
	used           atomic.Int64
}

// Take reserves n bytes and reports true, or reserves nothing and reports false when that
// would go past Limit. A nil budget always reports true.
func (b *Budget) Take(n int64) bool {
	if b == nil {
		return true
	}
	if b.used.Add(n) > b.Limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// Give gives back n bytes that Take reserved. A nil budget does nothing.
func (b *Budget) Give(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// ErrNoBudget is ReadNames' error when a listing would go beyond its Budget.
var ErrNoBudget = errors.New("the folder listings held at once would take more than their budget")

// maxDepth bounds the walk of Inside up the ".." chain: no path of a real system has that many
// levels (PATH_MAX is 4096 bytes).
const maxDepth = 4096

// Inside tells whether the directory open as dir is the directory open as root or lies
// beneath it, by walking up from dir through ".." (across mounts, as ".." goes) to the root of
// the process, comparing device and inode numbers. Both descriptors may be O_PATH.
//
// It returns true or false and nil; or false and the errno of fstat or of opening ".."
// (EACCES when a directory on the way cannot be searched); or false and an error when the
// chain is longer than any real path (4096 levels).
func Inside(root, dir int) (bool, error) {
	var want, st unix.Stat_t
	if err := unix.Fstat(root, &want); err != nil {
		return false, err
	}
	if err := unix.Fstat(dir, &st); err != nil {
		return false, err
	}
	cur := dir
	defer func() {
		if cur != dir {
			unix.Close(cur)
		}
	}()
	for range maxDepth {
		if st.Dev == want.Dev && st.Ino == want.Ino {
			return true, nil
		}
		up, err := retry(func() (int, error) {
			return unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		})
		if err != nil {
			return false, err
		}
		var ust unix.Stat_t
		if err := unix.Fstat(up, &ust); err != nil {
			unix.Close(up)
			return false, err
		}
		if cur != dir {
			unix.Close(cur)
		}
		cur = up
		if ust.Dev == st.Dev && ust.Ino == st.Ino {
			return false, nil // the root of the process: its ".." is itself
		}
		st = ust
	}
	return false, fmt.Errorf("more than %d levels above the directory", maxDepth)
}
