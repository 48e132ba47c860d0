package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/pairing"
	"tails-backup/udisks/udiskstest"
)

// pairWorld is a private system bus with the fake udisks2 and the standard sticks (the boot
// stick sda, the Tails stick sdb to pair, a plain stick sdc, an internal disk), the fake
// pinentry and the fake root helper.
type pairWorld struct {
	sys       *sessionSystem
	dir       string
	fake      *udiskstest.Service
	std       udiskstest.Standard
	state     string // --state
	pinentry  string // fake pinentry binary
	helperBin string // fake helper binary
}

func newPairWorld(t *testing.T) *pairWorld {
	t.Helper()
	sys, dir := testSession(t)
	addr := udiskstest.StartBus(t)
	fake := udiskstest.NewService(t, addr)
	fake.SetFilesystemDelay(20 * time.Millisecond)
	std := fake.AddStandard()
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	pin, hb := fakePrograms(t)
	return &pairWorld{sys: sys, dir: dir, fake: fake, std: std, state: filepath.Join(dir, "state.json"), pinentry: pin, helperBin: hb}
}

// locked reports whether the LUKS partition at luks is locked.
func (w *pairWorld) locked(luks dbus.ObjectPath) bool {
	ct, _ := w.fake.Get(luks, "org.freedesktop.UDisks2.Encrypted", "CleartextDevice").(dbus.ObjectPath)
	return ct == "/" || ct == ""
}

func (w *pairWorld) addSecondTailsStick() udiskstest.StickPaths {
	return w.fake.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Samsung", Model: "BAR Plus", Serial: "SECOND0004",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: "second passphrase", LUKSUUID: otherUUID})
}

const pairedText = "Paired. Your backup Tails is updated each time you plug it in; unplug it and plug it in again now to make the first update."

func TestPairHappyPath(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantPrompt bool
	}{
		{"with --yes", []string{"--yes"}, "", false},
		{"confirmed with y", nil, "y\n", true},
		{"confirmed with YES and the device", []string{"/dev/sdb"}, "YES\n", true},
		{"device without /dev", []string{"--yes", "sdb"}, "", false},
		{"device given by its partition", []string{"--yes", "/dev/sdb2"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newPairWorld(t)
			pinLog := fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			// Locked before the pairing is saved: a running agent would start the first
			// update as soon as it sees the pairing.
			w.fake.OnCall("Lock", func(udiskstest.Call) *dbus.Error {
				if _, err := os.Stat(w.state); err == nil {
					t.Error("the pairing was saved before the stick was locked")
				}
				return nil
			})
			args := append([]string{"pair", "--state", w.state, "--helper-command", helperCmd}, tt.args...)
			code, stdout, stderr := runSession(t, tt.stdin, args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			wantContains(t, "stdout", stdout,
				"/dev/sdb", "Kingston DataTraveler, 17.2 GB, Persistent Storage "+backupUUID+", not paired", pairedText)
			if strings.Contains(stdout, "/dev/sda") || strings.Contains(stdout, "/dev/sdc") {
				t.Errorf("the boot stick or a non-Tails stick is listed:\n%s", stdout)
			}
			prompt := "Pair the Tails stick Kingston DataTraveler (17.2 GB, /dev/sdb) as the backup of this Tails? Its Persistent Storage will be overwritten by the next update. [y/N]"
			if got := strings.Contains(stdout, prompt); got != tt.wantPrompt {
				t.Errorf("prompt shown %v, want %v", got, tt.wantPrompt)
			}
			// The store has the pairing.
			st, ok := loadStateFile(t, w.state)
			if !ok || len(st.Backups) != 1 {
				t.Fatalf("store: %+v (exists %v)", st, ok)
			}
			b := st.Backups[0]
			if b.UUID != backupUUID || b.Label != "Kingston DataTraveler" || b.Size != 16<<30 || !b.Added.Equal(testNow) {
				t.Errorf("pairing %+v", b)
			}
			// The helper got op mark with the right UUID.
			reqs := helperRequests(t, record)
			if len(reqs) != 1 || reqs[0]["op"] != "mark" || reqs[0]["backup"] != backupUUID || reqs[0]["version"] != float64(1) {
				t.Errorf("helper requests %v", reqs)
			}
			// Then the key slot, with the passphrase typed in the secret line alone.
			if ks, secrets := keySlotRequests(t, record); len(ks) != 1 || ks[0]["backup"] != backupUUID || secrets[0] != udiskstest.BackupPassphrase {
				t.Errorf("add-key-slot requests %v (%d secrets)", ks, len(secrets))
			}
			if !b.KeySlot {
				t.Error("the key slot is not recorded")
			}
			wantContains(t, "stdout", stdout, "Updates will not ask for the passphrase: a key kept in this Tails' Persistent Storage opens the backup.")
			// Unlocked with the passphrase, mounted, then unmounted and locked; left plugged in.
			if n := len(w.fake.CallsOf("Unlock")); n != 1 {
				t.Errorf("%d Unlock calls, want 1", n)
			}
			for _, m := range []string{"Mount", "Unmount", "Lock"} {
				if n := len(w.fake.CallsOf(m)); n != 1 {
					t.Errorf("%d %s calls, want 1", n, m)
				}
			}
			if !w.locked(w.std.Backup.LUKS) {
				t.Error("the stick was left unlocked")
			}
			if len(w.fake.CallsOf("PowerOff")) != 0 || !w.fake.Exists(w.std.Backup.Drive) {
				t.Error("the stick was powered off")
			}
			if w.locked(w.std.Boot.LUKS) {
				t.Error("the boot stick's Persistent Storage was locked")
			}
			wantContains(t, "pinentry log", readString(t, pinLog), "SETPROMPT Passphrase of the Tails stick to pair\n", "SETDESC Enter the passphrase of the Persistent Storage of Kingston DataTraveler (17.2 GB, /dev/sdb)")
		})
	}
}

