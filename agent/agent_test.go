package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/clock/clocktest"
	"tails-backup/inhibit/inhibittest"
	"tails-backup/notify"
	"tails-backup/notify/notifytest"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/quiesce"
	"tails-backup/quiesce/quiescetest"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

const (
	bootUUID   = "0b5c1c5e-7a4f-4d69-9f55-3ad1d1f4e7a2" // this Tails' Persistent Storage
	backupUUID = "2f1e3c4d-0000-4000-8000-00000000b0b0" // the paired backup's
	strayUUID  = "9a9a9a9a-0000-4000-8000-000000000bad" // a Tails stick that is not paired
	wait       = 20 * time.Second
)

var testBoot = udisks.BootPaths{Persistence: "/live/persistence/TailsData_unlocked", System: "/lib/live/mount/medium"}

func bootSpec() udiskstest.StickSpec {
	return udiskstest.StickSpec{Name: "sda", Vendor: "SanDisk", Model: "Cruzer", Serial: "BOOT0001",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: "boot pass", HintSystem: true,
		LUKSUUID: bootUUID, MountedAt: testBoot.Persistence, SystemMountedAt: testBoot.System}
}

func backupSpec() udiskstest.StickSpec {
	return udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase, LUKSUUID: backupUUID}
}

// world is the agent on private buses with fake udisks2, notification server and the other
// fakes; the test drives it like a user would.
type world struct {
	t        *testing.T
	udisks   *udiskstest.Service
	notes    *notifytest.Server
	asker    *pinentrytest.FakeAsker
	realAsk  pinentry.PassphraseAsker // asks instead of asker when set (withAsker)
	quiescer *quiescetest.FakeQuiescer
	inhibit  *inhibittest.FakeInhibitor
	helper   *wiretest.FakeHelper
	clock    *clocktest.FakeClock
	store    *pairing.Store
	markers  *markerFake
	agent    *Agent
	// opened receives the page of each opening of the Backup app (Deps.OpenApp).
	opened chan string
	cancel context.CancelFunc
	done   chan error
}

// markerFake answers ReadMarker: this Tails' own root has no marker unless ownMarker is set,
// and any mounted backup has a marker naming backupSource.
type markerFake struct {
	mu           sync.Mutex
	ownMarker    bool
	backupSource string
	missing      bool
}

func (m *markerFake) read(root string) (tails.Marker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mk := tails.Marker{Format: 1, State: tails.StateComplete, Started: time.Unix(1e9, 0), Finished: time.Unix(1e9+60, 0)}
	if root == testBoot.Persistence {
		if !m.ownMarker {
			return tails.Marker{}, os.ErrNotExist
		}
		mk.Source = "11111111-2222-4333-8444-555555555555"
		return mk, nil
	}
	if m.missing {
		return tails.Marker{}, os.ErrNotExist
	}
	mk.Source = m.backupSource
	return mk, nil
}

type worldOpt func(*world)

func withState(fn func(*pairing.State)) worldOpt {
	return func(w *world) {
		if _, err := w.store.Update(context.Background(), func(s *pairing.State) error { fn(s); return nil }); err != nil {
			w.t.Fatal(err)
		}
	}
}

func newWorld(t *testing.T, opts ...worldOpt) *world {
	t.Helper()
	sess := notifytest.StartBus(t)
	notes := notifytest.NewServer(t, sess.Address())
	return newWorldOn(t, sess.Address(), notes, opts...)
}

