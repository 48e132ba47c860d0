package session

import (
	"context"
	"strings"
	"testing"

	"tails-backup/pairing"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

// TestKeySlotFlow: on asks the passphrase once and adds the slot with it; off removes the slot;
// forget removes the slot of a plugged-in backup (or shreds the key of one that is not) and the
// pairing; the store records each.
func TestKeySlotFlow(t *testing.T) {
	right := []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}}
	type want struct {
		ops     []wire.Op
		err     string
		paired  bool
		keySlot bool
		said    string
		prompts int
	}
	for _, tc := range []struct {
		name    string
		run     func(f *KeySlotFlow, ctx context.Context) error
		slot    bool   // the store records a key slot before
		unplug  bool   // the stick is not plugged in
		device  string // given to the flow ("uuid": the backup's UUID)
		helperE map[wire.Op]error
		want    want
	}{
		{name: "on", run: (*KeySlotFlow).On,
			want: want{ops: []wire.Op{wire.OpAddKeySlot}, paired: true, keySlot: true, prompts: 1, said: KeySlotAddedTextIn(nil)}},
		{name: "on with a wrong passphrase at the helper", run: (*KeySlotFlow).On,
			helperE: map[wire.Op]error{wire.OpAddKeySlot: &wire.HelperError{Code: wire.CodeNoFreeKeySlot, Message: "Every key slot is taken."}},
			want:    want{ops: []wire.Op{wire.OpAddKeySlot}, paired: true, prompts: 1, err: "still ask for its passphrase: Every key slot of the Persistent Storage of your backup Tails is taken"}},
		{name: "off", run: (*KeySlotFlow).Off, slot: true,
			want: want{ops: []wire.Op{wire.OpRemoveKeySlot}, paired: true, said: "its key slot is removed"}},
		{name: "off with no key kept", run: (*KeySlotFlow).Off, slot: true,
			helperE: map[wire.Op]error{wire.OpRemoveKeySlot: &wire.HelperError{Code: wire.CodeKeyMissing, Message: "No key."}},
			want:    want{ops: []wire.Op{wire.OpRemoveKeySlot}, paired: true, said: "its key slot is removed"}},
		{name: "off refused: the last slot", run: (*KeySlotFlow).Off, slot: true,
			helperE: map[wire.Op]error{wire.OpRemoveKeySlot: &wire.HelperError{Code: wire.CodeLastKeySlot, Message: "The key slot of this Tails is the only one left."}},
			want:    want{ops: []wire.Op{wire.OpRemoveKeySlot}, paired: true, keySlot: true, err: "was not removed: That key slot is the only one left on the stick"}},
		{name: "off, not plugged in", run: (*KeySlotFlow).Off, slot: true, unplug: true,
			want: want{paired: true, keySlot: true, err: "no paired backup Tails is plugged in"}},
		{name: "forget, plugged in", run: (*KeySlotFlow).Forget, slot: true,
			want: want{ops: []wire.Op{wire.OpRemoveKeySlot}, said: "is forgotten"}},
		{name: "forget by UUID, not plugged in", run: (*KeySlotFlow).Forget, slot: true, unplug: true, device: "uuid",
			want: want{ops: []wire.Op{wire.OpForgetKey}, said: "is forgotten"}},
		{name: "forget, the slot not removed: the key shredded", run: (*KeySlotFlow).Forget, slot: true,
			helperE: map[wire.Op]error{wire.OpRemoveKeySlot: &wire.HelperError{Code: wire.CodeLastKeySlot, Message: "Only one left."}},
			want:    want{ops: []wire.Op{wire.OpRemoveKeySlot, wire.OpForgetKey}, said: "warning: The key slot of Kingston DataTraveler"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFlowWorld(t, udiskstest.StickSpec{})
			s, _ := w.openStore()
			if _, err := s.Update(context.Background(), func(st *pairing.State) error {
				return st.Pair(pairing.PairedBackup{UUID: backupUUID, Label: "Kingston DataTraveler", Added: flowNow, KeySlot: tc.slot})
			}); err != nil {
				t.Fatal(err)
			}
			if tc.unplug {
				_, snap, err := w.connect(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				st, err := PickStick(snap, testBoot, Candidates(snap, testBoot), "")
				if err != nil {
					t.Fatal(err)
				}
				w.fake.Unplug(st.Drive.Path)
			}
			var secret string
			helper := &wiretest.FakeHelper{Func: func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				if req.Secret != nil {
					secret = string(req.Secret.Passphrase)
				}
				return &wire.Report{}, tc.helperE[req.Op]
			}}
			asker := &pinentrytest.FakeAsker{Answers: right}
			ui := &fakeUI{}
			dev := tc.device
			if dev == "uuid" {
				dev = backupUUID
			}
			f := &KeySlotFlow{Connect: w.connect, Boot: testBoot, Store: w.openStore, Helper: helper, Asker: asker,
				Log: w.log, UI: ui, Device: dev, Yes: true}
			err := tc.run(f, context.Background())
			wantErr(t, err, tc.want.err)
			var ops []wire.Op
			for _, r := range helper.Requests() {
				ops = append(ops, r.Op)
				if r.Backup != backupUUID {
					t.Errorf("request for %s", r.Backup)
				}
			}
			if strings.Join(opStrings(ops), " ") != strings.Join(opStrings(tc.want.ops), " ") {
				t.Errorf("helper ops %v, want %v", ops, tc.want.ops)
			}
			if len(tc.want.ops) > 0 && tc.want.ops[0] == wire.OpAddKeySlot && secret != udiskstest.BackupPassphrase {
				t.Errorf("add-key-slot got the secret %q", secret)
			}
			if n := len(asker.Prompts()); n != tc.want.prompts {
				t.Errorf("%d prompts, want %d", n, tc.want.prompts)
			}
			st := w.state(t)
			b := st.Backup(backupUUID)
			if (b != nil) != tc.want.paired || (b != nil && b.KeySlot != tc.want.keySlot) {
				t.Errorf("store: %+v, want paired %v, key slot %v", b, tc.want.paired, tc.want.keySlot)
			}
			if tc.want.said != "" && !strings.Contains(ui.text(), tc.want.said) {
				t.Errorf("said %q, want %q", ui.text(), tc.want.said)
			}
			if strings.Contains(w.logs(), udiskstest.BackupPassphrase) {
				t.Error("the passphrase is in the log")
			}
			w.released(t)
		})
	}
}

func opStrings(ops []wire.Op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = string(o)
	}
	return out
}