func TestPairPassphrase(t *testing.T) {
	tests := []struct {
		name        string
		answers     []string
		wantCode    int
		wantStderr  string
		wantUnlocks int
		wantPaired  bool
	}{
		{"wrong then right", []string{"wrong", udiskstest.BackupPassphrase}, 0, "", 2, true},
		{"wrong three times", []string{"wrong"}, 1, "the passphrase was wrong 3 times, so Kingston DataTraveler (17.2 GB, /dev/sdb) was not paired; run 'tails-backup pair' again", 3, false},
		{"cancelled", []string{"!cancel"}, 1, "the passphrase was not given, so nothing was changed", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newPairWorld(t)
			pinLog := fakePinentry(t, w.pinentry, tt.answers...)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			code, _, stderr := runSession(t, "", "pair", "--yes", "--state", w.state, "--helper-command", helperCmd)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d", code, tt.wantCode)
			}
			wantContains(t, "stderr", stderr, tt.wantStderr)
			if n := len(w.fake.CallsOf("Unlock")); n != tt.wantUnlocks {
				t.Errorf("%d Unlock calls, want %d", n, tt.wantUnlocks)
			}
			_, paired := loadStateFile(t, w.state)
			if paired != tt.wantPaired || (len(helperRequests(t, record)) == 1) != tt.wantPaired {
				t.Errorf("paired %v, want %v", paired, tt.wantPaired)
			}
			if tt.wantUnlocks > 1 {
				wantContains(t, "pinentry log", readString(t, pinLog), "1: SETERROR Wrong passphrase. Try again")
			}
			if !w.locked(w.std.Backup.LUKS) {
				t.Error("the stick was left unlocked")
			}
		})
	}
}

func TestPairRefusedByHelper(t *testing.T) {
	w := newPairWorld(t)
	fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
	helperCmd, record := fakeHelper(t, w.helperBin, "error", "not-paired")
	t.Setenv("FAKEHELPER_REASON", "other-tails")
	t.Setenv("FAKEHELPER_ARGS", `{"stick":{"label":"Kingston DataTraveler","size":17179869184,"device":"/dev/sdb"},"uuid":"0123abcd-0000-4000-8000-000000000000"}`)
	before := pairedStateOther()
	saveState(t, w.state, before)
	stateBefore := readString(t, w.state)
	code, stdout, stderr := runSession(t, "", "pair", "--yes", "--state", w.state, "--helper-command", helperCmd)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	// The sentence of the helper's reason, with its values; not the helper's message ("it failed").
	wantContains(t, "stderr", stderr, "tails-backup pair: Kingston DataTraveler (17.2 GB, /dev/sdb) was not paired: The USB stick Kingston DataTraveler (17.2 GB, /dev/sdb) is the backup of another Tails (Persistent Storage 0123abcd-0000-4000-8000-000000000000), so it was not changed. Plug in the backup of this Tails\n")
	if strings.Contains(stdout, "Paired.") {
		t.Errorf("stdout says paired: %q", stdout)
	}
	if got := readString(t, w.state); got != stateBefore {
		t.Errorf("the store changed:\n%s", got)
	}
	if reqs := helperRequests(t, record); len(reqs) != 1 || reqs[0]["op"] != "mark" {
		t.Errorf("helper requests %v", reqs)
	}
	if !w.locked(w.std.Backup.LUKS) || len(w.fake.CallsOf("Lock")) != 1 {
		t.Error("the stick was not locked again")
	}
}

