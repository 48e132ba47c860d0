//go:build linux

package helper

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/testtree"
	"tails-backup/tails"
	"tails-backup/wire"
)

// engineTempName matches the names of the mirror engine's temporaries (sync/tempname.go): the
// plain .tails-backup-PID-HEX-N.tmp and the resumable .tails-backup-part-HASH.tmp.
var engineTempName = regexp.MustCompile(`^\.tails-backup-(part-[0-9a-f]{32}|[1-9][0-9]*-[0-9a-f]{1,6}-[1-9][0-9]*)\.tmp$`)

// engineTemps lists, relative to root, the entries named as the engine's temporaries.
func engineTemps(t testing.TB, root string) []string {
	t.Helper()
	return testtree.Find(t, root, engineTempName.MatchString)
}

// plantKeepingMtime writes the file rel under root (root's, 0600, as the engine makes its
// temporaries) and puts back its folder's mtime, so that only the file differs.
func plantKeepingMtime(t testing.TB, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, rel)
	fi, err := os.Stat(filepath.Dir(p))
	must(t, err)
	must(t, os.WriteFile(p, []byte(data), 0o600))
	must(t, os.Chtimes(filepath.Dir(p), fi.ModTime(), fi.ModTime()))
}

// TestRestoreLeavesOutTheBackupsTemporaries: the backup's last update was interrupted and left
// the engine's temporaries of both forms in several folders. The restore copies none of them
// into the Persistent Storage (a user's file named like them is restored), which is otherwise
// exact. A verify then lists them, and only them, as files only on the backup, which they are;
// the next update deletes them, after which verify finds nothing.
func TestRestoreLeavesOutTheBackupsTemporaries(t *testing.T) {
	w := backedUpWorld(t, worldOpts{})
	part := func(c string) string { return ".tails-backup-part-" + strings.Repeat(c, 32) + ".tmp" }
	leftovers := []string{
		".tails-backup-4242-abc-1.tmp",
		"Persistent/" + part("a"),
		"Persistent/.tails-backup-4242-abc-7.tmp",
		"Persistent/dir000/sub/" + part("0"),
		"Persistent/dir001/sub/.tails-backup-4242-abc-9.tmp",
		"dotfiles/" + part("f"),
	}
	for _, rel := range leftovers {
		plantKeepingMtime(t, w.dst.mnt, rel, "a part of a file: "+rel)
	}
	plantKeepingMtime(t, w.dst.mnt, "Persistent/.tails-backup-notes", "a user's file")
	if got := engineTemps(t, w.dst.mnt); len(got) != len(leftovers) {
		t.Fatalf("the backup holds the temporaries %q, want %d", got, len(leftovers))
	}

	_, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if done.Report.ErrorCount != 0 {
		t.Errorf("report %+v", done.Report)
	}
	if got := engineTemps(t, w.src.mnt); len(got) != 0 {
		t.Errorf("the restore copied the backup's temporaries into the Persistent Storage: %q", got)
	}
	if _, err := os.Stat(filepath.Join(w.src.mnt, "Persistent/.tails-backup-notes")); err != nil {
		t.Errorf("the user's .tails-backup-notes was not restored: %v", err)
	}
	if diff := restoreDiff(t, w.dst.mnt, w.src.mnt, leftovers...); diff != "" {
		t.Errorf("differences after the restore, the temporaries aside:\n%s", diff)
	}

	changes, _, _ := verifyResult(t, start(t, w.sys, verifyRequest(true)))
	var want []string
	for _, rel := range leftovers {
		want = append(want, fmt.Sprintf("delete f %s ", rel))
	}
	slices.Sort(want)
	if !slices.Equal(changes, want) {
		t.Errorf("verify after the restore found:\n%s\nwant the temporaries only on the backup:\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}

	evs, err := w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if got := engineTemps(t, w.dst.mnt); len(got) != 0 {
		t.Errorf("the update left the temporaries %q on the backup", got)
	}
	if changes, _, _ := verifyResult(t, start(t, w.sys, verifyRequest(true))); len(changes) != 0 {
		t.Errorf("verify after the update found:\n%s", strings.Join(changes, "\n"))
	}
}

// TestRestoreCancelDiscardsTemporaries: a restore cancelled while it copies large files leaves
// none of their temporaries in the Persistent Storage (an update keeps its resumable ones for
// its next run); the next restore finishes the job.
func TestRestoreCancelDiscardsTemporaries(t *testing.T) {
	w := newWorld(t, worldOpts{srcMiB: 256, dstMiB: 256})
	fillSource(t, w.dst.mnt, 1, 2, 4<<10)
	must(t, setPersistenceRoot(openDir(t, w.dst.mnt)))
	videos := filepath.Join(w.dst.mnt, "Persistent", "Videos")
	must(t, os.Mkdir(videos, 0o755))
	big := make([]byte, 24<<20)
	for i := range 6 {
		_, _ = rand.Read(big)
		must(t, os.WriteFile(filepath.Join(videos, fmt.Sprintf("film%d.mkv", i)), big, 0o644))
	}
	w.sys.ProgressInterval = 10 * time.Millisecond

	s := start(t, w.sys, restoreRequest(srcUUID))
	for {
		ev, ok := s.next()
		if !ok {
			t.Fatal("the helper ended before the copy was under way")
		}
		if ev.Event != wire.EventProgress {
			t.Fatalf("event %+v before a quarter of the data was copied; make the files bigger", ev)
		}
		if ev.Phase == "copy" && ev.BytesTotal > 0 && ev.BytesDone >= ev.BytesTotal/4 {
			t.Logf("cancelled at %d bytes of %d", ev.BytesDone, ev.BytesTotal)
			break
		}
	}
	s.send(`{"op":"cancel"}` + "\n")
	evs, err := s.finish()
	if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != wire.CodeCancelled {
		t.Fatalf("error %s %q, want cancelled", ev.Code, ev.Message)
	}
	if got := engineTemps(t, w.src.mnt); len(got) != 0 {
		t.Errorf("the cancelled restore left its temporaries in the Persistent Storage: %q", got)
	}

	w.sys.ProgressInterval = 0
	_, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if done.Report.ErrorCount != 0 {
		t.Errorf("report %+v", done.Report)
	}
	if diff := restoreDiff(t, w.dst.mnt, w.src.mnt); diff != "" {
		t.Errorf("differences after the restore that followed the cancelled one:\n%s", diff)
	}
	if got := engineTemps(t, w.src.mnt); len(got) != 0 {
		t.Errorf("the restore left the temporaries %q", got)
	}
}

// TestRestoreLeavesOutTheMarkersTemporary: an update killed while it wrote the marker leaves
// the marker's temporary at the backup's root; a restore does not copy it into the Persistent
// Storage, and the next update deletes it from the backup.
func TestRestoreLeavesOutTheMarkersTemporary(t *testing.T) {
	w := backedUpWorld(t, worldOpts{})
	leftover := "." + tails.MarkerName + ".tmp-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	plantKeepingMtime(t, w.dst.mnt, leftover, `{"version":1}`)
	plantKeepingMtime(t, w.dst.mnt, "."+tails.MarkerName+".tmp-notes.txt", "a user's file")

	_, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if done.Report.ErrorCount != 0 {
		t.Errorf("report %+v", done.Report)
	}
	if _, err := os.Lstat(filepath.Join(w.src.mnt, leftover)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the restore copied the marker's temporary %s into the Persistent Storage (%v)", leftover, err)
	}
	if _, err := os.Lstat(filepath.Join(w.src.mnt, "."+tails.MarkerName+".tmp-notes.txt")); err != nil {
		t.Errorf("a file that only looks like the marker's temporary was not restored: %v", err)
	}

	evs, err := w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if _, err := os.Lstat(filepath.Join(w.dst.mnt, leftover)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the update left the marker's temporary on the backup (%v)", err)
	}
}
