package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"tails-backup/session"
	"tails-backup/tails"
)

const statusSynopsis = "[--json] [--state FILE]"

const statusDescription = `Show the backups paired with this Tails and how fresh they are, the reminder settings,
whether this Tails is itself a backup, and the version of Tails.`

// statusFormat is the version of the --json document.
const statusFormat = 1

// runStatus is `tails-backup status`.
func runStatus(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "status", statusSynopsis, env.loc.Tr(statusDescription))
	asJSON := fs.Bool("json", false, env.loc.Tr("print the same as a JSON document, for scripts"))
	statePath := fs.String("state", "", env.loc.Tr(stateFlagHelp))
	verbose := fs.Bool("verbose", false, env.loc.Tr("log debug messages"))
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("status takes no arguments"))
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "status")
	now := sys.now()

	path, err := statePathOr(env.loc, *statePath, sys)
	if err != nil {
		return err
	}
	st, se, err := loadState(ctx, env.loc, openStore(path, sys, log))
	if err != nil {
		return err
	}
	mark := session.ReadOwnMarker(sys.markerRoot)
	version, _ := tails.ReadVersion(sys.versionFile)
	rem := session.CommandReminder(st, now, mark)
	doc := buildStatus(env.loc, st, se, path, mark, rem, version, now)
	if *asJSON {
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return errors.New(env.loc.Tr("cannot encode the status (%v); report this bug", err))
		}
		_, err = env.stdout.Write(append(b, '\n'))
		return err
	}
	printStatus(env.stdout, env.loc, doc, st, rem, now)
	return nil
}
