package session

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/inhibit/inhibittest"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/quiesce/quiescetest"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

// TestUpdateWithKey: a backup whose key slot the pairing store records is opened by the root
// helper's unlock-with-key and updated with no prompt at all; a key missing or refused falls
// back to the passphrase and says why in the prompt, once; a backup without a key slot is
// opened with its passphrase without asking the helper.
func TestUpdateWithKey(t *testing.T) {
	right := pinentrytest.FakeAnswer{Pass: udiskstest.BackupPassphrase}
	ejected := []string{"Unlock", "Mount", "Unmount", "Lock", "PowerOff"}
	refused := &wire.HelperError{Code: wire.CodeKeyRefused, Message: "The stick no longer accepts the key this Tails keeps for it."}
	missing := &wire.HelperError{Code: wire.CodeKeyMissing, Message: "This Tails keeps no key for the stick."}
	for _, tc := range []struct {
		name    string
		keySlot bool  // the pairing store says it has one
		keyErr  error // of unlock-with-key; nil: the key opens it
		runs    int   // updates in a row
		asRoot  bool  // the helper mounts it as root (udisks2 2.9): the session cannot read the marker

		keyAsked []int // per run: how many unlock-with-key requests
		prompts  []int // per run: how many passphrase prompts
		told     []bool
		slotLeft bool // the store still records the key slot at the end
		err      bool
		kind     FailureKind
	}{
		{name: "the key opens it: no prompt", keySlot: true, runs: 2, keyAsked: []int{1, 1}, prompts: []int{0, 0}, told: []bool{false, false}, slotLeft: true},
		{name: "the key opens it, mounted as root: the helper's marker check", keySlot: true, asRoot: true, runs: 1, keyAsked: []int{1}, prompts: []int{0}, told: []bool{false}, slotLeft: true},
		{name: "the key is refused: the passphrase, said why once", keySlot: true, keyErr: refused, runs: 2,
			keyAsked: []int{1, 0}, prompts: []int{1, 1}, told: []bool{true, false}},
		{name: "the key is missing: the passphrase, said why once", keySlot: true, keyErr: missing, runs: 2,
			keyAsked: []int{1, 0}, prompts: []int{1, 1}, told: []bool{true, false}},
		{name: "a failure of udisks on the key: the passphrase, quietly", keySlot: true, runs: 1,
			keyErr:   &wire.HelperError{Code: wire.CodeInternal, Message: "udisks could not unlock it."},
			keyAsked: []int{1}, prompts: []int{1}, told: []bool{false}, slotLeft: true},
		{name: "unplugged while unlocking: an error, no prompt", keySlot: true, runs: 1,
			keyErr:   &wire.HelperError{Code: wire.CodeDeviceGone, Message: "It was unplugged."},
			keyAsked: []int{1}, prompts: []int{0}, told: []bool{false}, slotLeft: true, err: true, kind: FailUnplugged},
		{name: "no key slot: the passphrase, the helper not asked", runs: 1, keyAsked: []int{0}, prompts: []int{1}, told: []bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			buf := &syncBuffer{}
			l := logrus.New()
			l.SetLevel(logrus.TraceLevel)
			l.SetOutput(buf)
			log := logrus.NewEntry(l)
			store := pairing.NewStore(filepath.Join(t.TempDir(), "state.json"), func() time.Time { return now }, log)
			if _, err := store.Update(context.Background(), func(s *pairing.State) error {
				return s.Pair(pairing.PairedBackup{UUID: backupUUID, Size: 1, Added: now, KeySlot: tc.keySlot})
			}); err != nil {
				t.Fatal(err)
			}
			for run := range tc.runs {
				fake, disks, st := openWorld(t, udiskstest.StickSpec{})
				asker := &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{right}}
				var clear dbus.ObjectPath
				helper := &wiretest.FakeHelper{Func: func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
					switch req.Op {
					case wire.OpUnlockWithKey:
						if tc.keyErr != nil {
							return nil, tc.keyErr
						}
						// As the root helper does: udisks unlocks it (here with the fake's one
						// secret) and mounts it; the cleartext device and the mount point go
						// back to the session.
						var err error
						if clear, _, err = disks.UnlockOrReuse(ctx, st.LUKS.Path, udiskstest.BackupPassphrase); err != nil {
							return nil, err
						}
						dir, err := disks.Mount(ctx, clear)
						return &wire.Report{Cleartext: string(clear), MountPoint: dir, MountedAsRoot: tc.asRoot}, err
					case wire.OpLockBackup:
						if err := disks.Unmount(ctx, clear); err != nil {
							return nil, err
						}
						return &wire.Report{}, disks.Lock(ctx, st.LUKS.Path)
					}
					return &wire.Report{Created: 1}, nil
				}}
				readMarker := func(string) (tails.Marker, error) { return tails.Marker{Source: bootUUID}, nil }
				if tc.asRoot {
					readMarker = func(dir string) (tails.Marker, error) {
						return tails.Marker{}, fmt.Errorf("open %s: permission denied (mounted by root)", dir)
					}
				}
				u := &Update{Disks: disks, Asker: asker, Quiescer: &quiescetest.FakeQuiescer{}, Inhibitor: &inhibittest.FakeInhibitor{},
					Helper: helper, Store: store, Now: func() time.Time { return now }, Log: log, Stick: st, Source: bootUUID,
					Persistence: t.TempDir(), ReadMarker: readMarker,
					QuiesceGrace: time.Millisecond, Observer: &fakeObserver{}}
				done, err := u.Run(context.Background())
				var e *UpdateError
				switch {
				case tc.err && (!errors.As(err, &e) || e.Kind != tc.kind):
					t.Fatalf("run %d: Run = %v, %v; want a failure of kind %d", run, done, err, tc.kind)
				case !tc.err && (err != nil || !done.Ejected):
					t.Fatalf("run %d: Run = %+v, %v", run, done, err)
				}
				reqs := helper.Requests()
				asked := 0
				for _, r := range reqs {
					if r.Op == wire.OpUnlockWithKey {
						asked++
						if r.Backup != backupUUID || r.Secret != nil {
							t.Errorf("run %d: unlock-with-key request %+v", run, r)
						}
					}
				}
				if asked != tc.keyAsked[run] {
					t.Errorf("run %d: %d unlock-with-key requests, want %d (%+v)", run, asked, tc.keyAsked[run], reqs)
				}
				// Opened by the helper, it is unmounted and locked by the helper.
				wantLast := []wire.Op{wire.OpUpdate}
				if tc.keyErr == nil && tc.keySlot {
					wantLast = []wire.Op{wire.OpUpdate, wire.OpLockBackup}
				}
				if !tc.err && (len(reqs) < len(wantLast) || !slices.Equal(opsOf(reqs[len(reqs)-len(wantLast):]), wantLast)) {
					t.Errorf("run %d: the last requests are not %v: %+v", run, wantLast, reqs)
				}
				prompts := asker.Prompts()
				if len(prompts) != tc.prompts[run] {
					t.Errorf("run %d: %d prompts, want %d", run, len(prompts), tc.prompts[run])
				}
				told := slices.ContainsFunc(prompts, func(p pinentry.Prompt) bool {
					return strings.HasPrefix(p.Description, "Your backup Tails needs its passphrase this time: the key kept in this Tails no longer opens it.")
				})
				if told != tc.told[run] {
					t.Errorf("run %d: told %v, want %v: %+v", run, told, tc.told[run], prompts)
				}
				if u.KeyUsed() != (tc.keyErr == nil && tc.keySlot) {
					t.Errorf("run %d: KeyUsed %v", run, u.KeyUsed())
				}
				if !tc.err {
					if got := methods(fake); !slices.Equal(got, ejected) {
						t.Errorf("run %d: udisks calls %q, want %q", run, got, ejected)
					}
				}
			}
			s, err := store.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if b := s.Backup(backupUUID); b == nil || b.KeySlot != tc.slotLeft {
				t.Errorf("key slot in the store at the end: %+v, want %v", b, tc.slotLeft)
			}
			if strings.Contains(buf.String(), udiskstest.BackupPassphrase) {
				t.Error("the passphrase is in the log")
			}
		})
	}
}

