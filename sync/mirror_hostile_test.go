package sync_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"tails-backup/sync"
)

// makeOutside creates a directory outside the destination whose names match what the source
// holds (so that any write through a followed symlink lands on something), and returns its
// snapshot.
func makeOutside(t testing.TB, dir string, names ...string) map[string]entry {
	t.Helper()
	nodes := []node{{Path: "sentinel", Type: 'f', Data: "sentinel", Mtime: t1}}
	for _, n := range names {
		nodes = append(nodes, node{Path: n, Type: 'f', Data: "outside " + n, Mtime: t1})
	}
	nodes = append(nodes, node{Path: ".", Type: 'd', Mode: mode(0o755), Mtime: t2})
	mkdirs(t, dir)
	build(t, dir, nodes...)
	return snapshot(t, dir)
}

// TestMirrorHostileDestinationSymlinks proves that symlinks planted in the destination where the
// source has directories or files are never followed: nothing outside the destination root is
// created, modified or deleted (its tree, contents, modes, owners, xattrs and mtimes are exactly
// as before), and the destination ends up correct.
func TestMirrorHostileDestinationSymlinks(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	base := filepath.Dir(dst)                 // dst is base/mnt
	outside := filepath.Join(base, "outside") // what dst/a/b -> ../../outside resolves to
	outside2 := filepath.Join(t.TempDir(), "outside2")
	before := makeOutside(t, outside, "secret.txt", "b-file", "f", "deeper.txt", "z")
	before2 := makeOutside(t, outside2, "secret.txt", "sub", "target")

	build(t, src,
		node{Path: "docs/secret.txt", Type: 'f', Data: "new secret", Uid: 4242},
		node{Path: "docs/sub/deeper.txt", Type: 'f', Data: "deeper"},
		node{Path: "docs", Type: 'd', Mode: mode(0o700), Uid: 4242, Xattrs: map[string]string{"user.d": "d"}},
		node{Path: "a/b/b-file", Type: 'f', Data: "b"},
		node{Path: "a/b", Type: 'd', Mode: mode(0o700)},
		node{Path: "f", Type: 'f', Data: "a regular file where the destination has a symlink", Mode: mode(0o600)},
		node{Path: "x/y/z/file", Type: 'f', Data: "deep"},
		node{Path: "loop/in", Type: 'f', Data: "in"},
		node{Path: "sub/secret.txt", Type: 'f', Data: "sub"},
		node{Path: "metaonly", Type: 'd', Mode: mode(0o700), Mtime: t3},
	)
	build(t, dst,
		node{Path: "docs", Type: 'l', Target: outside2},
		node{Path: "a/b", Type: 'l', Target: "../../outside"},
		node{Path: "f", Type: 'l', Target: filepath.Join(outside2, "target")},
		node{Path: "x/y", Type: 'l', Target: outside},
		node{Path: "loop", Type: 'l', Target: "loop"},
		node{Path: "sub", Type: 'l', Target: "../outside"},
		node{Path: "metaonly", Type: 'l', Target: outside},
	)
	// Premise: the planted symlinks do lead outside.
	if _, err := os.Stat(filepath.Join(dst, "a/b/sentinel")); err != nil {
		t.Fatalf("premise: dst/a/b does not lead to the outside directory: %v", err)
	}
	mirror(t, src, dst, sync.Options{})
	assertUnchanged(t, "the directory outside the destination that dst/a/b, dst/x/y, dst/sub and dst/metaonly pointed to", before, outside, cmpOpts{inodes: true})
	assertUnchanged(t, "the directory outside the destination that dst/docs and dst/f pointed to", before2, outside2, cmpOpts{inodes: true})
}

