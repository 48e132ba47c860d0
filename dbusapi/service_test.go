package dbusapi_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"tails-backup/dbusapi"
	"tails-backup/dbusapi/dbusapitest"
	"tails-backup/internal/logtest"
)

// step is the pace of the fake's jobs in these tests.
const step = 5 * time.Millisecond

func serveFake(t *testing.T, scenario string) (*dbusapitest.Fake, *dbusapitest.Served) {
	t.Helper()
	log, _ := logtest.New(t)
	fake, err := dbusapitest.NewFake(scenario, step)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if st, _ := fake.Status(ctx); st.Job != nil {
			_ = fake.Cancel(ctx, st.Job.ID)
		}
		_ = fake.Wait(ctx)
	})
	return fake, dbusapitest.Serve(t, logtest.Context(t), fake, &fake.Events, log)
}

func signals(t *testing.T, s *dbusapitest.Served) <-chan dbusapi.Signal {
	t.Helper()
	ch, err := s.Client.Signals(logtest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// next returns the next signal of job (or StateChanged) named one of names, failing on JobFinished
// when it is not among them.
func next(t *testing.T, ch <-chan dbusapi.Signal, job string, names ...string) dbusapi.Signal {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				t.Fatalf("signals ended while waiting for %v", names)
			}
			if s.Name != dbusapi.SignalStateChanged && s.Job != job {
				continue
			}
			if slices.Contains(names, s.Name) {
				return s
			}
			if s.Name == dbusapi.SignalJobFinished {
				t.Fatalf("job %s finished (%s: %s) while waiting for %v", job, s.Result.Result, s.Result.Text, names)
			}
		case <-timeout:
			t.Fatalf("no %v signal of job %q within 20 s", names, job)
		}
	}
}

func TestIntrospection(t *testing.T) {
	_, s := serveFake(t, "first-run")
	ctx := logtest.Context(t)
	xml, err := s.Client.Introspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if xml != dbusapi.IntrospectXML {
		t.Fatalf("Introspect returned other data than the embedded XML:\n%s", xml)
	}
	var node introspect.Node
	obj := s.Conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
	n, err := introspect.Call(obj)
	if err != nil {
		t.Fatal(err)
	}
	node = *n
	var iface *introspect.Interface
	for i := range node.Interfaces {
		if node.Interfaces[i].Name == dbusapi.Interface {
			iface = &node.Interfaces[i]
		}
	}
	if iface == nil {
		t.Fatalf("no interface %s in the introspection data", dbusapi.Interface)
	}
	// Every method the data declares is served, with the declared signature: a call with
	// zero values of the in-arguments gets an answer of the API (or one of its errors), never
	// UnknownMethod nor InvalidArgs.
	backend := reflect.TypeFor[dbusapi.Backend]()
	for _, m := range iface.Methods {
		var args []any
		for _, a := range m.Args {
			if a.Direction != "in" {
				continue
			}
			sig, err := dbus.ParseSignature(a.Type)
			if err != nil {
				t.Fatalf("%s: argument %s: %v", m.Name, a.Name, err)
			}
			args = append(args, reflect.Zero(reflect.TypeOf(sigZero(t, sig))).Interface())
		}
		call := obj.CallWithContext(ctx, dbusapi.Interface+"."+m.Name, 0, args...)
		if call.Err != nil {
			var de dbus.Error
			if !errors.As(call.Err, &de) || !strings.HasPrefix(de.Name, dbusapi.ErrorPrefix) {
				t.Errorf("%s%v: %v", m.Name, args, call.Err)
			}
		}
		name := m.Name
		if name == "GetStatus" {
			name = "Status"
		}
		if _, ok := backend.MethodByName(name); !ok {
			t.Errorf("method %s has no Backend method %s", m.Name, name)
		}
	}
	if len(iface.Methods) != backend.NumMethod() {
		t.Errorf("the introspection data has %d methods, Backend %d", len(iface.Methods), backend.NumMethod())
	}
	var sigNames []string
	for _, sg := range iface.Signals {
		sigNames = append(sigNames, sg.Name)
	}
	want := []string{dbusapi.SignalStateChanged, dbusapi.SignalProgress, dbusapi.SignalMessage, dbusapi.SignalQuestion, dbusapi.SignalJobFinished}
	if !slices.Equal(sigNames, want) {
		t.Errorf("signals %v, want %v", sigNames, want)
	}
}

