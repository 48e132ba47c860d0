package agent

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"tails-backup/notify/notifytest"
	"tails-backup/pairing"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/session"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// TestPlugWithKeyAsksNothing: a backup whose key slot the pairing store records is unlocked by
// the root helper with the kept key when it is plugged in: the update runs and ejects it with
// no passphrase dialog, and its first notification asks for none.
func TestPlugWithKeyAsksNothing(t *testing.T) {
	w := newWorld(t, withState(func(s *pairing.State) { s.SetKeySlot(backupUUID, true) }))
	luks := make(chan dbus.ObjectPath, 1)
	report := w.helper.Report
	w.helper.Report = nil
	var clear, luksPath dbus.ObjectPath
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		disks := w.agent.deps.Disks
		switch req.Op {
		case wire.OpUnlockWithKey:
			// As the root helper does: udisks unlocks it (the fake knows one secret per
			// stick) and mounts it.
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
	w.start()
	stick := w.plugBackup()
	luks <- stick.LUKS

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
// updates without it, once, after its update; taken, the next update adds the key slot with
// the passphrase typed for it and says so, and no offer comes again.
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
	w.start()
	w.plugBackup()
	w.waitNote("Backup updated: you can unplug it")
	offer := w.waitNote(keySlotOfferNote(nil).Summary)
	st := w.state()
	if b := st.Backup(backupUUID); b == nil || !b.KeySlotOffered || b.KeySlotWanted || b.KeySlot {
		t.Fatalf("after the offer: %+v", b)
	}
	w.notes.Click(t, offer.ID, actKeySlot)
	w.waitNote(keySlotWantedNote(nil).Summary)
	st = w.state()
	if b := st.Backup(backupUUID); b == nil || !b.KeySlotWanted {
		t.Fatalf("the offer taken is not recorded: %+v", b)
	}

	w.plugBackup()
	w.notes.WaitFor(t, func(n notifytest.Notification) bool {
		return n.Summary == doneSummary && strings.Contains(n.Body, session.KeySlotAddedTextIn(nil)) && n.Seq > offer.Seq
	}, wait)
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
		if n.Summary == offer.Summary {
			offers++
		}
	}
	if offers != 1 {
		t.Errorf("offered %d times, want once", offers)
	}
	w.noPassphraseInLogs()
}
