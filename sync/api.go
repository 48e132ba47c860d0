// Package sync makes a destination directory tree an exact copy of a source tree on local file systems.
//
// It is the equivalent of `rsync -aHAXS --delete --numeric-ids -x SRC/ DST/` between two mounted
// file systems, done in-process: file types, hard links, numeric owners, full modes, every xattr
// (so POSIX ACLs), nanosecond mtimes and sparse holes are reproduced, and what the source lacks is
// deleted from the destination. The destination is treated as hostile: every operation on it goes
// through directory file descriptors with single-component names and never follows a symlink, so
// nothing is ever written outside the destination root. Each destination file is at every instant
// either its old or its new version (a temporary file in the same directory, renamed over the old
// once a syncfs has put its data on the device), even after the device is pulled out.
package sync

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// Options tunes a Mirror or MirrorFDs run. The zero value is a valid, complete mirror.
type Options struct {
	// DryRun compares the trees and reports what would change without writing anything.
	DryRun bool
	// Checksum compares the content of regular files whose size is equal instead of trusting
	// equal size and mtime (rsync --checksum).
	Checksum bool
	// Exclude lists slash-separated paths relative to the roots (for example ".tails-backup.json")
	// that are neither copied from the source nor deleted from the destination.
	Exclude []string
	// Workers bounds the number of goroutines doing file system work; 0 picks a default.
	Workers int
	// Progress, when set, is called from a single goroutine about every ProgressInterval and once
	// at the end; it must not block for long.
	Progress func(Progress)
	// ProgressInterval is the time between Progress calls; 0 means 200ms.
	ProgressInterval time.Duration
	// NoSync skips the final syncfs(2) of the destination file system.
	NoSync bool
	// OnChange, when set, is called during the scan for each entry that differs, from one
	// goroutine at a time (but not always the same one); with DryRun this lists what a run would
	// change, as `rsync -n -i` does.
	OnChange func(Change)
	// UntrustedSource is for copying from a stick that may be hostile into a trusted tree (a
	// restore): character and block devices are refused (reported, not created), setuid and
	// setgid bits are cleared on everything but directories, and only user.* xattrs and POSIX
	// ACLs are copied (no security.capability, no trusted.*). A second run then finds the same
	// differences again; this mode is for one-way copies.
	UntrustedSource bool
	// KeepDestinationRoot leaves the destination root's own owner, group, mode and xattrs (so
	// its POSIX ACLs) as they are: they are neither compared with the source root's nor changed,
	// at any instant of the run, so that a run killed at any point leaves them too. Only the
	// root's mtime follows the source root's, as any directory's does. This is for a copy into
	// a tree whose root's ownership and permissions belong to the tree (a restore into a Tails
	// Persistent Storage, whose root Tails checks at boot): putting them back after the run
	// would leave the source root's if the process were killed in between.
	KeepDestinationRoot bool
	// DiscardOnCancel makes a run cancelled by its caller delete the resumable temporaries of
	// the large files it was copying (resume.go), as it deletes the others, instead of keeping
	// them for the next run to resume. It is for a destination that is a person's own tree (a
	// restore into the Persistent Storage), where no next run may come to delete them.
	DiscardOnCancel bool
	// Log receives warnings (vanished files, per-file errors); nil discards them.
	Log *logrus.Entry
	// XattrCache, when set (OpenXattrCache), spares reading the xattrs of entries whose source
	// and destination inodes have not changed since a complete earlier run found their xattrs
	// equal, and remembers the entries this run finds equal. A run that completes (returns no
	// error; not DryRun) saves it in its folder before its final syncfs
	// (Report.XattrCacheErr); a cache serves one run. Its folder must be outside the mirrored
	// tree or excluded. Ignored with UntrustedSource.
	XattrCache *XattrCache

	// procXattrs makes the run read xattrs through /proc/self/fd paths, as on kernels older
	// than 6.13, so that tests cover that path on any kernel.
	procXattrs bool
	// xattrPath, when set, is told at the end of the run whether it read xattrs through
	// /proc/self/fd paths (the kernel refused the *xattrat calls, or procXattrs), so that a test
	// sees which path a run really took.
	xattrPath func(proc bool)
	// limits replaces the engine's bounds (its zero fields keep the defaults), so that tests
	// reach them with small trees.
	limits limits
	// afterRename, when set, is called after each rename of a new version over its name, with
	// the entry's path, so that a test can cut the power at a chosen point of the commit.
	afterRename func(rel string)
	// afterSync, when set, is called after each syncfs of the rename barrier, before the
	// batch's renames, so that a test can see what is renamed before and after a flush.
	afterSync func()
	// afterData, when set, is called after each block of file data written, with the file's
	// path and the offset reached, so that a test can stop a run in the middle of a file.
	afterData func(rel string, off int64)
	// resumeMin replaces the size from which files are copied into resumable temporaries.
	resumeMin int64
	// batch replaces the rename barrier's bounds (its zero fields keep the defaults), so that
	// tests commit many small batches.
	batch batchBounds
}

// batchBounds are the bounds of a batch of renames waiting behind the barrier (commit.go).
type batchBounds struct {
	ops   int
	bytes int64
	dirs  int
	age   time.Duration
}

