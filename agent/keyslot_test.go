package agent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/dbusapi"
	"tails-backup/internal/logtest"
	"tails-backup/notify"
	"tails-backup/notify/notifytest"
	"tails-backup/pairing"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/session"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// withKeySlot records that the paired backup has a key slot whose key this Tails keeps: it is
// updated without its passphrase (plugBackupWithKey).
func withKeySlot(s *pairing.State) { s.SetKeySlot(backupUUID, true) }

// plugBackupWithKey plugs the backup in, with w's root helper unlocking it with the key kept for
// it as the real one does (udisks unlocks and mounts it; the fake knows one secret per stick),
// then locking it; its other operations answer w.helper.Report.
func (w *world) plugBackupWithKey() udiskstest.StickPaths {
	luks := make(chan dbus.ObjectPath, 1)
	report := w.helper.Report
	w.helper.Report = nil
	var clear, luksPath dbus.ObjectPath
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		disks := w.agent.deps.Disks
		switch req.Op {
		case wire.OpUnlockWithKey:
			luksPath = <-luks
			var err error
			if clear, _, err = disks.UnlockOrReuse(ctx, luksPath, udiskstest.BackupPassphrase); err != nil {
				return nil, err
			}
			dir, _, err := disks.MountOrReuse(ctx, clear)
			return &wire.Report{Cleartext: string(clear), MountPoint: dir}, err
		case wire.OpLockBackup:
			if err := disks.Unmount(ctx, clear); err != nil {
				return nil, err
			}
			return &wire.Report{}, disks.Lock(ctx, luksPath)
		}
		return report, nil
	}
	stick := w.plugBackup()
	luks <- stick.LUKS
	return stick
}

// TestPlugWithKeyAsksNothing: a backup whose key slot the pairing store records is unlocked by
// the root helper with the kept key when it is plugged in: the update runs and ejects it with
// no passphrase dialog, and its first notification asks for none.
func TestPlugWithKeyAsksNothing(t *testing.T) {
	w := newWorld(t, withState(withKeySlot))
	w.start()
	w.plugBackupWithKey()

	w.waitNote("Backup updated: you can unplug it")
	if n := len(w.asker.Prompts()); n != 0 {
		t.Errorf("the passphrase was asked %d times, want never", n)
	}
	var ops []wire.Op
	for _, r := range w.helper.Requests() {
		ops = append(ops, r.Op)
	}
	if len(ops) != 3 || ops[0] != wire.OpUnlockWithKey || ops[1] != wire.OpUpdate || ops[2] != wire.OpLockBackup {
		t.Errorf("helper ops %v, want unlock-with-key, update, lock-backup", ops)
	}
	for _, m := range []string{"Unlock", "Mount", "Unmount", "Lock", "PowerOff"} {
		if len(w.udisks.CallsOf(m)) != 1 {
			t.Errorf("udisks %s called %d times, want once", m, len(w.udisks.CallsOf(m)))
		}
	}
	found := false
	for _, n := range w.notes.Notifications() {
		if n.Summary == "Updating your backup Tails" && strings.Contains(n.Body, "passphrase") {
			found = found || n.Body == foundKeyNote(nil).Body
			if n.Body == foundNote(nil).Body {
				t.Errorf("the notification asks the passphrase: %q", n.Body)
			}
		}
	}
	if !found {
		t.Errorf("no notification said %q", foundKeyNote(nil).Body)
	}
	st := w.state()
	if b := st.Backup(backupUUID); b == nil || !b.KeySlot {
		t.Errorf("the key slot is no longer recorded: %+v", b)
	}
	w.noPassphraseInLogs()
}

