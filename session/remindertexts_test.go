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
		{DaysText(nil, 10*day+time.Hour), "10 days"},
		{DaysText(nil, 25*time.Hour), "1 day"},
		{DaysText(nil, -time.Hour), "less than a day"},
		{InText(nil, 4*day), "in about 4 days"},
		{InText(nil, 5*time.Hour+10*time.Minute), "in about 5 hours"},
		{InText(nil, 70*time.Minute), "in about an hour"},
		{InText(nil, 50*time.Minute), "in about 50 minutes"},
		{InText(nil, 10*time.Second), "in less than a minute"},
		{ReminderSettingText(nil, pairing.NewState(), now), "Reminders: on, when your backup is more than 7 days old (at most one a day)."},
		{ReminderSettingText(nil, snoozed, now), "Reminders: on, when your backup is more than 7 days old (at most one a day). Snoozed until Mon 10 Mar 2025 17:00."},
		{ReminderSettingText(nil, off, now), "Reminders: off."},
		{NextReminderText(nil, Reminder{Due: true, Reason: ReminderDueNow, Age: 9*day + time.Hour}, now), "Next reminder: now, your backup is 9 days old; plug it in to update it."},
		{NextReminderText(nil, Reminder{Reason: ReminderIsBackup}, now), "Next reminder: none, this Tails is itself a backup (its main Tails does the reminding)."},
		{NextReminderText(nil, Reminder{Reason: ReminderNothingPaired}, now), "Next reminder: none until you pair a backup Tails with 'tails-backup pair'."},
		{NextReminderText(nil, Reminder{Reason: ReminderDisabled}, now), "Next reminder: none; turn reminders back on with 'tails-backup reminders on'."},
		{NextReminderText(nil, Reminder{Reason: ReminderFresh, Next: now.Add(3 * day)}, now), "Next reminder: Thu 13 Mar 2025 12:00 (in about 3 days), unless your backup is updated before."},
		{NextReminderText(nil, Reminder{Reason: ReminderStickPresent}, now), "Next reminder: none planned."},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
