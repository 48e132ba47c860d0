//go:build linux

package sync_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// openCache opens the xattr cache kept in cacheDir for mirroring src onto dst, as of a run
// started two seconds from now: the tree the test just wrote is then old enough to be
// remembered (entries changed within a second of a run's start are not).
func openCache(t *testing.T, cacheDir, src, dst string) *sync.XattrCache {
	t.Helper()
	var fds [3]int
	for i, p := range []string{cacheDir, src, dst} {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
	}
	// The cache folder stays open for the run to save the cache in; the roots were needed only to identify them (a
	// root left open would keep the backup from being unmounted).
	t.Cleanup(func() { unix.Close(fds[0]) })
	defer unix.Close(fds[1])
	defer unix.Close(fds[2])
	c, err := sync.OpenXattrCache(fds[0], fds[1], fds[2])
	if err != nil {
		t.Fatal(err)
	}
	sync.XattrCacheAsOf(c, time.Now().Add(2*time.Second))
	return c
}

// TestXattrCache: a run remembers the entries whose xattrs it found equal, the next run onto
// the same mounted backup uses every one of them and still mirrors xattrs and ACLs changed on
// either side since, a forged entry is believed (the cache is really used), and the cache is
// dropped once the backup was mounted twice since it was saved.
func TestXattrCache(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dstImg := newImage(t, 64)
	dstDir := filepath.Join(filepath.Dir(dstImg.Path), "dst")
	dst := dstImg.mountAt(t, dstDir)
	cacheDir := t.TempDir()
	build(t, src,
		node{Path: "a", Type: 'f', Data: "a", Xattrs: map[string]string{"user.a": "1"}},
		node{Path: "b", Type: 'f', Data: "b"},
		node{Path: "c", Type: 'f', Data: "c", ACL: "u:1000:r"},
		node{Path: "sub", Type: 'd'},
		node{Path: "sub/d", Type: 'f', Data: "d", Xattrs: map[string]string{"user.d": "1", "trusted.d": "2"}},
		node{Path: "sub/l", Type: 'l', Target: "../a"},
		node{Path: "h1", Type: 'f', Data: "h"},
	)
	if err := os.Link(filepath.Join(src, "h1"), filepath.Join(src, "sub/h2")); err != nil {
		t.Fatal(err)
	}

	// The first run onto an empty backup remembers the regular files it copied, with the xattrs
	// it gave them (a, b, c, sub/d), but not the symlink nor the hard-link group, and saves
	// that; a cache serves one run, so the second run of mirror's checks, given the same one,
	// remembers nothing more.
	c := openCache(t, cacheDir, src, dst)
	if c.Entries() != 0 || c.Unused() != "" {
		t.Fatalf("a new cache: %d entries, unused because %q", c.Entries(), c.Unused())
	}
	mirror(t, src, dst, sync.Options{XattrCache: c})
	if c = openCache(t, cacheDir, src, dst); c.Entries() != 4 || c.Unused() != "" {
		t.Fatalf("after a full copy the saved cache holds %d entries (%q), want the 4 files copied", c.Entries(), c.Unused())
	}
	// The next run uses those, compares the other entries, remembers them and saves them all:
	// a, b, c, sub/d, sub/l and the inode of h1 and sub/h2.
	if rep := mirror(t, src, dst, sync.Options{XattrCache: c}); rep.Changes() != 0 || c.Used() != 4 {
		t.Fatalf("first run after the full copy: %d changes, %d of the 4 entries used", rep.Changes(), c.Used())
	}
	c = openCache(t, cacheDir, src, dst)
	if c.Entries() != 6 {
		t.Fatalf("the saved cache holds %d entries, want 6 (%q)", c.Entries(), c.Unused())
	}
	rep := mirror(t, src, dst, sync.Options{XattrCache: c})
	if rep.Changes() != 0 || c.Used() != 6 {
		t.Fatalf("no-op run with the cache: %d changes, %d of 6 entries used", rep.Changes(), c.Used())
	}

	// Changed since, on either side: their ctimes changed, so they are read and mirrored.
	if err := unix.Lsetxattr(filepath.Join(src, "a"), "user.a", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	run(t, "setfacl", "-m", "u:1001:rw", filepath.Join(src, "b"))
	if err := unix.Lremovexattr(filepath.Join(dst, "sub/d"), "trusted.d"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(dst, "sub/l"), "trusted.extra", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, cacheDir, src, dst)
	rep = mirror(t, src, dst, sync.Options{XattrCache: c}) // rsync --checksum agrees afterwards
	if rep.MetadataOnly != 4 {
		t.Errorf("run after changes on both sides: %d metadata changes, want 4\n%s", rep.MetadataOnly, fmtReport(rep))
	}

	// A forged entry for a pair whose xattrs differ is believed: the run does not read them.
	forged := openCache(t, cacheDir, src, dst)
	if err := unix.Lsetxattr(filepath.Join(dst, "c"), "user.only-here", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := sync.RememberXattrsEqual(forged, filepath.Join(src, "c"), filepath.Join(dst, "c")); err != nil {
		t.Fatal(err)
	}
	// And for a symlink, its target: it cannot change without a new inode, so an entry
	// vouches for it too.
	if err := os.Remove(filepath.Join(dst, "sub/l")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("elsewhere", filepath.Join(dst, "sub/l")); err != nil {
		t.Fatal(err)
	}
	srcL := lstat(t, filepath.Join(src, "sub/l"))
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dst, "sub/l"), []unix.Timespec{srcL.Atim, srcL.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	srcSub := lstat(t, filepath.Join(src, "sub")) // its folder's mtime, which the new symlink moved
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dst, "sub"), []unix.Timespec{srcSub.Atim, srcSub.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	if err := sync.RememberXattrsEqual(forged, filepath.Join(src, "sub/l"), filepath.Join(dst, "sub/l")); err != nil {
		t.Fatal(err)
	}
	if rep, err := runMirror(t, src, dst, sync.Options{XattrCache: forged}); err != nil || rep.Changes() != 0 {
		t.Fatalf("run with forged entries: %v, %d changes, want none: the cache was not used\n%s", err, rep.Changes(), fmtReport(rep))
	}
	if diff := rsyncDiff(t, src, dst, nil); !strings.Contains(diff, " c\n") || !strings.Contains(diff, " sub/l -> ../a") {
		t.Fatalf("rsync does not see both forged differences after the forged run:\n%s", diff)
	}
	mirror(t, src, dst, sync.Options{}) // without the cache the difference is mirrored

	// Mounted once since the save (the next update's own mount): still used. Twice: dropped.
	c = openCache(t, cacheDir, src, dst)
	mirror(t, src, dst, sync.Options{XattrCache: c})
	dstImg.unmount(t)
	dst = dstImg.mountAt(t, dstDir)
	if c = openCache(t, cacheDir, src, dst); c.Entries() != 6 {
		t.Fatalf("after one mount: %d entries, want 6, unused because %q", c.Entries(), c.Unused())
	}
	dstImg.unmount(t)
	dst = dstImg.mountAt(t, dstDir)
	if c = openCache(t, cacheDir, src, dst); c.Entries() != 0 || !strings.Contains(c.Unused(), "mounted 2 times") {
		t.Fatalf("after two mounts: %d entries, unused because %q; want none, mounted twice", c.Entries(), c.Unused())
	}
	mirror(t, src, dst, sync.Options{XattrCache: c})
}

// TestXattrCacheNotAFile: whatever stands in the cache file's place (the folder may be on a
// backup someone else wrote) is an unused cache, never followed nor waited on, and the run
// saves a regular file in its place.
func TestXattrCacheNotAFile(t *testing.T) {
	parallel(t)
	src := newExt4(t, 32)
	dst := newExt4(t, 32)
	build(t, src, node{Path: "a", Type: 'f', Data: "a"})
	mirror(t, src, dst, sync.Options{})
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("not a cache"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make func(p string) error
	}{
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }},
		{"symlink", func(p string) error { return os.Symlink(target, p) }},
		{"socket", func(p string) error { return unix.Mknod(p, unix.S_IFSOCK|0o600, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			p := filepath.Join(cacheDir, sync.XattrCacheFile)
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			done := make(chan *sync.XattrCache, 1)
			go func() { done <- openCache(t, cacheDir, src, dst) }()
			var c *sync.XattrCache
			select {
			case c = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("opening the cache did not return: it waits on what stands in the file's place")
			}
			if c.Entries() != 0 || !strings.Contains(c.Unused(), "not a regular file") {
				t.Fatalf("%d entries, unused because %q; want none, not a regular file", c.Entries(), c.Unused())
			}
			mirror(t, src, dst, sync.Options{XattrCache: c})
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Fatalf("after the run: %v, mode %o; want a regular file", err, st.Mode)
			}
			if c := openCache(t, cacheDir, src, dst); c.Entries() != 1 || c.Unused() != "" {
				t.Fatalf("the saved cache: %d entries, unused because %q; want 1", c.Entries(), c.Unused())
			}
			if b, err := os.ReadFile(target); err != nil || string(b) != "not a cache" {
				t.Fatalf("the symlink's target changed: %q, %v", b, err)
			}
		})
	}
}

// TestXattrCacheSavedByTheRun: a run that completes saves its cache, even one that changed
// nothing but learnt entries; a dry run and a run that fails save nothing; a cache that cannot
// be saved is in the report, and the run itself succeeds.
func TestXattrCacheSavedByTheRun(t *testing.T) {
	parallel(t)
	src := newExt4(t, 32)
	build(t, src, node{Path: "a", Type: 'f', Data: "a", Xattrs: map[string]string{"user.a": "1"}})
	for _, tc := range []struct {
		name     string
		opts     sync.Options
		before   func(cacheDir string) // after the cache is opened
		now      bool                  // the run starts now, not two seconds from now (openCache)
		cancel   bool
		want     int  // entries in the saved cache, -1 for no file
		wantErr  bool // Report.XattrCacheErr
		mirrored bool
	}{
		{name: "no-op learns", want: 1, mirrored: true},
		// The file it copied too, b.
		{name: "copy", before: func(string) {
			if err := os.WriteFile(filepath.Join(src, "b"), []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: 2, mirrored: true},
		// Nothing changed within a second of the run's start, copied or compared.
		{name: "copy, all too recent", now: true, before: func(string) {
			if err := os.WriteFile(filepath.Join(src, "c"), []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: 0, mirrored: true},
		{name: "dry run", opts: sync.Options{DryRun: true}, want: -1},
		{name: "cancelled", cancel: true, want: -1},
		{name: "folder gone", before: func(dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
		}, want: -1, wantErr: true, mirrored: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := newExt4(t, 32)
			mirror(t, src, dst, sync.Options{})
			cacheDir := filepath.Join(t.TempDir(), "cache")
			if err := os.Mkdir(cacheDir, 0o700); err != nil {
				t.Fatal(err)
			}
			opts := tc.opts
			opts.XattrCache = openCache(t, cacheDir, src, dst)
			if tc.now {
				sync.XattrCacheAsOf(opts.XattrCache, time.Now())
			}
			if tc.before != nil {
				tc.before(cacheDir)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancel {
				cancel()
			}
			rep, err := sync.Mirror(ctx, src, dst, opts)
			cancel()
			if (err != nil) != tc.cancel {
				t.Fatalf("Mirror: %v", err)
			}
			if (rep.XattrCacheErr != nil) != tc.wantErr {
				t.Fatalf("Report.XattrCacheErr = %v, want an error: %v", rep.XattrCacheErr, tc.wantErr)
			}
			if tc.mirrored {
				assertRsyncAgreesArgs(t, src, dst, nil)
			}
			_, statErr := os.Lstat(filepath.Join(cacheDir, sync.XattrCacheFile))
			switch {
			case tc.want < 0 && statErr == nil:
				t.Fatal("the run saved its cache")
			case tc.want >= 0 && statErr != nil:
				t.Fatalf("the run saved no cache: %v", statErr)
			case tc.want >= 0:
				if c := openCache(t, cacheDir, src, dst); c.Entries() != tc.want {
					t.Fatalf("the saved cache holds %d entries (%q), want %d", c.Entries(), c.Unused(), tc.want)
				}
			}
		})
	}
}
