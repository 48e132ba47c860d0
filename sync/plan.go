//go:build linux

package sync

import (
	"slices"
	"strings"
	gosync "sync"

	"golang.org/x/sys/unix"
)

// plan is what the scan found to change, by directory: the entries that must change and the
// directories on the way to them, so that the copy visits only those instead of walking the
// whole tree again, and, for a non-directory entry, what the scan decided (a leafDecision), so
// that the copy does not compare its contents and xattrs a second time. Past planLimit entries
// it gives up and the copy walks every directory and decides every entry again, which keeps
// its memory bounded (a full copy passes it at once, and has nothing to compare).
type plan struct {
	mu      gosync.Mutex
	dirs    map[string][]step // directory → its entries to handle, in the scan's order
	entries int
	all     bool
}

// step is an entry of a directory that the copy must handle.
type step struct {
	name   string
	delete bool          // the scan found it only in the destination
	leaf   *leafDecision // what the scan decided for a non-directory entry; nil: decide again
}

// leafDecision is what the scan decided for a non-directory entry that is not a member of a
// hard-link group (those are decided by their group at the copy), and the state of both sides
// it decided on. The copy takes the decision as it is when neither side changed since the scan
// (see stillHolds); otherwise it decides again from what is there now.
type leafDecision struct {
	act      leafAction
	src, dst inodeState
}

// inodeState is what identifies an inode's content and metadata between the scan and the
// copy: any write to its data, xattrs, mode or owner moves its ctime, which no system call can
// set back, and a replacement changes its inode number.
type inodeState struct {
	ino, nlink     uint64
	size           int64
	mtim, ctim     unix.Timespec
	mode, uid, gid uint32
}

func stateOf(st *unix.Stat_t) inodeState {
	return inodeState{ino: st.Ino, nlink: uint64(st.Nlink), size: st.Size, mtim: st.Mtim, ctim: st.Ctim,
		mode: st.Mode, uid: st.Uid, gid: st.Gid}
}

// stillHolds tells whether the decision was made on the source entry s and the destination
// entry d (hasD: there is one) as they are now.
func (dec *leafDecision) stillHolds(s, d *unix.Stat_t, hasD bool) bool {
	if dec == nil || stateOf(s) != dec.src {
		return false
	}
	if dec.act == leafCreate {
		return !hasD
	}
	return hasD && stateOf(d) == dec.dst
}

// planLimit bounds the entries a plan records. Each takes its name and, for a file compared at
// some cost (costlyDecision), a leafDecision (about 150 bytes more), so 32,768 entries are some
// 6 MiB at worst.
const planLimit = 1 << 15

// mark records that the entry name of directory dir must change (delete: be deleted), with the
// scan's decision dec for a non-directory entry (or nil); an empty name records dir alone (its
// own metadata).
func (p *plan) mark(dir, name string, delete bool, dec *leafDecision) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.all {
		steps, known := p.dirs[dir]
		if name != "" {
			p.dirs[dir] = append(steps, step{name: name, delete: delete, leaf: dec})
			p.entries++
		} else if !known {
			p.dirs[dir] = nil
		}
		if p.entries > planLimit {
			p.all, p.dirs = true, nil
			return
		}
		if known || dir == "" {
			return // its ancestors are recorded already
		}
		name, dir, delete, dec = baseRel(dir), parentRel(dir), false, nil
	}
}

// has tells whether the copy must visit directory dir.
func (p *plan) has(dir string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.all {
		return true
	}
	_, ok := p.dirs[dir]
	return ok
}

// steps returns dir's entries to handle, sorted by name, each once; ok is false when the plan
// overflowed and the whole directory must be listed and decided again.
func (p *plan) steps(dir string) (out []step, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.all {
		return nil, false
	}
	out = slices.Clone(p.dirs[dir])
	slices.SortStableFunc(out, func(a, b step) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return boolCompare(a.delete, b.delete) // a name to mirror wins over a deletion
	})
	// A name recorded twice is handled once, and decided again.
	merged := out[:0]
	for _, st := range out {
		if n := len(merged); n > 0 && merged[n-1].name == st.name {
			merged[n-1].leaf = nil
			continue
		}
		merged = append(merged, st)
	}
	return merged, true
}
