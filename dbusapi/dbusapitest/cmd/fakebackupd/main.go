// Command fakebackupd serves the fake backend of the Backup API on the session bus, in a
// scenario, for the app's tests and for trying the app without a Tails: see package dbusapi.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/dbusapi"
	"tails-backup/dbusapi/dbusapitest"
	"tails-backup/l10n"
)

func main() {
	scenario := flag.String("scenario", "first-run", "the world the fake shows (see below)")
	step := flag.Duration("step", time.Second, "how long each step of a fake job takes")
	verbose := flag.Bool("v", false, "log each call and signal on standard error")
	plugAfter := flag.Duration("plug-after", 0, "start with none of the scenario's sticks plugged in, and plug them in this long after a\n"+
		"pair, verify or restore starts waiting for one (0: they are plugged in from the start)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: fakebackupd [-scenario NAME] [-step DURATION] [-plug-after DURATION] [-v]\n\n"+
			"Serves a fake %s on the session bus (DBUS_SESSION_BUS_ADDRESS), in the session's language\n"+
			"(LANGUAGE, LANG) with the catalogs of TEXTDOMAINDIR (default /usr/share/locale).\n\nScenarios:\n", dbusapi.BusName)
		for _, n := range dbusapitest.ScenarioNames() {
			fmt.Fprintf(flag.CommandLine.Output(), "  %-15s %s\n", n, dbusapitest.Scenarios[n])
		}
		fmt.Fprintln(flag.CommandLine.Output(), "\nFlags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*scenario, *step, *plugAfter, *verbose); err != nil {
		fmt.Fprintf(os.Stderr, "fakebackupd: %v\n", err)
		os.Exit(1)
	}
}

func run(scenario string, step, plugAfter time.Duration, verbose bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l := logrus.New()
	l.Out = os.Stderr
	if verbose {
		l.Level = logrus.DebugLevel
	}
	log := logrus.NewEntry(l).WithField("scenario", scenario)
	// The session's language, as the agent takes it; the catalogs from TEXTDOMAINDIR (the
	// tests' compiled ones, as for the app) or where Debian installs them.
	dir := os.Getenv("TEXTDOMAINDIR")
	if dir == "" {
		dir = l10n.Dir
	}
	fake, err := dbusapitest.NewFakeIn(l10n.FromEnv(os.Getenv, dir), scenario, step)
	if err != nil {
		return err
	}
	if plugAfter > 0 {
		fake.Unplug(plugAfter)
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return fmt.Errorf("connect to the session bus: %w", err)
	}
	defer conn.Close()
	svc, err := dbusapi.Serve(ctx, conn, fake, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	fake.Events.SetSink(logged{svc, log})
	fmt.Println("ready")
	select {
	case <-ctx.Done():
		return nil
	case <-conn.Context().Done(): // the bus went away: the session ended
		return fmt.Errorf("the session bus connection closed")
	}
}

// logged logs each event at debug level before the Service emits it.
type logged struct {
	dbusapi.Events
	log *logrus.Entry
}

func (l logged) Progress(job string, p dbusapi.Progress) {
	l.log.WithField("job", job).Debugf("Progress %.2f %s", p.Fraction, strings.TrimSpace(p.Step+" "+p.Text))
	l.Events.Progress(job, p)
}

func (l logged) Finished(job string, r dbusapi.Result) {
	l.log.WithField("job", job).Debugf("JobFinished %s: %s", r.Result, r.Text)
	l.Events.Finished(job, r)
}
