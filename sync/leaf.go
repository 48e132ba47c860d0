//go:build linux

package sync

import (
	"bytes"
	"errors"
	"io"
	gosync "sync"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// leafAction is what a non-directory entry needs.
type leafAction int

const (
	leafSame    leafAction = iota // nothing
	leafMeta                      // owner, mode, xattrs or mtime
	leafCreate                    // the destination has no such entry
	leafReplace                   // data, target, device number, type or link count differ
	leafSkip                      // could not be decided; already reported
)

// decideLeaf compares the source entry s with the destination entry d. inGroup says that s is
// a member of a hard-link group, whose destination may legitimately have other links.
func (r *runner) decideLeaf(rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD, inGroup bool) (leafAction, []xattr, []xattr, []string) {
	if !hasD {
		return leafCreate, nil, nil, nil
	}
	if !sameType(s, d) {
		return leafReplace, nil, nil, []string{"type"}
	}
	// A destination inode shared with paths that are not linked in the source would carry
	// later changes over to them: break it.
	if d.Nlink > 1 && (!inGroup || d.Nlink > s.Nlink) {
		return leafReplace, nil, nil, []string{"links"}
	}
	switch s.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if s.Size != d.Size {
			return leafReplace, nil, nil, []string{"data"}
		}
		// Equal size but another mtime (or --checksum): compare the content, so that a touch
		// costs a read, not a write to the stick.
		if r.opts.Checksum || s.Mtim != d.Mtim {
			equal, err := r.contentEqual(srcFD, dstFD, name, s.Size)
			if err != nil {
				r.sourceFailure(rel, err)
				return leafSkip, nil, nil, nil
			}
			if !equal {
				return leafReplace, nil, nil, []string{"data"}
			}
		}
	case unix.S_IFLNK:
		// No system call changes a symlink's target in place: while both inodes are as a
		// complete earlier run found them, with equal targets and xattrs (the cache), so are
		// their targets. A tenth of a no-op's listings' system calls, at 2 % symlinks.
		if !metaDiffers(s, d, nil, nil) && r.xattrCache().known(s, d) {
			return leafSame, nil, nil, nil
		}
		st, err := readlinkAt(srcFD, name)
		if err != nil {
			r.sourceFailure(rel, err)
			return leafSkip, nil, nil, nil
		}
		dt, err := readlinkAt(dstFD, name)
		if err != nil || st != dt {
			return leafReplace, nil, nil, []string{"target"}
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if s.Rdev != d.Rdev {
			return leafReplace, nil, nil, []string{"device"}
		}
	}
	return r.compareMeta(rel, srcFD, dstFD, name, s, d)
}

// compareMeta compares the metadata of two non-directory entries whose content is the same:
// owner, mode, mtime and xattrs, the xattrs through the xattr cache when there is one.
func (r *runner) compareMeta(rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t) (leafAction, []xattr, []xattr, []string) {
	cache := r.xattrCache()
	// Only when nothing else differs: updating the metadata needs both xattr sets.
	if !metaDiffers(s, d, nil, nil) && cache.known(s, d) {
		return leafSame, nil, nil, nil
	}
	readX := xattrsAt
	if isReg(s) {
		readX = regularXattrs
	}
	srcX, err := r.srcXattrs(readX(srcFD, name, &r.noXattrAt))
	if err != nil {
		r.sourceFailure(rel, err)
		return leafSkip, nil, nil, nil
	}
	dstX, err := readX(dstFD, name, &r.noXattrAt)
	if err != nil {
		r.fail(rel, "read xattrs", err)
		return leafSkip, nil, nil, nil
	}
	if metaDiffers(s, d, srcX, dstX) {
		return leafMeta, srcX, dstX, metaDifferences(s, d, srcX, dstX)
	}
	cache.verified(s, d)
	return leafSame, nil, nil, nil
}

// xattrCache is Options.XattrCache, or nil when the source is untrusted: its xattrs are then
// filtered, and the cache remembers equality of whole sets.
func (r *runner) xattrCache() *XattrCache {
	if r.opts.UntrustedSource {
		return nil
	}
	return r.opts.XattrCache
}

// sourceFailure reports a failure to read a source entry.
func (r *runner) sourceFailure(rel string, err error) {
	var re *readError
	switch {
	case errors.Is(err, unix.ENOENT):
		r.vanished(rel)
	case r.ctx.Err() != nil:
	case errors.As(err, &re):
		r.fileError(rel, "read", re.err)
	default:
		r.fileError(rel, "read", err)
	}
}

// decideAgain is decideLeaf during the copy, for an entry the scan decided on as dec: when
// neither side changed since, a create or a replacement stands as decided and a metadata update
// only reads the xattrs again (which it applies); otherwise the entry is decided again.
func (r *runner) decideAgain(dec *leafDecision, rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD bool) (leafAction, []xattr, []xattr) {
	if !dec.stillHolds(s, d, hasD) {
		act, srcX, dstX, _ := r.decideLeaf(rel, srcFD, dstFD, name, s, d, hasD, false)
		return act, srcX, dstX
	}
	if dec.act == leafMeta {
		act, srcX, dstX, _ := r.compareMeta(rel, srcFD, dstFD, name, s, d)
		return act, srcX, dstX
	}
	return dec.act, nil, nil
}

// reportLeaf tells Options.OnChange what the scan decided for the non-directory entry name of
// the source directory srcFD; linkTo is the member of its hard-link group it will be linked to.
func (r *runner) reportLeaf(rel string, srcFD int, name string, s, d *unix.Stat_t, act leafAction, what []string, linkTo string) {
	if r.opts.OnChange == nil {
		return
	}
	c := Change{Path: rel, What: what, Type: typeLetter(s), LinkTo: linkTo}
	switch act {
	case leafCreate:
		c.Kind = ChangeCreate
	case leafReplace:
		c.Kind = ChangeUpdate
		if sameType(s, d) {
			c.Differs = statDifferences(s, d)
		}
	case leafMeta:
		c.Kind = ChangeMetadata
	default:
		return
	}
	if isSymlink(s) && c.Kind != ChangeMetadata {
		c.Target, _ = readlinkAt(srcFD, name)
	}
	r.reportChange(c)
}

// planLeaf counts, during the scan, what act will do, and records it in the plan with the state
// of both sides when keep says the copy may take the decision as it is; srcFD and name locate
// the source entry.
func (r *runner) planLeaf(dirRel, rel string, srcFD int, name string, act leafAction, s, d *unix.Stat_t, keep bool) {
	switch act {
	case leafSame, leafSkip:
		return
	case leafMeta:
		r.counted(&r.metaOnly, rel)
	case leafCreate:
		r.counted(&r.created, rel)
	case leafReplace:
		r.counted(&r.updated, rel)
		if isReg(d) && d.Nlink == 1 {
			r.freedBytes.Add(d.Blocks * 512)
		}
	}
	if act == leafCreate || act == leafReplace {
		if isReg(s) {
			r.needBytes.Add(allocated(s))
			r.copyBytes.Add(dataBytes(srcFD, name, s))
		}
	}
	var dec *leafDecision
	if keep && costlyDecision(act, s, d) {
		dec = &leafDecision{act: act, src: stateOf(s), dst: stateOf(d)}
	}
	r.plan.mark(dirRel, name, false, dec)
}

// costlyDecision tells whether deciding act again would cost more than the two lstat calls
// that check the decision still holds: a metadata update read both sides' xattrs, and a
// replacement of a regular file by one of the same size read both files. A create or another
// replacement is decided again from the lstat calls alone, and is not kept, so that a full
// copy's plan holds only names.
func costlyDecision(act leafAction, s, d *unix.Stat_t) bool {
	switch act {
	case leafMeta:
		return true
	case leafReplace:
		return isReg(s) && isReg(d) && s.Size == d.Size && d.Nlink == 1
	}
	return false
}

// dataBytes is how many bytes of data (holes excluded) copying the regular file will read.
func dataBytes(srcFD int, name string, s *unix.Stat_t) int64 {
	if s.Blocks*512 >= s.Size {
		return s.Size
	}
	fd, err := openFileAt(srcFD, name)
	if err != nil {
		return allocated(s)
	}
	defer unix.Close(fd)
	var n int64
	for off := int64(0); off < s.Size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return allocated(s)
		}
		hole = min(hole, s.Size)
		if data >= hole {
			break
		}
		n += hole - data
		off = hole
	}
	return n
}

