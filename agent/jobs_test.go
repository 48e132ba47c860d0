package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/dbusapi"
	"tails-backup/internal/logtest"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// straySpec is a Tails stick that is not paired, to pair.
func straySpec() udiskstest.StickSpec {
	return udiskstest.StickSpec{Name: "sdc", Vendor: "Samsung", Model: "BAR Plus", Serial: "STRAY0003",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase, LUKSUUID: strayUUID}
}

// blankSpec is a USB stick with nothing on it, to create a backup on.
func blankSpec() udiskstest.StickSpec {
	return udiskstest.StickSpec{Name: "sdd", Vendor: "Verbatim", Model: "Store n Go", Serial: "BLANK0004",
		Removable: true, ConnectionBus: "usb"}
}

// jobRun is what a job showed through the API, in order.
type jobRun struct {
	signals []dbusapi.Signal // the job's signals, JobFinished last
	names   []string         // their names, repeated Progress signals counted once
	result  dbusapi.Result
}

func (r jobRun) messages() string {
	var b strings.Builder
	for _, s := range r.signals {
		if s.Name == dbusapi.SignalMessage {
			b.WriteString(s.Level + ": " + s.Text + "\n")
		}
	}
	return b.String()
}

// followJob reads the signals of job until it finished and the state changed after it,
// answering each question with answer (nil: a question fails the test).
func followJob(t *testing.T, sigs <-chan dbusapi.Signal, job string, answer func(q dbusapi.Question) string, c *dbusapi.Client) jobRun {
	t.Helper()
	var r jobRun
	timeout := time.After(wait)
	finished := false
	for {
		select {
		case s := <-sigs:
			switch {
			case s.Name == dbusapi.SignalStateChanged:
				if finished {
					return r
				}
				continue
			case s.Job != job:
				continue
			}
			r.signals = append(r.signals, s)
			if len(r.names) == 0 || r.names[len(r.names)-1] != s.Name || s.Name != dbusapi.SignalProgress {
				r.names = append(r.names, s.Name)
			}
			switch s.Name {
			case dbusapi.SignalQuestion:
				if answer == nil {
					t.Fatalf("unexpected question %+v", s.Question)
				}
				if choice := answer(s.Question); choice != "" {
					if err := c.Answer(logtest.Context(t), job, s.Question.ID, choice); err != nil {
						t.Fatalf("answer %s: %v", choice, err)
					}
				}
			case dbusapi.SignalJobFinished:
				r.result, finished = s.Result, true
			}
		case <-timeout:
			t.Fatalf("job %s did not finish within %v (signals %v)", job, wait, r.names)
		}
	}
}

// choiceIDs are the IDs of a question's choices.
func choiceIDs(q dbusapi.Question) []string {
	var ids []string
	for _, c := range q.Choices {
		ids = append(ids, c.ID)
	}
	return ids
}

// checkQuestion checks a question's ID, choices (the safe one first) and destructive choice.
func checkQuestion(t *testing.T, q dbusapi.Question, id string, choices []string, destructive string) {
	t.Helper()
	if q.ID != id || !slices.Equal(choiceIDs(q), choices) || q.Destructive != destructive || q.Title == "" || q.Body == "" {
		t.Errorf("question %+v, want %s with choices %v, destructive %q", q, id, choices, destructive)
	}
}

// noCommand checks that no text tells the person to type a command.
func noCommand(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, "'tails-backup") || strings.Contains(s, "--") || strings.Contains(s, "Ctrl-C") {
			t.Errorf("text for the app names a command: %q", s)
		}
	}
}

// startWithBackup serves w's API, plugs the paired backup in, taken for handled so that no
// update starts on its own, and starts the agent.
func (w *world) startWithBackup() (*dbusapi.Client, <-chan dbusapi.Signal) {
	c, sigs := w.serveAPI()
	plugHandled(w)
	w.start()
	return c, sigs
}

