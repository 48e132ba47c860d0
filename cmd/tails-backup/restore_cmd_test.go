package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/pairing"
	"tails-backup/quiesce"
	"tails-backup/quiesce/quiescetest"
	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
)

// restoreWorld is the pair world with the backup's Persistent Storage content where the fake
// udisks mounts it (mounts only happen in udisks' model: the folder stands for the mount).
type restoreWorld struct {
	*pairWorld
	mount     string // where the fake mounts a TailsData file system
	thisTails string // LUKS UUID of the boot stick's Persistent Storage
}

func newRestoreWorld(t *testing.T) *restoreWorld {
	t.Helper()
	w := &restoreWorld{pairWorld: newPairWorld(t)}
	root := filepath.Join(w.dir, "media")
	w.fake.SetMountRoot(root)
	w.mount = filepath.Join(root, tails.PersistenceName)
	if err := os.MkdirAll(w.mount, 0o755); err != nil {
		t.Fatal(err)
	}
	w.thisTails, _ = w.fake.Get(w.std.Boot.LUKS, "org.freedesktop.UDisks2.Block", "IdUUID").(string)
	if !tails.ValidUUID(w.thisTails) {
		t.Fatalf("boot stick LUKS UUID %q", w.thisTails)
	}
	return w
}

// backupMarker puts on the backup a marker naming source.
func (w *restoreWorld) backupMarker(t *testing.T, source string, state tails.UpdateState) {
	t.Helper()
	m := tails.Marker{Format: tails.MarkerFormat, Source: source, State: state,
		Started: testNow.Add(-3 * 24 * time.Hour), Finished: testNow.Add(-4 * 24 * time.Hour), TailsVersion: "6.9"}
	if state == tails.StateComplete {
		m.Finished = testNow.Add(-3*24*time.Hour + 10*time.Minute)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(w.mount, tails.MarkerName), string(b))
}

// checkStickReleased: unlocked once, mounted, then unmounted and locked again.
func (w *restoreWorld) checkStickReleased(t *testing.T, unlocks int) {
	t.Helper()
	if n := len(w.fake.CallsOf("Unlock")); n != unlocks {
		t.Errorf("%d Unlock calls, want %d", n, unlocks)
	}
	if !w.locked(w.std.Backup.LUKS) {
		t.Error("the backup was left unlocked")
	}
	if len(w.fake.CallsOf("PowerOff")) != 0 {
		t.Error("the backup was powered off")
	}
}

const restoreDeletes = "Restoring copies it into the Persistent Storage of this Tails: files in your Persistent Storage that are not on the backup will be deleted, and files that differ will be replaced by the backup's version.\n"

func TestRestoreCommandHappyPath(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		stdin  string
		prompt bool
	}{
		{"confirmed with y", nil, "y\n", true},
		{"with --yes and the device", []string{"--yes", "sdb"}, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			pinLog := fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			code, stdout, stderr := runSession(t, tt.stdin, append([]string{"restore", "--helper-command", helperCmd}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			wantContains(t, "stdout", stdout,
				"Opening the backup on Kingston DataTraveler (17.2 GB, /dev/sdb).\n",
				"The backup on Kingston DataTraveler (17.2 GB, /dev/sdb) was last updated completely on Fri 7 Mar 2025 12:10, from Tails 6.9.\n",
				restoreDeletes,
				"Restoring from the backup on Kingston DataTraveler (17.2 GB, /dev/sdb); do not unplug it.\n",
				"Restored: 3 files and folders created, 0 replaced, 0 deleted, 0 with new permissions or dates; 30 bytes copied.\n",
				"Features Tails will turn on at the next start: none.\n",
				"Restart Tails to use everything that was restored.\n")
			if strings.Contains(stdout, "another Tails") || strings.Contains(stdout, "did not finish") {
				t.Errorf("a backup of this Tails described as another's or incomplete:\n%s", stdout)
			}
			if got := strings.Contains(stdout, "Restore your Persistent Storage from this backup? [y/N] "); got != tt.prompt {
				t.Errorf("question shown %v, want %v", got, tt.prompt)
			}
			reqs := helperRequests(t, record)
			if len(reqs) != 1 || reqs[0]["op"] != "restore" || reqs[0]["backup"] != backupUUID || reqs[0]["source"] != w.thisTails || reqs[0]["skip"] != nil {
				t.Errorf("helper requests %v", reqs)
			}
			w.checkStickReleased(t, 1)
			wantContains(t, "pinentry log", readString(t, pinLog), "to restore your Persistent Storage from it")
		})
	}
}