// updateMeta applies metadata to the existing destination entry name, through an O_PATH
// descriptor checked to be the very inode that was compared.
func (r *runner) updateMeta(dstFD int, name string, s, d *unix.Stat_t, srcX, dstX []xattr) error {
	fd, err := openPathAt(dstFD, name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var cur unix.Stat_t
	if err := fstat(fd, &cur); err != nil {
		return err
	}
	if !sameInode(&cur, d) || !sameType(&cur, s) {
		return errDestinationChanged
	}
	return applyMeta(fd, s, srcX, dstX, false)
}

var errDestinationChanged = errors.New("changed on the destination while it was compared; it will be mirrored on the next run")

// replaceLeaf builds the source entry under a temporary name in the destination directory and
// renames it over name, so that name is the old or the new entry at every instant.
//
// Copies run in parallel, each holding its temporary next to the old version, and finished
// temporaries wait for the rename barrier (commit.go), so a nearly full destination can run
// out of space where copying one file at a time would fit. On ENOSPC the copy removes its
// temporary, waits until no other copy is in flight, commits the waiting renames (which free
// the old versions) and tries again alone; only then is the destination really full.
//
// link, for the first member of a hard-link group, receives the temporary's inode, for the
// group's later members to link to (linkSource).
func (r *runner) replaceLeaf(rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD bool, link *linkSource) bool {
	r.spaceMu.RLock()
	err := r.tryReplace(rel, srcFD, dstFD, name, s, d, hasD, link)
	r.spaceMu.RUnlock()
	if err != nil && isNoSpace(err) && r.ctx.Err() == nil {
		r.spaceMu.Lock()
		r.commit.flush() // the renames waiting behind the barrier free their old versions
		err = r.tryReplace(rel, srcFD, dstFD, name, s, d, hasD, link)
		r.spaceMu.Unlock()
	}
	if err == nil {
		return true
	}
	if errors.Is(err, errReported) {
		return false
	}
	var re *readError
	if errors.As(err, &re) || errors.Is(err, unix.ENOENT) {
		r.sourceFailure(rel, err)
	} else {
		r.fail(rel, "copy", err)
	}
	return false
}

// tryReplace does one attempt of replaceLeaf; on failure it leaves no temporary behind (but a
// resumable one when the caller cancelled the run, for the next run to resume). The new entry
// is renamed over name by the rename barrier once its data is on the device. With link (the
// first member of a hard-link group), the barrier also holds the temporary's inode for the
// group's later members, which link to it and queue their renames behind it (commit.go).
func (r *runner) tryReplace(rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD bool, link *linkSource) error {
	var tmp string
	var err error
	var copied, resumed int64 // data bytes this attempt counted (taken back if it fails) and kept
	var made *madeFile
	switch s.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		tmp, copied, resumed, made, err = r.buildFile(rel, srcFD, dstFD, name)
	case unix.S_IFLNK:
		tmp = r.tmpName()
		err = r.buildSymlink(srcFD, dstFD, name, tmp, s)
	default:
		tmp = r.tmpName()
		err = r.buildNode(srcFD, dstFD, name, tmp, s)
	}
	var replaces *unix.Stat_t
	if hasD && isDir(d) {
		replaces = d
	}
	if err == nil && link != nil {
		// Later members will link to it, moving its ctime: nothing for the xattr cache.
		made = nil
		err = link.hold(dstFD, tmp)
	}
	if err == nil {
		err = r.commit.rename(dstFD, pendingOp{rel: rel, tmp: tmp, name: name, replaces: replaces, copied: copied,
			link: link, made: made})
	}
	if err != nil {
		if tmp != "" && !r.keepTemp(tmp) {
			unix.Unlinkat(dstFD, tmp, 0)
		}
		r.bytesCopied.Add(-copied)
		r.bytesChecked.Add(-resumed) // what buildFile kept, when the rename is what failed
		return err
	}
	r.bytesResumed.Add(resumed)
	return nil
}

