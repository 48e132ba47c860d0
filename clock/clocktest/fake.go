// Package clocktest provides FakeClock, a clock.Clock for tests whose time moves only by hand.
package clocktest

import (
	"context"
	"slices"
	"sync"
	"time"

	"tails-backup/clock"
)

// FakeClock is a clock.Clock for tests: time stands still until Advance or Set moves it, and then the
// timers that are due fire, in deadline order, before Advance returns. Jump sets the wall clock
// the way htpdate or a resume from suspend does: the timers keep counting, ClockChanges tells.
// Safe for concurrent use.
//
//	clk := NewFakeClock(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
//	go func() { done <- clock.WaitUntil(ctx, clk, deadline) }()
//	clk.BlockUntilTimers(ctx, 1) // the goroutine is now waiting on its timer
//	clk.Advance(24 * time.Hour)  // fires it
type FakeClock struct {
	mu       sync.Mutex
	now      time.Time
	timers   []*fakeTimer    // active timers
	watchers []chan struct{} // of ClockChanges, until their context ends
	changed  chan struct{}   // closed and replaced whenever the timers or the watchers change
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
func (c *FakeClock) NewTimer(d time.Duration) clock.Timer {
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

// Set moves the fake time to t and fires the timers whose deadline is not after t, as if the
// time had passed until t (moving backward fires nothing). It does not model the wall clock
// being set, which real timers do not see: Jump does.
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

// Jump sets the wall clock d away, forward or backward, as htpdate does on Tails once Tor is
// connected: the timers keep the time they had left (real ones count monotonic time), so none
// fires, and each ClockChanges channel receives a value.
func (c *FakeClock) Jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		t.deadline = t.deadline.Add(d)
	}
	for _, ch := range c.watchers {
		select {
		case ch <- struct{}{}:
		default: // one value pending stands for several changes, as with the real clock
		}
	}
	c.signal()
}

// ClockChanges implements clock.ClockChangeNotifier: the channel receives a value after each Jump and
// is closed once ctx ends.
func (c *FakeClock) ClockChanges(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.watchers = append(c.watchers, ch)
	c.signal()
	c.mu.Unlock()
	context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.watchers = slices.DeleteFunc(c.watchers, func(w chan struct{}) bool { return w == ch })
		close(ch)
		c.signal()
	})
	return ch, nil
}

// ClockWatchers returns how many ClockChanges channels are open.
func (c *FakeClock) ClockWatchers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.watchers)
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
	return c.nextDeadline()
}

// nextDeadline is NextDeadline with c.mu held.
func (c *FakeClock) nextDeadline() (time.Time, bool) {
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
	return c.blockUntil(ctx, func() bool { return len(c.timers) >= n })
}

// BlockUntilClockWatchers waits until at least n ClockChanges channels are open, so that a test
// jumps only once the code under test listens. It returns ctx.Err() if ctx ends first.
func (c *FakeClock) BlockUntilClockWatchers(ctx context.Context, n int) error {
	return c.blockUntil(ctx, func() bool { return len(c.watchers) >= n })
}

// BlockUntilNextDeadline waits until the earliest armed timer is due at t, for instance until
// the code under test has re-armed its timer after a Jump. It returns ctx.Err() if ctx ends
// first.
func (c *FakeClock) BlockUntilNextDeadline(ctx context.Context, t time.Time) error {
	return c.blockUntil(ctx, func() bool {
		d, ok := c.nextDeadline()
		return ok && d.Equal(t)
	})
}

// blockUntil waits until cond, called with c.mu held, is true, or ctx ends.
func (c *FakeClock) blockUntil(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, ch := cond(), c.changed
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

// signal wakes the BlockUntil functions; c.mu is held.
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

var (
	_ clock.Clock               = (*FakeClock)(nil)
	_ clock.ClockChangeNotifier = (*FakeClock)(nil)
)
