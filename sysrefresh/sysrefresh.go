// Package sysrefresh refreshes the system partition of a backup Tails from the running one.
//
// The system partition is a FAT file system holding regular files and directories only
// (EFI/, live/, syslinux/, .disk/, ...). A refresh makes the destination tree a copy of the
// source tree, so that the backup boots the same Tails as the running system. It is built
// for a slow, hostile stick:
//
//   - each file is written under a temporary name (TempPrefix + 8 hex digits) in its
//     directory, synced, and renamed over the old file: at any instant a destination file is
//     either its old or its new version;
//   - small files come first, large ones (the SquashFS images) after, live/filesystem.squashfs
//     last of all data; then extraneous files are deleted; then the identity files
//     (.disk/info, live/Tails.module) are renamed in as the very last step, so an
//     interrupted refresh leaves an identity that still differs from the running system's and
//     the next update finishes it; leftover temporaries are removed first;
//   - free space is checked before anything is written: the old SquashFS stays until the new
//     one is renamed over it, so the destination must hold both at once;
//   - the files that belong to one stick alone (tails.PerStickSystemFiles: the LUKS header
//     backup, the Welcome Screen's settings) are left out on both sides: never copied from the
//     running stick, never replaced nor deleted on the backup, not part of the comparison;
//   - no path of either tree is ever resolved through a symlink or into another file system
//     mounted in it (openat2 with RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV on every component): a
//     mount anywhere in the backup's tree, or in the part of the running one that is copied,
//     stops the refresh with a *MountError before anything is written (amnesia owns the
//     backup's FAT folders on Tails and may mount FUSE there).
package sysrefresh

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"tails-backup/sysident"
)

// TempPrefix starts the name of every temporary file a refresh writes. It is a valid FAT long
// name (no ':', '*', '?', '"', '<', '>', '|', '\\'), hidden by its leading dot, and never a
// name Tails ships; Refresh removes any entry so named before it starts.
const TempPrefix = ".tbnew-"

// Defaults of Options.
const (
	// DefaultLastFile is the Tails OS image, the largest file, copied last of the data.
	DefaultLastFile = sysident.DefaultLastFile
	// DefaultLargeFile is the size from which a file is copied in the second, large phase.
	DefaultLargeFile = 64 << 20
	// DefaultContentLimit is the size up to which equal-looking files are compared by content.
	DefaultContentLimit = 1 << 20
	// DefaultMtimeTolerance is FAT's modification time granularity.
	DefaultMtimeTolerance = 2 * time.Second
	// DefaultSpaceMargin is kept free on top of the computed peak (FAT directory clusters).
	DefaultSpaceMargin = 1 << 20
)

// DefaultPreserve are destination files a refresh neither writes nor deletes.
// syslinux/ldlinux.sys is written by the syslinux installer into each stick's own clusters,
// and the stick's boot sector points at those clusters: a copy from another stick, renamed
// over it, would break legacy BIOS boot. Re-installing syslinux is the helper's job (see the
// integration note).
var DefaultPreserve = []string{"syslinux/ldlinux.sys"}

// Options configure version reading, planning and refreshing. The zero value means defaults.
type Options struct {
	// VersionFiles are candidate version files, in order (default
	// sysident.DefaultVersionFiles); they are written last, with the identity files.
	VersionFiles []string
	// IdentityFiles are hashed into the identity (default sysident.DefaultIdentityFiles).
	IdentityFiles []string
	// LastFile is copied after every other data file (default DefaultLastFile); its size is
	// part of the identity.
	LastFile string
	// Preserve lists destination paths never written nor deleted (default DefaultPreserve).
	// Set to an empty, non-nil slice to preserve nothing but the files of one stick alone
	// (tails.PerStickSystemFiles), which are always left out on both sides: never copied from
	// the source, never written, replaced or deleted on the destination, never compared.
	Preserve []string
	// LargeFile is the size from which a file is copied in the large phase.
	LargeFile int64
	// ContentLimit is the size up to which files of equal size and mtime are compared by content.
	ContentLimit int64
	// MtimeTolerance is the largest mtime difference still taken as equal.
	MtimeTolerance time.Duration
	// SpaceMargin is added to the space a refresh needs.
	SpaceMargin int64
	// CaseSensitive matches names exactly; by default names are matched ignoring ASCII case,
	// as FAT does, so that "EFI" on one stick and "efi" on the other are one directory.
	CaseSensitive bool
	// Progress, when set, is called after each block written, from the calling goroutine.
	Progress func(Progress)

	// Test hooks.
	afterRename    func(dstPath string)
	skipSpaceCheck bool
	maxEntries     int // MaxEntries when 0
}

// Progress reports the bytes written so far out of the bytes to write.
type Progress struct {
	Path        string // the destination file being written, relative to the root
	Done, Total int64
}

// ident is what of o makes a system partition's version and identity.
func (o Options) ident() sysident.Options {
	return sysident.Options{VersionFiles: o.VersionFiles, IdentityFiles: o.IdentityFiles, LastFile: o.LastFile}
}

func (o Options) withDefaults() Options {
	if o.VersionFiles == nil {
		o.VersionFiles = sysident.DefaultVersionFiles
	}
	if o.IdentityFiles == nil {
		o.IdentityFiles = sysident.DefaultIdentityFiles
	}
	if o.LastFile == "" {
		o.LastFile = DefaultLastFile
	}
	if o.Preserve == nil {
		o.Preserve = DefaultPreserve
	}
	if o.LargeFile <= 0 {
		o.LargeFile = DefaultLargeFile
	}
	if o.ContentLimit <= 0 {
		o.ContentLimit = DefaultContentLimit
	}
	if o.MtimeTolerance <= 0 {
		o.MtimeTolerance = DefaultMtimeTolerance
	}
	if o.maxEntries <= 0 {
		o.maxEntries = MaxEntries
	}
	if o.SpaceMargin <= 0 {
		o.SpaceMargin = DefaultSpaceMargin
	}
	return o
}

