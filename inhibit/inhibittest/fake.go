// Package inhibittest provides fakes of sleep inhibition for tests: FakeInhibitor, an
// in-process inhibit.Inhibitor, and Login1, a fake logind to serve on a test bus.
package inhibittest

import (
	"context"
	"sync"

	"tails-backup/inhibit"
)

// FakeInhibitor is an inhibit.Inhibitor for tests. Set Err to make Inhibit fail (for example with
// fmt.Errorf("%w: test", inhibit.ErrInhibitUnavailable)); Active tells whether a lock is held.
type FakeInhibitor struct {
	mu     sync.Mutex
	Err    error
	whys   []string
	active int
}

// Inhibit records why and takes a fake lock.
func (f *FakeInhibitor) Inhibit(ctx context.Context, why string) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Err != nil {
		return nil, f.Err
	}
	f.whys = append(f.whys, why)
	f.active++
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.active--
			f.mu.Unlock()
		})
	}, nil
}

// Active returns how many locks are held.
func (f *FakeInhibitor) Active() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

// Whys returns the reasons of all the locks taken, in order.
func (f *FakeInhibitor) Whys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.whys...)
}

var _ inhibit.Inhibitor = (*FakeInhibitor)(nil)
