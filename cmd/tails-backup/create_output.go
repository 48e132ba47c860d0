package main

// What create shows of the drives plugged in, which one it picks, and what erasing it destroys.

import (
	"errors"
	"fmt"
	"io"

	"tails-backup/session"
	"tails-backup/udisks"
)

func printCreateCandidates(w io.Writer, cands []session.CreateTarget, used uint64) {
	if len(cands) == 0 {
		return // chooseCreateTarget says that no stick is plugged in
	}
	fmt.Fprintln(w, "Drives plugged in:")
	for _, c := range cands {
		what := ""
		if c.What != "" {
			what = ", " + c.What
		}
		verdict := "can be used"
		if c.Reason != "" {
			verdict = "cannot be used: " + c.Reason
		}
		fmt.Fprintf(w, "  %-10s %s, %s%s: %s\n", deviceOrNone(c.Stick), session.Label(c.Stick), sizeText(c.Facts.Size), what, verdict)
	}
	fmt.Fprintf(w, "Your Persistent Storage holds %s: a backup of this Tails needs a USB stick of at least %s.\n",
		sizeText(used), sizeText(session.NeededStickSize(0, used)))
}

func deviceOrNone(st udisks.Stick) string {
	if d := session.Device(st); d != "" {
		return d
	}
	return "(no medium)"
}

// chooseCreateTarget picks the drive named by dev (a device such as /dev/sdb, sdb, or one of
// its partitions), or the only eligible one when dev is "".
func chooseCreateTarget(snap *udisks.Snapshot, cands []session.CreateTarget, dev string, used uint64) (session.CreateTarget, error) {
	if dev == "" && len(cands) == 0 {
		return session.CreateTarget{}, fmt.Errorf("no USB stick is plugged in: plug in the USB stick to make the backup on (at least %s), then run 'tails-backup create' again", sizeText(session.NeededStickSize(0, used)))
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
		return c, errors.New("no USB stick plugged in can hold a backup of this Tails; plug in a USB stick big enough (see above) and try again")
	case session.PickSeveral:
		return c, fmt.Errorf("%w: %d USB sticks can be used; say which one to erase, e.g. 'tails-backup create %s'",
			errUsage, pe.Count, session.Device(ok[0].Stick))
	case session.PickRefused:
		return c, fmt.Errorf("%s cannot be used: %s", pe.Device, pe.Why)
	}
	return c, fmt.Errorf("there is no USB stick %s; run 'tails-backup create' without a device to list the drives plugged in", pe.Device)
}

// printErased shows what erasing the target destroys: each partition with its number, size,
// GPT name and file system.
func printErased(w io.Writer, snap *udisks.Snapshot, c session.CreateTarget) {
	fmt.Fprintf(w, "Everything on %s will be erased:\n", session.Describe(c.Stick))
	for _, l := range session.ErasedLines(snap, c) {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
