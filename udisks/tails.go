package udisks

import (
	"sort"
	"strings"

	"github.com/godbus/dbus/v5"
)

// BootPaths are the mount points by which the running Tails' stick is recognised.
type BootPaths struct {
	Persistence string // unlocked Persistent Storage, /live/persistence/TailsData_unlocked
	System      string // system partition, /lib/live/mount/medium
}

// Stick is a Tails stick: a drive whose GPT holds a TailsData partition.
type Stick struct {
	Drive     *Object // Drive interface
	Disk      *Object // whole-disk Block with the PartitionTable
	System    *Object // the "Tails" ESP partition, nil if absent
	LUKS      *Object // the TailsData partition
	Cleartext *Object // its unlocked cleartext Block, nil while locked
	Boot      bool    // this is the stick the running system booted from
}

// LUKSUUID is the UUID of the LUKS header of the TailsData partition ("" if unknown).
func (st Stick) LUKSUUID() string {
	if st.LUKS == nil || st.LUKS.Block == nil {
		return ""
	}
	return st.LUKS.Block.IdUUID
}

// IsLUKS reports whether the TailsData partition carries a LUKS header.
func (st Stick) IsLUKS() bool {
	return st.LUKS != nil && st.LUKS.Block != nil && st.LUKS.Block.IdType == "crypto_LUKS"
}

func sameGUID(a, b string) bool { return strings.EqualFold(strings.TrimSpace(a), b) }

// IsTailsData reports whether o is a Persistent Storage partition (name and type).
func IsTailsData(o *Object) bool {
	return o != nil && o.Partition != nil && o.Partition.Name == TailsDataName && sameGUID(o.Partition.Type, TailsDataType)
}

// IsTailsSystem reports whether o is a Tails system partition (name and ESP type).
func IsTailsSystem(o *Object) bool {
	return o != nil && o.Partition != nil && o.Partition.Name == SystemName && sameGUID(o.Partition.Type, ESPType)
}

// Partitions returns the partitions of the table at path, by number.
func (s *Snapshot) Partitions(table dbus.ObjectPath) []*Object {
	var out []*Object
	for _, o := range s.objects {
		if o.Partition != nil && o.Partition.Table == table {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition.Number < out[j].Partition.Number })
	return out
}

// EndOfPartitions is the first byte after the last partition of the table (0 if none):
// the offset to give CreatePartition for "the space after", since offset 0 picks the
// first free gap.
func (s *Snapshot) EndOfPartitions(table dbus.ObjectPath) uint64 {
	var end uint64
	for _, p := range s.Partitions(table) {
		if e := p.Partition.Offset + p.Partition.Size; e > end {
			end = e
		}
	}
	return end
}

// Disk returns the whole-disk block of drive (a Block with that Drive and no
// Partition interface), or nil.
func (s *Snapshot) Disk(drive dbus.ObjectPath) *Object {
	for _, o := range s.Objects() {
		if o.Block != nil && o.Partition == nil && o.Block.Drive == drive &&
			(o.Block.CryptoBackingDevice == "" || o.Block.CryptoBackingDevice == "/") {
			return o
		}
	}
	return nil
}

// DriveOf returns the drive holding the block at path, following partitions to their
// table and cleartext devices to their LUKS device; nil if none (e.g. a loop device).
func (s *Snapshot) DriveOf(path dbus.ObjectPath) *Object {
	for range 8 {
		o := s.Object(path)
		switch {
		case o == nil:
			return nil
		case o.Drive != nil:
			return o
		case o.Block == nil:
			return nil
		case o.Block.Drive != "" && o.Block.Drive != "/":
			return s.Object(o.Block.Drive)
		case o.Block.CryptoBackingDevice != "" && o.Block.CryptoBackingDevice != "/":
			path = o.Block.CryptoBackingDevice
		case o.Partition != nil:
			path = o.Partition.Table
		default:
			return nil
		}
	}
	return nil
}

