//go:build linux

package sync

import (
	"fmt"
	"slices"
	gosync "sync"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// A run walks the trees twice: the scan (scan.go) compares them, counts what must change and
// records it in the plan, writing nothing; the copy (apply.go) visits only what the plan holds
// and changes the destination. This file holds what both walks share: listing a directory
// pair, looking at an entry on both sides, opening a directory pair.

// roots is the two roots' own state, looked at by each walk.
type roots struct {
	s, d       unix.Stat_t
	srcX, dstX []xattr // nil with KeepDestinationRoot, which never reads nor writes them
	metaDiff   bool    // with KeepDestinationRoot, only the mtime is compared
}

// statRoots looks at the roots; ok is false when that failed (reported).
func (r *runner) statRoots() (rt roots, ok bool) {
	if err := fstat(r.srcRoot, &rt.s); err != nil {
		r.setFatal(fmt.Errorf("source root: %w", err))
		return rt, false
	}
	if err := fstat(r.dstRoot, &rt.d); err != nil {
		r.setFatal(fmt.Errorf("destination root: %w", err))
		return rt, false
	}
	if r.opts.KeepDestinationRoot {
		rt.metaDiff = rt.s.Mtim != rt.d.Mtim
		return rt, true
	}
	r.sanitize(&rt.s)
	var err error
	if rt.srcX, err = r.srcXattrs(fdXattrs(r.srcRoot)); err != nil {
		r.fileError(".", "read xattrs", err)
		return rt, false
	}
	if rt.dstX, err = fdXattrs(r.dstRoot); err != nil {
		r.fail(".", "read xattrs", err)
		return rt, false
	}
	rt.metaDiff = metaDiffers(&rt.s, &rt.d, rt.srcX, rt.dstX)
	return rt, true
}

// forEachPair lists the directory pair (srcFD, dstFD; dstFD -1 when the destination has no such
// directory yet) and calls visit for each name of either side, in name order, on the worker
// pool, and returns when every visit has returned. It leaves out excluded paths and the
// engine's own temporaries in the source (tempname.go); it does not visit the resumable
// temporaries of the destination that the source lacks (resume.go) but returns them, for the
// caller to handle once the directory's copies are done. Nothing is visited when a listing
// fails (reported): never delete what an unreadable source directory may still hold.
func (r *runner) forEachPair(rel string, srcFD, dstFD int, visit func(name, childRel string, inSrc, inDst bool)) (partials []string) {
	bufp := r.nameBufs.Get().(*[]byte)
	srcNames, srcCost, err := beneath.ReadNames(srcFD, *bufp, &r.names)
	switch {
	case err == beneath.ErrNoBudget:
		r.nameBufs.Put(bufp)
		r.overLimit(rel, LimitNames, false)
		return nil
	case err != nil:
		r.nameBufs.Put(bufp)
		r.fileError(rel, "read directory", err)
		return nil
	}
	defer r.names.Give(srcCost)
	srcNames = slices.DeleteFunc(srcNames, isTempName) // never copied (tempname.go)
	var dstNames []string
	if dstFD >= 0 {
		var dstCost int64
		dstNames, dstCost, err = beneath.ReadNames(dstFD, *bufp, &r.names)
		switch {
		case err == beneath.ErrNoBudget:
			r.nameBufs.Put(bufp)
			r.overLimit(rel, LimitNames, true)
			return nil
		case err != nil:
			r.nameBufs.Put(bufp)
			r.fail(rel, "read directory", err)
			return nil
		}
		defer r.names.Give(dstCost)
	}
	r.nameBufs.Put(bufp)

	var wg gosync.WaitGroup
	i, j := 0, 0
	for i < len(srcNames) || j < len(dstNames) {
		if r.ctx.Err() != nil {
			break
		}
		var name string
		inSrc, inDst := false, false
		switch {
		case j >= len(dstNames) || (i < len(srcNames) && srcNames[i] < dstNames[j]):
			name, inSrc = srcNames[i], true
			i++
		case i >= len(srcNames) || dstNames[j] < srcNames[i]:
			name, inDst = dstNames[j], true
			j++
		default:
			name, inSrc, inDst = srcNames[i], true, true
			i++
			j++
		}
		childRel := joinRel(rel, name)
		if r.excluded(childRel) {
			continue
		}
		if !inSrc && isPartialName(name) {
			partials = append(partials, name)
			continue
		}
		r.spawn(&wg, func() { visit(name, childRel, inSrc, inDst) })
	}
	wg.Wait()
	return partials
}

// pair is a source entry and what the destination holds under its name.
type pair struct {
	s, d unix.Stat_t
	hasD bool // the destination has an entry of that name (d)
}

// statPair looks at the source entry name and, when inDst says the listing had it, at the
// destination's; ok is false when the entry cannot be mirrored (reported: vanished, refused,
// unreadable, a mount point in the destination).
func (r *runner) statPair(rel string, srcFD, dstFD int, name string, inDst bool) (p pair, ok bool) {
	if err := lstatAt(srcFD, name, &p.s); err != nil {
		if err == unix.ENOENT {
			r.vanished(rel)
		} else {
			r.fileError(rel, "stat", err)
		}
		return p, false
	}
	if r.opts.UntrustedSource && (p.s.Mode&unix.S_IFMT == unix.S_IFCHR || p.s.Mode&unix.S_IFMT == unix.S_IFBLK) {
		r.fileError(rel, "refused", ErrUntrustedDevice)
		return p, false
	}
	r.sanitize(&p.s)
	if inDst && dstFD >= 0 {
		switch err := lstatAt(dstFD, name, &p.d); err {
		case nil:
			p.hasD = true
		case unix.ENOENT:
		default:
			r.fail(rel, "stat", err)
			return p, false
		}
	}
	if p.hasD && isDir(&p.d) && p.d.Dev != r.dstDev {
		r.fileError(rel, "sync", ErrMountPoint)
		return p, false
	}
	return p, true
}

// destEntry looks at the destination entry name that the source lacks; ok is false when there
// is none any more or it must not be deleted (a mount point; reported).
func (r *runner) destEntry(rel string, dstFD int, name string) (d unix.Stat_t, ok bool) {
	if err := lstatAt(dstFD, name, &d); err != nil {
		if err != unix.ENOENT {
			r.fail(rel, "stat", err)
		}
		return d, false
	}
	if isDir(&d) && d.Dev != r.dstDev {
		r.fileError(rel, "delete", ErrMountPoint)
		return d, false
	}
	return d, true
}

// dirPair is a source directory and the destination's entry of the same name, opened and
// compared.
type dirPair struct {
	src int // the source directory; -1 for a mount point, which is not entered (rsync -x)
	dst int // the destination directory; -1 when there is none (or another type of entry)
	// created: the destination has no entry of that name; replaced: it has another type.
	created, replaced bool
	metaDiff          bool // an existing destination directory's owner, mode, mtime or xattrs differ
	srcX, dstX        []xattr
}

func (p *dirPair) close() {
	if p.src >= 0 {
		unix.Close(p.src)
	}
	if p.dst >= 0 {
		unix.Close(p.dst)
	}
}

// openDirPair opens the source directory of e and the destination's directory of the same
// name if there is one, and compares their metadata; ok is false when that failed (reported).
// The caller closes the pair.
func (r *runner) openDirPair(rel string, srcFD, dstFD int, name string, e *pair) (p dirPair, ok bool) {
	p = dirPair{src: -1, dst: -1, created: !e.hasD, replaced: e.hasD && !isDir(&e.d)}
	// A mount point in the source is reproduced as an empty directory with the attributes of
	// the mounted directory, and not entered (rsync -x).
	var err error
	if e.s.Dev != r.srcDev {
		p.srcX, err = r.srcXattrs(xattrsAt(srcFD, name, &r.noXattrAt))
	} else {
		if r.tooDeep(rel, false) {
			return p, false
		}
		p.src, err = beneath.OpenDir(srcFD, name)
		if err != nil {
			if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
				r.vanished(rel)
			} else {
				r.fileError(rel, "open directory", err)
			}
			return p, false
		}
		p.srcX, err = r.srcXattrs(fdXattrs(p.src))
	}
	if err != nil {
		r.fileError(rel, "read xattrs", err)
		p.close()
		return p, false
	}
	if e.hasD && isDir(&e.d) {
		p.dst, err = beneath.OpenDir(dstFD, name)
		if err != nil {
			// A symlink or file put there since the lstat: never follow it; the next run sees it.
			r.fail(rel, "open directory", err)
			p.close()
			return p, false
		}
		if err := fstat(p.dst, &e.d); err != nil || e.d.Dev != r.dstDev {
			r.fileError(rel, "sync", ErrMountPoint)
			p.close()
			return p, false
		}
		if p.dstX, err = fdXattrs(p.dst); err != nil {
			r.fail(rel, "read xattrs", err)
			p.close()
			return p, false
		}
		p.metaDiff = metaDiffers(&e.s, &e.d, p.srcX, p.dstX)
	}
	return p, true
}

