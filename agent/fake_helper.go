package agent

import (
	"context"
	"fmt"
	"sync"

	"tails-backup/helper"
)

// FakeHelper is a HelperRunner for tests. Run records the request, delivers Progress, then:
// if Func is set, returns what it returns; if WaitForCancel, waits for ctx to end and returns
// a cancelled *HelperError wrapping ctx.Err(); otherwise returns Report and Err.
type FakeHelper struct {
	Progress      []helper.Event
	Report        *helper.Report
	Err           error
	WaitForCancel bool
	Func          func(ctx context.Context, req helper.Request, progress func(helper.Event)) (*helper.Report, error)

	mu       sync.Mutex
	requests []helper.Request
}

// Run implements HelperRunner.
func (f *FakeHelper) Run(ctx context.Context, req helper.Request, progress func(helper.Event)) (*helper.Report, error) {
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
		return nil, fmt.Errorf("%w (%w)", &HelperError{Code: helper.CodeCancelled, Message: "cancelled"}, ctx.Err())
	}
	return f.Report, f.Err
}

// Requests returns the requests received, in order.
func (f *FakeHelper) Requests() []helper.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]helper.Request(nil), f.requests...)
}
