package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// errNotMountRoot says a directory is not the root of a mounted file system.
var errNotMountRoot = errors.New("not the root of a mounted file system")

// openDirNoSymlinks opens the directory at the absolute, clean path without following any
// symlink on the way (openat2 RESOLVE_NO_SYMLINKS): a symlink anywhere gives ELOOP.
func openDirNoSymlinks(path string) (int, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return -1, fmt.Errorf("%q is not a clean absolute path", path)
	}
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
		return fd, nil
	}
}

// sameDevice compares two device numbers by major and minor.
func sameDevice(a, b uint64) bool {
	return unix.Major(a) == unix.Major(b) && unix.Minor(a) == unix.Minor(b)
}

func devString(d uint64) string {
	return strconv.FormatUint(uint64(unix.Major(d)), 10) + ":" + strconv.FormatUint(uint64(unix.Minor(d)), 10)
}

// mountRoot checks that fd, opened at path, is the root ("/") of a file system mounted at
// exactly path, on device dev, and returns that mount. The mount is found by the mount ID of
// fd itself (statx STATX_MNT_ID), so a file system stacked on top of another at path, or a
// bind mount of a subdirectory, cannot stand in for it.
func mountRoot(fd int, path string, dev uint64, mounts []tails.Mount) (tails.Mount, error) {
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &st); err != nil {
		return tails.Mount{}, fmt.Errorf("statx %s: %w", path, err)
	}
	if got := unix.Mkdev(st.Dev_major, st.Dev_minor); !sameDevice(got, dev) {
		return tails.Mount{}, fmt.Errorf("%s is on device %s, not %s: %w", path, devString(got), devString(dev), errNotMountRoot)
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && st.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return tails.Mount{}, fmt.Errorf("%s: %w", path, errNotMountRoot)
	}
	var m *tails.Mount
	if st.Mask&unix.STATX_MNT_ID != 0 {
		for i := range mounts {
			if uint64(mounts[i].ID) == st.Mnt_id {
				m = &mounts[i]
				break
			}
		}
	} else {
		// Kernels before 5.8: the last mount at path is the one on top.
		for i := range mounts {
			if mounts[i].MountPoint == path {
				m = &mounts[i]
			}
		}
	}
	switch {
	case m == nil:
		return tails.Mount{}, fmt.Errorf("%s is in no mount of the mount table: %w", path, errNotMountRoot)
	case m.MountPoint != path:
		return tails.Mount{}, fmt.Errorf("%s belongs to the mount at %s: %w", path, m.MountPoint, errNotMountRoot)
	case m.Root != "/":
		return tails.Mount{}, fmt.Errorf("%s is a bind mount of %s: %w", path, m.Root, errNotMountRoot)
	case m.Major != unix.Major(dev) || m.Minor != unix.Minor(dev):
		return tails.Mount{}, fmt.Errorf("%s is mounted from device %d:%d, not %s: %w", path, m.Major, m.Minor, devString(dev), errNotMountRoot)
	}
	return *m, nil
}

// fstatDev returns the device number of the file system of fd.
func fstatDev(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Dev, nil
}

// exists tells whether name exists in the directory dirfd, without following a symlink.
func existsAt(dirfd int, name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	default:
		return false, err
	}
}

// readDirNames lists the directory open as fd (which stays open).
func readDirNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "directory")
	defer f.Close()
	return f.Readdirnames(-1)
}

// setMtime sets the modification time of the file open as fd, leaving its access time.
func setMtime(fd int, mtime unix.Timespec) error {
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtime}
	// utimensat(fd, NULL, ts, 0) is futimens(fd, ts).
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// fdPath is a path that opens exactly the file open as fd, whatever happens to its name.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
