package session

import (
	"fmt"
	"strings"

	"tails-backup/l10n"
	"tails-backup/udisks"
)

// Stick is a Tails stick plugged in, with the LUKS UUID of its Persistent Storage.
type Stick struct {
	udisks.Stick
	UUID string // LUKS UUID of its Persistent Storage, lower case ("" if it has none)
}

// NewStick reads the UUID of a Tails stick.
func NewStick(st udisks.Stick) Stick {
	return Stick{Stick: st, UUID: strings.ToLower(st.LUKSUUID())}
}

// Label is how the user knows a stick: "Vendor Model", or "USB stick".
func Label(st udisks.Stick) string {
	if st.Drive == nil || st.Drive.Drive == nil {
		return "USB stick"
	}
	d := st.Drive.Drive
	if name := strings.Join(strings.Fields(d.Vendor+" "+d.Model), " "); name != "" {
		return name
	}
	return "USB stick"
}

// Size is the size of a stick's drive in bytes, 0 if unknown.
func Size(st udisks.Stick) uint64 {
	if st.Drive == nil || st.Drive.Drive == nil {
		return 0
	}
	return st.Drive.Drive.Size
}

// Device is the stick's device, e.g. /dev/sdb ("" if udisks shows none).
func Device(st udisks.Stick) string {
	if st.Disk != nil {
		if d := st.Disk.Device(); d != "" {
			return d
		}
	}
	if st.LUKS != nil {
		return st.LUKS.Device()
	}
	return ""
}

// NameIn is a stick's name in a sentence that already says which device: "Kingston
// DataTraveler, 16.0 GB" (the agent's passphrase prompt), its size written for loc's language.
func NameIn(loc *l10n.Locale, st udisks.Stick) string {
	name := Label(st)
	if size := Size(st); size > 0 {
		// TRANSLATORS: a USB stick's name and size ("Kingston DataTraveler, 16 GB").
		name = loc.Tr("%[1]s, %[2]s", name, loc.Size(int64(size)))
	}
	return name
}

// DescribeIn is a stick's name with its device, for a command: "Kingston DataTraveler
// (16.0 GB, /dev/sdb)", its size written for loc's language.
func DescribeIn(loc *l10n.Locale, st udisks.Stick) string {
	if size := Size(st); size > 0 {
		// TRANSLATORS: a USB stick's name, size and device ("Kingston DataTraveler (16 GB, /dev/sdb)").
		return loc.Tr("%[1]s (%[2]s, %[3]s)", Label(st), loc.Size(int64(size)), Device(st))
	}
	// TRANSLATORS: a USB stick's name and device ("Kingston DataTraveler (/dev/sdb)").
	return loc.Tr("%[1]s (%[2]s)", Label(st), Device(st))
}

// Unfit says why a Tails stick may never be written to as a backup, or read as one.
type Unfit int

const (
	Fit               Unfit = iota // a removable drive, not the boot stick, with a LUKS Persistent Storage
	UnfitBoot                      // the stick this Tails runs from: never its own backup
	UnfitNotRemovable              // not a removable drive: never used as a backup
	UnfitNoLUKS                    // no encrypted Persistent Storage (or no LUKS UUID)
)

// Fitness applies the rules, once for the agent and every command: only a removable drive that
// is not the boot device and whose Persistent Storage is LUKS with a UUID may be a backup.
func Fitness(st udisks.Stick) Unfit {
	switch {
	case st.Boot:
		return UnfitBoot
	case st.Drive == nil || st.Drive.Drive == nil || !st.Drive.Drive.Removable:
		return UnfitNotRemovable
	case !st.IsLUKS() || st.LUKSUUID() == "":
		return UnfitNoLUKS
	}
	return Fit
}

// Kind is what the agent makes of a Tails stick it sees.
type Kind int

const (
	Ignored  Kind = iota // unfit (the boot stick, a non-removable drive, no LUKS)
	Paired               // a paired backup: update it
	Unpaired             // another Tails stick: never written, the user is told how to pair it
)

// Classified is a Tails stick present and what to do with it.
type Classified struct {
	Stick
	Kind Kind
}

// Classify sorts the Tails sticks of a snapshot. Only a fit stick whose Persistent Storage
// LUKS UUID is paired is ever a candidate for writing.
func Classify(snap *udisks.Snapshot, boot udisks.BootPaths, paired func(uuid string) bool) []Classified {
	var out []Classified
	for _, st := range snap.TailsSticks(boot) {
		c := Classified{Stick: NewStick(st)}
		switch {
		case Fitness(st) != Fit:
			c.Kind = Ignored
		case paired(c.UUID):
			c.Kind = Paired
		default:
			c.Kind = Unpaired
		}
		out = append(out, c)
	}
	return out
}