// TestRestoreCommandFromAnotherTails: a backup made from another Tails needs restore typed.
func TestRestoreCommandFromAnotherTails(t *testing.T) {
	for _, tt := range []struct {
		name     string
		args     []string
		stdin    string
		restored bool
	}{
		{"y is not enough", nil, "y\n", false},
		{"no answer", nil, "", false},
		{"restore typed", nil, "restore\n", true},
		{"--yes", []string{"--yes"}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, mainUUID, tails.StateIncomplete)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			code, stdout, stderr := runSession(t, tt.stdin, append([]string{"restore", "--helper-command", helperCmd}, tt.args...)...)
			wantContains(t, "stdout", stdout,
				"The backup on Kingston DataTraveler (17.2 GB, /dev/sdb) was last updated completely on Thu 6 Mar 2025 12:00, from Tails 6.9.\n",
				"Its last update, started on Fri 7 Mar 2025 12:00, did not finish: some of its files may be older than others, or missing.\n",
				restoreDeletes,
				"This backup was made from another Tails (Persistent Storage "+mainUUID+"), not from this one: restore from it only if it is your own backup, for example of the Tails USB stick you lost.\n")
			reqs := helperRequests(t, record)
			if !tt.restored {
				if code != 1 || !strings.Contains(stderr, "tails-backup restore: not confirmed, so nothing was changed (type restore to restore from a backup of another Tails, or use --yes)\n") {
					t.Errorf("exit %d, stderr %q", code, stderr)
				}
				if reqs != nil {
					t.Errorf("the helper was run: %v", reqs)
				}
			} else {
				if code != 0 {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
				if len(reqs) != 1 || reqs[0]["source"] != mainUUID || reqs[0]["op"] != "restore" {
					t.Errorf("helper requests %v", reqs)
				}
			}
			if got := strings.Contains(stdout, "Type restore to restore from this backup of another Tails, or anything else to cancel: "); got == slices.Contains(tt.args, "--yes") {
				t.Errorf("question shown %v with args %q", got, tt.args)
			}
			w.checkStickReleased(t, 1)
		})
	}
}

