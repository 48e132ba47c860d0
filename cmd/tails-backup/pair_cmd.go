package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/udisks"
	"tails-backup/wire"
)

const pairSynopsis = "[--yes] [--state FILE] [--helper-command CMD] [DEVICE]"

const pairDescription = `Pair a Tails stick plugged in (not the one this Tails runs from) as the backup of this
Tails: its Persistent Storage is unlocked (you type its passphrase), marked as the backup of
this Tails, then locked again; from then on it is updated each time you plug it in.
DEVICE is the stick's device, e.g. /dev/sdb; it may be left out when only one Tails stick
is plugged in besides this one.`

// runPair is `tails-backup pair`: run as amnesia in the desktop session.
func runPair(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "pair", pairSynopsis, pairDescription)
	yes := fs.Bool("yes", false, "pair without asking for confirmation")
	statePath := fs.String("state", "", stateFlagHelp)
	helperCmd := fs.String("helper-command", defaultHelperCommand(), "how to run the root helper")
	verbose := fs.Bool("verbose", false, "log debug messages")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: give at most one device, e.g. 'tails-backup pair /dev/sdb'", errUsage)
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "pair")
	if readOwnMarker(sys.markerRoot).isBackup() {
		// Its agent never updates backups: a pairing would never be used.
		return errors.New("this Tails is itself a backup, so it does not update backups; if your main Tails is lost or broken, run 'tails-backup promote' first")
	}

	disks, snap, closeDisks, err := openDisks(ctx, sys, log, "pair", "")
	if err != nil {
		return err
	}
	defer closeDisks()

	// The store as it is now, to tell which sticks are already paired.
	readPath, before, setAside, err := readStateWarning(ctx, env, sys, log, *statePath)
	if err != nil {
		return err
	}

	candidates := session.Candidates(snap, sys.boot)
	printCandidates(env.stdout, candidates, &before)
	stick, err := chooseStick(snap, sys.boot, candidates, fs.Arg(0))
	if err != nil {
		return err
	}
	name := session.Describe(stick.Stick)
	if before.IsPaired(stick.UUID) {
		fmt.Fprintf(env.stdout, "%s is already paired as the backup of this Tails; plug it in to update it.\n", name)
		return nil
	}
	if !*yes && !confirm(env, fmt.Sprintf("Pair the Tails stick %s as the backup of this Tails? Its Persistent Storage will be overwritten by the next update.", name)) {
		return errors.New("not confirmed, so nothing was changed (answer y to pair, or use --yes)")
	}

	p := &openStick{disks: disks, stick: stick, name: name, log: log, use: stickUse{
		command: "pair", purpose: "to pair it as your backup Tails", ok: "Pair",
		notDone: "was not paired", unchanged: "nothing was changed",
	}}
	defer p.release(ctx) // on failure: leave the stick locked, as it was found
	if err := p.unlock(ctx); err != nil {
		return err
	}
	if err := p.mount(ctx); err != nil {
		return err
	}
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpMark, Backup: stick.UUID}
	if err := runHelperOp(ctx, *helperCmd, req, log); err != nil {
		return fmt.Errorf("%s was not paired: %w", name, err)
	}

	// Unmounted and locked before the pairing is saved: a running agent that saw the stick
	// paired while it is still open here would start its first update at once and collide
	// with the lock (seen in the VM). The agent looks at the store when udisks tells it
	// something, so the first update comes at the next plug.
	releaseErr := p.release(ctx)
	now := sys.now()
	err = savePairing(ctx, env, sys, log, *statePath, readPath, before, setAside, func(s *pairing.State) error {
		return s.Pair(pairing.PairedBackup{UUID: stick.UUID, Label: session.Label(stick.Stick), Size: session.Size(stick.Stick), Added: now})
	})
	if err != nil {
		return fmt.Errorf("%s was marked as the backup of this Tails, but %w", name, err)
	}
	if releaseErr != nil {
		fmt.Fprintln(env.stdout, "Paired.")
		fmt.Fprintf(env.stderr, "Warning: %s could not be locked again (%v); eject it in the Files browser before you unplug it.\n", name, releaseErr)
		fmt.Fprintln(env.stdout, "Your backup Tails is updated each time you plug it in; unplug it and plug it in again to make the first update.")
		return nil
	}
	fmt.Fprintln(env.stdout, "Paired. Your backup Tails is updated each time you plug it in; unplug it and plug it in again now to make the first update.")
	return nil
}

