package session

import (
	"context"
	"slices"
	"testing"

	"tails-backup/pinentry/pinentrytest"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

func TestVerify(t *testing.T) {
	right := []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}}
	change := wire.Event{Event: wire.EventProgress, Phase: wire.PhaseChange, Path: "notes.txt", Kind: "update", Type: "f", What: []string{"data"}}
	for _, tc := range []struct {
		name      string
		spec      udiskstest.StickSpec
		paired    bool
		answers   []pinentrytest.FakeAnswer
		helperErr error
		device    string
		err       string
		verified  bool     // the helper was asked
		calls     []string // udisks2 calls
	}{
		{name: "the paired backup", paired: true, answers: right, verified: true, calls: []string{"Unlock", "Mount", "Unmount", "Lock"}},
		{name: "already open: left open", paired: true, spec: udiskstest.StickSpec{MountedAt: "/media/amnesia/TailsData"}, verified: true, calls: []string{"Mount"}},
		{name: "not paired", answers: right, err: "no paired backup Tails is plugged in"},
		{name: "not paired, named: the helper decides", answers: right, device: "/dev/sdb", verified: true, calls: []string{"Unlock", "Mount", "Unmount", "Lock"}},
		{name: "the boot stick", paired: true, device: "sda", err: "/dev/sda is the stick this Tails is running from, so it is not a backup"},
		{name: "passphrase not given", paired: true, err: "the passphrase was not given, so the backup was not verified"},
		{name: "the helper fails", paired: true, answers: right, helperErr: &wire.HelperError{Code: wire.CodeRefused, Message: "no"},
			verified: true, err: "was not verified", calls: []string{"Unlock", "Mount", "Unmount", "Lock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFlowWorld(t, tc.spec)
			if tc.paired {
				w.pair(t, backupUUID)
			}
			helper := &wiretest.FakeHelper{Progress: []wire.Event{change}, Report: &wire.Report{Updated: 1}, Err: tc.helperErr}
			ui := &fakeUI{}
			v := &Verify{Connect: w.connect, Boot: testBoot, Store: w.openStore, Helper: helper,
				Asker: &pinentrytest.FakeAsker{Answers: tc.answers}, Log: w.log, UI: ui, Device: tc.device, Checksum: true, Skip: []string{"gnupg"}}
			rep, err := v.Run(context.Background())
			wantErr(t, err, tc.err)
			reqs := helper.Requests()
			if (len(reqs) == 1) != tc.verified {
				t.Fatalf("helper requests %+v", reqs)
			}
			if tc.verified {
				if r := reqs[0]; r.Op != wire.OpVerify || r.Backup != backupUUID || !r.Checksum || !slices.Equal(r.Skip, []string{"gnupg"}) {
					t.Errorf("request %+v", r)
				}
				if len(ui.events) != 1 || ui.events[0].Path != "notes.txt" {
					t.Errorf("findings %+v", ui.events)
				}
			}
			if tc.err == "" && (rep == nil || rep.Updated != 1) {
				t.Errorf("report %+v", rep)
			}
			if tc.calls != nil && !slices.Equal(methods(w.fake), tc.calls) {
				t.Errorf("udisks calls %q, want %q", methods(w.fake), tc.calls)
			}
			for _, c := range w.fake.CallsOf("Mount") {
				if opts, _ := c.Options["options"].Value().(string); opts != udisks.ReadOnlyMountOptions {
					t.Errorf("mounted with %q", opts)
				}
			}
		})
	}
}
