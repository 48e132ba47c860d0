package session

import (
	"testing"
	"time"

	"tails-backup/pairing"
)

func TestReminderTexts(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	snoozed := pairing.NewState()
	snoozed.Reminder.SnoozedUntil = now.Add(5 * time.Hour)
	off := pairing.NewState()
	off.Reminder.Disabled = true
	for _, tt := range []struct{ got, want string }{
		{DaysText(10*day + time.Hour), "10 days"},
		{DaysText(25 * time.Hour), "1 day"},
		{DaysText(-time.Hour), "less than a day"},
		{InText(4 * day), "in about 4 days"},
		{InText(5*time.Hour + 10*time.Minute), "in about 5 hours"},
		{InText(70 * time.Minute), "in about an hour"},
		{InText(50 * time.Minute), "in about 50 minutes"},
		{InText(10 * time.Second), "in less than a minute"},
		{ReminderSettingText(pairing.NewState(), now), "Reminders: on, when your backup is more than 7 days old (at most one a day)."},
		{ReminderSettingText(snoozed, now), "Reminders: on, when your backup is more than 7 days old (at most one a day). Snoozed until Mon 10 Mar 2025 17:00."},
		{ReminderSettingText(off, now), "Reminders: off."},
		{NextReminderText(Reminder{Due: true, Reason: ReminderDueNow, Age: 9*day + time.Hour}, now), "Next reminder: now, your backup is 9 days old; plug it in to update it."},
		{NextReminderText(Reminder{Reason: ReminderIsBackup}, now), "Next reminder: none, this Tails is itself a backup (its main Tails does the reminding)."},
		{NextReminderText(Reminder{Reason: ReminderNothingPaired}, now), "Next reminder: none until you pair a backup Tails with 'tails-backup pair'."},
		{NextReminderText(Reminder{Reason: ReminderDisabled}, now), "Next reminder: none; turn reminders back on with 'tails-backup reminders on'."},
		{NextReminderText(Reminder{Reason: ReminderFresh, Next: now.Add(3 * day)}, now), "Next reminder: Thu 13 Mar 2025 12:00 (in about 3 days), unless your backup is updated before."},
		{NextReminderText(Reminder{Reason: ReminderStickPresent}, now), "Next reminder: none planned."},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