// errReported marks an error already reported where it happened.
var errReported = errors.New("reported")

// buildSymlink creates, as tmp, a symlink with the same target bytes and metadata as name.
func (r *runner) buildSymlink(srcFD, dstFD int, name, tmp string, s *unix.Stat_t) error {
	target, err := readlinkAt(srcFD, name)
	if err != nil {
		return &readError{err}
	}
	srcX, err := r.srcXattrs(xattrsAt(srcFD, name, &r.noXattrAt))
	if err != nil {
		return &readError{err}
	}
	if err := unix.Symlinkat(target, dstFD, tmp); err != nil {
		return &opError{op: "symlink", err: err}
	}
	return r.finishNode(dstFD, tmp, s, srcX)
}

// buildNode creates, as tmp, a device, FIFO or socket like name.
func (r *runner) buildNode(srcFD, dstFD int, name, tmp string, s *unix.Stat_t) error {
	srcX, err := r.srcXattrs(xattrsAt(srcFD, name, &r.noXattrAt))
	if err != nil {
		return &readError{err}
	}
	if err := unix.Mknodat(dstFD, tmp, s.Mode&unix.S_IFMT|0o600, int(s.Rdev)); err != nil {
		return &opError{op: "mknod", err: err}
	}
	return r.finishNode(dstFD, tmp, s, srcX)
}

