package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	tbsync "tails-backup/sync"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

func TestChangeLine(t *testing.T) {
	tests := []struct {
		ev   wire.Event
		want string
	}{
		{wire.Event{Kind: "update", Type: "f", What: []string{"data"}, Path: "Persistent/notes.txt"}, ">f data          Persistent/notes.txt"},
		{wire.Event{Kind: "update", Type: "f", What: []string{"data", "mtime"}, Path: "a"}, ">f data,mtime    a"},
		{wire.Event{Kind: "create", Type: "f", Path: "Persistent/todo.txt"}, ">f new           Persistent/todo.txt"},
		{wire.Event{Kind: "create", Type: "d", Path: "gnupg"}, "cd new           gnupg/"},
		{wire.Event{Kind: "metadata", Type: "d", What: []string{"mode", "mtime"}, Path: "thunderbird"}, ".d mode,mtime    thunderbird/"},
		{wire.Event{Kind: "metadata", Type: "d", What: []string{"mtime"}, Path: "."}, ".d mtime         ./"},
		{wire.Event{Kind: "delete", Type: "f", Path: "old.txt"}, "*deleting        old.txt"},
		{wire.Event{Kind: "delete", Type: "d", Path: "old"}, "*deleting        old/"},
		{wire.Event{Kind: "update", Type: "L", What: []string{"target"}, Path: "dotfiles/.bashrc"}, "cL target        dotfiles/.bashrc"},
		{wire.Event{Kind: "update", Type: "f", What: []string{"links"}, Path: "h"}, "hf links         h"},
		{wire.Event{Kind: "update", Type: "x", What: []string{"type"}, Path: "a\nb"}, "c? type          a?b"},
	}
	for _, tt := range tests {
		if got := changeLine(tt.ev); got != tt.want {
			t.Errorf("changeLine(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
}

// psTree makes a Tails-like Persistent Storage at dir (needs root: owners).
func psTree(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "Persistent", "sub"), 0o700))
	must(os.MkdirAll(filepath.Join(dir, "dotfiles"), 0o700))
	must(os.MkdirAll(filepath.Join(dir, "thunderbird"), 0o700))
	for _, d := range []string{"Persistent", "Persistent/sub", "dotfiles", "thunderbird"} {
		must(os.Chown(filepath.Join(dir, d), 1000, 1000))
	}
	must(os.WriteFile(filepath.Join(dir, "Persistent", "notes.txt"), []byte("hello\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "Persistent", "sub", "same-size.txt"), []byte("aaaa"), 0o600))
	must(os.Symlink("../Persistent/notes.txt", filepath.Join(dir, "dotfiles", ".bashrc")))
	conf := filepath.Join(dir, tails.PersistenceConfName)
	must(os.WriteFile(conf, []byte("/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia\tsource=dotfiles,link\n/home/amnesia/.thunderbird\tsource=thunderbird\n"), 0o600))
	must(os.Chown(conf, tails.PersistentStorageUID, tails.PersistentStorageGID))
	// Root: root:root 0770, ACL user:1000:--x.
	acl := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{0x01, 7, 0xffffffff}, {0x02, 1, 1000}, {0x04, 7, 0xffffffff}, {0x10, 7, 0xffffffff}, {0x20, 0, 0xffffffff}} {
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[0]))
		acl = binary.LittleEndian.AppendUint16(acl, uint16(e[1]))
		acl = binary.LittleEndian.AppendUint32(acl, e[2])
	}
	must(unix.Setxattr(dir, "system.posix_acl_access", acl, 0))
	must(os.Chmod(dir, 0o770))
}

// verifyTrees makes a source Persistent Storage and an exact copy of it, as the backup.
func verifyTrees(t *testing.T) (src, dst string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (owners of a Persistent Storage)")
	}
	dir := t.TempDir()
	src, dst = filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	psTree(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := tbsync.Mirror(ctx, src, dst, tbsync.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return src, dst
}

func TestVerifyPathIdentical(t *testing.T) {
	src, dst := verifyTrees(t)
	for _, args := range [][]string{{}, {"--checksum"}} {
		code, stdout, stderr := runCLI(t, append(append([]string{"verify", "--source", src}, args...), dst)...)
		if code != 0 || stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q, stdout:\n%s", args, code, stderr, stdout)
		}
		want := "The backup is identical and valid (metadata compared; add --checksum to compare the content of the files too).\n"
		if len(args) > 0 {
			want = "The backup is identical and valid (metadata and content compared).\n"
		}
		wantContains(t, "stdout", stdout, "Features Tails would activate on the backup: Persistent Folder, Thunderbird Email Client, Dotfiles.\n", want)
		if strings.Count(stdout, "\n") != 2 {
			t.Errorf("more than the summary:\n%s", stdout)
		}
	}
}

