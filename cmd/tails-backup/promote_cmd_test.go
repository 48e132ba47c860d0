package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestPromote(t *testing.T) {
	_, helperBin := fakePrograms(t)
	tests := []struct {
		name       string
		backup     bool   // this Tails has a marker
		damaged    bool   // ... a damaged one
		helperMode string // of the fake helper
		args       []string
		stdin      string
		wantCode   int
		wantOut    []string
		wantErr    string
		wantHelper bool // the helper was asked to promote
		wantForgot bool // the store's backups were forgotten
	}{
		{name: "on a backup, --yes", backup: true, helperMode: "done", args: []string{"--yes"}, wantOut: []string{
			"This is now your main Tails. Create a new backup of it on another USB stick with 'tails-backup create'"},
			wantHelper: true, wantForgot: true},
		{name: "on a backup, confirmed", backup: true, helperMode: "done", stdin: "y\n", wantOut: []string{
			"Make this Tails your main Tails? Do this only if your main Tails is lost or broken", "[y/N]", "This is now your main Tails."},
			wantHelper: true, wantForgot: true},
		{name: "on a backup with a damaged marker", backup: true, damaged: true, helperMode: "done", args: []string{"--yes"},
			wantOut: []string{"This is now your main Tails."}, wantHelper: true, wantForgot: true},
		{name: "on a backup, declined", backup: true, helperMode: "done", stdin: "n\n", wantCode: 1,
			wantOut: []string{"[y/N]"}, wantErr: "not confirmed, so nothing was changed"},
		{name: "on a backup, the helper fails", backup: true, helperMode: "error", args: []string{"--yes"}, wantCode: 1,
			wantErr: "tails-backup promote: this Tails was not made your main Tails: The backup marker of this Tails cannot be removed. Restart Tails and try again\n", wantHelper: true},
		{name: "on a main Tails", helperMode: "error", args: []string{"--yes"}, wantOut: []string{"This Tails is already your main Tails."}},
		{name: "on a main Tails, no --yes", helperMode: "error", wantOut: []string{"This Tails is already your main Tails."}},
		{name: "an argument", backup: true, helperMode: "done", args: []string{"now"}, wantCode: 2, wantErr: "promote takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, dir := testSession(t)
			switch {
			case tt.damaged:
				writeFile(t, filepath.Join(sys.markerRoot, ".tails-backup.json"), "{")
			case tt.backup:
				writeOwnMarker(t, sys, mainUUID)
			}
			state := filepath.Join(dir, "state.json")
			before := pairedState(2) // the copy of the old main Tails' store
			before.Reminder.Disabled = true
			saveState(t, state, before)
			beforeText := readString(t, state)
			helperCmd, record := fakeHelper(t, helperBin, tt.helperMode, "internal")
			t.Setenv("FAKEHELPER_REASON", "unmark-failed")
			args := append([]string{"promote", "--state", state, "--helper-command", helperCmd}, tt.args...)
			code, stdout, stderr := runSession(t, tt.stdin, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d", code, tt.wantCode)
			}
			wantContains(t, "stdout", stdout, tt.wantOut...)
			wantContains(t, "stderr", stderr, tt.wantErr)
			reqs := helperRequests(t, record)
			if tt.wantHelper != (len(reqs) == 1) || (tt.wantHelper && (reqs[0]["op"] != "promote" || reqs[0]["backup"] != nil)) {
				t.Errorf("helper requests %v", reqs)
			}
			st, _ := loadStateFile(t, state)
			if tt.wantForgot {
				if len(st.Backups) != 0 || !st.LastSuccess.IsZero() || !st.Reminder.Disabled {
					t.Errorf("store after promote: %+v", st)
				}
			} else if got := readString(t, state); got != beforeText {
				t.Errorf("the store changed:\n%s", got)
			}
			if strings.Contains(stdout, "now your main") && code != 0 {
				t.Error("says promoted but failed")
			}
		})
	}
}