func sigZero(t *testing.T, sig dbus.Signature) any {
	t.Helper()
	switch sig.String() {
	case "s":
		return ""
	case "b":
		return false
	case "u":
		return uint32(0)
	}
	t.Fatalf("no zero value for signature %s", sig)
	return nil
}

// TestRecordKeys checks the exact keys and types of the records docs/dbus-api.md promises the app.
func TestRecordKeys(t *testing.T) {
	_, s := serveFake(t, "updating")
	ctx := logtest.Context(t)
	obj := s.Conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
	var status map[string]dbus.Variant
	if err := obj.CallWithContext(ctx, dbusapi.Interface+".GetStatus", 0).Store(&status); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "status", status, map[string]string{
		"is_backup": "b", "persistent_storage": "b", "backups": "aa{sv}", "reminders_enabled": "b",
		"reminder_period_days": "u", "snoozed_until": "x", "next_reminder": "x", "reminder_text": "s",
		"paused": "b", "paused_text": "s", "job": "a{sv}",
	})
	var backups []map[string]dbus.Variant
	if err := status["backups"].Store(&backups); err != nil || len(backups) != 1 {
		t.Fatalf("backups: %v %v", backups, err)
	}
	checkKeys(t, "backup", backups[0], map[string]string{
		"uuid": "s", "name": "s", "paired": "x", "last_success": "x", "last_attempt": "x",
		"last_result": "s", "last_message": "s", "age_text": "s", "plugged": "b", "device": "s",
		"passphrase_free": "b", "passphrase_free_next": "b",
	})
	var job map[string]dbus.Variant
	if err := status["job"].Store(&job); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "job", job, map[string]string{
		"id": "s", "kind": "s", "backup": "s", "device": "s", "automatic": "b",
		"fraction": "d", "text": "s", "step": "s", "seconds_left": "x", "cancellable": "b", "waiting_for_stick": "b",
	})
	var sticks []map[string]dbus.Variant
	if err := obj.CallWithContext(ctx, dbusapi.Interface+".ListSticks", 0, "create").Store(&sticks); err != nil {
		t.Fatal(err)
	}
	if len(sticks) == 0 {
		t.Fatal("no stick for create")
	}
	checkKeys(t, "unusable stick", sticks[0], map[string]string{
		"device": "s", "name": "s", "size": "t", "size_text": "s", "usable": "b", "reason": "s",
		"paired": "b", "backup_of_this": "b",
	})
	_, first := serveFake(t, "first-run")
	sticks2, err := first.Client.ListSticks(ctx, dbusapi.PurposeCreate)
	if err != nil {
		t.Fatal(err)
	}
	if !sticks2[0].Usable {
		t.Fatalf("first-run: the first stick for create is not usable: %+v", sticks2[0])
	}
	obj = first.Conn.Object(dbusapi.BusName, dbusapi.ObjectPath)
	if err := obj.CallWithContext(ctx, dbusapi.Interface+".ListSticks", 0, "create").Store(&sticks); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "usable stick for create", sticks[0], map[string]string{
		"device": "s", "name": "s", "size": "t", "size_text": "s", "usable": "b",
		"paired": "b", "backup_of_this": "b", "erase": "as", "confirm": "s",
	})
}

func checkKeys(t *testing.T, what string, d map[string]dbus.Variant, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for k, v := range d {
		got[k] = v.Signature().String()
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s keys:\n got %v\nwant %v", what, got, want)
	}
}

func TestStatusRoundTrip(t *testing.T) {
	for _, sc := range dbusapitest.ScenarioNames() {
		t.Run(sc, func(t *testing.T) {
			fake, s := serveFake(t, sc)
			ctx := logtest.Context(t)
			got, err := s.Client.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fake.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want.Job != nil && (got.Job == nil || got.Job.Progress == nil) {
				t.Fatalf("job %+v not in the status %+v", want.Job, got)
			}
			if want.Job != nil {
				// The job moves on between the two calls.
				got.Job.Progress, want.Job.Progress = nil, nil
			}
			if !reflect.DeepEqual(normal(got), normal(want)) {
				t.Errorf("status through the bus:\n got %+v\nwant %+v", got, want)
			}
			for _, purpose := range []string{"create", "pair", "restore", "verify"} {
				got, err := s.Client.ListSticks(ctx, purpose)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := fake.ListSticks(ctx, purpose)
				if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
					t.Errorf("ListSticks(%s):\n got %+v\nwant %+v", purpose, got, want)
				}
			}
		})
	}
}