// The pairing store's folder is this Tails' own: the mirror leaves it out of the backup, so
// a verify must not count it as a difference (it did, while the helper's verify did not).
func TestVerifyPathLeavesOutTheStateFolder(t *testing.T) {
	src, dst := verifyTrees(t)
	// The root keeps its mtime, as when the folder was there before the update that made the
	// backup (the mirror gives the backup's root the source's mtime).
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, tails.StateDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, tails.StateDirName, "state.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNano(src, []unix.Timespec{st.Atim, st.Mtim}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "verify", "--source", src, dst)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	wantContains(t, "stdout", stdout, "The backup is identical and valid")
}

func TestVerifyPathDifferences(t *testing.T) {
	src, dst := verifyTrees(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(src, "Persistent", "notes.txt"), []byte("hello again\n"), 0o600))
	must(os.WriteFile(filepath.Join(src, "Persistent", "todo.txt"), []byte("x\n"), 0o600))
	must(os.Remove(filepath.Join(src, "dotfiles", ".bashrc")))
	must(os.Symlink("../Persistent/todo.txt", filepath.Join(src, "dotfiles", ".bashrc")))
	must(os.Chmod(filepath.Join(src, "thunderbird"), 0o755))
	must(os.WriteFile(filepath.Join(dst, "old.txt"), []byte("old\n"), 0o600))
	must(os.Chmod(filepath.Join(dst, tails.PersistenceConfName), 0o644))
	// Same size, same mtime, other content: only --checksum finds it.
	same := filepath.Join(src, "Persistent", "sub", "same-size.txt")
	var st unix.Stat_t
	must(unix.Lstat(same, &st))
	must(os.WriteFile(same, []byte("bbbb"), 0o600))
	must(unix.UtimesNano(same, []unix.Timespec{st.Atim, st.Mtim}))

	code, stdout, stderr := runCLI(t, "verify", "--source", src, dst)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, stderr)
	}
	wantContains(t, "stdout", stdout,
		">f data          Persistent/notes.txt\n",
		">f new           Persistent/todo.txt\n",
		"cL target        dotfiles/.bashrc\n",
		".d mode          thunderbird/\n",
		"*deleting        old.txt\n",
		".f mode          persistence.conf\n",
		"problem: persistence.conf: Its mode is 0644 instead of exactly 0600, so Tails would disable it and activate no feature.\n",
		"Features Tails would activate on the backup: none.\n",
		" differences, 1 problem.\n")
	if strings.Contains(stdout, "same-size") {
		t.Errorf("without --checksum a file of equal size and mtime was found different:\n%s", stdout)
	}
	wantContains(t, "stderr", stderr, "tails-backup verify: the backup is not an exact, valid copy")

	code, stdout, _ = runCLI(t, "verify", "--checksum", "--skip", "thunderbird", "--source", src, dst)
	if code != 1 {
		t.Fatalf("--checksum: exit %d", code)
	}
	wantContains(t, "stdout", stdout, ">f data          Persistent/sub/same-size.txt\n")
	if strings.Contains(stdout, "thunderbird") {
		t.Errorf("a skipped folder was compared:\n%s", stdout)
	}
}

func TestVerifyUsage(t *testing.T) {
	for _, args := range [][]string{{"verify", "a", "b"}, {"verify", "--skip", "a/b", "/tmp"}, {"verify", "--nope"}} {
		code, _, stderr := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
	}
	// The folder given is the one named, whatever the source (here none, as on a Debian).
	for _, source := range []string{t.TempDir(), "/nonexistent/persistence"} {
		code, _, stderr := runCLI(t, "verify", "--source", source, "/nonexistent/backup")
		want := "tails-backup verify: the backup /nonexistent/backup does not exist: give the folder where the backup's Persistent Storage is mounted\n"
		if code != 1 || stderr != want {
			t.Errorf("missing folder, source %s: exit %d, stderr %q, want %q", source, code, stderr, want)
		}
	}
}

