package main

// The status document (text and --json) of the pairing store, the reminders and this Tails' role.

import (
	"fmt"
	"io"
	"time"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/session"
)

// statusDoc is the document `tails-backup status --json` prints. It is stable: every key is
// always present (null when it has no value), fields may be added, and none is removed or
// changes meaning without a new format number. Times are RFC 3339, in UTC.
//
//	format          1
//	now             when the status was taken
//	tails_version   the first line of /etc/amnesia/version; "" if unknown
//	is_backup       this Tails is itself a backup: a valid marker in its Persistent Storage
//	backup_of       the LUKS UUID of the Tails this one is a backup of; "" if none
//	marker_error    why a marker found in this Tails' Persistent Storage cannot be used; ""
//	state_path      the pairing store that was read
//	state_error     the store could not be used and was set aside (why, and where to); ""
//	backups         the paired backups, in pairing order; [] if none. Each:
//	  uuid          the LUKS UUID of its Persistent Storage
//	  label         how the user knows it ("Kingston DataTraveler")
//	  size          the size of the stick in bytes
//	  added         when it was paired
//	  last_success  when its last update completed; null if never
//	  age_days      whole days since last_success; null if never updated
//	  last_attempt  its last update, whatever the result; null if none:
//	                {time, backup (its UUID), result (success, failed, cancelled or
//	                incomplete), message (what the user was told, "" if nothing)}
//	last_success    when an update of any backup last completed; null if never
//	last_attempt    the last update of any backup, as above; null if none
//	reminders
//	  enabled       the user did not turn reminders off
//	  period_days   how old the backup may get before a reminder
//	  snoozed_until "Remind me tomorrow" silences them until then; null if not snoozed
//	  last_shown    when a reminder was last shown; null if never
//	  next          the decision of the agent, with no backup plugged in:
//	    due         a reminder is due now
//	    reason      due, nothing-paired, is-backup, disabled, fresh, snoozed, shown-recently
//	    at          when the next reminder can come (now if due); null if none is planned
//	    days_old    whole days since the freshest backup was updated (or paired)
type statusDoc struct {
	Format       int             `json:"format"`
	Now          time.Time       `json:"now"`
	TailsVersion string          `json:"tails_version"`
	IsBackup     bool            `json:"is_backup"`
	BackupOf     string          `json:"backup_of"`
	MarkerError  string          `json:"marker_error"`
	StatePath    string          `json:"state_path"`
	StateError   string          `json:"state_error"`
	Backups      []statusBackup  `json:"backups"`
	LastSuccess  *time.Time      `json:"last_success"`
	LastAttempt  *statusAttempt  `json:"last_attempt"`
	Reminders    statusReminders `json:"reminders"`
}

type statusBackup struct {
	UUID        string         `json:"uuid"`
	Label       string         `json:"label"`
	Size        uint64         `json:"size"`
	Added       time.Time      `json:"added"`
	LastSuccess *time.Time     `json:"last_success"`
	AgeDays     *int           `json:"age_days"`
	LastAttempt *statusAttempt `json:"last_attempt"`
}

type statusAttempt struct {
	Time    time.Time      `json:"time"`
	Backup  string         `json:"backup"`
	Result  pairing.Result `json:"result"`
	Message string         `json:"message"`
}

type statusReminders struct {
	Enabled      bool         `json:"enabled"`
	PeriodDays   int          `json:"period_days"`
	SnoozedUntil *time.Time   `json:"snoozed_until"`
	LastShown    *time.Time   `json:"last_shown"`
	Next         statusNextRm `json:"next"`
}

type statusNextRm struct {
	Due     bool                   `json:"due"`
	Reason  session.ReminderReason `json:"reason"`
	At      *time.Time             `json:"at"`
	DaysOld int                    `json:"days_old"`
}

func utcPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func attemptDoc(a *pairing.Attempt) *statusAttempt {
	if a == nil {
		return nil
	}
	return &statusAttempt{Time: a.Time.UTC(), Backup: a.Backup, Result: a.Result, Message: a.Message}
}

