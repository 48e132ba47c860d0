package session

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/pairing"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// Shared by the tests of the flows a person starts (pair, restore, verify).

// otherUUID is the Persistent Storage of another Tails.
const otherUUID = "7a7a7a7a-1111-4111-8111-0000000000aa"

var flowNow = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// flowWorld is a fake udisks2 with the boot stick sda and the Tails stick sdb (locked), and
// a pairing store in a temporary folder.
type flowWorld struct {
	fake      *udiskstest.Service
	connect   Connect
	connected int
	store     string
	log       *logrus.Entry
	logBuf    *syncBuffer // everything logged, at every level
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logs is everything the flow logged.
func (w *flowWorld) logs() string { return w.logBuf.String() }

func newFlowWorld(t *testing.T, spec udiskstest.StickSpec) *flowWorld {
	t.Helper()
	addr := udiskstest.StartBus(t)
	fake := udiskstest.NewService(t, addr)
	fake.SetFilesystemDelay(0)
	fake.SetMountRoot(t.TempDir())
	fake.AddStick(udiskstest.StickSpec{Name: "sda", Vendor: "SanDisk", Model: "Cruzer", Removable: true, ConnectionBus: "usb",
		Tails: true, Passphrase: "boot", HintSystem: true, LUKSUUID: bootUUID, MountedAt: testBoot.Persistence, SystemMountedAt: testBoot.System})
	spec.Name, spec.Vendor, spec.Model, spec.Removable, spec.ConnectionBus, spec.Tails = "sdb", "Kingston", "DataTraveler", true, "usb", true
	spec.Passphrase, spec.LUKSUUID = udiskstest.BackupPassphrase, backupUUID
	fake.AddStick(spec)
	buf := &syncBuffer{}
	l := logrus.New()
	l.SetLevel(logrus.TraceLevel)
	l.SetOutput(buf)
	w := &flowWorld{fake: fake, store: filepath.Join(t.TempDir(), "state.json"), log: logrus.NewEntry(l), logBuf: buf}
	w.connect = func(ctx context.Context) (FlowDisks, *udisks.Snapshot, error) {
		w.connected++
		conn, err := dbus.Connect(addr)
		if err != nil {
			return nil, nil, err
		}
		t.Cleanup(func() { conn.Close() })
		disks := udisks.New(conn, udisks.Options{Boot: testBoot})
		snap, err := disks.GetSnapshot(ctx)
		return disks, snap, err
	}
	return w
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.PanicLevel)
	return logrus.NewEntry(l)
}

func (w *flowWorld) openStore() (*pairing.Store, error) {
	return pairing.NewStore(w.store, func() time.Time { return flowNow }, w.log), nil
}

func (w *flowWorld) state(t *testing.T) pairing.State {
	t.Helper()
	s, _ := w.openStore()
	st, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (w *flowWorld) pair(t *testing.T, uuid string) {
	t.Helper()
	s, _ := w.openStore()
	if _, err := s.Update(context.Background(), func(st *pairing.State) error {
		return st.Pair(pairing.PairedBackup{UUID: uuid, Label: "Kingston DataTraveler", Added: flowNow})
	}); err != nil {
		t.Fatal(err)
	}
}

// released: the stick ends unmounted and locked.
func (w *flowWorld) released(t *testing.T) {
	t.Helper()
	if n, m := len(w.fake.CallsOf("Unlock")), len(w.fake.CallsOf("Lock")); n > 0 && m == 0 {
		t.Errorf("unlocked %d times, never locked again: %v", n, methods(w.fake))
	}
	if n, m := len(w.fake.CallsOf("Mount")), len(w.fake.CallsOf("Unmount")); n > 0 && m == 0 {
		t.Errorf("mounted %d times, never unmounted: %v", n, methods(w.fake))
	}
}

// fakeUI is what the person is shown and answers, for the tests of the flows.
type fakeUI struct {
	mu      sync.Mutex
	confirm bool
	lines   []string // said, and "warning: " said
	events  []wire.Event
}

func (u *fakeUI) Sticks(cands []Stick, st *pairing.State) {
	u.add("sticks: " + strings.Join(slices.Collect(func(yield func(string) bool) {
		for _, c := range cands {
			if !yield(Device(c.Stick)) {
				return
			}
		}
	}), " "))
}
func (u *fakeUI) Confirm(ctx context.Context, question string) bool {
	u.add("? " + question)
	return u.confirm
}
func (u *fakeUI) Say(s string)  { u.add(s) }
func (u *fakeUI) Warn(s string) { u.add("warning: " + s) }
func (u *fakeUI) Event(ev wire.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.events = append(u.events, ev)
}

func (u *fakeUI) add(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lines = append(u.lines, s)
}

func (u *fakeUI) text() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.lines, "\n")
}

// wantErr checks err against want: "" is no error, else a part of its text.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("error %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want one with %q", err, want)
	}
}

// restoreUI is fakeUI with the answers about open applications, in order (none left: no
// answer).
type restoreUI struct {
	fakeUI
	apps     []AppAnswer
	asked    []string // the applications asked about
	complete []bool   // EndProgress calls
}

func (u *restoreUI) ConfirmRestore(ctx context.Context, other bool) bool {
	u.add(fmt.Sprintf("? restore, other %v", other))
	return u.confirm
}

func (u *restoreUI) AskApp(ctx context.Context, q AppQuestion) (AppAnswer, error) {
	u.asked = append(u.asked, q.App)
	u.add(q.Text)
	if len(u.apps) == 0 {
		return AppCancel, ErrNoAnswer
	}
	a := u.apps[0]
	u.apps = u.apps[1:]
	return a, nil
}

func (u *restoreUI) EndProgress(complete bool) { u.complete = append(u.complete, complete) }
