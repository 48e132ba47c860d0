package session

// The reminder policy of the agent, pure (no clock, no I/O), so that the agent decides with it and
// the commands ('status', 'reminders') and the app say the same as the agent does.

import (
	"time"

	"tails-backup/pairing"
)

// ReminderInterval is the least time between two reminders.
const ReminderInterval = 24 * time.Hour

// ReminderReason says why a reminder is, or is not, due.
type ReminderReason string

const (
	ReminderDueNow        ReminderReason = "due"            // show it
	ReminderNothingPaired ReminderReason = "nothing-paired" // no backup to remind about
	ReminderIsBackup      ReminderReason = "is-backup"      // this Tails is itself a backup
	ReminderDisabled      ReminderReason = "disabled"       // the user turned reminders off
	ReminderStickPresent  ReminderReason = "stick-present"  // a backup is plugged: the update starts
	ReminderFresh         ReminderReason = "fresh"          // the last update is recent enough
	ReminderSnoozed       ReminderReason = "snoozed"        // "Remind me tomorrow"
	ReminderShownRecently ReminderReason = "shown-recently" // one was shown less than a day ago
)

// ReminderInput is what the reminder decision depends on.
type ReminderInput struct {
	State pairing.State
	Now   time.Time
	// StickPresent: a paired backup is plugged in (its update will start, or is running).
	StickPresent bool
	// IsBackupTails: the running Tails is itself a backup (it has a marker).
	IsBackupTails bool
}

// Reminder is the decision.
type Reminder struct {
	// Due: show the reminder now (then record it with State.ReminderShown).
	Due    bool
	Reason ReminderReason
	// Age is how old the freshest backup is: since its last successful update, or since it
	// was paired if it was never updated. Zero when nothing is paired.
	Age time.Duration
	// DaysOld is Age in whole days, for the text ("Your backup is 9 days old").
	DaysOld int
	// Next is when to decide again if nothing changes. Zero means no timer is needed: decide
	// again when the state changes (pairing, settings, the stick leaving, an update ending).
	// When Due, Next is when the following reminder could come, had this one been shown.
	Next time.Time
}

// DecideReminder applies the reminder policy (in the style of Déjà Dup): a reminder is due when
// the freshest paired backup is older than the period, unless reminders are disabled or
// snoozed, one was shown less than ReminderInterval ago, a backup stick is plugged in, or this
// Tails is itself a backup. Times from the state that lie in the future (the wall clock was
// wrong when they were written, which happens on Tails before Tor bootstraps) are not trusted
// to silence reminders for longer than their nominal duration.
func DecideReminder(in ReminderInput) Reminder {
	st, now := &in.State, in.Now
	switch {
	case in.IsBackupTails:
		return Reminder{Reason: ReminderIsBackup}
	case len(st.Backups) == 0:
		return Reminder{Reason: ReminderNothingPaired}
	}
	var ref time.Time
	for _, b := range st.Backups {
		t := b.LastSuccess
		if t.IsZero() {
			t = b.Added
		}
		if t.After(ref) {
			ref = t
		}
	}
	age := max(now.Sub(ref), 0)
	r := Reminder{Age: age, DaysOld: int(age / (24 * time.Hour))}
	switch {
	case st.Reminder.Disabled:
		r.Reason = ReminderDisabled
		return r
	case in.StickPresent:
		r.Reason = ReminderStickPresent
		return r
	}
	// The earliest time a reminder may be shown.
	next := now.Add(-age).Add(st.ReminderPeriod()) // ref, or now if ref is in the future
	r.Reason = ReminderFresh
	if until := st.Reminder.SnoozedUntil; until.After(now) && !until.After(now.Add(pairing.SnoozeDuration)) && until.After(next) {
		next, r.Reason = until, ReminderSnoozed
	}
	if shown := st.Reminder.LastShown; !shown.After(now) {
		if again := shown.Add(ReminderInterval); again.After(next) {
			next, r.Reason = again, ReminderShownRecently
		}
	}
	if next.After(now) {
		r.Next = next
		return r
	}
	r.Due, r.Reason, r.Next = true, ReminderDueNow, now.Add(ReminderInterval)
	return r
}
