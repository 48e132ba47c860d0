package session

import (
	"fmt"
	"time"

	"tails-backup/pairing"
)

// The texts that say how old a backup is and when the next reminder comes, for 'status',
// 'reminders' and the app.

// DaysText says how long a time is in whole days: "less than a day", "1 day", "9 days".
func DaysText(d time.Duration) string {
	days := int(max(d, 0) / (24 * time.Hour))
	switch days {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	}
	return fmt.Sprintf("%d days", days)
}

// InText says how far ahead a time is: "in about 3 days", "in about 5 hours".
func InText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "in less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("in about %d minutes", max(int((d+30*time.Second)/time.Minute), 1))
	case d < 36*time.Hour:
		h := int((d + 30*time.Minute) / time.Hour)
		if h == 1 {
			return "in about an hour"
		}
		return fmt.Sprintf("in about %d hours", h)
	}
	return fmt.Sprintf("in about %d days", int((d+12*time.Hour)/(24*time.Hour)))
}

// ReminderSettingText: "Reminders: on, when your backup is more than 7 days old ...".
func ReminderSettingText(st pairing.State, now time.Time) string {
	if st.Reminder.Disabled {
		return "Reminders: off."
	}
	s := fmt.Sprintf("Reminders: on, when your backup is more than %s old (at most one a day).", DaysText(st.ReminderPeriod()))
	if until := st.Reminder.SnoozedUntil; until.After(now) {
		s += fmt.Sprintf(" Snoozed until %s.", TimeText(until, now))
	}
	return s
}

// NextReminderText says when the next reminder comes, and why.
func NextReminderText(r Reminder, now time.Time) string {
	switch r.Reason {
	case ReminderDueNow:
		return fmt.Sprintf("Next reminder: now, your backup is %s old; plug it in to update it.", DaysText(r.Age))
	case ReminderIsBackup:
		return "Next reminder: none, this Tails is itself a backup (its main Tails does the reminding)."
	case ReminderNothingPaired:
		return "Next reminder: none until you pair a backup Tails with 'tails-backup pair'."
	case ReminderDisabled:
		return "Next reminder: none; turn reminders back on with 'tails-backup reminders on'."
	}
	if r.Next.IsZero() {
		return "Next reminder: none planned."
	}
	return fmt.Sprintf("Next reminder: %s (%s), unless your backup is updated before.", TimeText(r.Next, now), InText(r.Next.Sub(now)))
}

// CommandReminder is the agent's reminder decision as a command sees it: no backup plugged in.
func CommandReminder(st pairing.State, now time.Time, mark OwnMarker) Reminder {
	return DecideReminder(ReminderInput{State: st, Now: now, IsBackupTails: mark.IsBackup()})
}

// AgeText says how old a backup is, for the app: "Updated 3 days ago", "Never updated".
func AgeText(lastSuccess, now time.Time) string {
	if lastSuccess.IsZero() {
		return "Never updated"
	}
	switch days := int(max(now.Sub(lastSuccess), 0) / (24 * time.Hour)); days {
	case 0:
		return "Updated less than a day ago"
	case 1:
		return "Updated 1 day ago"
	default:
		return fmt.Sprintf("Updated %d days ago", days)
	}
}

// ReminderStatusText is the app's sentence about the next reminder; unlike NextReminderText it
// never sends the person to a terminal.
func ReminderStatusText(r Reminder, now time.Time) string {
	switch r.Reason {
	case ReminderDueNow:
		return fmt.Sprintf("Your backup is %s old: plug it in to update it.", Plural(r.DaysOld, "day"))
	case ReminderIsBackup:
		return "No reminder: this Tails is itself a backup, its main Tails does the reminding."
	case ReminderNothingPaired:
		return "No reminder until you have a backup Tails."
	case ReminderDisabled:
		return "Reminders are off."
	case ReminderStickPresent:
		return "No reminder while your backup Tails is plugged in."
	}
	if r.Next.IsZero() {
		return "No reminder is planned."
	}
	return fmt.Sprintf("Next reminder %s, unless your backup is updated before.", InText(r.Next.Sub(now)))
}
