//go:build linux

package sync_test

import (
	"path/filepath"
	"testing"
	"time"

	"tails-backup/sync"
)

// TestMirrorKillLeftLinkGroupOnTwoInodes: a run killed in the middle of a hard-link group leaves
// its members on two inodes: the members already replaced (a temporary renamed over them) on a
// new one, the others still on the old one, each with the right data. The next run must link
// them again, whichever member its scan takes as the group's seed and whichever members it
// records. It did not: the copy re-decided each recorded member on its own, found its data
// right, and left the group split, so the tree stayed different from the source (rsync -H
// sees it). The states are built by hand, as TestMirrorKill found them.
func TestMirrorKillLeftLinkGroupOnTwoInodes(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	tm := time.Date(2026, 11, 2, 3, 4, 5, 600000001, time.UTC)
	f := func(p, data string) node { return node{Path: p, Type: 'f', Data: data, Mtime: tm} }
	h := func(p, target string) node { return node{Path: p, Type: 'h', Target: target} }
	for _, c := range []struct {
		name     string
		src, dst []node
		groups   [][]string
	}{
		// The source's group lost a3; a1 was replaced (to break the destination's 3-link
		// inode) before the kill, a2 and a3 still share the old one.
		{"a member to delete still on the old inode",
			[]node{f("a1", "AAAA"), h("x/a2", "a1")},
			[]node{f("a1", "AAAA"), f("x/a2", "AAAA"), h("a3", "x/a2")},
			[][]string{{"a1", "x/a2"}}},
		// The same, once the member to delete is gone.
		{"two members on two inodes, right data",
			[]node{f("a1", "AAAA"), h("x/a2", "a1")},
			[]node{f("a1", "AAAA"), f("x/a2", "AAAA")},
			[][]string{{"a1", "x/a2"}}},
		// The first member got the new data, the second still has the old.
		{"new data on one member, old on the other",
			[]node{f("a1", "BBBBBB"), h("x/a2", "a1"), h("y/a3", "a1")},
			[]node{f("a1", "BBBBBB"), f("x/a2", "AAAA"), h("y/a3", "x/a2")},
			[][]string{{"a1", "x/a2", "y/a3"}}},
		// Three members on three inodes, the right data on each.
		{"three members on three inodes",
			[]node{f("a1", "CCCC"), h("x/a2", "a1"), h("y/a3", "a1")},
			[]node{f("a1", "CCCC"), f("x/a2", "CCCC"), f("y/a3", "CCCC")},
			[][]string{{"a1", "x/a2", "y/a3"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, d := filepath.Join(src, c.name), filepath.Join(dst, c.name)
			mkdirs(t, s, d)
			build(t, s, c.src...)
			build(t, d, c.dst...)
			// The directories' mtimes, which the members' creation changed, are not the point.
			for _, dir := range []string{".", "x", "y"} {
				if exists(filepath.Join(s, dir)) {
					setMtime(t, filepath.Join(s, dir), tm)
				}
				if exists(filepath.Join(d, dir)) {
					setMtime(t, filepath.Join(d, dir), tm)
				}
			}
			assertLinkGroups(t, s, c.groups) // the test's own premise
			mirror(t, s, d, sync.Options{})
			assertLinkGroups(t, d, c.groups)
		})
	}
}
