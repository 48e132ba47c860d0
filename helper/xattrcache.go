//go:build linux

package helper

import (
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
	tbsync "tails-backup/sync"
	"tails-backup/tails"
)

// An update keeps its xattr cache (sync.XattrCache) in tails.XattrCacheDirName at the root of
// the backup it updates: root:root 0700, left out of every mirror, verify and restore
// (tails.MirrorExcludes). On the backup, because what the cache vouches for is the backup's
// inodes: it goes where the backup goes, one per backup, and whatever happens to the backup
// elsewhere happens to the cache too. In particular a backup booted as Tails (or mounted on
// any other computer) was mounted read-write there, which its ext4 superblock counts: the next
// update's own mount makes two since the cache was saved, and the cache is not used (it is
// replaced by the one that update saves). A backup made by an older version gets the folder
// at its first update; an older version's update deletes it, as anything that is not in the
// source. Whatever goes wrong with the cache (the folder cannot be made, something else in its
// place, a damaged file, no room to save it) the update reads every xattr, as without a cache.

// openXattrCacheDir opens the cache folder at the root of the backup dst, making it if needed,
// root's alone. A symlink or file in its place, or a mount on it, is refused, never followed.
func openXattrCacheDir(dst *root) (int, error) {
	name := tails.XattrCacheDirName
	if err := unix.Mkdirat(dst.fd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("make %s: %w", name, err)
	}
	return openRootsDir(dst.fd, name, &dst.dev)
}

// openXattrCache loads the update's xattr cache from the folder open as dirFD (-1: none), or
// returns nil: the update then runs without one.
func (o *operation) openXattrCache(dirFD int, src, dst *root) *tbsync.XattrCache {
	if dirFD < 0 {
		return nil
	}
	c, err := tbsync.OpenXattrCache(dirFD, src.fd, dst.fd)
	if err != nil {
		o.log.WithError(err).Warn("xattr cache unreadable; reading every xattr")
		return nil
	}
	if why := c.Unused(); why != "" {
		o.log.WithField("reason", why).Info("xattr cache not used; reading every xattr")
	}
	return c
}

// logXattrCache says whether the mirror saved the cache c (saveErr: why not); a cache that
// cannot be saved only makes the next update read more.
func (o *operation) logXattrCache(c *tbsync.XattrCache, saveErr error) {
	if c == nil {
		return
	}
	log := o.log.WithFields(logrus.Fields{"entries": c.Entries(), "used": c.Used()})
	if saveErr != nil {
		log.WithError(saveErr).Warn("xattr cache not saved")
		return
	}
	log.Info("xattr cache saved")
}

// A promoted backup Tails (promote) is a main Tails: nothing updates it any more, and an update
// never keeps a cache in its own source, so its cache folder is of no use and goes with the
// marker. Whoever had the stick may have put anything under that name: nothing is followed
// (a symlink or a file there is deleted itself), the folder is emptied one level at a time
// through descriptors opened O_NOFOLLOW, never below another mount, and the walk is bounded.

// Bounds of the removal of a cache folder: the real one holds two files.
const (
	cacheRemoveDepth = 16
	cacheRemoveNames = 16 << 20 // bytes of names listed at once, as beneath.NameCost counts
)

// removeXattrCacheDir deletes the cache folder at the root of this Tails' Persistent Storage
// src; it reports whether there was one. Absent, there is nothing to do.
func removeXattrCacheDir(src *root) (bool, error) {
	budget := &beneath.Budget{PerList: cacheRemoveNames, Limit: cacheRemoveNames}
	return removeEntryAt(src.fd, tails.XattrCacheDirName, src.dev, budget, 0)
}

// removeEntryAt deletes the entry name of the folder open as dirFD (a folder with its whole
// tree) without following a symlink or leaving the device dev; it reports whether it was there.
func removeEntryAt(dirFD int, name string, dev uint64, budget *beneath.Budget, depth int) (bool, error) {
	var st unix.Stat_t
	switch err := unix.Fstatat(dirFD, name, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("stat %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dirFD, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return true, fmt.Errorf("delete %s: %w", name, err)
		}
		return true, nil
	}
	if depth >= cacheRemoveDepth {
		return true, fmt.Errorf("%s is more than %d folders deep", name, cacheRemoveDepth)
	}
	fd, err := beneath.OpenDir(dirFD, name)
	if err != nil {
		return true, fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return true, fmt.Errorf("stat %s: %w", name, err)
	}
	if st.Dev != dev {
		return true, fmt.Errorf("%s is a mount point", name)
	}
	names, cost, err := beneath.ReadNames(fd, nil, budget)
	if err != nil {
		return true, fmt.Errorf("list %s: %w", name, err)
	}
	defer budget.Give(cost)
	for _, n := range names {
		if _, err := removeEntryAt(fd, n, dev, budget, depth+1); err != nil {
			return true, fmt.Errorf("in %s: %w", name, err)
		}
	}
	if err := unix.Unlinkat(dirFD, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return true, fmt.Errorf("delete %s: %w", name, err)
	}
	return true, nil
}
