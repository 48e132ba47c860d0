package agent

import (
	"strings"

	"tails-backup/udisks"
)

// stickKind is what the agent makes of a Tails stick it sees.
type stickKind int

const (
	stickIgnored  stickKind = iota // the boot stick, a non-removable drive, no LUKS
	stickPaired                    // a paired backup: update it
	stickUnpaired                  // another Tails stick: never written, the user is told how to pair it
)

// classifiedStick is a Tails stick present and what to do with it.
type classifiedStick struct {
	udisks.Stick
	Kind stickKind
	UUID string // LUKS UUID of its Persistent Storage
}

// classifySticks sorts the Tails sticks of a snapshot. Only a removable drive that is not the
// boot device and whose Persistent Storage LUKS UUID is paired is ever a candidate for writing.
func classifySticks(snap *udisks.Snapshot, boot udisks.BootPaths, paired func(uuid string) bool) []classifiedStick {
	var out []classifiedStick
	for _, st := range snap.TailsSticks(boot) {
		c := classifiedStick{Stick: st, UUID: strings.ToLower(st.LUKSUUID())}
		switch {
		case st.Boot, st.Drive == nil || st.Drive.Drive == nil, !st.Drive.Drive.Removable, !st.IsLUKS(), c.UUID == "":
			c.Kind = stickIgnored
		case paired(c.UUID):
			c.Kind = stickPaired
		default:
			c.Kind = stickUnpaired
		}
		out = append(out, c)
	}
	return out
}

// sourceUUID is the LUKS UUID of the running Tails' Persistent Storage: the TailsData partition
// behind the cleartext device mounted at the Persistent Storage mount point.
func sourceUUID(snap *udisks.Snapshot, boot udisks.BootPaths) string {
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