// TestKeySlotOffer: a backup updated with its passphrase and without a key slot is offered
// updates without it, once, by the done notification itself (a sentence and an action: a
// second notification would take the place of the done banner); taken, the next update adds
// the key slot with the passphrase typed for it and says so, and its done notification offers
// nothing.
func TestKeySlotOffer(t *testing.T) {
	w := newWorld(t)
	w.asker.Answers = []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}, {Pass: udiskstest.BackupPassphrase}}
	var secret string
	report := w.helper.Report
	w.helper.Report = nil
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		if req.Op == wire.OpAddKeySlot {
			if req.Secret != nil {
				secret = string(req.Secret.Passphrase)
			}
			return &wire.Report{KeySlots: []int{1}}, nil
		}
		return report, nil
	}
	c, sigs := w.serveAPI()
	w.start()
	w.plugBackup()
	done := w.waitNote(doneSummary)
	var offerNote notify.Notification
	offerKeySlotOn(nil, &offerNote)
	if !slices.Contains(done.ActionKeys(), actKeySlot) || !strings.HasSuffix(done.Body, offerNote.Body) {
		t.Fatalf("the done notification does not carry the offer: %q, actions %v", done.Body, done.ActionKeys())
	}
	// The app's toast says how the update ended, without the button it does not have.
	for s := range sigs {
		if s.Name == dbusapi.SignalJobFinished {
			if s.Result.Result != dbusapi.ResultSuccess || strings.Contains(s.Result.Text, offerNote.Body) {
				t.Errorf("the API's result: %+v, want success without the offer", s.Result)
			}
			break
		}
	}
	_ = c
	time.Sleep(100 * time.Millisecond)
	for _, n := range w.notes.Notifications() {
		if n.Seq > done.Seq {
			t.Errorf("a notification after the done one, in its place: %q", n.Summary)
		}
	}
	st := w.state()
	if b := st.Backup(backupUUID); b == nil || !b.KeySlotOffered || b.KeySlotWanted || b.KeySlot {
		t.Fatalf("after the offer: %+v", b)
	}
	w.notes.Click(t, done.ID, actKeySlot)
	w.waitNote(keySlotWantedNote(nil).Summary)
	st = w.state()
	if b := st.Backup(backupUUID); b == nil || !b.KeySlotWanted {
		t.Fatalf("the offer taken is not recorded: %+v", b)
	}

	w.plugBackup()
	second := w.notes.WaitFor(t, func(n notifytest.Notification) bool {
		return n.Summary == doneSummary && strings.Contains(n.Body, session.KeySlotAddedTextIn(nil)) && n.Seq > done.Seq
	}, wait)
	if slices.Contains(second.ActionKeys(), actKeySlot) || strings.Contains(second.Body, offerNote.Body) {
		t.Errorf("offered again: %q, actions %v", second.Body, second.ActionKeys())
	}
	var ops []wire.Op
	for _, r := range w.helper.Requests() {
		ops = append(ops, r.Op)
	}
	if want := []wire.Op{wire.OpUpdate, wire.OpAddKeySlot, wire.OpUpdate}; !slices.Equal(ops, want) {
		t.Errorf("helper ops %v, want %v", ops, want)
	}
	if secret != udiskstest.BackupPassphrase {
		t.Errorf("add-key-slot got the secret %q, want the passphrase typed", secret)
	}
	st = w.state()
	if b := st.Backup(backupUUID); b == nil || !b.KeySlot || b.KeySlotWanted {
		t.Errorf("after the update that added it: %+v", b)
	}
	offers := 0
	for _, n := range w.notes.Notifications() {
		if slices.Contains(n.ActionKeys(), actKeySlot) {
			offers++
		}
	}
	if offers != 1 {
		t.Errorf("offered %d times, want once", offers)
	}
	w.noPassphraseInLogs()
}

// TestKeySlotOfferOnce: an update with the passphrase after the offer was made (and not
// taken) offers nothing: its done notification has no offer.
func TestKeySlotOfferOnce(t *testing.T) {
	w := newWorld(t, withState(func(s *pairing.State) { s.OfferKeySlot(backupUUID) }))
	w.start()
	w.plugBackup()
	done := w.waitNote(doneSummary)
	if slices.Contains(done.ActionKeys(), actKeySlot) {
		t.Errorf("offered a second time: %q, actions %v", done.Body, done.ActionKeys())
	}
}