// startWithStick serves w's API, plugs the stick of spec in and starts the agent.
func (w *world) startWithStick(spec udiskstest.StickSpec) (*dbusapi.Client, <-chan dbusapi.Signal, udiskstest.StickPaths) {
	c, sigs := w.serveAPI()
	paths := w.udisks.AddStick(spec)
	w.start()
	return c, sigs, paths
}

// started takes what a method of the API that starts a job returned, and gives the job's ID
// or fails the test: started(t)(c.Verify(ctx, dev)).
func started(t *testing.T) func(job string, err error) string {
	return func(job string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
}

func TestAPIPair(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string // to pair-confirm; "" cancels the job instead
		result string
		text   string
		paired bool
	}{
		{name: "confirmed", answer: choicePair, result: dbusapi.ResultSuccess, text: session.PairedTextIn(nil), paired: true},
		{name: "declined", answer: actCancel, result: dbusapi.ResultCancelled, text: "Not confirmed, so nothing was changed."},
		{name: "cancelled", result: dbusapi.ResultCancelled, text: "nothing was changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			c, sigs, _ := w.startWithStick(straySpec())
			ctx := logtest.Context(t)
			job := started(t)(c.Pair(ctx, "/dev/sdc"))
			if st, err := c.Status(ctx); err != nil || st.Job == nil || st.Job.ID != job || st.Job.Kind != dbusapi.KindPair || st.Job.Device != "/dev/sdc" {
				t.Errorf("status during the pairing: %+v %v", st.Job, err)
			}
			if _, err := c.Verify(ctx, "/dev/sdb"); !dbusapi.IsKind(err, dbusapi.Busy) {
				t.Errorf("Verify during a pairing: %v, want Busy", err)
			}
			run := followJob(t, sigs, job, func(q dbusapi.Question) string {
				checkQuestion(t, q, questionPair, []string{actCancel, choicePair}, choicePair)
				noCommand(t, q.Body)
				if tc.answer == "" {
					if err := c.Cancel(ctx, job); err != nil {
						t.Fatal(err)
					}
				}
				return tc.answer
			}, c)
			want := []string{dbusapi.SignalProgress, dbusapi.SignalQuestion, dbusapi.SignalJobFinished}
			if tc.paired {
				// The sentence that the updates need no passphrase (the key slot added).
				want = []string{dbusapi.SignalProgress, dbusapi.SignalQuestion, dbusapi.SignalMessage, dbusapi.SignalJobFinished}
			}
			if !slices.Equal(run.names, want) {
				t.Errorf("signals %v, want %v", run.names, want)
			}
			r := run.result
			if r.Result != tc.result || !strings.Contains(r.Text, tc.text) {
				t.Errorf("finished %+v, want %s with %q", r, tc.result, tc.text)
			}
			noCommand(t, r.Text)
			reqs := w.helper.Requests()
			if tc.paired {
				if r.Backup != strayUUID || len(reqs) != 2 || reqs[0].Op != wire.OpMark || reqs[0].Backup != strayUUID ||
					reqs[1].Op != wire.OpAddKeySlot || reqs[1].Backup != strayUUID {
					t.Errorf("backup %q, helper requests %+v", r.Backup, reqs)
				}
			} else if len(reqs) != 0 {
				t.Errorf("helper requests %+v, want none", reqs)
			}
			if st := w.state(); st.IsPaired(strayUUID) != tc.paired {
				t.Errorf("paired %v, want %v", st.IsPaired(strayUUID), tc.paired)
			}
			if st, err := c.Status(ctx); err != nil || st.Job != nil {
				t.Errorf("status after the pairing: %+v %v", st.Job, err)
			}
			// The stick just paired is updated at its next plug, as the sentence says.
			time.Sleep(100 * time.Millisecond)
			if n := len(w.helper.Requests()); n != len(reqs) {
				t.Errorf("%d helper requests after the pairing, want none (no update started)", n-len(reqs))
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		c, _ := newWorld(t).startWithBackup()
		ctx := logtest.Context(t)
		if _, err := c.Pair(ctx, "/dev/sdb"); !dbusapi.IsKind(err, dbusapi.Refused) {
			t.Errorf("Pair of the paired backup: %v, want Refused", err)
		}
		if _, err := c.Pair(ctx, "/dev/sdz"); !dbusapi.IsKind(err, dbusapi.NotFound) {
			t.Errorf("Pair of no stick: %v, want NotFound", err)
		}
		if _, err := c.Pair(ctx, "/dev/sda"); !dbusapi.IsKind(err, dbusapi.Refused) {
			t.Errorf("Pair of the boot stick: %v, want Refused", err)
		}
	})
}

// verifyHelper answers the verify with these findings and report.
func verifyHelper(w *world, events []wire.Event, rep wire.Report) {
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		if req.Op != wire.OpVerify {
			return &wire.Report{}, nil
		}
		for _, ev := range events {
			progress(ev)
		}
		return &rep, nil
	}
}

