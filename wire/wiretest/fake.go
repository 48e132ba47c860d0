// Package wiretest provides a fake root helper for tests: a wire.HelperRunner that records the
// requests and answers as scripted.
package wiretest

import (
	"context"
	"fmt"
	"sync"

	"tails-backup/wire"
)

// FakeHelper is a wire.HelperRunner for tests. Run records the request, delivers Progress, then:
// if Func is set, returns what it returns; if WaitForCancel, waits for ctx to end and returns
// a cancelled *HelperError wrapping ctx.Err(); otherwise returns Report and Err.
type FakeHelper struct {
	Progress      []wire.Event
	Report        *wire.Report
	Err           error
	WaitForCancel bool
	Func          func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error)

	mu       sync.Mutex
	requests []wire.Request
}

// Run implements wire.HelperRunner.
func (f *FakeHelper) Run(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	for _, ev := range f.Progress {
		if progress != nil {
			progress(ev)
		}
	}
	switch {
	case f.Func != nil:
		return f.Func(ctx, req, progress)
	case f.WaitForCancel:
		<-ctx.Done()
		return nil, fmt.Errorf("%w (%w)", &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}, ctx.Err())
	}
	return f.Report, f.Err
}

// Requests returns the requests received, in order.
func (f *FakeHelper) Requests() []wire.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wire.Request(nil), f.requests...)
}

var _ wire.HelperRunner = (*FakeHelper)(nil)
