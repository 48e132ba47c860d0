//go:build linux

package sync

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// Resuming the copy of a large file that an earlier run did not finish (killed, cancelled, its
// stick pulled out).
//
// A regular file of at least resumeMinSize is copied into a temporary whose name says which
// file and which version of it the data is for: partialName hashes the destination name and
// the source file's size, mtime, ctime and inode number. The next run that copies the same
// file computes the same name; if that temporary is there, the source has not changed in
// between (any write changes mtime and ctime, and ctime cannot be set back). Its data is not
// trusted for that: whatever the page cache had not written back when the stick was pulled
// may be missing or garbage. So the prefix of the temporary is read back and compared with the
// source, and only the part that matches (rounded down to a block) is kept: the file is cut
// there and the copy goes on from it. Reading the stick is far cheaper than writing it.
//
// Nothing else changes: the temporary is renamed over its name only once it is whole and on
// the device (the rename barrier, commit.go), so the name is the old or the new version at every
// instant. A temporary of another version or of a file the source no longer has is deleted by
// the run like any entry the source lacks, but only after the directory's copies (which may be
// resuming it) are done; a run that ends leaves none, except when it was cancelled, which keeps
// them for the next run to resume.

// resumeMinSize is the size from which a file is copied into a resumable temporary: below it
// a copy takes a fraction of a second even on a slow stick.
const resumeMinSize = 1 << 20

const (
	partialPrefix  = ".tails-backup-part-"
	partialSuffix  = ".tmp"
	partialHexLen  = 32 // 128 bits of SHA-256
	partialNameLen = len(partialPrefix) + partialHexLen + len(partialSuffix)
)

// partialName is the name of the resumable temporary of the destination entry name, for the
// version of the source file whose status is s.
func partialName(name string, s *unix.Stat_t) string {
	var id [6 * 8]byte
	for i, v := range []int64{s.Size, s.Mtim.Sec, s.Mtim.Nsec, s.Ctim.Sec, s.Ctim.Nsec, int64(s.Ino)} {
		binary.LittleEndian.PutUint64(id[8*i:], uint64(v))
	}
	h := sha256.New()
	h.Write(id[:])
	h.Write([]byte(name))
	sum := h.Sum(nil)
	return partialPrefix + hex.EncodeToString(sum[:partialHexLen/2]) + partialSuffix
}