// scriptedHelper writes a root helper that records its request and answers with events.
func scriptedHelper(t *testing.T, events ...string) (command, record string) {
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

func TestVerifyDevice(t *testing.T) {
	changes := []string{
		`{"event":"progress","phase":"change","path":"Persistent/notes.txt","kind":"update","what":["data","mtime"],"type":"f"}`,
		`{"event":"progress","phase":"change","path":"old","kind":"delete","type":"d"}`,
		`{"event":"progress","phase":"problem","path":"persistence.conf","reason":"conf-mode","args":{"mode":"0644"},"problem":"Its mode is 0644 instead of exactly 0600, so Tails would disable it and activate no feature."}`,
		`{"event":"progress","phase":"problem","path":".","reason":"root-old-mode","problem":"The root folder has mode 0775, as made by old versions of Tails, instead of 0770; Tails accepts it.","warning":true}`,
		`{"event":"done","report":{"created":0,"updated":1,"metadata_only":0,"deleted":3,"bytes_copied":0,"error_count":0,"duration_ns":5,"problems":1,"warnings":1,"changes_not_listed":2}}`,
	}
	identical := []string{
		`{"event":"progress","phase":"scan","files_done":3}`,
		`{"event":"done","report":{"created":0,"updated":0,"metadata_only":0,"deleted":0,"bytes_copied":0,"error_count":0,"duration_ns":5,"features":["Persistent Folder","Dotfiles"]}}`,
	}
	tests := []struct {
		name       string
		events     []string
		args       []string
		wantCode   int
		wantStdout []string
	}{
		{"identical", identical, []string{"--checksum"}, 0, []string{
			"Verifying the backup on Kingston DataTraveler (17.2 GB, /dev/sdb).\n",
			"Features Tails would activate on the backup: Persistent Folder, Dotfiles.\n",
			"The backup is identical and valid (metadata and content compared).\n"}},
		{"differences", changes, []string{"/dev/sdb"}, 1, []string{
			">f data,mtime    Persistent/notes.txt\n",
			"*deleting        old/\n",
			"problem: persistence.conf: Its mode is 0644",
			"warning: .: The root folder has mode 0775",
			"... and 2 more differences, not listed.\n",
			"4 differences, 1 problem.\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newPairWorld(t)
			saveState(t, w.state, pairedState(1))
			pinLog := fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
			helperCmd, record := scriptedHelper(t, tt.events...)
			args := append([]string{"verify", "--state", w.state, "--helper-command", helperCmd}, tt.args...)
			code, stdout, stderr := runSession(t, "", args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			wantContains(t, "stdout", stdout, tt.wantStdout...)
			req := helperRequests(t, record)
			if len(req) != 1 || req[0]["op"] != "verify" || req[0]["backup"] != backupUUID || (req[0]["checksum"] == true) != (tt.name == "identical") {
				t.Errorf("helper request %v", req)
			}
			for _, m := range []string{"Unlock", "Mount", "Unmount", "Lock"} {
				if n := len(w.fake.CallsOf(m)); n != 1 {
					t.Errorf("%d %s calls, want 1", n, m)
				}
			}
			if !w.locked(w.std.Backup.LUKS) {
				t.Error("the stick was left unlocked")
			}
			wantContains(t, "pinentry log", readString(t, pinLog), "to verify your backup Tails")
		})
	}
}

// TestVerifyDeviceAlreadyUnlocked: a backup found unlocked and mounted is left so.
func TestVerifyDeviceAlreadyUnlocked(t *testing.T) {
	w := newPairWorld(t)
	w.fake.Unplug(w.std.Backup.Drive)
	sp := w.fake.AddStick(udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase,
		LUKSUUID: backupUUID, MountedAt: "/media/amnesia/TailsData"})
	saveState(t, w.state, pairedState(1))
	fakePinentry(t, w.pinentry, "!crash") // never asked
	helperCmd, _ := scriptedHelper(t, `{"event":"done","report":{"created":0,"updated":0,"metadata_only":0,"deleted":0,"bytes_copied":0,"error_count":0,"duration_ns":5}}`)
	code, stdout, stderr := runSession(t, "", "verify", "--state", w.state, "--helper-command", helperCmd)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	wantContains(t, "stdout", stdout, "The backup is identical and valid")
	for _, m := range []string{"Unlock", "Unmount", "Lock"} {
		if n := len(w.fake.CallsOf(m)); n != 0 {
			t.Errorf("%d %s calls, want none", n, m)
		}
	}
	if w.locked(sp.LUKS) {
		t.Error("a stick found unlocked was locked")
	}
}

func TestVerifyDeviceErrors(t *testing.T) {
	t.Run("nothing paired", func(t *testing.T) {
		w := newPairWorld(t)
		helperCmd, record := scriptedHelper(t)
		code, _, stderr := runSession(t, "", "verify", "--state", w.state, "--helper-command", helperCmd)
		if code != 1 || !strings.Contains(stderr, "no paired backup Tails is plugged in") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if helperRequests(t, record) != nil || len(w.fake.CallsOf("Unlock")) != 0 {
			t.Error("something was done")
		}
	})
	t.Run("helper refuses", func(t *testing.T) {
		w := newPairWorld(t)
		saveState(t, w.state, pairedState(1))
		fakePinentry(t, w.pinentry, udiskstest.BackupPassphrase)
		helperCmd, _ := scriptedHelper(t, `{"event":"error","code":"not-paired","reason":"marker-damaged","args":{"stick":{"label":"Kingston DataTraveler","size":17179869184,"device":"/dev/sdb"}},"message":"The backup marker is damaged."}`)
		code, _, stderr := runSession(t, "", "verify", "--state", w.state, "--helper-command", helperCmd, "sdb")
		if code != 1 || !strings.Contains(stderr, "tails-backup verify: Kingston DataTraveler (17.2 GB, /dev/sdb) was not verified: The backup marker on Kingston DataTraveler (17.2 GB, /dev/sdb) is damaged, so the USB stick is not trusted as a backup. Pair it with this Tails again\n") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if !w.locked(w.std.Backup.LUKS) {
			t.Error("the stick was left unlocked")
		}
	})
	t.Run("the boot stick", func(t *testing.T) {
		w := newPairWorld(t)
		helperCmd, _ := scriptedHelper(t)
		code, _, stderr := runSession(t, "", "verify", "--state", w.state, "--helper-command", helperCmd, "/dev/sda")
		if code != 1 || !strings.Contains(stderr, "/dev/sda is the stick this Tails is running from, so it is not a backup") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}
