package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"tails-backup/wire"
)

func TestHelperErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&wire.HelperError{Code: wire.CodeNoSpace, Message: "no space", Needed: 3_000_000_000, Available: 1_000_000_000}, "too small: the update needs 2.0 GB more than the 1.0 GB free"},
		{&wire.HelperError{Code: wire.CodeNotPaired, Message: "x"}, "names another Tails"},
		{&wire.HelperCrashError{ExitCode: 2}, "stopped unexpectedly"},
		// Out of space during the copy: the helper cannot say how much is missing (e2e scenario
		// 11 showed "needs 6 bytes more than the 0 bytes free").
		{&wire.HelperError{Code: wire.CodeNoSpace, Message: "ran out", Available: 4096}, "ran out of space during the update. Nothing on it is lost"},
		{&wire.HelperError{Code: wire.CodeInternal, Message: "The update stopped."}, "The update stopped. Plug your backup Tails in again to try again."},
	} {
		if got := HelperErrorText(tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("HelperErrorText(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
	// A refusal says what to do itself: plugging the same stick in again would be refused again.
	deep := "Your Persistent Storage holds a folder nested more than 256 levels deep (Persistent/a/a/…), more than the backup can copy, so the update stopped; move or delete it and update again."
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&wire.HelperError{Code: wire.CodeRefused, Message: deep}, deep},
	} {
		if got := HelperErrorText(tc.err); got != tc.want {
			t.Errorf("HelperErrorText(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
}

func TestCommandHelperError(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{live, &wire.HelperError{Code: wire.CodeRefused, Message: "The backup is not paired with this Tails."}, "The backup is not paired with this Tails"},
		{live, &wire.HelperCrashError{ExitCode: 2}, "the root helper stopped unexpectedly ("},
		{live, fmt.Errorf("read: %w", wire.ErrHelperProtocol), "the root helper answered something this tails-backup does not understand"},
		{live, errors.New("sudo: not found"), "the root helper could not be run (sudo: not found); check that tails-backup is installed completely"},
		{gone, &wire.HelperCrashError{ExitCode: 2}, "interrupted while the root helper was running"},
	} {
		got := CommandHelperError(tc.ctx, tc.err)
		if got == nil || !strings.HasPrefix(got.Error(), tc.want) {
			t.Errorf("CommandHelperError(%v) = %v, want it to start with %q", tc.err, got, tc.want)
		}
		if strings.HasSuffix(got.Error(), ".") {
			t.Errorf("CommandHelperError(%v) = %q ends with a full stop: the command adds its own", tc.err, got)
		}
	}
}
