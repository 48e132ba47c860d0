//go:build linux

package sync

import "golang.org/x/sys/unix"

// The scan: it compares the trees, counts what the copy will do (the progress bar's totals,
// the space check), reports each difference to Options.OnChange, and records it in the plan
// (plan.go) that the copy consumes. It writes nothing.

// scanRoot scans the roots' contents and then the destination root's own metadata (only its
// mtime with KeepDestinationRoot).
func (r *runner) scanRoot() {
	rt, ok := r.statRoots()
	if !ok {
		return
	}
	r.scanDir("", r.srcRoot, r.dstRoot)
	if r.ctx.Err() != nil || !rt.metaDiff {
		return
	}
	r.counted(&r.metaOnly, ".")
	r.plan.mark("", "", false, nil)
	if r.opts.KeepDestinationRoot {
		r.changed("", ChangeMetadata, &rt.s, "mtime")
	} else {
		r.changed("", ChangeMetadata, &rt.s, metaDifferences(&rt.s, &rt.d, rt.srcX, rt.dstX)...)
	}
}

// scanDir scans the entries of the directory pair (srcFD, dstFD), dstFD being -1 when the
// destination directory does not exist yet.
func (r *runner) scanDir(rel string, srcFD, dstFD int) {
	if r.ctx.Err() != nil {
		return
	}
	partials := r.forEachPair(rel, srcFD, dstFD, func(name, childRel string, inSrc, inDst bool) {
		if inSrc {
			r.scanEntry(rel, childRel, srcFD, dstFD, name, inDst)
		} else {
			r.scanDelete(rel, childRel, dstFD, name)
		}
	})
	// The copy deletes those it does not resume (apply.go's deletePartials): counted here
	// as deletions, which some will not be.
	for _, name := range partials {
		if r.ctx.Err() != nil {
			break
		}
		r.scanDelete(rel, joinRel(rel, name), dstFD, name)
	}
}

// scanDelete counts the deletion of the destination entry name that the source lacks.
func (r *runner) scanDelete(dirRel, rel string, dstFD int, name string) {
	d, ok := r.destEntry(rel, dstFD, name)
	if !ok {
		return
	}
	r.plan.mark(dirRel, name, true, nil)
	r.changed(rel, ChangeDelete, &d)
	r.removeEntry(rel, dstFD, name, &d, true)
}

// scanEntry scans the source entry name of the directory pair.
func (r *runner) scanEntry(dirRel, rel string, srcFD, dstFD int, name string, inDst bool) {
	if r.ctx.Err() != nil {
		return
	}
	r.scanned.Add(1)
	e, ok := r.statPair(rel, srcFD, dstFD, name, inDst)
	if !ok {
		return
	}
	switch {
	case isDir(&e.s):
		r.scanDirEntry(dirRel, rel, srcFD, dstFD, name, &e)
	case e.s.Nlink > 1:
		r.scanLinked(dirRel, rel, srcFD, dstFD, name, &e.s, &e.d, e.hasD)
	default:
		r.scanLeaf(dirRel, rel, srcFD, dstFD, name, &e.s, &e.d, e.hasD)
	}
}

// scanDirEntry counts what a source directory needs (created, replaced or its metadata) and
// scans its entries.
func (r *runner) scanDirEntry(dirRel, rel string, srcFD, dstFD int, name string, e *pair) {
	p, ok := r.openDirPair(rel, srcFD, dstFD, name, e)
	if !ok {
		return
	}
	defer p.close()
	switch {
	case p.created:
		r.counted(&r.created, rel)
		r.changed(rel, ChangeCreate, &e.s)
	case p.replaced:
		r.counted(&r.updated, rel)
		r.changed(rel, ChangeUpdate, &e.s, "type")
		if isReg(&e.d) && e.d.Nlink == 1 {
			r.freedBytes.Add(e.d.Blocks * 512)
		}
	case p.metaDiff:
		r.counted(&r.metaOnly, rel)
		r.changed(rel, ChangeMetadata, &e.s, metaDifferences(&e.s, &e.d, p.srcX, p.dstX)...)
	}
	if p.created || p.replaced || p.metaDiff {
		r.plan.mark(dirRel, name, false, nil)
	}
	if p.created || p.replaced {
		r.needBytes.Add(4096)
	}
	if p.src >= 0 {
		r.scanDir(rel, p.src, p.dst)
	}
}

// scanLeaf decides what a non-directory entry that is not a member of a hard-link group needs,
// counts it, reports it and records it with its decision.
func (r *runner) scanLeaf(dirRel, rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD bool) {
	act, _, _, what := r.decideLeaf(rel, srcFD, dstFD, name, s, d, hasD, false)
	r.reportLeaf(rel, srcFD, name, s, d, act, what, "")
	r.planLeaf(dirRel, rel, srcFD, name, act, s, d, true)
}

// scanLinked decides what a member of a hard-link group needs. The first member whose
// destination already has the right data becomes the group's seed, to which the others will
// be linked; without one, the first member to need a copy brings the data and the others
// will be links to it.
func (r *runner) scanLinked(dirRel, rel string, srcFD, dstFD int, name string, s, d *unix.Stat_t, hasD bool) {
	g := r.links.get(linkKey{s.Dev, s.Ino})
	if g == nil {
		r.overLimit(rel, LimitLinks, false)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	link := &unix.Stat_t{Mode: unix.S_IFLNK} // counted like a non-regular entry: no data to copy
	if g.hasSeed {
		if hasD && d.Ino == g.seedIno {
			return // shares the seed's inode: whatever it needs is counted there
		}
		act := leafCreate
		if hasD {
			act = leafReplace
		}
		r.reportLeaf(rel, srcFD, name, s, d, act, []string{"links"}, g.seed)
		r.planLeaf(dirRel, rel, srcFD, name, act, link, d, false)
		return
	}
	act, _, _, what := r.decideLeaf(rel, srcFD, dstFD, name, s, d, hasD, true)
	switch act {
	case leafSame, leafMeta:
		r.reportLeaf(rel, srcFD, name, s, d, act, what, "")
		g.hasSeed, g.seed, g.seedIno = true, rel, d.Ino
	case leafCreate, leafReplace:
		if g.planned { // another member brings the data; this one will be a link
			r.reportLeaf(rel, srcFD, name, s, d, act, what, g.plannedBy)
			r.planLeaf(dirRel, rel, srcFD, name, act, link, d, false)
			return
		}
		r.reportLeaf(rel, srcFD, name, s, d, act, what, "")
		g.planned, g.plannedBy = true, rel
	}
	r.planLeaf(dirRel, rel, srcFD, name, act, s, d, false)
}
