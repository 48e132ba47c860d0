package session

import (
	"testing"
	"time"

	"tails-backup/clock/clocktest"
	"tails-backup/pairing"
)

const day = 24 * time.Hour

// t0 is the reminder tests' start; reminderUUID and reminderUUID2 are paired backups.
var t0 = time.Date(2025, 3, 30, 12, 0, 0, 0, time.UTC)

const (
	reminderUUID  = "0b6b6e1e-4f4c-4a77-9a39-5c0e8c9f0a11"
	reminderUUID2 = "7d3f2a44-1c1b-4f0e-8c2a-9e6b1d2c3b4a"
)

func TestDecideReminder(t *testing.T) {
	now := t0
	paired := func(added, success time.Time) pairing.PairedBackup {
		return pairing.PairedBackup{UUID: reminderUUID, Added: added, LastSuccess: success}
	}
	state := func(bs ...pairing.PairedBackup) pairing.State {
		st := pairing.NewState()
		st.Backups = bs
		return st
	}
	old := state(paired(now.Add(-30*day), now.Add(-10*day)))
	with := func(st pairing.State, f func(*pairing.State)) pairing.State {
		st.Backups = append([]pairing.PairedBackup(nil), st.Backups...)
		f(&st)
		return st
	}
	cases := []struct {
		name   string
		in     ReminderInput
		due    bool
		reason ReminderReason
		days   int
		next   time.Time // zero: no timer
	}{
		{"nothing paired", ReminderInput{State: pairing.NewState(), Now: now}, false, ReminderNothingPaired, 0, time.Time{}},
		{"this Tails is a backup", ReminderInput{State: old, Now: now, IsBackupTails: true}, false, ReminderIsBackup, 0, time.Time{}},
		{"is a backup and disabled", ReminderInput{State: with(old, func(s *pairing.State) { s.Reminder.Disabled = true }), Now: now, IsBackupTails: true}, false, ReminderIsBackup, 0, time.Time{}},
		{"disabled", ReminderInput{State: with(old, func(s *pairing.State) { s.Reminder.Disabled = true }), Now: now}, false, ReminderDisabled, 10, time.Time{}},
		{"stick plugged", ReminderInput{State: old, Now: now, StickPresent: true}, false, ReminderStickPresent, 10, time.Time{}},
		{"10 days old", ReminderInput{State: old, Now: now}, true, ReminderDueNow, 10, now.Add(day)},
		{"exactly 7 days", ReminderInput{State: state(paired(now.Add(-30*day), now.Add(-7*day))), Now: now}, true, ReminderDueNow, 7, now.Add(day)},
		{"7 days minus 1ns", ReminderInput{State: state(paired(now.Add(-30*day), now.Add(-7*day+1))), Now: now}, false, ReminderFresh, 6, now.Add(1)},
		{"1 day old", ReminderInput{State: state(paired(now.Add(-30*day), now.Add(-day))), Now: now}, false, ReminderFresh, 1, now.Add(6 * day)},
		{"just updated", ReminderInput{State: state(paired(now.Add(-30*day), now)), Now: now}, false, ReminderFresh, 0, now.Add(7 * day)},
		{"never updated, paired 8 days ago", ReminderInput{State: state(paired(now.Add(-8*day), time.Time{})), Now: now}, true, ReminderDueNow, 8, now.Add(day)},
		{"never updated, paired yesterday", ReminderInput{State: state(paired(now.Add(-day), time.Time{})), Now: now}, false, ReminderFresh, 1, now.Add(6 * day)},
		{"the freshest backup counts", ReminderInput{State: state(
			paired(now.Add(-30*day), now.Add(-20*day)),
			pairing.PairedBackup{UUID: reminderUUID2, Added: now.Add(-30 * day), LastSuccess: now.Add(-2 * day)}), Now: now},
			false, ReminderFresh, 2, now.Add(5 * day)},
		{"a recent pairing counts when never updated", ReminderInput{State: state(
			paired(now.Add(-30*day), now.Add(-20*day)),
			pairing.PairedBackup{UUID: reminderUUID2, Added: now.Add(-3 * day)}), Now: now},
			false, ReminderFresh, 3, now.Add(4 * day)},
		{"snoozed", ReminderInput{State: with(old, func(s *pairing.State) { s.Reminder.SnoozedUntil = now.Add(time.Hour) }), Now: now}, false, ReminderSnoozed, 10, now.Add(time.Hour)},
		{"snooze just expired", ReminderInput{State: with(old, func(s *pairing.State) { s.Reminder.SnoozedUntil = now }), Now: now}, true, ReminderDueNow, 10, now.Add(day)},
		{"snooze of exactly a day", ReminderInput{State: with(old, func(s *pairing.State) { s.Snooze(now) }), Now: now}, false, ReminderSnoozed, 10, now.Add(day)},
		{"snooze too far in the future is ignored", ReminderInput{State: with(old, func(s *pairing.State) { s.Reminder.SnoozedUntil = now.Add(2 * day) }), Now: now}, true, ReminderDueNow, 10, now.Add(day)},
		{"snooze shorter than freshness", ReminderInput{State: with(state(paired(now.Add(-30*day), now.Add(-day))), func(s *pairing.State) { s.Reminder.SnoozedUntil = now.Add(time.Hour) }), Now: now}, false, ReminderFresh, 1, now.Add(6 * day)},
		{"shown 23 hours ago", ReminderInput{State: with(old, func(s *pairing.State) { s.ReminderShown(now.Add(-23 * time.Hour)) }), Now: now}, false, ReminderShownRecently, 10, now.Add(time.Hour)},
		{"shown exactly a day ago", ReminderInput{State: with(old, func(s *pairing.State) { s.ReminderShown(now.Add(-day)) }), Now: now}, true, ReminderDueNow, 10, now.Add(day)},
		{"shown in the future (clock was wrong)", ReminderInput{State: with(old, func(s *pairing.State) { s.ReminderShown(now.Add(5 * day)) }), Now: now}, true, ReminderDueNow, 10, now.Add(day)},
		{"shown recently and snoozed: the later wins", ReminderInput{State: with(old, func(s *pairing.State) {
			s.ReminderShown(now.Add(-time.Hour))
			s.Reminder.SnoozedUntil = now.Add(5 * time.Hour)
		}), Now: now}, false, ReminderShownRecently, 10, now.Add(23 * time.Hour)},
		{"snoozed after shown: the later wins", ReminderInput{State: with(old, func(s *pairing.State) {
			s.ReminderShown(now.Add(-20 * time.Hour))
			s.Reminder.SnoozedUntil = now.Add(5 * time.Hour)
		}), Now: now}, false, ReminderSnoozed, 10, now.Add(5 * time.Hour)},
		{"updated in the future (clock was wrong)", ReminderInput{State: state(paired(now.Add(-30*day), now.Add(3*day))), Now: now}, false, ReminderFresh, 0, now.Add(7 * day)},
		{"custom period of a day", ReminderInput{State: with(state(paired(now.Add(-30*day), now.Add(-25*time.Hour))), func(s *pairing.State) { s.Reminder.PeriodSeconds = 86400 }), Now: now}, true, ReminderDueNow, 1, now.Add(day)},
		{"custom period of 30 days", ReminderInput{State: with(old, func(s *pairing.State) { s.Reminder.PeriodSeconds = 30 * 86400 }), Now: now}, false, ReminderFresh, 10, now.Add(20 * day)},
		{"9.9 days is 9 days old", ReminderInput{State: state(paired(now.Add(-30*day), now.Add(-9*day-21*time.Hour))), Now: now}, true, ReminderDueNow, 9, now.Add(day)},
		// Durations, not calendar days: across the switch to summer time (CET to CEST) seven
		// calendar days at 12:00 are 7 days minus an hour.
		{"daylight saving time is irrelevant", ReminderInput{
			State: state(paired(now.Add(-30*day), time.Date(2025, 3, 23, 12, 0, 0, 0, time.FixedZone("CET", 3600)))),
			Now:   time.Date(2025, 3, 30, 12, 0, 0, 0, time.FixedZone("CEST", 7200))},
			false, ReminderFresh, 6, time.Date(2025, 3, 30, 13, 0, 0, 0, time.FixedZone("CEST", 7200))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := DecideReminder(tc.in)
			if r.Due != tc.due || r.Reason != tc.reason || r.DaysOld != tc.days || !r.Next.Equal(tc.next) {
				t.Errorf("got due=%v reason=%s days=%d next=%v\nwant due=%v reason=%s days=%d next=%v",
					r.Due, r.Reason, r.DaysOld, r.Next, tc.due, tc.reason, tc.days, tc.next)
			}
			if !r.Due && !r.Next.IsZero() && !r.Next.After(tc.in.Now) {
				t.Errorf("not due but next %v is not in the future: the agent would spin", r.Next)
			}
		})
	}
}

