//go:build linux

package helper

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	tbsync "tails-backup/sync"
	"tails-backup/tails"
	"tails-backup/wire"
)

// updatedAsBackup makes this Tails' Persistent Storage (the world's src) what updates from
// another Tails (the world's dst, filled) left it: a mirror of it, with the xattr cache those
// updates saved in its cache folder, root's alone, and that Tails' marker.
func updatedAsBackup(t *testing.T, w *world) {
	t.Helper()
	fillSource(t, w.dst.mnt, 1, 3, 100)
	ps := &root{fd: openDir(t, w.src.mnt), dev: w.src.dev}
	main := openDir(t, w.dst.mnt)
	dirFD, err := openXattrCacheDir(ps)
	must(t, err)
	defer unix.Close(dirFD)
	c, err := tbsync.OpenXattrCache(dirFD, main, ps.fd)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := tbsync.MirrorFDs(ctx, main, ps.fd, tbsync.Options{XattrCache: c, Exclude: tails.MirrorExcludes(nil)})
	must(t, err)
	must(t, rep.XattrCacheErr)
	if _, err := os.Stat(filepath.Join(w.src.mnt, tails.XattrCacheDirName, tbsync.XattrCacheFile)); err != nil {
		t.Fatalf("no xattr cache saved: %v", err)
	}
	w.writeMarker(w.src.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
		Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
}

// TestPromoteRemovesTheXattrCache: promote deletes the xattr cache folder that the updates of
// the former backup kept in its Persistent Storage, and succeeds when there is none. Whatever
// else is under that name is deleted without following it: a symlink, not what it points to;
// a folder, not what its symlinks point to nor what is mounted in it. A mount on the name
// itself, or a tree deeper than any cache, is left, and the promote still succeeds.
func TestPromoteRemovesTheXattrCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		// make puts something at p, the cache folder's name, given a folder outside the
		// Persistent Storage holding a file "keep".
		make func(t *testing.T, w *world, p, outside string)
		kept bool // what make put there stays
	}{
		{"the cache of the former backup's updates", func(t *testing.T, w *world, p, _ string) { updatedAsBackup(t, w) }, false},
		{"none", func(*testing.T, *world, string, string) {}, false},
		{"a symlink to a folder", func(t *testing.T, _ *world, p, outside string) { must(t, os.Symlink(outside, p)) }, false},
		{"a file", func(t *testing.T, _ *world, p, _ string) { must(t, os.WriteFile(p, []byte("x"), 0o600)) }, false},
		{"a tree with symlinks out", func(t *testing.T, _ *world, p, outside string) {
			must(t, os.MkdirAll(filepath.Join(p, "a", "b"), 0o700))
			must(t, os.Symlink(outside, filepath.Join(p, "a", "out")))
			must(t, os.Symlink(filepath.Join(outside, "keep"), filepath.Join(p, "a", "b", "keep")))
			must(t, os.WriteFile(filepath.Join(p, "a", "b", "file"), []byte("x"), 0o600))
		}, false},
		{"a folder with a mount inside", func(t *testing.T, _ *world, p, outside string) {
			must(t, os.MkdirAll(filepath.Join(p, "mnt"), 0o700))
			bindMount(t, outside, filepath.Join(p, "mnt"))
		}, true},
		{"a mount", func(t *testing.T, _ *world, p, outside string) {
			must(t, os.Mkdir(p, 0o700))
			bindMount(t, outside, p)
		}, true},
		{"a tree deeper than any cache", func(t *testing.T, _ *world, p, _ string) {
			must(t, os.MkdirAll(filepath.Join(p, strings.Repeat("d/", cacheRemoveDepth+2)), 0o700))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOpts{})
			w.setLUKSDevice(w.boot.LUKS, newLUKS(t, w.dir, "own", "p"))
			outside := filepath.Join(w.dir, "outside")
			must(t, os.Mkdir(outside, 0o755))
			must(t, os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o600))
			p := filepath.Join(w.src.mnt, tails.XattrCacheDirName)
			if _, err := os.Lstat(filepath.Join(w.src.mnt, tails.MarkerName)); os.IsNotExist(err) {
				w.writeMarker(w.src.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
					Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
			}
			tc.make(t, w, p, outside)

			evs, err := w.do(wire.OpPromote, "")
			checkEnd(t, evs, err, wire.EventDone)
			if _, err := os.Lstat(filepath.Join(w.src.mnt, tails.MarkerName)); !os.IsNotExist(err) {
				t.Errorf("the marker is still there: %v", err)
			}
			_, err = os.Lstat(p)
			switch {
			case tc.kept && err != nil:
				t.Errorf("what was in the cache folder's place is gone: %v", err)
			case !tc.kept && !os.IsNotExist(err):
				t.Errorf("the cache folder is still there: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(outside, "keep")); err != nil || string(b) != "keep" {
				t.Errorf("a file outside the Persistent Storage was touched: %q, %v", b, err)
			}
		})
	}
}

// bindMount mounts from on to until the test ends.
func bindMount(t *testing.T, from, to string) {
	t.Helper()
	must(t, unix.Mount(from, to, "", unix.MS_BIND, ""))
	t.Cleanup(func() {
		if err := unix.Unmount(to, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", to, err)
		}
	})
}