func (r *runner) finishNode(dstFD int, tmp string, s *unix.Stat_t, srcX []xattr) error {
	fd, err := openPathAt(dstFD, tmp)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return applyMeta(fd, s, srcX, nil, true)
}

// buildFile copies the regular file name into a new temporary file, with its metadata, and
// returns the temporary's name ("" when none was made), the data bytes it counted, the bytes
// it kept from an earlier run's copy (resume.go) and, when the xattr cache can remember it,
// what it made. A file that changes while it is copied is copied again, twice at most; the
// bytes of an attempt that is thrown away are taken back from the count.
func (r *runner) buildFile(rel string, srcFD, dstFD int, name string) (tmp string, copied, resumed int64, made *madeFile, err error) {
	sfd, err := openFileAt(srcFD, name)
	if err != nil {
		return "", 0, 0, nil, &readError{err}
	}
	defer unix.Close(sfd)
	var st unix.Stat_t
	if err := fstat(sfd, &st); err != nil {
		return "", 0, 0, nil, &readError{err}
	}
	if !isReg(&st) {
		return "", 0, 0, nil, &readError{ErrVanished}
	}
	tfd, tmp, from, err := r.openTemp(rel, sfd, dstFD, name, &st)
	if err != nil {
		return "", 0, 0, nil, err
	}
	defer unix.Close(tfd)
	// The bytes kept count as done in the progress (matchingPrefix) until this copy fails.
	defer func() {
		if err != nil {
			r.bytesChecked.Add(-from)
		}
	}()
	for attempt := 1; ; attempt++ {
		n, err := r.copyData(rel, tfd, sfd, from, st.Size, allocated(&st) < st.Size, isPartialName(tmp))
		copied += n
		if err != nil {
			return tmp, copied, 0, nil, err
		}
		var after unix.Stat_t
		if err := fstat(sfd, &after); err != nil {
			return tmp, copied, 0, nil, &readError{err}
		}
		if after.Size == st.Size && after.Mtim == st.Mtim && after.Ctim == st.Ctim {
			break
		}
		r.bytesCopied.Add(-copied)
		r.bytesChecked.Add(-from)
		copied, from = 0, 0
		if attempt == 3 {
			r.fileError(rel, "changed", ErrChanging)
			return tmp, 0, 0, nil, errReported
		}
		st = after
		if err := unix.Ftruncate(tfd, 0); err != nil {
			return tmp, 0, 0, nil, &opError{op: "truncate", err: err}
		}
	}
	srcX, err := r.srcXattrs(fdXattrs(sfd))
	if err != nil {
		return tmp, copied, 0, nil, &readError{err}
	}
	r.sanitize(&st)
	var cur unix.Stat_t
	if err := fstat(tfd, &cur); err != nil {
		return tmp, copied, 0, nil, err
	}
	if err := applyMetaOf(tfd, &cur, &st, srcX, nil, true); err != nil {
		return tmp, copied, 0, nil, err
	}
	if r.xattrCache().settled(&st) {
		made = &madeFile{src: st, ino: cur.Ino}
	}
	return tmp, copied, from, made, nil
}