// ErrNoVersion is returned when none of the version files is present and readable: the
// tree is not a Tails system partition (sysident.ErrNoVersion).
var ErrNoVersion = sysident.ErrNoVersion

// ErrNoSpace is matched (errors.Is) by a *SpaceError.
var ErrNoSpace = errors.New("not enough free space on the backup's system partition")

// SpaceError says how much space a refresh needs on the destination and how much it has.
// Needed is the peak of the extra space used while files are replaced one by one: while a
// file is written its old version stays until the new one is renamed over it, so the
// destination must hold both copies of the largest file (the SquashFS) at once.
type SpaceError struct {
	Needed, Available int64
	// During is true when the file system filled up while writing (the estimate was wrong,
	// or something else wrote to the stick); the temporary was removed.
	During bool
}

func (e *SpaceError) Error() string {
	if e.During {
		return fmt.Sprintf("the backup's system partition ran out of space while it was refreshed (%d bytes free before it started); old files were kept", e.Available)
	}
	return fmt.Sprintf("the backup's system partition needs %d bytes free but has %d: the old Tails system image stays on the stick until the new one replaces it, so both must fit at once", e.Needed, e.Available)
}

// Is makes errors.Is(err, ErrNoSpace) true.
func (e *SpaceError) Is(target error) bool { return target == ErrNoSpace }

// ErrOtherFileSystem is matched (errors.Is) by a *MountError.
var ErrOtherFileSystem = sysident.ErrOtherFileSystem

// MountError names an entry of a system partition tree that is on another file system than
// the tree's root: something is mounted there. A refresh never enters such an entry, never
// writes into it or deletes anything in it, and never reads a file from it: it stops. Its
// Backup field says which tree (the functions that see both trees, Check, Plan and Refresh,
// set it). It is the error sysident gives for the same reason.
type MountError = sysident.MountError

// Bounds of a walk through a system partition tree. Tails' own system partition holds some
// 1,500 entries, at most 8 levels deep. The backup's is a FAT file system that udisks mounts
// with amnesia as the owner of every folder: there, empty files and folders nested without end
// cost only directory slots, and each level the walk enters holds a descriptor, a stack frame
// and a listing in the root helper.
const (
	// MaxDepth is the deepest level of a path the refresh enters (a/b/c is at level 3).
	MaxDepth = 64
	// MaxEntries is the most entries one look through the backup's tree counts.
	MaxEntries = 1_000_000
)

// ErrTooBig is matched (errors.Is) by a *LimitError.
var ErrTooBig = errors.New("a system partition tree is beyond the bounds of a refresh")

// LimitError names the entry of a system partition tree where a walk passed one of its bounds
// (MaxDepth, MaxEntries). The refresh stops there: nothing was written or removed when it comes
// from the look through the backup's tree that precedes the writes.
type LimitError struct {
	Backup bool   // the backup's tree, or the running one
	Path   string // relative to the root of its tree
	Depth  bool   // MaxDepth passed; otherwise MaxEntries
}

func (e *LimitError) Error() string {
	tree := "the system partition"
	if e.Backup {
		tree = "the backup's system partition"
	}
	return fmt.Sprintf("%s holds %s, at %q", tree, e.What(), e.Path)
}

// What says which bound was passed, as a noun phrase: "folders nested more than 64 levels deep".
func (e *LimitError) What() string {
	if e.Depth {
		return fmt.Sprintf("folders nested more than %d levels deep", MaxDepth)
	}
	return fmt.Sprintf("more than %d files and folders", MaxEntries)
}

// Is makes errors.Is(err, ErrTooBig) true.
func (e *LimitError) Is(target error) bool { return target == ErrTooBig }

// depthOf is the level of the relative path p ("" is the root, level 0).
func depthOf(p string) int {
	p = strings.Trim(p, "/")
	if p == "" {
		return 0
	}
	return strings.Count(p, "/") + 1
}

// FileCopy is a file to write.
type FileCopy struct {
	Path    string // relative to the source root
	DstPath string // relative to the destination root (the destination's spelling if it exists)
	Size    int64
	OldSize int64 // size of the file it replaces, 0 if none
	ModTime time.Time
	Reason  string // "new", "size", "mtime", "content", "type"
}

// Delete is an extraneous destination entry.
type Delete struct {
	Path string
	Dir  bool // removed with its contents
}

// Changes is what a refresh has to do, in the order it does it.
type Changes struct {
	// Conflicts are destination entries of the wrong type (a directory where the source has a
	// file, or anything but a directory where the source has one): removed first.
	Conflicts []Delete
	// Mkdirs are directories to create, parents first.
	Mkdirs []string
	// Copies are data files, small ones first, then large ones by size, LastFile last.
	Copies []FileCopy
	// Deletes are extraneous destination entries, removed after all data copies.
	Deletes []Delete
	// Commit are the changed version and identity files, written last of all.
	Commit []FileCopy
	// Skipped are source entries that are neither regular files nor directories.
	Skipped []string
	// Bytes is the total size of Copies and Commit.
	Bytes int64
}

// Empty is true when the destination is already a copy of the source.
func (c Changes) Empty() bool {
	return len(c.Conflicts)+len(c.Mkdirs)+len(c.Copies)+len(c.Deletes)+len(c.Commit) == 0
}

// Report is what Refresh did.
type Report struct {
	SourceVersion, DestinationVersion string // the latter as found before the refresh
	RemovedTemporaries                []string
	Changes                           Changes
	Written                           int64
	Needed, Available                 int64
}