// TestOpenedUnlockWithKey: a report without a valid cleartext device is refused as a protocol
// error (the update then asks the passphrase), and a stick found unlocked is not unlocked again.
func TestOpenedUnlockWithKey(t *testing.T) {
	_, disks, st := openWorld(t, udiskstest.StickSpec{})
	for _, rep := range []*wire.Report{nil, {}, {Cleartext: "not a path"}, {Cleartext: "/"}} {
		o := NewOpened(disks, st, OpenOptions{})
		err := o.UnlockWithKey(context.Background(), &wiretest.FakeHelper{Report: rep})
		if !errors.Is(err, wire.ErrHelperProtocol) || !KeyFallsBack(err) {
			t.Errorf("report %+v: %v, want a protocol error that falls back", rep, err)
		}
	}
	unlocked := st
	unlocked.Cleartext = &udisks.Object{Path: dbus.ObjectPath("/org/freedesktop/UDisks2/block_devices/dm_2d9")}
	helper := &wiretest.FakeHelper{}
	o := NewOpened(disks, unlocked, OpenOptions{})
	if err := o.UnlockWithKey(context.Background(), helper); err != nil || o.Clear() != unlocked.Cleartext.Path || len(helper.Requests()) != 0 {
		t.Errorf("found unlocked: %v, clear %s, requests %+v", err, o.Clear(), helper.Requests())
	}
}