// TestRestoreCommandRefusals: nothing is changed and the helper is never run.
func TestRestoreCommandRefusals(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, w *restoreWorld)
		args     []string
		stdin    string
		code     int
		stderr   string
		stdout   string
		unlocked int // Unlock calls
	}{
		{name: "no marker", code: 1, unlocked: 1, args: []string{"--yes"},
			stderr: "tails-backup restore: Kingston DataTraveler (17.2 GB, /dev/sdb) is not a backup made by tails-backup (its Persistent Storage has no backup marker), so nothing was changed; plug in your backup Tails and give its device\n"},
		{name: "damaged marker", code: 1, unlocked: 1, args: []string{"--yes"}, stderr: "is damaged",
			setup: func(t *testing.T, w *restoreWorld) { writeFile(t, filepath.Join(w.mount, tails.MarkerName), "{") }},
		{name: "marker is a symlink", code: 1, unlocked: 1, args: []string{"--yes"}, stderr: "is damaged",
			setup: func(t *testing.T, w *restoreWorld) {
				w.backupMarker(t, w.thisTails, tails.StateComplete)
				if err := os.Rename(filepath.Join(w.mount, tails.MarkerName), filepath.Join(w.dir, "m")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(w.dir, "m"), filepath.Join(w.mount, tails.MarkerName)); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "not confirmed", code: 1, unlocked: 1, stdin: "n\n",
			stderr: "tails-backup restore: not confirmed, so nothing was changed (answer y to restore, or use --yes)\n",
			setup:  func(t *testing.T, w *restoreWorld) { w.backupMarker(t, w.thisTails, tails.StateComplete) }},
		{name: "no answer", code: 1, unlocked: 1, stderr: "not confirmed",
			setup: func(t *testing.T, w *restoreWorld) { w.backupMarker(t, w.thisTails, tails.StateComplete) }},
		{name: "this Tails is a backup", code: 1, args: []string{"--yes"}, stderr: "this Tails is itself a backup Tails",
			setup: func(t *testing.T, w *restoreWorld) { writeOwnMarker(t, w.sys, mainUUID) }},
		{name: "several sticks", code: 2,
			stderr: "tails-backup restore: 2 Tails sticks are plugged in; say which one to restore from, e.g. 'tails-backup restore /dev/sdb'\nrun 'tails-backup restore --help' to see how to use it\n",
			stdout: "Tails sticks plugged in, besides the one this Tails runs from:\n  /dev/sdb   Kingston DataTraveler, 17.2 GB\n  /dev/sdd   Samsung BAR Plus, 17.2 GB\n",
			setup:  func(t *testing.T, w *restoreWorld) { w.addSecondTailsStick() }},
		{name: "the boot stick", code: 1, args: []string{"/dev/sda"}, stderr: "/dev/sda is the stick this Tails is running from"},
		{name: "not a Tails stick", code: 1, args: []string{"sdc"}, stderr: "/dev/sdc is not a Tails stick"},
		{name: "no such device", code: 1, args: []string{"sdz"}, stderr: "there is no device /dev/sdz"},
		{name: "two devices", code: 2, args: []string{"sdb", "sdc"}, stderr: "give at most one device"},
		{name: "passphrase not given", code: 1, args: []string{"--yes"}, stderr: "the passphrase was not given, so nothing was changed",
			setup: func(t *testing.T, w *restoreWorld) {
				w.backupMarker(t, w.thisTails, tails.StateComplete)
				fakePinentry(t, w.pinentry, "!cancel")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			if tt.setup != nil {
				tt.setup(t, w)
			}
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			code, stdout, stderr := runSession(t, tt.stdin, append([]string{"restore", "--helper-command", helperCmd}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
			wantContains(t, "stdout", stdout, tt.stdout)
			if reqs := helperRequests(t, record); reqs != nil {
				t.Errorf("the helper was run: %v", reqs)
			}
			if n := len(w.fake.CallsOf("Unlock")); n != tt.unlocked {
				t.Errorf("%d Unlock calls, want %d", n, tt.unlocked)
			}
			if w.fake.Exists(w.std.Backup.Drive) && !w.locked(w.std.Backup.LUKS) {
				t.Error("the backup was left unlocked")
			}
		})
	}
}

// TestRestoreCommandChoosesTheDevice: with two Tails sticks, DEVICE says which.
func TestRestoreCommandChoosesTheDevice(t *testing.T) {
	w := newRestoreWorld(t)
	second := w.addSecondTailsStick()
	w.backupMarker(t, w.thisTails, tails.StateComplete)
	fakePinentry(t, w.pinentry, "second passphrase")
	helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
	code, stdout, stderr := runSession(t, "", "restore", "--yes", "--helper-command", helperCmd, "/dev/sdd")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	wantContains(t, "stdout", stdout, "Opening the backup on Samsung BAR Plus (17.2 GB, /dev/sdd).\n")
	if reqs := helperRequests(t, record); len(reqs) != 1 || reqs[0]["backup"] != otherUUID {
		t.Errorf("helper requests %v", reqs)
	}
	if !w.locked(second.LUKS) || !w.locked(w.std.Backup.LUKS) {
		t.Error("a stick was left unlocked")
	}
}

func TestRestoreCommandHelperFails(t *testing.T) {
	w := newRestoreWorld(t)
	w.backupMarker(t, w.thisTails, tails.StateComplete)
	fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
	helperCmd, record := fakeHelper(t, w.helperBin, "error", "no-space")
	code, stdout, stderr := runSession(t, "y\n", "restore", "--helper-command", helperCmd)
	// The helper's no-space is worded from its code (the session's language), not its message,
	// and names what is full: this Tails' own Persistent Storage.
	if code != 1 || !strings.Contains(stderr, "tails-backup restore: the restore from Kingston DataTraveler (17.2 GB, /dev/sdb) did not finish: the Persistent Storage of this Tails is too small, 1.0 kB more is needed than the 1.0 kB free; delete files you do not need from it, or restore onto a Tails USB stick with a bigger Persistent Storage\n") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stdout, "Restart Tails") {
		t.Errorf("a failed restore says to restart:\n%s", stdout)
	}
	if len(helperRequests(t, record)) != 1 {
		t.Error("the helper was not run")
	}
	w.checkStickReleased(t, 1)
}

// restoreScriptHelper writes a root helper that records its request and answers events.
func restoreScriptHelper(t *testing.T, events ...string) (command, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "request")
	script := "#!/bin/sh\nread -r req\nprintf '%s\\n' \"$req\" > " + record + "\ncat <<'EOF'\n" + strings.Join(events, "\n") + "\nEOF\ncat >/dev/null\n"
	command = filepath.Join(dir, "helper")
	if err := os.WriteFile(command, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return command, record
}

// TestRestoreCommandReportsProblems: files not restored, and what Tails would refuse in the
// restored Persistent Storage, are listed and make the exit status 1.
func TestRestoreCommandReportsProblems(t *testing.T) {
	progress := `{"event":"progress","phase":"copy","files_done":1,"files_total":2,"bytes_done":5,"bytes_total":10,"path":"Persistent/a"}`
	tests := []struct {
		name   string
		events []string
		code   int
		stdout []string
		stderr string
	}{
		{"files not restored", []string{progress,
			`{"event":"progress","phase":"problem","path":"persistence.conf","reason":"backup-conf-not-restored","args":{"detail":"mounts x on /etc, which is not a feature of Tails (persistence.conf)"},"problem":"The backup's persistence.conf mounts x on /etc, which is not a feature of Tails (persistence.conf), so it was not restored.","warning":true}`,
			`{"event":"done","report":{"created":1,"updated":2,"metadata_only":3,"deleted":4,"bytes_copied":5000,"error_count":2,"errors":[{"path":"Persistent/disk","op":"refused","error":"is a device node"}],"duration_ns":5,"warnings":1,"features":["Persistent Folder","Dotfiles"]}}`},
			1, []string{
				"warning: persistence.conf: The backup's persistence.conf was not restored because it is not safe (mounts x on /etc, which is not a feature of Tails (persistence.conf)): this Tails keeps its own.",
				"Restored: 1 file or folder created, 2 replaced, 4 deleted, 3 with new permissions or dates; 5.0 kB copied.\n",
				"error: Persistent/disk: not restored (refused: is a device node)\n",
				"error: ... and 1 more files were not restored.\n",
				"Features Tails will turn on at the next start: Persistent Folder, Dotfiles.\n",
				"Restart Tails to use everything that was restored.\n"},
			"tails-backup restore: 2 files could not be restored (listed above); everything else was restored\n"},
		{"invalid Persistent Storage", []string{progress,
			`{"event":"progress","phase":"problem","path":"persistence.conf","reason":"conf-mode","args":{"mode":"0644"},"problem":"Its mode is 0644 instead of exactly 0600, so Tails would disable it and activate no feature."}`,
			`{"event":"done","report":{"created":0,"updated":0,"metadata_only":0,"deleted":0,"bytes_copied":0,"error_count":0,"duration_ns":5,"problems":1}}`},
			1, []string{"problem: persistence.conf: Its mode is 0644", "Restart Tails to use everything that was restored.\n"},
			"everything was restored, but Tails would not accept this Persistent Storage as it is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, _ := restoreScriptHelper(t, tt.events...)
			code, stdout, stderr := runSession(t, "", "restore", "--yes", "--helper-command", helperCmd)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			wantContains(t, "stdout", stdout, tt.stdout...)
		})
	}
}

