package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"tails-backup/clock"
	"tails-backup/clock/clocktest"
)

var t0 = time.Date(2025, 3, 30, 12, 0, 0, 0, time.UTC)

func TestFakeClockFiresDueTimersInOrder(t *testing.T) {
	c := clocktest.NewFakeClock(t0)
	t3, t1, t2 := c.NewTimer(3*time.Hour), c.NewTimer(time.Hour), c.NewTimer(2*time.Hour)
	if n := c.PendingTimers(); n != 3 {
		t.Fatalf("pending = %d, want 3", n)
	}
	if d, ok := c.NextDeadline(); !ok || !d.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next deadline = %v %v", d, ok)
	}
	c.Advance(90 * time.Minute)
	select {
	case got := <-t1.C():
		if !got.Equal(t0.Add(time.Hour)) {
			t.Errorf("t1 fired with %v", got)
		}
	default:
		t.Fatal("t1 did not fire")
	}
	for _, tm := range []clock.Timer{t2, t3} {
		select {
		case <-tm.C():
			t.Fatal("a later timer fired early")
		default:
		}
	}
	c.Advance(2 * time.Hour)
	<-t2.C()
	<-t3.C()
	if n := c.PendingTimers(); n != 0 {
		t.Fatalf("pending = %d after all fired", n)
	}
	if !c.Now().Equal(t0.Add(210 * time.Minute)) {
		t.Errorf("now = %v", c.Now())
	}
}

func TestFakeTimerStopAndReset(t *testing.T) {
	c := clocktest.NewFakeClock(t0)
	tm := c.NewTimer(time.Minute)
	if !tm.Stop() {
		t.Error("Stop of an active timer returned false")
	}
	if tm.Stop() {
		t.Error("second Stop returned true")
	}
	c.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	// A fired but unread timer, reset: the stale value is dropped (Go 1.23 semantics).
	tm.Reset(time.Minute)
	c.Advance(time.Minute)
	if tm.Reset(time.Hour) {
		t.Error("Reset of a fired timer returned true")
	}
	select {
	case <-tm.C():
		t.Fatal("stale value after Reset")
	default:
	}
	c.Advance(time.Hour)
	<-tm.C()
	// Zero and negative durations fire at once.
	z := c.NewTimer(0)
	<-z.C()
}

func TestWaitUntilWithFakeClock(t *testing.T) {
	ctx := testCtx(t)
	c := clocktest.NewFakeClock(t0)
	deadline := t0.Add(7*24*time.Hour + time.Second)
	done := make(chan error, 1)
	go func() { done <- clock.WaitUntil(ctx, c, deadline) }()
	slices := 0
	for {
		if err := c.BlockUntilTimers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		d, _ := c.NextDeadline()
		if d.Sub(c.Now()) > clock.MaxTimerSlice {
			t.Fatalf("armed a timer of %v, more than %v", d.Sub(c.Now()), clock.MaxTimerSlice)
		}
		slices++
		c.Set(d)
		if !c.Now().Before(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("WaitUntil returned %v before the deadline", err)
		default:
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := int(deadline.Sub(t0)/clock.MaxTimerSlice) + 1; slices != want {
		t.Errorf("%d timer slices, want %d", slices, want)
	}
}

func TestWaitUntilClockJumpsForward(t *testing.T) {
	ctx := testCtx(t)
	c := clocktest.NewFakeClock(t0)
	done := make(chan error, 1)
	go func() { done <- clock.WaitUntil(ctx, c, t0.Add(7*24*time.Hour)) }()
	if err := c.BlockUntilTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Tails sets its clock after Tor bootstraps: a jump of days is seen at the next slice.
	c.Jump(8 * 24 * time.Hour)
	select {
	case err := <-done:
		t.Fatalf("WaitUntil returned %v before its timer fired: real timers do not see a jump", err)
	default:
	}
	c.Advance(clock.MaxTimerSlice)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestFakeClockJump: a jump moves the wall clock but not the timers' remaining time, fires
// nothing, and tells each ClockChanges channel, with changes coalesced until read.
func TestFakeClockJump(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	c := clocktest.NewFakeClock(t0)
	tm := c.NewTimer(time.Hour)
	ch1, err := c.ClockChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch2, _ := c.ClockChanges(ctx)
	if n := c.ClockWatchers(); n != 2 {
		t.Fatalf("%d watchers, want 2", n)
	}
	cases := []struct {
		jump     time.Duration
		now      time.Time
		deadline time.Time // of tm, an hour of timer time after t0's
	}{
		{3 * 24 * time.Hour, t0.Add(3 * 24 * time.Hour), t0.Add(3*24*time.Hour + time.Hour)},
		{-5 * 24 * time.Hour, t0.Add(-2 * 24 * time.Hour), t0.Add(-2*24*time.Hour + time.Hour)},
		{2 * 24 * time.Hour, t0, t0.Add(time.Hour)},
	}
	for _, tc := range cases {
		c.Jump(tc.jump)
		if !c.Now().Equal(tc.now) {
			t.Errorf("jump %v: now %v, want %v", tc.jump, c.Now(), tc.now)
		}
		if d, ok := c.NextDeadline(); !ok || !d.Equal(tc.deadline) {
			t.Errorf("jump %v: timer due at %v %v, want %v", tc.jump, d, ok, tc.deadline)
		}
		select {
		case <-tm.C():
			t.Fatalf("jump %v fired a timer", tc.jump)
		default:
		}
		select {
		case <-ch1:
		default:
			t.Errorf("jump %v not told", tc.jump)
		}
	}
	if len(ch2) != 1 {
		t.Errorf("unread watcher holds %d values after three jumps, want 1", len(ch2))
	}
	c.Advance(time.Hour)
	<-tm.C()
	if len(ch1) != 0 {
		t.Error("Advance told a clock change: time passing is no set of the clock")
	}
	cancel()
	for _, ch := range []<-chan struct{}{ch1, ch2} {
		for range ch { // ends when closed
		}
	}
	if n := c.ClockWatchers(); n != 0 {
		t.Errorf("%d watchers after their context ended", n)
	}
	c.Jump(time.Hour) // no send on a closed channel
}

func TestWaitUntilCancelAndPast(t *testing.T) {
	c := clocktest.NewFakeClock(t0)
	if err := clock.WaitUntil(context.Background(), c, t0); err != nil {
		t.Fatalf("deadline now: %v", err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- clock.WaitUntil(ctx, c, t0.Add(time.Hour)) }()
	if err := c.BlockUntilTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := c.PendingTimers(); n != 0 {
		t.Errorf("the timer was not stopped: %d pending", n)
	}
}

func TestWaitUntilRealClock(t *testing.T) {
	start := time.Now()
	if err := clock.WaitUntil(testCtx(t), clock.RealClock{}, start.Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Error("returned early")
	}
}

// testCtx returns a context that ends with the test or after a generous timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