// TestMirrorHostileSwapDuringRun proves that a destination directory swapped for a symlink to an
// outside directory while the mirror runs (renamed away, symlink put in its place, and back, over
// and over for the whole run) never makes the mirror write outside the destination; the run may
// report errors for those paths. A second run after the swapping stopped makes the copy exact.
func TestMirrorHostileSwapDuringRun(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 64)
	var names []string
	var nodes []node
	for d := 0; d < 8; d++ {
		for f := 0; f < 60; f++ {
			n := fmt.Sprintf("f%03d", f)
			names = append(names, n)
			nodes = append(nodes, node{Path: fmt.Sprintf("t1/d%d/%s", d, n), Type: 'f', Data: string(pattern(8*kib, byte(f)))})
			nodes = append(nodes, node{Path: fmt.Sprintf("t2/sub/d%d/%s", d, n), Type: 'f', Data: string(pattern(8*kib, byte(f)))})
		}
		names = append(names, fmt.Sprintf("d%d", d))
	}
	for f := 0; f < 200; f++ {
		nodes = append(nodes, node{Path: fmt.Sprintf("t1/top%03d", f), Type: 'f', Data: "top"})
	}
	build(t, src, nodes...)
	mirror(t, src, dst, sync.Options{NoSync: true})
	// Every file changes, so that the second run rewrites them all and lasts.
	for i := range nodes {
		nodes[i].Data += "changed"
	}
	build(t, src, nodes...)

	// The outside directory has the shape of the swapped trees, so that a mirror that follows
	// a swapped-in symlink finds directories to write into and files to overwrite.
	outside := filepath.Join(t.TempDir(), "outside")
	makeOutside(t, outside, uniq(names)...)
	for d := 0; d < 8; d++ {
		rm(t, outside, fmt.Sprintf("d%d", d))
		build(t, outside, node{Path: fmt.Sprintf("d%d/f000", d), Type: 'f', Data: "outside", Mtime: t1},
			node{Path: fmt.Sprintf("d%d", d), Type: 'd', Mtime: t1}, node{Path: ".", Type: 'd', Mtime: t2})
	}
	before := snapshot(t, outside)

	ctx, cancel := context.WithCancel(context.Background())
	var wg gosync.WaitGroup
	var swaps atomic.Int64
	for i, p := range []string{"t1", "t2/sub"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			swapper(ctx, filepath.Join(dst, p), outside, fmt.Sprintf("%s/.swap-%d", filepath.Dir(filepath.Join(dst, p)), i), &swaps)
		}()
	}
	rep, err := runMirror(t, src, dst, sync.Options{NoSync: true})
	cancel()
	wg.Wait()
	t.Logf("during %d swaps: err=%v %s", swaps.Load(), err, fmtReport(rep))
	if swaps.Load() == 0 {
		t.Errorf("the swapper never swapped: the test proved nothing")
	}
	assertUnchanged(t, "the directory outside the destination that swapped-in symlinks pointed to", before, outside, cmpOpts{inodes: true})

	mirror(t, src, dst, sync.Options{})
	assertUnchanged(t, "the outside directory (after the second run)", before, outside, cmpOpts{inodes: true})
}

// swapper replaces dir by a symlink to outside and back until ctx ends, leaving dir in place.
// Whatever the mirror may have created in dir's place meanwhile is moved aside (junk is inside
// the destination, and the next run deletes it).
func swapper(ctx context.Context, dir, outside, away string, swaps *atomic.Int64) {
	junk := 0
	for ctx.Err() == nil {
		if err := os.Rename(dir, away); err != nil {
			continue
		}
		if err := os.Symlink(outside, dir); err == nil {
			swaps.Add(1)
		}
		time.Sleep(200 * time.Microsecond) // leave the symlink in place for a moment
		if fi, err := os.Lstat(dir); err == nil {
			if fi.Mode()&os.ModeSymlink != 0 {
				os.Remove(dir)
			} else {
				junk++
				os.Rename(dir, fmt.Sprintf("%s-junk-%d", away, junk))
			}
		}
		if err := os.Rename(away, dir); err != nil {
			// Something took dir's place again; put it aside and retry.
			junk++
			os.Rename(dir, fmt.Sprintf("%s-junk-%d", away, junk))
			os.Rename(away, dir)
		}
	}
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] && !strings.Contains(s, "/") {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// TestMirrorHostileSwapMetadata proves that entries that only need a metadata update (mode,
// owner, mtime, xattrs, ACL) are not updated through a symlink swapped in their place during the
// run: the outside file and directory the symlinks point to keep their exact metadata.
func TestMirrorHostileSwapMetadata(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	const n = 600
	var nodes []node
	for i := 0; i < n; i++ {
		nodes = append(nodes, node{Path: fmt.Sprintf("meta/f%03d", i), Type: 'f', Data: "same data", Mtime: t1})
		if i%5 == 0 {
			nodes = append(nodes, node{Path: fmt.Sprintf("meta/d%03d", i), Type: 'd', Mtime: t1})
		}
	}
	build(t, src, nodes...)
	mirror(t, src, dst, sync.Options{NoSync: true})
	for i := range nodes {
		nodes[i].Mode = mode(0o4711)
		nodes[i].Uid, nodes[i].Gid = 4242, 4242
		nodes[i].Mtime = t3
		nodes[i].Xattrs = map[string]string{"user.x": "x", "trusted.x": "x"}
		nodes[i].ACL = "u:4242:rwx"
		nodes[i].Data = "same data"
	}
	// Rebuilding files gives new inodes with the same data: still metadata-only for the mirror.
	build(t, src, nodes...)

	outside := filepath.Join(t.TempDir(), "outside")
	before := makeOutside(t, outside, "file")
	mkdirs(t, filepath.Join(outside, "dir"))
	setMtime(t, filepath.Join(outside, "dir"), t1)
	setMtime(t, outside, t2)
	before = snapshot(t, outside)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var swaps atomic.Int64
	go func() {
		defer close(done)
		away := filepath.Join(dst, "meta/.away")
		for i := 0; ctx.Err() == nil; i = (i + 1) % len(nodes) {
			p := filepath.Join(dst, nodes[i].Path)
			target := filepath.Join(outside, "file")
			if nodes[i].Type == 'd' {
				target = filepath.Join(outside, "dir")
			}
			if os.Rename(p, away) != nil {
				continue
			}
			if os.Symlink(target, p) == nil {
				swaps.Add(1)
			}
			time.Sleep(50 * time.Microsecond)
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				os.Remove(p)
				os.Rename(away, p)
			} else {
				os.RemoveAll(away) // the mirror put something in its place: keep that
			}
		}
	}()
	rep, err := runMirror(t, src, dst, sync.Options{NoSync: true})
	cancel()
	<-done
	t.Logf("during %d swaps: err=%v %s", swaps.Load(), err, fmtReport(rep))
	if swaps.Load() == 0 {
		t.Errorf("the swapper never swapped: the test proved nothing")
	}
	assertUnchanged(t, "the outside file and directory that swapped-in symlinks pointed to", before, outside, cmpOpts{inodes: true})
	mirror(t, src, dst, sync.Options{})
	assertUnchanged(t, "the outside directory (after the second run)", before, outside, cmpOpts{inodes: true})
}

