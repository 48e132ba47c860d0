package sync

import (
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// WithLimits returns opts with the engine's bounds replaced, for tests that reach them with
// small trees: depth levels of folders, nameBytes of folder listings held at once, linkGroups
// files with several hard links; 0 keeps a default.
func WithLimits(opts Options, depth int, nameBytes int64, linkGroups int) Options {
	opts.limits = limits{depth: depth, nameBytes: nameBytes, linkGroups: linkGroups}
	return opts
}

// WithAfterRename returns opts with fn called after each rename that puts a new version of an
// entry in place (from the renaming goroutine), for tests that stop the run at a chosen rename.
func WithAfterRename(opts Options, fn func(rel string)) Options {
	opts.afterRename = fn
	return opts
}

// WithAfterSync returns opts with fn called after each syncfs of the rename barrier, before
// the renames of its batch (from the committing goroutine).
func WithAfterSync(opts Options, fn func()) Options {
	opts.afterSync = fn
	return opts
}

// WithBatches returns opts with the rename barrier committing a batch at ops entries, bytes of
// data, dirs directories held or age since its first entry; 0 keeps a default.
func WithBatches(opts Options, ops int, bytes int64, dirs int, age time.Duration) Options {
	opts.batch = batchBounds{ops: ops, bytes: bytes, dirs: dirs, age: age}
	return opts
}

// XattrCacheAsOf makes c take start as its run's start, from which the margin against ctimes
// too recent to be sure of is measured, so that a test need not wait after writing its tree.
func XattrCacheAsOf(c *XattrCache, start time.Time) { c.start = start }

// RememberXattrsEqual adds the pair of entries at src and dst to c as if a complete run had
// found their xattrs equal (whether they are or not): a test forges it to see that a run
// believes the cache.
func RememberXattrsEqual(c *XattrCache, src, dst string) error {
	var s, d unix.Stat_t
	if err := unix.Lstat(src, &s); err != nil {
		return err
	}
	if err := unix.Lstat(dst, &d); err != nil {
		return err
	}
	c.old = append(c.old, fingerprintOf(&s, &d))
	slices.SortFunc(c.old, cmpFingerprint)
	c.index = newBucketIndex(c.old)
	c.hit = make([]atomic.Uint64, (len(c.old)+63)/64)
	return nil
}

// WithAfterData returns opts with fn called after each block of file data written (from the
// copying goroutine), with the file's path and the offset reached, for tests that stop a run
// in the middle of a file.
func WithAfterData(opts Options, fn func(rel string, off int64)) Options {
	opts.afterData = fn
	return opts
}

// WithResumeMin returns opts with files of at least size bytes copied into resumable
// temporaries (0 keeps the default).
func WithResumeMin(opts Options, size int64) Options {
	opts.resumeMin = size
	return opts
}

// IsPartialName tells the names of resumable temporaries.
func IsPartialName(name string) bool { return isPartialName(name) }

// PartialName is the name of the resumable temporary of the destination entry name for the
// source file version st.
func PartialName(name string, st unix.Stat_t) string { return partialName(name, &st) }

// IsTempName tells the names of the engine's temporaries, which a source listing leaves out.
func IsTempName(name string) bool { return isTempName(name) }

// CheckpointStep is how much of a resumable temporary is written between two flushes.
const CheckpointStep = checkpointStep
