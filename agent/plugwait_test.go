package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"tails-backup/dbusapi"
	"tails-backup/internal/logtest"
	"tails-backup/pairing"
	"tails-backup/wire"
)

// plugCase is a job of the app started with no stick plugged in: how to start it, the stick
// it waits for, and what the job asks once it is plugged in.
type plugCase struct {
	name  string
	world func(t *testing.T) *world
	start func(ctx context.Context, c *dbusapi.Client) (string, error)
	texts plugTexts
	plug  func(w *world)
	// answer answers the job's questions once the stick is plugged in (nil: it asks none).
	answer func(q dbusapi.Question) string
	// op is the root helper's operation of the job done.
	op     wire.Op
	backup string // the stick's LUKS UUID
}

func plugCases() []plugCase {
	return []plugCase{
		{
			name:  "pair",
			world: func(t *testing.T) *world { return newWorld(t) },
			start: func(ctx context.Context, c *dbusapi.Client) (string, error) { return c.Pair(ctx, "") },
			texts: plugPair,
			plug:  func(w *world) { w.udisks.AddStick(straySpec()) },
			answer: func(q dbusapi.Question) string {
				return choicePair
			},
			op: wire.OpMark, backup: strayUUID,
		},
		{
			name: "verify",
			world: func(t *testing.T) *world {
				w := newWorld(t)
				verifyHelper(w, nil, wire.Report{})
				return w
			},
			start: func(ctx context.Context, c *dbusapi.Client) (string, error) { return c.Verify(ctx, "") },
			texts: plugVerify,
			plug:  func(w *world) { w.plugBackup() },
			op:    wire.OpVerify, backup: backupUUID,
		},
		{
			name:  "restore",
			world: func(t *testing.T) *world { return restoreWorld(t, bootUUID) },
			start: func(ctx context.Context, c *dbusapi.Client) (string, error) { return c.Restore(ctx, "") },
			texts: plugRestore,
			plug:  func(w *world) { w.plugBackup() },
			answer: func(q dbusapi.Question) string {
				return choiceRestore
			},
			op: wire.OpRestore, backup: backupUUID,
		},
		{
			name: "passphrase-free off",
			world: func(t *testing.T) *world {
				return newWorld(t, withState(func(s *pairing.State) { s.SetKeySlot(backupUUID, true) }))
			},
			start: func(ctx context.Context, c *dbusapi.Client) (string, error) {
				return c.SetPassphraseFree(ctx, backupUUID, false)
			},
			texts: plugPassphraseFree,
			plug:  func(w *world) { w.plugBackup() },
			op:    wire.OpRemoveKeySlot, backup: backupUUID,
		},
	}
}

