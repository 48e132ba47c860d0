package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"tails-backup/pairing"
)

// statusState: one backup updated 9 days ago, whose last attempt (yesterday) failed, and
// another never updated; reminders snoozed.
func statusState() pairing.State {
	st := pairedState(9)
	st.RecordAttempt(pairing.Attempt{Time: testNow.Add(-24 * time.Hour), Backup: backupUUID, Result: pairing.ResultFailed,
		Message: "The passphrase was wrong three times."})
	st.Backups = append(st.Backups, pairing.PairedBackup{UUID: otherUUID, Label: "Samsung BAR Plus", Size: 64_000_000_000, Added: testNow.Add(-2 * time.Hour)})
	st.Snooze(testNow.Add(-2 * time.Hour))
	st.ReminderShown(testNow.Add(-3 * time.Hour))
	return st
}

func TestStatusText(t *testing.T) {
	tests := []struct {
		name    string
		state   *pairing.State
		backup  bool
		version string // "" removes the version file
		want    []string
		notWant []string
	}{
		{name: "backups paired", state: ptr(statusState()), version: "6.10 - 20241203\nbuild info\n", want: []string{
			"Tails 6.10 - 20241203\n",
			"This is your main Tails.\n",
			"Backup Tails paired with this Tails: 2\n",
			"  Kingston DataTraveler, 17.2 GB\n",
			"    Persistent Storage: " + backupUUID + "\n",
			"    Paired:             Tue 18 Feb 2025 12:00\n",
			"    Last update:        Sat 1 Mar 2025 12:00 (9 days ago)\n",
			"    Last attempt:       Sun 9 Mar 2025 12:00, failed: The passphrase was wrong three times.\n",
			"  Samsung BAR Plus, 64.0 GB\n",
			"    Last update:        never; plug it in to update it\n",
			"Reminders: on, when your backup is more than 7 days old (at most one a day). Snoozed until Tue 11 Mar 2025 10:00.\n",
			// The freshest backup is the one paired 2 hours ago.
			"Next reminder: Mon 17 Mar 2025 10:00 (in about 7 days), unless your backup is updated before.\n",
			"Pairing store: ",
		}, notWant: []string{"build info", "Warning"}},
		{name: "missing store", version: "6.10\n", want: []string{
			"This is your main Tails.",
			"No backup Tails is paired with this Tails; plug in a Tails stick and run 'tails-backup pair'.",
			"Next reminder: none until you pair a backup Tails",
		}, notWant: []string{"Warning"}},
		{name: "backup Tails, no version", state: ptr(pairedState(1)), backup: true, want: []string{
			"Tails unknown version",
			"This Tails is a backup of another Tails (Persistent Storage " + mainUUID + "): changes made here are overwritten by its next update. If your main Tails is lost or broken, run 'tails-backup promote'.",
			"Next reminder: none, this Tails is itself a backup",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, dir := testSession(t)
			if tt.version == "" {
				os.Remove(sys.versionFile)
			} else {
				writeFile(t, sys.versionFile, tt.version)
			}
			if tt.backup {
				writeOwnMarker(t, sys, mainUUID)
			}
			state := filepath.Join(dir, "state.json")
			if tt.state != nil {
				saveState(t, state, *tt.state)
			}
			code, stdout, _ := runSession(t, "", "status", "--state", state)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			wantContains(t, "stdout", stdout, tt.want...)
			for _, nw := range tt.notWant {
				if strings.Contains(stdout, nw) {
					t.Errorf("stdout contains %q", nw)
				}
			}
			if _, err := os.Stat(state); tt.state == nil && err == nil {
				t.Error("status wrote a store")
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	sys, dir := testSession(t)
	state := filepath.Join(dir, "state.json")
	saveState(t, state, statusState())
	code, stdout, _ := runSession(t, "", "status", "--json", "--state", state)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	// Every key is always there.
	wantKeys := []string{"backup_of", "backups", "format", "is_backup", "last_attempt", "last_success", "marker_error",
		"now", "reminders", "state_error", "state_path", "tails_version"}
	if got := keys(doc); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("keys %v, want %v", got, wantKeys)
	}
	check := func(path string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	check("format", doc["format"], float64(1))
	check("now", doc["now"], "2025-03-10T12:00:00Z")
	check("tails_version", doc["tails_version"], "6.10 - 20241203")
	check("is_backup", doc["is_backup"], false)
	check("backup_of", doc["backup_of"], "")
	check("state_path", doc["state_path"], state)
	check("state_error", doc["state_error"], "")
	check("last_success", doc["last_success"], "2025-03-01T12:00:00Z")
	check("last_attempt", doc["last_attempt"], map[string]any{"time": "2025-03-09T12:00:00Z", "backup": backupUUID,
		"result": "failed", "message": "The passphrase was wrong three times."})
	backups := doc["backups"].([]any)
	if len(backups) != 2 {
		t.Fatalf("backups %v", backups)
	}
	check("backups[0]", backups[0], map[string]any{
		"uuid": backupUUID, "label": "Kingston DataTraveler", "size": float64(16 << 30), "added": "2025-02-18T12:00:00Z",
		"last_success": "2025-03-01T12:00:00Z", "age_days": float64(9),
		"last_attempt": map[string]any{"time": "2025-03-09T12:00:00Z", "backup": backupUUID, "result": "failed", "message": "The passphrase was wrong three times."},
	})
	check("backups[1]", backups[1], map[string]any{
		"uuid": otherUUID, "label": "Samsung BAR Plus", "size": float64(64_000_000_000), "added": "2025-03-10T10:00:00Z",
		"last_success": nil, "age_days": nil, "last_attempt": nil,
	})
	// The freshest backup is the one paired 2 hours ago: nothing is due before 7 days.
	check("reminders", doc["reminders"], map[string]any{
		"enabled": true, "period_days": float64(7), "snoozed_until": "2025-03-11T10:00:00Z", "last_shown": "2025-03-10T09:00:00Z",
		"next": map[string]any{"due": false, "reason": "fresh", "at": "2025-03-17T10:00:00Z", "days_old": float64(0)},
	})
	_ = sys
}

func TestStatusJSONEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, sys *sessionSystem, state string)
		check map[string]any // top-level keys
		next  map[string]any
	}{
		{"missing store", nil,
			map[string]any{"backups": []any{}, "last_success": nil, "last_attempt": nil, "state_error": "", "is_backup": false},
			map[string]any{"due": false, "reason": "nothing-paired", "at": nil, "days_old": float64(0)}},
		{"due", func(t *testing.T, sys *sessionSystem, state string) { saveState(t, state, pairedState(10)) },
			map[string]any{"is_backup": false},
			map[string]any{"due": true, "reason": "due", "at": "2025-03-10T12:00:00Z", "days_old": float64(10)}},
		{"disabled", func(t *testing.T, sys *sessionSystem, state string) {
			st := pairedState(10)
			st.Reminder.Disabled = true
			saveState(t, state, st)
		}, map[string]any{}, map[string]any{"due": false, "reason": "disabled", "at": nil, "days_old": float64(10)}},
		{"backup Tails", func(t *testing.T, sys *sessionSystem, state string) {
			writeOwnMarker(t, sys, mainUUID)
			os.Remove(sys.versionFile)
		}, map[string]any{"is_backup": true, "backup_of": mainUUID, "marker_error": "", "tails_version": ""},
			map[string]any{"due": false, "reason": "is-backup", "at": nil, "days_old": float64(0)}},
		{"damaged marker", func(t *testing.T, sys *sessionSystem, state string) {
			writeFile(t, filepath.Join(sys.markerRoot, ".tails-backup.json"), `{"format":1}`)
		}, map[string]any{"is_backup": false, "backup_of": "", "marker_error": "the backup marker names source \"\", which is not a LUKS UUID"},
			map[string]any{"due": false, "reason": "nothing-paired", "at": nil, "days_old": float64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, dir := testSession(t)
			state := filepath.Join(dir, "state.json")
			if tt.setup != nil {
				tt.setup(t, sys, state)
			}
			code, stdout, _ := runSession(t, "", "status", "--json", "--state", state)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.check {
				if !reflect.DeepEqual(doc[k], want) {
					t.Errorf("%s = %#v, want %#v", k, doc[k], want)
				}
			}
			if got := doc["reminders"].(map[string]any)["next"]; !reflect.DeepEqual(got, tt.next) {
				t.Errorf("reminders.next = %#v, want %#v", got, tt.next)
			}
		})
	}
}

func TestStatusCorruptStore(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "json"}[asJSON], func(t *testing.T) {
			_, dir := testSession(t)
			state := filepath.Join(dir, "state.json")
			writeFile(t, state, `{"format":1,"backups":[{"uuid":"not-a-uuid"}]}`)
			args := []string{"status", "--state", state}
			if asJSON {
				args = append(args, "--json")
			}
			code, stdout, _ := runSession(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			aside := state + ".corrupt-20250310T120000Z"
			want := "The pairing store " + state + " was damaged, so it was moved to " + aside +
				" and Tails Backup starts afresh; pair your backup Tails again with 'tails-backup pair'"
			if asJSON {
				var doc map[string]any
				if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
					t.Fatal(err)
				}
				msg, _ := doc["state_error"].(string)
				wantContains(t, "state_error", msg, want, "not-a-uuid")
				if len(doc["backups"].([]any)) != 0 {
					t.Errorf("backups %v", doc["backups"])
				}
			} else {
				wantContains(t, "stdout", stdout, "Warning: "+want, "No backup Tails is paired with this Tails")
			}
			if _, err := os.Stat(aside); err != nil {
				t.Errorf("the damaged store was not set aside: %v", err)
			}
		})
	}
}

func TestStatusNewerStore(t *testing.T) {
	_, dir := testSession(t)
	state := filepath.Join(dir, "state.json")
	writeFile(t, state, `{"format":99}`)
	code, stdout, _ := runSession(t, "", "status", "--state", state)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stdout", stdout, "was written by a newer version of tails-backup, so it was moved to "+state+".newer-")
}

func TestStatusUnreadableStore(t *testing.T) {
	_, dir := testSession(t)
	file := filepath.Join(dir, "file")
	writeFile(t, file, "")
	state := filepath.Join(file, "state.json") // its folder is a file
	code, stdout, stderr := runSession(t, "", "status", "--state", state)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	wantContains(t, "stderr", stderr, "tails-backup status: cannot read the pairing store "+state)
}

func TestStatusUsage(t *testing.T) {
	testSession(t)
	code, _, stderr := runSession(t, "", "status", "extra")
	if code != 2 || !strings.Contains(stderr, "status takes no arguments") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
