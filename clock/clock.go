// Package clock is the agent's source of time: the wall clock, timers, waiting until a
// wall-clock time, and, on Linux, being told when the wall clock is set.
package clock

import (
	"context"
	"time"
)

// Clock is the agent's source of time, so that tests can move time by hand (see
// clocktest.FakeClock).
type Clock interface {
	// Now returns the current wall-clock time.
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the agent uses. With Go 1.23+ semantics: after Stop or
// Reset returns, no stale value is received from C.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped an active timer.
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether the timer was active.
	Reset(d time.Duration) bool
}

// ClockChangeNotifier is implemented by the Clocks that can tell when their wall clock is set
// (RealClock on Linux, clocktest.FakeClock). Timers count monotonic time, so a timer armed for a wall-clock
// deadline is wrong after the clock is set: on Tails htpdate sets it once Tor is connected, often
// by hours, and the wall clock also leaps over a suspend, which monotonic time does not count.
type ClockChangeNotifier interface {
	// ClockChanges returns a channel that receives a value after the wall clock is set; one
	// value may stand for several changes. It is closed when ctx ends or the watch fails.
	ClockChanges(ctx context.Context) (<-chan struct{}, error)
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a *time.Timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

var _ Clock = RealClock{}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// MaxTimerSlice is the longest single timer WaitUntil arms. Timers count monotonic time, which
// stops while the computer is suspended, and Tails sets its wall clock after Tor has
// bootstrapped, often by hours: re-reading the wall clock at least this often keeps a deadline
// days away accurate to this much.
const MaxTimerSlice = 5 * time.Minute

// WaitUntil blocks until the wall clock of c reaches deadline (returning nil at once when it
// already has) or ctx is done (returning ctx.Err()). It arms timers of at most MaxTimerSlice,
// so that a suspend or a clock jump delays it by at most that much.
func WaitUntil(ctx context.Context, c Clock, deadline time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := deadline.Sub(c.Now())
		if left <= 0 {
			return nil
		}
		t := c.NewTimer(min(left, MaxTimerSlice))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
	}
}
