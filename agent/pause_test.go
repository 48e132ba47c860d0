package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"tails-backup/pairing"
	"tails-backup/udisks/udiskstest"
)

// The pause of the automatic updates, which 'tails-backup restore' sets in the store while it
// runs: a paired backup plugged in meanwhile is neither unlocked nor updated.

const (
	pausedLog   = "a paired backup is plugged in while a restore runs: not updating it"
	updatingSum = "Updating your backup Tails"
	testOwner   = "restore 4242"
)

// logWatch records the agent's log messages, so that a test can wait for one.
type logWatch struct {
	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func watchLog(w *world) *logWatch {
	l := &logWatch{changed: make(chan struct{}, 1)}
	w.agent.log.Logger.AddHook(l)
	return l
}

func (l *logWatch) Levels() []logrus.Level { return logrus.AllLevels }

func (l *logWatch) Fire(e *logrus.Entry) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, e.Message)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return nil
}

// count is how many times msg was logged.
func (l *logWatch) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// waitCount waits until msg has been logged n times.
func (l *logWatch) waitCount(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.After(wait)
	for l.count(msg) < n {
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("%q logged %d times, want %d", msg, l.count(msg), n)
		}
	}
}

func paused(until time.Duration) worldOpt {
	return func(w *world) {
		withState(func(s *pairing.State) { s.Pause(testOwner, w.clock.Now().Add(until), w.clock.Now()) })(w)
	}
}

// strayStick is a Tails stick that is not paired.
func strayStick() udiskstest.StickSpec {
	spec := backupSpec()
	spec.LUKSUUID, spec.Serial, spec.Name = strayUUID, "STRAY", "sdd"
	return spec
}

// updatesStarted counts the updates that began: each shows its notification once, then
// replaces it.
func (w *world) updatesStarted() int {
	n := 0
	for _, note := range w.notes.Notifications() {
		// The first notification of an update (the copy's progress comes as a new one too).
		if note.Summary == updatingSum && note.ReplacesID == 0 && note.Body == foundNote(nil).Body {
			n++
		}
	}
	return n
}

// checkUntouched: nothing was asked, unlocked, mounted or copied.
func (w *world) checkUntouched() {
	w.t.Helper()
	for _, m := range []string{"Unlock", "Mount", "Lock", "PowerOff"} {
		if n := len(w.udisks.CallsOf(m)); n != 0 {
			w.t.Errorf("udisks %s called %d times during the pause", m, n)
		}
	}
	if n := len(w.asker.Prompts()); n != 0 {
		w.t.Errorf("%d passphrase prompts during the pause", n)
	}
	if reqs := w.helper.Requests(); len(reqs) != 0 {
		w.t.Errorf("helper requests during the pause: %+v", reqs)
	}
	if n := w.updatesStarted(); n != 0 {
		w.t.Errorf("%d updates started during the pause", n)
	}
}

// TestPausedBackupIsNotTouched: present when the agent starts during a pause, a paired backup
// is left alone, with one log line; so is an unpaired Tails stick, whose "not your backup"
// notification would only confuse during a restore. (A stick plugged in while the agent runs:
// TestPauseSeenWithoutRestart.)
func TestPausedBackupIsNotTouched(t *testing.T) {
	w := newWorld(t, paused(2*time.Hour))
	logs := watchLog(w)
	w.udisks.AddStick(strayStick())
	w.plugBackup()
	w.start()
	logs.waitCount(t, pausedLog, 1)
	w.checkUntouched()
	for _, n := range w.notes.Notifications() {
		t.Errorf("notification during the pause: %q", n.Summary)
	}
	if n := logs.count(pausedLog); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
}

