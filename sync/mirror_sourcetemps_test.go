//go:build linux

package sync_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"tails-backup/internal/testtree"
	"tails-backup/sync"
)

// engineTempsUnder lists, relative to root, the entries whose names are the engine's
// temporaries.
func engineTempsUnder(t testing.TB, root string) []string {
	t.Helper()
	return testtree.Find(t, root, sync.IsTempName)
}

// tempExcludes are rsync's patterns for the engine's temporaries, in any folder.
var tempExcludes = []string{"--exclude=.tails-backup-part-*.tmp", "--exclude=.tails-backup-[1-9]*-*-*.tmp"}

// TestMirrorSkipsSourceTemporaries: a backup whose last update was interrupted holds the
// engine's temporaries of both forms in several folders (a resumable one left by a real
// cancelled update, others planted: files, a symlink, a hard link to a backup file). A restore
// from it (the options the helper's restore gives) copies none of them into the Persistent
// Storage, and deletes those an earlier restore copied there; the user's files whose names
// only look like them are copied. rsync, told to leave the temporaries out, finds the trees
// identical, and so does our own comparison; a second run changes nothing.
func TestMirrorSkipsSourceTemporaries(t *testing.T) {
	parallel(t)
	ps0 := newExt4(t, 96)      // the Persistent Storage the backup was made of
	backup := newExt4(t, 96)   // the backup, its last update cancelled
	restored := newExt4(t, 96) // the Persistent Storage restored into
	tm := time.Date(2026, 11, 2, 3, 4, 5, 600000001, time.UTC)

	user := []node{
		{Path: "Persistent", Type: 'd'},
		{Path: "Persistent/notes.txt", Type: 'f', Data: "notes", Mtime: tm},
		{Path: "Persistent/.tails-backup-notes", Type: 'f', Data: "a user's file", Mtime: tm},
		{Path: "Persistent/.tails-backup-1.tmp", Type: 'f', Data: "a user's file too", Mtime: tm},
		{Path: "Persistent/.tails-backup-part-notes.tmp", Type: 'f', Data: "and this", Mtime: tm},
		{Path: "Persistent/.tails-backup-01-a-1.tmp", Type: 'f', Data: "and this", Mtime: tm},
		{Path: "Documents", Type: 'd'},
		{Path: "Documents/a.txt", Type: 'f', Data: "a", Mtime: tm},
		{Path: "Documents/deep", Type: 'd'},
		{Path: "Documents/deep/b.txt", Type: 'f', Data: "b", Mtime: tm},
		{Path: "dotfiles", Type: 'd'},
		{Path: "dotfiles/.bashrc", Type: 'f', Data: "alias ll='ls -l'", Mtime: tm},
	}
	build(t, ps0, user...)
	writeRandom(t, filepath.Join(ps0, "Videos/film.mkv"), 4*mib, 1, tm)
	build(t, backup, user...)
	// The update that was cancelled at half of the video left its resumable temporary.
	cancelAt(t, ps0, backup, "Videos/film.mkv", 2*mib)

	pid := os.Getpid()
	plain := func(hex, n string) string { return fmt.Sprintf(".tails-backup-%d-%s-%s.tmp", pid, hex, n) }
	part := func(c byte) string { return ".tails-backup-part-" + string(slices.Repeat([]byte{c}, 32)) + ".tmp" }
	build(t, backup,
		node{Path: ".tails-backup-7-0-1.tmp", Type: 'f', Data: "at the root"},
		node{Path: "Persistent/" + plain("abc", "1"), Type: 'f', Data: "half a new version"},
		node{Path: "Persistent/" + plain("abc", "2"), Type: 'l', Target: "notes.txt"},
		node{Path: "Persistent/" + part('a'), Type: 'f', Data: "the start of a large file"},
		node{Path: "Documents/" + plain("beef", "3"), Type: 'h', Target: "Documents/a.txt"},
		node{Path: "Documents/deep/" + plain("1", "18446744073709551615"), Type: 'f', Data: "deep"},
		node{Path: "Documents/deep/" + part('0'), Type: 'f', Data: "deep and resumable"},
		node{Path: "dotfiles/" + part('f'), Type: 'f', Data: "in the dotfiles"},
	)
	leftovers := engineTempsUnder(t, backup)
	if len(leftovers) != 9 {
		t.Fatalf("the backup holds %d temporaries, want 9: %q", len(leftovers), leftovers)
	}

	// What a restore without this rule copied (and a killed restore may have left): the same
	// names in the Persistent Storage, and another of its own.
	build(t, restored, user...)
	for _, rel := range []string{"Persistent/" + plain("abc", "1"), "Documents/deep/" + part('0')} {
		build(t, restored, node{Path: rel, Type: 'f', Data: "copied by an earlier restore"})
	}
	build(t, restored, node{Path: "Documents/" + part('9'), Type: 'f', Data: "left by a cancelled restore"})

	opts := sync.Options{UntrustedSource: true, KeepDestinationRoot: true}
	rep, err := runMirror(t, backup, restored, opts)
	if err != nil {
		t.Fatalf("Mirror: %v\n%s", err, fmtReport(rep))
	}
	requireNoFileErrors(t, rep)
	if got := engineTempsUnder(t, restored); len(got) != 0 {
		t.Errorf("the restored Persistent Storage holds the engine's temporaries %q", got)
	}
	for _, n := range user {
		if !exists(filepath.Join(restored, n.Path)) {
			t.Errorf("%s was not restored", n.Path)
		}
	}
	if got := engineTempsUnder(t, backup); !slices.Equal(got, leftovers) {
		t.Errorf("the backup's temporaries changed: %q, were %q", got, leftovers)
	}
	assertRsyncAgreesArgs(t, backup, restored, tempExcludes)
	// Our own comparison, the temporaries aside.
	if d := diffSnapshots(snapshot(t, backup, leftovers...), snapshot(t, restored), cmpOpts{}); len(d) > 0 {
		t.Errorf("the restored tree differs from the backup (first: backup, second: restored):\n  %s", d)
	}
	assertSecondRunNoChange(t, backup, restored, opts)
}
