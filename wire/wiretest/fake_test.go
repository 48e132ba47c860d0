package wiretest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"tails-backup/wire"
)

var testRequest = wire.Request{Version: wire.ProtocolVersion, Op: wire.OpUpdate, Backup: "0b6b6e1e-4f4c-4a77-9a39-5c0e8c9f0a11"}

// testCtx returns a context that ends with the test or after a generous timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestFakeHelper(t *testing.T) {
	f := &FakeHelper{Progress: []wire.Event{{Event: wire.EventProgress}}, Report: &wire.Report{Created: 1}}
	n := 0
	rep, err := f.Run(testCtx(t), testRequest, func(wire.Event) { n++ })
	if err != nil || rep.Created != 1 || n != 1 || !reflect.DeepEqual(f.Requests()[0], testRequest) {
		t.Fatal(rep, err, n)
	}
	f = &FakeHelper{WaitForCancel: true}
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if _, err := f.Run(ctx, testRequest, nil); !errors.Is(err, wire.ErrHelperCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
