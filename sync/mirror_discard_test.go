//go:build linux

package sync_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"tails-backup/sync"
)

// TestMirrorDiscardOnCancel: with DiscardOnCancel, a run cancelled in the middle of a large
// file leaves no temporary, neither one it started nor one it was resuming (kept by an earlier
// cancelled run without the option), and the next run copies the file whole and exactly.
func TestMirrorDiscardOnCancel(t *testing.T) {
	parallel(t)
	srcRoot := newExt4(t, 160)
	dstRoot := newExt4(t, 160)
	tm := time.Date(2026, 11, 2, 3, 4, 5, 600000001, time.UTC)
	const rel = "Videos/film.mkv"
	const size = 16 * mib
	cancelled := func(t *testing.T, src, dst string, off int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
		defer cancel()
		opts := sync.WithAfterData(sync.Options{DiscardOnCancel: true}, func(r string, at int64) {
			if r == rel && at >= off {
				cancel()
			}
		})
		if _, err := sync.Mirror(ctx, src, dst, opts); !errors.Is(err, context.Canceled) {
			t.Fatalf("the run was to be cancelled at %d bytes of %s; it returned %v", off, rel, err)
		}
		if left := temporariesUnder(t, dst); len(left) != 0 {
			t.Errorf("the cancelled run left temporaries: %q", left)
		}
	}
	for _, c := range []struct {
		name   string
		resume bool // an earlier cancelled run, without the option, kept a temporary to resume
	}{
		{"a new temporary", false},
		{"a resumed temporary", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, dst := filepath.Join(srcRoot, c.name), filepath.Join(dstRoot, c.name)
			mkdirs(t, src, dst)
			writeRandom(t, filepath.Join(src, rel), size, 3, tm)
			writeFile(t, filepath.Join(src, "notes.txt"), []byte("a small file beside it"))
			if c.resume {
				if kept := cancelAt(t, src, dst, rel, size/4); kept < size/4 {
					t.Fatalf("the first cancelled run kept %d bytes", kept)
				}
			}
			cancelled(t, src, dst, size/2)
			rep := mirror(t, src, dst, sync.Options{})
			if rep.BytesResumed != 0 || rep.BytesCopied < size {
				t.Errorf("the run after the cancelled one resumed %d bytes and wrote %d, want the whole %d-byte file written", rep.BytesResumed, rep.BytesCopied, size)
			}
			if left := temporariesUnder(t, dst); len(left) != 0 {
				t.Errorf("the run left temporaries: %q", left)
			}
		})
	}
}
