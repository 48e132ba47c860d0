package main

import (
	"slices"
	"strings"
	"testing"

	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
)

// TestSessionMountsTheBackup: the commands that only read the backup (restore, verify) ask
// udisks for a read-only mount, so that the backup is not changed by them: a read-write
// mount of ext4 writes its superblock (mount count and time, the last mount point), updates
// access times, and on Tails 7 the unit bound to /media/amnesia/TailsData changes the root's
// ACL (e2e scenario 14 saw the sha256 of the backup's image change after a restore). pair
// writes the marker: read-write.
func TestSessionMountsTheBackup(t *testing.T) {
	identical := []string{
		`{"event":"done","report":{"created":0,"updated":0,"metadata_only":0,"deleted":0,"bytes_copied":0,"error_count":0,"duration_ns":5}}`,
	}
	tests := []struct {
		name     string
		readOnly bool
		run      func(t *testing.T) (*pairWorld, int, string)
	}{
		{"restore", true, func(t *testing.T) (*pairWorld, int, string) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, _ := fakeHelper(t, w.helperBin, "done", "")
			code, _, stderr := runSession(t, "", "restore", "--yes", "--helper-command", helperCmd, "/dev/sdb")
			return w.pairWorld, code, stderr
		}},
		{"verify", true, func(t *testing.T) (*pairWorld, int, string) {
			w := newPairWorld(t)
			saveState(t, w.state, pairedState(1))
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, _ := scriptedHelper(t, identical...)
			code, _, stderr := runSession(t, "", "verify", "--state", w.state, "--helper-command", helperCmd, "/dev/sdb")
			return w, code, stderr
		}},
		{"pair", false, func(t *testing.T) (*pairWorld, int, string) {
			w := newPairWorld(t)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, _ := fakeHelper(t, w.helperBin, "done", "")
			code, _, stderr := runSession(t, "", "pair", "--yes", "--state", w.state, "--helper-command", helperCmd, "/dev/sdb")
			return w, code, stderr
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, code, stderr := tt.run(t)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			mounts := w.fake.CallsOf("Mount")
			if len(mounts) != 1 {
				t.Fatalf("%d Mount calls, want 1", len(mounts))
			}
			opts, _ := mounts[0].Options["options"].Value().(string)
			if got := slices.Contains(strings.Split(opts, ","), "ro"); got != tt.readOnly {
				t.Errorf("mount options %q: read-only %v, want %v", opts, got, tt.readOnly)
			}
			for _, want := range []string{"nosuid", "nodev"} {
				if !slices.Contains(strings.Split(opts, ","), want) {
					t.Errorf("mount options %q lack %s", opts, want)
				}
			}
		})
	}
}
