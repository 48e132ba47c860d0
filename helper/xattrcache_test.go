//go:build linux

package helper

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/wire"
)

// cacheLog is what an update's log says of its xattr cache.
type cacheLog struct {
	saved         bool
	entries, used int    // of the saved line: remembered entries loaded, and used
	unused        string // why a loaded cache was not used
	none          bool   // the update ran without a cache
}

var (
	savedRe  = regexp.MustCompile(`msg="xattr cache saved".* entries=(\d+) .*used=(\d+)`)
	unusedRe = regexp.MustCompile(`msg="xattr cache not used; reading every xattr".* reason="([^"]*)"`)
)

// updateWithLog runs an update to its end and returns its report and what its log says of
// the xattr cache.
func (w *world) updateWithLog(t *testing.T) (*wire.Report, cacheLog) {
	t.Helper()
	s := start(t, w.sys, request(wire.OpUpdate, dstUUID))
	evs, err := s.finish()
	done := checkEnd(t, evs, err, wire.EventDone)
	log := s.logs.String()
	c := parseCacheLog(log)
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Fatalf("the backup differs from the source after the update:\n%s\nhelper log:\n%s", diff, log)
	}
	return done.Report, c
}

// remountBackup unmounts the backup, runs between on its image file (another mount of it, a
// change while it is unmounted), and mounts it again where it was, as udisks does when the
// backup is plugged in again.
func (w *world) remountBackup(t testing.TB, between func(img string)) {
	t.Helper()
	run(t, "umount", w.dst.mnt)
	between(w.dst.file)
	run(t, "mount", "-t", "ext4", "-o", "loop,acl,user_xattr", w.dst.file, w.dst.mnt)
	var st unix.Stat_t
	must(t, unix.Stat(w.dst.mnt, &st))
	w.dst.dev, w.dst.loop = st.Dev, fmt.Sprintf("/dev/loop%d", unix.Minor(st.Dev))
	w.setDevice(w.backup.Cleartext, w.dst)
}

// cachedWorld is a world whose backup was updated twice: the first update copies everything
// (an entry it creates is not remembered), the second, more than a second later (entries
// changed within a second of an update's start are not remembered either), reads every
// entry's xattrs and saves them all in the cache.
func cachedWorld(t *testing.T) (*world, cacheLog) {
	w := newWorld(t, worldOpts{})
	fillSource(t, w.src.mnt, 4, 25, 1<<10)
	// A backup made by an older version has no cache folder: the first update makes it.
	if _, err := os.Lstat(filepath.Join(w.dst.mnt, tails.XattrCacheDirName)); !os.IsNotExist(err) {
		t.Fatalf("a new backup has a cache folder: %v", err)
	}
	if _, c := w.updateWithLog(t); !c.saved || c.entries != 0 {
		t.Fatalf("first update: %+v, want a new cache saved", c)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, c := w.updateWithLog(t); !c.saved || c.entries != 0 || c.unused != "" {
		t.Fatalf("second update: %+v, want the (empty) cache used and saved", c)
	}
	rep, c := w.updateWithLog(t)
	// fillSource's 100 files, persistence.conf, the connection, the notes (two links), the
	// symlink and the sparse file.
	if !c.saved || c.unused != "" || c.entries < 105 || c.used != c.entries {
		t.Fatalf("third update: %+v; want every one of at least 105 entries remembered and used", c)
	}
	if n := rep.Created + rep.Updated + rep.MetadataOnly + rep.Deleted; n != 0 {
		t.Fatalf("third update changed %d entries: %+v", n, rep)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(w.dst.mnt, tails.XattrCacheDirName), &st))
	if st.Mode != unix.S_IFDIR|0o700 || st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("cache folder mode %o owner %d:%d, want a folder 0700 root:root", st.Mode, st.Uid, st.Gid)
	}
	return w, c
}

// TestUpdateXattrCache: an update with nothing to do reads no xattr (every entry comes from the
// cache the previous update saved), yet an xattr or ACL changed since on either side changes
// the inode's ctime, so the next update reads that entry and mirrors the change; verify
// compares everything but the cache's folder.
func TestUpdateXattrCache(t *testing.T) {
	w, cached := cachedWorld(t)
	notes := filepath.Join("Persistent", "notes.txt")
	must(t, unix.Lsetxattr(filepath.Join(w.src.mnt, notes), "user.tag", []byte("changed"), 0))
	run(t, "setfacl", "-m", "u:1001:r", filepath.Join(w.src.mnt, "Persistent", "dir000", "sub", "file0000"))
	must(t, unix.Lsetxattr(filepath.Join(w.dst.mnt, "Persistent", "dir001", "sub", "file0003"), "user.planted", []byte("x"), 0))

	rep, c := w.updateWithLog(t)
	if rep.MetadataOnly != 3 || rep.Created+rep.Updated+rep.Deleted != 0 {
		t.Errorf("update after three xattr and ACL changes: %+v, want 3 metadata changes", rep)
	}
	if c.unused != "" || c.used != cached.entries-3 {
		t.Errorf("update after three changes: %+v, want the %d other entries from the cache", c, cached.entries-3)
	}
	changes, problems, done := verifyResult(t, start(t, w.sys, verifyRequest(true)))
	if len(changes) != 0 || len(problems) != 0 || done.Report.Created+done.Report.Updated+done.Report.MetadataOnly+done.Report.Deleted != 0 {
		t.Errorf("verify after the update: changes %q, problems %q, report %+v", changes, problems, done.Report)
	}
}