func buildStatus(loc *l10n.Locale, st pairing.State, se *pairing.StateError, path string, mark session.OwnMarker, r session.Reminder, version string, now time.Time) statusDoc {
	doc := statusDoc{
		Format:       statusFormat,
		Now:          now.UTC(),
		TailsVersion: version,
		IsBackup:     mark.IsBackup(),
		StatePath:    path,
		Backups:      []statusBackup{},
		LastSuccess:  utcPtr(st.LastSuccess),
		LastAttempt:  attemptDoc(st.LastAttempt),
	}
	if mark.IsBackup() {
		doc.BackupOf = mark.Marker.Source
	}
	if mark.Err != nil {
		doc.MarkerError = mark.Err.Error()
	}
	if se != nil {
		doc.StateError = session.StateErrorTextIn(loc, se)
	}
	for _, b := range st.Backups {
		sb := statusBackup{UUID: b.UUID, Label: b.Label, Size: b.Size, Added: b.Added.UTC(),
			LastSuccess: utcPtr(b.LastSuccess), LastAttempt: attemptDoc(b.LastAttempt)}
		if !b.LastSuccess.IsZero() {
			days := int(max(now.Sub(b.LastSuccess), 0) / (24 * time.Hour))
			sb.AgeDays = &days
		}
		doc.Backups = append(doc.Backups, sb)
	}
	doc.Reminders = statusReminders{
		Enabled:      !st.Reminder.Disabled,
		PeriodDays:   int(st.ReminderPeriod() / (24 * time.Hour)),
		SnoozedUntil: utcPtr(st.Reminder.SnoozedUntil),
		LastShown:    utcPtr(st.Reminder.LastShown),
		Next:         statusNextRm{Due: r.Due, Reason: r.Reason, DaysOld: r.DaysOld},
	}
	if !st.Reminder.SnoozedUntil.After(now) {
		doc.Reminders.SnoozedUntil = nil
	}
	switch {
	case r.Due:
		doc.Reminders.Next.At = utcPtr(now)
	case !r.Next.IsZero():
		doc.Reminders.Next.At = utcPtr(r.Next)
	}
	return doc
}

func printStatus(w io.Writer, loc *l10n.Locale, doc statusDoc, st pairing.State, r session.Reminder, now time.Time) {
	if doc.TailsVersion == "" {
		fmt.Fprintln(w, loc.Tr("Tails unknown version"))
	} else {
		fmt.Fprintln(w, loc.Tr("Tails %s", doc.TailsVersion))
	}
	switch {
	case doc.IsBackup:
		fmt.Fprintln(w, loc.Tr("This Tails is a backup of another Tails (Persistent Storage %s): changes made here are overwritten by its next update. "+
			"If your main Tails is lost or broken, run 'tails-backup promote'.", doc.BackupOf))
	case doc.MarkerError != "":
		fmt.Fprintln(w, loc.Tr("This Tails has a damaged backup marker (%s); run 'tails-backup promote' to remove it if this is your main Tails.", doc.MarkerError))
	default:
		fmt.Fprintln(w, loc.Tr("This is your main Tails."))
	}
	if doc.StateError != "" {
		fmt.Fprintln(w, loc.Tr("Warning: %s", doc.StateError))
	}
	fmt.Fprintln(w)
	if len(doc.Backups) == 0 {
		fmt.Fprintln(w, loc.Tr("No backup Tails is paired with this Tails; plug in a Tails stick and run 'tails-backup pair'."))
	} else {
		fmt.Fprintln(w, loc.Tr("Backup Tails paired with this Tails: %d", len(doc.Backups)))
	}
	for _, b := range doc.Backups {
		// TRANSLATORS: a paired backup: its label ("Kingston DataTraveler"), its size.
		fmt.Fprintln(w, loc.Tr("  %[1]s, %[2]s", b.Label, sizeText(loc, b.Size)))
		// TRANSLATORS: the lines of a paired backup in 'tails-backup status' are aligned: keep
		// the values of "Persistent Storage:", "Paired:", "Last update:" and "Last attempt:"
		// in one column.
		fmt.Fprintln(w, loc.Tr("    Persistent Storage: %s", b.UUID))
		fmt.Fprintln(w, loc.Tr("    Paired:             %s", session.TimeText(loc, b.Added, now)))
		if b.LastSuccess == nil {
			fmt.Fprintln(w, loc.Tr("    Last update:        never; plug it in to update it"))
		} else {
			// TRANSLATORS: %[1]s is a date and time, %[2]s a number of days ("3 days").
			fmt.Fprintln(w, loc.Tr("    Last update:        %[1]s (%[2]s ago)", session.TimeText(loc, *b.LastSuccess, now), session.DaysText(loc, now.Sub(*b.LastSuccess))))
		}
		if a := b.LastAttempt; a != nil {
			when := session.TimeText(loc, a.Time, now)
			if a.Message != "" {
				// TRANSLATORS: %[1]s is a date and time, %[2]s the result, %[3]s what the person was told.
				fmt.Fprintln(w, loc.Tr("    Last attempt:       %[1]s, %[2]s: %[3]s", when, resultText(loc, a.Result), a.Message))
			} else {
				fmt.Fprintln(w, loc.Tr("    Last attempt:       %[1]s, %[2]s", when, resultText(loc, a.Result)))
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, session.ReminderSettingText(loc, st, now))
	fmt.Fprintln(w, session.NextReminderText(loc, r, now))
	fmt.Fprintln(w, loc.Tr("Pairing store: %s", doc.StatePath))
}

// resultText is the result of an update in words; --json keeps the codes.
func resultText(loc *l10n.Locale, r pairing.Result) string {
	switch r {
	case pairing.ResultSuccess:
		return loc.Tr("success")
	case pairing.ResultFailed:
		return loc.Tr("failed")
	case pairing.ResultCancelled:
		return loc.Tr("cancelled")
	case pairing.ResultIncomplete:
		return loc.Tr("incomplete")
	}
	return string(r)
}
