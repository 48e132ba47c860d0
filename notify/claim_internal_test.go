package notify

import (
	"context"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/notify/notifytest"
)

// TestClaimReplaysEarlySignals covers the race where the server's signals for a
// new ID are handled before Show has recorded the ID as ours: signals later than
// the Notify reply are kept and delivered in order once the ID is claimed; earlier
// ones (about an older notification with the same ID) and others' are not.
func TestClaimReplaysEarlySignals(t *testing.T) {
	bus := notifytest.StartBus(t)
	notifytest.NewServer(t, bus.Address())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := New(ctx, Config{Address: bus.Address()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	n.mu.Lock()
	conn, gen, owner := n.conn, n.connGen, n.owner
	n.mu.Unlock()
	const id, replySeq = uint32(4242), dbus.Sequence(1000)
	sig := func(seq dbus.Sequence, sender, name string, body ...any) signalMsg {
		return signalMsg{gen: gen, sig: &dbus.Signal{Sender: sender, Path: ObjectPath, Name: name, Body: body, Sequence: seq}}
	}
	n.handle(sig(replySeq-1, owner, signalNotifClosed, id, uint32(1)))       // before the reply
	n.handle(sig(replySeq+1, owner, signalActionInvoked, id, "update"))      // after the reply
	n.handle(sig(replySeq+2, ":1.999", signalActionInvoked, id, "impostor")) // not the server
	n.handle(sig(replySeq+3, owner, signalActionInvoked, id+1, "other"))     // another ID
	n.handle(sig(replySeq+4, owner, signalNotifClosed, id, uint32(2)))       // after the reply

	n.claim(conn, id, replySeq, false)  // a replacement: the early signal is the old one's
	n.claim(conn, id+2, replySeq, true) // nothing parked for it

	want := []Event{ActionInvoked{ID: id, ActionKey: "update"}, NotificationClosed{ID: id, Reason: ReasonDismissedByUser}}
	for _, w := range want {
		select {
		case got := <-n.Events():
			if got != w {
				t.Fatalf("event = %#v, want %#v", got, w)
			}
		case <-ctx.Done():
			t.Fatalf("no event, want %#v", w)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.ours[id]; ok {
		t.Errorf("ID %d still ours after its replayed NotificationClosed", id)
	}
	if len(n.unclaimed) != 2 {
		t.Errorf("parked = %#v, want the early signal and the other ID's", n.unclaimed)
	}
}

func TestBuildTimeout(t *testing.T) {
	n := &Notifier{cfg: Config{AppName: DefaultAppName}}
	for _, tt := range []struct {
		in   time.Duration
		want int32
	}{
		{0, -1},
		{TimeoutNever, 0},
		{-time.Hour, 0},
		{time.Microsecond, 1},
		{1500 * time.Millisecond, 1500},
		{1000 * time.Hour, 1<<31 - 1},
	} {
		if got := n.build(Notification{Timeout: tt.in}, Capabilities{}).timeout; got != tt.want {
			t.Errorf("timeout %v sent as %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestClaimReplaysSignalsBeforeTheReplyOfAFreshNotification: a new notification's ID was
// never given before, so a signal for it that came before the Notify reply is about it.
func TestClaimReplaysSignalsBeforeTheReplyOfAFreshNotification(t *testing.T) {
	bus := notifytest.StartBus(t)
	notifytest.NewServer(t, bus.Address())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := New(ctx, Config{Address: bus.Address()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.mu.Lock()
	conn, gen, owner := n.conn, n.connGen, n.owner
	n.mu.Unlock()
	const id, replySeq = uint32(77), dbus.Sequence(500)
	n.handle(signalMsg{gen: gen, sig: &dbus.Signal{Sender: owner, Path: ObjectPath, Name: signalActionInvoked, Body: []any{id, "snooze"}, Sequence: replySeq - 1}})
	n.claim(conn, id, replySeq, true)
	select {
	case got := <-n.Events():
		if got != (ActionInvoked{ID: id, ActionKey: "snooze"}) {
			t.Fatalf("event = %#v", got)
		}
	case <-ctx.Done():
		t.Fatal("the click that came before the reply was lost")
	}
}
