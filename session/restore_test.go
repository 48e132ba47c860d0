package session

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"tails-backup/pinentry/pinentrytest"
	"tails-backup/quiesce"
	"tails-backup/quiesce/quiescetest"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

// busyApps: Thunderbird open (the user's), the package manager running (root's).
func busyApps() *quiescetest.FakeQuiescer {
	var thunderbird, apt tails.Feature
	for _, f := range tails.Features() {
		switch f.Source {
		case "thunderbird":
			thunderbird = f
		case "apt":
			apt = f
		}
	}
	return &quiescetest.FakeQuiescer{
		Features: []tails.Feature{thunderbird, apt},
		Busy: []quiesce.BusyApp{
			{App: thunderbird.Apps[0], Feature: thunderbird, PIDs: []int{100}, Closable: true},
			{App: apt.Apps[0], Feature: apt, PIDs: []int{200}, Closable: false},
		},
	}
}

func TestRestore(t *testing.T) {
	right := []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}}
	for _, tc := range []struct {
		name      string
		source    string // the backup marker's source; "" for no marker
		isBackup  bool   // this Tails has a marker
		confirm   bool
		yes       bool
		skipClose bool
		busy      bool
		apps      []AppAnswer
		err       string
		skip      []string // sent to the helper; nil with err: no helper run
		asked     []string
		closed    []string
		helperErr error
	}{
		{name: "this Tails' backup, confirmed", source: bootUUID, confirm: true, skip: []string{}},
		{name: "another Tails' backup, --yes", source: otherUUID, yes: true, skip: []string{}},
		{name: "another Tails' backup, not confirmed", source: otherUUID, err: "type restore to restore from a backup of another Tails"},
		{name: "not confirmed", source: bootUUID, err: "not confirmed, so nothing was changed (answer y to restore"},
		{name: "no marker on the stick", err: "is not a backup made by tails-backup"},
		{name: "this Tails is a backup", isBackup: true, source: bootUUID, yes: true, err: "this Tails is itself a backup Tails"},
		{name: "apps: Thunderbird closed, the package manager's data left", source: bootUUID, yes: true, busy: true,
			apps: []AppAnswer{AppAgain, AppLeave}, asked: []string{"Thunderbird", "The package manager"}, closed: []string{"Thunderbird"}, skip: []string{"apt"}},
		{name: "apps: cancelled", source: bootUUID, yes: true, busy: true, apps: []AppAnswer{AppCancel}, asked: []string{"Thunderbird"},
			err: "cancelled, so nothing was changed"},
		{name: "apps: no answer", source: bootUUID, yes: true, busy: true, asked: []string{"Thunderbird"}, err: "no answer about Thunderbird"},
		{name: "apps: --skip-close", source: bootUUID, yes: true, busy: true, skipClose: true, skip: []string{"thunderbird", "apt"}},
		{name: "the helper fails", source: bootUUID, yes: true, helperErr: &wire.HelperError{Code: wire.CodeRefused, Message: "no"},
			skip: []string{}, err: "the restore from Kingston DataTraveler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFlowWorld(t, udiskstest.StickSpec{})
			mounts := t.TempDir()
			w.fake.SetMountRoot(mounts)
			data := filepath.Join(mounts, tails.PersistenceName)
			if err := os.MkdirAll(data, 0o755); err != nil {
				t.Fatal(err)
			}
			writeMarker := func(dir, source string) {
				b, err := (tails.Marker{Format: tails.MarkerFormat, Source: source, State: tails.StateComplete,
					Started: flowNow.Add(-time.Hour), Finished: flowNow.Add(-time.Minute), TailsVersion: "6.9"}).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, tails.MarkerName), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.source != "" {
				writeMarker(data, tc.source)
			}
			own := t.TempDir()
			if tc.isBackup {
				writeMarker(own, otherUUID)
			}
			q := &quiescetest.FakeQuiescer{}
			if tc.busy {
				q = busyApps()
			}
			helper := &wiretest.FakeHelper{Report: &wire.Report{Created: 2}, Err: tc.helperErr}
			ui := &restoreUI{fakeUI: fakeUI{confirm: tc.confirm}, apps: tc.apps}
			r := &Restore{Connect: w.connect, Boot: testBoot, OwnRoot: own, Store: w.openStore, Helper: helper,
				Asker: &pinentrytest.FakeAsker{Answers: right}, Quiescer: q, Now: func() time.Time { return flowNow }, Log: w.log,
				UI: ui, PlugWait: time.Second, Yes: tc.yes, SkipClose: tc.skipClose}
			done, err := r.Run(context.Background())
			wantErr(t, err, tc.err)
			reqs := helper.Requests()
			if (len(reqs) == 1) != (tc.skip != nil) {
				t.Fatalf("helper requests %+v", reqs)
			}
			if len(reqs) == 1 {
				if r := reqs[0]; r.Op != wire.OpRestore || r.Backup != backupUUID || r.Source != tc.source || !slices.Equal(append([]string{}, r.Skip...), tc.skip) {
					t.Errorf("request %+v", r)
				}
				if !slices.Equal(ui.complete, []bool{tc.helperErr == nil}) {
					t.Errorf("EndProgress %v", ui.complete)
				}
			}
			if tc.err == "" && (done == nil || done.Report.Created != 2) {
				t.Errorf("restored %+v", done)
			}
			if !slices.Equal(ui.asked, tc.asked) || !slices.Equal(q.Closed(), tc.closed) {
				t.Errorf("asked about %q, closed %q", ui.asked, q.Closed())
			}
			if st := w.state(t); st.Paused(flowNow) {
				t.Errorf("the updates stay paused: %+v", st)
			}
			if tc.isBackup && w.connected != 0 {
				t.Error("udisks2 reached for a backup Tails")
			}
			w.released(t)
		})
	}
}

func TestRestoreResult(t *testing.T) {
	for _, tc := range []struct {
		rep  wire.Report
		want string
	}{
		{wire.Report{Created: 3}, ""},
		{wire.Report{ErrorCount: 1}, "1 file could not be restored (listed above); everything else was restored"},
		{wire.Report{Problems: 2}, "everything was restored, but Tails would not accept this Persistent Storage as it is"},
	} {
		wantErr(t, RestoreResultIn(nil, &tc.rep), tc.want)
	}
}
