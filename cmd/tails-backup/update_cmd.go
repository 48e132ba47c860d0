package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"tails-backup/inhibit"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/quiesce"
	"tails-backup/session"
	"tails-backup/wire"
)

const updateSynopsis = "[--skip-close] [--state FILE] [--helper-command CMD] [DEVICE]"

const updateDescription = `Update your paired backup Tails now, as the agent does when you plug it in: you type the
backup's passphrase, its Persistent Storage becomes a copy of the Persistent Storage of this
Tails, its Tails system is updated to this one when they differ, and the stick is ejected. Applications that use the data being copied (Thunderbird, Tor Browser,
Electrum...) are asked to close first, or their data is skipped this time.

DEVICE is the backup stick's device, e.g. /dev/sdb; it may be left out when only one paired
backup Tails is plugged in. While it runs, the agent does not start an update of its own.

Exit status: 0 when the backup was updated, 1 otherwise (also when its data was updated but
not its Tails system), 2 for a usage error.`

// runUpdate is `tails-backup update`: run as amnesia in the desktop session.
func runUpdate(ctx context.Context, env *environment, args []string) error {
	return updateWith(ctx, env, args, nil)
}

// updateWith runs the command with q finding and closing the applications; nil is the real one.
func updateWith(ctx context.Context, env *environment, args []string, q quiesce.Quiescer) error {
	fs := newFlagSet(env, "update", updateSynopsis, env.loc.Tr(updateDescription))
	skipClose := fs.Bool("skip-close", false, env.loc.Tr("skip the data of open applications this time instead of asking to close them"))
	statePath, helperCmd, verbose := sessionFlags(env, fs)
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give at most one device, e.g. 'tails-backup update /dev/sdb'"))
	}
	argv := strings.Fields(*helperCmd)
	if len(argv) == 0 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("--helper-command is empty"))
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "update")
	if session.ReadOwnMarker(sys.markerRoot).IsBackup() {
		return errors.New(env.loc.Tr("this Tails is itself a backup, so it does not update backups; if your main Tails is lost or broken, run 'tails-backup promote' first"))
	}
	if q == nil {
		pq := quiesce.NewProcQuiescer(log.WithField("component", "quiesce"))
		pq.PersistentStorage = sys.markerRoot
		q = pq
	}
	_, st, _, err := readStateWarning(ctx, env, sys, log, *statePath)
	if err != nil {
		return err
	}
	disks, snap, closeDisks, err := openDisks(ctx, env.loc, sys, log, "update", false)
	if err != nil {
		return err
	}
	defer closeDisks()
	source := session.SourceUUID(snap, sys.boot)
	if source == "" {
		return errors.New(env.loc.Tr("the Persistent Storage of this Tails is not unlocked, so there is nothing to back up; restart Tails and unlock it in the Welcome Screen"))
	}
	stick, err := chooseUpdateStick(env.loc, snap, sys.boot, &st, fs.Arg(0))
	if err != nil {
		return err
	}
	name := session.DescribeIn(env.loc, stick.Stick)

	// The agent leaves a paired backup alone while the updates are paused, as during a restore:
	// it would start its own update of the stick this command opens. An update the agent had
	// already started holds the backup (the helper's lock): this one is then refused, and the
	// stick, found unlocked, is left as it is.
	path, err := statePathOr(env.loc, *statePath, sys)
	if err != nil {
		return err
	}
	store := openStore(path, sys, log)
	owner := fmt.Sprintf("update %d", os.Getpid())
	if _, err := updateState(ctx, env, store, func(s *pairing.State) error {
		s.Pause(owner, sys.now().Add(session.RestorePause), sys.now())
		return nil
	}); err != nil {
		return fmt.Errorf(env.loc.Tr("the automatic updates could not be held off, so nothing was changed: %w"), err)
	}
	defer updateState(context.WithoutCancel(ctx), env, store, func(s *pairing.State) error { s.Resume(owner); return nil })

	// Ctrl-C is the person cancelling: the update ends as cancelled, the stick locked.
	uctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { cancel(session.ErrCancelled) })
	defer stop()
	conn, err := sys.connectSystemBus(ctx) // logind's, to keep the computer awake
	if err != nil {
		return errors.New(env.loc.Tr("cannot reach the system bus (%v); run 'tails-backup update' in the Tails desktop session", err))
	}
	defer conn.Close()
	fmt.Fprintln(env.stdout, env.loc.Tr("Updating the backup on %s.", name))
	out := newUpdateOutput(env, *skipClose, name)
	helper := wire.NewHelperClient(argv, log.WithField("component", "helper"))
	u := &session.Update{
		Disks: disks, Asker: pinentry.NewPinentry(log.WithField("component", "pinentry")), Quiescer: q,
		Inhibitor: inhibit.NewLogindInhibitor(conn, log.WithField("component", "inhibit")), Helper: helper,
		Store: store, Now: sys.now, Log: log, Loc: env.loc, Stick: stick, Source: source, Persistence: sys.markerRoot,
		QuiesceGrace: session.RestoreCloseGrace, PauseOwner: owner, KeepPlugged: true, Observer: out,
		System: &session.SystemRefresh{Disks: disks, Helper: helper, Medium: sys.medium, Now: sys.now, Log: log},
	}
	done, err := u.Run(uctx)
	attempt := pairing.Attempt{Time: sys.now(), Backup: stick.UUID}
	var e *session.UpdateError
	if errors.As(err, &e) {
		err = updateErrorText(uctx, env.loc, e, name)
		attempt.Result, attempt.Message = e.Result(), err.Error()
	} else if err == nil {
		attempt.Result, attempt.Message = pairing.ResultSuccess, done.MessageIn(env.loc)
		err = out.summary(done)
	}
	out.endBars(done != nil)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer rcancel()
	if _, serr := updateState(rctx, env, store, func(s *pairing.State) error { s.RecordAttempt(attempt); return nil }); serr != nil {
		fmt.Fprintln(env.stderr, env.loc.Tr("Warning: the result of this update was not recorded (%v).", serr))
	}
	return err
}