// Cleartext returns the unlocked cleartext block of the LUKS block at luks: the one
// named by Encrypted.CleartextDevice, or any Block whose CryptoBackingDevice is luks.
func (s *Snapshot) Cleartext(luks dbus.ObjectPath) *Object {
	if o := s.Object(luks); o != nil && o.Encrypted != nil {
		if ct := s.Object(o.Encrypted.CleartextDevice); ct != nil && ct.Block != nil {
			return ct
		}
	}
	for _, o := range s.Objects() {
		if o.Block != nil && o.Block.CryptoBackingDevice == luks {
			return o
		}
	}
	return nil
}

// mountedAt returns the block whose filesystem is mounted at dir.
func (s *Snapshot) mountedAt(dir string) *Object {
	if dir == "" {
		return nil
	}
	dir = strings.TrimRight(dir, "/")
	for _, o := range s.Objects() {
		if o.Filesystem == nil {
			continue
		}
		for _, m := range o.Filesystem.MountPoints {
			if strings.TrimRight(m, "/") == dir {
				return o
			}
		}
	}
	return nil
}

// BootDrive returns the drive the running system booted from: the drive holding the
// filesystem mounted at bp.Persistence or bp.System, else the only Tails stick with
// HintSystem on one of its blocks (udev's UDISKS_SYSTEM=1 on Tails). Nil if unknown.
func (s *Snapshot) BootDrive(bp BootPaths) *Object {
	for _, dir := range []string{bp.Persistence, bp.System} {
		if o := s.mountedAt(dir); o != nil {
			if d := s.DriveOf(o.Path); d != nil {
				return d
			}
		}
	}
	var found *Object
	for _, st := range s.tailsSticks() {
		if s.hintSystem(st) {
			if found != nil {
				return nil // ambiguous: refuse to guess
			}
			found = st.Drive
		}
	}
	return found
}

func (s *Snapshot) hintSystem(st Stick) bool {
	for _, o := range []*Object{st.Disk, st.System, st.LUKS} {
		if o != nil && o.Block != nil && o.Block.HintSystem {
			return true
		}
	}
	return false
}

func (s *Snapshot) tailsSticks() []Stick {
	var out []Stick
	for _, o := range s.Objects() {
		if o.Drive == nil {
			continue
		}
		if st, ok := s.stick(o); ok {
			out = append(out, st)
		}
	}
	return out
}

func (s *Snapshot) stick(drive *Object) (Stick, bool) {
	disk := s.Disk(drive.Path)
	if disk == nil || disk.PartitionTable == nil || disk.PartitionTable.Type != "gpt" {
		return Stick{}, false
	}
	st := Stick{Drive: drive, Disk: disk}
	for _, p := range s.Partitions(disk.Path) {
		switch {
		case IsTailsData(p) && st.LUKS == nil:
			st.LUKS = p
		case IsTailsSystem(p) && st.System == nil:
			st.System = p
		}
	}
	if st.LUKS == nil {
		return Stick{}, false
	}
	st.Cleartext = s.Cleartext(st.LUKS.Path)
	return st, true
}

// TailsSticks returns the Tails sticks present, sorted by drive path, with Boot set on
// the one the running system booted from.
func (s *Snapshot) TailsSticks(bp BootPaths) []Stick {
	sticks := s.tailsSticks()
	boot := s.BootDrive(bp)
	for i := range sticks {
		sticks[i].Boot = boot != nil && sticks[i].Drive.Path == boot.Path
	}
	return sticks
}

// StickOf returns the Tails stick holding the object at path (a drive, disk,
// partition or cleartext device).
func (s *Snapshot) StickOf(path dbus.ObjectPath, bp BootPaths) (Stick, bool) {
	d := s.DriveOf(path)
	if d == nil {
		return Stick{}, false
	}
	for _, st := range s.TailsSticks(bp) {
		if st.Drive.Path == d.Path {
			return st, true
		}
	}
	return Stick{}, false
}
