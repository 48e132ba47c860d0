//go:build linux

package helper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	tbsync "tails-backup/sync"
	"tails-backup/wire"
)

// TestLimitFailures: a tree beyond the mirror's bounds is refused with one sentence that names
// the stick or this Tails, what is wrong and where (control characters of the path replaced),
// for an update (the source is this Tails) and for a restore (the source is the backup).
func TestLimitFailures(t *testing.T) {
	o := &operation{ctx: context.Background(), sys: System{}.withDefaults()}
	backup, ps := &root{name: stick{Stick: wire.Stick{Label: "X"}}}, &root{name: stick{english: "this Tails"}}
	limit := func(path string, inDst bool) error {
		return fmt.Errorf("mirror: %w", &tbsync.LimitError{Path: path, What: tbsync.LimitDepth, Limit: 256, InDestination: inDst})
	}
	tests := []struct {
		name   string
		f      *Failure
		want   []string
		reason wire.Reason
		args   wire.Args // what the session words
	}{
		{"update, this Tails' tree", o.mirrorFailure(limit("Persistent/a\nb", false), backup),
			[]string{"Your Persistent Storage holds a folder nested too deeply (Persistent/a b)", "update again"},
			wire.ReasonSourceLimit, wire.Args{Path: "Persistent/a b", Limit: wire.LimitDepth, Count: 256}},
		{"update, the backup's tree", o.mirrorFailure(limit("old/x", true), backup),
			[]string{"The backup on the stick X holds a folder nested too deeply (old/x)", "tails-backup create"},
			wire.ReasonBackupLimit, wire.Args{Stick: &wire.Stick{Label: "X"}, Path: "old/x", Limit: wire.LimitDepth, Count: 256}},
		{"restore, the backup's tree", o.restoreFailure(limit("Persistent/x", false), ps, backup),
			[]string{"The backup on the stick X holds a folder nested too deeply (Persistent/x)", "another backup"},
			wire.ReasonRestoreBackupLimit, wire.Args{Stick: &wire.Stick{Label: "X"}, Path: "Persistent/x", Limit: wire.LimitDepth, Count: 256}},
		{"restore, this Tails' tree", o.restoreFailure(limit("Persistent/x", true), ps, backup),
			[]string{"The Persistent Storage of this Tails holds a folder nested too deeply (Persistent/x)", "restore again"},
			wire.ReasonRestoreTargetLimit, wire.Args{Path: "Persistent/x", Limit: wire.LimitDepth, Count: 256}},
	}
	for _, tt := range tests {
		if tt.f.Code != wire.CodeRefused {
			t.Errorf("%s: code %s, want %s", tt.name, tt.f.Code, wire.CodeRefused)
		}
		if tt.f.Reason != tt.reason {
			t.Errorf("%s: reason %q, want %q", tt.name, tt.f.Reason, tt.reason)
		}
		got := tt.f.Args
		if (got.Stick == nil) != (tt.args.Stick == nil) || (got.Stick != nil && *got.Stick != *tt.args.Stick) {
			t.Errorf("%s: stick %+v, want %+v", tt.name, got.Stick, tt.args.Stick)
		}
		got.Stick, tt.args.Stick = nil, nil
		if got != tt.args {
			t.Errorf("%s: args %+v, want %+v", tt.name, got, tt.args)
		}
		for _, w := range tt.want {
			if !strings.Contains(tt.f.Message, w) {
				t.Errorf("%s: message %q lacks %q", tt.name, tt.f.Message, w)
			}
		}
		if strings.Count(tt.f.Message, ". ") > 0 || !strings.HasSuffix(tt.f.Message, ".") {
			t.Errorf("%s: message %q is not one sentence", tt.name, tt.f.Message)
		}
	}
}

// mkdirNested creates n folders named d, one inside the other, in dir, through descriptors (the
// path passes PATH_MAX).
func mkdirNested(t testing.TB, dir string, n int) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(t, err)
	for i := 0; i < n; i++ {
		must(t, unix.Mkdirat(fd, "d", 0o700))
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		must(t, err)
		fd = next
	}
	unix.Close(fd)
}

// TestDeepFolderStopsUpdateAndRestore: a folder nested 300 levels deep (beyond the mirror's 256)
// stops an update from this Tails, and a restore from a backup that holds one, with a refusal
// naming it; the restore copies nothing of it into this Tails.
func TestDeepFolderStopsUpdateAndRestore(t *testing.T) {
	t.Run("update", func(t *testing.T) {
		w := newWorld(t, worldOpts{})
		fillSource(t, w.src.mnt, 1, 2, 100)
		mkdirNested(t, filepath.Join(w.src.mnt, "Persistent"), 300)
		evs, err := w.do(wire.OpUpdate, dstUUID)
		ev := checkEnd(t, evs, err, wire.EventError)
		t.Logf("%s: %s", ev.Code, ev.Message)
		if want := "Your Persistent Storage holds a folder nested too deeply (Persistent/d/d/"; ev.Code != wire.CodeRefused || !strings.Contains(ev.Message, want) {
			t.Errorf("error %s %q, want %s containing %q", ev.Code, ev.Message, wire.CodeRefused, want)
		}
	})
	t.Run("restore", func(t *testing.T) {
		w := backedUpWorld(t, worldOpts{})
		mkdirNested(t, filepath.Join(w.dst.mnt, "Persistent"), 300)
		_, ev := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventError)
		t.Logf("%s: %s", ev.Code, ev.Message)
		if want := "holds a folder nested too deeply (Persistent/d/d/"; ev.Code != wire.CodeRefused || !strings.Contains(ev.Message, "The backup on") || !strings.Contains(ev.Message, want) {
			t.Errorf("error %s %q, want %s: the backup %q", ev.Code, ev.Message, wire.CodeRefused, want)
		}
		if _, err := os.Lstat(filepath.Join(w.src.mnt, "Persistent", "d")); err == nil {
			t.Error("the restore copied the nested folder into this Tails")
		}
	})
}