// copyData copies the bytes of src from from to size into dst, which holds the first from
// bytes already and nothing after, leaving the source's holes (SEEK_DATA/SEEK_HOLE) and its
// blocks of zeros as holes, like rsync --sparse, and counting the data bytes copied. rel names
// the file for the test hook. With resumable (a resumable temporary, resume.go), the writeback
// of each writebackStep written is started at once, and each checkpointStep the temporary is
// flushed, so that what a pulled stick keeps of the copy, for the next run to resume, is all
// but the last checkpointStep of it.
func (r *runner) copyData(rel string, dst, src int, from, size int64, holes, resumable bool) (copied int64, err error) {
	bufp := r.copyBufs.Get().(*[]byte)
	defer r.copyBufs.Put(bufp)
	buf := *bufp
	end := from     // the size of dst so far: writeSparse skips zero blocks
	started := from // the writeback of dst is started up to here
	synced := from  // dst is on the device up to here
	shrank := false
	for off := from; off < size && !shrank; {
		if err := r.ctx.Err(); err != nil {
			return copied, err
		}
		// A file that takes at least its size on disk is read as it is, without asking where
		// its data is (two lseeks per file): if it has holes all the same (preallocated
		// blocks elsewhere), they read as zeros, which writeSparse turns back into holes.
		data, hole := off, size
		if holes {
			var err error
			data, err = unix.Seek(src, off, unix.SEEK_DATA)
			if err == unix.ENXIO {
				break // only a hole remains
			}
			if err != nil { // no hole support: all data
				data = off
			} else if h, err := unix.Seek(src, data, unix.SEEK_HOLE); err == nil && h < size {
				hole = h
			}
		}
		for p := data; p < hole; {
			if err := r.ctx.Err(); err != nil {
				return copied, err
			}
			n := min(int64(len(buf)), hole-p)
			m, err := readFull(src, buf[:n], p)
			if err != nil && err != io.EOF {
				return copied, &readError{err}
			}
			if m > 0 {
				written, err := writeSparse(dst, buf[:m], p)
				if err != nil {
					return copied, &opError{op: "write", err: err}
				}
				end = max(end, written)
				r.bytesCopied.Add(int64(m))
				copied += int64(m)
				if resumable && written-started >= writebackStep {
					startWriteback(dst, started, written)
					started = written
				}
				if resumable && written-synced >= checkpointStep {
					if err := ignoringEINTR(func() error { return unix.Fdatasync(dst) }); err != nil {
						return copied, &opError{op: "flush", err: err}
					}
					synced = written
				}
				if r.opts.afterData != nil {
					r.opts.afterData(rel, p+int64(m))
				}
			}
			if err == io.EOF {
				// Shrank: stop here (a dense file would read the same end again forever);
				// the caller sees the new size and copies again.
				hole, shrank = p+int64(m), true
				break
			}
			p += int64(m)
		}
		off = hole
	}
	// A trailing hole or zero block was not written: only the size makes it. (An ftruncate
	// costs some 5 µs even when it changes nothing, a tenth of a small file's copy.)
	if end != size {
		if err := unix.Ftruncate(dst, size); err != nil {
			return copied, &opError{op: "truncate", err: err}
		}
	}
	return copied, nil
}

// writebackStep is how much of a resumable temporary is written between two starts of its
// writeback.
const writebackStep = 8 << 20

// checkpointStep is how much of a resumable temporary is written between two fdatasync calls.
// Started writeback alone is not enough: what reaches the stick is the next run's only once
// ext4's journal records the file's new size and extents, at a commit (every 5 s), and the
// copy runs ahead of a slow stick into the page cache (make e2e-bench: a 200 MiB file pulled
// with 40 % of it on a 20 MB/s stick, while the progress said 72 to 99 %, kept nothing in three
// runs out of three). fdatasync waits for the data written so far and commits the journal; on
// such a stick 32 MiB is 1.6 s of writing, and a commit costs a few write requests.
const checkpointStep = 32 << 20

// startWriteback starts writing the pages of fd from off to end to the device, without waiting
// (sync_file_range SYNC_FILE_RANGE_WRITE). Delayed allocation allocates their blocks then, and
// the next journal commit (every 5 s on ext4) records the file's new size: from then on a pull
// leaves them to the next run. Without it, dirty pages may wait 30 s (dirty_expire_centisecs)
// or more: a pull loses them all. It is only a hint: an error changes nothing (the rename
// barrier's syncfs writes everything before any rename anyway).
func startWriteback(fd int, off, end int64) {
	ignoringEINTR(func() error { return unix.SyncFileRange(fd, off, end-off, unix.SYNC_FILE_RANGE_WRITE) })
}

