package sync_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// TestMirrorDeletesExtraneous proves that files, directory trees (read-only ones too), symlinks
// (without touching what they point to), FIFOs and hard links that the source lacks are deleted,
// and that Report.Deleted counts every entry removed.
func TestMirrorDeletesExtraneous(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	outside := filepath.Join(t.TempDir(), "outside")
	writeFile(t, filepath.Join(outside, "target"), []byte("must survive"))
	outsideBefore := snapshot(t, outside)

	build(t, src,
		node{Path: "keep/a", Type: 'f', Data: "a"},
		node{Path: "keep/b", Type: 'f', Data: "b"},
		node{Path: "dir/x", Type: 'f', Data: "x"},
	)
	extras := []node{
		{Path: "extra-file", Type: 'f', Data: "e"},
		{Path: "extra-dir/sub/deep/file", Type: 'f', Data: "d"},
		{Path: "extra-dir/sub/l", Type: 'l', Target: "/etc/passwd"},
		{Path: "keep/extra-in-kept-dir", Type: 'f', Data: "k"},
		{Path: "extra-link", Type: 'l', Target: filepath.Join(outside, "target")},
		{Path: "extra-dirlink", Type: 'l', Target: outside},
		{Path: "extra-fifo", Type: 'p'},
		{Path: "extra-sock", Type: 's'},
		{Path: "ro-dir/file", Type: 'f', Data: "r"},
		{Path: "ro-dir", Type: 'd', Mode: mode(0o500)},
		{Path: "no-dir/sub/file", Type: 'f', Data: "n"},
		{Path: "no-dir/sub", Type: 'd', Mode: mode(0o000)},
		{Path: "no-dir", Type: 'd', Mode: mode(0o000)},
		{Path: "hl1", Type: 'f', Data: "h"},
		{Path: "dir/hl2", Type: 'h', Target: "hl1"},
		{Path: "dev", Type: 'c', Rdev: unix.Mkdev(1, 3)},
	}
	const extraEntries = 19
	build(t, dst, extras...)
	rep := mirror(t, src, dst, sync.Options{})
	if rep.Deleted != extraEntries {
		t.Errorf("Report.Deleted = %d, want %d (every entry removed, directory contents included): %s", rep.Deleted, extraEntries, fmtReport(rep))
	}
	assertUnchanged(t, "a directory outside the destination that extraneous symlinks pointed to", outsideBefore, outside, cmpOpts{inodes: true})
}