// newWorldOn is newWorld with the notifications shown on the session bus at sessAddr, whose
// server is notes, or a real GNOME Shell when notes is nil.
func newWorldOn(t *testing.T, sessAddr string, notes *notifytest.Server, opts ...worldOpt) *world {
	t.Helper()
	sysAddr := udiskstest.StartBus(t)
	fake := udiskstest.NewService(t, sysAddr)
	fake.SetFilesystemDelay(0)
	fake.AddStick(bootSpec())

	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	log.Out = &testLogWriter{t: t}
	entry := logrus.NewEntry(log)

	conn, err := dbus.Connect(sysAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	notifier, err := notify.New(ctx, notify.Config{Address: sessAddr, Log: entry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notifier.Close() })

	clock := clocktest.NewFakeClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	w := &world{
		t: t, udisks: fake, notes: notes, clock: clock,
		asker:    &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}}},
		quiescer: &quiescetest.FakeQuiescer{},
		inhibit:  &inhibittest.FakeInhibitor{},
		helper:   &wiretest.FakeHelper{Report: &wire.Report{Created: 2, Updated: 1, BytesCopied: 12_500_000}},
		store:    pairing.NewStore(filepath.Join(t.TempDir(), "state.json"), clock.Now, entry),
		markers:  &markerFake{backupSource: bootUUID},
		cancel:   cancel,
		done:     make(chan error, 1),
		opened:   make(chan string, 16),
	}
	// Paired a day ago, updated a day ago: no reminder unless a test says otherwise.
	withState(func(s *pairing.State) {
		s.Pair(pairing.PairedBackup{UUID: backupUUID, Label: "Kingston DataTraveler", Size: 16 << 30, Added: clock.Now().Add(-24 * time.Hour)})
		s.RecordAttempt(pairing.Attempt{Time: clock.Now().Add(-24 * time.Hour), Backup: backupUUID, Result: pairing.ResultSuccess})
	})(w)
	for _, o := range opts {
		o(w)
	}
	w.agent = New(Config{ReadMarker: w.markers.read, QuiesceGrace: time.Second}, Deps{
		Disks:     udisks.New(conn, udisks.Options{Log: entry, Boot: testBoot}),
		Notifier:  notifier,
		Asker:     w.passphraseAsker(),
		Quiescer:  w.quiescer,
		Inhibitor: w.inhibit,
		Helper:    w.helper,
		Store:     w.store,
		Clock:     clock,
		Log:       entry,
		OpenApp: func(ctx context.Context, page string) error {
			w.opened <- page
			return nil
		},
	})
	return w
}

// waitOpened waits until the agent opens the Backup app, and returns the page.
func (w *world) waitOpened() string {
	w.t.Helper()
	select {
	case p := <-w.opened:
		return p
	case <-time.After(wait):
		w.t.Fatal("the Backup app was not opened")
		return ""
	}
}

// withAsker makes the agent ask passphrases through a (with a real pinentry program).
func withAsker(a pinentry.PassphraseAsker) worldOpt { return func(w *world) { w.realAsk = a } }

func (w *world) passphraseAsker() pinentry.PassphraseAsker {
	if w.realAsk != nil {
		return w.realAsk
	}
	return w.asker
}

func (w *world) start() {
	ctx, cancel := context.WithCancel(context.Background())
	prev := w.cancel
	w.cancel = func() { cancel(); prev() }
	go func() { w.done <- w.agent.Run(ctx) }()
	w.t.Cleanup(w.stop)
}

func (w *world) stop() {
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Errorf("agent: %v", err)
		}
		w.done <- nil
	case <-time.After(wait):
		w.t.Error("the agent did not stop within 20 s of its context's end")
	}
}

func (w *world) plugBackup() udiskstest.StickPaths { return w.udisks.AddStick(backupSpec()) }

// waitNote waits for a notification whose summary contains s.
func (w *world) waitNote(s string) notifytest.Notification {
	w.t.Helper()
	return w.notes.WaitFor(w.t, func(n notifytest.Notification) bool { return strings.Contains(n.Summary, s) }, wait)
}

