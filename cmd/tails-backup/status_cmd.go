package main

import (
	"context"
	"encoding/json"
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
	fs := newFlagSet(env, "status", statusSynopsis, statusDescription)
	asJSON := fs.Bool("json", false, "print the same as a JSON document, for scripts")
	statePath := fs.String("state", "", stateFlagHelp)
	verbose := fs.Bool("verbose", false, "log debug messages")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: status takes no arguments", errUsage)
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "status")
	now := sys.now()

	path, err := statePathOr(*statePath, sys)
	if err != nil {
		return err
	}
	st, se, err := loadState(ctx, openStore(path, sys, log))
	if err != nil {
		return err
	}
	mark := session.ReadOwnMarker(sys.markerRoot)
	version, _ := tails.ReadVersion(sys.versionFile)
	rem := session.CommandReminder(st, now, mark)
	doc := buildStatus(st, se, path, mark, rem, version, now)
	if *asJSON {
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return fmt.Errorf("cannot encode the status (%v); report this bug", err)
		}
		_, err = env.stdout.Write(append(b, '\n'))
		return err
	}
	printStatus(env.stdout, doc, st, rem, now)
	return nil
}