// TestPauseSeenWithoutRestart: a pause written while the agent runs is honoured at the next
// plug (the agent reads the store again before it starts an update).
func TestPauseSeenWithoutRestart(t *testing.T) {
	w := newWorld(t)
	logs := watchLog(w)
	w.start()
	// The agent watches udisks once it has told about this unpaired stick.
	w.udisks.AddStick(strayStick())
	w.waitNote("This Tails USB stick is not your backup")
	if _, err := w.store.Update(context.Background(), func(s *pairing.State) error {
		s.Pause(testOwner, w.clock.Now().Add(time.Hour), w.clock.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w.plugBackup()
	logs.waitCount(t, pausedLog, 1)
	w.checkUntouched()
	if n := logs.count(pausedLog); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
}

// TestPauseEndsWhileBackupPlugged: the end of the pause does not start the update of a backup
// still plugged in; unplugging and plugging it in again does.
func TestPauseEndsWhileBackupPlugged(t *testing.T) {
	w := newWorld(t, paused(2*time.Hour))
	logs := watchLog(w)
	backup := w.plugBackup()
	w.start()
	logs.waitCount(t, pausedLog, 1)

	// The restore ends; a stick plugged in after that makes the agent look at every stick
	// again, with the pause over: the unpaired one is told about, the backup left alone.
	withState(func(s *pairing.State) { s.Resume(testOwner) })(w)
	w.udisks.AddStick(strayStick())
	w.waitNote("This Tails USB stick is not your backup")
	w.checkUntouched()

	w.udisks.Unplug(backup.Drive)
	w.plugBackup()
	w.waitNote("Backup updated: you can unplug it")
	// An update started at the end of the pause would have shown its notification and asked
	// the one passphrase the fake has before this one could start.
	if n := w.updatesStarted(); n != 1 {
		t.Errorf("%d updates started, want the one after plugging in again", n)
	}
	if n := len(w.asker.Prompts()); n != 1 {
		t.Errorf("%d passphrase prompts, want 1", n)
	}
	if reqs := w.helper.Requests(); len(reqs) != 1 {
		t.Errorf("helper requests %+v, want one", reqs)
	}
	if n := logs.count(pausedLog); n != 1 {
		t.Errorf("%q logged %d times, want once", pausedLog, n)
	}
}

// TestPauseNotInForce: a pause that has expired (a restore that crashed), or that lies further
// ahead than MaxPause (written under a wrong clock), does not stop the update.
func TestPauseNotInForce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		until time.Duration
	}{
		{"expired", -time.Minute},
		{"ends right now", 0},
		{"beyond MaxPause", pairing.MaxPause + time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, paused(tt.until))
			w.start()
			w.plugBackup()
			w.waitNote("Backup updated: you can unplug it")
			if reqs := w.helper.Requests(); len(reqs) != 1 {
				t.Errorf("helper requests %+v", reqs)
			}
		})
	}
}

// TestUpdateNowDuringPause: "Update now" says that a restore is running (or, when only
// 'tails-backup update' holds the updates off, that update) instead of asking to plug the
// backup in.
func TestUpdateNowDuringPause(t *testing.T) {
	for _, tc := range []struct{ owner, want string }{
		{testOwner, "A restore from your backup is running"},
		{"update 4343", "An update started with 'tails-backup update' is running"},
	} {
		t.Run(tc.owner, func(t *testing.T) { updateNowDuringPause(t, tc.owner, tc.want) })
	}
}

func updateNowDuringPause(t *testing.T, owner, want string) {
	w := newWorld(t, withState(func(s *pairing.State) {
		s.LastSuccess = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		s.Backups[0].LastSuccess = s.LastSuccess
	}))
	withState(func(s *pairing.State) { s.Pause(owner, w.clock.Now().Add(2*time.Hour), w.clock.Now()) })(w)
	w.start()
	r := w.waitNote("days old")
	w.notes.Click(t, r.ID, actUpdateNow)
	n := w.waitNote("Your backup Tails is not updated now")
	if !strings.Contains(n.Body, want) {
		t.Errorf("body %q, want %q", n.Body, want)
	}
	for _, n := range w.notes.Notifications() {
		if n.Summary == waitingNote(nil).Summary {
			t.Error("asked to plug in the backup during the pause")
		}
	}
}

// TestPauseDuringUpdateStopsIt: a restore that starts while an update waits for the user (here:
// asked to close Thunderbird) stops that update before the helper runs: the backup holds the
// data the restore needs.
// 'tails-backup update' pauses the automatic updates the same way, and is named instead.
func TestPauseDuringUpdateStopsIt(t *testing.T) {
	for _, tc := range []struct{ owner, want string }{
		{testOwner, "A restore from your backup Tails started"},
		{"update 4343", "An update started with 'tails-backup update' took over"},
	} {
		t.Run(tc.owner, func(t *testing.T) { pauseDuringUpdateStopsIt(t, tc.owner, tc.want) })
	}
}

func pauseDuringUpdateStopsIt(t *testing.T, owner, want string) {
	w := newWorld(t)
	w.quiescer.Features, w.quiescer.Busy = busyThunderbird()
	w.start()
	w.plugBackup()
	q := w.waitNote("Close Thunderbird?")
	withState(func(s *pairing.State) { s.Pause(owner, w.clock.Now().Add(time.Hour), w.clock.Now()) })(w)
	w.notes.Click(t, q.ID, actSkipApp)
	end := w.waitNote("Backup update stopped")
	if !strings.Contains(end.Body, want) {
		t.Errorf("body %q, want %q", end.Body, want)
	}
	if reqs := w.helper.Requests(); len(reqs) != 0 {
		t.Errorf("the helper ran during the pause: %+v", reqs)
	}
	// Left unlocked and mounted, as the restore may already be using it.
	for _, m := range []string{"Unmount", "Lock", "PowerOff"} {
		if n := len(w.udisks.CallsOf(m)); n != 0 {
			t.Errorf("udisks %s called %d times", m, n)
		}
	}
	st, err := w.store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b := st.Backups[0]; b.LastAttempt == nil || b.LastAttempt.Result != pairing.ResultCancelled {
		t.Errorf("recorded %+v", b)
	}
}