// TestMirrorHostileHardLinkOutside proves that a destination file hard-linked to a file outside
// the destination root (on the same file system) is never changed through that link: neither
// its metadata (a metadata-only change of the source file) nor its content.
func TestMirrorHostileHardLinkOutside(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	fs := newExt4(t, 16)
	dst := filepath.Join(fs, "root")
	outside := filepath.Join(fs, "outside")
	build(t, src,
		node{Path: "meta", Type: 'f', Data: "same", Mode: mode(0o600), Uid: 4242, Mtime: t3, Xattrs: map[string]string{"user.x": "x"}},
		node{Path: "data", Type: 'f', Data: "new content"},
	)
	build(t, fs,
		node{Path: "outside/meta", Type: 'f', Data: "same", Mode: mode(0o644), Mtime: t1},
		node{Path: "outside/data", Type: 'f', Data: "old content", Mtime: t1},
		node{Path: "root", Type: 'd'},
	)
	for _, n := range []string{"meta", "data"} {
		must(t, os.Link(filepath.Join(outside, n), filepath.Join(dst, n)))
	}
	before := snapshot(t, outside)
	mirror(t, src, dst, sync.Options{})
	// The outside files lost a link (nlink is not compared) and nothing else.
	assertUnchanged(t, "files outside the destination root hard-linked into it", before, outside, cmpOpts{inodes: true, noRootMtime: true})
}

// TestMirrorHostileSwapDuringDelete proves that deleting an extraneous destination tree while
// its directories are swapped for symlinks to an outside directory (with the same shape) never
// deletes or changes anything outside.
func TestMirrorHostileSwapDuringDelete(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 32)
	build(t, src, node{Path: "kept", Type: 'f', Data: "kept"})
	var nodes, outsideNodes []node
	for d := 0; d < 10; d++ {
		for f := 0; f < 100; f++ {
			p := fmt.Sprintf("d%d/sub/f%03d", d, f)
			nodes = append(nodes, node{Path: "extra/" + p, Type: 'f', Data: "extraneous"})
			if f < 5 {
				outsideNodes = append(outsideNodes, node{Path: p, Type: 'f', Data: "outside", Mtime: t1})
			}
		}
		outsideNodes = append(outsideNodes, node{Path: fmt.Sprintf("d%d/sub", d), Type: 'd', Mtime: t1}, node{Path: fmt.Sprintf("d%d", d), Type: 'd', Mtime: t1})
	}
	build(t, dst, nodes...)
	outside := filepath.Join(t.TempDir(), "outside")
	mkdirs(t, outside)
	build(t, outside, append(outsideNodes, node{Path: ".", Type: 'd', Mtime: t2})...)
	before := snapshot(t, outside)

	ctx, cancel := context.WithCancel(context.Background())
	var wg gosync.WaitGroup
	var swaps atomic.Int64
	for d := 0; d < 10; d += 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := filepath.Join(dst, fmt.Sprintf("extra/d%d", d))
			swapper(ctx, dir, filepath.Join(outside, fmt.Sprintf("d%d", d)), filepath.Join(dst, fmt.Sprintf(".away%d", d)), &swaps)
		}()
	}
	rep, err := runMirror(t, src, dst, sync.Options{NoSync: true})
	cancel()
	wg.Wait()
	t.Logf("during %d swaps: err=%v %s", swaps.Load(), err, fmtReport(rep))
	if swaps.Load() == 0 {
		t.Errorf("the swapper never swapped: the test proved nothing")
	}
	assertUnchanged(t, "the directory outside the destination that swapped-in symlinks pointed to", before, outside, cmpOpts{inodes: true})
	mirror(t, src, dst, sync.Options{})
	assertUnchanged(t, "the outside directory (after the second run)", before, outside, cmpOpts{inodes: true})
}
