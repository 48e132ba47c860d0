package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/agent"
	"tails-backup/clock"
	"tails-backup/inhibit"
	"tails-backup/notify"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/quiesce"
	"tails-backup/tails"
	"tails-backup/udev"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// runAgent runs the session agent: started by the systemd user unit in the desktop session.
func runAgent(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "agent", "[--verbose] [--state FILE] [--helper-command CMD]", env.loc.Tr(`The session agent, started by the systemd user unit in the desktop session: it updates a
paired backup Tails each time it is plugged in, asks its passphrase, shows the progress in
notifications and reminds you when the backup gets old. You do not need to start it yourself.`))
	statePath := fs.String("state", "", env.loc.Tr("the pairing store (default: in the Persistent Storage on Tails, else ~/.config/tails-backup/state.json)"))
	helperCmd := fs.String("helper-command", strings.Join(wire.DefaultHelperCommand(), " "), env.loc.Tr("how to run the root helper"))
	verbose := fs.Bool("verbose", false, env.loc.Tr("log debug messages"))
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("the agent takes no arguments"))
	}
	logger := logrus.New()
	logger.Out = env.stderr
	if *verbose {
		logger.SetLevel(logrus.DebugLevel)
	}
	log := logrus.NewEntry(logger).WithField("cmd", "agent")

	path := *statePath
	if path == "" {
		p, err := pairing.DefaultStatePath()
		if err != nil {
			return err
		}
		path = p
	}
	// Not closed by SIGTERM (the end of ctx): an update under way unmounts and locks its stick
	// through this connection before Run returns.
	sys, err := dbus.ConnectSystemBus(dbus.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return fmt.Errorf(env.loc.Tr("connect to the system bus: %w; is D-Bus running?"), err)
	}
	defer sys.Close()
	notifier, err := notify.New(ctx, notify.Config{Log: log.WithField("component", "notify")})
	if err != nil {
		return fmt.Errorf(env.loc.Tr("connect to the session bus: %w; run the agent inside a desktop session"), err)
	}
	defer notifier.Close()

	deps := agent.Deps{
		Disks: udisks.New(sys, udisks.Options{Log: log.WithField("component", "udisks"),
			Boot: udisks.BootPaths{Persistence: tails.PersistentStorageMount, System: tails.MediumMount}}),
		Notifier:  notifier,
		Asker:     pinentry.NewPinentry(log.WithField("component", "pinentry")),
		Quiescer:  quiesce.NewProcQuiescer(log.WithField("component", "quiesce")),
		Inhibitor: inhibit.NewLogindInhibitor(sys, log.WithField("component", "inhibit")),
		Helper:    wire.NewHelperClient(strings.Fields(*helperCmd), log.WithField("component", "helper")),
		Store:     pairing.NewStore(path, time.Now, log.WithField("component", "store")),
		Clock:     clock.RealClock{},
		Log:       log,
		Hotplug:   hotplug(ctx, log),
		OpenApp:   agent.LaunchApp,
	}
	// The session's language, from the environment the user manager got from gnome-session
	// (tails-backup-agent.service says how): the notifications, the app's texts, the prompts.
	cfg := agent.Config{Loc: env.loc}
	if *statePath == "" {
		cfg.StatePath = pairing.DefaultStatePath
	}
	a := agent.New(cfg, deps)
	// The Backup app's API; its own connection, so that the name goes when the agent does.
	session, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf(env.loc.Tr("connect to the session bus: %w; run the agent inside a desktop session"), err)
	}
	defer session.Close()
	if _, err := a.ServeAPI(ctx, session); err != nil {
		return fmt.Errorf(env.loc.Tr("serve the Backup app's API: %w"), err)
	}
	log.WithField("state", path).WithField("lang", env.loc.Lang()).Info("agent started")
	return a.Run(ctx)
}

// hotplug turns udev's block device events into wake-ups of the agent, which then looks at
// udisks at once. Without udev (a container, say) it returns nil: the udisks signals suffice.
func hotplug(ctx context.Context, log *logrus.Entry) <-chan struct{} {
	mon, err := udev.Open(udev.Config{Matches: []udev.Match{{Subsystem: "block"}}, Log: log.WithField("component", "udev")})
	if err != nil {
		log.WithError(err).Warn("no udev monitor; relying on udisks signals")
		return nil
	}
	out := make(chan struct{}, 1)
	events := make(chan udev.Event, 16)
	go func() {
		defer mon.Close()
		for {
			err := mon.Run(ctx, events)
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, udev.ErrOverflow) {
				log.WithError(err).Warn("udev monitor stopped")
				return
			}
			// Events were lost: wake the agent so that it looks at everything again.
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-events:
				select {
				case out <- struct{}{}:
				default: // a wake-up is already pending
				}
			}
		}
	}()
	return out
}