// runRestoreQuiescing runs the command with the fake quiescer q, as run() would.
func runRestoreQuiescing(t *testing.T, stdin string, q quiesce.Quiescer, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, session: sessionFor(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := restoreWith(ctx, env, args, q)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		code = 2
	default:
		code = 1
		fmt.Fprintf(&errb, "tails-backup restore: %v\n", err)
	}
	t.Logf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// busyQuiescer: Thunderbird open (the user's), the package manager running (root's).
func busyQuiescer() *quiescetest.FakeQuiescer {
	var thunderbird, apt tails.Feature
	for _, f := range tails.Features() {
		switch f.Source {
		case "thunderbird":
			thunderbird = f
		case "apt":
			apt = f
		}
	}
	return &quiescetest.FakeQuiescer{
		Features: []tails.Feature{thunderbird, apt},
		Busy: []quiesce.BusyApp{
			{App: thunderbird.Apps[0], Feature: thunderbird, PIDs: []int{100}, Closable: true},
			{App: apt.Apps[0], Feature: apt, PIDs: []int{200}, Closable: false},
		},
	}
}

// finishingQuiescer: app finishes by itself right after the first look.
type finishingQuiescer struct {
	*quiescetest.FakeQuiescer
	app   string
	looks int
}

func (f *finishingQuiescer) BusyApps(ctx context.Context, features []tails.Feature) ([]quiesce.BusyApp, error) {
	busy, err := f.FakeQuiescer.BusyApps(ctx, features)
	if f.looks++; f.looks == 1 {
		f.Exit(f.app)
	}
	return busy, err
}

func TestRestoreCommandClosesApplications(t *testing.T) {
	const thunderbirdText = "Thunderbird is open, so the data of Thunderbird Email Client might be replaced while it uses it. Close it to restore that data, or leave that data as it is.\n[c] close Thunderbird and continue, [s] leave its data as it is, [N] cancel: "
	const aptText = "The package manager is running and using the data of Additional Software, so that data might be replaced while it uses it. Wait until it has finished, then try again; or leave that data as it is.\n[r] try again, [s] leave its data as it is, [N] cancel: "
	tests := []struct {
		name     string
		args     []string
		stdin    string
		stubborn bool
		aptExits bool // the package manager finishes before "try again"
		code     int
		stderr   string
		skip     []any // the request's skip; nil: no helper call expected when code != 0
		closed   []string
		stdout   []string
	}{
		{name: "close one, skip the other", stdin: "y\nc\ns\n", skip: []any{"apt"}, closed: []string{"Thunderbird"},
			stdout: []string{thunderbirdText, "Asking Thunderbird to close...\n", aptText, "The data of Additional Software was left as it was.\n"}},
		{name: "wait for the package manager", stdin: "y\ns\nr\n", aptExits: true, skip: []any{"thunderbird"},
			stdout: []string{"The data of Thunderbird Email Client was left as it was.\n"}},
		{name: "still running, then skipped", stdin: "y\nc\ns\ns\n", stubborn: true, skip: []any{"thunderbird", "apt"},
			stdout: []string{"Thunderbird did not close. Close it yourself (save your work first), then answer c again, or leave its data as it is.\n",
				"The data of Thunderbird Email Client, Additional Software was left as it was.\n"}},
		{name: "--skip-close", args: []string{"--yes", "--skip-close"}, skip: []any{"thunderbird", "apt"},
			stdout: []string{"Thunderbird is open: the data of Thunderbird Email Client is left as it is (--skip-close).\n",
				"The package manager is open: the data of Additional Software is left as it is (--skip-close).\n"}},
		{name: "cancelled", stdin: "y\nN\n", code: 1, stderr: "tails-backup restore: cancelled, so nothing was changed\n"},
		{name: "no answer", args: []string{"--yes"}, code: 1,
			stderr: "tails-backup restore: no answer about Thunderbird, so nothing was changed; close it and run 'tails-backup restore' again, or add --skip-close to leave its data as it is\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			q := busyQuiescer()
			if tt.stubborn {
				q.Stubborn = map[string]bool{"Thunderbird": true}
			}
			var quiescer quiesce.Quiescer = q
			if tt.aptExits {
				quiescer = &finishingQuiescer{FakeQuiescer: q, app: "The package manager"}
			}
			code, stdout, stderr := runRestoreQuiescing(t, tt.stdin, quiescer, append([]string{"--helper-command", helperCmd}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, stderr, tt.code, tt.stderr)
			}
			wantContains(t, "stdout", stdout, tt.stdout...)
			reqs := helperRequests(t, record)
			switch {
			case tt.code != 0 && reqs != nil:
				t.Errorf("the helper was run: %v", reqs)
			case tt.code == 0 && (len(reqs) != 1 || fmt.Sprint(reqs[0]["skip"]) != fmt.Sprint(tt.skip)):
				t.Errorf("helper requests %v, want skip %v", reqs, tt.skip)
			}
			if got := q.Closed(); tt.closed != nil && !slices.Equal(got, tt.closed) {
				t.Errorf("closed %q, want %q", got, tt.closed)
			}
			w.checkStickReleased(t, 1)
		})
	}
}