// isPartialName tells whether name has the form of partialName's names.
func isPartialName(name string) bool {
	if len(name) != partialNameLen || !strings.HasPrefix(name, partialPrefix) || !strings.HasSuffix(name, partialSuffix) {
		return false
	}
	for _, c := range name[len(partialPrefix) : len(partialPrefix)+partialHexLen] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// resumeMin is the size from which files are copied into resumable temporaries.
func (r *runner) resumeMin() int64 {
	if r.opts.resumeMin > 0 {
		return r.opts.resumeMin
	}
	return resumeMinSize
}

// openTemp creates or reopens the temporary that the copy of the source file name (open as
// sfd, status s) in the destination directory dstFD writes into. It returns the temporary's
// descriptor, open for reading and writing, its name, and how many bytes at its start are
// already the source's (checked by reading them back), from which the copy goes on.
func (r *runner) openTemp(rel string, sfd, dstFD int, name string, s *unix.Stat_t) (fd int, tmp string, from int64, err error) {
	if s.Size >= r.resumeMin() {
		tmp = partialName(name, s)
		fd, from, err = r.resumeTemp(sfd, dstFD, tmp, s)
		if err == nil || err == errPartialBusy {
			r.claim(parentRel(rel), tmp) // this run's, or another's: not to be deleted
		}
		if err == nil || r.ctx.Err() != nil {
			return fd, tmp, from, err
		}
		var re *readError
		if errors.As(err, &re) || isNoSpace(err) || isDeviceFailure(err) {
			return -1, "", 0, err
		}
		// Another run holds it, or it cannot be reopened: a plain temporary of this run.
	}
	tmp = r.tmpName()
	fd, err = createTemp(dstFD, tmp)
	return fd, tmp, 0, err
}

// errPartialBusy: another run is writing the temporary.
var errPartialBusy = errors.New("the temporary is in use by another run")

// resumeTemp opens the resumable temporary tmp, creating it when it is not there, and locks it
// (flock) against another run. An existing one must be a regular file with a single link (the
// destination is hostile: a planted FIFO, device, symlink or hard link to another file is never
// opened for writing, but deleted); its prefix that matches the source is kept, the rest cut.
func (r *runner) resumeTemp(sfd, dstFD int, tmp string, s *unix.Stat_t) (fd int, from int64, err error) {
	for range 2 {
		fd, err = createTemp(dstFD, tmp)
		if err == nil {
			if err := lockPartial(fd); err != nil {
				unix.Close(fd)
				return -1, 0, errPartialBusy
			}
			return fd, 0, nil
		}
		if err != unix.EEXIST {
			return -1, 0, err
		}
		fd, err = openPartial(dstFD, tmp)
		if err == nil {
			break
		}
		if err == errPartialBusy {
			return -1, 0, err
		}
		// Not a file to resume: delete it and create a new one.
		if err := unix.Unlinkat(dstFD, tmp, 0); err != nil && err != unix.ENOENT {
			return -1, 0, &opError{op: "delete", err: err}
		}
	}
	if err != nil {
		return -1, 0, err
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	from, err = r.matchingPrefix(fd, sfd, min(st.Size, s.Size))
	if err == nil {
		err = ignoringEINTR(func() error { return unix.Ftruncate(fd, from) })
		if err != nil {
			r.bytesChecked.Add(-from)
			err = &opError{op: "truncate", err: err}
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, from, nil
}

// openPartial opens the existing entry tmp of dstFD for reading and writing if it is a regular
// file with one link, locked for this run. It is first opened O_PATH (which opens nothing: no
// FIFO blocks, no device acts), checked, then reopened through its /proc/self/fd magic link,
// which opens that very inode whatever has been put under the name meanwhile.
func openPartial(dstFD int, tmp string) (int, error) {
	pfd, err := openPathAt(dstFD, tmp)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := fstat(pfd, &st); err != nil {
		return -1, err
	}
	if !isReg(&st) || st.Nlink != 1 {
		return -1, errors.New("not a regular file with a single link")
	}
	var fd int
	err = ignoringEINTR(func() (err error) {
		fd, err = unix.Open(beneath.FDPath(pfd), unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOATIME, 0)
		if err == unix.EPERM {
			fd, err = unix.Open(beneath.FDPath(pfd), unix.O_RDWR|unix.O_CLOEXEC, 0)
		}
		return err
	})
	if err != nil {
		return -1, err
	}
	if err := lockPartial(fd); err != nil {
		unix.Close(fd)
		return -1, errPartialBusy
	}
	return fd, nil
}

// lockPartial takes the lock of a resumable temporary open as fd, trying again for a few
// milliseconds: a process forked by a thread of the run that held it (the lock belongs to the
// open file, which the child shares until its exec closes it) holds it for that long, while
// another run copying the file holds it for the whole copy.
func lockPartial(fd int) error {
	var err error
	for try := range 4 {
		if try > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
			return err
		}
	}
	return err
}

// createTemp creates the new, empty temporary tmp in dstFD.
func createTemp(dstFD int, tmp string) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dstFD, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil && err != unix.EEXIST {
		return -1, &opError{op: "create", err: err}
	}
	return fd, err
}

// matchingPrefix reads the first limit bytes of the temporary tfd and of the source sfd and
// returns how many at the start are equal, rounded down to a block. A temporary that cannot be
// read matches up to where it could be. The bytes found equal count as done in the progress
// (bytesChecked) as they are read, so that the bar moves while a large kept part is read back
// from a slow stick; what it returns is what stays counted.
func (r *runner) matchingPrefix(tfd, sfd int, limit int64) (kept int64, err error) {
	bufp := r.copyBufs.Get().(*[]byte)
	defer r.copyBufs.Put(bufp)
	half := len(*bufp) / 2
	a, b := (*bufp)[:half], (*bufp)[half:]
	var off int64
	defer func() { r.bytesChecked.Add(kept - off) }() // the rounding, or all on failure
	for off < limit {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		n := min(int64(half), limit-off)
		m, err := readFull(sfd, a[:n], off)
		if err != nil && err != io.EOF {
			return 0, &readError{err}
		}
		k, _ := readFull(tfd, b[:m], off)
		same := commonPrefix(a[:k], b[:k])
		off += int64(same)
		r.bytesChecked.Add(int64(same))
		if same < int(n) {
			break
		}
	}
	return off / sparseBlock * sparseBlock, nil
}

// commonPrefix is the length of the longest common prefix of a and b, of the same length.
func commonPrefix(a, b []byte) int {
	const chunk = 4096
	i := 0
	for i+chunk <= len(a) && bytes.Equal(a[i:i+chunk], b[i:i+chunk]) {
		i += chunk
	}
	for i < len(a) && a[i] == b[i] {
		i++
	}
	return i
}

// claim records that this run is using the resumable temporary tmp of the directory dirRel, so
// that the deletion of the directory's extra entries spares it.
func (r *runner) claim(dirRel, tmp string) {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	r.claimed[dirRel+"/"+tmp] = true
}

// claimedBy tells whether this run uses the resumable temporary tmp of the directory dirRel.
func (r *runner) claimedBy(dirRel, tmp string) bool {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	return r.claimed[dirRel+"/"+tmp]
}

// keepTemp tells whether a temporary that will not be renamed stays for the next run: a
// resumable one when the caller cancelled the run (whose next run resumes it), unless told
// otherwise (Options.DiscardOnCancel). Any other is deleted: on a full disk its space is
// needed, after a source error it is of no use.
func (r *runner) keepTemp(tmp string) bool {
	return isPartialName(tmp) && r.parent.Err() != nil && !r.opts.DiscardOnCancel
}
