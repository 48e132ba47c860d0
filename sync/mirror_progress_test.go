package sync_test

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// countsScenario mirrors a first tree onto dst, then changes the source in a known way and
// returns the report the next run must give. Directory mtimes are put back after the changes,
// so that only the listed entries differ.
func countsScenario(t *testing.T, src, dst string) sync.Report {
	t.Helper()
	build(t, src,
		node{Path: "keep/k1", Type: 'f', Data: "k1"},
		node{Path: "keep/k2", Type: 'f', Data: "k2"},
		node{Path: "upd/u1", Type: 'f', Data: string(pattern(mib, 1))},
		node{Path: "upd/u2", Type: 'f', Data: string(pattern(100*kib, 2))},
		node{Path: "meta/m1", Type: 'f', Data: "m1"},
		node{Path: "meta/m2", Type: 'f', Data: "m2"},
		node{Path: "del/d1", Type: 'f', Data: "d1"},
		node{Path: "del/d2", Type: 'f', Data: "d2"},
	)
	mirror(t, src, dst, sync.Options{})
	dirs := []string{".", "keep", "upd", "meta", "del"}
	mtimes := map[string]unix.Timespec{}
	for _, d := range dirs {
		mtimes[d] = lstat(t, filepath.Join(src, d)).Mtim
	}
	// Created: 3 files, 1 directory and its 2 files.
	build(t, src,
		node{Path: "new1", Type: 'f', Data: string(pattern(10*kib, 3))},
		node{Path: "new2", Type: 'f', Data: string(pattern(20*kib+1, 4))},
		node{Path: "big", Type: 'f', Data: string(pattern(32*mib, 5))},
		node{Path: "newdir/a", Type: 'f', Data: string(pattern(kib, 6))},
		node{Path: "newdir/b", Type: 'f', Data: string(pattern(2*kib, 7))},
	)
	// Updated: 2 files, one with a new size, one with the same size and new content.
	build(t, src,
		node{Path: "upd/u1", Type: 'f', Data: string(pattern(mib+1, 8))},
		node{Path: "upd/u2", Type: 'f', Data: string(pattern(100*kib, 9))},
	)
	// Metadata only: 2 files.
	must(t, unix.Chmod(filepath.Join(src, "meta/m1"), 0o600))
	must(t, unix.Lchown(filepath.Join(src, "meta/m2"), 4242, 4242))
	// Deleted: 2 files.
	rm(t, src, "del/d1", "del/d2")
	for _, d := range dirs {
		ts := mtimes[d]
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, d), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	return sync.Report{
		Created:      6,
		Updated:      2,
		MetadataOnly: 2,
		Deleted:      2,
		BytesCopied:  10*kib + 20*kib + 1 + 32*mib + kib + 2*kib + mib + 1 + 100*kib,
	}
}

func sameCounts(a, b sync.Report) bool {
	return a.Created == b.Created && a.Updated == b.Updated && a.MetadataOnly == b.MetadataOnly &&
		a.Deleted == b.Deleted && a.BytesCopied == b.BytesCopied
}