// TestMirrorExclude proves that excluded paths are anchored at the roots, are never deleted
// from the destination (the marker file), and are never copied from the source, while the same
// names elsewhere in the tree are mirrored normally.
func TestMirrorExclude(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	opts := sync.Options{Exclude: []string{".tails-backup.json", "cache/skip", "skipdir"}}
	marker := []byte(`{"source":"0b5e...","state":"complete"}`)
	build(t, dst,
		node{Path: ".tails-backup.json", Type: 'f', Data: string(marker), Mode: mode(0o600), Mtime: t1},
		node{Path: "skipdir/keep-me", Type: 'f', Data: "destination only"},
		node{Path: "skipdir", Type: 'd', Mode: mode(0o700), Mtime: t2},
	)
	dstExcludedBefore := snapshot(t, dst)
	build(t, src,
		node{Path: ".tails-backup.json", Type: 'f', Data: "the source's own marker must not be copied"},
		node{Path: "cache/skip", Type: 'f', Data: "excluded"},
		node{Path: "cache/skip2", Type: 'f', Data: "not excluded: a prefix is not a match"},
		node{Path: "cache/other", Type: 'f', Data: "copied"},
		node{Path: "skipdir/src-only", Type: 'f', Data: "excluded dir"},
		node{Path: "skipdir2/f", Type: 'f', Data: "copied"},
		node{Path: "sub/.tails-backup.json", Type: 'f', Data: "not at the root: copied"},
		node{Path: "sub/skipdir/f", Type: 'f', Data: "not at the root: copied"},
		node{Path: "sub/cache/skip", Type: 'f', Data: "not at the root: copied"},
	)
	mirror(t, src, dst, opts)
	check := func() {
		t.Helper()
		for _, p := range []string{"cache/skip", "skipdir/src-only"} {
			if exists(filepath.Join(dst, p)) {
				t.Errorf("excluded source path %s was copied", p)
			}
		}
		for _, p := range []string{"cache/skip2", "cache/other", "skipdir2/f", "sub/.tails-backup.json", "sub/skipdir/f", "sub/cache/skip"} {
			if !exists(filepath.Join(dst, p)) {
				t.Errorf("%s was not copied: an exclude matched more than its anchored path", p)
			}
		}
		after := snapshot(t, dst)
		for _, p := range []string{".tails-backup.json", "skipdir", "skipdir/keep-me"} {
			if d := diffSnapshots(map[string]entry{p: dstExcludedBefore[p]}, map[string]entry{p: after[p]}, cmpOpts{inodes: true}); len(d) > 0 {
				t.Errorf("excluded destination path was touched: %v", d)
			}
		}
	}
	check()

	// The source loses its own marker and more (cache, the parent of an excluded path): the
	// destination's marker and excluded paths still survive, and an extraneous file next to them
	// is deleted.
	build(t, dst, node{Path: "cache/skip", Type: 'f', Data: "excluded, in a directory the source will lose"})
	rm(t, src, ".tails-backup.json", "sub", "cache")
	writeFile(t, filepath.Join(dst, "not-excluded"), []byte("extraneous"))
	rep, err := runMirror(t, src, dst, opts)
	if err != nil {
		t.Fatalf("Mirror: %v\n%s", err, fmtReport(rep))
	}
	requireNoFileErrors(t, rep)
	// dst/cache stays, to hold the excluded cache/skip; all the rest is exact.
	assertRsyncAgrees(t, src, dst, append([]string{"cache"}, opts.Exclude...)...)
	assertSameTree(t, src, dst, append([]string{"cache"}, opts.Exclude...)...)
	assertSecondRunNoChange(t, src, dst, opts)
	if got := relPaths(t, filepath.Join(dst, "cache")); len(got) != 1 || got[0] != "skip" {
		t.Errorf("dst/cache holds %q, want only the excluded skip", got)
	}
	if exists(filepath.Join(dst, "not-excluded")) {
		t.Errorf("an extraneous file was kept")
	}
	if rep.Deleted == 0 {
		t.Errorf("nothing reported deleted: %s", fmtReport(rep))
	}
	if got := readFile(t, filepath.Join(dst, ".tails-backup.json")); string(got) != string(marker) {
		t.Errorf("the marker changed: %q", got)
	}
	if !exists(filepath.Join(dst, "cache/skip")) {
		t.Errorf("the excluded cache/skip was deleted with its extraneous parent directory")
	}
}

// TestMirrorOneFileSystemSource proves that a mount point inside the source is reproduced as an
// empty directory and not entered (rsync -x).
func TestMirrorOneFileSystemSource(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	build(t, src, node{Path: "sub/file", Type: 'f', Data: "f"}, node{Path: "sub/mnt", Type: 'd'}, node{Path: "top", Type: 'f', Data: "t"})
	inner := newImage(t, 16).mountAt(t, filepath.Join(src, "sub/mnt"))
	build(t, inner, node{Path: "inner-file", Type: 'f', Data: "on another file system"}, node{Path: "inner-dir/x", Type: 'f', Data: "x"})

	mirrorWith(t, src, dst, sync.Options{}, checks{rsyncArgs: []string{"-x"}})
	fi, err := os.Lstat(filepath.Join(dst, "sub/mnt"))
	if err != nil || !fi.IsDir() {
		t.Fatalf("the source mount point was not reproduced as a directory: %v", err)
	}
	if names := relPaths(t, filepath.Join(dst, "sub/mnt")); len(names) != 0 {
		t.Errorf("the mirror entered a mount point of the source: the destination has %q", names)
	}
	for _, p := range []string{"sub/file", "top"} {
		if !exists(filepath.Join(dst, p)) {
			t.Errorf("%s was not copied", p)
		}
	}
}

