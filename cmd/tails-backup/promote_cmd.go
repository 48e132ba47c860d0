package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/wire"
)

const promoteSynopsis = "[--yes] [--state FILE] [--helper-command CMD]"

const promoteDescription = `On a backup Tails: make it your main Tails, when your main Tails is lost or broken. Its
backup marker is removed, so that it is no longer updated from the old main Tails, and the
backups of the old main Tails are forgotten; then make a new backup of it.`

// runPromote is `tails-backup promote`.
func runPromote(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "promote", promoteSynopsis, env.loc.Tr(promoteDescription))
	yes := fs.Bool("yes", false, env.loc.Tr("do not ask for confirmation"))
	statePath, helperCmd, verbose := sessionFlags(env, fs)
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("promote takes no arguments"))
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "promote")

	// A marker that is present but damaged is removed too: it would otherwise stay forever.
	if !session.ReadOwnMarker(sys.markerRoot).Present {
		fmt.Fprintln(env.stdout, env.loc.Tr("This Tails is already your main Tails."))
		return nil
	}
	if !*yes && !confirm(env, env.loc.Tr("Make this Tails your main Tails? Do this only if your main Tails is lost or broken: "+
		"this Tails will no longer be updated from it, and the backups of the old main Tails are forgotten.")) {
		return errors.New(env.loc.Tr("not confirmed, so nothing was changed (answer y to promote, or use --yes)"))
	}
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpPromote}
	if err := runHelperOp(ctx, env.loc, *helperCmd, req, log); err != nil {
		return fmt.Errorf(env.loc.Tr("this Tails was not made your main Tails: %w"), err)
	}
	path, err := statePathOr(env.loc, *statePath, sys)
	if err != nil {
		return fmt.Errorf(env.loc.Tr("this is now your main Tails, but %w"), err)
	}
	// The old main Tails is lost: forget its backups, whose markers name it, not this Tails.
	_, err = updateState(ctx, env, openStore(path, sys, log), func(s *pairing.State) error {
		s.Backups = []pairing.PairedBackup{}
		s.LastSuccess = time.Time{}
		return nil
	})
	if err != nil {
		return fmt.Errorf(env.loc.Tr("this is now your main Tails, but the backups of the old one could not be forgotten: %w"), err)
	}
	fmt.Fprintln(env.stdout, env.loc.Tr("This is now your main Tails. Create a new backup of it on another USB stick with 'tails-backup create', "+
		"then plug that backup in regularly to keep it up to date."))
	return nil
}
