//go:build linux

package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/dbusapi"
	"tails-backup/internal/gnomeshell"
	"tails-backup/internal/gnomeshell/apptest"
	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// journeyPassphrase is the new backup's passphrase, typed in the fake pinentry program at its
// creation and at every unlock after it.
const journeyPassphrase = "correct horse battery staple"

// plugLine is what journey.py writes when the person plugs the stick in.
const plugLine = "journey: plug the stick in\n"

// TestRealJourney drives the Backup app through AT-SPI (app/tests/journey.py) in the real GNOME
// Shell 48 of Tails 7 against the REAL agent, its API on the session's bus, running the REAL
// root helper between real ext4 images (newRealWorld): the first run's empty state; a backup
// created on a blank stick (fake udisks2 whose new Persistent Storage, once unlocked and
// mounted, is the destination image; the system partition an ext4 image standing in for FAT, as
// in withSystems); update now, its progress and Cancel; the backup plugged in again, its
// automatic update to the end; verify and restore started from the window with the backup
// unplugged, each waiting for it until the test plugs it in. Each step waits for what the window
// shows; between them, the test checks what is on the images and what the helper was asked.
//
// The blank stick is one udisks2 cannot power off (CanPowerOff false): the creation's eject
// then leaves it plugged in, locked, so that the update-now step finds it without a new plug
// (a plug starts the automatic update). The cancelled update's eject powers it off all the
// same (the fake then drops it); from then on the test plugs it in as the Tails stick the
// creation made, when the journey says the person does.
func TestRealJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("starts GNOME Shell and copies real file systems")
	}
	requireRealWorld(t)
	here, err := os.Getwd() // agent/
	if err != nil {
		t.Fatal(err)
	}
	s := gnomeshell.Start(t, gnomeshell.Trixie48)
	app, err := s.Share(filepath.Join(filepath.Dir(here), "app"))
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv(screenshotsEnv)
	if shots != "" {
		// Not the documentation's pictures: a folder of the test's own.
		shots = t.TempDir()
		t.Logf("screenshots in %s", shots)
	}
	if shots != "" {
		if shots, err = s.Share(shots); err != nil {
			t.Fatal(err)
		}
	}

	pin, _, _ := fakePinentry(t, journeyPassphrase)
	w := newRealWorld(t, realWorldOpts{session: s.Address(), unpaired: true, asker: pin, srcMiB: 512, dstMiB: 512,
		fill: func(t *testing.T, root string) {
			fillSample(t, root)
			// Enough to copy for the window to show the update's progress before its Cancel.
			fillBulk(t, root, 16, 64, 192<<10) // 1024 files, 192 MiB
		}})
	blank := w.udisks.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Verbatim", Model: "Store n Go", Serial: "BLANK0004",
		Removable: true, ConnectionBus: "usb"})
	w.udisks.Set(blank.Drive, udisks.IfaceDrive, "CanPowerOff", false)
	w.withSystems(udiskstest.BlockPath("sdd1"), blank.Disk, nil)

	conn, err := dbus.Connect(s.Address())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	svc, err := w.agent.ServeAPI(w.ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	w.start()
	apptest.WaitName(t, conn, dbusapi.BusName, nil)
	client := dbusapi.NewClient(conn, 10*time.Second)

	env := []string{"GDK_BACKEND=wayland", "PYTHONDONTWRITEBYTECODE=1"}
	window := apptest.Start(t, s.Command(apptest.Python, []string{app + "/tails-backup-app"}, env...))
	// run runs journey.py's journey. purpose: the stick is plugged in and the journey names it
	// as the window lists it for purpose ("": it is not plugged in). plug, when not nil, is
	// what the test does when the journey says the person plugs the stick in (plugLine).
	// It returns what the journey wrote.
	run := func(journey, purpose string, plug func()) string {
		t.Helper()
		env := env
		if purpose != "" {
			// The stick as the window lists it for purpose (its disk's device is the disk
			// image's once withSystems mounted its system partition).
			sticks, err := client.ListSticks(w.ctx, purpose)
			if err != nil {
				t.Fatal(err)
			}
			name := ""
			for _, st := range sticks {
				if strings.HasPrefix(st.Name, "Verbatim Store n Go") {
					name = st.Name
				}
			}
			if name == "" {
				t.Fatalf("%s: no Verbatim stick among the sticks for %s: %+v", journey, purpose, sticks)
			}
			env = append(env, "JOURNEY_STICK="+name)
		}
		start := time.Now()
		p := apptest.Start(t, s.Command(apptest.Python, []string{app + "/tests/journey.py", journey, shots}, env...))
		fail := func(why string) {
			t.Helper()
			p.Stop()
			t.Fatalf("journey %s: %s\n%s\napp:\n%s\nagent:\n%s", journey, why, p.Output(), window.Output(), w.logs.String())
		}
		if plug != nil {
			if !p.WaitOutput(plugLine, 3*time.Minute) {
				fail("it did not come to plugging the stick in")
			}
			plug()
		}
		select {
		case <-p.Done():
		case <-time.After(6 * time.Minute):
			fail("still running after 6 minutes")
		}
		if err := p.Err(); err != nil {
			fail(err.Error())
		}
		t.Logf("%s (%v):\n%s", journey, time.Since(start).Round(time.Second), p.Output())
		return p.Output()
	}
	// runsSince is what the helper was asked since it had run n operations.
	runsSince := func(n int) []wire.Op {
		var ops []wire.Op
		for _, r := range w.helper.Runs()[n:] {
			ops = append(ops, r.Req.Op)
		}
		return ops
	}

	// 1, 2. The first run, the creation.
	run("real-create", dbusapi.PurposeCreate, nil)
	st := w.state()
	if len(st.Backups) != 1 {
		t.Fatalf("state after the creation: %+v", st)
	}
	t.Logf("paired %s", st.Backups[0].UUID)
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Errorf("the new backup differs from the source:\n%s", diff)
	}
	if m := readMarkerAt(t, w.dst.mnt); m.State != tails.StateComplete || m.Source != bootUUID {
		t.Errorf("marker after the creation %+v", m)
	}
	if st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess {
		t.Errorf("last attempt after the creation %+v", st.LastAttempt)
	}

	// 3. Update now, cancelled, after the source changed a lot: 320 MiB to copy, so that the
	// Cancel, pressed once the window shows the copy's progress, lands before its end on a
	// loaded machine too (with 160 MiB, a click that took seconds came after the end).
	fillBulk(t, w.src.mnt, 16, 64, 320<<10)
	chownAmnesia(t, filepath.Join(w.src.mnt, "Persistent", "bulk"))
	run("real-update-cancel", dbusapi.PurposeVerify, nil)
	if m := readMarkerAt(t, w.dst.mnt); m.State != tails.StateIncomplete {
		t.Errorf("marker after the cancel %+v, want incomplete", m)
	}
	if tmp := tempFiles(t, w.dst.mnt); len(tmp) > 0 {
		t.Errorf("temporary files left on the backup after the cancel: %q", tmp)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff == "" {
		t.Error("the cancelled update copied everything: the Cancel came too late to test anything")
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultIncomplete {
		t.Errorf("last attempt after the cancel %+v", st.LastAttempt)
	}
	if w.udisks.Exists(blank.Drive) {
		t.Fatal("the backup is still plugged in after the cancelled update's eject")
	}

	// The backup as it is plugged in again: the same stick, now a Tails whose Persistent
	// Storage is the one the creation made (its LUKS UUID, the journey's passphrase).
	backup := st.Backups[0].UUID
	replug := func() {
		w.udisks.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Verbatim", Model: "Store n Go", Serial: "BLANK0004",
			Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: journeyPassphrase, LUKSUUID: backup})
	}

	// 4. The person plugs the backup in again: the agent's automatic update finishes it; the
	// overview shows its progress and how it ended.
	n := len(w.helper.Runs())
	run("real-update", "", replug)
	if ops := runsSince(n); !slices.Equal(ops, []wire.Op{wire.OpUpdate}) {
		t.Errorf("helper operations of the update %q, want one update", ops)
	}
	if r := w.helper.Runs()[len(w.helper.Runs())-1]; r.Req.Backup != backup || r.Err != nil || r.Report == nil || r.Report.ErrorCount != 0 {
		t.Errorf("the update: request %+v, error %v, report %+v", r.Req, r.Err, r.Report)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Errorf("the backup differs from the source after the update:\n%s", diff)
	}
	if tmp := tempFiles(t, w.dst.mnt); len(tmp) > 0 {
		t.Errorf("temporary files left on the backup after the update: %q", tmp)
	}
	updated := readMarkerAt(t, w.dst.mnt)
	if updated.State != tails.StateComplete || updated.Source != bootUUID {
		t.Errorf("marker after the update %+v", updated)
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess || st.Backup(backup).LastSuccess.IsZero() {
		t.Errorf("state after the update %+v", st)
	}
	if w.udisks.Exists(blank.Drive) {
		t.Fatal("the backup was not ejected after the update")
	}

	// 5. Check the backup from the window, unplugged: the job waits for it; plugged in, it
	// compares. The agent starts no automatic update of the stick a job of the app waits for.
	n = len(w.helper.Runs())
	run("real-verify", "", replug)
	if ops := runsSince(n); !slices.Equal(ops, []wire.Op{wire.OpVerify}) {
		t.Errorf("helper operations of the verify %q, want one verify (no automatic update)", ops)
	}
	if m := readMarkerAt(t, w.dst.mnt); m != updated {
		t.Errorf("the verify changed the marker: %+v, was %+v", m, updated)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Errorf("the backup differs from the source after the verify:\n%s", diff)
	}
	// The verify left the stick plugged in, locked: still no automatic update of it. The
	// person unplugs it.
	time.Sleep(time.Second)
	if ops := runsSince(n); len(ops) != 1 {
		t.Errorf("helper operations after the verify %q, want only the verify", ops)
	}
	if !w.udisks.Exists(blank.Drive) {
		t.Fatal("the verify ejected the backup")
	}
	w.udisks.Unplug(blank.Drive)

	// 6. The person changes and deletes files after the last update, then restores from the
	// window: the job waits for the backup; plugged in, it asks (what is deleted and
	// replaced), then restores.
	docs := filepath.Join(w.src.mnt, "Persistent", "Documents")
	if err := os.WriteFile(filepath.Join(docs, "keep.txt"), []byte("changed by mistake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"Persistent/Documents/report.odt", "Persistent/bulk/d03/f0007", "dotfiles/.bashrc"} {
		if err := os.Remove(filepath.Join(w.src.mnt, rel)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(docs, "draft.txt"), []byte("not in the backup\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chownAmnesia(t, docs)
	if diff := rsyncDiff(t, w.dst.mnt, w.src.mnt); diff == "" {
		t.Fatal("the changes made no difference")
	}
	n = len(w.helper.Runs())
	out := run("real-restore", "", replug)
	if ops := runsSince(n); !slices.Equal(ops, []wire.Op{wire.OpRestore}) {
		t.Fatalf("helper operations of the restore %q, want one restore", ops)
	}
	r := w.helper.Runs()[n]
	if r.Req.Backup != backup || r.Err != nil || r.Report == nil || r.Report.ErrorCount != 0 {
		t.Fatalf("the restore: request %+v, error %v, report %+v", r.Req, r.Err, r.Report)
	}
	rep := r.Report
	// The deleted files back, the changed one replaced, the new one deleted.
	if rep.Created != 3 || rep.Updated != 1 || rep.Deleted != 1 {
		t.Errorf("the restore's report: %d created, %d replaced, %d deleted; want 3, 1, 1", rep.Created, rep.Updated, rep.Deleted)
	}
	var english *l10n.Locale // nil: the texts in English, as the journey's session has no catalog
	shown := "journey: result " + english.TrN(
		"Your Persistent Storage is restored: %[1]d file or folder created, %[2]d replaced, %[3]d deleted, %[4]s copied. Restart Tails to use everything that was restored.",
		"Your Persistent Storage is restored: %[1]d files and folders created, %[2]d replaced, %[3]d deleted, %[4]s copied. Restart Tails to use everything that was restored.",
		int(rep.Created), rep.Created, rep.Updated, rep.Deleted, english.Size(rep.BytesCopied))
	if !strings.Contains(out, shown+"\n") {
		t.Errorf("the window did not show the restore's result %q", strings.TrimPrefix(shown, "journey: result "))
	}
	if diff := rsyncDiff(t, w.dst.mnt, w.src.mnt); diff != "" {
		t.Errorf("the Persistent Storage differs from the backup after the restore:\n%s", diff)
	}
	if m := readMarkerAt(t, w.dst.mnt); m != updated {
		t.Errorf("the restore changed the backup's marker: %+v, was %+v", m, updated)
	}
	if st := w.state(); st.Paused(w.clock.Now()) {
		t.Errorf("the automatic updates are still paused after the restore: %+v", st)
	}

	if strings.Contains(window.Output(), "Traceback") {
		t.Errorf("the app raised:\n%s", window.Output())
	}
}

// chownAmnesia gives amnesia what is under root, as in a Persistent Storage.
func chownAmnesia(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, tails.AmnesiaUID, tails.AmnesiaUID)
	})
	if err != nil {
		t.Fatal(err)
	}
}
