//go:build linux

package sync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// oneBatch makes the rename barrier commit only at the end of the run (or at dirs descriptors
// held, when dirs is not 0).
func oneBatch(opts sync.Options, dirs int) sync.Options {
	return sync.WithBatches(opts, 1<<20, 1<<40, dirs, time.Hour)
}

// barrierLog records, in order, the rename barrier's flushes ("sync") and the renames.
type barrierLog struct {
	mu     gosync.Mutex
	events []string
}

func (l *barrierLog) options(opts sync.Options) sync.Options {
	add := func(e string) {
		l.mu.Lock()
		l.events = append(l.events, e)
		l.mu.Unlock()
	}
	opts = sync.WithAfterSync(opts, func() { add("sync") })
	return sync.WithAfterRename(opts, func(rel string) { add(rel) })
}

func (l *barrierLog) syncs() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e == "sync" {
			n++
		}
	}
	return n
}

// TestMirrorLinkGroupsBehindBarrier: the members of hard-link groups wait behind the rename
// barrier like any file, so that one syncfs covers their data and none of their names is
// renamed before it (they were flushed with fdatasync and renamed at once, a journal commit per
// group). With a barrier that commits only at the end, the run's only flush comes before every
// rename, group members included, for every kind of member and wherever they are; the copy is
// exact (rsync -H --checksum) and a second run changes nothing.
func TestMirrorLinkGroupsBehindBarrier(t *testing.T) {
	big := string(pattern(600*kib, 7))
	cases := []struct {
		name    string
		before  []node // the destination's tree, mirrored first (nil: a full copy)
		after   []node
		members []string // the names that must be renamed into place
		resume  int64    // WithResumeMin, 0 for the default
	}{
		{
			name: "full copy, members in three folders",
			after: []node{
				{Path: "a/x", Type: 'f', Data: "group one"}, {Path: "b/y", Type: 'h', Target: "a/x"},
				{Path: "c/z", Type: 'h', Target: "a/x"}, {Path: "a/plain", Type: 'f', Data: "alone"},
				{Path: "b/g2", Type: 'f', Data: "group two"}, {Path: "b/g2b", Type: 'h', Target: "b/g2"},
			},
			members: []string{"a/x", "b/y", "c/z", "b/g2", "b/g2b"},
		},
		{
			name: "update of a group's data, a new member, a folder replaced by a member",
			before: []node{
				{Path: "hl/a", Type: 'f', Data: "old"}, {Path: "hl/b", Type: 'h', Target: "hl/a"},
				{Path: "hl/c/inside", Type: 'f', Data: "a folder, then a member"},
			},
			after: []node{
				{Path: "hl/a", Type: 'f', Data: "new, longer"}, {Path: "hl/b", Type: 'h', Target: "hl/a"},
				{Path: "hl/c", Type: 'h', Target: "hl/a"}, {Path: "hl/d", Type: 'h', Target: "hl/a"},
			},
			members: []string{"hl/a", "hl/b", "hl/c", "hl/d"},
		},
		{
			name: "symlinks and a FIFO with several links",
			after: []node{
				{Path: "s/l1", Type: 'l', Target: strings.Repeat("long/", 200)}, {Path: "s/l2", Type: 'h', Target: "s/l1"},
				{Path: "p/f1", Type: 'p'}, {Path: "q/f2", Type: 'h', Target: "p/f1"},
			},
			members: []string{"s/l1", "s/l2", "p/f1", "q/f2"},
		},
		{
			name: "a large member in a resumable temporary",
			after: []node{
				{Path: "v/big", Type: 'f', Data: big}, {Path: "w/big", Type: 'h', Target: "v/big"},
			},
			members: []string{"v/big", "w/big"},
			resume:  64 * kib,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			src := newExt4(t, 32)
			dst := newExt4(t, 32)
			if c.before != nil {
				build(t, src, c.before...)
				mirror(t, src, dst, sync.Options{})
				os.RemoveAll(filepath.Join(src, "hl"))
			}
			build(t, src, c.after...)
			var log barrierLog
			opts := log.options(oneBatch(sync.WithResumeMin(sync.Options{}, c.resume), 0))
			rep, err := runMirror(t, src, dst, opts)
			if err != nil {
				t.Fatalf("Mirror: %v\n%s", err, fmtReport(rep))
			}
			requireNoFileErrors(t, rep)
			assertRsyncAgrees(t, src, dst)
			assertSameTree(t, src, dst)
			assertSecondRunNoChange(t, src, dst, sync.Options{})
			if len(log.events) == 0 || log.events[0] != "sync" || log.syncs() != 1 {
				t.Errorf("the barrier's flushes and the renames came as %q; want one flush, before every rename", log.events)
			}
			for _, m := range c.members {
				if !slices.Contains(log.events, m) {
					t.Errorf("%s was not renamed into place by the barrier (events %q)", m, log.events)
				}
			}
		})
	}
}

// TestMirrorLinkGroupsCountAsHeldDescriptors: while a group's first member waits behind the
// barrier, the barrier holds a descriptor of its temporary, which counts against the
// descriptors it may hold (heldDirBudget): with three allowed, a folder of ten groups is
// committed in several batches, not one, and the copy is exact.
func TestMirrorLinkGroupsCountAsHeldDescriptors(t *testing.T) {
	parallel(t)
	src := newExt4(t, 32)
	dst := newExt4(t, 32)
	var nodes []node
	for g := range 10 {
		a := fmt.Sprintf("d/g%d-a", g)
		nodes = append(nodes, node{Path: a, Type: 'f', Data: a}, node{Path: a + "b", Type: 'h', Target: a})
	}
	build(t, src, nodes...)
	var log barrierLog
	mirror(t, src, dst, log.options(oneBatch(sync.Options{Workers: 1}, 3)))
	// One folder held and two temporaries: a batch per two groups at most, and the root's.
	if n := log.syncs(); n < 5 {
		t.Errorf("the barrier flushed %d times for ten groups holding at most three descriptors; want at least 5 (events %q)", n, log.events)
	}
}