// sparseBlock is the granularity at which zeros become holes: the block size of ext4.
const sparseBlock = 4096

var zeroBlock [sparseBlock]byte

// writeSparse writes buf at off into a file that is a hole there, skipping the file-aligned
// blocks that hold only zeros so they stay holes.
func writeSparse(fd int, buf []byte, off int64) (written int64, err error) {
	isZero := func(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }
	blockEnd := func(i int) int { // end of the file block that holds buf[i]
		return min(len(buf), i+sparseBlock-int((off+int64(i))%sparseBlock))
	}
	for i := 0; i < len(buf); {
		end := blockEnd(i)
		if isZero(buf[i:end]) {
			i = end
			continue
		}
		for end < len(buf) {
			next := blockEnd(end)
			if isZero(buf[end:next]) {
				break
			}
			end = next
		}
		if err := writeFull(fd, buf[i:end], off+int64(i)); err != nil {
			return 0, err
		}
		written = off + int64(end)
		i = end
	}
	return written, nil
}

// contentEqual compares the regular files name in srcFD and dstFD, both of size bytes. A
// destination that cannot be read counts as different, a source that cannot as an error.
func (r *runner) contentEqual(srcFD, dstFD int, name string, size int64) (bool, error) {
	sfd, err := openFileAt(srcFD, name)
	if err != nil {
		return false, &readError{err}
	}
	defer unix.Close(sfd)
	dfd, err := openFileAt(dstFD, name)
	if err != nil {
		return false, nil
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if fstat(dfd, &st) != nil || !isReg(&st) || st.Size != size {
		return false, nil
	}
	bufp := r.copyBufs.Get().(*[]byte)
	defer r.copyBufs.Put(bufp)
	half := len(*bufp) / 2
	a, b := (*bufp)[:half], (*bufp)[half:]
	for off := int64(0); off < size; {
		if err := r.ctx.Err(); err != nil {
			return false, err
		}
		n, err := readFull(sfd, a, off)
		if err != nil && err != io.EOF {
			return false, &readError{err}
		}
		r.bytesCompared.Add(int64(n))
		m, err2 := readFull(dfd, b[:n], off)
		if (err2 != nil && err2 != io.EOF) || m != n || !bytes.Equal(a[:n], b[:m]) {
			return false, nil
		}
		if n == 0 {
			break
		}
		off += int64(n)
	}
	return true, nil
}

// linkKey identifies a source inode.
type linkKey struct{ dev, ino uint64 }

// linkGroup is the destination side of a source inode with several links. The scan notes a
// member whose destination already holds the right data (the seed); during the copy the first
// member to be handled makes its destination inode right (by itself, by linking to the seed, or
// by a copy) and becomes the target, and every later member is a hard link to the target: to
// the target's temporary while its rename waits behind the barrier (src), to its name after.
type linkGroup struct {
	mu gosync.Mutex
	// scan
	seed      string // relative path of a member whose destination has the right data
	seedIno   uint64
	hasSeed   bool
	planned   bool   // the scan already counted one copy of the data
	plannedBy string // the member whose copy it counted
	// copy
	target    string // relative path of the member whose destination inode is right
	targetIno uint64
	done      bool
	src       *linkSource // the target's temporary, when the target was copied
}

// linkSource is the temporary of a hard-link group's target, copied by this run, while its
// rename waits behind the barrier: an O_PATH descriptor of its inode, which the barrier closes
// once the rename is made or given up (release). Until then later members link to the inode
// through it; after, to the target's name if it was renamed.
type linkSource struct {
	mu      gosync.Mutex
	fd      int // -1 once released
	ino     uint64
	renamed bool // released after the rename over the target's name
}

// hold opens the temporary tmp of the destination directory dirFD for later members to link to.
func (l *linkSource) hold(dirFD int, tmp string) error {
	fd, err := openPathAt(dirFD, tmp)
	if err != nil {
		return &opError{op: "open", err: err}
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return err
	}
	l.mu.Lock()
	l.fd, l.ino, l.renamed = fd, st.Ino, false
	l.mu.Unlock()
	return nil
}

// release closes the descriptor; renamed says whether the temporary was renamed over its name.
func (l *linkSource) release(renamed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
	l.renamed = renamed
}

// link makes tmp, in the destination directory dirFD, a new link to the held temporary's inode.
// linked is false when the source was released already; renamed then tells whether the target
// is in place under its name.
func (l *linkSource) link(dirFD int, tmp string) (linked, renamed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd < 0 {
		return false, l.renamed, nil
	}
	if err := unix.Linkat(l.fd, "", dirFD, tmp, unix.AT_EMPTY_PATH); err != nil {
		return false, false, err
	}
	return true, false, nil
}

// linkTable holds the groups seen; its size is the number of source inodes with several
// links, not the number of files. It holds at most limit groups: a group must be remembered
// for the whole run (rsync -H does the same), and copying a member as a separate file would not
// be an exact mirror, so a tree with more stops the run.
type linkTable struct {
	mu     gosync.Mutex
	groups map[linkKey]*linkGroup
	limit  int
}

// get returns the group of k, nil when k is new and the table is full.
func (t *linkTable) get(k linkKey) *linkGroup {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[k]
	if g == nil {
		if len(t.groups) >= t.limit {
			return nil
		}
		g = &linkGroup{}
		t.groups[k] = g
	}
	return g
}

func (r *runner) countLinked(rel string, hadEntry bool) {
	if hadEntry {
		r.counted(&r.updated, rel)
	} else {
		r.counted(&r.created, rel)
	}
}

var errTargetGone = errors.New("the hard link target changed")

// linkToGroup makes name a hard link to the group's target: to the target's temporary through
// the rename barrier, behind the target's own rename, while that waits (g.src), else to the
// target's name at once (linkTo). g.mu is held.
func (r *runner) linkToGroup(rel string, srcFD, dstFD int, name string, g *linkGroup, d *unix.Stat_t, hasD bool) error {
	if g.src != nil {
		tmp := r.tmpName()
		linked, renamed, err := g.src.link(dstFD, tmp)
		switch {
		case errors.Is(err, unix.ENOENT):
			return errTargetGone // removed from under us
		case err != nil:
			return &opError{op: "link", err: err}
		case linked:
			var replaces *unix.Stat_t
			if hasD && isDir(d) {
				replaces = d
			}
			if err := r.commit.rename(dstFD, pendingOp{rel: rel, tmp: tmp, name: name, replaces: replaces}); err != nil {
				unix.Unlinkat(dstFD, tmp, 0)
				return err
			}
			return nil
		case !renamed:
			return errTargetGone // given up: the run is stopping, or the rename failed
		}
		g.src = nil
	}
	return r.linkTo(rel, srcFD, dstFD, name, g.target, g.targetIno, nil, d, hasD)
}

// linkTo makes name a hard link to the destination inode at target, through a temporary link
// renamed over name. The target is reopened beneath the destination root without following
// symlinks and must still be inode targetIno. When fix is set, the target's metadata is first
// made that of the source entry fix (name's), since the seed of a group may need it.
func (r *runner) linkTo(rel string, srcFD, dstFD int, name, target string, targetIno uint64, fix, d *unix.Stat_t, hasD bool) error {
	tfd, err := beneath.Open(r.dstRoot, target, unix.O_PATH)
	if err != nil {
		return errTargetGone
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := fstat(tfd, &st); err != nil || st.Ino != targetIno || isDir(&st) {
		return errTargetGone
	}
	if fix != nil {
		srcX, err := r.srcXattrs(xattrsAt(srcFD, name, &r.noXattrAt))
		if err != nil {
			return &readError{err}
		}
		have, err := fdXattrs(tfd)
		if err != nil {
			return err
		}
		if metaDiffers(fix, &st, srcX, have) {
			if err := applyMeta(tfd, fix, srcX, have, false); err != nil {
				return err
			}
			r.counted(&r.metaOnly, target)
		}
	}
	tmp := r.tmpName()
	if err := unix.Linkat(tfd, "", dstFD, tmp, unix.AT_EMPTY_PATH); err != nil {
		return &opError{op: "link", err: err}
	}
	if hasD && isDir(d) && !r.removeEntry(rel, dstFD, name, d, false) {
		unix.Unlinkat(dstFD, tmp, 0)
		return errors.New("could not remove the directory it replaces")
	}
	if err := unix.Renameat(dstFD, tmp, dstFD, name); err != nil {
		unix.Unlinkat(dstFD, tmp, 0)
		return &opError{op: "rename", err: err}
	}
	return nil
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