// startWaiting starts tc's job with no stick plugged in and checks that it waits, saying so
// through its first Progress and the status.
func startWaiting(t *testing.T, tc plugCase) (*world, *dbusapi.Client, <-chan dbusapi.Signal, string) {
	t.Helper()
	w := tc.world(t)
	c, sigs := w.serveAPI()
	w.start()
	ctx := logtest.Context(t)
	job, err := tc.start(ctx, c)
	if err != nil {
		t.Fatalf("start with no stick plugged in: %v", err)
	}
	p := nextSignal(t, sigs, job, dbusapi.SignalProgress).Progress
	if !p.WaitingForStick || p.Step != tc.texts.wait || p.Text != tc.texts.wait || !p.Cancellable {
		t.Errorf("first progress %+v, want waiting for the stick with %q", p, tc.texts.wait)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Job == nil || st.Job.ID != job || st.Job.Device != "" || st.Job.Progress == nil || !st.Job.Progress.WaitingForStick {
		t.Errorf("status while waiting: %+v %v", st.Job, err)
	}
	if _, err := c.UpdateNow(ctx, ""); !dbusapi.IsKind(err, dbusapi.Busy) {
		t.Errorf("UpdateNow while a job waits: %v, want Busy", err)
	}
	return w, c, sigs, job
}

func TestJobsWaitForTheStick(t *testing.T) {
	for _, tc := range plugCases() {
		t.Run(tc.name+": plugged in", func(t *testing.T) {
			w, c, sigs, job := startWaiting(t, tc)
			time.Sleep(50 * time.Millisecond)
			if n := len(w.udisks.CallsOf("Unlock")); n != 0 || len(w.helper.Requests()) != 0 {
				t.Fatalf("%d unlocks, helper requests %+v before the stick was plugged in", n, w.helper.Requests())
			}
			tc.plug(w)
			run := followJob(t, sigs, job, func(q dbusapi.Question) string {
				if tc.answer == nil {
					t.Errorf("unexpected question %+v", q)
					return actCancel
				}
				return tc.answer(q)
			}, c)
			if r := run.result; r.Result != dbusapi.ResultSuccess {
				t.Errorf("finished %+v, want success", r)
			}
			for _, s := range run.signals {
				if s.Name == dbusapi.SignalProgress && s.Progress.WaitingForStick {
					t.Errorf("still waiting after the stick was plugged in: %+v", s.Progress)
				}
			}
			reqs := w.helper.Requests()
			all := len(reqs)
			if tc.op == wire.OpMark && len(reqs) == 2 && reqs[1].Op == wire.OpAddKeySlot && reqs[1].Backup == tc.backup {
				reqs = reqs[:1] // the pairing adds the key slot after the mark
			}
			if len(reqs) != 1 || reqs[0].Op != tc.op || reqs[0].Backup != tc.backup {
				t.Errorf("helper requests %+v, want one %s of %s", reqs, tc.op, tc.backup)
			}
			// The job took the stick: no automatic update follows while it stays plugged in.
			time.Sleep(100 * time.Millisecond)
			if n := len(w.helper.Requests()); n != all {
				t.Errorf("%d helper requests after the job", n-all)
			}
		})
		t.Run(tc.name+": cancelled", func(t *testing.T) {
			w, c, sigs, job := startWaiting(t, tc)
			if err := c.Cancel(logtest.Context(t), job); err != nil {
				t.Fatal(err)
			}
			r := followJob(t, sigs, job, nil, c).result
			if r.Result != dbusapi.ResultCancelled || r.Text != textPlugCancelled {
				t.Errorf("finished %+v, want cancelled with %q", r, textPlugCancelled)
			}
			if st := w.state(); st.IsPaired(strayUUID) || st.Paused(w.clock.Now()) {
				t.Errorf("state changed by the cancelled job: paired stray %v, paused %v", st.IsPaired(strayUUID), st.Paused(w.clock.Now()))
			}
			// Plugged in after the cancel: the job does not come back to life.
			tc.plug(w)
			time.Sleep(100 * time.Millisecond)
			// (The paired backup plugged in is updated, as always.)
			for _, r := range w.helper.Requests() {
				if r.Op == tc.op {
					t.Errorf("the cancelled job ran: %+v", r)
				}
			}
		})
	}
}

func TestJobWaitsTenMinutesAtMost(t *testing.T) {
	tc := plugCases()[1]
	w, c, sigs, job := startWaiting(t, tc)
	w.clock.Advance(DefaultPlugWait - time.Second)
	time.Sleep(50 * time.Millisecond)
	if st, err := c.Status(logtest.Context(t)); err != nil || st.Job == nil {
		t.Fatalf("the job ended before its time: %+v %v", st.Job, err)
	}
	w.clock.Advance(2 * time.Second)
	r := followJob(t, sigs, job, nil, c).result
	want := "Your backup Tails was not plugged in within 10 minutes, so nothing was compared: plug it in, then try again."
	if r.Result != dbusapi.ResultFailed || r.Text != want {
		t.Errorf("finished %+v, want failed with %q", r, want)
	}
	if reqs := w.helper.Requests(); len(reqs) != 0 {
		t.Errorf("helper requests %+v", reqs)
	}
}

func TestWaitingJobRefusesTheWrongStick(t *testing.T) {
	// A pairing waits for a Tails stick: the paired backup plugged in ends it with the reason.
	w, c, sigs, job := startWaiting(t, plugCases()[0])
	w.plugBackup()
	r := followJob(t, sigs, job, nil, c).result
	if r.Result != dbusapi.ResultFailed || r.Text != apiTextAlreadyPaired {
		t.Errorf("finished %+v, want failed with %q", r, apiTextAlreadyPaired)
	}
	noCommand(t, r.Text)

	// A verify waits for the paired backup: another Tails stick plugged in does not end it.
	tc := plugCases()[1]
	w, c, sigs, job = startWaiting(t, tc)
	w.udisks.AddStick(straySpec())
	time.Sleep(100 * time.Millisecond)
	if st, err := c.Status(logtest.Context(t)); err != nil || st.Job == nil || st.Job.ID != job || !st.Job.Progress.WaitingForStick {
		t.Fatalf("status after another stick was plugged in: %+v %v", st.Job, err)
	}
	w.plugBackup()
	if r := followJob(t, sigs, job, nil, c).result; r.Result != dbusapi.ResultSuccess || !strings.Contains(r.Text, "identical") {
		t.Errorf("finished %+v", r)
	}
}
