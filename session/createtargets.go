package session

import (
	"sort"
	"strings"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/tails"
	"tails-backup/udisks"
)

// CreateTarget is a drive plugged in, and whether a backup Tails can be made on it.
type CreateTarget struct {
	Drive *udisks.Object
	Stick udisks.Stick // Drive and Disk, and its Tails partitions if it is a Tails stick
	Facts DriveFacts
	// Reason says why it cannot be used; "" if it can.
	Reason string
	// PairedUUID is the LUKS UUID of its Persistent Storage when it is a backup paired with
	// this Tails.
	PairedUUID string
	// What it holds, for the listing: "your backup Tails", "a Tails stick"...; "" for anything else.
	What string
}

// CreateTargetsIn lists every drive, each with whether a backup Tails of a Tails whose
// Persistent Storage holds used bytes can be made on it, eligible ones first, by device.
func CreateTargetsIn(loc *l10n.Locale, snap *udisks.Snapshot, boot udisks.BootPaths, used uint64, st *pairing.State) []CreateTarget {
	bootDrive := snap.BootDrive(boot)
	thisUUID := ""
	tailsSticks := map[string]udisks.Stick{}
	for _, ts := range snap.TailsSticks(boot) {
		tailsSticks[string(ts.Drive.Path)] = ts
		if ts.Boot {
			thisUUID = strings.ToLower(ts.LUKSUUID())
		}
	}
	var out []CreateTarget
	for _, o := range snap.Objects() {
		if o.Drive == nil {
			continue
		}
		c := CreateTarget{Drive: o, Stick: udisks.Stick{Drive: o, Disk: snap.Disk(o.Path)}}
		if ts, ok := tailsSticks[string(o.Path)]; ok {
			c.Stick = ts
		}
		c.Facts = ReadDriveFacts(c.Stick, bootDrive)
		c.Reason = c.Facts.NotEligibleIn(loc, used)
		c.PairedUUID, c.What = targetRole(loc, c.Stick, st, thisUUID)
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Reason == "") != (out[j].Reason == "") {
			return out[i].Reason == ""
		}
		return Device(out[i].Stick) < Device(out[j].Stick)
	})
	return out
}

// targetRole tells what a Tails stick is to this Tails (whose Persistent Storage has the LUKS
// UUID thisUUID): its paired backup (pairedUUID set), an unfinished one, or another Tails stick.
// A locked stick keeps its marker to itself: only the store tells it apart then.
func targetRole(loc *l10n.Locale, st udisks.Stick, state *pairing.State, thisUUID string) (pairedUUID, what string) {
	if st.LUKS == nil || st.Boot {
		return "", ""
	}
	uuid := strings.ToLower(st.LUKSUUID())
	if uuid != "" && state.IsPaired(uuid) {
		return uuid, loc.Tr("your backup Tails")
	}
	if st.Cleartext != nil && st.Cleartext.Filesystem != nil && thisUUID != "" {
		for _, mp := range st.Cleartext.Filesystem.MountPoints {
			m, present, err := tails.ReadMarkerIn(mp)
			if present && err == nil && strings.EqualFold(m.Source, thisUUID) {
				if m.State == tails.StateComplete {
					return "", loc.Tr("a backup of this Tails, not paired")
				}
				return "", loc.Tr("an unfinished backup of this Tails")
			}
		}
	}
	return "", loc.Tr("a Tails stick")
}
