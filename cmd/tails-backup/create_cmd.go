package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/secmem"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/session"
	"tails-backup/wire"
)

const createSynopsis = "[--yes [--replace]] [--state FILE] [--helper-command CMD] [DEVICE]"

const createDescription = `Create a backup Tails on a USB stick: the stick is erased, then gets the system of this
Tails and an encrypted copy of its Persistent Storage, and is paired as its backup (it is then
updated each time you plug it in). It lists the drives plugged in and says which can be used,
shows what will be erased and asks you to type yes, then asks the passphrase of the backup's
Persistent Storage twice (the passphrase of this Tails is recommended).
DEVICE is the stick's device, e.g. /dev/sdb; it may be left out when only one stick can be used,
unless --yes is given. Use a bigger stick to move to a bigger backup.
If create is interrupted, the stick is left unfinished and not paired: run create again.`

// runCreate is `tails-backup create`: run as amnesia in the desktop session.
func runCreate(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "create", createSynopsis, env.loc.Tr(createDescription))
	yes := fs.Bool("yes", false, env.loc.Tr("erase the stick without asking (DEVICE is then required)"))
	replace := fs.Bool("replace", false, env.loc.Tr("with --yes: erase the stick even if it is a backup paired with this Tails"))
	statePath, helperCmd, verbose := sessionFlags(env, fs)
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give at most one device, e.g. 'tails-backup create /dev/sdb'"))
	case *yes && fs.NArg() == 0:
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("--yes erases without asking, so name the stick to erase, e.g. 'tails-backup create --yes /dev/sdb'"))
	case *replace && !*yes:
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("--replace only goes with --yes"))
	case len(strings.Fields(*helperCmd)) == 0:
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("--helper-command is empty"))
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "create")
	if session.ReadOwnMarker(sys.markerRoot).IsBackup() {
		// Its agent never updates backups: the new one would never be updated.
		return errors.New(env.loc.Tr("this Tails is itself a backup, so it does not make backups; if your main Tails is lost or broken, run 'tails-backup promote' first"))
	}
	used, err := sys.usedBytes(sys.markerRoot)
	if err != nil {
		return errors.New(env.loc.Tr("your Persistent Storage is not unlocked (%s), so there is nothing to back up; restart Tails, unlock it in the Welcome Screen and run 'tails-backup create' again", session.Reason(err)))
	}

	disks, snap, closeDisks, err := openDisks(ctx, env.loc, sys, log, "create", false)
	if err != nil {
		return err
	}
	defer closeDisks()

	readPath, before, setAside, err := readStateWarning(ctx, env, sys, log, *statePath)
	if err != nil {
		return err
	}

	cands := session.CreateTargetsIn(env.loc, snap, sys.boot, used, &before)
	printCreateCandidates(env.loc, env.stdout, cands, used)
	target, err := chooseCreateTarget(env.loc, snap, cands, fs.Arg(0), used)
	if err != nil {
		return err
	}
	name := session.DescribeIn(env.loc, target.Stick)
	printErased(env.loc, env.stdout, snap, target)
	if target.PairedUUID != "" {
		fmt.Fprintln(env.stdout, session.ReplaceBackupTextIn(env.loc))
		if *yes && !*replace {
			return errors.New(env.loc.Tr("%s is your backup Tails, so it was not erased; add --replace to erase it all the same", name))
		}
	}
	if !*yes && !confirmErase(env, name) {
		return errors.New(env.loc.Tr("not confirmed, so nothing was changed (type yes to erase the stick, or use --yes)"))
	}

	pass, err := session.AskNewPassphraseIn(ctx, env.loc, pinentry.NewPinentry(log.WithField("component", "pinentry")), name)
	if err != nil {
		return err
	}
	defer secmem.Wipe(pass)

	l, _ := session.PlanLayout(target.Facts.Size)
	c := &session.Creation{Disks: disks, Boot: sys.boot, Log: log, Loc: env.loc, Name: name,
		Helper: wire.NewHelperClient(strings.Fields(*helperCmd), log.WithField("component", "helper")),
		Drive:  target.Drive.Path, Layout: l, Used: used,
		Progress: &createProgress{w: env.stdout, warn: env.stderr, loc: env.loc, terminal: env.isTerminal, steps: session.CreateSteps}}
	if err := c.Run(ctx, pass); err != nil {
		return err
	}

	// Ejected before the pairing is saved: a running agent that sees the new pairing while the
	// stick is still there would start an update of it at once, racing the lock and power-off.
	ejectErr := c.Eject(ctx)
	now := sys.now()
	err = savePairing(ctx, env, sys, log, *statePath, readPath, before, setAside, func(s *pairing.State) error {
		return c.Pair(s, target, now)
	})
	if err != nil {
		return fmt.Errorf(env.loc.Tr("the backup Tails on %[1]s is complete, but it is not paired because %[2]w; then plug it in and run 'tails-backup pair %[3]s' to pair it"), name, err, session.Device(target.Stick))
	}
	if ejectErr != nil {
		fmt.Fprintln(env.stdout, env.loc.Tr("Your backup Tails is ready and paired."))
		fmt.Fprintln(env.stderr, env.loc.Tr("Warning: %[1]s could not be ejected (%[2]s); eject it in the Files browser before you unplug it.", name, session.Reason(ejectErr)))
		return nil
	}
	fmt.Fprintln(env.stdout, env.loc.Tr("Your backup Tails is ready: you can unplug it. From now on, plug it in to update it; if this Tails is lost or broken, start on the backup."))
	return nil
}

// statfsUsed is the space the files of the file system mounted at dir take: what the Persistent
// Storage of this Tails holds. ext4 leaves its own metadata out of these counts.
func statfsUsed(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return (st.Blocks - st.Bfree) * uint64(st.Bsize), nil
}

// savePairing records the new backup with change (session.SavePairingIn), in the store where it
// is now; what was read from readPath before comes along if it moved.
func savePairing(ctx context.Context, env *environment, sys sessionSystem, log *logrus.Entry, flagPath, readPath string, before pairing.State, beforeDamaged bool, change func(*pairing.State) error) error {
	store, err := storeAt(env.loc, flagPath, sys, log)()
	if err != nil {
		return err
	}
	return session.SavePairingIn(ctx, env.loc, store, readPath, before, beforeDamaged, func(se *pairing.StateError) { warnStateError(env, se) }, change)
}
