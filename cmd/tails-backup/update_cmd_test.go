package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/pairing"
	"tails-backup/quiesce"
	"tails-backup/quiesce/quiescetest"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
)

// runUpdateQuiescing runs the command with the fake quiescer q, as run() would.
func runUpdateQuiescing(t *testing.T, stdin string, q quiesce.Quiescer, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, session: sessionFor(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := updateWith(ctx, env, args, q)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		code = 2
		fmt.Fprintf(&errb, "tails-backup update: %v\n", err)
	default:
		code = 1
		fmt.Fprintf(&errb, "tails-backup update: %v\n", err)
	}
	t.Logf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// checkAttempt: the store records the attempt with result, and the command's pause is over.
func checkAttempt(t *testing.T, path string, result pairing.Result) {
	t.Helper()
	st, ok := loadStateFile(t, path)
	switch {
	case !ok || st.LastAttempt == nil:
		t.Fatalf("no attempt recorded: %+v", st)
	case st.LastAttempt.Result != result || st.LastAttempt.Backup != backupUUID:
		t.Errorf("attempt %+v, want %s", st.LastAttempt, result)
	case result != pairing.ResultSuccess && st.LastAttempt.Message == "":
		t.Errorf("a failed attempt recorded without a message: %+v", st.LastAttempt)
	}
	if slices.ContainsFunc(st.PausedBy, func(o string) bool { return strings.HasPrefix(o, "update ") }) {
		t.Errorf("the updates are still paused by the command: %q", st.PausedBy)
	}
}

func TestUpdateCommand(t *testing.T) {
	const thunderbirdQ = "Thunderbird is open, so the data of Thunderbird Email Client might be copied half-written. Close it to back up that data, or skip that data this time (your backup keeps its previous copy).\n[c] close Thunderbird and continue, [s] skip its data this time, [N] cancel: "
	for _, tt := range []struct {
		name   string
		args   []string
		stdin  string
		busy   bool
		skip   []string
		stdout []string
	}{
		{name: "nothing open", stdout: []string{"Backup updated: 3 files changed, 30 bytes copied.\n", "You can unplug it.\n"}},
		{name: "with the device", args: []string{"/dev/sdb"}, stdout: []string{"Backup updated: 3 files changed"}},
		{name: "an application closed, the package manager skipped", busy: true, stdin: "c\ns\n", skip: []string{"apt"},
			stdout: []string{thunderbirdQ, "Asking Thunderbird to close...\n", "[r] try again, [s] skip its data this time, [N] cancel: ",
				"The data of Additional Software was skipped this time.\n"}},
		{name: "--skip-close", busy: true, args: []string{"--skip-close"}, skip: []string{"thunderbird", "apt"},
			stdout: []string{"Thunderbird is open: the data of Thunderbird Email Client is skipped this time (--skip-close).\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			saveState(t, w.state, pairedState(9))
			pinLog := fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			q := &quiescetest.FakeQuiescer{}
			if tt.busy {
				q = busyQuiescer()
			}
			code, stdout, stderr := runUpdateQuiescing(t, tt.stdin, q, append([]string{"--state", w.state, "--helper-command", helperCmd}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			wantContains(t, "stdout", stdout, append([]string{"Updating the backup on Kingston DataTraveler (17.2 GB, /dev/sdb).\n",
				"Copying your Persistent Storage to Kingston DataTraveler (17.2 GB, /dev/sdb); do not unplug it.\n"}, tt.stdout...)...)
			wantContains(t, "stderr", stderr, "100% 3/3 changes")
			reqs := helperRequests(t, record)
			var skip []string
			if len(reqs) == 1 {
				for _, s := range asSlice(reqs[0]["skip"]) {
					skip = append(skip, s.(string))
				}
			}
			if len(reqs) != 1 || reqs[0]["op"] != "update" || reqs[0]["backup"] != backupUUID || !slices.Equal(skip, tt.skip) {
				t.Errorf("helper requests %v, want an update skipping %q", reqs, tt.skip)
			}
			if !w.locked(w.std.Backup.LUKS) || len(w.fake.CallsOf("PowerOff")) != 1 {
				t.Error("the backup was not ejected")
			}
			wantContains(t, "pinentry log", readString(t, pinLog), "SETPROMPT Passphrase of your backup Tails\n", "SETDESC Enter the passphrase of your backup Tails (Kingston DataTraveler, 17.2 GB) to update it.")
			checkAttempt(t, w.state, pairing.ResultSuccess)
		})
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestUpdateCommandFails(t *testing.T) {
	for _, tt := range []struct {
		name   string
		setup  func(t *testing.T, w *restoreWorld)
		paired bool
		marker string // the source the backup's marker names ("" this Tails)
		pass   []string
		mode   string // of the fake helper ("" done)
		stdin  string
		code   int
		stderr string
		result pairing.Result // recorded ("" nothing)
		open   bool           // the backup is left unlocked (to the restore)
	}{
		{name: "a backup Tails", paired: true, setup: func(t *testing.T, w *restoreWorld) { writeOwnMarker(t, w.sys, mainUUID) },
			code: 1, stderr: "this Tails is itself a backup, so it does not update backups"},
		{name: "none plugged in", code: 1, stderr: "no paired backup Tails is plugged in; plug in your backup Tails and run 'tails-backup update' again"},
		{name: "several plugged in", paired: true, setup: func(t *testing.T, w *restoreWorld) {
			w.addSecondTailsStick()
			st := pairedState(9)
			st.Backups = append(st.Backups, pairing.PairedBackup{UUID: otherUUID, Added: testNow})
			saveState(t, w.state, st)
		}, code: 2, stderr: "2 paired backups are plugged in; say which one to update, e.g. 'tails-backup update /dev/sdb'"},
		{name: "the backup of another Tails", paired: true, marker: mainUUID, code: 1, result: pairing.ResultFailed,
			stderr: "is a backup of another Tails, so it was not changed"},
		{name: "three wrong passphrases", paired: true, pass: []string{"a", "b", "c"}, code: 1, result: pairing.ResultFailed,
			stderr: "the passphrase was wrong 3 times, so Kingston DataTraveler (17.2 GB, /dev/sdb) was not updated"},
		{name: "cancelled at an application", paired: true, stdin: "n\n", code: 1, result: pairing.ResultCancelled,
			stderr: "cancelled, so your backup Tails was not changed"},
		{name: "no space", paired: true, mode: "error", code: 1, result: pairing.ResultIncomplete,
			stderr: "the update of Kingston DataTraveler (17.2 GB, /dev/sdb) did not finish: There is not enough space: 1.0 kB more is needed than the 1.0 kB free. Free some space, or use a bigger USB stick, and try again"},
		{name: "a restore paused the updates", paired: true, setup: func(t *testing.T, w *restoreWorld) {
			st := pairedState(9)
			st.Pause("restore 1", testNow.Add(time.Hour), testNow)
			saveState(t, w.state, st)
		}, code: 1, result: pairing.ResultCancelled, open: true, stderr: "a restore from your backup Tails is running, so it was not updated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			marker := tt.marker
			if marker == "" {
				marker = w.thisTails
			}
			w.backupMarker(t, marker, tails.StateComplete)
			if tt.paired {
				saveState(t, w.state, pairedState(9))
			}
			if tt.setup != nil {
				tt.setup(t, w)
			}
			pass := tt.pass
			if pass == nil {
				pass = []string{udiskstest.BackupPassphrase}
			}
			fakePinentry(t, w.pinentry, pass...)
			mode := tt.mode
			if mode == "" {
				mode = "done"
			}
			helperCmd, _ := fakeHelper(t, w.helperBin, mode, "no-space")
			q := &quiescetest.FakeQuiescer{}
			if tt.stdin != "" {
				q = busyQuiescer()
			}
			code, _, stderr := runUpdateQuiescing(t, tt.stdin, q, "--state", w.state, "--helper-command", helperCmd)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, tt.code, tt.stderr)
			}
			if tt.result != "" {
				checkAttempt(t, w.state, tt.result)
			}
			// Locked, not powered off: the command is run again with the stick plugged in.
			if n := len(w.fake.CallsOf("PowerOff")); n != 0 || w.locked(w.std.Backup.LUKS) == tt.open {
				t.Errorf("%d PowerOff calls, locked %v; want none, locked %v", n, w.locked(w.std.Backup.LUKS), !tt.open)
			}
		})
	}
}

// TestUpdateCommandAgentUpdating: the agent's update holds the backup (unlocked, mounted, the
// helper's lock): the command is refused by the helper and leaves the stick as it found it.
func TestUpdateCommandAgentUpdating(t *testing.T) {
	w := newRestoreWorld(t)
	w.fake.Unplug(w.std.Backup.Drive)
	sp := w.fake.AddStick(udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase,
		LUKSUUID: backupUUID, MountedAt: w.mount})
	w.backupMarker(t, w.thisTails, tails.StateIncomplete)
	saveState(t, w.state, pairedState(9))
	fakePinentry(t, w.pinentry, "!crash") // never asked
	helperCmd, _ := fakeHelper(t, w.helperBin, "error", "refused")
	t.Setenv("FAKEHELPER_REASON", "update-running")
	t.Setenv("FAKEHELPER_ARGS", `{"stick":{"label":"Kingston DataTraveler","size":17179869184,"device":"/dev/sdb"}}`)
	code, _, stderr := runUpdateQuiescing(t, "", &quiescetest.FakeQuiescer{}, "--state", w.state, "--helper-command", helperCmd)
	if code != 1 || !strings.Contains(stderr, "did not finish: Another update of Kingston DataTraveler (17.2 GB, /dev/sdb) is running. Wait for it to finish\n") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, m := range []string{"Unlock", "Unmount", "Lock", "PowerOff"} {
		if n := len(w.fake.CallsOf(m)); n != 0 {
			t.Errorf("%d %s calls, want none", n, m)
		}
	}
	if w.locked(sp.LUKS) {
		t.Error("a stick found unlocked was locked")
	}
}

// TestUpdateCommandRefreshesSystem: the backup's system partition holds an older Tails than
// the running one: after the data, the command has the helper refresh it and install its boot
// loader, shows the progress, and says to which version it was updated; a failure of the
// refresh is said in one sentence, with the data backed up.
func TestUpdateCommandRefreshesSystem(t *testing.T) {
	const running, older = "Tails 7.2 - 20251107", "Tails 7.1 - 20251010"
	system := func(version string, size int) map[string]string {
		return map[string]string{".disk/info": version + "\n", "live/Tails.module": "filesystem.squashfs\n",
			"live/filesystem.squashfs": strings.Repeat("S", size), "syslinux/syslinux.cfg": version}
	}
	for _, tt := range []struct {
		name   string
		backup map[string]string
		mode   string // of the fake helper
		sysErr string // the error code of its refresh-system
		code   int
		ops    []string
		stdout []string
		stderr string
	}{
		{name: "older", backup: system(older, 2000), mode: "done", ops: []string{"update", "refresh-system", "install-bootloader"},
			stdout: []string{"Updating the Tails system of Kingston DataTraveler (17.2 GB, /dev/sdb) from " + older + " to " + running + "; do not unplug it.\n",
				"Backup updated: 3 files changed, 30 bytes copied.\n", "The backup's Tails system was updated to " + running + ".\n", "You can unplug it.\n"},
			stderr: "100% 2/2 changes"},
		{name: "no space for the system", backup: system(older, 2000), mode: "done", sysErr: "no-space", code: 1, ops: []string{"update", "refresh-system"},
			stdout: []string{"Backup updated: 3 files changed, 30 bytes copied.\n", "You can unplug it.\n"},
			stderr: "tails-backup update: your data is backed up, but the backup's Tails system was not updated: its system partition is too small for this version of Tails; create a new backup on a bigger USB stick with 'tails-backup create'\n"},
		{name: "up to date", backup: system(running, 3000), mode: "done", ops: []string{"update"},
			stdout: []string{"Backup updated: 3 files changed, 30 bytes copied.\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			saveState(t, w.state, pairedState(9))
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, tt.mode, "")
			t.Setenv("FAKEHELPER_SYSTEM_VERSION", running)
			t.Setenv("FAKEHELPER_SYSTEM_CODE", tt.sysErr)
			for dir, files := range map[string]map[string]string{w.sys.medium: system(running, 3000), filepath.Join(w.dir, "media", "Tails"): tt.backup} {
				for rel, content := range files {
					writeFile(t, filepath.Join(dir, rel), content)
				}
			}
			code, stdout, stderr := runUpdateQuiescing(t, "", &quiescetest.FakeQuiescer{}, "--state", w.state, "--helper-command", helperCmd)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			wantContains(t, "stdout", stdout, tt.stdout...)
			wantContains(t, "stderr", stderr, tt.stderr)
			var ops []string
			for _, r := range helperRequests(t, record) {
				ops = append(ops, fmt.Sprint(r["op"]))
				if r["backup"] != backupUUID {
					t.Errorf("request %v for another backup", r)
				}
			}
			if !slices.Equal(ops, tt.ops) {
				t.Errorf("helper operations %q, want %q", ops, tt.ops)
			}
			if strings.Contains(stdout, "Tails system") != slices.Contains(tt.ops, "refresh-system") || strings.Contains(stdout, "was updated to") != (tt.code == 0 && len(tt.ops) > 1) {
				t.Errorf("stdout speaks of the Tails system: %v, refreshed: %v", strings.Contains(stdout, "Tails system"), slices.Contains(tt.ops, "refresh-system"))
			}
			if !w.locked(w.std.Backup.LUKS) || len(w.fake.CallsOf("PowerOff")) != 1 {
				t.Error("the backup was not ejected")
			}
			checkAttempt(t, w.state, pairing.ResultSuccess)
		})
	}
}
