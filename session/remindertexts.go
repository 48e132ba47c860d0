package session

import (
	"time"

	"tails-backup/l10n"
	"tails-backup/pairing"
)

// The texts that say how old a backup is and when the next reminder comes, for 'status',
// 'reminders' and the app, in the language of loc.

// DaysText says how long a time is in whole days: "less than a day", "1 day", "9 days".
func DaysText(loc *l10n.Locale, d time.Duration) string { return loc.Days(d) }

// InText says how far ahead a time is: "in about 3 days", "in about 5 hours".
func InText(loc *l10n.Locale, d time.Duration) string { return loc.In(d) }

// ReminderSettingText: "Reminders: on, when your backup is more than 7 days old ...".
func ReminderSettingText(loc *l10n.Locale, st pairing.State, now time.Time) string {
	if st.Reminder.Disabled {
		return loc.Tr("Reminders: off.")
	}
	period := st.ReminderPeriod()
	if until := st.Reminder.SnoozedUntil; until.After(now) {
		return loc.Tr("Reminders: on, when your backup is more than %[1]s old (at most one a day). Snoozed until %[2]s.",
			DaysText(loc, period), TimeText(loc, until, now))
	}
	return loc.Tr("Reminders: on, when your backup is more than %s old (at most one a day).", DaysText(loc, period))
}

// NextReminderText says when the next reminder comes, and why.
func NextReminderText(loc *l10n.Locale, r Reminder, now time.Time) string {
	switch r.Reason {
	case ReminderDueNow:
		return loc.Tr("Next reminder: now, your backup is %s old; plug it in to update it.", DaysText(loc, r.Age))
	case ReminderIsBackup:
		return loc.Tr("Next reminder: none, this Tails is itself a backup (its main Tails does the reminding).")
	case ReminderNothingPaired:
		return loc.Tr("Next reminder: none until you pair a backup Tails with 'tails-backup pair'.")
	case ReminderDisabled:
		return loc.Tr("Next reminder: none; turn reminders back on with 'tails-backup reminders on'.")
	}
	if r.Next.IsZero() {
		return loc.Tr("Next reminder: none planned.")
	}
	// TRANSLATORS: %[1]s is a date and time, %[2]s how far ahead it is ("in about 3 days").
	return loc.Tr("Next reminder: %[1]s (%[2]s), unless your backup is updated before.", TimeText(loc, r.Next, now), InText(loc, r.Next.Sub(now)))
}

// CommandReminder is the agent's reminder decision as a command sees it: no backup plugged in.
func CommandReminder(st pairing.State, now time.Time, mark OwnMarker) Reminder {
	return DecideReminder(ReminderInput{State: st, Now: now, IsBackupTails: mark.IsBackup()})
}

// AgeTextIn says how old a backup is, for the app: "Updated 3 days ago", "Never updated".
func AgeTextIn(loc *l10n.Locale, lastSuccess, now time.Time) string {
	if lastSuccess.IsZero() {
		return loc.Tr("Never updated")
	}
	days := int(max(now.Sub(lastSuccess), 0) / (24 * time.Hour))
	if days == 0 {
		return loc.Tr("Updated less than a day ago")
	}
	return loc.TrN("Updated %d day ago", "Updated %d days ago", days, days)
}

// ReminderStatusTextIn is the app's sentence about the next reminder; unlike NextReminderText
// it never sends the person to a terminal.
func ReminderStatusTextIn(loc *l10n.Locale, r Reminder, now time.Time) string {
	switch r.Reason {
	case ReminderDueNow:
		return loc.TrN("Your backup is %d day old: plug it in to update it.", "Your backup is %d days old: plug it in to update it.", r.DaysOld, r.DaysOld)
	case ReminderIsBackup:
		return loc.Tr("No reminder: this Tails is itself a backup, its main Tails does the reminding.")
	case ReminderNothingPaired:
		return loc.Tr("No reminder until you have a backup Tails.")
	case ReminderDisabled:
		return loc.Tr("Reminders are off.")
	case ReminderStickPresent:
		return loc.Tr("No reminder while your backup Tails is plugged in.")
	}
	if r.Next.IsZero() {
		return loc.Tr("No reminder is planned.")
	}
	return loc.Tr("Next reminder %s, unless your backup is updated before.", InText(loc, r.Next.Sub(now)))
}