// TestAPIForget: Forget asks its confirmation (what goes and what stays) as a Question, then
// runs the command line's flow: the key slot removed when the backup is plugged in, the key
// shredded alone when it is not, the pairing removed; declined, nothing changes.
func TestAPIForget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plugged bool
		answer  string
		result  string
		ops     []wire.Op
	}{
		{name: "plugged in", plugged: true, answer: choiceForget, result: dbusapi.ResultSuccess, ops: []wire.Op{wire.OpRemoveKeySlot}},
		{name: "not plugged in", answer: choiceForget, result: dbusapi.ResultSuccess, ops: []wire.Op{wire.OpForgetKey}},
		{name: "declined", plugged: true, answer: actCancel, result: dbusapi.ResultCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, withState(func(s *pairing.State) { s.SetKeySlot(backupUUID, true) }))
			var c *dbusapi.Client
			var sigs <-chan dbusapi.Signal
			if tc.plugged {
				c, sigs = w.startWithBackup()
			} else {
				c, sigs = w.serveAPI()
				w.start()
			}
			ctx := logtest.Context(t)
			if _, err := c.Forget(ctx, strayUUID); !dbusapi.IsKind(err, dbusapi.NotFound) {
				t.Errorf("Forget of a backup not paired: %v, want NotFound", err)
			}
			job := started(t)(c.Forget(ctx, backupUUID))
			if st, err := c.Status(ctx); err != nil || st.Job == nil || st.Job.Kind != dbusapi.KindForget || st.Job.Backup != backupUUID {
				t.Errorf("status during the forget: %+v %v", st.Job, err)
			}
			run := followJob(t, sigs, job, func(q dbusapi.Question) string {
				checkQuestion(t, q, questionForget, []string{actCancel, choiceForget}, choiceForget)
				noCommand(t, q.Body)
				for _, says := range []string{"no longer be updated", "key", "slot", "stays on it"} {
					if !strings.Contains(q.Body, says) {
						t.Errorf("the question does not say %q: %q", says, q.Body)
					}
				}
				return tc.answer
			}, c)
			r := run.result
			if r.Result != tc.result || r.Text == "" {
				t.Errorf("finished %+v, want %s", r, tc.result)
			}
			noCommand(t, r.Text)
			var ops []wire.Op
			for _, req := range w.helper.Requests() {
				if req.Backup == backupUUID {
					ops = append(ops, req.Op)
				}
			}
			if !slices.Equal(ops, tc.ops) {
				t.Errorf("helper ops %v, want %v", ops, tc.ops)
			}
			forgotten := tc.result == dbusapi.ResultSuccess
			if st := w.state(); st.IsPaired(backupUUID) == forgotten {
				t.Errorf("paired %v after the forget, want %v", st.IsPaired(backupUUID), !forgotten)
			}
			if st, err := c.Status(ctx); err != nil || (len(st.Backups) == 0) != forgotten {
				t.Errorf("status' backups after the forget: %+v %v", st.Backups, err)
			}
		})
	}
}

// TestAPIPassphraseFreeOn: turned on in the app, the backup plugged in, the passphrase is
// asked once through pinentry and reaches add-key-slot; the status says it is on after.
func TestAPIPassphraseFreeOn(t *testing.T) {
	w := newWorld(t)
	var secret string
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		if req.Op == wire.OpAddKeySlot && req.Secret != nil {
			secret = string(req.Secret.Passphrase)
			return &wire.Report{KeySlots: []int{1}}, nil
		}
		return &wire.Report{}, nil
	}
	c, sigs := w.startWithBackup()
	ctx := logtest.Context(t)
	if st, err := c.Status(ctx); err != nil || len(st.Backups) != 1 || st.Backups[0].PassphraseFree {
		t.Fatalf("status before: %+v %v", st.Backups, err)
	}
	job := started(t)(c.SetPassphraseFree(ctx, backupUUID, true))
	r := followJob(t, sigs, job, nil, c).result
	if r.Result != dbusapi.ResultSuccess || !strings.Contains(r.Text, session.KeySlotAddedTextIn(nil)) {
		t.Errorf("finished %+v", r)
	}
	noCommand(t, r.Text)
	if n := len(w.asker.Prompts()); n != 1 {
		t.Errorf("the passphrase was asked %d times, want once", n)
	}
	if secret != udiskstest.BackupPassphrase {
		t.Errorf("add-key-slot got %q, want the passphrase typed", secret)
	}
	if st, err := c.Status(ctx); err != nil || len(st.Backups) != 1 || !st.Backups[0].PassphraseFree {
		t.Errorf("status after: %+v %v", st.Backups, err)
	}
	if st := w.state(); st.Backup(backupUUID) == nil || !st.Backup(backupUUID).KeySlot {
		t.Errorf("the key slot is not recorded: %+v", st.Backups)
	}
	w.noPassphraseInLogs()
}
