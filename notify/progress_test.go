package notify_test

import (
	"slices"
	"testing"

	"tails-backup/notify"
	"tails-backup/notify/notifytest"
)

func TestReplaceKeepsButtons(t *testing.T) {
	for _, tc := range []struct {
		info notify.ServerInfo
		want bool
	}{
		{notify.ServerInfo{Name: "gnome-shell", Version: "43.9"}, false},
		{notify.ServerInfo{Name: "gnome-shell", Version: "45.2"}, false},
		{notify.ServerInfo{Name: "gnome-shell", Version: "46.0"}, true},
		{notify.ServerInfo{Name: "gnome-shell", Version: "48.7"}, true},
		{notify.ServerInfo{Name: "gnome-shell", Version: "unknown"}, true},
		{notify.ServerInfo{Name: "dunst", Version: "1.9.0"}, true},
		{notify.ServerInfo{}, true},
	} {
		if got := notify.ReplaceKeepsButtons(tc.info); got != tc.want {
			t.Errorf("ReplaceKeepsButtons(%+v) = %v; want %v", tc.info, got, tc.want)
		}
	}
}

// A progress with Cancel, updated several times, keeps a Cancel that a person can click on the
// banner: one notification replaced in place on GNOME Shell 48; on 43, a transient banner never
// replaced and a low-urgency entry of the notification list replaced in place.
func TestShowProgress(t *testing.T) {
	const steady = "Do not unplug it. The notification list shows the progress."
	progress := func(body string) notify.Notification {
		return notify.Notification{Summary: "Updating", Body: body, Resident: true, HasProgress: true, Progress: 1,
			Actions: []notify.Action{{Key: "cancel", Label: "Cancel"}, {Key: notify.DefaultActionKey, Label: "Open"}}}
	}
	for _, version := range []string{notifytest.GNOMEShell48, notifytest.GNOMEShell43} {
		t.Run(version, func(t *testing.T) {
			_, srv, n := setup(t, notifytest.WithVersion(version))
			split := version == notifytest.GNOMEShell43
			if got := notify.ReplaceKeepsButtons(n.ServerInfo()); got == split {
				t.Fatalf("ReplaceKeepsButtons(%+v) = %v", n.ServerInfo(), got)
			}
			var ids notify.ProgressIDs
			for _, body := range []string{"0% done", "30% done", "60% done"} {
				next, err := n.ShowProgress(testContext(t), ids, progress(body), steady)
				if err != nil {
					t.Fatal(err)
				}
				if ids.Banner != 0 && (next.Banner != ids.Banner || next.List != ids.List) {
					t.Errorf("the progress moved from %+v to %+v; want it in place", ids, next)
				}
				ids = next
			}
			banner, _ := srv.Open(ids.Banner)
			if got := srv.Buttons(ids.Banner); !slices.Equal(got, []string{"cancel"}) || !srv.OnScreen(ids.Banner) {
				t.Errorf("after the updates, the banner %+v shows %q (on screen %v); want Cancel", banner, got, srv.OnScreen(ids.Banner))
			}
			if !split {
				if ids.List != 0 || banner.Body != "60% done" {
					t.Errorf("ids %+v, banner %+v; want one notification showing the progress", ids, banner)
				}
			} else {
				list, _ := srv.Open(ids.List)
				transient, _ := banner.Hint("transient")
				urgency, _ := list.Hint("urgency")
				_, bannerValue := banner.Hint("value")
				if banner.Body != steady || transient != true || bannerValue || banner.ReplacesID != 0 {
					t.Errorf("banner %+v; want a transient one with the steady text, never replaced", banner)
				}
				if list.Body != "60% done" || urgency != byte(0) || !slices.Equal(list.ActionKeys(), []string{notify.DefaultActionKey}) || srv.OnScreen(ids.List) {
					t.Errorf("list entry %+v; want the progress, low urgency, only the default action, no banner", list)
				}
				notifies := 0
				for _, rec := range srv.Notifications() {
					if rec.ID == ids.Banner {
						notifies++
					}
				}
				if notifies != 1 {
					t.Errorf("the banner was sent %d times; want once", notifies)
				}
			}
			srv.Click(t, ids.Banner, "cancel")
			if ev, ok := nextEvent(t, n).(notify.ActionInvoked); !ok || ev.ID != ids.Banner || ev.ActionKey != "cancel" {
				t.Errorf("event %#v after Cancel; want ActionInvoked(%d, cancel)", ev, ids.Banner)
			}
		})
	}
}

// The banner goes (the person went back to work): on 43 the transient banner closes and the
// progress goes on in the list without a banner; on 48 the next update shows the banner again
// with Cancel. As the real shells do (TestRealShell's ProgressBannerGoes).
func TestShowProgressAfterBannerGoes(t *testing.T) {
	note := func(body string) notify.Notification {
		return notify.Notification{Summary: "Updating", Body: body, Resident: true,
			Actions: []notify.Action{{Key: "cancel", Label: "Cancel"}}}
	}
	for _, version := range []string{notifytest.GNOMEShell48, notifytest.GNOMEShell43} {
		t.Run(version, func(t *testing.T) {
			_, srv, n := setup(t, notifytest.WithVersion(version))
			split := version == notifytest.GNOMEShell43
			ids, err := n.ShowProgress(testContext(t), notify.ProgressIDs{}, note("10% done"), "steady")
			if err != nil {
				t.Fatal(err)
			}
			srv.HideBanner(t, ids.Banner)
			if split {
				if ev, ok := nextEvent(t, n).(notify.NotificationClosed); !ok || ev.ID != ids.Banner || ev.Reason != notify.ReasonExpired {
					t.Errorf("event %#v when the banner went; want it closed, expired", ev)
				}
			}
			if ids, err = n.ShowProgress(testContext(t), ids, note("50% done"), "steady"); err != nil {
				t.Fatal(err)
			}
			if split {
				if srv.OnScreen(ids.List) || srv.OnScreen(ids.Banner) {
					t.Errorf("on 43, a banner shows after the first one went (%+v)", ids)
				}
				if list, _ := srv.Open(ids.List); list.Body != "50% done" {
					t.Errorf("list entry %+v; want the progress", list)
				}
			} else if !srv.OnScreen(ids.Banner) || !slices.Equal(srv.Buttons(ids.Banner), []string{"cancel"}) {
				t.Errorf("on 48, the update shows no banner with Cancel again (%+v)", ids)
			}
		})
	}
}