// pairedStateOther has another backup paired, so that a refused pairing can be told from it.
func pairedStateOther() pairing.State {
	st := pairing.NewState()
	st.Backups = append(st.Backups, pairing.PairedBackup{UUID: otherUUID, Label: "Samsung BAR Plus", Size: 32 << 30, Added: testNow.Add(-72 * time.Hour)})
	return st
}

func TestPairChoosesTheStick(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(w *pairWorld)
		device     string
		wantCode   int
		wantStderr string
		wantUUID   string // paired, "" if none
	}{
		{"no candidate", func(w *pairWorld) { w.fake.Unplug(w.std.Backup.Drive) }, "", 1,
			"tails-backup pair: no Tails stick to pair is plugged in (besides the one this Tails runs from); plug in the Tails stick to use as a backup and try again", ""},
		{"two candidates without a device", func(w *pairWorld) { w.addSecondTailsStick() }, "", 2,
			"2 Tails sticks are plugged in; say which one to pair, e.g. 'tails-backup pair /dev/sdb'", ""},
		{"two candidates, the second named", func(w *pairWorld) { w.addSecondTailsStick() }, "/dev/sdd", 0, "", otherUUID},
		{"unknown device", nil, "/dev/sdz", 1, "there is no device /dev/sdz; run 'tails-backup pair' without a device to list", ""},
		{"the boot stick", nil, "/dev/sda", 1, "/dev/sda is the stick this Tails is running from, so it cannot be its own backup", ""},
		{"the boot stick's partition", nil, "/dev/sda2", 1, "/dev/sda2 is the stick this Tails is running from", ""},
		{"a stick without Tails", nil, "/dev/sdc", 1, "/dev/sdc is not a Tails stick", ""},
		{"the internal disk", nil, "/dev/vda", 1, "/dev/vda is not a Tails stick", ""},
		{"a non-removable Tails disk", func(w *pairWorld) {
			w.fake.AddStick(udiskstest.StickSpec{Name: "nvme0n1", Vendor: "", Model: "SSD", Serial: "NVME", Tails: true, Passphrase: "x", LUKSUUID: otherUUID})
		}, "/dev/nvme0n1", 1, "/dev/nvme0n1 is not a removable USB stick", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newPairWorld(t)
			if tt.setup != nil {
				tt.setup(w)
			}
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase, "second passphrase")
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			args := []string{"pair", "--yes", "--state", w.state, "--helper-command", helperCmd}
			if tt.device != "" {
				args = append(args, tt.device)
			}
			code, _, stderr := runSession(t, "", args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d", code, tt.wantCode)
			}
			wantContains(t, "stderr", stderr, tt.wantStderr)
			st, ok := loadStateFile(t, w.state)
			if tt.wantUUID == "" {
				if ok || len(w.fake.CallsOf("Unlock")) != 0 || helperRequests(t, record) != nil {
					t.Errorf("something was done: store %v, unlocks %d", ok, len(w.fake.CallsOf("Unlock")))
				}
				return
			}
			if !ok || len(st.Backups) != 1 || st.Backups[0].UUID != tt.wantUUID || st.Backups[0].Label != "Samsung BAR Plus" {
				t.Errorf("store %+v", st)
			}
			if reqs := helperRequests(t, record); len(reqs) != 1 || reqs[0]["backup"] != tt.wantUUID {
				t.Errorf("helper requests %v", reqs)
			}
		})
	}
}

func TestPairDeclined(t *testing.T) {
	for _, answer := range []string{"n\n", "\n", "", "maybe\n"} {
		t.Run(strings.TrimSpace(answer), func(t *testing.T) {
			w := newPairWorld(t)
			fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
			code, stdout, stderr := runSession(t, answer, "pair", "--state", w.state, "--helper-command", helperCmd)
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			wantContains(t, "stdout", stdout, "[y/N]")
			wantContains(t, "stderr", stderr, "not confirmed, so nothing was changed")
			if _, ok := loadStateFile(t, w.state); ok {
				t.Error("the store was written")
			}
			if len(w.fake.CallsOf("Unlock"))+len(w.fake.CallsOf("Mount")) != 0 || helperRequests(t, record) != nil {
				t.Error("the stick was touched")
			}
		})
	}
}