// normal drops the monotonic clock and location of times so that they compare.
func normal(s dbusapi.Status) dbusapi.Status {
	n := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return time.Unix(t.Unix(), 0)
	}
	s.SnoozedUntil, s.NextReminder = n(s.SnoozedUntil), n(s.NextReminder)
	bs := slices.Clone(s.Backups)
	for i := range bs {
		bs[i].Paired, bs[i].LastSuccess, bs[i].LastAttempt = n(bs[i].Paired), n(bs[i].LastSuccess), n(bs[i].LastAttempt)
	}
	s.Backups = bs
	return s
}

func TestUpdateNowJourney(t *testing.T) {
	tests := []struct {
		answer     string
		wantResult string
		wantWarn   bool
	}{
		{dbusapitest.ChoiceClose, dbusapi.ResultSuccess, false},
		{dbusapitest.ChoiceSkip, dbusapi.ResultSuccess, true},
		{dbusapitest.ChoiceCancel, dbusapi.ResultCancelled, false},
	}
	for _, tc := range tests {
		t.Run(tc.answer, func(t *testing.T) {
			_, s := serveFake(t, "plugged")
			ctx := logtest.Context(t)
			ch := signals(t, s)
			job, err := s.Client.UpdateNow(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			next(t, ch, job, dbusapi.SignalStateChanged)
			st, err := s.Client.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Job == nil || st.Job.ID != job || st.Job.Kind != dbusapi.KindUpdate || st.Job.Backup != dbusapitest.BackupUUID || st.Job.Automatic {
				t.Fatalf("status job %+v, want the update %s", st.Job, job)
			}
			q := next(t, ch, job, dbusapi.SignalQuestion).Question
			if q.ID != dbusapitest.QuestionApps || len(q.Choices) != 3 || q.Choices[0].ID != dbusapitest.ChoiceCancel || q.Title == "" {
				t.Fatalf("question %+v", q)
			}
			if err := s.Client.Answer(ctx, job, q.ID, tc.answer); err != nil {
				t.Fatal(err)
			}
			var progress []float64
			warned := false
			for {
				sg := next(t, ch, job, dbusapi.SignalProgress, dbusapi.SignalMessage, dbusapi.SignalJobFinished)
				if sg.Name == dbusapi.SignalMessage {
					warned = warned || sg.Level == dbusapi.LevelWarning
					continue
				}
				if sg.Name == dbusapi.SignalProgress {
					progress = append(progress, sg.Progress.Fraction)
					continue
				}
				if sg.Result.Result != tc.wantResult || sg.Result.Text == "" {
					t.Fatalf("job finished %+v, want %s", sg.Result, tc.wantResult)
				}
				break
			}
			if warned != tc.wantWarn {
				t.Errorf("warning message %v, want %v", warned, tc.wantWarn)
			}
			if tc.wantResult == dbusapi.ResultSuccess && (len(progress) < 2 || progress[len(progress)-1] != 1) {
				t.Errorf("progress %v, want it to reach 1", progress)
			}
			next(t, ch, job, dbusapi.SignalStateChanged)
			st, err = s.Client.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Job != nil {
				t.Errorf("a job still in the status after it finished: %+v", st.Job)
			}
			if updated := st.Backups[0].LastResult == "success" && time.Since(st.Backups[0].LastSuccess) < time.Hour; updated != (tc.wantResult == dbusapi.ResultSuccess) {
				t.Errorf("backup after the update: %+v", st.Backups[0])
			}
		})
	}
}

func TestCancelAndBusy(t *testing.T) {
	_, s := serveFake(t, "plugged")
	ctx := logtest.Context(t)
	ch := signals(t, s)
	job, err := s.Client.UpdateNow(ctx, dbusapitest.BackupUUID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.UpdateNow(ctx, ""); !dbusapi.IsKind(err, dbusapi.Busy) {
		t.Errorf("second UpdateNow: %v, want Busy", err)
	}
	if _, err := s.Client.Verify(ctx, dbusapitest.BackupDevice); !dbusapi.IsKind(err, dbusapi.Busy) {
		t.Errorf("Verify during an update: %v, want Busy", err)
	}
	next(t, ch, job, dbusapi.SignalQuestion)
	if err := s.Client.Cancel(ctx, job); err != nil {
		t.Fatal(err)
	}
	if r := next(t, ch, job, dbusapi.SignalJobFinished).Result; r.Result != dbusapi.ResultCancelled {
		t.Errorf("cancelled job finished %+v", r)
	}
	if err := s.Client.Cancel(ctx, job); !dbusapi.IsKind(err, dbusapi.NotFound) {
		t.Errorf("Cancel of a finished job: %v, want NotFound", err)
	}
}

// failing is a Backend whose Status fails with an error of no kind.
type failing struct{ dbusapi.Backend }

func (failing) Status(context.Context) (dbusapi.Status, error) {
	return dbusapi.Status{}, errors.New("read state.json: input/output error")
}

func TestErrors(t *testing.T) {
	fake, s := serveFake(t, "paired")
	ctx := logtest.Context(t)
	tests := []struct {
		name string
		call func() error
		want dbusapi.ErrorKind
	}{
		{"UpdateNow not plugged", func() error { _, err := s.Client.UpdateNow(ctx, ""); return err }, dbusapi.NotFound},
		{"Pair no stick", func() error { _, err := s.Client.Pair(ctx, "/dev/sdz"); return err }, dbusapi.NotFound},
		{"ListSticks bad purpose", func() error { _, err := s.Client.ListSticks(ctx, "format"); return err }, dbusapi.Refused},
		{"SetReminders 91 days", func() error { return s.Client.SetReminders(ctx, true, 91) }, dbusapi.Refused},
		{"Promote on a main Tails", func() error { _, err := s.Client.Promote(ctx); return err }, dbusapi.Refused},
		{"Answer nothing asked", func() error { return s.Client.Answer(ctx, "update-1", "apps", "close") }, dbusapi.NotFound},
		{"Cancel no job", func() error { return s.Client.Cancel(ctx, "update-9") }, dbusapi.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *dbusapi.Error
			if !errors.As(err, &e) || e.Kind != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
			if !strings.HasSuffix(e.Text, ".") || len(e.Text) < 20 {
				t.Errorf("error text %q is not a sentence", e.Text)
			}
		})
	}
	t.Run("Failed", func(t *testing.T) {
		log, _ := logtest.New(t)
		bad := dbusapitest.Serve(t, ctx, failing{fake}, &dbusapi.Relay{}, log)
		_, err := bad.Client.Status(ctx)
		var e *dbusapi.Error
		if !errors.As(err, &e) || e.Kind != dbusapi.Failed || !strings.Contains(e.Text, "input/output error") {
			t.Fatalf("error %v, want Failed with the cause", err)
		}
	})
}

func TestCreateConfirm(t *testing.T) {
	_, s := serveFake(t, "first-run")
	ctx := logtest.Context(t)
	sticks, err := s.Client.ListSticks(ctx, dbusapi.PurposeCreate)
	if err != nil {
		t.Fatal(err)
	}
	var blank, small dbusapi.StickInfo
	for _, st := range sticks {
		if st.Usable {
			blank = st
		} else {
			small = st
		}
	}
	if blank.Confirm == "" || len(blank.Erase) == 0 || small.Reason == "" {
		t.Fatalf("sticks %+v", sticks)
	}
	if _, err := s.Client.Create(ctx, small.Device, ""); !dbusapi.IsKind(err, dbusapi.Refused) || !strings.Contains(err.Error(), small.Reason) {
		t.Errorf("Create on the small stick: %v, want Refused with its reason", err)
	}
	if _, err := s.Client.Create(ctx, blank.Device, "other"); !dbusapi.IsKind(err, dbusapi.Refused) {
		t.Errorf("Create with a wrong token: %v, want Refused", err)
	}
	ch := signals(t, s)
	job, err := s.Client.Create(ctx, blank.Device, blank.Confirm)
	if err != nil {
		t.Fatal(err)
	}
	r := next(t, ch, job, dbusapi.SignalJobFinished).Result
	if r.Result != dbusapi.ResultSuccess || r.Backup != dbusapitest.NewBackupUUID {
		t.Fatalf("create finished %+v", r)
	}
	st, err := s.Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Backups) != 1 || st.Backups[0].UUID != r.Backup {
		t.Errorf("backups after create: %+v", st.Backups)
	}
	// The new backup is what the sticks say from then on: checked, not created on again.
	for _, tt := range []struct {
		purpose string
		usable  bool
	}{{dbusapi.PurposeVerify, true}, {dbusapi.PurposeRestore, true}, {dbusapi.PurposeCreate, false}, {dbusapi.PurposePair, false}} {
		sticks, err := s.Client.ListSticks(ctx, tt.purpose)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(sticks, func(st dbusapi.StickInfo) bool { return st.Device == blank.Device })
		if i < 0 || sticks[i].Usable != tt.usable || !sticks[i].BackupOfThis || (!tt.usable && sticks[i].Reason == "") {
			t.Errorf("ListSticks(%s) after create: %+v, want %s usable=%v, a backup of this Tails", tt.purpose, sticks, blank.Device, tt.usable)
		}
	}
}