// Candidates lists the fit Tails sticks of a snapshot (those a command may pair, restore from or
// verify).
func Candidates(snap *udisks.Snapshot, boot udisks.BootPaths) []Stick {
	var out []Stick
	for _, st := range snap.TailsSticks(boot) {
		if Fitness(st) == Fit {
			out = append(out, NewStick(st))
		}
	}
	return out
}

// SourceUUID is the LUKS UUID of the running Tails' Persistent Storage: the TailsData partition
// behind the cleartext device mounted at the Persistent Storage mount point ("" if none).
func SourceUUID(snap *udisks.Snapshot, boot udisks.BootPaths) string {
	for _, st := range snap.TailsSticks(boot) {
		if st.Boot && st.Cleartext != nil && st.Cleartext.Filesystem != nil {
			for _, mp := range st.Cleartext.Filesystem.MountPoints {
				if mp == boot.Persistence {
					return strings.ToLower(st.LUKSUUID())
				}
			}
		}
	}
	return ""
}

// BootUUID is the LUKS UUID of the Persistent Storage of the stick this Tails runs from, "" if
// it is not known.
func BootUUID(snap *udisks.Snapshot, boot udisks.BootPaths) string {
	for _, st := range snap.TailsSticks(boot) {
		if st.Boot {
			return strings.ToLower(st.LUKSUUID())
		}
	}
	return ""
}

// PickReason says why no stick was picked.
type PickReason int

const (
	PickNone     PickReason = iota // no device given, and no candidate plugged in
	PickSeveral                    // no device given, and several candidates
	PickNoDevice                   // the device given does not exist (or is not a candidate drive)
	PickNotTails                   // the device given is not a Tails stick
	PickUnfit                      // the device given is a Tails stick that may not be used (Unfit)
	PickRefused                    // the device given is a candidate the caller refused (Why)
)

// PickError is why no stick was picked; the command words it for its use.
type PickError struct {
	Reason PickReason
	Device string // the device given, as /dev/NAME
	Count  int    // the candidates, for PickSeveral
	Unfit  Unfit  // for PickUnfit
	Why    string // for PickRefused
}

func (e *PickError) Error() string {
	switch e.Reason {
	case PickNone:
		return "no stick to use is plugged in"
	case PickSeveral:
		return fmt.Sprintf("%d sticks could be used", e.Count)
	case PickNoDevice:
		return fmt.Sprintf("there is no device %s", e.Device)
	case PickNotTails:
		return fmt.Sprintf("%s is not a Tails stick", e.Device)
	case PickUnfit:
		return fmt.Sprintf("%s cannot be used (unfit %d)", e.Device, e.Unfit)
	}
	return fmt.Sprintf("%s cannot be used: %s", e.Device, e.Why)
}

// DevicePath is the device a person named: "sdb" is /dev/sdb.
func DevicePath(dev string) string {
	if !strings.HasPrefix(dev, "/") {
		return "/dev/" + dev
	}
	return dev
}

// Pick picks a candidate by the device a person named, for every command: with dev "", the
// only candidate; otherwise what find returns for the device (DevicePath of dev). Its error is a
// *PickError when find's is one, or when there is not exactly one candidate.
func Pick[C any](cands []C, dev string, find func(dev string) (C, error)) (C, error) {
	var zero C
	if dev == "" {
		switch len(cands) {
		case 0:
			return zero, &PickError{Reason: PickNone}
		case 1:
			return cands[0], nil
		}
		return zero, &PickError{Reason: PickSeveral, Count: len(cands)}
	}
	return find(DevicePath(dev))
}

// PickStick picks among cands (fit Tails sticks, which the caller may have narrowed down) the
// one dev names, or the only one when dev is "". A device named need not be among cands, but
// it must be a fit Tails stick.
func PickStick(snap *udisks.Snapshot, boot udisks.BootPaths, cands []Stick, dev string) (Stick, error) {
	return Pick(cands, dev, func(dev string) (Stick, error) {
		o := snap.ByDevice(dev)
		if o == nil {
			return Stick{}, &PickError{Reason: PickNoDevice, Device: dev}
		}
		st, ok := snap.StickOf(o.Path, boot)
		if !ok {
			return Stick{}, &PickError{Reason: PickNotTails, Device: dev}
		}
		if u := Fitness(st); u != Fit {
			return Stick{}, &PickError{Reason: PickUnfit, Device: dev, Unfit: u}
		}
		return NewStick(st), nil
	})
}
