package session

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tails-backup/pinentry/pinentrytest"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

func TestPair(t *testing.T) {
	right := []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}}
	for _, tc := range []struct {
		name      string
		yes       bool
		confirm   bool
		paired    bool  // the stick is paired already
		isBackup  bool  // this Tails is a backup
		helperErr error // of the mark
		answers   []pinentrytest.FakeAnswer
		device    string
		err       string // part of the error, "" for none
		marked    bool   // the helper was asked to mark it
		saved     bool   // the pairing is in the store
		said      string
	}{
		{name: "confirmed", confirm: true, answers: right, marked: true, saved: true, said: PairedTextIn(nil)},
		{name: "--yes asks nothing", yes: true, answers: right, marked: true, saved: true, said: PairedTextIn(nil)},
		{name: "not confirmed", answers: right, err: "not confirmed, so nothing was changed"},
		{name: "already paired", paired: true, answers: right, said: "is already paired as the backup of this Tails"},
		{name: "a backup Tails does not pair", isBackup: true, yes: true, err: "this Tails is itself a backup"},
		{name: "passphrase not given", yes: true, err: "the passphrase was not given, so nothing was changed"},
		{name: "the helper refuses", yes: true, answers: right, helperErr: &wire.HelperError{Code: wire.CodeRefused, Message: "no"},
			marked: true, err: "was not paired"},
		{name: "the boot stick", yes: true, device: "/dev/sda", err: "/dev/sda is the stick this Tails is running from"},
		{name: "no such device", yes: true, device: "sdz", err: "there is no device /dev/sdz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFlowWorld(t, udiskstest.StickSpec{})
			if tc.paired {
				w.pair(t, backupUUID)
			}
			own := t.TempDir()
			if tc.isBackup {
				b, _ := (tails.Marker{Format: tails.MarkerFormat, Source: bootUUID, State: tails.StateComplete, Started: flowNow.Add(-time.Hour), Finished: flowNow}).Marshal()
				if err := os.WriteFile(filepath.Join(own, tails.MarkerName), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			helper := &wiretest.FakeHelper{Report: &wire.Report{}, Err: tc.helperErr}
			ui := &fakeUI{confirm: tc.confirm}
			p := &Pair{Connect: w.connect, Boot: testBoot, OwnRoot: own, Store: w.openStore, Helper: helper,
				Asker: &pinentrytest.FakeAsker{Answers: tc.answers}, Now: func() time.Time { return flowNow }, Log: w.log, UI: ui,
				Device: tc.device, Yes: tc.yes}
			err := p.Run(context.Background())
			wantErr(t, err, tc.err)
			if reqs := helper.Requests(); (len(reqs) == 1 && reqs[0].Op == wire.OpMark && reqs[0].Backup == backupUUID) != tc.marked {
				t.Errorf("helper requests %+v, marked %v", reqs, tc.marked)
			}
			if st := w.state(t); st.IsPaired(backupUUID) != (tc.saved || tc.paired) {
				t.Errorf("store %+v", st)
			}
			if tc.said != "" && !strings.Contains(ui.text(), tc.said) {
				t.Errorf("said %q, want %q", ui.text(), tc.said)
			}
			if tc.isBackup && w.connected != 0 {
				t.Error("udisks2 reached for a backup Tails")
			}
			if !tc.yes && !tc.paired && !tc.isBackup && !strings.Contains(ui.text(), "? Pair the Tails stick Kingston DataTraveler") {
				t.Errorf("not asked: %q", ui.text())
			}
			if tc.marked && len(w.fake.CallsOf("Lock")) == 0 {
				t.Error("the stick was not locked again")
			}
			w.released(t)
		})
	}
}