// savePairing records a pairing with change, once the helper's mark has run: only then does the
// store's folder exist in the Persistent Storage, which is where the store lives by default
// from then on. When the store moves there, what was set in the one read before (before, read
// from readPath; beforeDamaged if it was set aside) comes along.
func savePairing(ctx context.Context, env *environment, sys sessionSystem, log *logrus.Entry, flagPath, readPath string, before pairing.State, beforeDamaged bool, change func(*pairing.State) error) error {
	path, err := statePathOr(flagPath, sys)
	if err != nil {
		return err
	}
	_, err = updateState(ctx, env, openStore(path, sys, log), func(s *pairing.State) error {
		if path != readPath && !beforeDamaged && isFreshState(*s) {
			// The store moves into the Persistent Storage: keep what was set before.
			*s = before
		}
		return change(s)
	})
	return err
}

// unfitText says why a Tails stick cannot be paired.
func unfitText(u session.Unfit) string {
	switch u {
	case session.UnfitBoot:
		return "is the stick this Tails is running from, so it cannot be its own backup; plug in another Tails stick"
	case session.UnfitNotRemovable:
		return "is not a removable USB stick, so it is not used as a backup; plug in a Tails USB stick"
	}
	return "has no encrypted Persistent Storage; start Tails from it once and create its Persistent Storage, then pair it"
}

func printCandidates(w io.Writer, cands []session.Stick, st *pairing.State) {
	if len(cands) == 0 {
		return
	}
	fmt.Fprintln(w, "Tails sticks plugged in, besides the one this Tails runs from:")
	for _, c := range cands {
		paired := "not paired"
		if st.IsPaired(c.UUID) {
			paired = "paired"
		}
		fmt.Fprintf(w, "  %-10s %s, %s, Persistent Storage %s, %s\n",
			session.Device(c.Stick), session.Label(c.Stick), sizeText(session.Size(c.Stick)), c.UUID, paired)
	}
}

// chooseStick picks the stick named by dev (a device such as /dev/sdb, or sdb), or the only
// candidate when dev is "".
func chooseStick(snap *udisks.Snapshot, boot udisks.BootPaths, cands []session.Stick, dev string) (session.Stick, error) {
	st, err := session.PickStick(snap, boot, cands, dev)
	var pe *session.PickError
	if !errors.As(err, &pe) {
		return st, err
	}
	switch pe.Reason {
	case session.PickNone:
		return st, errors.New("no Tails stick to pair is plugged in (besides the one this Tails runs from); plug in the Tails stick to use as a backup and try again")
	case session.PickSeveral:
		return st, fmt.Errorf("%w: %d Tails sticks are plugged in; say which one to pair, e.g. 'tails-backup pair %s'",
			errUsage, pe.Count, session.Device(cands[0].Stick))
	case session.PickNoDevice:
		return st, fmt.Errorf("there is no device %s; run 'tails-backup pair' without a device to list the Tails sticks plugged in", pe.Device)
	case session.PickNotTails:
		return st, fmt.Errorf("%s is not a Tails stick (it has no Persistent Storage partition); plug in a Tails stick, or make one with 'tails-backup create'", pe.Device)
	}
	return st, fmt.Errorf("%s %s", pe.Device, unfitText(pe.Unfit))
}

// isFreshState: the state of a store file that does not exist.
func isFreshState(s pairing.State) bool {
	return len(s.Backups) == 0 && s.LastSuccess.IsZero() && s.LastAttempt == nil && s.Reminder == (pairing.ReminderSettings{})
}
