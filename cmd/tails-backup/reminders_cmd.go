package main

import (
	"context"
	"fmt"
	"time"

	"tails-backup/pairing"
	"tails-backup/session"
)

const remindersSynopsis = "[--state FILE] [on|off|snooze|status]"

const remindersDescription = `Change the reminders that come when your backup Tails gets old:
  on      remind again (also ends a snooze)
  off     never remind
  snooze  remind tomorrow at the earliest
  status  show the setting and when the next reminder comes (the default)`

// runReminders is `tails-backup reminders`.
func runReminders(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "reminders", remindersSynopsis, env.loc.Tr(remindersDescription))
	statePath := fs.String("state", "", env.loc.Tr(stateFlagHelp))
	verbose := fs.Bool("verbose", false, env.loc.Tr("log debug messages"))
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	action := "status"
	switch fs.NArg() {
	case 0:
	case 1:
		action = fs.Arg(0)
	default:
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give one of on, off, snooze or status"))
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "reminders")
	now := sys.now()

	var change func(*pairing.State)
	switch action {
	case "on":
		change = func(s *pairing.State) { s.Reminder.Disabled, s.Reminder.SnoozedUntil = false, time.Time{} }
	case "off":
		change = func(s *pairing.State) { s.Reminder.Disabled = true }
	case "snooze":
		change = func(s *pairing.State) { s.Snooze(now) }
	case "status":
	default:
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("unknown setting %q; give one of on, off, snooze or status", action))
	}

	path, err := statePathOr(env.loc, *statePath, sys)
	if err != nil {
		return err
	}
	store := openStore(path, sys, log)
	var st pairing.State
	if change == nil {
		var se *pairing.StateError
		if st, se, err = loadState(ctx, env.loc, store); err != nil {
			return err
		}
		if se != nil {
			warnStateError(env, se)
		}
	} else {
		st, err = updateState(ctx, env, store, func(s *pairing.State) error { change(s); return nil })
		if err != nil {
			return fmt.Errorf(env.loc.Tr("the reminders were not changed: %w"), err)
		}
	}
	fmt.Fprintln(env.stdout, session.ReminderSettingText(env.loc, st, now))
	fmt.Fprintln(env.stdout, session.NextReminderText(env.loc, session.CommandReminder(st, now, session.ReadOwnMarker(sys.markerRoot)), now))
	return nil
}
