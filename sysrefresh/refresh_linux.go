//go:build linux

package sysrefresh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
	"tails-backup/sysident"
)

const (
	blockSize = 1 << 20 // ctx is checked between blocks
	flushSize = 8 << 20 // dirty data is pushed out every flushSize bytes
)

// tempName is the temporary name of the new version of name, in the same directory.
func tempName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return TempPrefix + hex.EncodeToString(sum[:4])
}

// Refresh makes the system partition tree dst (the backup's, mounted read-write) a copy of
// src (the running one), in the order described in the package documentation. Both must have
// a Tails version (ReadVersion). It first looks through the whole of dst, and refuses with a
// *MountError, writing nothing, if another file system is mounted anywhere in it (or in src
// where it is read); then it removes the temporaries an interrupted refresh left, and checks
// free space (a *SpaceError, matching ErrNoSpace, if short; nothing is written).
// On cancellation (ctx, checked every MiB) or error the file being written is left in its old
// version, its temporary removed, and the error returned; the next Refresh finishes the job.
func Refresh(ctx context.Context, src, dst string, opts Options) (Report, error) {
	sroot, err := openRoot(src)
	if err != nil {
		return Report{}, fmt.Errorf("open the running system partition %s: %w", src, err)
	}
	defer unix.Close(sroot)
	droot, err := openRoot(dst)
	if err != nil {
		return Report{}, fmt.Errorf("open the backup's system partition %s: %w", dst, err)
	}
	defer unix.Close(droot)
	return refresh(ctx, root{sroot, src}, root{droot, dst}, opts)
}

// RefreshFDs is Refresh on the trees open as the directories src and dst, which the caller
// opened and checked and keeps open: no path is resolved to reach them, so a rename or a mount
// at their paths since changes nothing.
func RefreshFDs(ctx context.Context, src, dst int, opts Options) (Report, error) {
	return refresh(ctx, root{src, ""}, root{dst, ""}, opts)
}

// root is a root given to refresh: its descriptor (the caller's) and the path it was opened at,
// "" when the caller gave only the descriptor.
type root struct {
	fd   int
	path string
}

