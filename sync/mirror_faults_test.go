package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// TestMirrorNoSpaceBeforeCopy proves that a destination too small for the changes gets a
// *sync.NoSpaceError with Needed > Available, and is left untouched: same entries, contents,
// metadata and inodes, no temporary.
func TestMirrorNoSpaceBeforeCopy(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 16)
	for i := 0; i < 10; i++ {
		writeBig(t, filepath.Join(src, fmt.Sprintf("data/f%d", i)), 4*mib, byte(i))
	}
	build(t, src, node{Path: "keep.txt", Type: 'f', Data: "new keep"})
	build(t, dst,
		node{Path: "keep.txt", Type: 'f', Data: "old keep: must survive", Mtime: t1},
		node{Path: "data/f0", Type: 'f', Data: "old f0", Mtime: t1},
		node{Path: "extraneous", Type: 'f', Data: "the source lacks it"},
		node{Path: "data", Type: 'd', Mtime: t2},
	)
	before := snapshot(t, dst)
	rep, err := runMirror(t, src, dst, sync.Options{})
	var nse *sync.NoSpaceError
	if !errors.As(err, &nse) {
		t.Fatalf("Mirror onto a 16 MiB destination of 40 MiB of data: err = %v, want a *sync.NoSpaceError\n%s", err, fmtReport(rep))
	}
	t.Logf("%v (needed %d, available %d)", err, nse.Needed, nse.Available)
	if nse.Needed <= nse.Available {
		t.Errorf("NoSpaceError: Needed %d <= Available %d", nse.Needed, nse.Available)
	}
	if nse.Needed < 30*mib {
		t.Errorf("NoSpaceError: Needed %d, but the changes need about 40 MiB", nse.Needed)
	}
	assertUnchanged(t, "the destination (after a run that found it too small)", before, dst, cmpOpts{inodes: true})
}

