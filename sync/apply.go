//go:build linux

package sync

import (
	"errors"
	gosync "sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// The copy: it changes the destination where the scan's plan (plan.go) says, and only there,
// each entry decided again from what is there now unless the scan's decision still holds.
// Each apply function reports whether it added, replaced or removed an entry of the
// destination directory, which changes that directory's mtime.

// applyRoot mirrors the roots' contents and then the destination root's own metadata (only its
// mtime with KeepDestinationRoot).
func (r *runner) applyRoot() {
	rt, ok := r.statRoots()
	if !ok {
		return
	}
	touched := r.applyDir("", r.srcRoot, r.dstRoot, false)
	if r.ctx.Err() != nil || !(rt.metaDiff || touched) {
		return
	}
	set := func(fd int) error { return applyMeta(fd, &rt.s, rt.srcX, rt.dstX, false) }
	if r.opts.KeepDestinationRoot {
		// The destination root's owner, group, mode and xattrs are never looked at nor
		// written; only its mtime is the source root's, set with utimensat, which changes
		// nothing else.
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, rt.s.Mtim}
		set = func(fd int) error {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, beneath.FDPath(fd), ts, 0); err != nil {
				return &opError{op: "set mtime", err: err}
			}
			return nil
		}
	}
	if err := r.commit.setMeta(r.dstRoot, ".", set); err != nil {
		r.fail(".", "set metadata", err)
		return
	}
	if rt.metaDiff {
		r.counted(&r.metaOnly, ".")
	}
}

// applyDir mirrors the entries of the directory pair (srcFD, dstFD): those the plan holds, or
// all of them when the plan overflowed. fresh says that this run made the destination
// directory, which holds nothing yet: made with mode 0700 and given its owner and mode only
// after its entries, no other user can have put anything there, so its entries are not looked
// up there.
func (r *runner) applyDir(rel string, srcFD, dstFD int, fresh bool) bool {
	if r.ctx.Err() != nil {
		return false
	}
	if steps, ok := r.plan.steps(rel); ok {
		return r.applySteps(rel, srcFD, dstFD, steps, fresh)
	}
	listFD := dstFD
	if fresh {
		listFD = -1
	}
	var touched atomic.Bool
	partials := r.forEachPair(rel, srcFD, listFD, func(name, childRel string, inSrc, inDst bool) {
		var changed bool
		if inSrc {
			changed = r.applyEntry(rel, childRel, srcFD, dstFD, name, inDst, nil)
		} else {
			changed = r.applyDelete(rel, childRel, dstFD, name)
		}
		if changed {
			touched.Store(true)
		}
	})
	if r.deletePartials(rel, dstFD, partials) {
		touched.Store(true)
	}
	return touched.Load()
}

// applySteps mirrors the entries of a directory pair that the scan recorded, taking the scan's
// decision for an entry where neither side changed since and deciding again otherwise; fresh
// is applyDir's.
func (r *runner) applySteps(rel string, srcFD, dstFD int, steps []step, fresh bool) bool {
	var wg gosync.WaitGroup
	var touched atomic.Bool
	var partials []string // resumable temporaries to delete: after the copies
	for _, e := range steps {
		if r.ctx.Err() != nil {
			break
		}
		if e.delete && isPartialName(e.name) {
			partials = append(partials, e.name)
			continue
		}
		name, childRel := e.name, joinRel(rel, e.name)
		r.spawn(&wg, func() {
			changed := false
			if e.delete {
				// Only in the destination at the scan: deleted unless the source has it now.
				var s unix.Stat_t
				var err error = unix.ENOENT // the source's temporaries are not listed (tempname.go)
				if !isTempName(name) {
					err = lstatAt(srcFD, name, &s)
				}
				switch {
				case err == unix.ENOENT:
					changed = r.applyDelete(rel, childRel, dstFD, name)
				case err == nil:
					changed = r.applyEntry(rel, childRel, srcFD, dstFD, name, true, nil)
				default:
					r.fileError(childRel, "stat", err)
				}
			} else {
				// Gone from the source since the scan: reported as vanished, its old copy kept.
				changed = r.applyEntry(rel, childRel, srcFD, dstFD, name, !fresh, e.leaf)
			}
			if changed {
				touched.Store(true)
			}
		})
	}
	wg.Wait()
	if r.deletePartials(rel, dstFD, partials) {
		touched.Store(true)
	}
	return touched.Load()
}

// deletePartials deletes the resumable temporaries names of the destination directory rel
// that the source lacks, once the directory's copies are done (resume.go): those that a copy
// of this run resumed or started are spared, the others are of versions or files the source no
// longer has. It reports whether it deleted any.
func (r *runner) deletePartials(rel string, dstFD int, names []string) bool {
	deleted := false
	for _, name := range names {
		if r.ctx.Err() != nil {
			break
		}
		if r.claimedBy(rel, name) {
			continue
		}
		if r.applyDelete(rel, joinRel(rel, name), dstFD, name) {
			deleted = true
		}
	}
	return deleted
}

// applyDelete removes the destination entry name that the source does not have.
func (r *runner) applyDelete(dirRel, rel string, dstFD int, name string) bool {
	d, ok := r.destEntry(rel, dstFD, name)
	if !ok {
		return false
	}
	r.removeEntry(rel, dstFD, name, &d, false)
	return true
}

// applyEntry mirrors the source entry name of the directory pair. dec is the scan's decision
// for a non-directory entry, if the plan kept one.
func (r *runner) applyEntry(dirRel, rel string, srcFD, dstFD int, name string, inDst bool, dec *leafDecision) bool {
	if r.ctx.Err() != nil {
		return false
	}
	e, ok := r.statPair(rel, srcFD, dstFD, name, inDst)
	if !ok {
		return false
	}
	switch {
	case isDir(&e.s):
		return r.applyDirEntry(rel, srcFD, dstFD, name, &e)
	case e.s.Nlink > 1:
		return r.applyLinked(rel, srcFD, dstFD, name, &e.s, &e.d, e.hasD)
	}
	return r.applyLeaf(rel, srcFD, dstFD, name, &e.s, &e.d, e.hasD, dec)
}

