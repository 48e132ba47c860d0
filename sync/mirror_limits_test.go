package sync_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// chain is the relative path of n folders named name, one inside the other.
func chain(name string, n int) string {
	return strings.TrimSuffix(strings.Repeat(name+"/", n), "/")
}

// mkdirChain creates under root the folders of chain(name, n) through descriptors, since the
// path soon passes PATH_MAX, and a file "leaf" in the deepest.
func mkdirChain(t testing.TB, root, name string, n int) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil && err != unix.EEXIST {
			unix.Close(fd)
			t.Fatalf("mkdir level %d: %v", i+1, err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("open level %d: %v", i+1, err)
		}
		fd = next
	}
	defer unix.Close(fd)
	if err := unix.Mknodat(fd, "leaf", unix.S_IFREG|0o644, 0); err != nil {
		t.Fatal(err)
	}
}

// makeEmptyFiles creates n empty files named prefix%07d in dir (created if needed), with one
// mknod each: millions take seconds.
func makeEmptyFiles(t testing.TB, dir, prefix string, n int) {
	t.Helper()
	mkdirs(t, dir)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for i := 0; i < n; i++ {
		if err := unix.Mknodat(fd, fmt.Sprintf("%s%07d", prefix, i), unix.S_IFREG|0o644, 0); err != nil {
			t.Fatalf("mknod %d in %s: %v", i, dir, err)
		}
	}
}

// makeLinkedFiles creates n empty files with two links each (aNNNN and bNNNN), perDir pairs in
// each folder dNNNN of root.
func makeLinkedFiles(t testing.TB, root string, n, perDir int) {
	t.Helper()
	for d := 0; d*perDir < n; d++ {
		dir := filepath.Join(root, fmt.Sprintf("d%04d", d))
		mkdirs(t, dir)
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < perDir && d*perDir+i < n; i++ {
			a, b := fmt.Sprintf("a%04d", i), fmt.Sprintf("b%04d", i)
			if err := unix.Mknodat(fd, a, unix.S_IFREG|0o644, 0); err != nil {
				t.Fatal(err)
			}
			if err := unix.Linkat(fd, a, fd, b, 0); err != nil {
				t.Fatal(err)
			}
		}
		unix.Close(fd)
	}
}

// requireLimit fails the test unless err is the *sync.LimitError want, whose message names its
// path.
func requireLimit(t testing.TB, err error, want sync.LimitError) {
	t.Helper()
	var le *sync.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("Mirror returned %v, want a *LimitError %+v", err, want)
	}
	if *le != want {
		t.Fatalf("Mirror returned the *LimitError %+v, want %+v", *le, want)
	}
	if msg := le.Error(); !strings.Contains(msg, sync.ShortPath(want.Path)) || strings.Count(msg, ". ") > 0 {
		t.Errorf("message %q: want one sentence naming %s", msg, sync.ShortPath(want.Path))
	}
}

