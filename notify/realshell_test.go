package notify_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/gnomeshell"
	"tails-backup/notify"
	"tails-backup/notify/notifytest"
)

// The tests below run against the real GNOME Shell (43 on the host, 48 as Tails 7 has it; see
// internal/gnomeshell and docs/gnome-shell.md), clicking as a person does. What they found the
// real shell does differently from notifytest's fake is handled in notify and copied by the fake.

// quiet is how long a test waits to be sure that no further event comes.
const quiet = 700 * time.Millisecond

// eachShell starts each GNOME Shell once and runs the subtests against it, each on an empty tray.
func eachShell(t *testing.T, tests map[string]func(*testing.T, *gnomeshell.Session)) {
	names := make([]string, 0, len(tests))
	for name := range tests {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			for _, name := range names {
				t.Run(name, func(t *testing.T) {
					if err := s.Clear(testContext(t)); err != nil {
						t.Fatal(err)
					}
					tests[name](t, s)
				})
			}
		})
	}
}

// events collects the Notifier's events until quiet passes without one.
func events(t *testing.T, n *notify.Notifier) []notify.Event {
	t.Helper()
	var evs []notify.Event
	for {
		select {
		case ev := <-n.Events():
			evs = append(evs, ev)
		case <-time.After(quiet):
			return evs
		}
	}
}

// eventsUntilClosed collects the events until NotificationClosed(id), then until quiet.
func eventsUntilClosed(t *testing.T, n *notify.Notifier, id uint32) []notify.Event {
	t.Helper()
	var evs []notify.Event
	for {
		ev := nextEvent(t, n)
		evs = append(evs, ev)
		if c, ok := ev.(notify.NotificationClosed); ok && c.ID == id {
			return append(evs, events(t, n)...)
		}
	}
}

func reminder() notify.Notification {
	return notify.Notification{
		Summary: "Your backup Tails is 8 days old",
		Body:    "Plug in your backup Tails to update it.",
		Actions: []notify.Action{
			{Key: "update", Label: "Update now"},
			{Key: "snooze", Label: "Remind me tomorrow"},
			{Key: "stop", Label: "Stop reminding"},
		},
		Timeout: notify.TimeoutNever,
	}
}