func TestVerifyDetails(t *testing.T) {
	_, s := serveFake(t, "plugged")
	ctx := logtest.Context(t)
	ch := signals(t, s)
	job, err := s.Client.Verify(ctx, dbusapitest.BackupDevice)
	if err != nil {
		t.Fatal(err)
	}
	r := next(t, ch, job, dbusapi.SignalJobFinished).Result
	if len(r.Differences) != 2 || r.Differences[0].Path == "" || r.Differences[0].Change == "" || len(r.Checks) != 2 || !r.Checks[0].OK {
		t.Fatalf("verify result %+v", r)
	}
}

func TestRestoreQuestion(t *testing.T) {
	_, s := serveFake(t, "plugged")
	ctx := logtest.Context(t)
	ch := signals(t, s)
	job, err := s.Client.Restore(ctx, dbusapitest.BackupDevice)
	if err != nil {
		t.Fatal(err)
	}
	q := next(t, ch, job, dbusapi.SignalQuestion).Question
	if q.Destructive != dbusapitest.ChoiceRestore || q.Choices[0].ID != dbusapitest.ChoiceCancel {
		t.Fatalf("restore question %+v", q)
	}
	if err := s.Client.Answer(ctx, job, q.ID, "format"); !dbusapi.IsKind(err, dbusapi.Refused) {
		t.Errorf("an answer that is no choice: %v, want Refused", err)
	}
	if err := s.Client.Answer(ctx, job, q.ID, dbusapitest.ChoiceRestore); err != nil {
		t.Fatal(err)
	}
	if r := next(t, ch, job, dbusapi.SignalJobFinished).Result; r.Result != dbusapi.ResultSuccess {
		t.Fatalf("restore finished %+v", r)
	}
}

