package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/session"
	"tails-backup/udisks"
)

const pairSynopsis = "[--yes] [--state FILE] [--helper-command CMD] [DEVICE]"

const pairDescription = `Pair a Tails stick plugged in (not the one this Tails runs from) as the backup of this
Tails: its Persistent Storage is unlocked (you type its passphrase), marked as the backup of
this Tails, then locked again; from then on it is updated each time you plug it in.
DEVICE is the stick's device, e.g. /dev/sdb; it may be left out when only one Tails stick
is plugged in besides this one.`

// runPair is `tails-backup pair`: run as amnesia in the desktop session. The flow is
// session.Pair; this is its command line and its terminal.
func runPair(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "pair", pairSynopsis, env.loc.Tr(pairDescription))
	yes := fs.Bool("yes", false, env.loc.Tr("pair without asking for confirmation"))
	statePath, helperCmd, verbose := sessionFlags(env, fs)
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give at most one device, e.g. 'tails-backup pair /dev/sdb'"))
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "pair")
	helper, err := helperClient(env.loc, *helperCmd, log)
	if err != nil {
		return err
	}
	connect, closeDisks := connectDisks(env.loc, sys, log, "pair", false)
	defer closeDisks()
	p := &session.Pair{
		Connect: connect,
		Boot:    sys.boot,
		OwnRoot: sys.markerRoot,
		Store:   storeAt(env.loc, *statePath, sys, log),
		Helper:  helper,
		Asker:   pinentry.NewPinentry(log.WithField("component", "pinentry")),
		Now:     sys.now,
		Log:     log, Loc: env.loc,
		UI:     &terminal{env: env},
		Device: fs.Arg(0),
		Yes:    *yes,
	}
	return p.Run(ctx)
}

// storeAt opens the pairing store at flagPath, or where it is by default at the time of the
// call.
func storeAt(loc *l10n.Locale, flagPath string, sys sessionSystem, log *logrus.Entry) func() (*pairing.Store, error) {
	return func() (*pairing.Store, error) {
		path, err := statePathOr(loc, flagPath, sys)
		if err != nil {
			return nil, err
		}
		return openStore(path, sys, log), nil
	}
}

// connectDisks is openDisks for a session flow, which calls it when it needs udisks2; the
// function returned closes the connection afterwards.
func connectDisks(loc *l10n.Locale, sys sessionSystem, log *logrus.Entry, cmd string, orFolder bool) (session.Connect, func()) {
	var closers []func()
	connect := func(ctx context.Context) (session.FlowDisks, *udisks.Snapshot, error) {
		disks, snap, closeDisks, err := openDisks(ctx, loc, sys, log, cmd, orFolder)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, closeDisks)
		return disks, snap, nil
	}
	return connect, func() {
		for _, c := range closers {
			c()
		}
	}
}

func printCandidates(loc *l10n.Locale, w io.Writer, cands []session.Stick, st *pairing.State) {
	if len(cands) == 0 {
		return
	}
	fmt.Fprintln(w, loc.Tr("Tails sticks plugged in, besides the one this Tails runs from:"))
	for _, c := range cands {
		// TRANSLATORS: a Tails stick: its label ("Kingston DataTraveler"), its size, the UUID of its Persistent Storage.
		line := loc.Tr("%[1]s, %[2]s, Persistent Storage %[3]s, not paired", session.Label(c.Stick), sizeText(loc, session.Size(c.Stick)), c.UUID)
		if st.IsPaired(c.UUID) {
			line = loc.Tr("%[1]s, %[2]s, Persistent Storage %[3]s, paired", session.Label(c.Stick), sizeText(loc, session.Size(c.Stick)), c.UUID)
		}
		fmt.Fprintf(w, "  %-10s %s\n", session.Device(c.Stick), line)
	}
}
