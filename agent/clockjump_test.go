package agent

import (
	"context"
	"strings"
	"tails-backup/internal/logtest"
	"testing"
	"time"
)

const day = 24 * time.Hour

// TestReminderFollowsClockJumps: the reminder timer counts monotonic time, so when the wall
// clock is set (htpdate once Tor is connected, a resume from suspend) the agent must schedule
// the reminder again at once, with no other event: re-armed for the new wall time after a jump
// that stays within the period, shown right after a jump past it.
func TestReminderFollowsClockJumps(t *testing.T) {
	w := newWorld(t) // updated a day ago, the default period of 7 days: due in 6 days
	start := w.clock.Now()
	ctx, cancel := context.WithTimeout(logtest.Context(t), wait)
	defer cancel()
	w.start()
	if err := w.clock.BlockUntilClockWatchers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.clock.BlockUntilNextDeadline(ctx, start.Add(6*day)); err != nil {
		t.Fatalf("the first reminder is not scheduled in 6 days: %v", err)
	}
	steps := []struct {
		name     string
		jump     time.Duration
		note     string    // the reminder shown right after the jump; "" for none
		deadline time.Time // of the reminder timer, re-armed after the jump
	}{
		// The last update now lies in the future: the period counts from now.
		{"back 2 days", -2 * day, "", start.Add(5 * day)},
		{"forward within the period", 5 * day, "", start.Add(6 * day)},
		// 8 days since the update; the next reminder a day after this one.
		{"forward past the period", 4 * day, "Your backup Tails is 8 days old", start.Add(8 * day)},
	}
	reminders := func() int {
		n := 0
		for _, note := range w.notes.Notifications() {
			if strings.Contains(note.Summary, "days old") {
				n++
			}
		}
		return n
	}
	shown := 0
	for _, st := range steps {
		w.clock.Jump(st.jump)
		if st.note != "" {
			w.waitNote(st.note)
			shown++
		}
		// The timer, shifted by the jump, is armed again for the new wall time.
		if err := w.clock.BlockUntilNextDeadline(ctx, st.deadline); err != nil {
			d, _ := w.clock.NextDeadline()
			t.Fatalf("%s: the reminder timer is due at %v, want %v: %v", st.name, d, st.deadline, err)
		}
		if n := reminders(); n != shown {
			t.Fatalf("%s: %d reminders shown, want %d: %+v", st.name, n, shown, w.notes.Notifications())
		}
	}
}