func TestNameTaken(t *testing.T) {
	fake, s := serveFake(t, "first-run")
	ctx := logtest.Context(t)
	log, _ := logtest.New(t)
	conn := dbusapitest.Connect(t, s.Bus.Address())
	if _, err := dbusapi.Serve(ctx, conn, fake, log); !errors.Is(err, dbusapi.ErrNameTaken) {
		t.Fatalf("second Serve: %v, want ErrNameTaken", err)
	}
	s.Service.Close()
	svc, err := dbusapi.Serve(ctx, conn, fake, log)
	if err != nil {
		t.Fatalf("Serve after the first one closed: %v", err)
	}
	defer svc.Close()
	if _, err := s.Client.Status(ctx); err != nil {
		t.Errorf("Status from the new service: %v", err)
	}
}

func TestQuestionTimeout(t *testing.T) {
	relay := &dbusapi.Relay{}
	qs := dbusapi.NewQuestions(relay, 10*time.Millisecond)
	got, err := qs.Ask(logtest.Context(t), "job-1", dbusapi.Question{ID: "q", Choices: []dbusapi.Choice{{ID: "safe"}, {ID: "risky"}}})
	if err != nil || got != "safe" {
		t.Fatalf("unanswered question: %q %v, want its first choice", got, err)
	}
	ctx, cancel := context.WithCancel(logtest.Context(t))
	cancel()
	if _, err := dbusapi.NewQuestions(relay, time.Hour).Ask(ctx, "job-1", dbusapi.Question{ID: "q", Choices: []dbusapi.Choice{{ID: "safe"}}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("question of a cancelled job: %v", err)
	}
}

// TestJobsWaitForTheStick: with -plug-after, a Pair, Verify or Restore of no device waits for
// its stick, says so, and goes on once the fake plugs it in; Cancel ends the wait.
func TestJobsWaitForTheStick(t *testing.T) {
	for _, tc := range []struct {
		name, scenario, wait string
		start                func(ctx context.Context, c *dbusapi.Client) (string, error)
		answer               string // the question's answer, "" for none
		result               string
	}{
		{"pair", "first-run", dbusapitest.PlugPairText,
			func(ctx context.Context, c *dbusapi.Client) (string, error) { return c.Pair(ctx, "") }, "", dbusapi.ResultSuccess},
		{"verify", "plugged", dbusapitest.PlugVerifyText,
			func(ctx context.Context, c *dbusapi.Client) (string, error) { return c.Verify(ctx, "") }, "", dbusapi.ResultFailed},
		{"restore", "plugged", dbusapitest.PlugRestoreText,
			func(ctx context.Context, c *dbusapi.Client) (string, error) { return c.Restore(ctx, "") }, dbusapitest.ChoiceRestore, dbusapi.ResultSuccess},
		{"verify", "plugged", dbusapitest.PlugPassphraseFreeText,
			func(ctx context.Context, c *dbusapi.Client) (string, error) {
				return c.SetPassphraseFree(ctx, dbusapitest.BackupUUID, true)
			}, "", dbusapi.ResultSuccess},
	} {
		for _, cancel := range []bool{false, true} {
			name := tc.name + ": plugged in"
			if cancel {
				name = tc.name + ": cancelled"
			}
			t.Run(name, func(t *testing.T) {
				fake, s := serveFake(t, tc.scenario)
				after := 300 * time.Millisecond
				if cancel {
					after = time.Hour
				}
				fake.Unplug(after)
				ctx := logtest.Context(t)
				ch := signals(t, s)
				if sticks, err := s.Client.ListSticks(ctx, tc.name); err != nil || len(sticks) != 0 {
					t.Fatalf("sticks before the plug: %+v %v", sticks, err)
				}
				job, err := tc.start(ctx, s.Client)
				if err != nil {
					t.Fatal(err)
				}
				p := next(t, ch, job, dbusapi.SignalProgress).Progress
				if !p.WaitingForStick || p.Step != tc.wait || p.Text != tc.wait || !p.Cancellable {
					t.Errorf("first progress %+v", p)
				}
				st, err := s.Client.Status(ctx)
				if err != nil || st.Job == nil || st.Job.ID != job || st.Job.Device != "" || st.Job.Progress == nil || !st.Job.Progress.WaitingForStick {
					t.Errorf("status while waiting: %+v %v", st.Job, err)
				}
				if cancel {
					if err := s.Client.Cancel(ctx, job); err != nil {
						t.Fatal(err)
					}
					if r := next(t, ch, job, dbusapi.SignalJobFinished).Result; r.Result != dbusapi.ResultCancelled || r.Text != dbusapitest.PlugCancelled {
						t.Errorf("finished %+v", r)
					}
					return
				}
				names := []string{dbusapi.SignalJobFinished}
				if tc.answer != "" {
					names = append(names, dbusapi.SignalQuestion)
				}
				went := false // a Progress after the wait came
				for {
					sig := next(t, ch, job, append(names, dbusapi.SignalProgress)...)
					switch sig.Name {
					case dbusapi.SignalProgress:
						went = went || !sig.Progress.WaitingForStick
						continue
					case dbusapi.SignalQuestion:
						if err := s.Client.Answer(ctx, job, sig.Question.ID, tc.answer); err != nil {
							t.Fatal(err)
						}
						continue
					}
					if sig.Result.Result != tc.result || !went {
						t.Errorf("finished %+v, want %s after the wait", sig.Result, tc.result)
					}
					break
				}
			})
		}
	}
}

// TestForget: Forget asks its confirmation (what goes, what stays) as a Question; forgotten,
// the backup is gone from the status; the safe answer changes nothing.
func TestForget(t *testing.T) {
	for _, tc := range []struct {
		answer, result string
		backups        int
	}{
		{dbusapitest.ChoiceForget, dbusapi.ResultSuccess, 0},
		{dbusapitest.ChoiceCancel, dbusapi.ResultCancelled, 1},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			_, s := serveFake(t, "paired")
			ctx := logtest.Context(t)
			ch := signals(t, s)
			if _, err := s.Client.Forget(ctx, "00000000-0000-4000-8000-000000000000"); !dbusapi.IsKind(err, dbusapi.NotFound) {
				t.Errorf("Forget of a backup not paired: %v, want NotFound", err)
			}
			if _, err := s.Client.Forget(ctx, ""); !dbusapi.IsKind(err, dbusapi.Refused) {
				t.Errorf("Forget of no backup: %v, want Refused", err)
			}
			job, err := s.Client.Forget(ctx, dbusapitest.BackupUUID)
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.Client.Status(ctx)
			if err != nil || st.Job == nil || st.Job.Kind != dbusapi.KindForget || st.Job.Backup != dbusapitest.BackupUUID {
				t.Fatalf("status job %+v %v, want the forget %s", st.Job, err, job)
			}
			q := next(t, ch, job, dbusapi.SignalQuestion).Question
			if q.ID != dbusapitest.QuestionForget || len(q.Choices) != 2 || q.Choices[0].ID != dbusapitest.ChoiceCancel || q.Destructive != dbusapitest.ChoiceForget ||
				!strings.Contains(q.Body, "key slot") && !strings.Contains(q.Body, "key's slot") || !strings.Contains(q.Body, "stays on it") {
				t.Fatalf("question %+v", q)
			}
			if err := s.Client.Answer(ctx, job, q.ID, tc.answer); err != nil {
				t.Fatal(err)
			}
			r := next(t, ch, job, dbusapi.SignalJobFinished).Result
			if r.Result != tc.result || r.Text == "" {
				t.Fatalf("finished %+v, want %s", r, tc.result)
			}
			next(t, ch, job, dbusapi.SignalStateChanged)
			if st, err = s.Client.Status(ctx); err != nil || len(st.Backups) != tc.backups {
				t.Errorf("backups after the forget: %+v %v, want %d", st.Backups, err, tc.backups)
			}
		})
	}
}