// TestMirrorNoSpaceDuringCopy proves that when the destination runs out of space during the
// copy (another writer fills it), Mirror returns a *sync.NoSpaceError and the destination holds
// only whole files (each the old or the new version) and no temporary; a later run with room
// completes the copy.
func TestMirrorNoSpaceDuringCopy(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 64)
	for i := 0; i < 5; i++ {
		writeBig(t, filepath.Join(src, fmt.Sprintf("upd/f%d", i)), mib, byte(i))
	}
	build(t, src, node{Path: "old/keep", Type: 'f', Data: "kept"})
	mirror(t, src, dst, sync.Options{NoSync: true})
	oldContent := map[string]string{}
	for p, e := range snapshot(t, dst) {
		if e.Type == unix.S_IFREG {
			oldContent[p] = e.Hash
		}
	}
	for i := 0; i < 5; i++ {
		writeBig(t, filepath.Join(src, fmt.Sprintf("upd/f%d", i)), mib+kib, byte(100+i))
	}
	for i := 0; i < 30; i++ {
		writeBig(t, filepath.Join(src, fmt.Sprintf("new/f%02d", i)), mib, byte(50+i))
	}

	// On the first PhaseCopy event, a filler takes all but about 1 MiB of the free space, in a
	// few large fallocate calls (the mirror writes meanwhile, so the free space moves). The next
	// event tells how much data was still to copy then.
	opts := sync.Options{Exclude: []string{"filler"}, ProgressInterval: time.Millisecond, NoSync: true}
	var (
		filled, freeAfter int64
		remainingAfter    int64 = -1
		fillDone          bool
	)
	events := &eventLog{hook: func(p sync.Progress) {
		switch {
		case p.Phase == sync.PhaseScan:
		case !fillDone:
			fillDone = true
			f, err := os.Create(filepath.Join(dst, "filler"))
			if err != nil {
				t.Errorf("filler: %v", err)
				return
			}
			defer f.Close()
			for try := 0; try < 100; try++ {
				free := freeBytes(t, dst)
				if free < 2*mib {
					break
				}
				// A failed fallocate may keep part of what it allocated: go on from the size.
				var st unix.Stat_t
				must(t, unix.Fstat(int(f.Fd()), &st))
				unix.Fallocate(int(f.Fd()), 0, st.Blocks*512, (free-mib)&^(4*kib-1))
			}
			var st unix.Stat_t
			must(t, unix.Fstat(int(f.Fd()), &st))
			filled = st.Blocks * 512
			freeAfter = freeBytes(t, dst)
		case remainingAfter < 0:
			remainingAfter = p.BytesTotal - p.BytesDone
		}
	}}
	opts.Progress = events.record
	rep, err := runMirror(t, src, dst, opts)
	t.Logf("filled %d bytes, leaving %d free with %d bytes still to copy; err=%v %s", filled, freeAfter, remainingAfter, err, fmtReport(rep))
	if !fillDone {
		t.Fatalf("no PhaseCopy progress event came: the destination could not be filled during the copy")
	}
	// The old versions of the 5 updated files (5 MiB) are freed as they are replaced.
	if remainingAfter < freeAfter+5*mib+2*mib {
		t.Skipf("skipped: the copy could still fit when the filler was written (%d bytes to copy, %d free)", remainingAfter, freeAfter)
	}
	var nse *sync.NoSpaceError
	if !errors.As(err, &nse) {
		t.Errorf("err = %v, want a *sync.NoSpaceError: %d bytes were still to copy with %d free", err, remainingAfter, freeAfter)
	}
	requireFinalDone(t, events)
	srcSnap := snapshot(t, src)
	for p, e := range snapshot(t, dst) {
		if p == "filler" || p == "." {
			continue
		}
		s, inSrc := srcSnap[p]
		old, wasOld := oldContent[p]
		switch {
		case !inSrc && !wasOld:
			t.Errorf("%q: unexpected entry in the destination (a temporary left behind?)", p)
		case e.Type != unix.S_IFREG:
		case inSrc && e.Hash == s.Hash:
		case wasOld && e.Hash == old:
		default:
			t.Errorf("%q: neither its old nor its new version (%d bytes)", p, e.Size)
		}
	}
	for p := range oldContent {
		if !exists(filepath.Join(dst, p)) {
			t.Errorf("%q: a file of the destination was lost", p)
		}
	}
	rm(t, dst, "filler")
	mirror(t, src, dst, sync.Options{Exclude: []string{"filler"}})
}