// stateAt reads the store at path without failing the test (for the fake's hooks, which run
// on another goroutine).
func stateAt(path string) (pairing.State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pairing.State{}, err
	}
	return pairing.ParseState(b)
}

// checkNotPaused: the store holds the pairing it had and no pause.
func checkNotPaused(t *testing.T, path string) {
	t.Helper()
	st, err := stateAt(path)
	if err != nil {
		t.Fatalf("state after the restore: %v", err)
	}
	if st.Paused(testNow) || !st.PausedUntil.IsZero() || st.PausedBy != nil {
		t.Errorf("the automatic updates are still paused: until %v by %q", st.PausedUntil, st.PausedBy)
	}
	if !st.IsPaired(backupUUID) {
		t.Error("the restore lost the pairing")
	}
}

// TestRestoreCommandPausesUpdates: the agent's automatic updates are paused in the store
// before the backup is unlocked, and the pause ends with the command however it ends.
func TestRestoreCommandPausesUpdates(t *testing.T) {
	tests := []struct {
		name      string
		stdin     string
		mode      string // the fake helper's
		interrupt bool   // Ctrl-C once the helper runs
		code      int
		stderr    string
	}{
		{name: "restored", stdin: "y\n", mode: "done"},
		{name: "the helper fails", stdin: "y\n", mode: "error", code: 1, stderr: "did not finish: the Persistent Storage of this Tails is too small"},
		{name: "not confirmed", stdin: "n\n", mode: "done", code: 1, stderr: "not confirmed, so nothing was changed"},
		{name: "Ctrl-C while the helper runs", stdin: "y\n", mode: "hang", interrupt: true, code: 1,
			stderr: "did not finish: interrupted while the root helper was running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			saveState(t, w.state, pairedState(1))
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, started := startSignallingHelper(t, w.helperBin)
			fakeHelper(t, w.helperBin, tt.mode, "no-space")

			var mu gosync.Mutex
			var atUnlock []pairing.State
			w.fake.OnCall("Unlock", func(udiskstest.Call) *dbus.Error {
				st, err := stateAt(w.state)
				if err != nil {
					t.Errorf("state at the unlock: %v", err)
				}
				mu.Lock()
				atUnlock = append(atUnlock, st)
				mu.Unlock()
				return nil
			})

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmdCtx, interrupt := context.WithCancel(ctx)
			defer interrupt()
			if tt.interrupt {
				go func() {
					select {
					case <-started:
						interrupt()
					case <-ctx.Done():
					}
				}()
			}
			var out, errb bytes.Buffer
			env := &environment{stdin: strings.NewReader(tt.stdin), stdout: &out, stderr: &errb, session: sessionFor(t)}
			code := 0
			if err := restoreRun(cmdCtx, env, []string{"--state", w.state, "--helper-command", helperCmd},
				restoreOptions{quiescer: &quiescetest.FakeQuiescer{}, plugWait: time.Minute}); err != nil {
				code = 1
				fmt.Fprintf(&errb, "tails-backup restore: %v\n", err)
			}
			t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
			if code != tt.code || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.stderr)
			}
			if strings.Contains(errb.String(), "stay paused") {
				t.Errorf("the pause was not ended: %q", errb.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(atUnlock) != 1 {
				t.Fatalf("%d Unlock calls, want 1", len(atUnlock))
			}
			if st := atUnlock[0]; !st.Paused(testNow) || !st.PausedUntil.Equal(testNow.Add(session.RestorePause)) || len(st.PausedBy) != 1 {
				t.Errorf("at the unlock, the updates were not paused for %v: until %v by %q", session.RestorePause, st.PausedUntil, st.PausedBy)
			}
			checkNotPaused(t, w.state)
			w.checkStickReleased(t, 1)
		})
	}
}