func (w *world) state() pairing.State {
	w.t.Helper()
	st, err := w.store.Load(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

type testLogWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (l *testLogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

func (w *world) noPassphraseInLogs() {
	// The fake asker and the fake udisks record calls; the logs go to t.Log. Check the
	// recorded udisks calls carry no passphrase in clear either.
	for _, c := range w.udisks.Calls() {
		for _, a := range c.Args {
			if s, ok := a.(string); ok && s == udiskstest.BackupPassphrase {
				w.t.Errorf("the fake recorded the passphrase in a call: %+v", c)
			}
		}
	}
}

func TestPlugUpdateDone(t *testing.T) {
	w := newWorld(t)
	w.start()
	stick := w.plugBackup()

	done := w.waitNote("Backup updated: you can unplug it")
	if !strings.Contains(done.Body, "3 files changed, 12.5 MB copied") {
		t.Errorf("done body %q", done.Body)
	}
	reqs := w.helper.Requests()
	if len(reqs) != 1 || reqs[0].Op != wire.OpUpdate || reqs[0].Backup != backupUUID {
		t.Fatalf("helper requests %+v", reqs)
	}
	for _, m := range []string{"Unlock", "Mount", "Unmount", "Lock", "PowerOff"} {
		if len(w.udisks.CallsOf(m)) != 1 {
			t.Errorf("udisks %s called %d times, want once", m, len(w.udisks.CallsOf(m)))
		}
	}
	if w.udisks.Has(stick.LUKS, "org.freedesktop.UDisks2.Encrypted") && w.udisks.Get(stick.LUKS, "org.freedesktop.UDisks2.Encrypted", "CleartextDevice") != dbus.ObjectPath("/") {
		t.Error("the backup was left unlocked")
	}
	if w.inhibit.Active() != 0 || len(w.inhibit.Whys()) != 1 {
		t.Errorf("sleep inhibition: %d active, taken %d times; want released after one", w.inhibit.Active(), len(w.inhibit.Whys()))
	}
	st := w.state()
	if b := st.Backup(backupUUID); b == nil || !b.LastSuccess.Equal(w.clock.Now()) || st.LastAttempt.Result != pairing.ResultSuccess {
		t.Errorf("state after the update: %+v", st)
	}
	// Progress was shown in the notification with a Cancel action.
	w.notes.WaitFor(t, func(n notifytest.Notification) bool {
		return n.Summary == "Updating your backup Tails" && strings.Contains(n.Body, "% done") && slices.Contains(n.ActionKeys(), actCancel)
	}, wait)
	w.noPassphraseInLogs()
}

func TestColdplugIsUpdatedToo(t *testing.T) {
	w := newWorld(t)
	w.plugBackup()
	w.start()
	w.waitNote("Backup updated: you can unplug it")
	if len(w.helper.Requests()) != 1 {
		t.Fatalf("helper requests %+v", w.helper.Requests())
	}
}

func TestWrongPassphraseThenRight(t *testing.T) {
	w := newWorld(t)
	w.asker.Answers = []pinentrytest.FakeAnswer{{Pass: "wrong one"}, {Pass: udiskstest.BackupPassphrase}}
	w.start()
	w.plugBackup()
	w.waitNote("Backup updated: you can unplug it")
	prompts := w.asker.Prompts()
	if len(prompts) != 2 || prompts[0].Error != "" || !strings.Contains(prompts[1].Error, "Wrong passphrase") {
		t.Fatalf("prompts %+v: want a second one saying the passphrase was wrong", prompts)
	}
	// GNOME Shell shows Prompt as the heading, Description below it, and not Title.
	for _, p := range prompts {
		if p.Prompt != "Passphrase of your backup Tails" || p.Description != "Enter the passphrase of your backup Tails (Kingston DataTraveler, 17.2 GB) to update it." {
			t.Errorf("prompt heading %q, text %q", p.Prompt, p.Description)
		}
	}
}

func TestWrongPassphraseThreeTimes(t *testing.T) {
	w := newWorld(t)
	w.asker.Answers = []pinentrytest.FakeAnswer{{Pass: "a"}, {Pass: "b"}, {Pass: "c"}}
	w.start()
	w.plugBackup()
	n := w.waitNote("Your backup Tails was not updated")
	if !strings.Contains(n.Body, "wrong three times") {
		t.Errorf("body %q", n.Body)
	}
	if len(w.helper.Requests()) != 0 {
		t.Error("the helper ran without an unlocked backup")
	}
}

func TestUnpairedStickIsNeverTouched(t *testing.T) {
	w := newWorld(t)
	w.start()
	spec := backupSpec()
	spec.LUKSUUID, spec.Serial, spec.Name = strayUUID, "STRAY", "sdd"
	w.udisks.AddStick(spec)
	w.waitNote("This Tails USB stick is not your backup")
	for _, m := range []string{"Unlock", "Mount", "Format", "Lock", "PowerOff"} {
		if n := len(w.udisks.CallsOf(m)); n != 0 {
			t.Errorf("udisks %s called %d times on an unpaired stick", m, n)
		}
	}
	if len(w.asker.Prompts()) != 0 || len(w.helper.Requests()) != 0 {
		t.Error("an unpaired stick got a passphrase prompt or the helper")
	}
}

// An unpaired Tails stick unlocked here (the backup 'tails-backup create' is making, or one
// the user opened in the Files browser) gets no "not your backup" notification; a locked one
// plugged in after it does.
func TestUnpairedStickUnlockedHereIsNotTold(t *testing.T) {
	w := newWorld(t)
	quiet := &logSeen{msg: "an unpaired Tails stick is unlocked here", seen: make(chan struct{})}
	w.agent.log.Logger.AddHook(quiet)
	// Plugged in and unlocked before the agent starts: its first full read of udisks sees it
	// whole. (Added while it runs, the fake's objects come one by one, the LUKS partition
	// before its cleartext, and the agent may see it locked in between, as it may a stick
	// that the real udisks2 is formatting and unlocking.)
	spec := backupSpec()
	spec.LUKSUUID, spec.Serial, spec.Name, spec.Unlocked = strayUUID, "BEING-MADE", "sdd", true
	w.udisks.AddStick(spec)
	w.start()
	select {
	case <-quiet.seen:
	case <-time.After(wait):
		t.Fatalf("the agent did not leave the unlocked unpaired stick alone within %v", wait)
	}
	spec = backupSpec()
	spec.LUKSUUID, spec.Serial, spec.Name = "5e0c2a1b-3d4f-4a6b-8c9d-0e1f2a3b4c5d", "STRAY", "sde"
	w.udisks.AddStick(spec)
	w.waitNote("This Tails USB stick is not your backup")
	w.stop()
	told := 0
	for _, n := range w.notes.Notifications() {
		if strings.Contains(n.Summary, "not your backup") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("%d notifications about an unpaired stick, want 1 (the locked one's)", told)
	}
}

// logSeen is a logrus hook that closes seen at the first entry whose message starts with msg.
type logSeen struct {
	msg  string
	once sync.Once
	seen chan struct{}
}

func (h *logSeen) Levels() []logrus.Level { return logrus.AllLevels }

func (h *logSeen) Fire(e *logrus.Entry) error {
	if strings.HasPrefix(e.Message, h.msg) {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

func TestMarkerOfAnotherTailsIsRefused(t *testing.T) {
	w := newWorld(t)
	w.markers.backupSource = strayUUID
	w.start()
	w.plugBackup()
	w.waitNote("This backup Tails belongs to another Tails")
	if len(w.helper.Requests()) != 0 {
		t.Fatal("the helper ran on a backup of another Tails")
	}
	if len(w.udisks.CallsOf("Lock")) != 1 {
		t.Error("the refused backup was not locked again")
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultFailed {
		t.Errorf("last attempt %+v", st.LastAttempt)
	}
}

func busyThunderbird() ([]tails.Feature, []quiesce.BusyApp) {
	var tb tails.Feature
	for _, f := range tails.Features() {
		if f.Source == "thunderbird" {
			tb = f
		}
	}
	return []tails.Feature{tb}, []quiesce.BusyApp{{App: tb.Apps[0], Feature: tb, PIDs: []int{4242}, Closable: true}}
}

func TestThunderbirdRunning(t *testing.T) {
	for _, tc := range []struct {
		name       string
		click      string
		stubborn   bool
		wantSkip   []string
		wantClosed bool
		wantNote   string
	}{
		{"close it", actCloseApp, false, nil, true, "Backup updated"},
		{"skip its data", actSkipApp, false, []string{"thunderbird"}, false, "Backup updated"},
		{"cancel", actCancel, false, nil, false, "Backup update cancelled"},
		{"does not close", actCloseApp, true, nil, false, "Thunderbird is still open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.quiescer.Features, w.quiescer.Busy = busyThunderbird()
			if tc.stubborn {
				w.quiescer.Stubborn = map[string]bool{"Thunderbird": true}
			}
			w.start()
			w.plugBackup()
			q := w.waitNote("Close Thunderbird?")
			if !strings.Contains(q.Body, "Thunderbird Email Client") {
				t.Errorf("question body %q", q.Body)
			}
			w.notes.Click(t, q.ID, tc.click)
			end := w.waitNote(tc.wantNote)
			if tc.stubborn {
				if !slices.Contains(end.ActionKeys(), actSkipApp) {
					t.Errorf("the still-open note offers %v", end.ActionKeys())
				}
				w.notes.Click(t, end.ID, actSkipApp)
				w.waitNote("Backup updated")
				tc.wantSkip = []string{"thunderbird"}
			}
			if got := w.quiescer.Closed(); tc.wantClosed != (len(got) == 1) {
				t.Errorf("closed %v", got)
			}
			reqs := w.helper.Requests()
			if tc.click == actCancel {
				if len(reqs) != 0 {
					t.Fatalf("the helper ran after Cancel: %+v", reqs)
				}
				if !strings.Contains(end.Body, "not changed") {
					t.Errorf("cancel body %q", end.Body)
				}
				return
			}
			if len(reqs) != 1 || !slices.Equal(reqs[0].Skip, tc.wantSkip) {
				t.Fatalf("helper requests %+v, want skip %v", reqs, tc.wantSkip)
			}
			if tc.wantSkip != nil {
				w.notes.WaitFor(t, func(n notifytest.Notification) bool {
					return strings.Contains(n.Body, "Thunderbird Email Client was skipped")
				}, wait)
			}
		})
	}
}

// Cancel is clicked after several progress updates, on the banner as a person sees it: on
// GNOME Shell 48 the one notification replaced in place; on 43, which drops the buttons of a
// banner replaced in place, the banner that is never replaced while the notification list
// shows the progress (notify.ShowProgress). The fake server behaves as each shell does.
func TestCancelDuringUpdate(t *testing.T) {
	for _, version := range []string{notifytest.GNOMEShell48, notifytest.GNOMEShell43} {
		t.Run(version, func(t *testing.T) {
			sess := notifytest.StartBus(t)
			w := newWorldOn(t, sess.Address(), notifytest.NewServer(t, sess.Address(), notifytest.WithVersion(version)))
			w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				for _, done := range []int64{10, 40, 75} {
					progress(wire.Event{Event: wire.EventProgress, Phase: "copy", BytesDone: done, BytesTotal: 100})
					w.clock.Advance(2 * time.Second) // past Config.ProgressEvery
				}
				<-ctx.Done()
				return nil, fmt.Errorf("%w (%w)", &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}, ctx.Err())
			}
			w.start()
			w.plugBackup()
			last := w.notes.WaitFor(t, func(n notifytest.Notification) bool { return strings.Contains(n.Body, "75% done") }, wait)
			var banner notifytest.Notification
			for _, n := range w.notes.Notifications() {
				if open, ok := w.notes.Open(n.ID); ok && slices.Contains(w.notes.Buttons(n.ID), actCancel) {
					banner = open
				}
			}
			if banner.ID == 0 {
				t.Fatalf("after the progress updates, no notification shows Cancel: %+v", w.notes.Notifications())
			}
			if !w.notes.OnScreen(banner.ID) {
				t.Errorf("the notification with Cancel (%+v) is not on screen", banner)
			}
			if version == notifytest.GNOMEShell43 {
				if banner.ID == last.ID || banner.Body != progressSteadyBody {
					t.Errorf("on 43, the banner %+v shows the progress %+v", banner, last)
				}
				if v, _ := banner.Hint("transient"); v != true {
					t.Errorf("on 43, the banner is not transient: %+v", banner.Hints)
				}
				if v, _ := last.Hint("urgency"); v != byte(0) || slices.Contains(last.ActionKeys(), actCancel) || last.ReplacesID == 0 {
					t.Errorf("on 43, the progress %+v is not a low-urgency list entry replaced in place", last)
				}
			} else if banner.ID != last.ID {
				t.Errorf("on 48, Cancel is on %+v, the progress on %+v: want one notification", banner, last)
			}
			w.notes.Click(t, banner.ID, actCancel)
			n := w.waitNote("Backup update cancelled")
			if !strings.Contains(n.Body, "marked incomplete") {
				t.Errorf("body %q", n.Body)
			}
			if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultIncomplete {
				t.Errorf("last attempt %+v, want incomplete", st.LastAttempt)
			}
			if len(w.udisks.CallsOf("Lock")) != 1 {
				t.Error("the cancelled backup was not locked")
			}
			for _, n := range w.notes.Notifications() {
				if _, open := w.notes.Open(n.ID); open && strings.HasPrefix(n.Summary, "Updating") {
					t.Errorf("the update's notification %d is still open after the update", n.ID)
				}
			}
		})
	}
}

func TestPulledMidUpdateThenFinishedOnNextPlug(t *testing.T) {
	w := newWorld(t)
	w.asker.Answers = []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}, {Pass: udiskstest.BackupPassphrase}}
	var calls sync.Mutex
	n := 0
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		calls.Lock()
		n++
		first := n == 1
		calls.Unlock()
		if first {
			w.udisks.Unplug(udiskstest.DrivePath("Kingston", "DataTraveler", "BACKUP0002"))
			return nil, &wire.HelperError{Code: wire.CodeDeviceGone, Message: "The backup was unplugged."}
		}
		return &wire.Report{Updated: 1}, nil
	}
	w.start()
	w.plugBackup()
	note := w.waitNote("unplugged during the update")
	if !strings.Contains(note.Body, "Plug it in again to finish") {
		t.Errorf("body %q", note.Body)
	}
	if st := w.state(); st.LastAttempt.Result != pairing.ResultIncomplete {
		t.Errorf("after the pull: %+v", st.LastAttempt)
	}
	w.plugBackup()
	w.waitNote("Backup updated: you can unplug it")
	if len(w.helper.Requests()) != 2 {
		t.Errorf("helper ran %d times, want 2", len(w.helper.Requests()))
	}
}