// corruptExtentTree makes reading the file p (on the unmounted image) fail: its data is spread
// over many extents so that its extent tree has a leaf block outside the inode, which is zeroed.
// stat still works (the inode is intact); read returns EIO.
func corruptExtentTree(t *testing.T, img *image, p string) {
	t.Helper()
	out := run(t, "debugfs", "-R", "ex /"+p, img.Path)
	// "Level Entries Logical Physical Length": the index entry is the line of level 0/1.
	m := regexp.MustCompile(`(?m)^\s*0/\s*1\s+\d+/\s*\d+\s+\d+\s*-\s*\d+\s+(\d+)\s+\d+\s*$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("premise: %s has no extent index block:\n%s", p, out)
	}
	blk, _ := strconv.Atoi(m[1])
	run(t, "debugfs", "-w", "-R", fmt.Sprintf("zap_block %d", blk), img.Path)
}

// fragmented is a file whose 12 separate 4 KiB data extents need an extent tree block.
func fragmented(p string, seed byte) node {
	var cs []chunk
	for i := 0; i < 12; i++ {
		cs = append(cs, chunk{int64(i) * 8 * kib, pattern(4*kib, seed)})
	}
	return node{Path: p, Type: 'f', Chunks: cs}
}

// TestMirrorReadErrors proves that a source file that cannot be read (a real I/O error from a
// corrupted ext4 extent tree) is reported in Report.Errors with op "read", its previous
// destination version (if any) is kept, and every other file is copied; the run completes.
func TestMirrorReadErrors(t *testing.T) {
	parallel(t)
	img := newImage(t, 16)
	src := img.mountAt(t, filepath.Join(filepath.Dir(img.Path), "mnt"))
	dst := newExt4(t, 16)
	build(t, src,
		fragmented("bad-upd", 1),
		node{Path: "good1", Type: 'f', Data: "good1"},
		node{Path: "dir/good2", Type: 'f', Data: string(pattern(100*kib, 2))},
	)
	mirror(t, src, dst, sync.Options{})
	oldBad := readFile(t, filepath.Join(dst, "bad-upd"))
	build(t, src,
		fragmented("bad-upd", 3),
		fragmented("dir/bad-new", 4),
		node{Path: "good1", Type: 'f', Data: "good1 changed"},
		node{Path: "dir/good3", Type: 'f', Data: "good3"},
	)
	img.unmount(t)
	corruptExtentTree(t, img, "bad-upd")
	corruptExtentTree(t, img, "dir/bad-new")
	img.mountAt(t, src)
	for _, p := range []string{"bad-upd", "dir/bad-new"} {
		if _, err := os.ReadFile(filepath.Join(src, p)); err == nil {
			t.Fatalf("premise: reading %s should fail after corrupting its extent tree", p)
		} else {
			t.Logf("premise: reading %s: %v", p, err)
		}
	}

	rep, err := runMirror(t, src, dst, sync.Options{})
	if err != nil {
		t.Fatalf("Mirror did not complete: %v\n%s", err, fmtReport(rep))
	}
	t.Log(fmtReport(rep))
	for _, p := range []string{"bad-upd", "dir/bad-new"} {
		errs := fileErrors(rep, p)
		if len(errs) == 0 {
			t.Errorf("%s: the read error was not reported", p)
		}
		for _, e := range errs {
			if e.Op != "read" {
				t.Errorf("%s: reported with op %q (%v), want \"read\"", p, e.Op, e.Err)
			}
		}
	}
	for _, e := range rep.Errors {
		if e.Path != "bad-upd" && e.Path != "dir/bad-new" {
			t.Errorf("unexpected error: %v", e)
		}
	}
	if got := readFile(t, filepath.Join(dst, "bad-upd")); !bytes.Equal(got, oldBad) {
		t.Errorf("bad-upd: the previous destination version was not kept")
	}
	if exists(filepath.Join(dst, "dir/bad-new")) {
		t.Errorf("dir/bad-new: an unreadable file was created in the destination")
	}
	// Everything else is exact.
	assertRsyncAgrees(t, src, dst, "bad-upd", "dir/bad-new")
	assertSameTree(t, src, dst, "bad-upd", "dir/bad-new")
	for _, p := range []string{"dir/good2", "dir/good3"} {
		if hashFile(t, filepath.Join(src, p)) != hashFile(t, filepath.Join(dst, p)) {
			t.Errorf("%s was not copied", p)
		}
	}
}

// TestHelperMirrorProcess is not a test: it is the child process that TestMirrorLeftovers kills.
func TestHelperMirrorProcess(t *testing.T) {
	if os.Getenv("TB_HELPER_MIRROR") != "1" {
		return
	}
	_, err := sync.Mirror(context.Background(), os.Getenv("TB_SRC"), os.Getenv("TB_DST"), sync.Options{NoSync: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestMirrorLeftovers proves that temporaries left by a run that was cancelled mid-copy, or by
// a process killed with SIGKILL mid-copy, are removed by the next run, which makes the copy
// exact; that a source file named exactly as those temporaries is not copied (a source may be
// an earlier destination: tempname.go); and that one whose name only looks like them is.
func TestMirrorLeftovers(t *testing.T) {
	parallel(t)
	src := newExt4(t, 256)
	dst := newExt4(t, 256)
	build(t, src, node{Path: "small", Type: 'f', Data: "small"})
	writeBig(t, filepath.Join(src, "sub/dir/big"), 160*mib, 1)
	expected := map[string]bool{".": true}
	for _, p := range relPaths(t, src) {
		expected[p] = true
	}
	leftovers := func() []string {
		var out []string
		for _, p := range relPaths(t, dst) {
			if !expected[p] {
				out = append(out, p)
			}
		}
		return out
	}

	// 1. Cancelled in-process mid-copy.
	// It is cancelled once 32 MiB of the big file are written, whatever BytesDone says.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	free0 := freeBytes(t, dst)
	_, err := sync.Mirror(ctx, src, dst, sync.Options{NoSync: true, ProgressInterval: time.Millisecond, Progress: func(p sync.Progress) {
		if p.Phase == sync.PhaseCopy && free0-freeBytes(t, dst) > 32*mib {
			cancel()
		}
	}})
	t.Logf("cancelled run: err=%v; left behind: %q", err, leftovers())
	var all []string
	all = append(all, leftovers()...)

	// 2. Killed mid-copy: a child process runs Mirror; it is killed once 32 MiB were written.
	rm(t, dst, "sub")
	for _, p := range leftovers() {
		rm(t, dst, p)
	}
	free0 = freeBytes(t, dst)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMirrorProcess$")
	cmd.Env = append(os.Environ(), "TB_HELPER_MIRROR=1", "TB_SRC="+src, "TB_DST="+dst)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	deadline := time.Now().Add(60 * time.Second)
poll:
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Logf("the child finished before it could be killed: %v\n%s", err, out.String())
			break poll
		default:
		}
		if free0-freeBytes(t, dst) > 32*mib {
			cmd.Process.Kill()
			<-exited
			killed = true
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !killed && cmd.ProcessState == nil {
		cmd.Process.Kill()
		<-exited
		t.Fatalf("the child did not start copying within 60s:\n%s", out.String())
	}
	t.Logf("killed run: left behind: %q", leftovers())
	all = append(all, leftovers()...)
	if len(all) == 0 {
		t.Logf("no run left a named temporary behind (the engine may use O_TMPFILE): nothing to clean up")
	}

	// A source file named as a temporary is not copied (a source's leftovers); one whose name
	// only looks like one is mirrored, not cleaned up.
	sort.Strings(all)
	var decoys, lookalikes []string
	for i, p := range all {
		d := filepath.Join("decoy", fmt.Sprint(i), filepath.Base(p))
		decoys = append(decoys, d)
		writeFile(t, filepath.Join(src, d), []byte("a source file named as a temporary"))
		l := filepath.Join(filepath.Dir(p), filepath.Base(p)+"-x")
		lookalikes = append(lookalikes, l)
		writeFile(t, filepath.Join(src, l), []byte("looks like a temporary"))
	}

	rep, err := runMirror(t, src, dst, sync.Options{})
	if err != nil {
		t.Fatalf("Mirror: %v\n%s", err, fmtReport(rep))
	}
	requireNoFileErrors(t, rep)
	assertRsyncAgreesArgs(t, src, dst, tempExcludes)
	if d := diffSnapshots(snapshot(t, src, decoys...), snapshot(t, dst), cmpOpts{}); len(d) > 0 {
		t.Errorf("destination differs from the source, the decoys aside (first: source, second: destination):\n  %s", strings.Join(d, "\n  "))
	}
	assertSecondRunNoChange(t, src, dst, sync.Options{})
	for _, p := range all {
		if exists(filepath.Join(dst, p)) {
			t.Errorf("the leftover temporary %q is still there after the next run", p)
		}
	}
	for _, d := range decoys {
		if exists(filepath.Join(dst, d)) {
			t.Errorf("the source file %q, named as a temporary, was copied", d)
		}
	}
	for _, l := range lookalikes {
		if !exists(filepath.Join(dst, l)) {
			t.Errorf("the source file %q, named like a temporary, was not mirrored", l)
		}
	}
}

// TestMirrorCancel proves that cancelling the context during the copy (of a big file, of a tree
// of many files) makes Mirror return within about a second with an error wrapping
// context.Canceled, that every destination file is then absent, its old version or its complete
// new version, and that the next run removes any temporary and makes the copy exact.
func TestMirrorCancel(t *testing.T) {
	parallel(t)
	src := newExt4(t, 256)
	dst := newExt4(t, 256)
	cases := []struct {
		name  string
		setup func(t *testing.T, s string, changed bool)
	}{
		{"big file", func(t *testing.T, s string, changed bool) {
			seed := byte(1)
			if changed {
				seed = 2
			}
			writeBig(t, filepath.Join(s, "big"), 96*mib, seed)
			writeFile(t, filepath.Join(s, "small"), []byte{seed})
		}},
		{"many files", func(t *testing.T, s string, changed bool) {
			for d := 0; d < 15; d++ {
				for f := 0; f < 100; f++ {
					if changed && f%2 == 1 {
						continue // half of them are new
					}
					seed := byte(f)
					if changed {
						seed++
					}
					writeFile(t, filepath.Join(s, fmt.Sprintf("d%02d/f%03d", d, f)), pattern(8*kib, seed))
				}
			}
			if changed {
				for d := 0; d < 15; d++ {
					for f := 1; f < 100; f += 2 {
						writeFile(t, filepath.Join(s, fmt.Sprintf("d%02d/f%03d", d, f)), pattern(8*kib, 200))
					}
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := filepath.Join(src, c.name), filepath.Join(dst, c.name)
			mkdirs(t, s, d)
			c.setup(t, s, false)
			mirror(t, s, d, sync.Options{NoSync: true, Checksum: false})
			old := snapshot(t, d)
			c.setup(t, s, true)
			newSnap := snapshot(t, s)

			// Already cancelled: returns at once, writes nothing.
			pre, cancelPre := context.WithCancel(context.Background())
			cancelPre()
			start := time.Now()
			_, err := sync.Mirror(pre, s, d, sync.Options{NoSync: true})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("with a cancelled context: err = %v, want one wrapping context.Canceled", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("with a cancelled context, Mirror took %v", took)
			}
			assertUnchanged(t, "the destination (after a run with a cancelled context)", old, d, cmpOpts{inodes: true})

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelledAt time.Time
			var once gosync.Once
			events := &eventLog{hook: func(p sync.Progress) {
				if p.Phase == sync.PhaseCopy && (p.BytesDone > 0 || p.FilesDone > 0) {
					once.Do(func() {
						cancelledAt = time.Now()
						cancel()
					})
				}
			}}
			opts := sync.Options{NoSync: true, ProgressInterval: time.Millisecond, Progress: events.record}
			_, err = sync.Mirror(ctx, s, d, opts)
			returned := time.Now()
			requireFinalDone(t, events)
			if cancelledAt.IsZero() {
				t.Fatalf("the run ended before it could be cancelled (err=%v): the test proved nothing", err)
			}
			if took := returned.Sub(cancelledAt); took > 2*time.Second {
				t.Errorf("Mirror returned %v after the cancel, want within about 1s", took)
			} else {
				t.Logf("Mirror returned %v after the cancel: %v", took, err)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want one wrapping context.Canceled", err)
			}
			temps := 0
			for p, e := range snapshot(t, d) {
				if e.Type != unix.S_IFREG {
					continue
				}
				n, inNew := newSnap[p]
				o, inOld := old[p]
				switch {
				case inNew && e.Hash == n.Hash:
				case inOld && e.Hash == o.Hash:
				case !inNew && !inOld:
					temps++ // a temporary, which the next run must remove
				default:
					t.Errorf("%q: neither its old nor its complete new version after the cancel (%d bytes)", p, e.Size)
				}
			}
			t.Logf("%d unknown files (temporaries) after the cancel", temps)
			mirror(t, s, d, sync.Options{NoSync: true})
		})
	}
}

// TestMirrorErrorCap proves that per-file errors do not stop the run and that Report.Errors is
// capped at sync.MaxReportedErrors while ErrorCount counts them all: 1,100 destination files
// are immutable (chattr +i), so replacing them fails, one error each.
func TestMirrorErrorCap(t *testing.T) {
	parallel(t)
	src := newExt4(t, 32)
	dst := newExt4(t, 32)
	const n = sync.MaxReportedErrors + 100
	var nodes []node
	var paths []string
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("d%02d/f%04d", i/100, i)
		nodes = append(nodes, node{Path: p, Type: 'f', Data: "old"})
		paths = append(paths, filepath.Join(dst, p))
	}
	build(t, src, nodes...)
	mirror(t, src, dst, sync.Options{NoSync: true})
	for i := range nodes {
		nodes[i].Data = "new content"
	}
	build(t, src, nodes...)
	build(t, src, node{Path: "ok/new", Type: 'f', Data: "copied despite the errors"})
	run(t, "chattr", append([]string{"+i"}, paths...)...)
	t.Cleanup(func() { exec.Command("chattr", append([]string{"-i"}, paths...)...).Run() })

	rep, err := runMirror(t, src, dst, sync.Options{NoSync: true})
	if err != nil {
		t.Fatalf("Mirror did not complete: %v\n%s", err, fmtReport(rep))
	}
	if rep.ErrorCount != n {
		t.Errorf("ErrorCount = %d, want %d (one per immutable file)", rep.ErrorCount, n)
	}
	if len(rep.Errors) != sync.MaxReportedErrors {
		t.Errorf("len(Errors) = %d, want the cap %d", len(rep.Errors), sync.MaxReportedErrors)
	}
	if !exists(filepath.Join(dst, "ok/new")) {
		t.Errorf("ok/new was not copied: the run did not go on past the errors")
	}
	for _, p := range paths[:3] {
		if got := string(readFile(t, p)); got != "old" {
			t.Errorf("%s: %q, want the old version kept", p, got)
		}
	}
}

// requireFinalDone requires that the last Progress event is the one PhaseDone event, also when
// the run failed.
func requireFinalDone(t *testing.T, events *eventLog) {
	t.Helper()
	evs := events.list()
	n := 0
	for _, e := range evs {
		if e.Phase == sync.PhaseDone {
			n++
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].Phase != sync.PhaseDone || n != 1 {
		t.Errorf("a run that ended early must end its Progress with exactly one PhaseDone event; got %d events, %d PhaseDone", len(evs), n)
	}
}

// TestMirrorUnreadableSourceDirectory proves that a source directory that cannot be listed (a
// real EBADMSG from a corrupted ext4 directory block) is reported, and that what the
// destination holds under it is not deleted: nothing is lost on an error.
func TestMirrorUnreadableSourceDirectory(t *testing.T) {
	parallel(t)
	img := newImage(t, 16)
	src := img.mountAt(t, filepath.Join(filepath.Dir(img.Path), "mnt"))
	dst := newExt4(t, 16)
	var nodes []node
	for i := 0; i < 50; i++ {
		nodes = append(nodes, node{Path: fmt.Sprintf("bigdir/file%02d", i), Type: 'f', Data: fmt.Sprint(i)})
	}
	nodes = append(nodes, node{Path: "other/f", Type: 'f', Data: "other"})
	build(t, src, nodes...)
	mirror(t, src, dst, sync.Options{})
	build(t, src, node{Path: "other/g", Type: 'f', Data: "new"})
	before := snapshot(t, filepath.Join(dst, "bigdir"))

	img.unmount(t)
	out := run(t, "debugfs", "-R", "blocks /bigdir", img.Path)
	blk := regexp.MustCompile(`(?m)^(\d+)\b`).FindStringSubmatch(out)
	if blk == nil {
		t.Fatalf("premise: no block of bigdir in:\n%s", out)
	}
	run(t, "debugfs", "-w", "-R", "zap_block "+blk[1], img.Path)
	img.mountAt(t, src)
	if _, err := os.ReadDir(filepath.Join(src, "bigdir")); err == nil {
		t.Fatalf("premise: listing bigdir should fail after zeroing its block")
	} else {
		t.Logf("premise: listing bigdir: %v", err)
	}

	rep, err := runMirror(t, src, dst, sync.Options{})
	if err != nil {
		t.Fatalf("Mirror did not complete: %v\n%s", err, fmtReport(rep))
	}
	t.Log(fmtReport(rep))
	if len(fileErrors(rep, "bigdir")) == 0 {
		t.Errorf("the unreadable source directory bigdir was not reported")
	}
	assertUnchanged(t, "dst/bigdir (whose source could not be listed)", before, filepath.Join(dst, "bigdir"), cmpOpts{inodes: true, noRootMtime: true})
	if !exists(filepath.Join(dst, "other/g")) {
		t.Errorf("other/g was not copied: the run did not go on")
	}
}

// TestMirrorSpaceAccounting proves that a destination that can hold the new tree is not refused:
// a file with many hard links counts once, deleting extraneous files frees space (the new data
// sorts before the deleted one), and files replaced on a nearly full destination only need room
// for one new version at a time.
func TestMirrorSpaceAccounting(t *testing.T) {
	parallel(t)
	cases := []struct {
		name     string
		src, dst func(t *testing.T, root string)
		exclude  []string
		dstMiB   int
	}{
		{"hard links counted once", func(t *testing.T, root string) {
			writeBig(t, filepath.Join(root, "a/big"), 8*mib, 1)
			for i := 0; i < 5; i++ {
				must(t, os.Link(filepath.Join(root, "a/big"), filepath.Join(root, fmt.Sprintf("link%d", i))))
			}
		}, func(t *testing.T, root string) {}, nil, 16},
		{"space freed by deletions", func(t *testing.T, root string) {
			writeBig(t, filepath.Join(root, "a-new/big"), 10*mib, 2)
		}, func(t *testing.T, root string) {
			writeBig(t, filepath.Join(root, "z-old/big"), 10*mib, 3)
		}, nil, 16},
		// Files replaced by new versions on a destination with room for one new version at a
		// time only (rsync does it), not for all at once.
		{"replacements on a nearly full destination", func(t *testing.T, root string) {
			for i := 0; i < 5; i++ {
				writeBig(t, filepath.Join(root, fmt.Sprintf("f%d", i)), 2*mib, byte(10+i))
			}
		}, func(t *testing.T, root string) {
			for i := 0; i < 5; i++ {
				writeBig(t, filepath.Join(root, fmt.Sprintf("f%d", i)), 2*mib, byte(20+i))
				setMtime(t, filepath.Join(root, fmt.Sprintf("f%d", i)), t1) // surely not the source's
			}
			// Leave about 3 MiB free, whatever the file system's own overhead.
			filler := filepath.Join(root, "filler")
			writeBig(t, filler, max(0, freeBytes(t, root)-3*mib)&^(4*kib-1), 30)
		}, []string{"filler"}, 32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := newExt4(t, 32)
			dst := newExt4(t, c.dstMiB)
			c.src(t, src)
			c.dst(t, dst)
			t.Logf("destination free: %.1f MiB", float64(freeBytes(t, dst))/mib)
			dry, err := runMirror(t, src, dst, sync.Options{Exclude: c.exclude, DryRun: true})
			if err != nil {
				t.Fatalf("DryRun: %v", err)
			}
			events := &eventLog{}
			rep := mirror(t, src, dst, sync.Options{Exclude: c.exclude, Progress: events.record})
			// Retries after running out of space are not data the run reports twice.
			if !sameCounts(dry, rep) {
				t.Errorf("the DryRun reported %s\nbut the run did %s", fmtReport(dry), fmtReport(rep))
			}
			if evs := events.list(); len(evs) > 0 {
				if last := evs[len(evs)-1]; last.BytesDone != last.BytesTotal {
					t.Errorf("final progress: %d of %d bytes", last.BytesDone, last.BytesTotal)
				}
			}
		})
	}
}