// removeEntry deletes name (a whole tree for a directory) from the destination directory
// dirFD, d being its lstat; with count only, during the scan, it counts what it would delete
// instead. Excluded paths inside survive, and so does the directory holding them. It reports
// whether name was (or would be) removed.
func (r *runner) removeEntry(rel string, dirFD int, name string, d *unix.Stat_t, count bool) (removed bool) {
	if r.ctx.Err() != nil {
		return false
	}
	if !isDir(d) {
		if count {
			if isReg(d) && d.Nlink == 1 {
				r.freedBytes.Add(d.Blocks * 512)
			}
		} else if err := unix.Unlinkat(dirFD, name, 0); err != nil && err != unix.ENOENT {
			r.fail(rel, "delete", err)
			return false
		}
		r.counted(&r.deleted, rel)
		return true
	}
	if r.tooDeep(rel, true) {
		return false
	}
	fd, err := beneath.OpenDir(dirFD, name)
	if err != nil {
		r.fail(rel, "delete", err)
		return false
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil || st.Dev != r.dstDev {
		unix.Close(fd)
		r.fileError(rel, "delete", ErrMountPoint)
		return false
	}
	bufp := r.nameBufs.Get().(*[]byte)
	names, cost, err := beneath.ReadNames(fd, *bufp, &r.names)
	r.nameBufs.Put(bufp)
	switch {
	case err == beneath.ErrNoBudget:
		unix.Close(fd)
		r.overLimit(rel, LimitNames, true)
		return false
	case err != nil:
		unix.Close(fd)
		r.fail(rel, "delete", err)
		return false
	}
	defer r.names.Give(cost)
	kept := false
	for _, n := range names {
		childRel := joinRel(rel, n)
		var cst unix.Stat_t
		if r.excluded(childRel) {
			kept = true
			continue
		}
		if err := lstatAt(fd, n, &cst); err != nil {
			if err != unix.ENOENT {
				r.fail(childRel, "delete", err)
				kept = true
			}
			continue
		}
		if !r.removeEntry(childRel, fd, n, &cst, count) {
			kept = true
		}
	}
	unix.Close(fd)
	if kept || r.ctx.Err() != nil {
		return false
	}
	if !count {
		if err := unix.Unlinkat(dirFD, name, unix.AT_REMOVEDIR); err != nil {
			r.fail(rel, "delete", err)
			return false
		}
	}
	r.counted(&r.deleted, rel)
	return true
}
