package main

// What the session commands (pair, reminders, promote, status) share: the parts of the running
// system they read, which tests replace, and their texts.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// sessionSystem is what the session commands take from the running system.
type sessionSystem struct {
	// markerRoot is this Tails' own Persistent Storage: a backup Tails has its marker there.
	markerRoot string
	// versionFile holds the running Tails' version on its first line.
	versionFile string
	// boot recognises the stick this Tails runs from.
	boot udisks.BootPaths
	// medium is where the running system partition is mounted: 'update' refreshes the
	// backup's system partition from it.
	medium string
	// now is the wall clock.
	now func() time.Time
	// connectSystemBus reaches udisks2 (dbus.ConnectSystemBus honours DBUS_SYSTEM_BUS_ADDRESS).
	// The end of ctx does not close the connection (Close does): after Ctrl-C, a command
	// still unmounts and locks the stick it opened through it.
	connectSystemBus func(ctx context.Context) (*dbus.Conn, error)
	// defaultStatePath is where the pairing store is when --state is not given.
	defaultStatePath func() (string, error)
	// usedBytes is the space the files of the file system mounted at a folder take (statfs).
	usedBytes func(dir string) (uint64, error)
}

// sessionSystem returns the system the session commands work on: the real one unless a test
// gave another.
func (e *environment) sessionSystem() sessionSystem {
	if e.session != nil {
		return *e.session
	}
	return realSessionSystem()
}

func realSessionSystem() sessionSystem {
	return sessionSystem{
		markerRoot:  tails.PersistentStorageMount,
		versionFile: tails.VersionFile,
		boot:        udisks.BootPaths{Persistence: tails.PersistentStorageMount, System: tails.MediumMount},
		medium:      tails.MediumMount,
		now:         time.Now,
		connectSystemBus: func(ctx context.Context) (*dbus.Conn, error) {
			return dbus.ConnectSystemBus(dbus.WithContext(context.WithoutCancel(ctx)))
		},
		defaultStatePath: pairing.DefaultStatePath,
		usedBytes:        statfsUsed,
	}
}

// stateFlagHelp documents --state.
const stateFlagHelp = "the pairing store (default: in the Persistent Storage on Tails, else ~/.config/tails-backup/state.json)"

// newLog returns the logger of a session command: errors only, unless verbose. What the user
// must know comes in the command's own output and error.
func newLog(env *environment, verbose bool, cmd string) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(env.stderr)
	l.SetLevel(logrus.ErrorLevel)
	if verbose {
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l).WithField("cmd", cmd)
}

// statePathOr returns flagPath, or the default location of the store.
func statePathOr(loc *l10n.Locale, flagPath string, sys sessionSystem) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	p, err := sys.defaultStatePath()
	if err != nil {
		return "", errors.New(loc.Tr("cannot tell where the pairing store is (%s); give its path with --state", session.Reason(err)))
	}
	return p, nil
}

func openStore(path string, sys sessionSystem, log *logrus.Entry) *pairing.Store {
	return pairing.NewStore(path, sys.now, log.WithField("component", "store"))
}

// loadState reads the store (session.LoadStateIn), with its errors in the session's language.
func loadState(ctx context.Context, loc *l10n.Locale, store *pairing.Store) (pairing.State, *pairing.StateError, error) {
	return session.LoadStateIn(ctx, loc, store)
}

// readStateWarning reads the pairing store (at flagPath, or its default) for a command and
// says on standard error when it was damaged and set aside. It returns where it read it and
// whether it was set aside.
func readStateWarning(ctx context.Context, env *environment, sys sessionSystem, log *logrus.Entry, flagPath string) (path string, st pairing.State, setAside bool, err error) {
	path, err = statePathOr(env.loc, flagPath, sys)
	if err != nil {
		return "", pairing.State{}, false, err
	}
	st, se, err := loadState(ctx, env.loc, openStore(path, sys, log))
	if err != nil {
		return "", pairing.State{}, false, err
	}
	if se != nil {
		warnStateError(env, se)
	}
	return path, st, se != nil, nil
}