func TestRealShell(t *testing.T) {
	eachShell(t, map[string]func(*testing.T, *gnomeshell.Session){
		"ServerInformation": func(t *testing.T, s *gnomeshell.Session) {
			ctx := testContext(t)
			n := newNotifier(t, s.Address())
			caps, err := n.Capabilities(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := notifytest.DefaultCapabilities(); !slices.Equal(caps.All, want) {
				t.Errorf("capabilities %q; notifytest's fake says %q", caps.All, want)
			}
			conn, err := dbus.Connect(s.Address())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var name, vendor, version, spec string
			if err := conn.Object(notify.ServiceName, notify.ObjectPath).CallWithContext(ctx,
				notify.InterfaceName+".GetServerInformation", 0).Store(&name, &vendor, &version, &spec); err != nil {
				t.Fatal(err)
			}
			t.Logf("server: %s %s %s, spec %s", name, vendor, version, spec)
			if name != "gnome-shell" || vendor != "GNOME" || spec != "1.2" {
				t.Errorf("server %q %q %q %q; want gnome-shell GNOME * 1.2", name, vendor, version, spec)
			}
		},
		"FourActions": func(t *testing.T, s *gnomeshell.Session) {
			ctx := testContext(t)
			// The shell shows the first three buttons of four and drops the fourth without a
			// word: notify refuses a fourth rather than lose it.
			conn, err := dbus.Connect(s.Address())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			actions := []string{"a", "One", "b", "Two", "c", "Three", "d", "Four"}
			if err := conn.Object(notify.ServiceName, notify.ObjectPath).CallWithContext(ctx, notify.InterfaceName+".Notify", 0,
				"test", uint32(0), "", "Four buttons", "", actions, map[string]dbus.Variant{}, int32(0)).Err; err != nil {
				t.Fatal(err)
			}
			if _, err := s.WaitBanner(ctx, "Four buttons"); err != nil {
				t.Fatal(err)
			}
			if err := s.ExpandBanner(ctx); err != nil {
				t.Fatal(err)
			}
			shown, err := s.Buttons(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"One", "Two", "Three"}; !slices.Equal(shown, want) {
				t.Errorf("the shell shows the buttons %q of four; want %q", shown, want)
			}
			n := newNotifier(t, s.Address())
			note := reminder()
			note.Actions = append(note.Actions, notify.Action{Key: "more", Label: "More"})
			if _, err := n.Show(ctx, note); !errors.Is(err, notify.ErrTooManyActions) {
				t.Errorf("Show with four buttons: %v; want ErrTooManyActions", err)
			}
			// The default action is no button: three buttons and it are fine.
			note.Actions = append(reminder().Actions, notify.Action{Key: notify.DefaultActionKey, Label: "Open"})
			if _, err := n.Show(ctx, note); err != nil {
				t.Errorf("Show with three buttons and the default action: %v", err)
			}
		},
		"Replace": func(t *testing.T, s *gnomeshell.Session) {
			ctx := testContext(t)
			n := newNotifier(t, s.Address())
			note := notify.Notification{Summary: "Updating your backup Tails", Body: "10% done.", Timeout: notify.TimeoutNever,
				Actions: []notify.Action{{Key: "cancel", Label: "Cancel"}}, HasProgress: true, Progress: 10}
			id := show(t, n, note)
			if b, err := s.WaitBanner(ctx, note.Summary); err != nil || b.Body != "10% done." {
				t.Fatalf("banner %+v, %v; want the body 10%% done.", b, err)
			}
			note.Body, note.Progress = "60% done.", 60
			id2, err := n.Replace(ctx, id, note)
			if err != nil {
				t.Fatal(err)
			}
			if id2 != id {
				t.Errorf("Replace gave the ID %d; want the same %d", id2, id)
			}
			err = poll(ctx, func() bool {
				b, ok, err := s.Banner(ctx)
				return err == nil && ok && b.Body == "60% done."
			})
			if err != nil {
				ns, _ := s.Notifications(ctx)
				t.Fatalf("the banner never said 60%% done.: %v (tray: %+v)", err, ns)
			}
			// No progress bar: the shell ignores the hint "value", so the body must say it.
			bar, err := s.Eval(ctx, `(() => { const b = Main.messageTray._banner; const has = a => a.constructor.name.toLowerCase().includes('progress') || (a.style_class ?? '').includes('progress') || a.get_children().some(has); return has(b); })()`)
			if err != nil || bar != "false" {
				t.Errorf("a progress bar in the banner: %s, %v; want none", bar, err)
			}
			// GNOME Shell 43 drops the buttons of the banner replaced in place (its daemon's
			// update(clear), notify.ReplaceKeepsButtons); 48 keeps them.
			if err := s.ExpandBanner(ctx); err != nil {
				t.Fatal(err)
			}
			shown, err := s.Buttons(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{}
			if notify.ReplaceKeepsButtons(n.ServerInfo()) {
				want = []string{"Cancel"}
			}
			if !slices.Equal(shown, want) {
				t.Errorf("the banner replaced in place shows the buttons %q; want %q (server %+v)", shown, want, n.ServerInfo())
			}
			if err := s.Screenshot(ctx, screenshotPath(t, s, "progress")); err != nil {
				t.Fatal(err)
			}
		},
		"ProgressCancel": func(t *testing.T, s *gnomeshell.Session) {
			// ShowProgress keeps a Cancel that a person clicks on the banner after several
			// updates, on 43 as on 48.
			ctx := testContext(t)
			n := newNotifier(t, s.Address())
			const steady = "Do not unplug it. The notification list shows the progress."
			var ids notify.ProgressIDs
			for _, pct := range []string{"0", "30", "60"} {
				note := notify.Notification{Summary: "Updating your backup Tails", Body: pct + "% done.", Timeout: notify.TimeoutNever,
					Resident: true, Actions: []notify.Action{{Key: "cancel", Label: "Cancel"}}}
				var err error
				if ids, err = n.ShowProgress(ctx, ids, note, steady); err != nil {
					t.Fatal(err)
				}
				if _, err := s.WaitBanner(ctx, note.Summary); err != nil {
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond) // the shell redraws the banner
			}
			// The progress is shown: on the banner (48), or in the list (43).
			err := poll(ctx, func() bool {
				ns, err := s.Notifications(ctx)
				return err == nil && slices.ContainsFunc(ns, func(x gnomeshell.Notification) bool { return x.Body == "60% done." })
			})
			if err != nil {
				ns, _ := s.Notifications(ctx)
				t.Fatalf("no notification says 60%% done.: %v (tray: %+v)", err, ns)
			}
			b, _, err := s.Banner(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantBody := "60% done."
			if !notify.ReplaceKeepsButtons(n.ServerInfo()) {
				wantBody = steady
			}
			if b.Body != wantBody {
				t.Errorf("the banner says %q; want %q", b.Body, wantBody)
			}
			if err := s.ExpandBanner(ctx); err != nil {
				t.Fatal(err)
			}
			if shown, err := s.Buttons(ctx); err != nil || !slices.Equal(shown, []string{"Cancel"}) {
				t.Errorf("after the updates, the banner shows the buttons %q (%v); want Cancel", shown, err)
			}
			if err := s.ClickButton(ctx, "Cancel"); err != nil {
				t.Fatal(err)
			}
			got := events(t, n)
			want := notify.ActionInvoked{ID: ids.Banner, ActionKey: "cancel"}
			if slices.Index(got, notify.Event(want)) < 0 {
				t.Errorf("events %#v; want %#v", got, want)
			}
		},
		"ProgressBannerGoes": func(t *testing.T, s *gnomeshell.Session) {
			// A person goes back to work: the progress banner goes. On 43 its transient banner
			// closes and the progress goes on in the list, without a banner (no banner storm);
			// on 48 the next update shows the banner again, Cancel and all.
			ctx := testContext(t)
			n := newNotifier(t, s.Address())
			split := !notify.ReplaceKeepsButtons(n.ServerInfo())
			note := func(body string) notify.Notification {
				return notify.Notification{Summary: "Updating your backup Tails", Body: body, Timeout: notify.TimeoutNever,
					Resident: true, Actions: []notify.Action{{Key: "cancel", Label: "Cancel"}}}
			}
			ids, err := n.ShowProgress(ctx, notify.ProgressIDs{}, note("10% done."), "Do not unplug it.")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.WaitBanner(ctx, "Updating your backup Tails"); err != nil {
				t.Fatal(err)
			}
			if err := s.TouchElsewhere(ctx); err != nil {
				t.Fatal(err)
			}
			if err := poll(ctx, func() bool { _, shown, err := s.Banner(ctx); return err == nil && !shown }); err != nil {
				t.Fatalf("the banner did not go after the person touched the machine: %v", err)
			}
			if split {
				want := []notify.Event{notify.NotificationClosed{ID: ids.Banner, Reason: notify.ReasonExpired}}
				if got := events(t, n); !slices.Equal(got, want) {
					t.Errorf("events %#v when the banner went; want %#v", got, want)
				}
			}
			if ids, err = n.ShowProgress(ctx, ids, note("50% done."), "Do not unplug it."); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // a banner would be in place by now
			b, shown, err := s.Banner(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ns, err := s.Notifications(ctx)
			if err != nil {
				t.Fatal(err)
			}
			inList := slices.ContainsFunc(ns, func(x gnomeshell.Notification) bool { return x.Body == "50% done." })
			if split {
				if shown || !inList || len(ns) != 1 {
					t.Errorf("on 43, after the banner went: banner %+v (shown %v), list %+v; want no banner and the progress in the list only", b, shown, ns)
				}
			} else {
				if !shown || b.Body != "50% done." {
					t.Errorf("on 48, the update shows the banner %+v (shown %v); want it again with the progress", b, shown)
				}
				if err := s.ExpandBanner(ctx); err != nil {
					t.Fatal(err)
				}
				if got, err := s.Buttons(ctx); err != nil || !slices.Equal(got, []string{"Cancel"}) {
					t.Errorf("the banner shown again has the buttons %q (%v); want Cancel", got, err)
				}
			}
		},
		"DefaultAction": func(t *testing.T, s *gnomeshell.Session) {
			ctx := testContext(t)
			n := newNotifier(t, s.Address())
			note := reminder()
			note.Actions = append(note.Actions, notify.Action{Key: notify.DefaultActionKey, Label: "Open Tails Backup"})
			id := show(t, n, note)
			b, err := s.WaitBanner(ctx, note.Summary)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.Join(b.Actions, ","), "Open Tails Backup") {
				shown, _ := s.Buttons(ctx)
				if slices.Contains(shown, "Open Tails Backup") {
					t.Errorf("the default action shows as a button: %q", shown)
				}
			}
			if err := s.ClickBody(ctx); err != nil {
				t.Fatal(err)
			}
			got := eventsUntilClosed(t, n, id)
			want := []notify.Event{notify.ActionInvoked{ID: id, ActionKey: notify.DefaultActionKey}, notify.NotificationClosed{ID: id, Reason: notify.ReasonDismissedByUser}}
			if !slices.Equal(got, want) {
				t.Errorf("events %#v; want %#v", got, want)
			}
		},
		"ThreeButtons": func(t *testing.T, s *gnomeshell.Session) {
			ctx := testContext(t)
			n := newNotifier(t, s.Address())
			show(t, n, reminder())
			b, err := s.WaitBanner(ctx, reminder().Summary)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"Update now", "Remind me tomorrow", "Stop reminding"}
			if !slices.Equal(b.Actions, want) || b.Body != reminder().Body {
				t.Errorf("banner %+v; want the body %q and the buttons %q", b, reminder().Body, want)
			}
			if err := s.ExpandBanner(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Screenshot(ctx, screenshotPath(t, s, "reminder")); err != nil {
				t.Fatal(err)
			}
		},
		"ClickButton": func(t *testing.T, s *gnomeshell.Session) {
			ctx := testContext(t)
			n := newNotifier(t, s.Address())
			id := show(t, n, reminder())
			if _, err := s.WaitBanner(ctx, reminder().Summary); err != nil {
				t.Fatal(err)
			}
			if err := s.ClickButton(ctx, "Remind me tomorrow"); err != nil {
				t.Fatal(err)
			}
			got := eventsUntilClosed(t, n, id)
			want := []notify.Event{notify.ActionInvoked{ID: id, ActionKey: "snooze"}, notify.NotificationClosed{ID: id, Reason: notify.ReasonDismissedByUser}}
			if !slices.Equal(got, want) {
				t.Errorf("events %#v; want %#v", got, want)
			}
		},
	})
}

// screenshotPath is where a test's screenshot goes: the test's temporary directory, or
// $GNOMESHELL_SCREENSHOTS when set (to look at them).
func screenshotPath(t *testing.T, s *gnomeshell.Session, name string) string {
	dir := t.TempDir()
	if d := os.Getenv("GNOMESHELL_SCREENSHOTS"); d != "" {
		dir = d
	}
	return dir + "/" + s.Shell().String() + "-" + name + ".png"
}

// poll checks cond every 100 ms until it holds or ctx ends.
func poll(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
