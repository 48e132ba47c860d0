package tails

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// WriteFileAt replaces the file name inside the directory open as dirfd with data, atomically:
// a temporary file in the same directory is written, flushed and renamed over name, so name
// holds the old or the new content at every instant, also across a power loss. name must be a
// single path component; no symlink is followed.
func WriteFileAt(dirfd int, name string, data []byte, mode uint32, uid, gid int) error {
	return writeFileAt(dirfd, name, data, mode, uid, gid, nil)
}

// WriteFileMtimeAt is WriteFileAt that also gives the file the modification time mtime, as a
// copy keeps it (so that rsync and the mirror find the copy equal to its original).
func WriteFileMtimeAt(dirfd int, name string, data []byte, mode uint32, uid, gid int, mtime unix.Timespec) error {
	return writeFileAt(dirfd, name, data, mode, uid, gid, &mtime)
}

// IsWriteTemporary tells whether name is a temporary that WriteFileAt makes while it writes the
// file of and leaves behind when it is killed in between: "." + of + ".tmp-" and base-36 digits.
func IsWriteTemporary(name, of string) bool {
	digits, ok := strings.CutPrefix(name, "."+of+".tmp-")
	if !ok || digits == "" || len(digits) > 13 { // 13 base-36 digits hold any int64
		return false
	}
	for _, c := range digits {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

func writeFileAt(dirfd int, name string, data []byte, mode uint32, uid, gid int, mtime *unix.Timespec) error {
	tmp := "." + name + ".tmp-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	fail := func(err error) error {
		unix.Close(fd)
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	for off := 0; off < len(data); {
		n, err := unix.Write(fd, data[off:])
		if err != nil {
			return fail(fmt.Errorf("write %s: %w", name, err))
		}
		off += n
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fail(fmt.Errorf("chown %s: %w", name, err))
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fail(fmt.Errorf("chmod %s: %w", name, err))
	}
	if mtime != nil {
		// Through the descriptor's /proc link: the very file written, whatever its name is now.
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, *mtime}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, beneath.FDPath(fd), ts, 0); err != nil {
			return fail(fmt.Errorf("set the modification time of %s: %w", name, err))
		}
	}
	if err := unix.Fsync(fd); err != nil {
		return fail(fmt.Errorf("flush %s: %w", name, err))
	}
	if err := unix.Close(fd); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("close %s: %w", name, err)
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("rename %s: %w", name, err)
	}
	if err := unix.Fsync(dirfd); err != nil {
		return fmt.Errorf("flush the directory of %s: %w", name, err)
	}
	return nil
}

// ReadFileAt reads at most limit bytes of the regular file name inside dirfd, refusing a
// symlink, a mount point, a path out of dirfd (beneath.Open) or anything that is not a
// regular file.
func ReadFileAt(dirfd int, name string, limit int64) ([]byte, error) {
	data, _, err := ReadFileStatAt(dirfd, name, limit)
	return data, err
}

// ReadFileStatAt is ReadFileAt that also returns the status of the file, taken from the
// descriptor its bytes were read from (the same file, even if name is replaced meanwhile).
func ReadFileStatAt(dirfd int, name string, limit int64) ([]byte, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := beneath.Open(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, st, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st, fmt.Errorf("%s is not a regular file", name)
	}
	if st.Size > limit {
		return nil, st, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	buf := make([]byte, st.Size)
	n := 0
	for n < len(buf) {
		m, err := unix.Pread(fd, buf[n:], int64(n))
		if err != nil {
			return nil, st, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], st, nil
}
