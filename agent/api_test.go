package agent

import (
	"strings"
	"testing"
	"time"

	"tails-backup/dbusapi"
	"tails-backup/dbusapi/dbusapitest"
	"tails-backup/internal/logtest"
	"tails-backup/notify/notifytest"
	"tails-backup/pairing"
	"tails-backup/wire"
)

// serveAPI serves w's agent's API on a private session bus and returns a client of it with
// its signals; call it before w.start.
func (w *world) serveAPI() (*dbusapi.Client, <-chan dbusapi.Signal) {
	w.t.Helper()
	bus := notifytest.StartBus(w.t)
	ctx := logtest.Context(w.t)
	svc, err := w.agent.ServeAPI(ctx, dbusapitest.Connect(w.t, bus.Address()))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(svc.Close)
	c := dbusapi.NewClient(dbusapitest.Connect(w.t, bus.Address()), 10*time.Second)
	sigs, err := c.Signals(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return c, sigs
}

// nextSignal returns the next signal named name (of job, unless StateChanged).
func nextSignal(t *testing.T, ch <-chan dbusapi.Signal, job, name string) dbusapi.Signal {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case s := <-ch:
			if s.Name == name && (name == dbusapi.SignalStateChanged || s.Job == job) {
				return s
			}
			if s.Name == dbusapi.SignalJobFinished && s.Job == job {
				t.Fatalf("job %s finished (%s: %s) while waiting for %s", job, s.Result.Result, s.Result.Text, name)
			}
		case <-timeout:
			t.Fatalf("no %s signal of job %q within %v", name, job, wait)
		}
	}
}

// plugHandled plugs the backup in before the agent starts and makes the agent take it for
// already handled (as after an update while it stays plugged in), so that no update starts
// on its own: the API's UpdateNow starts it.
func plugHandled(w *world) {
	w.plugBackup()
	w.agent.handled[backupUUID] = true
}

func TestAPIStatus(t *testing.T) {
	t.Run("first run", func(t *testing.T) {
		w := newWorld(t, withState(func(s *pairing.State) { *s = pairing.NewState() }))
		c, _ := w.serveAPI()
		w.start()
		st, err := c.Status(logtest.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Backups) != 0 || st.Job != nil || st.IsBackup || !st.PersistentStorage || !st.RemindersEnabled || st.ReminderPeriodDays != 7 {
			t.Errorf("status %+v", st)
		}
		if st.ReminderText != "No reminder until you have a backup Tails." {
			t.Errorf("reminder text %q", st.ReminderText)
		}
	})
	t.Run("paired", func(t *testing.T) {
		w := newWorld(t)
		c, _ := w.serveAPI()
		w.start()
		st, err := c.Status(logtest.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Backups) != 1 {
			t.Fatalf("backups %+v", st.Backups)
		}
		b, now := st.Backups[0], w.clock.Now()
		want := dbusapi.Backup{UUID: backupUUID, Name: "Kingston DataTraveler, 17.2 GB", Paired: now.Add(-24 * time.Hour),
			LastSuccess: now.Add(-24 * time.Hour), LastAttempt: now.Add(-24 * time.Hour), LastResult: "success", AgeText: "Updated 1 day ago"}
		if b.UUID != want.UUID || b.Name != want.Name || !b.Paired.Equal(want.Paired) || !b.LastSuccess.Equal(want.LastSuccess) ||
			!b.LastAttempt.Equal(want.LastAttempt) || b.LastResult != want.LastResult || b.AgeText != want.AgeText || b.Plugged {
			t.Errorf("backup\n got %+v\nwant %+v", b, want)
		}
		if !st.NextReminder.Equal(now.Add(6*24*time.Hour)) || st.ReminderText != "Next reminder in about 6 days, unless your backup is updated before." {
			t.Errorf("next reminder %v %q", st.NextReminder, st.ReminderText)
		}
	})
}

func TestAPIUpdateNow(t *testing.T) {
	w := newWorld(t)
	w.helper.Progress = []wire.Event{{Event: wire.EventProgress, Phase: "copy", BytesDone: 50, BytesTotal: 100}}
	c, sigs := w.serveAPI()
	plugHandled(w)
	w.start()
	ctx := logtest.Context(t)
	// The agent sees the stick on its first look at udisks, after start: until then the status
	// says it is not plugged in (the app reads it again on StateChanged).
	var st dbusapi.Status
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		if st.Backups[0].Plugged || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !st.Backups[0].Plugged || st.Backups[0].Device != "/dev/sdb" || st.Job != nil {
		t.Fatalf("status with the backup plugged in but handled: %+v", st)
	}
	job, err := c.UpdateNow(ctx, backupUUID)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx); err != nil || st.Job == nil || st.Job.ID != job || st.Job.Kind != dbusapi.KindUpdate || st.Job.Automatic || st.Job.Backup != backupUUID {
		t.Errorf("status during the update: %+v %v", st.Job, err)
	}
	var fractions []float64
	for {
		s := <-sigs
		if s.Job != job {
			continue
		}
		if s.Name == dbusapi.SignalProgress {
			fractions = append(fractions, s.Progress.Fraction)
		}
		if s.Name == dbusapi.SignalJobFinished {
			if s.Result.Result != dbusapi.ResultSuccess || !strings.HasPrefix(s.Result.Text, "Backup updated") {
				t.Fatalf("finished %+v", s.Result)
			}
			break
		}
	}
	if len(fractions) < 3 || fractions[0] != -1 || fractions[len(fractions)-1] != 0.5 {
		t.Errorf("progress fractions %v, want -1 (unlocking), 0 (copying), then 0.5", fractions)
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess || !st.LastAttempt.Time.Equal(w.clock.Now()) {
		t.Errorf("last attempt %+v", st.LastAttempt)
	}
	st, err = c.Status(ctx)
	if err != nil || st.Job != nil || st.Backups[0].AgeText != "Updated less than a day ago" {
		t.Errorf("status after the update: %+v %v", st, err)
	}
}

