package notifytest_test

import (
	"context"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/notify/notifytest"
)

const waitTimeout = 30 * time.Second

type client struct {
	t    *testing.T
	conn *dbus.Conn
	sigs chan *dbus.Signal
}

func newClient(t *testing.T, addr string) *client {
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.Notifications")); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, sigs: make(chan *dbus.Signal, 64)}
	conn.Signal(c.sigs)
	return c
}

func (c *client) call(method string, args ...any) *dbus.Call {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return c.conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications").
		CallWithContext(ctx, "org.freedesktop.Notifications."+method, 0, args...)
}

func (c *client) notify(replaces uint32, summary string, actions ...string) uint32 {
	c.t.Helper()
	if actions == nil {
		actions = []string{}
	}
	var id uint32
	if err := c.call("Notify", "app", replaces, "icon", summary, "body", actions, map[string]dbus.Variant{"urgency": dbus.MakeVariant(byte(2))}, int32(-1)).Store(&id); err != nil {
		c.t.Fatalf("Notify: %v", err)
	}
	return id
}

func (c *client) next() *dbus.Signal {
	c.t.Helper()
	select {
	case s := <-c.sigs:
		return s
	case <-time.After(waitTimeout):
		c.t.Fatal("no signal")
	}
	return nil
}

// signalsTwice reads 2*len(want) signals, each of want once from the owner of the name
// (sent to this client) and once from another connection (broadcast), as GNOME Shell sends
// them; the two may come in either order, from two connections. It returns the owner's, in
// their order.
func (c *client) signalsTwice(owner string, want ...string) []*dbus.Signal {
	c.t.Helper()
	var fromOwner []*dbus.Signal
	others := map[string]int{}
	for range 2 * len(want) {
		s := c.next()
		name := s.Name[len("org.freedesktop.Notifications."):]
		if s.Sender == owner {
			fromOwner = append(fromOwner, s)
		} else {
			others[name]++
		}
	}
	for i, w := range want {
		if i >= len(fromOwner) || fromOwner[i].Name != "org.freedesktop.Notifications."+w || others[w] != 1 {
			c.t.Fatalf("signals from the owner %v, broadcast by another connection %v; want %q once each", fromOwner, others, want)
		}
	}
	return fromOwner
}

func TestServer(t *testing.T) {
	bus := notifytest.StartBus(t)
	srv := notifytest.NewServer(t, bus.Address(), notifytest.WithCapabilities("body", "actions"))
	c := newClient(t, bus.Address())

	var caps []string
	if err := c.call("GetCapabilities").Store(&caps); err != nil || !reflect.DeepEqual(caps, []string{"body", "actions"}) {
		t.Fatalf("GetCapabilities = %q, %v", caps, err)
	}

	id := c.notify(0, "one", "k", "K")
	if id != 1 {
		t.Errorf("first ID = %d, want 1", id)
	}
	got := srv.WaitFor(t, func(n notifytest.Notification) bool { return n.Summary == "one" }, waitTimeout)
	if got.ID != 1 || got.Seq != 1 || got.Instance != 1 || got.Sender != c.conn.Names()[0] || got.AppName != "app" ||
		!reflect.DeepEqual(got.ActionKeys(), []string{"k"}) {
		t.Errorf("recorded %+v", got)
	}
	if v, ok := got.Hint("urgency"); !ok || v != byte(2) {
		t.Errorf("urgency hint = %v, %v", v, ok)
	}
	if again := c.notify(id, "one bis", "k", "K"); again != id {
		t.Errorf("replacing an open notification gave ID %d, want %d", again, id)
	}
	if open, _ := srv.Open(id); open.Summary != "one bis" {
		t.Errorf("open notification = %+v", open)
	}

	srv.Click(t, id, "k")
	sigs := c.signalsTwice(srv.Owner(), "ActivationToken", "ActionInvoked", "NotificationClosed")
	if body := sigs[2].Body; body[1] != notifytest.ReasonDismissed {
		t.Errorf("closed reason %v, want 2", body[1])
	}
	if newID := c.notify(id, "replaces a closed one"); newID == id {
		t.Errorf("replacing a closed notification kept ID %d", id)
	} else {
		if err := c.call("CloseNotification", newID).Err; err != nil {
			t.Fatal(err)
		}
		if sigs := c.signalsTwice(srv.Owner(), "NotificationClosed"); sigs[0].Body[1] != notifytest.ReasonClosed {
			t.Errorf("signal %v, want NotificationClosed reason 3", sigs[0])
		}
		if cc := srv.WaitForClose(t, newID, waitTimeout); !cc.WasOpen {
			t.Errorf("close call %+v", cc)
		}
	}

	srv.Block(notifytest.MethodNotify)
	done := make(chan uint32)
	go func() {
		var id uint32
		_ = c.call("Notify", "app", uint32(0), "", "blocked", "", []string{}, map[string]dbus.Variant{}, int32(-1)).Store(&id)
		done <- id
	}()
	srv.WaitBlocked(t, notifytest.MethodNotify, waitTimeout)
	srv.Unblock()
	if id := <-done; id == 0 {
		t.Errorf("blocked Notify answered ID 0 after Unblock")
	}

	owner := srv.Owner()
	srv.Restart(t)
	if srv.Owner() == owner {
		t.Errorf("owner unchanged after Restart")
	}
	if id := c.notify(0, "after restart"); id != 1 {
		t.Errorf("first ID after restart = %d, want 1", id)
	}
	if last := srv.Notifications(); last[len(last)-1].Instance != 2 {
		t.Errorf("instance = %d, want 2", last[len(last)-1].Instance)
	}
}

