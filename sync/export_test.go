package sync

import "time"

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

// WithBatches returns opts with the rename barrier committing a batch at ops entries, bytes of
// data, dirs directories held or age since its first entry; 0 keeps a default.
func WithBatches(opts Options, ops int, bytes int64, dirs int, age time.Duration) Options {
	opts.batch = batchBounds{ops: ops, bytes: bytes, dirs: dirs, age: age}
	return opts
}