// TestMirrorReportAndProgress proves on a known scenario that: DryRun reports exactly the
// counts the real run then reports, and writes nothing (the destination's entries, contents,
// metadata, inodes and directory mtimes are unchanged); Report counts Created, Updated,
// MetadataOnly, Deleted and BytesCopied exactly; Progress is never called concurrently, goes
// through scan, copy and one final done event, knows FilesTotal and BytesTotal during the copy,
// has non-decreasing FilesDone and BytesDone that reach their totals, shows progress inside
// the copy, and is not called after Mirror returned.
func TestMirrorReportAndProgress(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 64)
	want := countsScenario(t, src, dst)

	before := snapshot(t, dst)
	dryEvents := &eventLog{}
	dry, err := runMirror(t, src, dst, sync.Options{DryRun: true, Progress: dryEvents.record})
	if err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	requireNoFileErrors(t, dry)
	requireFinalDone(t, dryEvents)
	assertUnchanged(t, "the destination (after a DryRun)", before, dst, cmpOpts{inodes: true})
	if !sameCounts(dry, want) {
		t.Errorf("DryRun: got %s\n want %s", fmtReport(dry), fmtReport(want))
	}

	events := &eventLog{}
	rep := mirror(t, src, dst, sync.Options{Progress: events.record, ProgressInterval: time.Millisecond})
	returnedWith := len(events.list())
	if !sameCounts(rep, want) {
		t.Errorf("got %s\nwant %s", fmtReport(rep), fmtReport(want))
	}
	if !sameCounts(rep, dry) {
		t.Errorf("the DryRun reported %s\nbut the run did %s", fmtReport(dry), fmtReport(rep))
	}
	if rep.Scanned < 14 {
		t.Errorf("Scanned = %d, but the source has 14 entries besides its root", rep.Scanned)
	}

	evs := events.list()
	if events.concurrent.Load() {
		t.Errorf("Progress was called concurrently")
	}
	if len(evs) == 0 {
		t.Fatalf("no Progress event")
	}
	order := map[sync.Phase]int{sync.PhaseScan: 0, sync.PhaseCopy: 1, sync.PhaseDone: 2}
	wantFiles := want.Changes()
	var prev sync.Progress
	copies, inside := 0, 0
	for i, e := range evs {
		o, ok := order[e.Phase]
		if !ok {
			t.Errorf("event %d: unknown phase %q", i, e.Phase)
			continue
		}
		if i > 0 && o < order[prev.Phase] {
			t.Errorf("event %d: phase %s after %s", i, e.Phase, prev.Phase)
		}
		if e.Phase == sync.PhaseDone && i != len(evs)-1 {
			t.Errorf("event %d of %d: PhaseDone before the end", i, len(evs))
		}
		if e.Phase == sync.PhaseCopy || e.Phase == sync.PhaseDone {
			if e.FilesTotal != wantFiles || e.BytesTotal != want.BytesCopied {
				t.Errorf("event %d (%s): totals %d files %d bytes, want %d files %d bytes", i, e.Phase, e.FilesTotal, e.BytesTotal, wantFiles, want.BytesCopied)
			}
			if e.BytesDone > e.BytesTotal || e.FilesDone > e.FilesTotal {
				t.Errorf("event %d (%s): done %d/%d files %d/%d bytes: beyond the totals", i, e.Phase, e.FilesDone, e.FilesTotal, e.BytesDone, e.BytesTotal)
			}
		}
		if e.Phase == sync.PhaseCopy {
			copies++
			if e.BytesDone > 0 && e.BytesDone < e.BytesTotal {
				inside++
			}
		}
		if i > 0 && o == order[prev.Phase] && (e.BytesDone < prev.BytesDone || e.FilesDone < prev.FilesDone) {
			t.Errorf("event %d (%s): done went backwards: %d files %d bytes after %d files %d bytes", i, e.Phase, e.FilesDone, e.BytesDone, prev.FilesDone, prev.BytesDone)
		}
		prev = e
	}
	last := evs[len(evs)-1]
	if last.Phase != sync.PhaseDone {
		t.Errorf("the last event is %s, want %s", last.Phase, sync.PhaseDone)
	} else if last.FilesDone != wantFiles || last.BytesDone != want.BytesCopied {
		t.Errorf("final event: done %d files %d bytes, want %d files %d bytes", last.FilesDone, last.BytesDone, wantFiles, want.BytesCopied)
	}
	if copies == 0 {
		t.Errorf("no PhaseCopy event during a copy of 33 MiB at a 1ms interval")
	}
	if inside == 0 {
		t.Errorf("no PhaseCopy event with 0 < BytesDone < BytesTotal during a copy of 33 MiB at a 1ms interval")
	}
	t.Logf("%d events, %d in PhaseCopy, %d with partial bytes", len(evs), copies, inside)
	// Nothing after Mirror returned (mirror() ran a second Mirror without Progress since).
	time.Sleep(20 * time.Millisecond)
	if n := len(events.list()); n != returnedWith {
		t.Errorf("Progress was called %d times after Mirror returned", n-returnedWith)
	}
}

// TestMirrorDryRunFromEmpty proves that a DryRun onto an empty destination writes nothing and
// counts every entry as created.
func TestMirrorDryRunFromEmpty(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	build(t, src, metadataTree()...)
	rm(t, dst, "lost+found")
	before := snapshot(t, dst)
	dry, err := runMirror(t, src, dst, sync.Options{DryRun: true})
	if err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	assertUnchanged(t, "the destination (after a DryRun)", before, dst, cmpOpts{inodes: true})
	rep := mirror(t, src, dst, sync.Options{})
	if !sameCounts(dry, rep) {
		t.Errorf("the DryRun reported %s\nbut the run did %s", fmtReport(dry), fmtReport(rep))
	}
	if want := int64(len(snapshot(t, src)) - 1); rep.Created != want {
		t.Errorf("Created = %d, want %d (every source entry but the root)", rep.Created, want)
	}
}