func TestPairAlreadyPaired(t *testing.T) {
	w := newPairWorld(t)
	fakePinentry(t, w.pinentry, "!crash")
	helperCmd, record := fakeHelper(t, w.helperBin, "done", "")
	saveState(t, w.state, pairedState(3))
	code, stdout, _ := runSession(t, "", "pair", "--state", w.state, "--helper-command", helperCmd)
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	wantContains(t, "stdout", stdout, "Persistent Storage "+backupUUID+", paired",
		"Kingston DataTraveler (17.2 GB, /dev/sdb) is already paired as the backup of this Tails; plug it in to update it.")
	if len(w.fake.CallsOf("Unlock")) != 0 || helperRequests(t, record) != nil {
		t.Error("the stick was touched")
	}
}

// TestPairAlreadyUnlocked: a stick unlocked (and mounted) beforehand needs no passphrase, and
// is locked afterwards all the same.
func TestPairAlreadyUnlocked(t *testing.T) {
	w := newPairWorld(t)
	w.fake.Unplug(w.std.Backup.Drive)
	sp := w.fake.AddStick(udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase,
		LUKSUUID: backupUUID, MountedAt: "/media/amnesia/TailsData"})
	fakePinentry(t, w.pinentry, "!crash") // never asked
	helperCmd, _ := fakeHelper(t, w.helperBin, "done", "")
	code, stdout, _ := runSession(t, "", "pair", "--yes", "--state", w.state, "--helper-command", helperCmd)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantContains(t, "stdout", stdout, pairedText)
	if len(w.fake.CallsOf("Unlock")) != 0 {
		t.Error("unlocked again")
	}
	if !w.locked(sp.LUKS) {
		t.Error("the stick was left unlocked")
	}
}

// TestPairDefaultStatePath: without --state the store's location is decided after the helper's
// mark, which makes the store's folder in the Persistent Storage; what was set in the store
// used before (the reminder settings) moves with it.
func TestPairDefaultStatePath(t *testing.T) {
	w := newPairWorld(t)
	psDir := filepath.Join(w.dir, "persistence", "tails-backup")
	home := filepath.Join(w.dir, "home-state.json")
	w.sys.defaultStatePath = func() (string, error) {
		if fi, err := os.Stat(psDir); err == nil && fi.IsDir() {
			return filepath.Join(psDir, "state.json"), nil
		}
		return home, nil
	}
	old := pairing.NewState()
	old.Reminder.Disabled = true
	saveState(t, home, old)
	fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
	_, record := fakeHelper(t, w.helperBin, "done", "")
	// The helper makes the folder, as the real one does on mark.
	script := filepath.Join(w.dir, "helper.sh")
	writeFile(t, script, "#!/bin/sh\nmkdir -p '"+psDir+"' && exec '"+w.helperBin+"'\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, _ := runSession(t, "", "pair", "--yes", "--helper-command", script)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	st, ok := loadStateFile(t, filepath.Join(psDir, "state.json"))
	if !ok || len(st.Backups) != 1 || st.Backups[0].UUID != backupUUID || !st.Reminder.Disabled {
		t.Errorf("store in the Persistent Storage: %+v (exists %v)", st, ok)
	}
	if len(helperRequests(t, record)) != 1 {
		t.Error("the helper was not run once")
	}
}

func TestPairUsage(t *testing.T) {
	testSession(t)
	code, _, stderr := runSession(t, "", "pair", "/dev/sdb", "/dev/sdc")
	if code != 2 || !strings.Contains(stderr, "give at most one device") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestPairWithoutSystemBus(t *testing.T) {
	testSession(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	code, _, stderr := runSession(t, "", "pair", "--yes")
	if code != 1 || !strings.Contains(stderr, "cannot reach the system bus") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestPairOnABackupTails(t *testing.T) {
	sys, dir := testSession(t)
	writeOwnMarker(t, sys, mainUUID)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	state := filepath.Join(dir, "state.json")
	code, _, stderr := runSession(t, "", "pair", "--yes", "--state", state)
	if code != 1 || !strings.Contains(stderr, "this Tails is itself a backup, so it does not update backups; if your main Tails is lost or broken, run 'tails-backup promote' first") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, ok := loadStateFile(t, state); ok {
		t.Error("the store was written")
	}
}
