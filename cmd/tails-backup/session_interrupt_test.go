package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/quiesce/quiescetest"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
)

// TestStickReleasedAfterInterrupt: Ctrl-C (the end of the command's context) while the root
// helper runs still leaves the stick unmounted and locked, for every command that opens one.
func TestStickReleasedAfterInterrupt(t *testing.T) {
	tests := []struct {
		name       string
		run        func(t *testing.T, ctx context.Context, env *environment, w *restoreWorld, helperCmd string) int
		wantStderr string
	}{
		{"pair", func(t *testing.T, ctx context.Context, env *environment, w *restoreWorld, helperCmd string) int {
			return run(ctx, env, []string{"pair", "--yes", "--state", w.state, "--helper-command", helperCmd})
		}, "tails-backup pair: Kingston DataTraveler (17.2 GB, /dev/sdb) was not paired: interrupted while the root helper was running; run the command again\n"},
		{"verify", func(t *testing.T, ctx context.Context, env *environment, w *restoreWorld, helperCmd string) int {
			saveState(t, w.state, pairedState(1))
			return run(ctx, env, []string{"verify", "--state", w.state, "--helper-command", helperCmd})
		}, "tails-backup verify: Kingston DataTraveler (17.2 GB, /dev/sdb) was not verified: interrupted while the root helper was running; run the command again\n"},
		{"restore", func(t *testing.T, ctx context.Context, env *environment, w *restoreWorld, helperCmd string) int {
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			if err := restoreWith(ctx, env, []string{"--yes", "--helper-command", helperCmd}, &quiescetest.FakeQuiescer{}); err != nil {
				fmt.Fprintf(env.stderr, "tails-backup restore: %v\n", err)
				return 1
			}
			return 0
		}, "tails-backup restore: the restore from Kingston DataTraveler (17.2 GB, /dev/sdb) did not finish: interrupted while the root helper was running; run the command again\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, started := startSignallingHelper(t, w.helperBin)
			fakeHelper(t, w.helperBin, "hang", "")

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmdCtx, interrupt := context.WithCancel(ctx)
			go func() {
				select {
				case <-started:
					interrupt() // Ctrl-C while the helper runs
				case <-ctx.Done():
				}
			}()
			var out, errb bytes.Buffer
			env := &environment{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, session: sessionFor(t)}
			code := tt.run(t, cmdCtx, env, w, helperCmd)
			t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())

			select {
			case <-started:
			default:
				t.Fatal("the helper was never run, so nothing was interrupted")
			}
			stderr := errb.String()
			if code != 1 || !strings.HasSuffix(stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want 1, ending with %q", code, stderr, tt.wantStderr)
			}
			if strings.Contains(stderr, "level=error") || strings.Contains(stderr, "could not be locked again") {
				t.Errorf("the stick was not released cleanly: %q", stderr)
			}
			for _, m := range []string{"Unlock", "Mount", "Unmount", "Lock"} {
				if n := len(w.fake.CallsOf(m)); n != 1 {
					t.Errorf("%d %s calls, want 1", n, m)
				}
			}
			// The fake locks only an unmounted device.
			if !w.locked(w.std.Backup.LUKS) {
				t.Error("the stick was left unlocked")
			}
			if len(w.fake.CallsOf("PowerOff")) != 0 {
				t.Error("the stick was powered off")
			}
		})
	}
}

// startSignallingHelper returns a helper command that runs the fake helper bin, and a channel
// closed once it has been started.
func startSignallingHelper(t *testing.T, bin string) (command string, started <-chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "started")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read and write: opening does not wait for the helper, and closing ends the read.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ch := make(chan struct{})
	go func() {
		var b [1]byte
		if _, err := f.Read(b[:]); err == nil {
			close(ch)
		}
	}()
	command = filepath.Join(dir, "helper")
	script := fmt.Sprintf("#!/bin/sh\necho started > '%s'\nexec '%s'\n", fifo, bin)
	if err := os.WriteFile(command, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return command, ch
}
