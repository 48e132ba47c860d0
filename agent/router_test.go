package agent

import (
	"testing"

	"tails-backup/notify"
)

// TestRouterKeepsEarlyEvents: an event that comes for a notification before its route exists
// (the server answered a click before Show returned the ID) reaches the route added after it,
// and only that route; at most maxEarly such events are kept.
func TestRouterKeepsEarlyEvents(t *testing.T) {
	r := router{routes: map[uint32]chan<- notify.Event{}}
	click := notify.ActionInvoked{ID: 7, ActionKey: "cancel"}
	if r.deliver(7, click) {
		t.Fatal("delivered with no route")
	}
	other := make(chan notify.Event, 4)
	r.add(8, other)
	ch := make(chan notify.Event, 4)
	r.add(7, ch)
	select {
	case ev := <-ch:
		if ev != click {
			t.Errorf("route 7 got %#v, want %#v", ev, click)
		}
	default:
		t.Fatal("the early event did not reach the route added after it")
	}
	if len(other) != 0 {
		t.Errorf("route 8 got %d events, want none", len(other))
	}
	for id := uint32(100); id < 100+2*maxEarly; id++ {
		r.deliver(id, notify.ActionInvoked{ID: id})
	}
	if len(r.early) != maxEarly || r.early[0].id != 100+maxEarly {
		t.Errorf("kept %d events from id %d, want the last %d", len(r.early), r.early[0].id, maxEarly)
	}
}