// limits are the bounds that keep a run's memory and open descriptors bounded whatever the trees
// hold (a hostile backup may hold anything); past one, the run stops with a *LimitError.
type limits struct {
	depth      int   // levels of folders below the root
	nameBytes  int64 // memory of the folder listings held at once, as beneath.NameCost counts it
	linkGroups int   // source inodes with several links remembered in the link table
}

// Phase names the stage of a run that a Progress event describes.
type Phase string

const (
	// PhaseScan is the comparison of the two trees that computes the totals.
	PhaseScan Phase = "scan"
	// PhaseCopy is the application of the changes.
	PhaseCopy Phase = "copy"
	// PhaseDone is sent once when the run has ended, successfully or not.
	PhaseDone Phase = "done"
)

// Progress is a snapshot of a running Mirror. Totals are known once the scan has ended.
type Progress struct {
	Phase      Phase
	FilesDone  int64 // entries created, updated, changed or deleted so far
	FilesTotal int64 // entries the scan found to change
	BytesDone  int64 // file data written so far, or kept from an earlier run's copy (read back)
	BytesTotal int64 // file data the scan found to copy
	Path       string
}

// Report says what a Mirror run did (or, with DryRun, would do).
type Report struct {
	Created      int64 // entries that did not exist in the destination
	Updated      int64 // entries whose data, target or type changed
	MetadataOnly int64 // entries whose owner, mode, xattrs or mtime changed, data untouched
	Deleted      int64 // entries removed from the destination
	BytesCopied  int64 // file data written
	// BytesResumed is file data that an earlier, interrupted run had written to a temporary,
	// found equal to the source by reading it back, and kept instead of written again.
	BytesResumed int64
	// BytesCompared is file data read from the source to compare it with the destination's,
	// for files of the same size whose mtime differs (so that a touch costs a read, not a
	// write) and with Checksum. The copy does not compare again what the scan compared, unless
	// the file changed in between.
	BytesCompared int64
	Scanned       int64 // source entries looked at
	// XattrCacheErr is why Options.XattrCache could not be saved at the end of the run, which
	// otherwise completed: the next run reads more xattrs, nothing else.
	XattrCacheErr error
	// Errors lists per-file problems (read errors, vanished or changing files); the run went on.
	// It holds at most MaxReportedErrors entries; ErrorCount has the full number.
	Errors     []FileError
	ErrorCount int64
	Duration   time.Duration
	// ScanTime, CopyTime and FlushTime split Duration into the comparison of the trees, the
	// application of the changes and the final flush of the destination.
	ScanTime, CopyTime, FlushTime time.Duration
}

// MaxReportedErrors bounds Report.Errors so that a failing disk cannot exhaust memory.
const MaxReportedErrors = 1000

// Changes is the number of entries the run changed.
func (r Report) Changes() int64 { return r.Created + r.Updated + r.MetadataOnly + r.Deleted }

// ChangeKind says what a Change does to an entry.
type ChangeKind string

const (
	ChangeCreate   ChangeKind = "create"   // the destination lacks the entry
	ChangeUpdate   ChangeKind = "update"   // its data, target, device number, type or links differ
	ChangeMetadata ChangeKind = "metadata" // only its owner, mode, mtime or xattrs differ
	ChangeDelete   ChangeKind = "delete"   // the source lacks the entry
)

// Change is one difference between the trees, found by the scan.
type Change struct {
	Path string // relative to the roots; "." for the roots themselves
	Kind ChangeKind
	// What differs, for an update or a metadata change: some of "type", "data", "target",
	// "device", "links", "owner", "group", "mode", "mtime", "xattrs".
	What []string
	Dir  bool // the entry is a directory (in the source, or for a deletion in the destination)
	// Type is the entry's type as rsync itemizes it: 'f' regular file, 'd' directory, 'L'
	// symlink, 'D' device, 'S' fifo or socket (the source entry's; the destination's for a
	// deletion).
	Type byte
	// Target is the target of a symlink that is created or updated.
	Target string
	// LinkTo is, for a member of a hard-link group that becomes a hard link to another member,
	// that member's path (rsync -i's "=> path").
	LinkTo string
	// Differs lists, for an update (whose What names only the reason), every attribute of the
	// two entries that differs, among "size", "mtime", "mode", "owner" and "group", so that an
	// itemized line can show them as rsync -i does.
	Differs []string
}

// FileError is a problem with one path that did not stop the run.
type FileError struct {
	Path string // relative to the roots
	Op   string // what was being done: "read", "vanished", "changed", "copy", "delete", ...
	Err  error
}

func (e FileError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err) }

// NoSpaceError is returned when the destination cannot hold the changes. Nothing in the
// destination has been damaged: every file is its old or its new version and no temporary is left.
type NoSpaceError struct {
	Needed    int64 // bytes the remaining changes need
	Available int64 // bytes the destination had free for them
	// During is true when a write ran out of space after the check at the start (a file grew,
	// space was taken meanwhile, or the file system's own overhead): Needed is then only a
	// lower bound, and may be far below what is missing.
	During bool
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("not enough space on the destination: %s needed, %s available; free some space or use a bigger device",
		FormatBytes(e.Needed), FormatBytes(e.Available))
}