func TestAPIVerify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		device string
		events []wire.Event // the helper's findings
		report wire.Report
		check  func(t *testing.T, w *world, run jobRun)
	}{
		{
			name: "identical", device: "/dev/sdb",
			events: []wire.Event{{Event: wire.EventProgress, Phase: "copy", FilesDone: 5, FilesTotal: 10}},
			report: wire.Report{Features: []string{"PersistentDirectory"}},
			check: func(t *testing.T, w *world, run jobRun) {
				want := []string{dbusapi.SignalProgress, dbusapi.SignalMessage, dbusapi.SignalProgress, dbusapi.SignalMessage, dbusapi.SignalJobFinished}
				if !slices.Equal(run.names, want) {
					t.Errorf("signals %v, want %v", run.names, want)
				}
				r := run.result
				if r.Result != dbusapi.ResultSuccess || r.Text != textVerifyOK || len(r.Differences) != 0 ||
					len(r.Checks) != 1 || r.Checks[0].Name != checkPersistence || !r.Checks[0].OK {
					t.Errorf("finished %+v", r)
				}
				var half bool
				for _, s := range run.signals {
					half = half || (s.Name == dbusapi.SignalProgress && s.Progress.Fraction == 0.5 && s.Progress.Text == "50% done.")
				}
				if !half {
					t.Errorf("no progress at 50%%: %+v", run.signals)
				}
				if m := run.messages(); !strings.Contains(m, "info: Verifying the backup on Kingston DataTraveler") || !strings.Contains(m, "PersistentDirectory") {
					t.Errorf("messages %q", m)
				}
				if reqs := w.helper.Requests(); len(reqs) != 1 || reqs[0].Op != wire.OpVerify || reqs[0].Backup != backupUUID {
					t.Errorf("helper requests %+v", reqs)
				}
				if n := len(w.udisks.CallsOf("Unlock")); n != 1 || len(w.udisks.CallsOf("Lock")) != 1 {
					t.Errorf("unlocked %d times, locked %d times", n, len(w.udisks.CallsOf("Lock")))
				}
			},
		},
		{
			name: "differences", device: "",
			events: []wire.Event{
				{Event: wire.EventProgress, Phase: wire.PhaseChange, Kind: "update", Type: "f", What: []string{"data"}, Path: "Persistent/notes.txt"},
				{Event: wire.EventProgress, Phase: wire.PhaseChange, Kind: "create", Type: "f", Path: "Persistent/new.txt"},
				{Event: wire.EventProgress, Phase: wire.PhaseChange, Kind: "delete", Type: "f", Path: "old.txt"},
				// The helper's English sentence is for the log: the check says the code's sentence.
				{Event: wire.EventProgress, Phase: wire.PhaseProblem, Path: "persistence.conf", Problem: "it is not owned by root",
					Reason: wire.ReasonFindingConfOwner, Args: &wire.Args{Owner: "1000:1000"}},
			},
			report: wire.Report{Created: 1, Updated: 1, Deleted: 1, Problems: 1},
			check: func(t *testing.T, w *world, run jobRun) {
				r := run.result
				wantDiffs := []dbusapi.Difference{
					{Path: "Persistent/notes.txt", Change: diffChanged, Text: "Different on the backup (data): the next update copies this Tails' version."},
					{Path: "Persistent/new.txt", Change: diffMissing, Text: textDiffMissing},
					{Path: "old.txt", Change: diffExtra, Text: textDiffExtra},
				}
				wantChecks := []dbusapi.Check{
					{Name: checkPersistence, OK: false, Text: textCheckRefused},
					{Name: "persistence.conf", OK: false, Text: "It is owned by 1000:1000 instead of tails-persistent-storage, so Tails would disable it and activate no feature."},
				}
				if r.Result != dbusapi.ResultFailed || !slices.Equal(r.Differences, wantDiffs) || !slices.Equal(r.Checks, wantChecks) ||
					!strings.HasPrefix(r.Text, "The backup is not an exact, valid copy: 3 differences, 1 problem.") {
					t.Errorf("finished %+v", r)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			verifyHelper(w, tc.events, tc.report)
			c, sigs := w.startWithBackup()
			job := started(t)(c.Verify(logtest.Context(t), tc.device))
			tc.check(t, w, followJob(t, sigs, job, nil, c))
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		w := newWorld(t)
		w.helper.WaitForCancel = true
		c, sigs := w.startWithBackup()
		ctx := logtest.Context(t)
		job := started(t)(c.Verify(ctx, "/dev/sdb"))
		if _, err := c.UpdateNow(ctx, ""); !dbusapi.IsKind(err, dbusapi.Busy) {
			t.Errorf("UpdateNow during a verify: %v, want Busy", err)
		}
		for len(w.helper.Requests()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := c.Cancel(ctx, job); err != nil {
			t.Fatal(err)
		}
		r := followJob(t, sigs, job, nil, c).result
		if r.Result != dbusapi.ResultCancelled || r.Differences != nil {
			t.Errorf("finished %+v", r)
		}
		noCommand(t, r.Text)
		if n := len(w.udisks.CallsOf("Lock")); n != 1 {
			t.Errorf("locked %d times after the cancel, want 1", n)
		}
	})
	t.Run("not paired", func(t *testing.T) {
		c, _, _ := newWorld(t).startWithStick(straySpec())
		if _, err := c.Verify(logtest.Context(t), "/dev/sdc"); !dbusapi.IsKind(err, dbusapi.Refused) {
			t.Errorf("Verify of a stick not paired: %v, want Refused", err)
		}
	})
}

// restoreWorld is a world whose backup holds a marker naming source, mounted under a folder of
// the test.
func restoreWorld(t *testing.T, source string) *world {
	w := newWorld(t)
	mounts := t.TempDir()
	w.udisks.SetMountRoot(mounts)
	data := filepath.Join(mounts, tails.PersistenceName)
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := (tails.Marker{Format: tails.MarkerFormat, Source: source, State: tails.StateComplete,
		Started: w.clock.Now().Add(-time.Hour), Finished: w.clock.Now().Add(-time.Minute), TailsVersion: "6.9"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, tails.MarkerName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	w.helper.Report = &wire.Report{Created: 3, Updated: 2, Deleted: 1, BytesCopied: 4_200_000}
	return w
}

func TestAPIRestore(t *testing.T) {
	t.Run("this Tails' backup, Thunderbird open", func(t *testing.T) {
		w := restoreWorld(t, bootUUID)
		w.quiescer.Features, w.quiescer.Busy = busyThunderbird()
		c, sigs := w.startWithBackup()
		job := started(t)(c.Restore(logtest.Context(t), "/dev/sdb"))
		var asked []string
		run := followJob(t, sigs, job, func(q dbusapi.Question) string {
			asked = append(asked, q.ID)
			noCommand(t, q.Body)
			switch q.ID {
			case questionRestore:
				checkQuestion(t, q, questionRestore, []string{actCancel, choiceRestore}, choiceRestore)
				if !strings.Contains(q.Body, "was last updated completely") || !strings.Contains(q.Body, "will be deleted") {
					t.Errorf("confirmation body %q", q.Body)
				}
				if st := w.state(); !st.Paused(w.clock.Now()) {
					t.Error("the automatic updates are not paused while the restore asks")
				}
				return choiceRestore
			case "apps-1":
				checkQuestion(t, q, "apps-1", []string{actCancel, actCloseApp, actSkipApp}, "")
				return actSkipApp
			}
			t.Errorf("question %+v", q)
			return actCancel
		}, c)
		if !slices.Equal(asked, []string{questionRestore, "apps-1"}) {
			t.Errorf("asked %v", asked)
		}
		if want := []string{dbusapi.SignalProgress, dbusapi.SignalMessage, dbusapi.SignalProgress, dbusapi.SignalQuestion,
			dbusapi.SignalQuestion, dbusapi.SignalProgress, dbusapi.SignalMessage, dbusapi.SignalMessage, dbusapi.SignalJobFinished}; !slices.Equal(run.names, want) {
			t.Errorf("signals %v, want %v", run.names, want)
		}
		r := run.result
		if r.Result != dbusapi.ResultSuccess || !strings.HasPrefix(r.Text, "Your Persistent Storage is restored: 3 files and folders created, 2 replaced, 1 deleted, 4.2 MB copied.") {
			t.Errorf("finished %+v", r)
		}
		if m := run.messages(); !strings.Contains(m, "The data of Thunderbird Email Client was left as it was.") {
			t.Errorf("messages %q", m)
		}
		if reqs := w.helper.Requests(); len(reqs) != 1 || reqs[0].Op != wire.OpRestore || reqs[0].Source != bootUUID || !slices.Equal(reqs[0].Skip, []string{"thunderbird"}) {
			t.Errorf("helper requests %+v", reqs)
		}
		if st := w.state(); st.Paused(w.clock.Now()) {
			t.Error("the automatic updates stay paused after the restore")
		}
	})
	for _, tc := range []struct {
		name, answer, result string
		restored             bool
	}{
		{"another Tails' backup, confirmed", choiceRestore, dbusapi.ResultSuccess, true},
		{"another Tails' backup, declined", actCancel, dbusapi.ResultCancelled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := restoreWorld(t, otherTails)
			c, sigs := w.startWithBackup()
			job := started(t)(c.Restore(logtest.Context(t), "/dev/sdb"))
			r := followJob(t, sigs, job, func(q dbusapi.Question) string {
				checkQuestion(t, q, questionRestoreOther, []string{actCancel, choiceRestore}, choiceRestore)
				if !strings.Contains(q.Body, "made from another Tails") {
					t.Errorf("body %q", q.Body)
				}
				return tc.answer
			}, c).result
			if r.Result != tc.result {
				t.Errorf("finished %+v, want %s", r, tc.result)
			}
			noCommand(t, r.Text)
			if n := len(w.helper.Requests()); (n == 1) != tc.restored {
				t.Errorf("%d helper requests", n)
			}
		})
	}
	t.Run("cancelled during the copy", func(t *testing.T) {
		w := restoreWorld(t, bootUUID)
		w.helper.WaitForCancel = true
		c, sigs := w.startWithBackup()
		ctx := logtest.Context(t)
		job := started(t)(c.Restore(ctx, "/dev/sdb"))
		r := followJob(t, sigs, job, func(q dbusapi.Question) string {
			go func() {
				for len(w.helper.Requests()) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				if _, err := c.Pair(ctx, "/dev/sdb"); !dbusapi.IsKind(err, dbusapi.Busy) {
					t.Errorf("Pair during a restore: %v, want Busy", err)
				}
				if err := c.Cancel(ctx, job); err != nil {
					t.Error(err)
				}
			}()
			return choiceRestore
		}, c).result
		if r.Result != dbusapi.ResultCancelled || !strings.Contains(r.Text, "did not finish") {
			t.Errorf("finished %+v", r)
		}
		if st := w.state(); st.Paused(w.clock.Now()) {
			t.Error("the automatic updates stay paused after the restore")
		}
	})
}

// otherTails is the Persistent Storage of another Tails, in a backup's marker.
const otherTails = "7a7a7a7a-1111-4111-8111-0000000000aa"

// createHelper answers the operations of a creation; update waits for the cancel when wait.
func createHelper(w *world, wait bool) {
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		switch req.Op {
		case wire.OpRefreshSystem:
			progress(wire.Event{Event: wire.EventProgress, Phase: wire.PhaseSystem, BytesDone: 1, BytesTotal: 4})
			return &wire.Report{SystemVersion: "6.10"}, nil
		case wire.OpUpdate:
			progress(wire.Event{Event: wire.EventProgress, Phase: "copy", BytesDone: 1, BytesTotal: 2})
			if wait {
				<-ctx.Done()
				return nil, &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}
			}
		}
		return &wire.Report{}, nil
	}
}

// createWorld is a world whose pinentry gives answers and whose helper answers a creation
// (createHelper).
func createWorld(t *testing.T, answers []pinentrytest.FakeAnswer, wait bool) *world {
	w := newWorld(t)
	w.asker.Answers = answers
	createHelper(w, wait)
	return w
}

// createTarget lists the sticks for create and returns the one on dev.
func createTarget(t *testing.T, c *dbusapi.Client, dev string) dbusapi.StickInfo {
	t.Helper()
	sticks, err := c.ListSticks(logtest.Context(t), dbusapi.PurposeCreate)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sticks {
		if s.Device == dev {
			return s
		}
	}
	t.Fatalf("no %s in %+v", dev, sticks)
	return dbusapi.StickInfo{}
}

func TestAPICreate(t *testing.T) {
	pass := []pinentrytest.FakeAnswer{{Pass: "new pass"}, {Pass: "new pass"}}
	t.Run("success", func(t *testing.T) {
		w := createWorld(t, pass, false)
		c, sigs, _ := w.startWithStick(blankSpec())
		ctx := logtest.Context(t)
		s := createTarget(t, c, "/dev/sdd")
		if !s.Usable || len(s.Confirm) != 32 || len(s.Erase) != 1 || s.Erase[0] != `Partition 1: 17.2 GB, named "Data", FAT file system labelled "DATA".` {
			t.Fatalf("stick %+v", s)
		}
		// The boot stick is never a target (the paired backup is not plugged in here).
		if o := createTarget(t, c, "/dev/sda"); o.Usable || o.Confirm != "" || o.Reason == "" {
			t.Errorf("the boot stick for create: %+v", o)
		}
		job := started(t)(c.Create(ctx, "/dev/sdd", s.Confirm))
		run := followJob(t, sigs, job, nil, c)
		r := run.result
		if r.Result != dbusapi.ResultSuccess || r.Text != textCreateDone || r.Backup == "" {
			t.Fatalf("finished %+v\n%s", r, run.messages())
		}
		var steps []string
		for _, s := range run.signals {
			if s.Name == dbusapi.SignalProgress && (len(steps) == 0 || steps[len(steps)-1] != s.Progress.Step) {
				steps = append(steps, s.Progress.Step)
			}
		}
		if len(steps) != session.CreateSteps+2 || steps[0] != apiStepCreateIn || steps[1] != apiStepCreatePass ||
			steps[2] != "Step 1 of 8: Erasing Verbatim Store n Go (17.2 GB, /dev/sdd)." || !strings.HasPrefix(steps[9], "Step 8 of 8: Copying your Persistent Storage") {
			t.Errorf("steps %q", steps)
		}
		if m := run.messages(); !strings.Contains(m, "info: Tails 6.10 copied.") {
			t.Errorf("messages %q", m)
		}
		var ops []wire.Op
		for _, r := range w.helper.Requests() {
			ops = append(ops, r.Op)
		}
		if want := []wire.Op{wire.OpCreatePersistence, wire.OpMark, wire.OpRefreshSystem, wire.OpInstallBootloader, wire.OpAddKeySlot, wire.OpUpdate}; !slices.Equal(ops, want) {
			t.Errorf("helper ops %v, want %v", ops, want)
		}
		st := w.state()
		if !st.IsPaired(r.Backup) || st.LastAttempt == nil || st.LastAttempt.Backup != r.Backup {
			t.Errorf("state %+v", st)
		}
		if p := w.asker.Prompts(); len(p) != 2 || !strings.Contains(p[0].Description, "Choose the passphrase") {
			t.Errorf("prompts %+v", p)
		}
	})
	t.Run("the stick changed since it was confirmed", func(t *testing.T) {
		w := newWorld(t)
		c, _, paths := w.startWithStick(blankSpec())
		ctx := logtest.Context(t)
		before := createTarget(t, c, "/dev/sdd")
		if _, err := c.Create(ctx, "/dev/sdd", ""); !dbusapi.IsKind(err, dbusapi.Refused) {
			t.Errorf("Create with no confirm: %v, want Refused", err)
		}
		w.udisks.Set(paths.Disk, "org.freedesktop.UDisks2.Block", "IdType", "vfat")
		deadline := time.Now().Add(wait)
		for createTarget(t, c, "/dev/sdd").Confirm == before.Confirm {
			if time.Now().After(deadline) {
				t.Fatal("the confirm token did not change with the stick")
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, err := c.Create(ctx, "/dev/sdd", before.Confirm)
		if !dbusapi.IsKind(err, dbusapi.Refused) || !strings.Contains(err.Error(), "changed since you confirmed") {
			t.Errorf("Create with the old token: %v, want Refused", err)
		}
		if n := len(w.udisks.CallsOf("Format")); n != 0 {
			t.Errorf("formatted %d times", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		w := createWorld(t, pass, true)
		c, sigs, _ := w.startWithStick(blankSpec())
		ctx := logtest.Context(t)
		job := started(t)(c.Create(ctx, "/dev/sdd", createTarget(t, c, "/dev/sdd").Confirm))
		for s := nextSignal(t, sigs, job, dbusapi.SignalProgress); !strings.HasPrefix(s.Progress.Step, "Step 8 of 8"); s = nextSignal(t, sigs, job, dbusapi.SignalProgress) {
		}
		if _, err := c.Create(ctx, "/dev/sdd", "x"); !dbusapi.IsKind(err, dbusapi.Busy) {
			t.Errorf("Create during a creation: %v, want Busy", err)
		}
		if err := c.Cancel(ctx, job); err != nil {
			t.Fatal(err)
		}
		r := followJob(t, sigs, job, nil, c).result
		if r.Result != dbusapi.ResultCancelled || !strings.Contains(r.Text, "is not finished") || r.Backup != "" {
			t.Errorf("finished %+v", r)
		}
		noCommand(t, r.Text)
		if st := w.state(); len(st.Backups) != 1 {
			t.Errorf("paired backups %+v, want the old one only", st.Backups)
		}
	})
	t.Run("passphrase not given", func(t *testing.T) {
		w := createWorld(t, nil, false)
		c, sigs, _ := w.startWithStick(blankSpec())
		job := started(t)(c.Create(logtest.Context(t), "/dev/sdd", createTarget(t, c, "/dev/sdd").Confirm))
		r := followJob(t, sigs, job, nil, c).result
		if r.Result != dbusapi.ResultCancelled || r.Text != "The passphrase was not given, so nothing was changed." {
			t.Errorf("finished %+v", r)
		}
		if n := len(w.udisks.CallsOf("Format")); n != 0 {
			t.Errorf("formatted %d times", n)
		}
	})
}

func TestAppText(t *testing.T) {
	// The flows the agent runs word their texts for the app (their App field; session's
	// tests): appText only makes them sentences.
	for _, tc := range []struct{ in, want string }{
		{"not confirmed, so nothing was changed", "Not confirmed, so nothing was changed."},
		{"Kingston was unplugged; plug it in again and try again", "Kingston was unplugged; plug it in again and try again."},
		{"Plug in your backup Tails now.", "Plug in your backup Tails now."},
		{"Ready?", "Ready?"},
		{"échec, donc rien n'a été changé", "Échec, donc rien n'a été changé."},
	} {
		if got := appText(tc.in); got != tc.want {
			t.Errorf("appText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