// watchedOutput is a command's standard output that a test can wait on.
type watchedOutput struct {
	mu      gosync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newWatchedOutput() *watchedOutput { return &watchedOutput{changed: make(chan struct{}, 1)} }

func (o *watchedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	n, err := o.b.Write(p)
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (o *watchedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output contains s; false if the command ended first.
func (o *watchedOutput) waitFor(t *testing.T, s string, ended <-chan struct{}) bool {
	t.Helper()
	deadline := time.After(time.Minute)
	for !strings.Contains(o.String(), s) {
		select {
		case <-o.changed:
		case <-ended:
			return strings.Contains(o.String(), s)
		case <-deadline:
			t.Fatalf("the output does not say %q:\n%s", s, o.String())
		}
	}
	return true
}

const plugPrompt = "Plug in your backup Tails now (Ctrl-C to stop).\n"

// TestRestoreCommandWaitsForTheBackup: without a backup plugged in, the command pauses the
// updates, asks for the backup and waits for it: plugged in, it is restored from; otherwise
// the wait ends after its time, or with Ctrl-C. The pause ends with the command.
func TestRestoreCommandWaitsForTheBackup(t *testing.T) {
	tests := []struct {
		name     string
		plug     bool // plug the backup in once asked
		ctrlC    bool // Ctrl-C once asked
		plugWait time.Duration
		code     int
		stderr   string
	}{
		{name: "plugged in", plug: true, plugWait: time.Minute},
		{name: "never plugged in", plugWait: 50 * time.Millisecond, code: 1,
			stderr: "tails-backup restore: no backup Tails was plugged in within 50ms, so nothing was changed; run 'tails-backup restore' again and plug in your backup Tails when it asks\n"},
		{name: "Ctrl-C", ctrlC: true, plugWait: time.Minute, code: 1,
			stderr: "tails-backup restore: interrupted while waiting for the backup Tails, so nothing was changed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRestoreWorld(t)
			w.backupMarker(t, w.thisTails, tails.StateComplete)
			saveState(t, w.state, pairedState(1))
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			w.fake.Unplug(w.std.Backup.Drive)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmdCtx, interrupt := context.WithCancel(ctx)
			defer interrupt()
			out := newWatchedOutput()
			var errb bytes.Buffer
			env := &environment{stdin: strings.NewReader(""), stdout: out, stderr: &errb, session: sessionFor(t)}
			ended := make(chan struct{})
			var err error
			go func() {
				defer close(ended)
				err = restoreRun(cmdCtx, env, []string{"--yes", "--state", w.state, "--helper-command", helperCmd},
					restoreOptions{quiescer: &quiescetest.FakeQuiescer{}, plugWait: tt.plugWait})
			}()
			if out.waitFor(t, plugPrompt, ended) {
				// Asked for the backup: the updates are paused already.
				if st, serr := stateAt(w.state); serr != nil || !st.Paused(testNow) {
					t.Errorf("not paused while waiting for the backup (%v)", serr)
				}
				switch {
				case tt.plug:
					w.fake.AddStick(udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
						Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase, LUKSUUID: backupUUID})
				case tt.ctrlC:
					interrupt()
				}
			}
			<-ended
			code := 0
			if err != nil {
				code = 1
				fmt.Fprintf(&errb, "tails-backup restore: %v\n", err)
			}
			stdout := out.String()
			t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, errb.String())
			if !strings.HasPrefix(stdout, plugPrompt) {
				t.Errorf("stdout does not start with %q:\n%s", plugPrompt, stdout)
			}
			if code != tt.code || !strings.HasSuffix(errb.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.stderr)
			}
			reqs := helperRequests(t, record)
			if tt.plug {
				wantContains(t, "stdout", stdout, "Opening the backup on Kingston DataTraveler (17.2 GB, /dev/sdb).\n",
					"Restart Tails to use everything that was restored.\n")
				if len(reqs) != 1 || reqs[0]["op"] != "restore" || reqs[0]["backup"] != backupUUID {
					t.Errorf("helper requests %v", reqs)
				}
			} else {
				if reqs != nil {
					t.Errorf("the helper was run: %v", reqs)
				}
				if n := len(w.fake.CallsOf("Unlock")); n != 0 {
					t.Errorf("%d Unlock calls without a backup", n)
				}
			}
			checkNotPaused(t, w.state)
		})
	}
}

// TestRestoreCommandNeedsThePause: a store that cannot be written cannot pause the updates,
// so nothing is done: the agent would update the backup as soon as it is plugged in.
func TestRestoreCommandNeedsThePause(t *testing.T) {
	w := newRestoreWorld(t)
	w.backupMarker(t, w.thisTails, tails.StateComplete)
	fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
	helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
	notDir := filepath.Join(w.dir, "not-a-folder")
	writeFile(t, notDir, "")
	code, _, stderr := runSession(t, "", "restore", "--yes", "--state", filepath.Join(notDir, "state.json"), "--helper-command", helperCmd)
	if code != 1 || !strings.Contains(stderr, "tails-backup restore: the automatic updates of your backup could not be paused for the restore, so nothing was changed: ") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if reqs := helperRequests(t, record); reqs != nil {
		t.Errorf("the helper was run: %v", reqs)
	}
	if n := len(w.fake.Calls()); n != 0 {
		t.Errorf("%d udisks calls, want none", n)
	}
}