// TestUpdateAddsTheWantedKeySlot: a backup whose person took the offer of updates without the
// passphrase gets its key slot at its next update, with the passphrase typed for it (before
// the copy); a failure of the helper there only drops the wish, and the update goes on.
func TestUpdateAddsTheWantedKeySlot(t *testing.T) {
	right := pinentrytest.FakeAnswer{Pass: udiskstest.BackupPassphrase}
	for _, tc := range []struct {
		name   string
		keyErr error
	}{
		{name: "added"},
		{name: "not added", keyErr: &wire.HelperError{Code: wire.CodeNoFreeKeySlot, Message: "Every key slot is taken."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			buf := &syncBuffer{}
			l := logrus.New()
			l.SetLevel(logrus.TraceLevel)
			l.SetOutput(buf)
			log := logrus.NewEntry(l)
			store := pairing.NewStore(filepath.Join(t.TempDir(), "state.json"), func() time.Time { return now }, log)
			if _, err := store.Update(context.Background(), func(s *pairing.State) error {
				if err := s.Pair(pairing.PairedBackup{UUID: backupUUID, Size: 1, Added: now, KeySlotOffered: true}); err != nil {
					return err
				}
				s.WantKeySlot(backupUUID, true)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			_, disks, st := openWorld(t, udiskstest.StickSpec{})
			asker := &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{right}}
			var secret string
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
				return &wire.Report{Created: 1}, nil
			}}
			u := &Update{Disks: disks, Asker: asker, Quiescer: &quiescetest.FakeQuiescer{}, Inhibitor: &inhibittest.FakeInhibitor{},
				Helper: helper, Store: store, Now: func() time.Time { return now }, Log: log, Stick: st, Source: bootUUID,
				Persistence: t.TempDir(), ReadMarker: func(string) (tails.Marker, error) { return tails.Marker{Source: bootUUID}, nil },
				QuiesceGrace: time.Millisecond, Observer: &fakeObserver{}}
			done, err := u.Run(context.Background())
			if err != nil || !done.Ejected {
				t.Fatalf("Run = %+v, %v", done, err)
			}
			if got, want := opsOf(helper.Requests()), []wire.Op{wire.OpAddKeySlot, wire.OpUpdate}; !slices.Equal(got, want) {
				t.Errorf("helper ops %v, want %v", got, want)
			}
			if secret != udiskstest.BackupPassphrase {
				t.Errorf("add-key-slot got the secret %q, want the passphrase typed", secret)
			}
			if len(asker.Prompts()) != 1 {
				t.Errorf("%d prompts, want 1", len(asker.Prompts()))
			}
			if done.KeySlotAdded != (tc.keyErr == nil) || (done.KeySlotErr != nil) != (tc.keyErr != nil) {
				t.Errorf("done %+v", done)
			}
			s, err := store.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if b := s.Backup(backupUUID); b == nil || b.KeySlot != (tc.keyErr == nil) || b.KeySlotWanted {
				t.Errorf("store at the end: %+v", b)
			}
			if strings.Contains(buf.String(), udiskstest.BackupPassphrase) {
				t.Error("the passphrase is in the log")
			}
			if u.kept != nil {
				t.Error("the passphrase is still kept")
			}
		})
	}
}