// TestMirrorDestinationMountPoints proves that a mount point inside the destination is never
// entered: neither its contents deleted (the source lacks it; the source has a file there) nor
// written into (the source has a directory there), also deep inside an extraneous tree that is
// deleted around it; the run reports an error for each, but completes everything else.
func TestMirrorDestinationMountPoints(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	build(t, src,
		node{Path: "top", Type: 'f', Data: "top"},
		node{Path: "data/file", Type: 'f', Data: "file"},
		node{Path: "data/mnt/new", Type: 'f', Data: "must not be written into the destination's mount"},
		node{Path: "typechg", Type: 'f', Data: "a file where the destination has a mount point"},
	)
	build(t, dst, node{Path: "gone", Type: 'd'}, node{Path: "data/mnt", Type: 'd'}, node{Path: "typechg", Type: 'd'},
		node{Path: "old-extraneous", Type: 'f', Data: "x"}, node{Path: "deep/er/mnt", Type: 'd'}, node{Path: "deep/file", Type: 'f', Data: "f"})
	mounts := map[string]string{
		"gone":        newImage(t, 16).mountAt(t, filepath.Join(dst, "gone")),
		"data/mnt":    filepath.Join(dst, "data/mnt"),
		"typechg":     filepath.Join(dst, "typechg"),
		"deep/er/mnt": filepath.Join(dst, "deep/er/mnt"), // inside an extraneous tree
	}
	for _, p := range []string{"data/mnt", "typechg", "deep/er/mnt"} {
		d := t.TempDir()
		build(t, d, node{Path: "precious", Type: 'f', Data: "precious " + p}, node{Path: "sub/deeper", Type: 'f', Data: "deeper"})
		bindMount(t, d, mounts[p])
	}
	build(t, mounts["gone"], node{Path: "precious", Type: 'f', Data: "precious gone"}, node{Path: "sub/deeper", Type: 'f', Data: "deeper"})
	before := map[string]map[string]entry{}
	for p, m := range mounts {
		before[p] = snapshot(t, m)
	}

	rep, err := runMirror(t, src, dst, sync.Options{})
	t.Logf("Mirror: err=%v %s", err, fmtReport(rep))
	for p, m := range mounts {
		assertUnchanged(t, "mount point "+p+" inside the destination", before[p], m, cmpOpts{inodes: true})
		reported := errors.Is(err, sync.ErrMountPoint)
		for _, fe := range fileErrors(rep, p) {
			if errors.Is(fe.Err, sync.ErrMountPoint) {
				reported = true
			}
		}
		if !reported {
			t.Errorf("%s: no error wrapping sync.ErrMountPoint was reported for this destination mount point", p)
		}
	}
	if err != nil && !errors.Is(err, sync.ErrMountPoint) {
		t.Errorf("Mirror failed instead of completing around the mount points: %v", err)
	}
	for _, p := range []string{"top", "data/file"} {
		if !exists(filepath.Join(dst, p)) {
			t.Errorf("%s was not copied: the run did not complete around the mount points", p)
		}
	}
	if exists(filepath.Join(dst, "old-extraneous")) {
		t.Errorf("old-extraneous was not deleted: the run did not complete around the mount points")
	}
	if exists(filepath.Join(dst, "deep/file")) {
		t.Errorf("deep/file was not deleted: the run did not complete around the mount points")
	}
	assertRsyncAgreesArgs(t, src, dst, []string{"-x"}, "gone", "data/mnt", "typechg", "deep")
}

// TestMirrorRefusesBadArguments proves that overlapping roots (the same directory, one inside the
// other) and an exclude naming the root are refused with an error before anything is written.
func TestMirrorRefusesBadArguments(t *testing.T) {
	parallel(t)
	root := newExt4(t, 16)
	build(t, root, node{Path: "a/sub/f", Type: 'f', Data: "f"}, node{Path: "b/g", Type: 'f', Data: "g"})
	before := snapshot(t, root)
	cases := []struct {
		name     string
		src, dst string
		opts     sync.Options
	}{
		{"same root", "a", "a", sync.Options{}},
		{"destination inside the source", "a", "a/sub", sync.Options{}},
		{"source inside the destination", "a/sub", "a", sync.Options{}},
		{"same root through a different spelling", "a", "a/sub/..", sync.Options{}},
		{"exclude the root", "a", "b", sync.Options{Exclude: []string{"/"}}},
		{"exclude the root with dots", "a", "b", sync.Options{Exclude: []string{"./"}}},
		{"missing source", "nonexistent", "b", sync.Options{}},
		{"source is a file", "b/g", "b", sync.Options{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := runMirror(t, filepath.Join(root, c.src), filepath.Join(root, c.dst), c.opts)
			if err == nil {
				t.Errorf("Mirror(%s, %s, exclude %q) succeeded: %s", c.src, c.dst, c.opts.Exclude, fmtReport(rep))
			}
			assertUnchanged(t, "the file system", before, root, cmpOpts{inodes: true})
		})
	}
}