// applyDirEntry mirrors a source directory: creates or replaces the destination one, mirrors
// its entries, then sets its metadata, after its children so that their writes do not change
// it.
func (r *runner) applyDirEntry(rel string, srcFD, dstFD int, name string, e *pair) bool {
	p, ok := r.openDirPair(rel, srcFD, dstFD, name, e)
	if !ok {
		return false
	}
	defer p.close()
	isNew := p.created || p.replaced
	if p.replaced {
		if err := unix.Unlinkat(dstFD, name, 0); err != nil {
			r.fail(rel, "replace", err)
			return false
		}
	}
	if isNew {
		if err := unix.Mkdirat(dstFD, name, 0o700); err != nil {
			r.fail(rel, "create directory", err)
			return p.replaced
		}
		var err error
		if p.dst, err = beneath.OpenDir(dstFD, name); err != nil {
			r.fail(rel, "open directory", err)
			return true
		}
		if p.created {
			r.counted(&r.created, rel)
		} else {
			r.counted(&r.updated, rel)
		}
	}
	touched := false
	if p.src >= 0 && (isNew || r.plan.has(rel)) {
		touched = r.applyDir(rel, p.src, p.dst, isNew)
	}
	if r.ctx.Err() != nil {
		return isNew
	}
	if isNew || p.metaDiff || touched {
		// Behind the renames of its entries, which change its mtime.
		err := r.commit.setMeta(p.dst, rel, func(fd int) error { return applyMeta(fd, &e.s, p.srcX, p.dstX, isNew) })
		if err != nil {
			r.fail(rel, "set metadata", err)
		} else if p.metaDiff {
			r.counted(&r.metaOnly, rel)
		}
	}
	return isNew
}

// applyLeaf mirrors a non-directory entry that is not a member of a hard-link group; dec is
// what the scan decided for it (nil when the plan did not keep it).
func (r *runner) applyLeaf(rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD bool, dec *leafDecision) bool {
	act, srcX, dstX := r.decideAgain(dec, rel, srcFD, dstFD, name, s, d, hasD)
	switch act {
	case leafMeta:
		if err := r.updateMeta(dstFD, name, s, d, srcX, dstX); err != nil {
			r.fail(rel, "set metadata", err)
			return false
		}
		r.counted(&r.metaOnly, rel)
		return false
	case leafCreate, leafReplace:
		if !r.replaceLeaf(rel, srcFD, dstFD, name, s, d, hasD, nil) {
			return false
		}
		if act == leafCreate {
			r.counted(&r.created, rel)
		} else {
			r.counted(&r.updated, rel)
		}
		return true
	}
	return false
}

// applyLinked mirrors a member of a hard-link group: the first member handled makes its
// destination inode right (by linking to the scan's seed, by itself, or by a copy) and becomes
// the group's target; every later member is a hard link to the target. A copy and the links to
// it wait behind the rename barrier together (commit.go).
func (r *runner) applyLinked(rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD bool) bool {
	g := r.links.get(linkKey{s.Dev, s.Ino})
	if g == nil {
		r.overLimit(rel, LimitLinks, false)
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		if hasD && d.Ino == g.targetIno {
			return false
		}
		err := r.linkToGroup(rel, srcFD, dstFD, name, g, d, hasD)
		if err == nil {
			r.countLinked(rel, hasD)
			return true
		}
		if !errors.Is(err, errTargetGone) {
			r.fail(rel, "link", err)
			return false
		}
		g.done, g.src = false, nil // the target changed under us: start the group again from here
	}

	act, srcX, dstX, _ := r.decideLeaf(rel, srcFD, dstFD, name, s, d, hasD, true)
	if (act == leafSame || act == leafMeta) && g.hasSeed && g.seed != rel && d.Ino != g.seedIno {
		// Right by itself but not on the seed's inode: a run killed between two members of
		// the group leaves it split so (the members already replaced on a new inode, the
		// others on the old one). The scan recorded it as a link to make; link it, or the
		// group stays split (the seed, being right, is not visited again).
		act = leafReplace
	}
	switch act {
	case leafSkip:
		return false
	case leafSame:
	case leafMeta:
		if err := r.updateMeta(dstFD, name, s, d, srcX, dstX); err != nil {
			r.fail(rel, "set metadata", err)
			return false
		}
		r.counted(&r.metaOnly, rel)
	case leafCreate, leafReplace:
		if g.hasSeed && g.seed != rel {
			err := r.linkTo(rel, srcFD, dstFD, name, g.seed, g.seedIno, s, d, hasD)
			if err == nil {
				r.countLinked(rel, hasD)
				g.done, g.target, g.targetIno, g.src = true, g.seed, g.seedIno, nil
				return true
			}
			if !errors.Is(err, errTargetGone) {
				r.fail(rel, "link", err)
				return false
			}
		}
		// The copy waits behind the barrier; its temporary's inode becomes the target.
		src := &linkSource{fd: -1}
		if !r.replaceLeaf(rel, srcFD, dstFD, name, s, d, hasD, src) {
			return false
		}
		r.countLinked(rel, hasD)
		g.done, g.target, g.targetIno, g.src = true, rel, src.ino, src
		return true
	}
	var now unix.Stat_t
	if err := lstatAt(dstFD, name, &now); err == nil {
		g.done, g.target, g.targetIno, g.src = true, rel, now.Ino, nil
	}
	return false
}