// TestPulledStopsTheHelper: udisks sees the stick go while the helper still runs (it writes into
// the page cache of a stick that is gone until a flush fails, which may take minutes): the
// agent stops the helper at once and says the stick was unplugged, not that the update was
// cancelled.
func TestPulledStopsTheHelper(t *testing.T) {
	w := newWorld(t)
	stopped := make(chan error, 1)
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		w.udisks.Unplug(udiskstest.DrivePath("Kingston", "DataTraveler", "BACKUP0002"))
		select {
		case <-ctx.Done():
			stopped <- ctx.Err()
			return nil, fmt.Errorf("%w (%w)", &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}, ctx.Err())
		case <-time.After(wait):
			stopped <- nil
			return &wire.Report{Updated: 1}, nil
		}
	}
	w.start()
	w.plugBackup()
	note := w.waitNote("unplugged during the update")
	if err := <-stopped; err == nil {
		t.Fatal("the helper was not stopped when its stick was unplugged")
	}
	if !strings.Contains(note.Body, "Plug it in again to finish") {
		t.Errorf("body %q", note.Body)
	}
	if st := w.state(); st.LastAttempt.Result != pairing.ResultIncomplete {
		t.Errorf("after the pull: %+v", st.LastAttempt)
	}
}

func TestReminders(t *testing.T) {
	w := newWorld(t, withState(func(s *pairing.State) {
		s.RecordAttempt(pairing.Attempt{Time: time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC), Backup: backupUUID, Result: pairing.ResultSuccess})
		s.LastSuccess = time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)
		s.Backups[0].LastSuccess = s.LastSuccess
	}))
	w.start()
	r := w.waitNote("Your backup Tails is 8 days old")
	if got := r.ActionKeys(); !slices.Equal(got, []string{actUpdateNow, actSnooze, actStopRemind, notify.DefaultActionKey}) {
		t.Errorf("reminder actions %v", got)
	}
	// No flood: an hour later, nothing new.
	before := len(w.notes.Notifications())
	w.clock.Advance(time.Hour)
	time.Sleep(200 * time.Millisecond) // nothing to wait for: give a wrong reminder the chance to show
	if got := len(w.notes.Notifications()); got != before {
		t.Fatalf("%d notifications an hour later, want %d", got, before)
	}
	w.notes.Click(t, r.ID, actSnooze)
	deadline := time.Now().Add(wait)
	for w.state().Reminder.SnoozedUntil.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("snooze not recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.clock.Advance(25 * time.Hour)
	r2 := w.waitNote("Your backup Tails is 9 days old")
	w.notes.Click(t, r2.ID, actStopRemind)
	for !w.state().Reminder.Disabled {
		if time.Now().After(deadline) {
			t.Fatal("stop reminding not recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := len(w.notes.Notifications())
	w.clock.Advance(72 * time.Hour)
	time.Sleep(200 * time.Millisecond)
	if got := len(w.notes.Notifications()); got != n {
		t.Errorf("a reminder came after Stop reminding")
	}
}

func TestUpdateNowWaitsForTheStick(t *testing.T) {
	w := newWorld(t, withState(func(s *pairing.State) {
		s.LastSuccess = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		s.Backups[0].LastSuccess = s.LastSuccess
	}))
	w.start()
	r := w.waitNote("days old")
	w.notes.Click(t, r.ID, actUpdateNow)
	plug := w.waitNote("Plug in your backup Tails")
	w.plugBackup()
	w.notes.WaitForClose(t, plug.ID, wait)
	w.waitNote("Backup updated: you can unplug it")
}

func TestBackupTailsWarningAndPromote(t *testing.T) {
	w := newWorld(t)
	w.markers.ownMarker = true
	w.helper.Report = &wire.Report{}
	w.start()
	warn := w.waitNote("This is a backup Tails")
	w.plugBackup() // a backup Tails never updates anything
	w.notes.Click(t, warn.ID, actPromote)
	confirm := w.waitNote("Make this your main Tails?")
	w.notes.Click(t, confirm.ID, actPromoteSure)
	w.waitNote("This is now your main Tails")
	reqs := w.helper.Requests()
	if len(reqs) != 1 || reqs[0].Op != wire.OpPromote {
		t.Fatalf("helper requests %+v, want one promote", reqs)
	}
	if st := w.state(); len(st.Backups) != 0 {
		t.Errorf("backups of the lost main Tails still paired: %+v", st.Backups)
	}
}

// The texts themselves are tested in session (TestHelperErrorText): here, that an update that
// fails in the helper shows them.
func TestHelperErrorsAreExplained(t *testing.T) {
	w := newWorld(t)
	w.helper.Err = &wire.HelperError{Code: wire.CodeNoSpace, Message: "no space", Needed: 3_000_000_000, Available: 1_000_000_000}
	w.start()
	w.plugBackup()
	n := w.waitNote("Your backup Tails was not updated")
	if !strings.Contains(n.Body, "bigger USB stick") {
		t.Errorf("body %q", n.Body)
	}
	if errors.Is(w.helper.Err, wire.ErrHelperNoSpace) && w.state().LastAttempt.Result != pairing.ResultIncomplete {
		t.Errorf("a failed update after the helper started is recorded %s", w.state().LastAttempt.Result)
	}
}

func TestPackageManagerRunning(t *testing.T) {
	var apt tails.Feature
	for _, f := range tails.Features() {
		if f.Source == "apt" {
			apt = f
		}
	}
	w := newWorld(t)
	w.quiescer.Features = []tails.Feature{apt}
	w.quiescer.Busy = []quiesce.BusyApp{{App: apt.Apps[0], Feature: apt, PIDs: []int{1}, Closable: false}}
	w.start()
	w.plugBackup()
	q := w.waitNote("The package manager is running")
	if !slices.Equal(q.ActionKeys(), []string{actCloseApp, actSkipApp, actCancel, notify.DefaultActionKey}) {
		t.Errorf("actions %v", q.ActionKeys())
	}
	// Still running: "Try again" asks again, and nothing is ever closed by the agent.
	w.notes.Click(t, q.ID, actCloseApp)
	w.notes.WaitFor(t, func(n notifytest.Notification) bool {
		return n.Seq > q.Seq && strings.Contains(n.Summary, "The package manager is running")
	}, wait)
	if len(w.helper.Requests()) != 0 || len(w.quiescer.Closed()) != 0 {
		t.Fatal("the update went on, or the agent closed a root process")
	}
	w.quiescer.Exit("The package manager")
	again := w.notes.Notifications()
	last := again[len(again)-1]
	w.notes.Click(t, last.ID, actCloseApp)
	w.waitNote("Backup updated: you can unplug it")
	if reqs := w.helper.Requests(); len(reqs) != 1 || len(reqs[0].Skip) != 0 {
		t.Fatalf("helper requests %+v", reqs)
	}
}

// TestStoreFollowsTheFirstPairing: an agent started before the first pairing reads its store
// where the pairing then writes it.
func TestStoreFollowsTheFirstPairing(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	moved := filepath.Join(dir, "persistent", "state.json")
	// The pairing (by another process) wrote the store at its new place.
	other := pairing.NewStore(moved, w.clock.Now, nil)
	if _, err := other.Update(context.Background(), func(s *pairing.State) error {
		return s.Pair(pairing.PairedBackup{UUID: backupUUID, Label: "Kingston", Size: 1, Added: w.clock.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	path := w.store.Path() // the XDG place, with nothing paired
	w.withStore(func(s *pairing.State) { s.Backups = []pairing.PairedBackup{} })
	w.agent.cfg.StatePath = func() (string, error) { mu.Lock(); defer mu.Unlock(); return path, nil }
	w.start()
	w.plugBackup()
	w.waitNote("This Tails USB stick is not your backup")
	mu.Lock()
	path = moved
	mu.Unlock()
	w.udisks.Unplug(udiskstest.DrivePath("Kingston", "DataTraveler", "BACKUP0002"))
	w.plugBackup()
	w.waitNote("Backup updated: you can unplug it")
	if st, err := other.Load(context.Background()); err != nil || st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess {
		t.Fatalf("the update was not recorded in the moved store: %+v %v", st.LastAttempt, err)
	}
}

func (w *world) withStore(fn func(*pairing.State)) {
	w.t.Helper()
	if _, err := w.store.Update(context.Background(), func(s *pairing.State) error { fn(s); return nil }); err != nil {
		w.t.Fatal(err)
	}
}

// TestUDisksRestart: udisksd restarts; the agent keeps watching and updates a stick plugged
// in afterwards.
func TestUDisksRestart(t *testing.T) {
	w := newWorld(t)
	w.start()
	// Let the agent settle on the first daemon: the unpaired-stick note proves it is watching.
	spec := backupSpec()
	spec.LUKSUUID, spec.Serial, spec.Name = strayUUID, "STRAY", "sdd"
	w.udisks.AddStick(spec)
	w.waitNote("This Tails USB stick is not your backup")
	w.udisks.Restart(nil)
	w.plugBackup()
	w.waitNote("Backup updated: you can unplug it")
}

// TestHelperCrashThenFinishedOnNextPlug: the root helper dies mid-update (crash, or killed);
// the user is told, the attempt is incomplete, and the next plug finishes the job.
func TestHelperCrashThenFinishedOnNextPlug(t *testing.T) {
	w := newWorld(t)
	w.asker.Answers = []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}, {Pass: udiskstest.BackupPassphrase}}
	var mu sync.Mutex
	runs := 0
	w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		mu.Lock()
		runs++
		first := runs == 1
		mu.Unlock()
		if first {
			return nil, &wire.HelperCrashError{ExitCode: -1, Signal: "killed"}
		}
		return &wire.Report{Updated: 3}, nil
	}
	w.start()
	w.plugBackup()
	n := w.waitNote("Your backup Tails was not updated")
	if !strings.Contains(n.Body, "stopped unexpectedly") || !strings.Contains(n.Body, "plug it in again to finish") {
		t.Errorf("crash body %q", n.Body)
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultIncomplete {
		t.Errorf("after the crash: %+v", st.LastAttempt)
	}
	if len(w.udisks.CallsOf("Lock")) != 1 {
		t.Error("the stick was not locked after the crash")
	}
	w.udisks.Unplug(udiskstest.DrivePath("Kingston", "DataTraveler", "BACKUP0002"))
	w.plugBackup()
	w.waitNote("Backup updated: you can unplug it")
}