func TestAPICancelAndBusy(t *testing.T) {
	w := newWorld(t)
	w.helper.WaitForCancel = true
	w.helper.Progress = []wire.Event{{Event: wire.EventProgress, Phase: "copy", BytesDone: 10, BytesTotal: 100}}
	c, sigs := w.serveAPI()
	plugHandled(w)
	w.start()
	ctx := logtest.Context(t)
	job, err := c.UpdateNow(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateNow(ctx, ""); !dbusapi.IsKind(err, dbusapi.Busy) {
		t.Errorf("UpdateNow during an update: %v, want Busy", err)
	}
	for s := nextSignal(t, sigs, job, dbusapi.SignalProgress); s.Progress.Fraction != 0.1; s = nextSignal(t, sigs, job, dbusapi.SignalProgress) {
	}
	if err := c.Cancel(ctx, job); err != nil {
		t.Fatal(err)
	}
	if r := nextSignal(t, sigs, job, dbusapi.SignalJobFinished).Result; r.Result != dbusapi.ResultCancelled || !strings.Contains(r.Text, "marked incomplete") {
		t.Errorf("finished %+v", r)
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultIncomplete {
		t.Errorf("last attempt %+v, want incomplete", st.LastAttempt)
	}
	if err := c.Cancel(ctx, job); !dbusapi.IsKind(err, dbusapi.NotFound) {
		t.Errorf("Cancel of a finished job: %v, want NotFound", err)
	}
}

func TestAPIAppQuestion(t *testing.T) {
	w := newWorld(t)
	w.quiescer.Features, w.quiescer.Busy = busyThunderbird()
	c, sigs := w.serveAPI()
	w.start()
	ctx := logtest.Context(t)
	w.plugBackup() // the automatic update
	var job string
	for job == "" {
		s, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Job != nil {
			job = s.Job.ID
			if !s.Job.Automatic {
				t.Errorf("the update on plug is not automatic: %+v", s.Job)
			}
		}
	}
	q := nextSignal(t, sigs, job, dbusapi.SignalQuestion).Question
	if q.Choices[0].ID != actCancel || len(q.Choices) != 3 || !strings.Contains(q.Title, "Thunderbird") {
		t.Fatalf("question %+v", q)
	}
	if err := c.Answer(ctx, job, q.ID, "format"); !dbusapi.IsKind(err, dbusapi.Refused) {
		t.Errorf("an answer that is no choice: %v, want Refused", err)
	}
	if err := c.Answer(ctx, job, q.ID, actSkipApp); err != nil {
		t.Fatal(err)
	}
	if r := nextSignal(t, sigs, job, dbusapi.SignalJobFinished).Result; r.Result != dbusapi.ResultSuccess {
		t.Errorf("finished %+v", r)
	}
	if got := w.helper.Requests(); len(got) != 1 || strings.Join(got[0].Skip, ",") != "thunderbird" {
		t.Errorf("helper requests %+v, want thunderbird skipped", got)
	}
}

func TestAPIReminders(t *testing.T) {
	w := newWorld(t)
	c, sigs := w.serveAPI()
	w.start()
	ctx := logtest.Context(t)
	if _, err := c.UpdateNow(ctx, ""); !dbusapi.IsKind(err, dbusapi.NotFound) {
		t.Fatalf("UpdateNow with nothing plugged: %v, want NotFound", err)
	}
	if err := c.SetReminders(ctx, false, 14); err != nil {
		t.Fatal(err)
	}
	nextSignal(t, sigs, "", dbusapi.SignalStateChanged)
	if st := w.state(); !st.Reminder.Disabled || st.ReminderPeriod() != 14*24*time.Hour {
		t.Errorf("stored reminders %+v", st.Reminder)
	}
	st, err := c.Status(ctx)
	if err != nil || st.RemindersEnabled || st.ReminderPeriodDays != 14 || st.ReminderText != "Reminders are off." {
		t.Errorf("status %+v %v", st, err)
	}
	if err := c.Snooze(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReminders(ctx, true, 0); err != nil {
		t.Fatal(err)
	}
	if st := w.state(); st.Reminder.Disabled || st.ReminderPeriod() != 14*24*time.Hour || !st.Reminder.SnoozedUntil.IsZero() {
		t.Errorf("stored reminders after on: %+v", st.Reminder)
	}
	if err := c.Snooze(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx); err != nil || !st.SnoozedUntil.Equal(w.clock.Now().Add(pairing.SnoozeDuration)) {
		t.Errorf("snoozed until %v %v", st.SnoozedUntil, err)
	}
	if _, err := c.Pair(ctx, "/dev/sdb"); !dbusapi.IsKind(err, dbusapi.NotFound) {
		t.Errorf("Pair with nothing plugged: %v, want NotFound", err)
	}
}
