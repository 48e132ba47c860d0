package notify_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/notify"
	"tails-backup/notify/notifytest"
)

// waitTimeout is generous: a loaded 2-core machine running -race can be slow.
const waitTimeout = 30 * time.Second

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l).WithField("test", t.Name())
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newNotifier(t testing.TB, addr string, mod ...func(*notify.Config)) *notify.Notifier {
	t.Helper()
	cfg := notify.Config{
		Address:        addr,
		Log:            testLog(t),
		Icon:           "drive-removable-media",
		ReconnectDelay: 20 * time.Millisecond,
	}
	for _, m := range mod {
		m(&cfg)
	}
	n, err := notify.New(testContext(t), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// setup starts a private bus, a fake server and a Notifier.
func setup(t testing.TB, opts ...notifytest.Option) (*notifytest.Bus, *notifytest.Server, *notify.Notifier) {
	t.Helper()
	bus := notifytest.StartBus(t)
	srv := notifytest.NewServer(t, bus.Address(), opts...)
	return bus, srv, newNotifier(t, bus.Address())
}

func nextEvent(t testing.TB, n *notify.Notifier) notify.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case ev, ok := <-n.Events():
		if !ok {
			t.Fatalf("Events closed")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no event within %v", waitTimeout)
	}
	return nil
}

// waitServer reads events until a ServerChanged with Available == available.
func waitServer(t testing.TB, n *notify.Notifier, available bool) notify.ServerChanged {
	t.Helper()
	for {
		ev := nextEvent(t, n)
		sc, ok := ev.(notify.ServerChanged)
		if !ok {
			t.Fatalf("got %#v while waiting for ServerChanged{Available: %v}", ev, available)
		}
		if sc.Available == available {
			return sc
		}
	}
}

func show(t testing.TB, n *notify.Notifier, note notify.Notification) uint32 {
	t.Helper()
	id, err := n.Show(testContext(t), note)
	if err != nil {
		t.Fatalf("Show: %v", err)
	}
	return id
}

func byID(id uint32) func(notifytest.Notification) bool {
	return func(n notifytest.Notification) bool { return n.ID == id }
}

func TestShowWireFormat(t *testing.T) {
	_, srv, n := setup(t)
	actions := []notify.Action{{Key: "update", Label: "Update now"}, {Key: "snooze", Label: "Later"}}
	tests := []struct {
		name        string
		note        notify.Notification
		wantIcon    string
		wantBody    string
		wantActions []string
		wantTimeout int32
		wantHints   map[string]any
	}{
		{
			name:        "defaults",
			note:        notify.Notification{Summary: "Backup is 8 days old", Body: "Plug in your backup."},
			wantIcon:    "drive-removable-media",
			wantBody:    "Plug in your backup.",
			wantActions: []string{},
			wantTimeout: -1,
			wantHints:   map[string]any{},
		},
		{
			name:        "actions in order, critical, never expires, resident",
			note:        notify.Notification{Summary: "s", Icon: "dialog-warning", Actions: actions, Urgency: notify.UrgencyCritical, Timeout: notify.TimeoutNever, Resident: true},
			wantIcon:    "dialog-warning",
			wantActions: []string{"update", "Update now", "snooze", "Later"},
			wantTimeout: 0,
			wantHints:   map[string]any{"urgency": byte(2), "resident": true},
		},
		{
			name:        "low, transient, timeout, category",
			note:        notify.Notification{Summary: "s", Urgency: notify.UrgencyLow, Transient: true, Timeout: 5 * time.Second, Category: "device"},
			wantIcon:    "drive-removable-media",
			wantActions: []string{},
			wantTimeout: 5000,
			wantHints:   map[string]any{"urgency": byte(0), "transient": true, "category": "device"},
		},
		{
			name:        "normal urgency and progress",
			note:        notify.Notification{Summary: "Updating", Body: "42%", Urgency: notify.UrgencyNormal, HasProgress: true, Progress: 42},
			wantIcon:    "drive-removable-media",
			wantBody:    "42%",
			wantActions: []string{},
			wantTimeout: -1,
			wantHints:   map[string]any{"urgency": byte(1), "value": int32(42)},
		},
		{
			name:        "progress clamped high",
			note:        notify.Notification{Summary: "s", HasProgress: true, Progress: 150},
			wantIcon:    "drive-removable-media",
			wantActions: []string{},
			wantTimeout: -1,
			wantHints:   map[string]any{"value": int32(100)},
		},
		{
			name:        "progress zero is sent",
			note:        notify.Notification{Summary: "s", HasProgress: true, Progress: -3},
			wantIcon:    "drive-removable-media",
			wantActions: []string{},
			wantTimeout: -1,
			wantHints:   map[string]any{"value": int32(0)},
		},
		{
			name:        "plain body is escaped for a markup server",
			note:        notify.Notification{Summary: "s", Body: "copied <notes & todo>.txt"},
			wantIcon:    "drive-removable-media",
			wantBody:    "copied &lt;notes &amp; todo&gt;.txt",
			wantActions: []string{},
			wantTimeout: -1,
			wantHints:   map[string]any{},
		},
		{
			name:        "markup body is sent as is; extra hints override",
			note:        notify.Notification{Summary: "s", Body: "<b>done</b>", BodyIsMarkup: true, Urgency: notify.UrgencyLow, Hints: map[string]dbus.Variant{"urgency": dbus.MakeVariant(byte(2)), "x-extra": dbus.MakeVariant("y")}},
			wantIcon:    "drive-removable-media",
			wantBody:    "<b>done</b>",
			wantActions: []string{},
			wantTimeout: -1,
			wantHints:   map[string]any{"urgency": byte(2), "x-extra": "y"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := show(t, n, tt.note)
			got := srv.WaitFor(t, byID(id), waitTimeout)
			if got.AppName != notify.DefaultAppName || got.ReplacesID != 0 || got.Icon != tt.wantIcon ||
				got.Summary != tt.note.Summary || got.Body != tt.wantBody || got.Timeout != tt.wantTimeout {
				t.Errorf("Notify(app %q, replaces %d, icon %q, summary %q, body %q, timeout %d), want (%q, 0, %q, %q, %q, %d)",
					got.AppName, got.ReplacesID, got.Icon, got.Summary, got.Body, got.Timeout,
					notify.DefaultAppName, tt.wantIcon, tt.note.Summary, tt.wantBody, tt.wantTimeout)
			}
			if !reflect.DeepEqual(got.Actions, tt.wantActions) {
				t.Errorf("actions = %q, want %q", got.Actions, tt.wantActions)
			}
			hints := map[string]any{}
			for k, v := range got.Hints {
				hints[k] = v.Value()
			}
			if !reflect.DeepEqual(hints, tt.wantHints) {
				t.Errorf("hints = %#v, want %#v", hints, tt.wantHints)
			}
		})
	}
}

func TestShowReplaceClose(t *testing.T) {
	_, srv, n := setup(t)
	ctx := testContext(t)
	id := show(t, n, notify.Notification{Summary: "Updating backup", Body: "0%", HasProgress: true})

	for _, pct := range []int{10, 50, 100} {
		newID, err := n.Replace(ctx, id, notify.Notification{Summary: "Updating backup", Body: fmt.Sprintf("%d%%", pct), HasProgress: true, Progress: pct})
		if err != nil {
			t.Fatalf("Replace: %v", err)
		}
		if newID != id {
			t.Fatalf("Replace returned ID %d, want %d (in place)", newID, id)
		}
		got, ok := srv.Open(id)
		if !ok || got.ReplacesID != id || got.Body != fmt.Sprintf("%d%%", pct) {
			t.Fatalf("open notification %d = %+v (open %v), want body %d%% replacing %d", id, got, ok, pct, id)
		}
		if v, _ := got.Hint("value"); v != int32(pct) {
			t.Errorf("value hint = %v, want %d", v, pct)
		}
	}
	if got := len(srv.Notifications()); got != 4 {
		t.Errorf("server received %d Notify calls, want 4", got)
	}

	if err := n.CloseNotification(ctx, id); err != nil {
		t.Fatalf("CloseNotification: %v", err)
	}
	if c := srv.WaitForClose(t, id, waitTimeout); !c.WasOpen {
		t.Errorf("CloseNotification(%d) reached the server for a closed notification", id)
	}
	if ev := nextEvent(t, n); ev != (notify.NotificationClosed{ID: id, Reason: notify.ReasonClosedByCall}) {
		t.Fatalf("event = %#v, want NotificationClosed{%d, ClosedByCall}", ev, id)
	}

	// Replacing a notification that is gone yields a new one.
	newID, err := n.Replace(ctx, id, notify.Notification{Summary: "again"})
	if err != nil {
		t.Fatalf("Replace closed: %v", err)
	}
	if newID == id {
		t.Errorf("Replace of a closed notification kept ID %d", id)
	}
}

func TestEvents(t *testing.T) {
	actions := []notify.Action{
		{Key: notify.DefaultActionKey, Label: "Open"},
		{Key: "update", Label: "Update now"},
		{Key: "stop", Label: "Stop reminding"},
	}
	tests := []struct {
		name     string
		resident bool
		act      func(t *testing.T, srv *notifytest.Server, n *notify.Notifier, id uint32)
		want     func(id uint32) []notify.Event
	}{
		{
			name: "click action",
			act:  func(t *testing.T, srv *notifytest.Server, _ *notify.Notifier, id uint32) { srv.Click(t, id, "update") },
			want: func(id uint32) []notify.Event {
				return []notify.Event{notify.ActionInvoked{ID: id, ActionKey: "update"}, notify.NotificationClosed{ID: id, Reason: notify.ReasonDismissedByUser}}
			},
		},
		{
			name: "click body",
			act: func(t *testing.T, srv *notifytest.Server, _ *notify.Notifier, id uint32) {
				srv.Click(t, id, notify.DefaultActionKey)
			},
			want: func(id uint32) []notify.Event {
				return []notify.Event{notify.ActionInvoked{ID: id, ActionKey: "default"}, notify.NotificationClosed{ID: id, Reason: notify.ReasonDismissedByUser}}
			},
		},
		{
			name:     "click resident keeps it open",
			resident: true,
			act: func(t *testing.T, srv *notifytest.Server, n *notify.Notifier, id uint32) {
				srv.Click(t, id, "stop")
				srv.Expire(t, id)
			},
			want: func(id uint32) []notify.Event {
				return []notify.Event{notify.ActionInvoked{ID: id, ActionKey: "stop"}, notify.NotificationClosed{ID: id, Reason: notify.ReasonExpired}}
			},
		},
		{
			name: "dismissed",
			act:  func(t *testing.T, srv *notifytest.Server, _ *notify.Notifier, id uint32) { srv.Dismiss(t, id) },
			want: func(id uint32) []notify.Event {
				return []notify.Event{notify.NotificationClosed{ID: id, Reason: notify.ReasonDismissedByUser}}
			},
		},
		{
			name: "expired",
			act:  func(t *testing.T, srv *notifytest.Server, _ *notify.Notifier, id uint32) { srv.Expire(t, id) },
			want: func(id uint32) []notify.Event {
				return []notify.Event{notify.NotificationClosed{ID: id, Reason: notify.ReasonExpired}}
			},
		},
		{
			name: "closed by call",
			act: func(t *testing.T, _ *notifytest.Server, n *notify.Notifier, id uint32) {
				if err := n.CloseNotification(testContext(t), id); err != nil {
					t.Fatal(err)
				}
			},
			want: func(id uint32) []notify.Event {
				return []notify.Event{notify.NotificationClosed{ID: id, Reason: notify.ReasonClosedByCall}}
			},
		},
	}
	_, srv, n := setup(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := show(t, n, notify.Notification{Summary: tt.name, Actions: actions, Resident: tt.resident})
			tt.act(t, srv, n, id)
			for _, want := range tt.want(id) {
				if got := nextEvent(t, n); got != want {
					t.Fatalf("event = %#v, want %#v", got, want)
				}
			}
			// Like GNOME Shell, the fake sends each signal twice (broadcast by another
			// connection, and to us by the name's owner): each event comes once.
			select {
			case ev := <-n.Events():
				t.Errorf("one event too many: %#v", ev)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

// GNOME Shell shows three buttons and drops any other without a word: Show refuses a fourth
// (the default action, a click on the notification, is no button).
func TestAtMostThreeButtons(t *testing.T) {
	_, srv, n := setup(t)
	button := func(k string) notify.Action { return notify.Action{Key: k, Label: strings.ToUpper(k)} }
	def := notify.Action{Key: notify.DefaultActionKey, Label: "Open"}
	tests := []struct {
		name    string
		actions []notify.Action
		wantErr bool
	}{
		{"three", []notify.Action{button("a"), button("b"), button("c")}, false},
		{"three and the default", []notify.Action{button("a"), def, button("b"), button("c")}, false},
		{"four", []notify.Action{button("a"), button("b"), button("c"), button("d")}, true},
		{"four and the default", []notify.Action{def, button("a"), button("b"), button("c"), button("d")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Notifications())
			_, err := n.Show(testContext(t), notify.Notification{Summary: tt.name, Actions: tt.actions})
			if got := errors.Is(err, notify.ErrTooManyActions); got != tt.wantErr {
				t.Fatalf("Show: %v; want ErrTooManyActions: %v", err, tt.wantErr)
			}
			if sent := len(srv.Notifications()) - before; tt.wantErr && sent != 0 {
				t.Errorf("%d notifications sent; want none", sent)
			}
		})
	}
}

// TestOnlyOurNotifications proves that clicks on other applications' notifications,
// signals from impostors and malformed signals never reach the caller. Signals
// travel in order through one bus, so the first event after them must be ours.
func TestOnlyOurNotifications(t *testing.T) {
	bus, srv, n := setup(t)
	foreign := notifytest.ForeignNotify(t, bus.Address(), "Other app", "open", "Open")
	id := show(t, n, notify.Notification{Summary: "ours", Actions: []notify.Action{{Key: "update", Label: "Update"}}})
	if id == foreign {
		t.Fatalf("server gave the same ID %d twice", id)
	}

	srv.Click(t, foreign, "open")
	srv.EmitRaw(t, "ActionInvoked", "not-an-id", "update")          // wrong types
	srv.EmitRaw(t, "NotificationClosed", id)                        // missing reason
	srv.EmitRaw(t, "ActionInvoked", id+100, "update")               // unknown ID
	srv.EmitRaw(t, "SomethingNew", id, "update", uint32(3), "more") // unknown signal

	// An impostor emits a signal for our ID on the same path and interface.
	impostor, err := dbus.Connect(bus.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer impostor.Close()
	if err := impostor.Emit(notify.ObjectPath, notify.InterfaceName+".ActionInvoked", id, "evil"); err != nil {
		t.Fatal(err)
	}
	// Make sure the impostor's signal went through the bus before our click.
	if err := impostor.BusObject().Call("org.freedesktop.DBus.GetId", 0).Err; err != nil {
		t.Fatal(err)
	}

	srv.Click(t, id, "update")
	want := []notify.Event{
		notify.ActionInvoked{ID: id, ActionKey: "update"},
		notify.NotificationClosed{ID: id, Reason: notify.ReasonDismissedByUser},
	}
	for _, w := range want {
		if got := nextEvent(t, n); got != w {
			t.Fatalf("event = %#v, want %#v", got, w)
		}
	}
}

func TestCapabilityFallback(t *testing.T) {
	actions := []notify.Action{
		{Key: "update", Label: "Update now", Command: "To update now, run: tails-backup update"},
		{Key: "snooze", Label: "Later"}, // no command: dropped without actions
		{Key: "stop", Label: "Stop", Command: "To stop reminders, run: tails-backup agent --no-remind <id>"},
	}
	tests := []struct {
		name        string
		caps        []string
		body        string
		wantSummary string
		wantBody    string
		wantActions []string
		wantCaps    notify.Capabilities
	}{
		{
			name:        "actions supported",
			caps:        notifytest.DefaultCapabilities(),
			body:        "Your backup is 8 days old.",
			wantSummary: "Backup",
			wantBody:    "Your backup is 8 days old.",
			wantActions: []string{"update", "Update now", "snooze", "Later", "stop", "Stop"},
			wantCaps:    notify.Capabilities{Actions: true, Body: true, BodyMarkup: true, Persistence: true, All: notifytest.DefaultCapabilities()},
		},
		{
			name:        "no actions, markup",
			caps:        []string{"body", "body-markup"},
			body:        "Your backup is 8 days old.",
			wantSummary: "Backup",
			wantBody:    "Your backup is 8 days old.\nTo update now, run: tails-backup update\nTo stop reminders, run: tails-backup agent --no-remind &lt;id&gt;",
			wantActions: []string{},
			wantCaps:    notify.Capabilities{Body: true, BodyMarkup: true, All: []string{"body", "body-markup"}},
		},
		{
			name:        "no actions, plain, empty body",
			caps:        []string{"body"},
			wantSummary: "Backup",
			wantBody:    "To update now, run: tails-backup update\nTo stop reminders, run: tails-backup agent --no-remind <id>",
			wantActions: []string{},
			wantCaps:    notify.Capabilities{Body: true, All: []string{"body"}},
		},
		{
			name:        "no actions, no body",
			caps:        []string{"persistence"},
			body:        "ignored by the server",
			wantSummary: "Backup — To update now, run: tails-backup update — To stop reminders, run: tails-backup agent --no-remind <id>",
			wantBody:    "ignored by the server\nTo update now, run: tails-backup update\nTo stop reminders, run: tails-backup agent --no-remind <id>",
			wantActions: []string{},
			wantCaps:    notify.Capabilities{Persistence: true, All: []string{"persistence"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv, n := setup(t, notifytest.WithCapabilities(tt.caps...))
			caps, err := n.Capabilities(testContext(t))
			if err != nil {
				t.Fatalf("Capabilities: %v", err)
			}
			if !reflect.DeepEqual(caps, tt.wantCaps) {
				t.Errorf("Capabilities = %+v, want %+v", caps, tt.wantCaps)
			}
			id := show(t, n, notify.Notification{Summary: "Backup", Body: tt.body, Actions: actions})
			got := srv.WaitFor(t, byID(id), waitTimeout)
			if got.Summary != tt.wantSummary {
				t.Errorf("summary = %q, want %q", got.Summary, tt.wantSummary)
			}
			if got.Body != tt.wantBody {
				t.Errorf("body = %q, want %q", got.Body, tt.wantBody)
			}
			if !reflect.DeepEqual(got.Actions, tt.wantActions) {
				t.Errorf("actions = %q, want %q", got.Actions, tt.wantActions)
			}
		})
	}
	t.Run("without actions option", func(t *testing.T) {
		_, _, n := setup(t, notifytest.WithoutActions())
		caps, err := n.Capabilities(testContext(t))
		if err != nil || caps.Actions || !caps.Body || caps.Has("actions") {
			t.Errorf("Capabilities = %+v, %v; want body without actions", caps, err)
		}
	})
}

func TestServerRestart(t *testing.T) {
	bus, srv, n := setup(t)
	old := show(t, n, notify.Notification{Summary: "before", Actions: []notify.Action{{Key: "a", Label: "A"}}})
	oldOwner := srv.Owner()

	// The new instance has no actions: the notifier must re-read capabilities.
	srv.Stop()
	if sc := waitServer(t, n, false); sc.Capabilities.Actions {
		t.Errorf("ServerChanged for a gone server has capabilities %+v", sc.Capabilities)
	}
	if n.Available() {
		t.Errorf("Available() = true with no server")
	}
	if _, err := n.Show(testContext(t), notify.Notification{Summary: "nobody"}); !errors.Is(err, notify.ErrNoServer) {
		t.Errorf("Show without server: err = %v, want ErrNoServer", err)
	}
	srv.SetCapabilities("body")
	srv.Start(t)
	sc := waitServer(t, n, true)
	if sc.Capabilities.Actions || !sc.Capabilities.Body || sc.Info.Name != "notifytest" {
		t.Errorf("ServerChanged = %+v, want body without actions from notifytest", sc)
	}
	if srv.Owner() == oldOwner || !n.Available() {
		t.Fatalf("server owner did not change (%q) or not available", oldOwner)
	}

	// A new server restarts IDs at 1: another app's notification may now have our
	// old ID. It must not be taken for ours.
	foreign := notifytest.ForeignNotify(t, bus.Address(), "other")
	if foreign != old {
		t.Fatalf("foreign notification got ID %d, want reused ID %d", foreign, old)
	}
	srv.Dismiss(t, foreign)

	id := show(t, n, notify.Notification{Summary: "after", Actions: []notify.Action{{Key: "a", Label: "A", Command: "run: a"}}})
	got := srv.WaitFor(t, byID(id), waitTimeout)
	if got.Instance != 2 || len(got.Actions) != 0 || got.Body != "run: a" {
		t.Errorf("after restart Notify = %+v, want instance 2 with fallback body", got)
	}
	srv.Expire(t, id)
	if ev := nextEvent(t, n); ev != (notify.NotificationClosed{ID: id, Reason: notify.ReasonExpired}) {
		t.Fatalf("event = %#v, want NotificationClosed{%d, Expired}", ev, id)
	}
}

func TestServerAbsentAtStart(t *testing.T) {
	bus := notifytest.StartBus(t)
	n := newNotifier(t, bus.Address())
	ctx := testContext(t)
	if n.Available() {
		t.Errorf("Available() = true with no server")
	}
	if _, err := n.Show(ctx, notify.Notification{Summary: "s"}); !errors.Is(err, notify.ErrNoServer) {
		t.Errorf("Show: err = %v, want ErrNoServer", err)
	}
	if _, err := n.Capabilities(ctx); !errors.Is(err, notify.ErrNoServer) {
		t.Errorf("Capabilities: err = %v, want ErrNoServer", err)
	}
	if err := n.CloseNotification(ctx, 1); !errors.Is(err, notify.ErrNoServer) {
		t.Errorf("CloseNotification: err = %v, want ErrNoServer", err)
	}

	srv := notifytest.NewServer(t, bus.Address())
	if sc := waitServer(t, n, true); !sc.Capabilities.Actions {
		t.Errorf("ServerChanged capabilities = %+v, want actions", sc.Capabilities)
	}
	id := show(t, n, notify.Notification{Summary: "now there is one"})
	srv.WaitFor(t, byID(id), waitTimeout)
}

func TestNoBus(t *testing.T) {
	_, err := notify.New(testContext(t), notify.Config{Address: "unix:path=/nonexistent/notifytest/bus", Log: testLog(t)})
	if err == nil || !strings.Contains(err.Error(), "connect to session bus") {
		t.Fatalf("New without bus: err = %v, want a connect error", err)
	}
}

func TestDeadline(t *testing.T) {
	tests := []struct {
		method string
		call   func(ctx context.Context, n *notify.Notifier, id uint32) error
	}{
		{notifytest.MethodNotify, func(ctx context.Context, n *notify.Notifier, _ uint32) error {
			_, err := n.Show(ctx, notify.Notification{Summary: "hangs"})
			return err
		}},
		{notifytest.MethodCloseNotification, func(ctx context.Context, n *notify.Notifier, id uint32) error {
			return n.CloseNotification(ctx, id)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			_, srv, n := setup(t)
			id := show(t, n, notify.Notification{Summary: "s"})
			srv.Block(tt.method)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx, n, id)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > waitTimeout/2 {
				t.Errorf("call returned after %v, want about 200ms", d)
			}
			srv.Unblock()
			// The notifier is still usable.
			show(t, n, notify.Notification{Summary: "after"})
		})
	}

	t.Run("CallTimeout without context deadline", func(t *testing.T) {
		bus := notifytest.StartBus(t)
		srv := notifytest.NewServer(t, bus.Address())
		n := newNotifier(t, bus.Address(), func(c *notify.Config) { c.CallTimeout = 200 * time.Millisecond })
		srv.Block(notifytest.MethodNotify)
		if _, err := n.Show(context.Background(), notify.Notification{Summary: "s"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})

	t.Run("hung server at New", func(t *testing.T) {
		bus := notifytest.StartBus(t)
		srv := notifytest.NewServer(t, bus.Address())
		srv.Block(notifytest.MethodGetCapabilities)
		n := newNotifier(t, bus.Address(), func(c *notify.Config) { c.CallTimeout = 200 * time.Millisecond })
		if _, err := n.Capabilities(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Capabilities: err = %v, want DeadlineExceeded", err)
		}
		srv.Unblock()
		id := show(t, n, notify.Notification{Summary: "s", Actions: []notify.Action{{Key: "k", Label: "K"}}})
		if got := srv.WaitFor(t, byID(id), waitTimeout); len(got.Actions) != 2 {
			t.Errorf("actions = %q, want capabilities read lazily", got.Actions)
		}
	})

	t.Run("Close interrupts a hung call", func(t *testing.T) {
		bus := notifytest.StartBus(t)
		srv := notifytest.NewServer(t, bus.Address())
		n := newNotifier(t, bus.Address(), func(c *notify.Config) { c.CallTimeout = time.Hour })
		srv.Block(notifytest.MethodNotify)
		errc := make(chan error, 1)
		go func() {
			_, err := n.Show(context.Background(), notify.Notification{Summary: "s"})
			errc <- err
		}()
		srv.WaitBlocked(t, notifytest.MethodNotify, waitTimeout)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, notify.ErrClosed) {
				t.Errorf("Show during Close: err = %v, want ErrClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Show still blocked after Close")
		}
		if _, err := n.Show(context.Background(), notify.Notification{Summary: "s"}); !errors.Is(err, notify.ErrClosed) {
			t.Errorf("Show after Close: err = %v, want ErrClosed", err)
		}
	})
}

func TestBusRestart(t *testing.T) {
	bus, srv, n := setup(t)
	show(t, n, notify.Notification{Summary: "before"})
	bus.Restart(t)
	waitServer(t, n, false)
	srv.Stop() // its connection died with the bus
	srv.Start(t)
	waitServer(t, n, true)
	id := show(t, n, notify.Notification{Summary: "after", Actions: []notify.Action{{Key: "k", Label: "K"}}})
	srv.Click(t, id, "k")
	if ev := nextEvent(t, n); ev != (notify.ActionInvoked{ID: id, ActionKey: "k"}) {
		t.Fatalf("event = %#v, want ActionInvoked{%d, k}", ev, id)
	}
}

func TestConcurrentShow(t *testing.T) {
	_, srv, n := setup(t)
	const count = 16
	ids := make(chan uint32, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() {
			id, err := n.Show(testContext(t), notify.Notification{Summary: fmt.Sprint(i)})
			if err != nil {
				t.Errorf("Show: %v", err)
			}
			ids <- id
		})
	}
	wg.Wait()
	close(ids)
	seen := map[uint32]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("ID %d returned twice", id)
		}
		seen[id] = true
		srv.Dismiss(t, id)
	}
	for range count {
		if _, ok := nextEvent(t, n).(notify.NotificationClosed); !ok {
			t.Fatal("want NotificationClosed events")
		}
	}
}

// TestEventsQueueWhileNotRead shows that the signal path does not block when the
// caller does not read: later calls still work and events come in order.
func TestEventsQueueWhileNotRead(t *testing.T) {
	_, srv, n := setup(t)
	var ids []uint32
	for i := range 50 {
		id := show(t, n, notify.Notification{Summary: fmt.Sprint(i)})
		srv.Expire(t, id)
		ids = append(ids, id)
	}
	for _, id := range ids {
		if ev := nextEvent(t, n); ev != (notify.NotificationClosed{ID: id, Reason: notify.ReasonExpired}) {
			t.Fatalf("event = %#v, want NotificationClosed{%d, Expired}", ev, id)
		}
	}
}

// goroutines counts the goroutines whose stack contains any of substrs.
func goroutines(substrs ...string) (int, string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	var matched []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, s := range substrs {
			if strings.Contains(g, s) {
				count++
				matched = append(matched, g)
				break
			}
		}
	}
	return count, strings.Join(matched, "\n\n")
}

// waitGoroutines waits until at most want goroutines match substrs. godbus ends
// its reader goroutine asynchronously once the socket is closed, so this polls.
func waitGoroutines(t *testing.T, want int, substrs ...string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got, stacks := goroutines(substrs...)
		if got <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left (want %d):\n%s", got, want, stacks)
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling a condition, not synchronising
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	bus := notifytest.StartBus(t)
	srv := notifytest.NewServer(t, bus.Address())
	const ours, godbus = "tails-backup/notify.(*", "github.com/godbus/dbus/v5."
	baseline, _ := goroutines(godbus)

	for i := range 3 {
		n, err := notify.New(testContext(t), notify.Config{Address: bus.Address(), Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		id := show(t, n, notify.Notification{Summary: fmt.Sprint(i), Actions: []notify.Action{{Key: "k", Label: "K"}}})
		srv.Click(t, id, "k")
		nextEvent(t, n)
		// One event is left unread in the queue on purpose.
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if ev, ok := <-n.Events(); ok {
			t.Fatalf("Events not closed after Close, got %#v", ev)
		}
		// Close has waited for the loop; the goroutine may still be unwinding.
		waitGoroutines(t, 0, ours)
	}
	waitGoroutines(t, baseline, godbus)
}