// fatalRecorder is a testing.TB whose Fatalf ends the goroutine and records it.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (r *fatalRecorder) Helper()               {}
func (r *fatalRecorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }

func clickFails(t *testing.T, srv *notifytest.Server, id uint32, key string) bool {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Click(r, id, key)
	}()
	<-done
	return r.failed
}

// GNOME Shell shows three buttons of four and lets a person click the notification itself
// (the default action): the fake lets a test click just those.
func TestServerShowsThreeButtons(t *testing.T) {
	bus := notifytest.StartBus(t)
	srv := notifytest.NewServer(t, bus.Address())
	c := newClient(t, bus.Address())
	id := c.notify(0, "four", "a", "A", "b", "B", "default", "Open", "c", "C", "d", "D")
	srv.WaitFor(t, func(n notifytest.Notification) bool { return n.ID == id }, waitTimeout)
	if !clickFails(t, srv, id, "d") {
		t.Errorf("clicking the fourth button worked; GNOME Shell does not show it")
	}
	if clickFails(t, srv, id, "default") {
		t.Errorf("clicking the notification (default) failed")
	}
	id = c.notify(0, "three", "a", "A", "b", "B", "c", "C")
	srv.WaitFor(t, func(n notifytest.Notification) bool { return n.ID == id }, waitTimeout)
	if clickFails(t, srv, id, "c") {
		t.Errorf("clicking the third button failed")
	}
}

// As GNOME Shell 43, a banner replaced in place while on screen loses its buttons (its daemon's
// update(clear), docs/gnome-shell.md); replaced after it left the screen, it shows again with
// them; a low-urgency notification never shows as a banner, and a transient one closes when its
// banner goes. As 48, the buttons stay.
func TestServerButtonsOnReplace(t *testing.T) {
	for _, tc := range []struct {
		version   string
		keepsOnce bool // the buttons of a banner on screen survive a replacement
	}{
		{notifytest.GNOMEShell48, true},
		{notifytest.GNOMEShell43, false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			bus := notifytest.StartBus(t)
			srv := notifytest.NewServer(t, bus.Address(), notifytest.WithVersion(tc.version))
			c := newClient(t, bus.Address())
			var info [4]string
			if err := c.call("GetServerInformation").Store(&info[0], &info[1], &info[2], &info[3]); err != nil || info[2] != tc.version {
				t.Fatalf("GetServerInformation = %q, %v", info, err)
			}
			id := c.notify(0, "progress", "cancel", "Cancel")
			if got := srv.Buttons(id); !reflect.DeepEqual(got, []string{"cancel"}) || !srv.OnScreen(id) {
				t.Fatalf("a new banner shows %q (on screen %v)", got, srv.OnScreen(id))
			}
			c.notify(id, "progress 2", "cancel", "Cancel")
			if got := srv.Buttons(id); (len(got) == 1) != tc.keepsOnce {
				t.Errorf("replaced on screen, the banner shows %q", got)
			}
			if !tc.keepsOnce && !clickFails(t, srv, id, "cancel") {
				t.Errorf("clicking Cancel of a banner replaced on screen worked; GNOME Shell %s shows it no more", tc.version)
			}
			srv.HideBanner(t, id)
			if srv.OnScreen(id) {
				t.Error("the banner is still on screen")
			}
			c.notify(id, "progress 3", "cancel", "Cancel")
			if got := srv.Buttons(id); !reflect.DeepEqual(got, []string{"cancel"}) || !srv.OnScreen(id) {
				t.Errorf("replaced while gone, the banner shows %q again (on screen %v)", got, srv.OnScreen(id))
			}

			var low uint32
			if err := c.call("Notify", "app", uint32(0), "", "list", "", []string{"cancel", "Cancel"},
				map[string]dbus.Variant{"urgency": dbus.MakeVariant(byte(0))}, int32(-1)).Store(&low); err != nil {
				t.Fatal(err)
			}
			if srv.OnScreen(low) {
				t.Error("a low-urgency notification shows as a banner")
			}
			if got := srv.Buttons(low); (len(got) == 1) != tc.keepsOnce {
				t.Errorf("the list entry shows %q", got)
			}

			var transient uint32
			if err := c.call("Notify", "app", uint32(0), "", "banner", "", []string{"cancel", "Cancel"},
				map[string]dbus.Variant{"transient": dbus.MakeVariant(true)}, int32(-1)).Store(&transient); err != nil {
				t.Fatal(err)
			}
			srv.HideBanner(t, transient)
			if _, open := srv.Open(transient); open {
				t.Error("a transient notification is still open after its banner went")
			}
		})
	}
}
