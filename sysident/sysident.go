// Package sysident reads what Tails a system partition holds, its version and an identity that changes with every release and incremental upgrade, without following a symlink or entering another file system mounted in it.
package sysident

import (
	"errors"
	"fmt"
)

// DefaultLastFile is the Tails OS image, the largest file of a system partition: its size is
// part of the identity (and a refresh copies it last of the data).
const DefaultLastFile = "live/filesystem.squashfs"

// DefaultVersionFiles are the files, relative to the system partition root, whose first line
// is taken as the Tails version, the first present one winning. Tails' ISO (built by
// live-build) carries .disk/info; its exact wording is not verified, which is harmless: both
// sides are read the same way and compared, never parsed.
var DefaultVersionFiles = []string{".disk/info"}

// DefaultIdentityFiles complete the version in the identity of a system partition. An
// incremental upgrade (IUK) adds a live/<version>.squashfs delta and rewrites
// live/Tails.module, which lists the SquashFS images to stack, but leaves .disk/info as it
// was: the identity must see it.
var DefaultIdentityFiles = []string{"live/Tails.module"}

// Options say which files make the version and the identity. The zero value means defaults.
type Options struct {
	// VersionFiles are candidate version files, in order (default DefaultVersionFiles).
	VersionFiles []string
	// IdentityFiles are hashed into the identity (default DefaultIdentityFiles).
	IdentityFiles []string
	// LastFile is the file whose size is part of the identity (default DefaultLastFile).
	LastFile string
}

// withDefaults returns o with each unset field set to its default.
func (o Options) withDefaults() Options {
	if o.VersionFiles == nil {
		o.VersionFiles = DefaultVersionFiles
	}
	if o.IdentityFiles == nil {
		o.IdentityFiles = DefaultIdentityFiles
	}
	if o.LastFile == "" {
		o.LastFile = DefaultLastFile
	}
	return o
}

// Identity tells two system partitions apart.
type Identity struct {
	// Version is the first line of the version file, for people.
	Version string
	// Digest covers the version file, the identity files (absent ones count as absent) and
	// the size of LastFile: it changes with every full release and every incremental upgrade.
	Digest string
}

// ErrNoVersion is returned when none of the version files is present and readable.
var ErrNoVersion = errors.New("no Tails version found on the system partition")

// ErrOtherFileSystem is matched (errors.Is) by a *MountError.
var ErrOtherFileSystem = errors.New("another file system is mounted inside a system partition")

// MountError names an entry of a system partition tree that is on another file system than
// the tree's root: something is mounted there. Nothing is ever read from such an entry (nor,
// by a refresh, written into or deleted in it). On Tails, udisks mounts the backup's FAT
// system partition with uid=1000, so amnesia owns every folder of it and may mount a FUSE
// file system on one (fusermount is setuid root).
type MountError struct {
	// Backup is true for the backup's tree, false for the running one. Only the functions
	// that see both trees (sysrefresh's Check, Plan, Refresh) can tell; Identify and
	// ReadVersion, which see one, leave it false.
	Backup bool
	// Path is the entry, relative to the root of its tree.
	Path string
}

func (e *MountError) Error() string {
	tree := "the system partition"
	if e.Backup {
		tree = "the backup's system partition"
	}
	return fmt.Sprintf("another file system is mounted on %q in %s; nothing in it is read or written", e.Path, tree)
}

// Is makes errors.Is(err, ErrOtherFileSystem) true.
func (e *MountError) Is(target error) bool { return target == ErrOtherFileSystem }
