package main

import (
	"context"
	"fmt"

	"tails-backup/l10n"
	"tails-backup/pinentry"
	"tails-backup/session"
)

const passphraseFreeSynopsis = "[--state FILE] [--helper-command CMD] on|off [DEVICE]"

const passphraseFreeDescription = `Turn updates without the passphrase on or off for the paired backup Tails plugged in.
On (the default for a backup created or paired): a second key slot of the backup's
Persistent Storage opens with a random key kept in this Tails' Persistent Storage, readable
by root only, so updates need no passphrase; turning it on asks the passphrase once.
Off: that key slot is removed from the backup and the key shredded; updates ask the
passphrase again. DEVICE is the stick's device, e.g. /dev/sdb; it may be left out when only
one paired backup Tails is plugged in.`

const forgetSynopsis = "[--yes] [--state FILE] [--helper-command CMD] [DEVICE|UUID]"

const forgetDescription = `Forget a paired backup Tails: it is no longer updated. When it is plugged in, the key slot
that updates it without the passphrase is removed from it; otherwise only the key kept in
this Tails is shredded. DEVICE is the stick's device, e.g. /dev/sdb; UUID is the LUKS UUID
of a paired backup's Persistent Storage (see 'tails-backup status'), plugged in or not.
Either may be left out when only one backup Tails is paired.`

// runPassphraseFree is `tails-backup passphrase-free on|off [DEVICE]`.
func runPassphraseFree(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "passphrase-free", passphraseFreeSynopsis, env.loc.Tr(passphraseFreeDescription))
	statePath, helperCmd, verbose := sessionFlags(env, fs)
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || (fs.Arg(0) != "on" && fs.Arg(0) != "off") {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("say on or off, and at most one device, e.g. 'tails-backup passphrase-free off /dev/sdb'"))
	}
	f, closeDisks, err := keySlotFlow(env, "passphrase-free", *statePath, *helperCmd, *verbose, fs.Arg(1))
	if err != nil {
		return err
	}
	defer closeDisks()
	if fs.Arg(0) == "on" {
		return f.On(ctx)
	}
	return f.Off(ctx)
}

// runForget is `tails-backup forget [DEVICE|UUID]`.
func runForget(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "forget", forgetSynopsis, env.loc.Tr(forgetDescription))
	yes := fs.Bool("yes", false, env.loc.Tr("forget without asking for confirmation"))
	statePath, helperCmd, verbose := sessionFlags(env, fs)
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give at most one device or UUID, e.g. 'tails-backup forget /dev/sdb'"))
	}
	f, closeDisks, err := keySlotFlow(env, "forget", *statePath, *helperCmd, *verbose, fs.Arg(0))
	if err != nil {
		return err
	}
	defer closeDisks()
	f.Yes = *yes
	return f.Forget(ctx)
}

// keySlotFlow is the session flow of passphrase-free and forget, with its terminal.
func keySlotFlow(env *environment, cmd, statePath, helperCmd string, verbose bool, device string) (*session.KeySlotFlow, func(), error) {
	sys := env.sessionSystem()
	log := newLog(env, verbose, cmd)
	helper, err := helperClient(env.loc, helperCmd, log)
	if err != nil {
		return nil, nil, err
	}
	connect, closeDisks := connectDisks(env.loc, sys, log, cmd, false)
	return &session.KeySlotFlow{
		Connect: connect,
		Boot:    sys.boot,
		Store:   storeAt(env.loc, statePath, sys, log),
		Helper:  helper,
		Asker:   pinentry.NewPinentry(log.WithField("component", "pinentry")),
		Log:     log, Loc: env.loc,
		UI:     &terminal{env: env},
		Device: device,
	}, closeDisks, nil
}

// The commands' one-line summaries, for 'tails-backup help'.
var (
	passphraseFreeSummary = l10n.Mark("turn updates without the passphrase on or off for the paired backup Tails plugged in")
	forgetSummary         = l10n.Mark("forget a paired backup Tails: no more updates, its key slot and key removed")
)