// TestUpdateXattrCacheAfterBoot: a backup booted as Tails (mounted read-write, its xattrs
// changed there) may carry ctimes set by a wrong clock, even one equal to the ctime the cache
// remembers (forged here with debugfs): the boot's mount and the next update's make two since
// the cache was saved, so the update reads every xattr and mirrors the change. One mount since
// (the update's own) keeps the cache. e2fsck resets the mount count, so that after a check the
// boot and the update count one more than at the save: the time of the check, which e2fsck
// writes with the count, drops the cache then.
func TestUpdateXattrCacheAfterBoot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		checked bool
		reason  string
	}{
		{"booted", false, "mounted 2 times"},
		{"checked then booted", true, "checked (e2fsck)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, cached := cachedWorld(t)
			if !tc.checked {
				// The next update's own mount: the cache still holds.
				w.remountBackup(t, func(string) {})
				if _, c := w.updateWithLog(t); c.unused != "" || c.used != cached.entries {
					t.Fatalf("after one mount: %+v, want the %d entries used", c, cached.entries)
				}
			}
			rel := filepath.Join("Persistent", "dir002", "sub", "file0007")
			var before unix.Stat_t
			must(t, unix.Lstat(filepath.Join(w.dst.mnt, rel), &before))
			countBefore := mountCount(t, w.dst.loop)
			w.remountBackup(t, func(img string) {
				if tc.checked {
					run(t, "e2fsck", "-f", "-p", img)
				}
				booted := filepath.Join(w.dir, "booted")
				must(t, os.MkdirAll(booted, 0o755))
				run(t, "mount", "-t", "ext4", "-o", "loop,acl,user_xattr", img, booted)
				err := unix.Lsetxattr(filepath.Join(booted, rel), "user.on-the-backup-tails", []byte("1"), 0)
				run(t, "umount", booted)
				must(t, err)
				// The clock of that computer gave the change the ctime the cache remembers.
				run(t, "debugfs", "-w", "-R", fmt.Sprintf("sif /%s ctime @%d", rel, before.Ctim.Sec), img)
				run(t, "debugfs", "-w", "-R", fmt.Sprintf("sif /%s ctime_extra %d", rel, before.Ctim.Nsec<<2), img)
			})
			var after unix.Stat_t
			must(t, unix.Lstat(filepath.Join(w.dst.mnt, rel), &after))
			if after.Ino != before.Ino || after.Ctim != before.Ctim {
				t.Fatalf("the forged ctime %v (inode %d) is not the remembered %v (inode %d)", after.Ctim, after.Ino, before.Ctim, before.Ino)
			}
			if n := mountCount(t, w.dst.loop); tc.checked && n != countBefore+1 {
				t.Fatalf("mount count %d after e2fsck and two mounts, was %d: the case is not the one tested", n, countBefore)
			}
			rep, c := w.updateWithLog(t) // rsync finds no difference afterwards
			if !strings.Contains(c.unused, tc.reason) || c.used != 0 {
				t.Errorf("%+v, want the cache not used (%s)", c, tc.reason)
			}
			if rep.MetadataOnly != 1 {
				t.Errorf("%+v, want the one xattr changed on the backup undone", rep)
			}
		})
	}
}

// mountCount is the mount count in the ext4 superblock of the device dev.
func mountCount(t *testing.T, dev string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^Mount count:\s+(\d+)$`).FindStringSubmatch(run(t, "dumpe2fs", "-h", dev))
	if m == nil {
		t.Fatalf("no mount count in dumpe2fs -h %s", dev)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestUpdateXattrCacheFolderReplaced: something else in the cache folder's place on the backup
// (it may have been written anywhere) is neither followed nor replaced, and the update reads
// every xattr, as without a cache.
func TestUpdateXattrCacheFolderReplaced(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, p, outside string)
	}{
		{"symlink", func(t *testing.T, p, outside string) { must(t, os.Symlink(outside, p)) }},
		{"file", func(t *testing.T, p, _ string) { must(t, os.WriteFile(p, []byte("not a folder"), 0o600)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOpts{})
			fillSource(t, w.src.mnt, 1, 5, 1<<10)
			outside := filepath.Join(w.dir, "outside")
			must(t, os.Mkdir(outside, 0o755))
			p := filepath.Join(w.dst.mnt, tails.XattrCacheDirName)
			tc.make(t, p, outside)
			before := listing(t, p)
			if _, c := w.updateWithLog(t); !c.none || c.saved {
				t.Errorf("%+v, want no cache", c)
			}
			if after := listing(t, p); after != before {
				t.Errorf("what was in the cache folder's place changed:\n%s\n%s", before, after)
			}
			if names, err := os.ReadDir(outside); err != nil || len(names) != 0 {
				t.Errorf("the folder the symlink points to: %v, %v; want it empty", names, err)
			}
		})
	}
}