// updateState changes the store with fn. A damaged file is reported on standard error (the
// store has set it aside) and fn is applied to a fresh state.
func updateState(ctx context.Context, env *environment, store *pairing.Store, fn func(*pairing.State) error) (pairing.State, error) {
	return session.UpdateState(ctx, env.loc, store, func(se *pairing.StateError) { warnStateError(env, se) }, fn)
}

func warnStateError(env *environment, se *pairing.StateError) {
	fmt.Fprintln(env.stderr, env.loc.Tr("Warning: %s", session.StateErrorTextIn(env.loc, se)))
}

// defaultHelperCommand is the default of --helper-command.
func defaultHelperCommand() string { return strings.Join(wire.DefaultHelperCommand(), " ") }

// sessionFlags adds to fs the flags of the commands that run a flow through the root helper:
// --state (the pairing store), --helper-command and --verbose.
func sessionFlags(env *environment, fs *flag.FlagSet) (statePath, helperCmd *string, verbose *bool) {
	statePath = fs.String("state", "", env.loc.Tr(stateFlagHelp))
	helperCmd = fs.String("helper-command", defaultHelperCommand(), env.loc.Tr("how to run the root helper"))
	verbose = fs.Bool("verbose", false, env.loc.Tr("log debug messages"))
	return statePath, helperCmd, verbose
}

// helperClient is the client of the root helper run by command (--helper-command).
func helperClient(loc *l10n.Locale, command string, log *logrus.Entry) (wire.HelperRunner, error) {
	argv := strings.Fields(command)
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: %s", errUsage, loc.Tr("--helper-command is empty"))
	}
	return wire.NewHelperClient(argv, log.WithField("component", "helper")), nil
}

// runHelperOp runs one root helper operation and explains its failure in one sentence.
func runHelperOp(ctx context.Context, loc *l10n.Locale, command string, req wire.Request, log *logrus.Entry) error {
	client, err := helperClient(loc, command, log)
	if err != nil {
		return err
	}
	if _, err := client.Run(ctx, req, nil); err != nil {
		return session.CommandHelperError(ctx, loc, err, log)
	}
	return nil
}

// sizeText is a size in decimal units, as the file managers show it: "15.5 GB".
func sizeText(loc *l10n.Locale, n uint64) string { return loc.Size(int64(n)) }

// openDisks connects to udisks2 on the system bus for the session command cmd and lists the
// drives. The connection outlives ctx (sessionSystem.connectSystemBus): after Ctrl-C the stick
// is still unmounted and locked through it. orFolder: the error when the bus cannot be
// reached also offers to give the folder where the backup is mounted (verify takes one).
func openDisks(ctx context.Context, loc *l10n.Locale, sys sessionSystem, log *logrus.Entry, cmd string, orFolder bool) (*udisks.Client, *udisks.Snapshot, func(), error) {
	conn, err := sys.connectSystemBus(ctx)
	if err != nil {
		if orFolder {
			return nil, nil, nil, errors.New(loc.Tr("cannot reach the system bus (%[1]s); run 'tails-backup %[2]s' in the Tails desktop session, or give the folder where the backup is mounted", session.Reason(err), cmd))
		}
		// TRANSLATORS: %[1]s says why (in English), %[2]s is a command ("pair").
		return nil, nil, nil, errors.New(loc.Tr("cannot reach the system bus (%[1]s); run 'tails-backup %[2]s' in the Tails desktop session", session.Reason(err), cmd))
	}
	disks := udisks.New(conn, udisks.Options{Log: log.WithField("component", "udisks"), Boot: sys.boot})
	snap, err := disks.GetSnapshot(ctx)
	if err != nil {
		conn.Close()
		return nil, nil, nil, errors.New(loc.Tr("cannot list the USB sticks (%s); check that udisks2 is running and try again", session.Reason(err)))
	}
	return disks, snap, func() { conn.Close() }, nil
}
