package session

import (
	"context"
	"encoding/json"
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
		keyErr    error // of add-key-slot
		noKeySlot bool
		answers   []pinentrytest.FakeAnswer
		device    string
		err       string // part of the error, "" for none
		marked    bool   // the helper was asked to mark it
		saved     bool   // the pairing is in the store
		said      string
		keySlot   bool // add-key-slot asked, and recorded
	}{
		{name: "confirmed", confirm: true, answers: right, marked: true, saved: true, said: PairedTextIn(nil), keySlot: true},
		{name: "--yes asks nothing", yes: true, answers: right, marked: true, saved: true, said: PairedTextIn(nil), keySlot: true},
		{name: "the key slot is not added: a warning", yes: true, answers: right, marked: true, saved: true,
			keyErr: &wire.HelperError{Code: wire.CodeNoFreeKeySlot, Message: "Every key slot of the Persistent Storage is taken."},
			said:   "warning: Updates will ask for the passphrase of your backup Tails, because the key that opens it without the passphrase could not be added (Every key slot of the Persistent Storage of your backup Tails is taken"},
		{name: "without a key slot", yes: true, answers: right, marked: true, saved: true, said: PairedTextIn(nil), noKeySlot: true},
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
			var secret string // the passphrase the helper got, while it ran
			helper := &wiretest.FakeHelper{Func: func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				if req.Op == wire.OpAddKeySlot {
					if req.Secret != nil {
						secret = string(req.Secret.Passphrase)
					}
					if tc.keyErr != nil {
						return nil, tc.keyErr
					}
					return &wire.Report{KeySlots: []int{1}}, nil
				}
				return &wire.Report{}, tc.helperErr
			}}
			ui := &fakeUI{confirm: tc.confirm}
			p := &Pair{Connect: w.connect, Boot: testBoot, OwnRoot: own, Store: w.openStore, Helper: helper,
				Asker: &pinentrytest.FakeAsker{Answers: tc.answers}, Now: func() time.Time { return flowNow }, Log: w.log, UI: ui,
				Device: tc.device, Yes: tc.yes, NoKeySlot: tc.noKeySlot}
			err := p.Run(context.Background())
			wantErr(t, err, tc.err)
			reqs := helper.Requests()
			if (len(reqs) >= 1 && reqs[0].Op == wire.OpMark && reqs[0].Backup == backupUUID) != tc.marked {
				t.Errorf("helper requests %+v, marked %v", reqs, tc.marked)
			}
			// The key slot is asked after the mark, with the passphrase typed in the secret
			// line alone; the pairing records it only when it was added.
			keyAsked := len(reqs) == 2 && reqs[1].Op == wire.OpAddKeySlot && reqs[1].Backup == backupUUID
			if keyAsked != (tc.marked && tc.helperErr == nil && !tc.noKeySlot) || len(reqs) > 2 {
				t.Errorf("helper requests %+v", reqs)
			}
			if keyAsked {
				if secret != udiskstest.BackupPassphrase {
					t.Errorf("the helper got the secret %q, want the passphrase typed", secret)
				}
				if reqs[1].Secret == nil || strings.Trim(string(reqs[1].Secret.Passphrase), "\x00") != "" {
					t.Errorf("the secret is not wiped after the pairing: %q", reqs[1].Secret.Passphrase)
				}
				if line, _ := json.Marshal(reqs[1]); strings.Contains(string(line), udiskstest.BackupPassphrase) {
					t.Errorf("the passphrase is in the request line: %s", line)
				}
			}
			if strings.Contains(w.logs(), udiskstest.BackupPassphrase) {
				t.Error("the passphrase is in the log")
			}
			st := w.state(t)
			if st.IsPaired(backupUUID) != (tc.saved || tc.paired) {
				t.Errorf("store %+v", st)
			}
			if b := st.Backup(backupUUID); b != nil && b.KeySlot != tc.keySlot {
				t.Errorf("key slot recorded %v, want %v", b.KeySlot, tc.keySlot)
			}
			if said := strings.Contains(ui.text(), KeySlotAddedTextIn(nil)); said != tc.keySlot {
				t.Errorf("said %q: the key slot sentence should be there: %v", ui.text(), tc.keySlot)
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