// TestReminderSchedule plays a month with the fake clock, as the agent would: sleep until
// Next, show the reminder when due, and see that there is at most one a day, that snoozing
// and an update silence it, and that no decision asks to wake up in the past.
func TestReminderSchedule(t *testing.T) {
	clk := clocktest.NewFakeClock(t0)
	st := pairing.NewState()
	st.Pair(pairing.PairedBackup{UUID: reminderUUID, Added: t0})
	st.RecordAttempt(pairing.Attempt{Time: t0, Backup: reminderUUID, Result: pairing.ResultSuccess})
	var shown []time.Time
	snoozedOnce := false
	for i := 0; i < 100 && clk.Now().Before(t0.Add(30*day)); i++ {
		r := DecideReminder(ReminderInput{State: st, Now: clk.Now()})
		if r.Due {
			shown = append(shown, clk.Now())
			st.ReminderShown(clk.Now())
			if !snoozedOnce {
				snoozedOnce = true
				st.Snooze(clk.Now())
			} else if len(shown) == 4 {
				// The user plugs the backup: updated.
				st.RecordAttempt(pairing.Attempt{Time: clk.Now(), Backup: reminderUUID, Result: pairing.ResultSuccess})
			}
			continue
		}
		if r.Next.IsZero() {
			t.Fatalf("no next check while paired: %+v", r)
		}
		clk.Set(r.Next)
	}
	want := []time.Time{t0.Add(7 * day), t0.Add(8 * day), t0.Add(9 * day), t0.Add(10 * day), t0.Add(17 * day), t0.Add(18 * day)}
	if len(shown) < len(want) {
		t.Fatalf("shown at %v, want %v...", shown, want)
	}
	for i, w := range want {
		if !shown[i].Equal(w) {
			t.Errorf("reminder %d at %v, want %v", i, shown[i], w)
		}
	}
	for i := 1; i < len(shown); i++ {
		if shown[i].Sub(shown[i-1]) < ReminderInterval {
			t.Errorf("two reminders %v apart", shown[i].Sub(shown[i-1]))
		}
	}
}

// FuzzDecideReminder: the reminder policy decides on whatever state the store accepts (the
// state is read from a file in the user's Persistent Storage).
func FuzzDecideReminder(f *testing.F) {
	f.Add([]byte(`{"format":1,"backups":[]}`))
	f.Add([]byte(`{"format":1,"backups":[{"uuid":"` + reminderUUID + `","added":"2025-01-01T00:00:00+14:00"}],"reminder":{"period_seconds":86400}}`))
	f.Add([]byte(`{"format":2,"backups":[],"paused_until":"2025-03-30T14:00:00Z","paused_by":["restore 12"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := pairing.ParseState(data)
		if err != nil {
			return
		}
		_ = DecideReminder(ReminderInput{State: st, Now: t0})
	})
}