// RootError is a source or destination root that cannot be used (missing, not a folder, not
// readable). Its message names the path once and says what to do; Err has the details.
type RootError struct {
	Root string // "source" or "destination"
	Path string
	Err  error
}

func (e *RootError) Error() string {
	what := "give the folder to copy"
	if e.Root == "destination" {
		what = "give the folder to copy into (create it first if needed)"
	}
	switch {
	case errors.Is(e.Err, fs.ErrNotExist):
		return fmt.Sprintf("the %s %s does not exist: %s", e.Root, e.Path, what)
	case errors.Is(e.Err, syscall.ENOTDIR):
		return fmt.Sprintf("the %s %s is not a folder: %s", e.Root, e.Path, what)
	case errors.Is(e.Err, fs.ErrPermission):
		return fmt.Sprintf("the %s %s cannot be read (permission denied): run as a user who can read it, or %s", e.Root, e.Path, what)
	}
	// The bare reason, without the name of the system call that failed.
	reason := e.Err
	var pe *fs.PathError
	if errors.As(reason, &pe) {
		reason = pe.Err
	}
	return fmt.Sprintf("the %s %s cannot be used (%v): %s", e.Root, e.Path, reason, what)
}

func (e *RootError) Unwrap() error { return e.Err }

// ErrVanished marks a source entry that disappeared while the run looked at it.
var ErrVanished = errors.New("vanished from the source during the copy")

// ErrChanging marks a source file that kept changing while it was copied; its previous
// destination version was kept.
var ErrChanging = errors.New("kept changing while it was copied; its previous copy was kept")

// ErrUntrustedDevice marks a device node that UntrustedSource refused to create.
var ErrUntrustedDevice = errors.New("is a device node, which is not copied from an untrusted source")

// ErrMountPoint marks a destination directory that is the mount point of another file system,
// which the mirror never enters nor deletes.
var ErrMountPoint = errors.New("is a mount point on the destination")

// Limit names a bound that keeps the engine's memory and descriptors bounded whatever the trees
// hold; each is far above what a real Persistent Storage holds.
type Limit string

const (
	// LimitDepth is the number of levels folders may be nested below the root.
	LimitDepth Limit = "depth"
	// LimitNames is the memory, in bytes, of the folder listings held at once.
	LimitNames Limit = "names"
	// LimitLinks is the number of files with several hard links (source inodes) remembered.
	LimitLinks Limit = "links"
)

// LimitError is returned when a tree goes beyond one of the engine's bounds (a hostile or
// broken tree: folders nested thousands of levels deep, folders of millions of entries,
// millions of hard-linked files). The run stops there; as after any error, each destination
// file is its old or its new version and no temporary is left.
type LimitError struct {
	Path          string // relative to the roots: the folder, or the file, beyond the bound
	What          Limit
	Limit         int64 // the bound: levels, bytes of names, or files
	InDestination bool  // the entry is in the destination tree, not in the source
}

func (e *LimitError) Error() string {
	tree := "source"
	if e.InDestination {
		tree = "destination"
	}
	p := ShortPath(e.Path)
	switch e.What {
	case LimitDepth:
		return fmt.Sprintf("the %s holds a folder nested more than %d levels deep (%s); the mirror stops there", tree, e.Limit, p)
	case LimitNames:
		return fmt.Sprintf("the %s holds a folder with too many entries (%s), whose names would take more than %s; the mirror stops there", tree, p, FormatBytes(e.Limit))
	case LimitLinks:
		return fmt.Sprintf("the %s holds more than %d files with several hard links (%s is one more); the mirror stops there", tree, e.Limit, p)
	}
	return fmt.Sprintf("the %s goes beyond the %s limit of %d (%s); the mirror stops there", tree, e.What, e.Limit, p)
}

// Problem says in a few words what goes beyond the bound, for messages such as "the backup
// holds PROBLEM (PATH)".
func (e *LimitError) Problem() string {
	switch e.What {
	case LimitDepth:
		return "a folder nested too deeply"
	case LimitNames:
		return "a folder with too many entries"
	case LimitLinks:
		return "too many files with several hard links"
	}
	return "too much data of one kind"
}

// ShortPath shortens a relative path for a message: a path of a folder nested hundreds of
// levels deep keeps its first and last components, joined by "/…/".
func ShortPath(p string) string {
	const keep = 60
	if len(p) <= 2*keep+5 {
		return p
	}
	head := strings.LastIndexByte(p[:keep], '/')
	if head < 0 { // a long first name: cut it between two characters
		for head = keep; !utf8.RuneStart(p[head]); head-- {
		}
	}
	tail := len(p) - keep
	if i := strings.IndexByte(p[tail:], '/'); i >= 0 {
		tail += i + 1
	} else {
		for ; !utf8.RuneStart(p[tail]); tail++ {
		}
	}
	return p[:head] + "/…/" + p[tail:]
}

// FormatBytes writes a byte count the way the reports do: "512 B", "1.5 KiB", "2.0 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
