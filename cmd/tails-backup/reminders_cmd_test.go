package main

import (
	"path/filepath"
	"testing"
	"time"

	"tails-backup/pairing"
)

func TestReminders(t *testing.T) {
	snoozed := pairedState(10)
	snoozed.Snooze(testNow.Add(-time.Hour))
	disabledSnoozed := pairedState(3)
	disabledSnoozed.Reminder.Disabled = true
	disabledSnoozed.Snooze(testNow)
	disabled := pairedState(3)
	disabled.Reminder.Disabled = true
	week := pairedState(1)
	week.Reminder.PeriodSeconds = 14 * 24 * 3600

	tests := []struct {
		name     string
		state    *pairing.State // nil: no store file
		backup   bool           // this Tails is a backup (marker)
		args     []string
		wantCode int
		want     []string
		check    func(t *testing.T, st pairing.State)
	}{
		{name: "status of a fresh store", args: nil, want: []string{
			"Reminders: on, when your backup is more than 7 days old (at most one a day).",
			"Next reminder: none until you pair a backup Tails with 'tails-backup pair'."}},
		{name: "status, backup 3 days old", state: ptr(pairedState(3)), args: []string{"status"}, want: []string{
			"Reminders: on, when your backup is more than 7 days old",
			"Next reminder: Fri 14 Mar 2025 12:00 (in about 4 days), unless your backup is updated before."}},
		{name: "status, period of 14 days", state: &week, args: []string{"status"}, want: []string{
			"more than 14 days old", "Next reminder: Sun 23 Mar 2025 12:00 (in about 13 days)"}},
		{name: "status, backup 10 days old", state: ptr(pairedState(10)), args: []string{"status"}, want: []string{
			"Next reminder: now, your backup is 10 days old; plug it in to update it."}},
		{name: "status, snoozed", state: &snoozed, args: []string{"status"}, want: []string{
			"Snoozed until Tue 11 Mar 2025 11:00.", "Next reminder: Tue 11 Mar 2025 11:00 (in about 23 hours)"}},
		{name: "status on a backup Tails", state: ptr(pairedState(10)), backup: true, args: []string{"status"}, want: []string{
			"Next reminder: none, this Tails is itself a backup"}},
		{name: "off", state: ptr(pairedState(10)), args: []string{"off"}, want: []string{
			"Reminders: off.", "Next reminder: none; turn reminders back on with 'tails-backup reminders on'."},
			check: func(t *testing.T, st pairing.State) {
				if !st.Reminder.Disabled || len(st.Backups) != 1 {
					t.Errorf("state %+v", st)
				}
			}},
		{name: "off without a store", args: []string{"off"}, want: []string{"Reminders: off."},
			check: func(t *testing.T, st pairing.State) {
				if !st.Reminder.Disabled {
					t.Errorf("state %+v", st)
				}
			}},
		{name: "on, after off and snooze", state: &disabledSnoozed, args: []string{"on"}, want: []string{
			"Reminders: on, when your backup is more than 7 days old (at most one a day).",
			"Next reminder: Fri 14 Mar 2025 12:00 (in about 4 days)"},
			check: func(t *testing.T, st pairing.State) {
				if st.Reminder.Disabled || !st.Reminder.SnoozedUntil.IsZero() {
					t.Errorf("state %+v", st.Reminder)
				}
			}},
		{name: "on, already on", state: ptr(pairedState(10)), args: []string{"on"}, want: []string{"Next reminder: now"}},
		{name: "snooze", state: ptr(pairedState(10)), args: []string{"snooze"}, want: []string{
			"Snoozed until Tue 11 Mar 2025 12:00.", "Next reminder: Tue 11 Mar 2025 12:00 (in about 24 hours)"},
			check: func(t *testing.T, st pairing.State) {
				if !st.Reminder.SnoozedUntil.Equal(testNow.Add(24*time.Hour)) || st.Reminder.Disabled {
					t.Errorf("state %+v", st.Reminder)
				}
			}},
		{name: "snooze while off", state: &disabled, args: []string{"snooze"}, want: []string{"Reminders: off."},
			check: func(t *testing.T, st pairing.State) {
				if !st.Reminder.Disabled {
					t.Errorf("state %+v", st.Reminder)
				}
			}},
		{name: "unknown setting", args: []string{"sometimes"}, wantCode: 2},
		{name: "two settings", args: []string{"on", "off"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, dir := testSession(t)
			if tt.backup {
				writeOwnMarker(t, sys, mainUUID)
			}
			state := filepath.Join(dir, "state.json")
			if tt.state != nil {
				saveState(t, state, *tt.state)
			}
			before := readString(t, state)
			code, stdout, _ := runSession(t, "", append([]string{"reminders", "--state", state}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d", code, tt.wantCode)
			}
			wantContains(t, "stdout", stdout, tt.want...)
			if tt.check != nil {
				st, ok := loadStateFile(t, state)
				if !ok {
					t.Fatal("no store written")
				}
				tt.check(t, st)
			} else if readString(t, state) != before && (len(tt.args) == 0 || tt.args[0] == "status" || tt.wantCode != 0) {
				t.Error("status changed the store")
			}
		})
	}
}

// TestRemindersCorruptStore: a damaged store is reported, set aside, and the change applies
// to a fresh one.
func TestRemindersCorruptStore(t *testing.T) {
	_, dir := testSession(t)
	state := filepath.Join(dir, "state.json")
	writeFile(t, state, "{damaged")
	code, stdout, stderr := runSession(t, "", "reminders", "--state", state, "off")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stderr", stderr, "Warning: The pairing store "+state+" was damaged, so it was moved to "+state+".corrupt-20250310T120000Z")
	wantContains(t, "stdout", stdout, "Reminders: off.")
	if st, ok := loadStateFile(t, state); !ok || !st.Reminder.Disabled {
		t.Errorf("store %+v", st)
	}
	if readString(t, state+".corrupt-20250310T120000Z") != "{damaged" {
		t.Error("the damaged store was not kept aside")
	}
}

func ptr[T any](v T) *T { return &v }
