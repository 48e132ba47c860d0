package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

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
		// No reason this session knows: the generic sentence of the code, never the English message.
		{&wire.HelperError{Code: wire.CodeInternal, Message: "The update stopped."}, "The backup tool's root helper stopped on an unexpected error."},
		{&wire.HelperError{Code: wire.CodeInternal, Reason: "from-a-newer-helper", Message: "The update stopped."}, "The backup tool's root helper stopped on an unexpected error."},
		// A reason: its sentence, with its values.
		{&wire.HelperError{Code: wire.CodeNoSpace, Reason: wire.ReasonBackupTooSmall, Args: wire.Args{Stick: &wire.Stick{Label: "SanDisk Cruzer", Size: 8e9, Device: "/dev/sdb"}},
			Message: "no space", Needed: 3_000_000_000, Available: 1_000_000_000},
			"The backup on SanDisk Cruzer (8.0 GB, /dev/sdb) is too small: the update needs 2.0 GB more than the 1.0 GB free."},
	} {
		if got := HelperErrorTextIn(nil, tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("HelperErrorText(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
	// A refusal says what to do itself: plugging the same stick in again would be refused again.
	deep := "Your Persistent Storage holds, at Persistent/a/a/…, more than the backup can copy, so the update stopped. Move or delete it and update again. A folder there is nested more than 256 levels deep."
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&wire.HelperError{Code: wire.CodeRefused, Reason: wire.ReasonSourceLimit, Message: "English",
			Args: wire.Args{Path: "Persistent/a/a/…", Limit: wire.LimitDepth, Count: 256}}, deep},
	} {
		if got := HelperErrorTextIn(nil, tc.err); got != tc.want {
			t.Errorf("HelperErrorText(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
}

func TestCommandHelperError(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	stopped := "the backup tool stopped unexpectedly; try again, and if it happens again, restart Tails"
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		err    error
		want   string
		logged bool // the error goes to the log, not to the person
	}{
		{"a refusal", live, &wire.HelperError{Code: wire.CodeRefused, Reason: wire.ReasonBackupIsBoot, Args: wire.Args{Stick: &wire.Stick{Label: "Kingston DataTraveler"}},
			Message: "The backup is the boot stick."},
			"This Tails is running from Kingston DataTraveler, which is never its own backup. Plug in your backup Tails instead", true},
		{"a refusal of an unknown reason", live, &wire.HelperError{Code: wire.CodeRefused, Message: "The backup is not paired with this Tails."},
			"The backup tool refused to go on, to keep your data safe. Check the USB stick and try again; report the bug if it happens again", true},
		{"a crash", live, &wire.HelperCrashError{ExitCode: 2, Stderr: []string{"panic: runtime error: index out of range"}}, stopped, true},
		{"killed", live, &wire.HelperCrashError{ExitCode: -1, Signal: "killed"}, stopped, true},
		{"a line not understood", live, fmt.Errorf("read: %w: invalid character 'x'", wire.ErrHelperProtocol), stopped, true},
		{"done without a report", live, fmt.Errorf("%w: done without a report", wire.ErrHelperProtocol), stopped, true},
		{"not run", live, errors.New("run the helper sudo: exec: \"sudo\": executable file not found in $PATH"),
			"the root helper could not be run; check that tails-backup is installed completely, with its sudo rule, and try again", true},
		{"interrupted", gone, fmt.Errorf("%w (%w)", &wire.HelperCrashError{ExitCode: 2}, context.Canceled), "interrupted while the root helper was running; run the command again", true},
		{"no space", live, &wire.HelperError{Code: wire.CodeNoSpace, Message: "The Persistent Storage of this Tails is too small.", Needed: 3_000_000_000, Available: 1_000_000_000},
			"There is not enough space: 2.0 GB more is needed than the 1.0 GB free. Free some space, or use a bigger USB stick, and try again", true},
		{"a key refused", live, &wire.HelperError{Code: wire.CodeKeyRefused, Message: "Kingston (16 GB) no longer accepts the key."},
			"Your backup Tails no longer accepts the key this Tails keeps for it, because its key slot was removed or the stick was made again: type the passphrase", true},
		{"cancelled by the helper", live, &wire.HelperError{Code: wire.CodeCancelled, Message: "The operation was stopped before its end."},
			"The operation was cancelled. Nothing is lost, and running it again finishes the job", true},
		{"interrupted during a refusal", gone, &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}, "interrupted while the root helper was running; run the command again", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			l := logrus.New()
			l.SetOutput(&logBuf)
			got := CommandHelperError(tc.ctx, nil, tc.err, logrus.NewEntry(l))
			if got == nil || got.Error() != tc.want {
				t.Errorf("CommandHelperError(%v) = %v, want %q", tc.err, got, tc.want)
			}
			if tc.logged != strings.Contains(logBuf.String(), "the root helper failed") {
				t.Errorf("log %q, want the error logged: %v", logBuf.String(), tc.logged)
			}
			if tc.logged && got != nil && strings.Contains(got.Error(), "(") {
				t.Errorf("%q shows the raw error", got)
			}
			// nil: the caller logged it.
			if again := CommandHelperError(tc.ctx, nil, tc.err, nil); again == nil || again.Error() != tc.want {
				t.Errorf("with no log: %v", again)
			}
		})
	}
}

func TestHelperErrorTextNoRawError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"a crash", &wire.HelperCrashError{ExitCode: 2, Stderr: []string{"panic: boom"}},
			"The update stopped unexpectedly. Your backup is marked incomplete: plug it in again to finish the update."},
		{"a line not understood", fmt.Errorf("%w: unknown event \"x\"", wire.ErrHelperProtocol),
			"The update stopped unexpectedly. Your backup is marked incomplete: plug it in again to finish the update."},
		{"not run", errors.New("run the helper sudo: exec: \"sudo\": executable file not found in $PATH"),
			"The backup tool stopped unexpectedly: plug your backup Tails in again to try again, and if it happens again, restart Tails."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HelperErrorTextIn(nil, tc.err); got != tc.want {
				t.Errorf("HelperErrorText(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