// TestMirrorLinkGroupsCancelledInBatch: a run cancelled after the barrier's flush, before its
// renames, gives up the whole batch: every name of a hard-link group keeps its old version (none
// was renamed at once), the temporaries of the later members, links to the first member's, are
// removed with it, and only a resumable temporary stays (a large member's, for the next run);
// the next run makes the copy exact.
func TestMirrorLinkGroupsCancelledInBatch(t *testing.T) {
	big := func(seed byte) string { return string(pattern(600*kib, seed)) }
	for _, c := range []struct {
		name     string
		old, new string
		partials int
	}{
		{"small members", "old group", "new group", 0},
		{"large members", big(1), big(2), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			src := newExt4(t, 32)
			dst := newExt4(t, 32)
			tree := func(data string) []node {
				return []node{
					{Path: "a/m", Type: 'f', Data: data}, {Path: "b/m", Type: 'h', Target: "a/m"},
					{Path: "c/m", Type: 'h', Target: "a/m"}, {Path: "a/plain", Type: 'f', Data: "plain " + data[:8]},
				}
			}
			build(t, src, tree(c.old)...)
			mirror(t, src, dst, sync.Options{})
			build(t, src, tree(c.new)...)

			ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
			defer cancel()
			var renamed atomic.Int64
			opts := sync.WithAfterSync(oneBatch(sync.WithResumeMin(sync.Options{}, 64*kib), 0), cancel)
			opts = sync.WithAfterRename(opts, func(string) { renamed.Add(1) })
			if _, err := sync.Mirror(ctx, src, dst, opts); !errors.Is(err, context.Canceled) {
				t.Fatalf("the run was to be cancelled at the barrier's flush; it returned %v", err)
			}
			if n := renamed.Load(); n != 0 {
				t.Errorf("%d entries were renamed into place before the flush that cancelled the run", n)
			}
			for _, m := range []string{"a/m", "b/m", "c/m"} {
				if got := string(readFile(t, filepath.Join(dst, m))); got != c.old {
					t.Errorf("%s after the cancelled run: %d bytes, not its old version", m, len(got))
				}
			}
			if a, b := lstat(t, filepath.Join(dst, "a/m")), lstat(t, filepath.Join(dst, "c/m")); a.Ino != b.Ino {
				t.Errorf("the cancelled run split the group's old version over two inodes")
			}
			var partials int
			for _, p := range temporariesUnder(t, dst) {
				if sync.IsPartialName(filepath.Base(p)) {
					partials++
					continue
				}
				t.Errorf("the cancelled run left the temporary %s", p)
			}
			if partials != c.partials {
				t.Errorf("the cancelled run kept %d resumable temporaries, want %d", partials, c.partials)
			}
			mirror(t, src, dst, sync.Options{})
			if left := temporariesUnder(t, dst); len(left) != 0 {
				t.Errorf("the next run left temporaries: %q", left)
			}
		})
	}
}

// TestCrashInBatchWithLinkGroup cuts the power of an ext4 destination in the middle of the one
// batch of an update that replaces every file, hard-link groups among them: after the first
// member of a group is renamed, and after a later one. Every name must then be its old or its
// new version, and the next run must make the copy exact, the groups linked again.
func TestCrashInBatchWithLinkGroup(t *testing.T) {
	parallel(t)
	old, new := makeCrashTrees(64, 11)
	src, base := crashUpdate(t, old, new, 256)

	for _, member := range []int{1, 2} {
		t.Run(fmt.Sprintf("after member %d of a group", member), func(t *testing.T) {
			img, dst, root := cutCopy(t, base, fmt.Sprintf("cut-%d", member))
			var members, before atomic.Int64
			var synced atomic.Bool
			cut := make(chan error, 1)
			opts := sync.WithAfterSync(oneBatch(sync.Options{}, 0), func() { synced.Store(true) })
			opts = sync.WithAfterRename(opts, func(rel string) {
				if !strings.HasPrefix(rel, "links/") {
					return
				}
				if !synced.Load() {
					before.Add(1)
				}
				if members.Add(1) != int64(member) {
					return
				}
				cut <- commitAndCut(dst, "links", root)
			})
			_, runErr := runMirror(t, src, dst, opts)
			unix.Close(root)
			select {
			case err := <-cut:
				if err != nil {
					t.Fatalf("EXT4_IOC_SHUTDOWN: %v", err)
				}
			default:
				t.Fatalf("the run renamed %d group members, never reaching %d (error: %v)", members.Load(), member, runErr)
			}
			if runErr == nil {
				t.Errorf("the run went on after the file system was shut down")
			}
			if n := before.Load(); n != 0 {
				t.Errorf("%d group members were renamed before the barrier's flush", n)
			}
			img.unmount(t)
			dst = img.mountAt(t, dst)
			nOld, nNew, torn := oldOrNew(dst, old, new)
			t.Logf("cut after group member %d: %d files old, %d new", member, nOld, nNew)
			for _, f := range torn {
				t.Errorf("neither its old nor its new version: %s", f)
			}
			mirror(t, src, dst, sync.Options{})
			if left := temporariesUnder(t, dst); len(left) != 0 {
				t.Errorf("the next run left temporaries: %q", left)
			}
			img.unmount(t)
			run(t, "e2fsck", "-fn", img.Path)
		})
	}
}