// TestMirrorLimitErrors: each bound, reached with small limits, stops the run with a *LimitError
// naming the entry and its tree; the scan reaches it before anything is written, so the
// destination is untouched; a tree at the bound is mirrored whole. Workers is 1, so that the
// entry found beyond the bound is always the same.
func TestMirrorLimitErrors(t *testing.T) {
	const depth, nameBytes, linkGroups = 10, 64 << 10, 10
	tests := []struct {
		name     string
		src, dst func(t *testing.T, root string)
		want     *sync.LimitError // nil: the run succeeds
	}{
		{name: "source nested beyond the limit",
			src:  func(t *testing.T, r string) { mkdirChain(t, r, "d", depth+2) },
			want: &sync.LimitError{Path: chain("d", depth+1), What: sync.LimitDepth, Limit: depth}},
		{name: "source nested at the limit",
			src: func(t *testing.T, r string) { mkdirChain(t, r, "d", depth) }},
		{name: "destination nested beyond the limit, to delete",
			dst:  func(t *testing.T, r string) { mkdirChain(t, r, "old", depth+2) },
			want: &sync.LimitError{Path: chain("old", depth+1), What: sync.LimitDepth, Limit: depth, InDestination: true}},
		{name: "destination nested at the limit, deleted",
			dst: func(t *testing.T, r string) { mkdirChain(t, r, "old", depth) }},
		// 3,000 names of 8 bytes take more than 64 KiB; 700 in the source and 700 in the
		// destination (a second run) less.
		{name: "source folder with too many entries",
			src:  func(t *testing.T, r string) { makeEmptyFiles(t, filepath.Join(r, "big"), "f", 3000) },
			want: &sync.LimitError{Path: "big", What: sync.LimitNames, Limit: nameBytes}},
		{name: "source root with too many entries",
			src:  func(t *testing.T, r string) { makeEmptyFiles(t, r, "f", 3000) },
			want: &sync.LimitError{Path: ".", What: sync.LimitNames, Limit: nameBytes}},
		{name: "source folder with many entries within the limit",
			src: func(t *testing.T, r string) { makeEmptyFiles(t, filepath.Join(r, "big"), "f", 700) }},
		{name: "destination folder with too many entries",
			src:  func(t *testing.T, r string) { makeEmptyFiles(t, filepath.Join(r, "big"), "f", 1) },
			dst:  func(t *testing.T, r string) { makeEmptyFiles(t, filepath.Join(r, "big"), "g", 3000) },
			want: &sync.LimitError{Path: "big", What: sync.LimitNames, Limit: nameBytes, InDestination: true}},
		{name: "destination folder with too many entries, to delete",
			dst:  func(t *testing.T, r string) { makeEmptyFiles(t, filepath.Join(r, "gone"), "g", 3000) },
			want: &sync.LimitError{Path: "gone", What: sync.LimitNames, Limit: nameBytes, InDestination: true}},
		{name: "more hard-linked files than the limit",
			src:  func(t *testing.T, r string) { makeLinkedFiles(t, r, linkGroups+2, 100) },
			want: &sync.LimitError{Path: fmt.Sprintf("d0000/a%04d", linkGroups), What: sync.LimitLinks, Limit: linkGroups}},
		{name: "hard-linked files at the limit",
			src: func(t *testing.T, r string) { makeLinkedFiles(t, r, linkGroups, 100) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parallel(t)
			src, dst := newExt4(t, 32), newExt4(t, 32)
			if tt.src != nil {
				tt.src(t, src)
			}
			if tt.dst != nil {
				tt.dst(t, dst)
			}
			opts := sync.WithLimits(sync.Options{NoSync: true, Workers: 1}, depth, nameBytes, linkGroups)
			if tt.want == nil {
				mirror(t, src, dst, opts)
				return
			}
			before := snapshot(t, dst)
			_, err := runMirror(t, src, dst, opts)
			requireLimit(t, err, *tt.want)
			assertUnchanged(t, "destination", before, dst, cmpOpts{})
		})
	}
}

// withOpenFiles runs f with the soft limit of open descriptors set to n, as a caller of the
// helper may set it. The tests that call it do not run in parallel: the limit is the process's.
func withOpenFiles(t *testing.T, n uint64, f func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = min(n, old.Max)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	}()
	f()
}

// TestMirrorLimitDepthDescriptors: with the default bounds and 1,024 open descriptors (Linux's
// default soft limit), a source nested 5,000 levels deep stops the run at level 257 with a
// *LimitError and nothing written, and eight branches nested 256 levels deep, which the default
// number of workers would walk at once with two descriptors per level, are mirrored whole.
func TestMirrorLimitDepthDescriptors(t *testing.T) {
	requireRoot(t)
	const openFiles = 1024
	t.Run("5,000 levels", func(t *testing.T) {
		src, dst := newExt4(t, 64), newExt4(t, 16)
		mkdirChain(t, src, "d", 5000)
		before := snapshot(t, dst)
		var err error
		var rep sync.Report
		withOpenFiles(t, openFiles, func() { rep, err = runMirror(t, src, dst, sync.Options{NoSync: true}) })
		if err == nil {
			t.Logf("the run went on: %s", fmtReport(rep))
		}
		requireLimit(t, err, sync.LimitError{Path: chain("d", 257), What: sync.LimitDepth, Limit: 256})
		assertUnchanged(t, "destination", before, dst, cmpOpts{})
	})
	t.Run("8 branches of 256 levels", func(t *testing.T) {
		src, dst := newExt4(t, 64), newExt4(t, 64)
		for i := range 8 {
			b := filepath.Join(src, fmt.Sprintf("b%d", i))
			mkdirs(t, b)
			mkdirChain(t, b, "d", 255)
		}
		var err error
		var rep sync.Report
		withOpenFiles(t, openFiles, func() { rep, err = runMirror(t, src, dst, sync.Options{NoSync: true}) })
		if err != nil {
			t.Fatalf("Mirror: %v", err)
		}
		requireNoFileErrors(t, rep)
		assertSameTree(t, src, dst)
	})
}