// TestSetPassphraseFree: turning the updates without the passphrase on and then off, the
// backup plugged in, shows in the status' backup; a backup not paired is NotFound.
func TestSetPassphraseFree(t *testing.T) {
	_, s := serveFake(t, "plugged")
	ctx := logtest.Context(t)
	ch := signals(t, s)
	if _, err := s.Client.SetPassphraseFree(ctx, "00000000-0000-4000-8000-000000000000", true); !dbusapi.IsKind(err, dbusapi.NotFound) {
		t.Errorf("SetPassphraseFree of a backup not paired: %v, want NotFound", err)
	}
	for _, on := range []bool{true, false} {
		job, err := s.Client.SetPassphraseFree(ctx, dbusapitest.BackupUUID, on)
		if err != nil {
			t.Fatal(err)
		}
		if p := next(t, ch, job, dbusapi.SignalProgress).Progress; p.WaitingForStick {
			t.Errorf("the job waits for the backup plugged in: %+v", p)
		}
		r := next(t, ch, job, dbusapi.SignalJobFinished).Result
		if r.Result != dbusapi.ResultSuccess || r.Text == "" {
			t.Fatalf("on=%v: finished %+v", on, r)
		}
		next(t, ch, job, dbusapi.SignalStateChanged)
		st, err := s.Client.Status(ctx)
		if err != nil || len(st.Backups) != 1 || st.Backups[0].PassphraseFree != on || st.Backups[0].PassphraseFreeNext {
			t.Errorf("on=%v: backups %+v %v", on, st.Backups, err)
		}
	}
}