func refresh(ctx context.Context, srcRoot, dstRoot root, opts Options) (Report, error) {
	opts = opts.withDefaults()
	var rep Report
	src, dst := srcRoot.path, dstRoot.path
	sroot, err := reopenRoot(srcRoot.fd)
	if err != nil {
		return rep, fmt.Errorf("open the running system partition%s: %w", named(src), err)
	}
	defer unix.Close(sroot)
	droot, err := reopenRoot(dstRoot.fd)
	if err != nil {
		return rep, fmt.Errorf("open the backup's system partition%s: %w", named(dst), err)
	}
	defer unix.Close(droot)

	sid, err := sysident.IdentifyFD(sroot, opts.ident())
	if err != nil {
		if me := asMountError(err, false); me != nil {
			return rep, me
		}
		return rep, fmt.Errorf("the running system partition%s: %w", named(src), err)
	}
	did, err := sysident.IdentifyFD(droot, opts.ident())
	if err != nil {
		if me := asMountError(err, true); me != nil {
			return rep, me
		}
		return rep, fmt.Errorf("the backup's system partition%s does not look like a Tails system partition: %w", named(dst), err)
	}
	rep.SourceVersion, rep.DestinationVersion = sid.Version, did.Version

	// Both trees are looked through before anything is written or removed: a file system
	// mounted anywhere in the backup's, or in the running one where it is read, stops the
	// refresh here. The plan leaves temporaries aside.
	temps, err := scanBackup(droot, "", newPlanner(opts).preserved, opts)
	if err != nil {
		return rep, err
	}
	ch, err := plan(sroot, droot, opts)
	if err != nil {
		return rep, err
	}
	for _, t := range temps {
		if err := removeRel(droot, t); err != nil {
			return rep, fmt.Errorf("remove the temporary files of an interrupted refresh: %w", err)
		}
		rep.RemovedTemporaries = append(rep.RemovedTemporaries, t)
	}
	rep.Changes = ch
	if ch.Empty() {
		return rep, nil
	}

	var sfs unix.Statfs_t
	if err := unix.Fstatfs(droot, &sfs); err != nil {
		return rep, fmt.Errorf("statfs %s: %w", dst, err)
	}
	bsize := sfs.Frsize
	if bsize <= 0 {
		bsize = sfs.Bsize
	}
	rep.Available = int64(sfs.Bavail) * bsize
	rep.Needed = neededSpace(ch, bsize, opts.SpaceMargin)
	if rep.Needed > rep.Available && !opts.skipSpaceCheck {
		return rep, &SpaceError{Needed: rep.Needed, Available: rep.Available}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	for _, d := range ch.Conflicts {
		if err := removeRel(droot, d.Path); err != nil {
			return rep, err
		}
	}
	for _, d := range ch.Mkdirs {
		if err := mkdirRel(droot, d); err != nil {
			return rep, err
		}
	}
	cp := copier{ctx: ctx, sroot: sroot, droot: droot, opts: opts, total: ch.Bytes, rep: &rep}
	for _, c := range ch.Copies {
		if err := cp.copy(c); err != nil {
			return rep, err
		}
	}
	for _, d := range ch.Deletes {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := removeRel(droot, d.Path); err != nil {
			return rep, err
		}
	}
	for _, c := range ch.Commit {
		if err := cp.copy(c); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// neededSpace is the peak of the extra space the copies use, in file system blocks, plus the
// margin and a block per new directory. Files are replaced one at a time: while file i is
// written, its new version (the temporary) and its old version both exist, on top of what
// the files before it changed. So
//
//	needed = max over i of ( Σ_{j<i} (new_j − old_j) + new_i ) + margin,
//
// which for a refresh whose last and largest change is the SquashFS is about the sum of the
// changes before it plus the whole new SquashFS. Deletions come after the copies and do not
// count; conflicting entries removed first are not counted either (conservative).
func neededSpace(ch Changes, bsize, margin int64) int64 {
	round := func(n int64) int64 { return (n + bsize - 1) / bsize * bsize }
	var running, peak int64
	for _, c := range append(append([]FileCopy(nil), ch.Copies...), ch.Commit...) {
		peak = max(peak, running+round(c.Size))
		running += round(c.Size) - round(c.OldSize)
	}
	return peak + margin + int64(len(ch.Mkdirs))*bsize
}

// removeRel removes the backup's entry rel, with all it holds, and syncs its folder.
func removeRel(root int, rel string) error {
	dir, name := path.Split(rel)
	dfd, err := openDirRel(root, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return pathErr(true, "remove", rel, err)
	}
	defer unix.Close(dfd)
	if err := removeAllAt(dfd, name, rel); err != nil {
		return pathErr(true, "remove", rel, err)
	}
	return unix.Fsync(dfd)
}

func mkdirRel(root int, rel string) error {
	dir, name := path.Split(rel)
	dfd, err := openDirRel(root, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return pathErr(true, "create", rel, err)
	}
	defer unix.Close(dfd)
	if err := unix.Mkdirat(dfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return pathErr(true, "create", rel, err)
	}
	var st unix.Stat_t
	if err := lstatAt(dfd, name, &st); err != nil {
		return pathErr(true, "create", rel, err)
	}
	if !isDir(&st) {
		return fmt.Errorf("create the backup's %q: not a directory", rel)
	}
	return unix.Fsync(dfd)
}

// scanBackup walks the backup's tree under the directory dirfd (the entry rel, "" for the
// root), never following a symlink, and returns the paths of the temporaries in it (entries
// named TempPrefix*; what a temporary folder holds goes with it). A file system mounted
// anywhere in it, inside temporary folders too, is a *MountError: the walk never enters it.
// A folder deeper than MaxDepth, or more than opts' entry bound counted, is a *LimitError.
// Entries for which skip is true are neither looked at nor entered.
func scanBackup(dirfd int, rel string, skip func(string) bool, opts Options) ([]string, error) {
	s := backupScan{skip: skip, max: opts.maxEntries}
	err := s.scan(dirfd, rel)
	return s.temps, err
}

type backupScan struct {
	skip  func(string) bool
	max   int
	seen  int
	temps []string
}

func (s *backupScan) scan(dirfd int, rel string) error {
	names, err := readNames(dirfd)
	if err != nil {
		return pathErr(true, "read", "/"+rel, err)
	}
	for _, n := range names {
		p := join(rel, n)
		if s.skip(p) {
			continue
		}
		if s.seen++; s.seen > s.max {
			return &LimitError{Backup: true, Path: p}
		}
		var st unix.Stat_t
		if err := lstatAt(dirfd, n, &st); err != nil {
			return pathErr(true, "stat", p, err)
		}
		if strings.HasPrefix(n, TempPrefix) {
			s.temps = append(s.temps, p)
		}
		if !isDir(&st) {
			continue
		}
		if depthOf(p) > MaxDepth {
			return &LimitError{Backup: true, Path: p, Depth: true}
		}
		sub, err := openDirAt(dirfd, n)
		if err != nil {
			return pathErr(true, "open", p, err)
		}
		kept := len(s.temps)
		err = s.scan(sub, p)
		unix.Close(sub)
		if err != nil {
			return err
		}
		if strings.HasPrefix(n, TempPrefix) {
			s.temps = s.temps[:kept] // what a temporary folder holds goes with it
		}
	}
	return nil
}

type copier struct {
	ctx          context.Context
	sroot, droot int
	opts         Options
	total        int64
	rep          *Report
	buf          []byte
}

// copy writes c under its temporary name, syncs it, gives it the source's mtime and renames it
// over the old file.
func (cp *copier) copy(c FileCopy) (err error) {
	if err := cp.ctx.Err(); err != nil {
		return err
	}
	if cp.buf == nil {
		cp.buf = make([]byte, blockSize)
	}
	sfd, sst, err := openFileRel(cp.sroot, c.Path)
	if err != nil {
		return pathErr(false, "open", c.Path, err)
	}
	defer unix.Close(sfd)
	dir, name := path.Split(c.DstPath)
	dir = strings.TrimSuffix(dir, "/")
	dfd, err := openDirRel(cp.droot, dir)
	if err != nil {
		return pathErr(true, "open", dir, err)
	}
	defer unix.Close(dfd)
	tmp := tempName(name)
	if err := removeAllAt(dfd, tmp, join(dir, tmp)); err != nil {
		return pathErr(true, "remove", join(dir, tmp), err)
	}
	var fd int
	err = retry(func() (err error) {
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		return err
	})
	if err != nil {
		return cp.wrap(c, "create the temporary for", err)
	}
	renamed := false
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
		if !renamed {
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	var off, flushed int64
	for {
		if err := cp.ctx.Err(); err != nil {
			return err
		}
		n, rerr := fdReader(sfd).Read(cp.buf)
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("read the running system's %q: %w", c.Path, rerr)
		}
		for w := 0; w < n; {
			var k int
			werr := retry(func() (err error) {
				k, err = unix.Write(fd, cp.buf[w:n])
				return err
			})
			if werr != nil {
				return cp.wrap(c, "write", werr)
			}
			w += k
		}
		off += int64(n)
		cp.rep.Written += int64(n)
		if off-flushed >= flushSize {
			// Start writing this range back and wait for the previous one, so dirty data
			// stays bounded: the final fsync is short and cancellation stays prompt.
			_ = unix.SyncFileRange(fd, flushed, off-flushed, unix.SYNC_FILE_RANGE_WRITE)
			if flushed > 0 {
				_ = unix.SyncFileRange(fd, 0, flushed, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			}
			flushed = off
		}
		if n > 0 && cp.opts.Progress != nil {
			cp.opts.Progress(Progress{Path: c.DstPath, Done: cp.rep.Written, Total: cp.total})
		}
		if rerr == io.EOF || n == 0 {
			break
		}
	}
	// On the open descriptor, not by name: something mounted on the temporary's name since it
	// was created must not have its time set.
	ts := unix.NsecToTimespec(mtime(&sst).UnixNano())
	if err := beneath.Futimens(fd, [2]unix.Timespec{ts, ts}); err != nil {
		return cp.wrap(c, "set the time of", err)
	}
	if err := unix.Fsync(fd); err != nil {
		return cp.wrap(c, "sync", err)
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return cp.wrap(c, "close", err)
	}
	if err := cp.ctx.Err(); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		return cp.wrap(c, "rename the temporary over", err)
	}
	renamed = true
	if cp.opts.afterRename != nil {
		cp.opts.afterRename(c.DstPath)
	}
	if err := unix.Fsync(dfd); err != nil {
		return cp.wrap(c, "sync the folder of", err)
	}
	return nil
}

func (cp *copier) wrap(c FileCopy, what string, err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return &SpaceError{Needed: cp.rep.Needed, Available: cp.rep.Available, During: true}
	}
	return fmt.Errorf("%s the backup's %q: %w", what, c.DstPath, err)
}