// TestMirrorLimitNamesMemory: a source folder of 1,000,000 empty files stops the scan with a
// *LimitError naming it, and a folder of 50,000 files (more than any real Persistent Storage
// holds in one folder) is mirrored whole; the peak of the live heap stays under 32 MiB in both cases. Not
// parallel: other tests' allocations would be counted.
func TestMirrorLimitNamesMemory(t *testing.T) {
	requireRoot(t)
	// ext4 holds at most 32,768 inodes per 128 MiB group of 4 KiB blocks: 33 groups, sparse.
	src := newExt4(t, 33*128, "-N", "1070000", "-I", "128")
	dst := newExt4(t, 256, "-N", "65536", "-I", "128")
	hostile, ok := filepath.Join(src, "hostile"), filepath.Join(src, "ok")
	makeEmptyFiles(t, filepath.Join(hostile, "wide"), "f", 1_000_000)
	makeEmptyFiles(t, filepath.Join(ok, "ImapMail"), "f", 50_000)
	mkdirs(t, filepath.Join(dst, "hostile"), filepath.Join(dst, "ok"))

	var err error
	var rep sync.Report
	opts := sync.Options{NoSync: true, Workers: 8}
	peak := peakHeap(func() {
		rep, err = runMirror(t, hostile, filepath.Join(dst, "hostile"), sync.Options{NoSync: true, Workers: 8, DryRun: true})
	})
	t.Logf("1,000,000 entries: peak live heap %.1f MiB (%v; %s)", float64(peak)/mib, err, fmtReport(rep))
	if peak > 32*mib {
		t.Errorf("the scan of a folder of 1,000,000 entries took a peak of %.1f MiB of heap, want under 32 MiB", float64(peak)/mib)
	}
	requireLimit(t, err, sync.LimitError{Path: "wide", What: sync.LimitNames, Limit: 16 << 20})

	peak = peakHeap(func() { rep, err = runMirror(t, ok, filepath.Join(dst, "ok"), opts) })
	t.Logf("50,000 entries: peak live heap %.1f MiB (%s)", float64(peak)/mib, fmtReport(rep))
	if err != nil {
		t.Fatalf("Mirror of a folder of 50,000 files: %v", err)
	}
	requireNoFileErrors(t, rep)
	if rep.Created != 50_001 {
		t.Errorf("created %d entries, want 50,001", rep.Created)
	}
	if peak > 32*mib {
		t.Errorf("mirroring a folder of 50,000 files took a peak of %.1f MiB of heap, want under 32 MiB", float64(peak)/mib)
	}
}

// TestMirrorLimitLinksMemory: a source of 1,000,000 files with two hard links each stops the
// scan with a *LimitError past 65,536 of them, with a peak of the live heap under 32 MiB. Not
// parallel: other tests' allocations would be counted.
func TestMirrorLimitLinksMemory(t *testing.T) {
	requireRoot(t)
	src := newExt4(t, 33*128, "-N", "1070000", "-I", "128")
	dst := newExt4(t, 16)
	makeLinkedFiles(t, src, 1_000_000, 1000)

	var err error
	var rep sync.Report
	peak := peakHeap(func() {
		rep, err = runMirror(t, src, dst, sync.Options{NoSync: true, Workers: 8, DryRun: true})
	})
	t.Logf("1,000,000 hard-linked files: peak live heap %.1f MiB (%v; %s)", float64(peak)/mib, err, fmtReport(rep))
	if peak > 32*mib {
		t.Errorf("the scan of 1,000,000 hard-linked files took a peak of %.1f MiB of heap, want under 32 MiB", float64(peak)/mib)
	}
	var le *sync.LimitError
	if !errors.As(err, &le) || le.What != sync.LimitLinks || le.Limit != 1<<16 || le.InDestination {
		t.Fatalf("Mirror returned %v, want a *LimitError for more than 65536 hard-linked files", err)
	}
	if st := lstat(t, filepath.Join(src, le.Path)); st.Nlink != 2 {
		t.Errorf("the *LimitError names %q, which has %d links; want a file with two", le.Path, st.Nlink)
	}
}

// TestShortPath: long paths keep their first and last components, cut between characters.
func TestShortPath(t *testing.T) {
	long := strings.Repeat("é", 100)
	tests := []struct{ in, want string }{
		{"a/b", "a/b"},
		{chain("d", 60), chain("d", 60)},
		{chain("d", 100), chain("d", 30) + "/…/" + chain("d", 30)},
		{long + "/x", strings.Repeat("é", 30) + "/…/x"},
		{"x/" + long, "x/…/" + strings.Repeat("é", 30)},
	}
	for _, tt := range tests {
		if got := sync.ShortPath(tt.in); got != tt.want {
			t.Errorf("ShortPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
