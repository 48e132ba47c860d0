package session

// The rules of creating a backup that need no system: how a backup Tails is laid out on a stick, how
// big a stick must be to hold this Tails, and which drives may be erased to make one.

import (
	"tails-backup/l10n"
	"tails-backup/tails"
	"tails-backup/udisks"
)

const mib = 1 << 20

const (
	// minBackupStickSize is the smallest stick Tails Installer accepts (Tails asks for a stick
	// of 8 GB at least; 8 GB sticks hold a little more than 7200 MiB). A smaller stick would
	// fit Tails today but leave its upgrades no room.
	minBackupStickSize = 7200 * mib
	// gptTailSpace is left at the end of the stick: the secondary GPT (33 sectors), rounded to
	// the 1 MiB alignment udisks keeps.
	gptTailSpace = 1 * mib
	// luks2HeaderSize is what cryptsetup's LUKS2 header and key slots take at the start of the
	// partition (its default metadata and key slots area).
	luks2HeaderSize = 16 * mib
	// ext4JournalAllowance bounds the journal mke2fs makes (64 MiB under 16 GiB, 128 MiB up to
	// 32 GiB, 256 MiB up to 64 GiB; bigger file systems are covered by the share below).
	ext4JournalAllowance = 256 * mib
	// ext4MetadataShare is the part of an ext4 file system its metadata takes, rounded up: the
	// inode tables (a 256-byte inode per 16 KiB, 1/64), the bitmaps and group descriptors.
	ext4MetadataShare = 32 // 1/32 of the partition
	// headroomShare is the room kept free on top of the data to copy (1/10 of it): files
	// written anew take whole blocks, folders and ACLs take blocks of their own, and the
	// Persistent Storage grows between updates.
	headroomShare = 10
)

// Layout is where the partitions of a backup Tails go on a stick, in bytes.
type Layout struct {
	StickSize    uint64
	SystemOffset uint64 // Tails' system partition: 2 MiB, then its size by Tails' rule
	SystemSize   uint64
	DataOffset   uint64 // the TailsData partition: right after, to the end of the stick
	DataSize     uint64
	// DataUsable is what the ext4 file system inside the LUKS volume holds, at most.
	DataUsable uint64
}

// PlanLayout lays out a backup Tails on a stick of stickSize bytes. ok is false when the
// stick cannot even hold the system partition and a LUKS header.
func PlanLayout(stickSize uint64) (l Layout, ok bool) {
	l = Layout{StickSize: stickSize, SystemOffset: tails.SystemPartitionOffset, SystemSize: tails.SystemPartitionSize(stickSize)}
	l.DataOffset = l.SystemOffset + l.SystemSize
	end := stickSize / mib * mib
	if end < l.DataOffset+gptTailSpace+luks2HeaderSize+ext4JournalAllowance {
		return l, false
	}
	l.DataSize = end - gptTailSpace - l.DataOffset
	overhead := luks2HeaderSize + ext4JournalAllowance + l.DataSize/ext4MetadataShare
	if l.DataSize <= overhead {
		return l, false
	}
	l.DataUsable = l.DataSize - overhead
	return l, true
}

// dataNeeded is the room the backup's Persistent Storage needs for used bytes of data.
func dataNeeded(used uint64) uint64 { return used + used/headroomShare }

// StickFits tells whether a stick of stickSize bytes can hold a backup of a Tails whose
// Persistent Storage holds used bytes.
func StickFits(stickSize, used uint64) bool {
	if stickSize < minBackupStickSize {
		return false
	}
	l, ok := PlanLayout(stickSize)
	return ok && l.DataUsable >= dataNeeded(used)
}

// NeededStickSize is the smallest stick that holds a backup of a Tails whose Persistent Storage
// holds used bytes, counted in whole MiB, within the system partition rule of a stick of
// stickSize bytes: a stick too small for a 4 GiB system partition is told the smallest size
// that works at all; a stick of 14500 MiB or more, which gets 8 GiB, is told the smallest
// size with 8 GiB. So a stick that does not fit is always told a size above its own.
func NeededStickSize(stickSize, used uint64) uint64 {
	const bigFrom = 14500 * mib // the first size with the 8 GiB system partition
	if stickSize < bigFrom {
		if n, ok := smallestFit(minBackupStickSize/mib, bigFrom/mib-1, used); ok {
			return n
		}
	}
	n, _ := smallestFit(bigFrom/mib, 1<<40/mib*1024, used) // up to 1 PiB: never reached
	return n
}

// smallestFit finds the smallest size, in whole MiB within [lo, hi] MiB, that fits used bytes.
// Within one system partition size, what a stick holds grows with its size, so a binary
// search finds it.
func smallestFit(lo, hi, used uint64) (uint64, bool) {
	if !StickFits(hi*mib, used) {
		return 0, false
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if StickFits(mid*mib, used) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo * mib, true
}

// DriveFacts is what `create` knows of a drive plugged in, to decide whether it may be erased.
type DriveFacts struct {
	Size      uint64
	Removable bool
	Boot      bool // the drive this Tails runs from
	ReadOnly  bool
	// SystemHint: udev marked it a system device (UDISKS_SYSTEM), which the helper never
	// writes to.
	SystemHint bool
	NoMedium   bool // no disk block (a card reader without a card)
}

// NotEligibleIn says why a drive cannot become the backup of a Tails whose Persistent Storage
// holds used bytes, in a clause that follows "cannot be used:"; "" if it can.
func (d DriveFacts) NotEligibleIn(loc *l10n.Locale, used uint64) string {
	switch {
	case d.Boot:
		return loc.Tr("it is the stick this Tails is running from")
	case !d.Removable:
		return loc.Tr("it is an internal disk, not a removable USB stick")
	case d.NoMedium || d.Size == 0:
		return loc.Tr("it has no medium")
	case d.ReadOnly:
		return loc.Tr("it is read-only (if it has a lock switch, unlock it)")
	case d.SystemHint:
		return loc.Tr("the system marks it as a system device, which Tails Backup never writes to")
	case !StickFits(d.Size, used):
		// TRANSLATORS: %[1]s is the size needed, %[2]s the stick's size ("15.5 GB").
		return loc.Tr("it is too small: a backup of this Tails needs a stick of at least %[1]s, this one has %[2]s",
			loc.Size(int64(NeededStickSize(d.Size, used))), loc.Size(int64(d.Size)))
	}
	return ""
}

// ReadDriveFacts reads what the eligibility rules look at, of a drive (Drive and Disk of st) and
// the drive this Tails runs from.
func ReadDriveFacts(st udisks.Stick, bootDrive *udisks.Object) DriveFacts {
	d := st.Drive.Drive
	f := DriveFacts{Size: d.Size, Removable: d.Removable, Boot: bootDrive != nil && bootDrive.Path == st.Drive.Path}
	if st.Disk == nil || st.Disk.Block == nil {
		f.NoMedium = true
		return f
	}
	b := st.Disk.Block
	if b.Size > 0 {
		f.Size = b.Size
	}
	f.ReadOnly, f.SystemHint = b.ReadOnly, b.HintSystem
	return f
}
