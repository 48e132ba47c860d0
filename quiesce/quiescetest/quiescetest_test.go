package quiescetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"tails-backup/quiesce"
	"tails-backup/tails"
)

// thunderbird returns the Thunderbird feature of Tails.
func thunderbird(t *testing.T) tails.Feature {
	t.Helper()
	for _, f := range tails.Features() {
		if f.Source == "thunderbird" {
			return f
		}
	}
	t.Fatal("no thunderbird feature")
	return tails.Feature{}
}

// testCtx returns a context that ends with the test or after a generous timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestFakeQuiescer(t *testing.T) {
	ctx := testCtx(t)
	tb := thunderbird(t)
	f := &FakeQuiescer{
		Features: []tails.Feature{tb},
		Busy:     []quiesce.BusyApp{{App: tb.Apps[0], Feature: tb, PIDs: []int{7}}},
		Stubborn: map[string]bool{},
	}
	busy, _ := f.BusyApps(ctx, f.Features)
	if len(busy) != 1 {
		t.Fatal(busy)
	}
	f.Stubborn["Thunderbird"] = true
	if err := f.CloseApp(ctx, busy[0], time.Second); !errors.Is(err, quiesce.ErrStillRunning) {
		t.Fatal(err)
	}
	f.Stubborn["Thunderbird"] = false
	if err := f.CloseApp(ctx, busy[0], time.Second); err != nil {
		t.Fatal(err)
	}
	if busy, _ := f.BusyApps(ctx, f.Features); len(busy) != 0 || !reflect.DeepEqual(f.Closed(), []string{"Thunderbird"}) {
		t.Fatal(busy, f.Closed())
	}
}
