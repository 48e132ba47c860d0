package main

// What create shows of the drives plugged in, which one it picks, and what erasing it destroys.

import (
	"errors"
	"fmt"
	"io"

	"tails-backup/l10n"
	"tails-backup/session"
	"tails-backup/udisks"
)

func printCreateCandidates(loc *l10n.Locale, w io.Writer, cands []session.CreateTarget, used uint64) {
	if len(cands) == 0 {
		return // chooseCreateTarget says that no stick is plugged in
	}
	fmt.Fprintln(w, loc.Tr("Drives plugged in:"))
	for _, c := range cands {
		label, size := session.Label(c.Stick), sizeText(loc, c.Facts.Size)
		var line string
		// TRANSLATORS: a drive: its label ("Kingston DataTraveler"), its size, what it is to this
		// Tails ("your backup Tails"), and why it cannot be used.
		switch {
		case c.What == "" && c.Reason == "":
			line = loc.Tr("%[1]s, %[2]s: can be used", label, size)
		case c.What == "":
			line = loc.Tr("%[1]s, %[2]s: cannot be used: %[3]s", label, size, c.Reason)
		case c.Reason == "":
			line = loc.Tr("%[1]s, %[2]s, %[3]s: can be used", label, size, c.What)
		default:
			line = loc.Tr("%[1]s, %[2]s, %[3]s: cannot be used: %[4]s", label, size, c.What, c.Reason)
		}
		fmt.Fprintf(w, "  %-10s %s\n", deviceOrNone(loc, c.Stick), line)
	}
	fmt.Fprintln(w, loc.Tr("Your Persistent Storage holds %[1]s: a backup of this Tails needs a USB stick of at least %[2]s.",
		sizeText(loc, used), sizeText(loc, session.NeededStickSize(0, used))))
}

func deviceOrNone(loc *l10n.Locale, st udisks.Stick) string {
	if d := session.Device(st); d != "" {
		return d
	}
	return loc.Tr("(no medium)")
}

// chooseCreateTarget picks the drive named by dev (a device such as /dev/sdb, sdb, or one of
// its partitions), or the only eligible one when dev is "".
func chooseCreateTarget(loc *l10n.Locale, snap *udisks.Snapshot, cands []session.CreateTarget, dev string, used uint64) (session.CreateTarget, error) {
	if dev == "" && len(cands) == 0 {
		return session.CreateTarget{}, errors.New(loc.Tr("no USB stick is plugged in: plug in the USB stick to make the backup on (at least %s), then run 'tails-backup create' again", sizeText(loc, session.NeededStickSize(0, used))))
	}
	var ok []session.CreateTarget
	for _, c := range cands {
		if c.Reason == "" {
			ok = append(ok, c)
		}
	}
	c, err := session.Pick(ok, dev, func(dev string) (session.CreateTarget, error) {
		o := snap.ByDevice(dev)
		var drive *udisks.Object
		if o != nil {
			drive = snap.DriveOf(o.Path)
		}
		for _, c := range cands {
			if drive == nil || c.Drive.Path != drive.Path {
				continue
			}
			if c.Reason != "" {
				return session.CreateTarget{}, &session.PickError{Reason: session.PickRefused, Device: dev, Why: c.Reason}
			}
			return c, nil
		}
		return session.CreateTarget{}, &session.PickError{Reason: session.PickNoDevice, Device: dev}
	})
	var pe *session.PickError
	if !errors.As(err, &pe) {
		return c, err
	}
	switch pe.Reason {
	case session.PickNone:
		return c, errors.New(loc.Tr("no USB stick plugged in can hold a backup of this Tails; plug in a USB stick big enough (see above) and try again"))
	case session.PickSeveral:
		return c, fmt.Errorf("%w: %s", errUsage, loc.Tr("%[1]d USB sticks can be used; say which one to erase, e.g. 'tails-backup create %[2]s'", pe.Count, session.Device(ok[0].Stick)))
	case session.PickRefused:
		return c, errors.New(loc.Tr("%[1]s cannot be used: %[2]s", pe.Device, pe.Why))
	}
	return c, errors.New(loc.Tr("there is no USB stick %s; run 'tails-backup create' without a device to list the drives plugged in", pe.Device))
}

// printErased shows what erasing the target destroys: each partition with its number, size,
// GPT name and file system.
func printErased(loc *l10n.Locale, w io.Writer, snap *udisks.Snapshot, c session.CreateTarget) {
	fmt.Fprintln(w, loc.Tr("Everything on %s will be erased:", session.DescribeIn(loc, c.Stick)))
	for _, l := range session.ErasedLinesIn(loc, snap, c) {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
