package agent

import (
	"context"
	"slices"
	"sync"
	"time"
)

// FakeClock is a Clock for tests: time stands still until Advance or Set moves it, and then the
// timers that are due fire, in deadline order, before Advance returns. Safe for concurrent use.
//
//	clk := NewFakeClock(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
//	go func() { done <- WaitUntil(ctx, clk, deadline) }()
//	clk.BlockUntilTimers(ctx, 1) // the goroutine is now waiting on its timer
//	clk.Advance(24 * time.Hour)  // fires it
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer  // active timers
	changed chan struct{} // closed and replaced whenever the set of active timers changes
}

// NewFakeClock returns a FakeClock showing start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the fake time reaches Now()+d; d <= 0 fires at once.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: c, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the fake time forward by d and fires the timers that are due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	now := c.now.Add(d)
	c.mu.Unlock()
	c.Set(now)
}

// Set moves the fake time to t, forward or backward (a wall-clock jump), and fires the timers
// whose deadline is not after t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	slices.SortStableFunc(c.timers, func(a, b *fakeTimer) int { return a.deadline.Compare(b.deadline) })
	kept := c.timers[:0]
	for _, ft := range c.timers {
		if ft.deadline.After(t) {
			kept = append(kept, ft)
			continue
		}
		ft.fire()
	}
	clear(c.timers[len(kept):])
	if len(kept) != len(c.timers) {
		c.timers = kept
		c.signal()
	}
}

// PendingTimers returns how many timers are armed.
func (c *FakeClock) PendingTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns the earliest deadline of the armed timers, or false when none is.
func (c *FakeClock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	d := c.timers[0].deadline
	for _, t := range c.timers[1:] {
		if t.deadline.Before(d) {
			d = t.deadline
		}
	}
	return d, true
}

// BlockUntilTimers waits until at least n timers are armed, so that a test advances the time
// only once the code under test is waiting. It returns ctx.Err() if ctx ends first.
func (c *FakeClock) BlockUntilTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		ok, ch := len(c.timers) >= n, c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// signal wakes BlockUntilTimers; c.mu is held.
func (c *FakeClock) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// remove drops t from the active timers and reports whether it was there; c.mu is held.
func (c *FakeClock) remove(t *fakeTimer) bool {
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	c.signal()
	return true
}

type fakeTimer struct {
	clock    *FakeClock
	c        chan time.Time
	deadline time.Time // guarded by clock.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// fire sends the deadline without blocking; clock.mu is held.
func (t *fakeTimer) fire() {
	select {
	case t.c <- t.deadline:
	default:
	}
}

func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.drain()
	return t.clock.remove(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	t.drain()
	was := c.remove(t)
	t.deadline = c.now.Add(d)
	if d <= 0 {
		t.fire()
		return was
	}
	c.timers = append(c.timers, t)
	c.signal()
	return was
}
