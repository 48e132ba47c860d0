//go:build linux

package helper

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"

	"tails-backup/internal/testtool"
	"tails-backup/wire"
)

// In these tests the world's src is this Tails' Persistent Storage, the destination of the
// restore, and its dst the backup stick, the source of the restore.

func restoreRequest(source string, skip ...string) string {
	b, _ := json.Marshal(wire.Request{Version: wire.ProtocolVersion, Op: wire.OpRestore, Backup: dstUUID, Source: source, Skip: skip})
	return string(b) + "\n"
}

// restoreDiff is what rsync finds different between the backup and the Persistent Storage
// after a restore (nothing after an exact one): the marker, the state folder and the xattr
// cache aside, which are never restored, and the excluded folders.
func restoreDiff(t testing.TB, backup, ps string, exclude ...string) string {
	t.Helper()
	args := []string{"-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum",
		"--exclude=/" + tails.MarkerName, "--exclude=/" + tails.StateDirName, "--exclude=/" + tails.XattrCacheDirName}
	for _, e := range exclude {
		args = append(args, "--exclude=/"+e)
	}
	out, err := exec.Command("rsync", append(args, backup+"/", ps+"/")...).CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	return string(out)
}

// restoreResult runs a restore to its end and splits its events: the problem lines
// ("path: problem", "warning: path: problem") and the final event.
func restoreResult(t *testing.T, s *session, want wire.EventType) (problems []string, last wire.Event) {
	t.Helper()
	evs, err := s.finish()
	return restoreEvents(t, evs, err, want)
}

// restoreEvents is restoreResult on the events of a restore already read.
func restoreEvents(t *testing.T, evs []wire.Event, err error, want wire.EventType) (problems []string, last wire.Event) {
	t.Helper()
	last = checkEnd(t, evs, err, want)
	for _, ev := range evs[:len(evs)-1] {
		switch ev.Phase {
		case wire.PhaseProblem:
			p := ev.Path + ": " + ev.Problem
			if ev.Warning {
				p = "warning: " + p
			}
			problems = append(problems, p)
		case "scan", "copy", "done":
		default:
			t.Errorf("restore sent a progress event of phase %q: %+v", ev.Phase, ev)
		}
	}
	return problems, last
}

// rootMetaOf is the owner, mode and ACLs of the directory dir.
func rootMetaOf(t testing.TB, dir string) rootMeta {
	t.Helper()
	fd := openDir(t, dir)
	m, err := readRootMeta(fd)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// backedUpWorld is a world whose backup is a complete copy, by an update, of a Tails-like
// Persistent Storage, with an old pairing store in the backup's state folder.
func backedUpWorld(t *testing.T, o worldOpts) *world {
	t.Helper()
	w := newWorld(t, o)
	fillSource(t, w.src.mnt, 3, 10, 8<<10)
	must(t, os.Mkdir(filepath.Join(w.src.mnt, tails.StateDirName), 0o700))
	must(t, os.WriteFile(filepath.Join(w.src.mnt, tails.StateDirName, "state.json"), []byte(`{"old":"store"}`), 0o600))
	evs, err := w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Fatalf("the update left differences:\n%s", diff)
	}
	return w
}

func TestRestoreIntoChangedPersistentStorage(t *testing.T) {
	w := backedUpWorld(t, worldOpts{})
	ps := w.src.mnt
	// After the backup: new files, changed files, deleted files, a changed mode, a newer
	// pairing store.
	must(t, os.WriteFile(filepath.Join(ps, "Persistent", "new-since-backup.txt"), []byte("new"), 0o600))
	must(t, os.WriteFile(filepath.Join(ps, "Persistent", "dir000", "sub", "file0000"), []byte("changed"), 0o644))
	must(t, os.RemoveAll(filepath.Join(ps, "Persistent", "dir001")))
	must(t, os.Remove(filepath.Join(ps, "Persistent", "notes-link.txt")))
	must(t, os.Chmod(filepath.Join(ps, "dotfiles"), 0o755))
	must(t, os.MkdirAll(filepath.Join(ps, "gnupg", "private-keys-v1.d"), 0o700))
	must(t, os.WriteFile(filepath.Join(ps, tails.StateDirName, "state.json"), []byte(`{"new":"store"}`), 0o600))
	stateBefore := listing(t, filepath.Join(ps, tails.StateDirName))
	rootBefore := rootMetaOf(t, ps)
	backupBefore := listing(t, w.dst.mnt)

	problems, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if len(problems) != 0 {
		t.Errorf("problems after a restore of a valid backup: %q", problems)
	}
	rep := done.Report
	if rep == nil || rep.Created == 0 || rep.Updated == 0 || rep.Deleted == 0 || rep.BytesCopied == 0 || rep.ErrorCount != 0 || rep.Problems != 0 {
		t.Fatalf("report %+v, want files created, replaced and deleted, data copied, no error or problem", rep)
	}
	if !slices.Equal(rep.Features, []string{"Persistent Folder", "Dotfiles"}) {
		t.Errorf("features %q", rep.Features)
	}
	if diff := restoreDiff(t, w.dst.mnt, ps); diff != "" {
		t.Fatalf("the Persistent Storage differs from the backup after the restore:\n%s", diff)
	}
	if _, err := os.Lstat(filepath.Join(ps, tails.MarkerName)); !os.IsNotExist(err) {
		t.Errorf("the backup marker was copied into the Persistent Storage: %v", err)
	}
	// The backup's xattr cache, which its update made, describes the backup: never restored.
	if _, err := os.Lstat(filepath.Join(w.dst.mnt, tails.XattrCacheDirName)); err != nil {
		t.Errorf("the update made no xattr cache on the backup: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(ps, tails.XattrCacheDirName)); !os.IsNotExist(err) {
		t.Errorf("the backup's xattr cache was copied into the Persistent Storage: %v", err)
	}
	if got := listing(t, filepath.Join(ps, tails.StateDirName)); got != stateBefore {
		t.Errorf("the pairing store of this Tails changed:\nbefore:\n%s\nafter:\n%s", stateBefore, got)
	}
	if got := rootMetaOf(t, ps); !got.equal(rootBefore) {
		t.Errorf("root metadata %+v, was %+v", got, rootBefore)
	}
	if got := listing(t, w.dst.mnt); got != backupBefore {
		t.Errorf("the restore changed the backup:\nbefore:\n%s\nafter:\n%s", backupBefore, got)
	}
	if m := w.marker(w.dst.mnt); m.State != tails.StateComplete || m.Source != srcUUID {
		t.Errorf("backup marker %+v", m)
	}

	// Again: nothing to do, nothing changes.
	before := listing(t, ps)
	_, done = restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if c := done.Report.Created + done.Report.Updated + done.Report.MetadataOnly + done.Report.Deleted; c != 0 {
		t.Errorf("a second restore changed %d entries: %+v", c, done.Report)
	}
	if after := listing(t, ps); after != before {
		t.Errorf("a second restore changed the Persistent Storage:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRestoreFromAnotherTails: a backup of the lost main Tails restored into a fresh one, when
// the request names that Tails; anything else is refused.
func TestRestoreFromAnotherTails(t *testing.T) {
	tests := []struct {
		name   string
		marker string // the Tails the backup's marker names
		source string // the one the request names
		code   wire.ErrorCode
		substr string
	}{
		{name: "another Tails, confirmed", marker: otherUUID, source: otherUUID},
		{name: "this Tails, confirmed", marker: srcUUID, source: srcUUID},
		{name: "another Tails, this one confirmed", marker: otherUUID, source: srcUUID, code: wire.CodeRefused,
			substr: "is now a backup of the Persistent Storage " + otherUUID + ", not of " + srcUUID + " as confirmed"},
		{name: "this Tails, another confirmed", marker: srcUUID, source: otherUUID, code: wire.CodeRefused, substr: "as confirmed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOpts{unpaired: true})
			fillSource(t, w.dst.mnt, 2, 5, 1000)
			must(t, setPersistenceRoot(openDir(t, w.dst.mnt)))
			w.writeMarker(w.dst.mnt, tails.Marker{Format: 1, Source: tt.marker, State: tails.StateComplete,
				Started: time.Unix(1000, 0), Finished: time.Unix(2000, 0), TailsVersion: "6.9"})
			psBefore := listing(t, w.src.mnt)
			if tt.code == "" {
				_, done := restoreResult(t, start(t, w.sys, restoreRequest(tt.source)), wire.EventDone)
				if done.Report.Created == 0 {
					t.Errorf("report %+v", done.Report)
				}
				if diff := restoreDiff(t, w.dst.mnt, w.src.mnt); diff != "" {
					t.Errorf("differences after the restore:\n%s", diff)
				}
				return
			}
			_, ev := restoreResult(t, start(t, w.sys, restoreRequest(tt.source)), wire.EventError)
			if ev.Code != tt.code || !strings.Contains(ev.Message, tt.substr) {
				t.Errorf("error %s %q, want %s containing %q", ev.Code, ev.Message, tt.code, tt.substr)
			}
			if got := listing(t, w.src.mnt); got != psBefore {
				t.Errorf("the Persistent Storage changed")
			}
		})
	}
}

// TestRestoreRefusals: nothing changes on either side.
func TestRestoreRefusals(t *testing.T) {
	tests := []struct {
		name   string
		opts   worldOpts
		setup  func(t *testing.T, w *world)
		code   wire.ErrorCode
		substr string
	}{
		{name: "no marker", opts: worldOpts{unpaired: true}, code: wire.CodeNotPaired,
			substr: "is not a backup made by tails-backup (it has no backup marker)"},
		{name: "damaged marker", code: wire.CodeNotPaired, substr: "is damaged",
			setup: func(t *testing.T, w *world) {
				must(t, os.WriteFile(filepath.Join(w.dst.mnt, tails.MarkerName), []byte(`{"format":1,`), 0o644))
			}},
		{name: "marker of a newer tails-backup", code: wire.CodeNotPaired, substr: "newer version of tails-backup",
			setup: func(t *testing.T, w *world) {
				must(t, os.WriteFile(filepath.Join(w.dst.mnt, tails.MarkerName), []byte(`{"format":99}`), 0o644))
			}},
		{name: "marker is a symlink", opts: worldOpts{unpaired: true}, code: wire.CodeNotPaired, substr: "is damaged",
			setup: func(t *testing.T, w *world) {
				w.writeMarker(w.dir, tails.Marker{Format: 1, Source: srcUUID, State: tails.StateComplete, Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
				must(t, os.Symlink(filepath.Join(w.dir, tails.MarkerName), filepath.Join(w.dst.mnt, tails.MarkerName)))
			}},
		{name: "this Tails is a backup", code: wire.CodeRefused, substr: "This Tails is itself a backup Tails",
			setup: func(t *testing.T, w *world) {
				w.writeMarker(w.src.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete, Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
			}},
		{name: "an update of that backup is running", code: wire.CodeRefused, substr: "is running: press Cancel in its notification, then run 'tails-backup restore' again.",
			setup: func(t *testing.T, w *world) {
				must(t, unix.Flock(openDir(t, w.dst.mnt), unix.LOCK_EX|unix.LOCK_NB))
			}},
		{name: "another restore is running", code: wire.CodeRefused, substr: "Another restore",
			setup: func(t *testing.T, w *world) {
				must(t, unix.Flock(openDir(t, w.src.mnt), unix.LOCK_EX|unix.LOCK_NB))
			}},
		{name: "backup not mounted", code: wire.CodeNotFound, substr: "not mounted",
			opts: worldOpts{backup: func(s *udiskstest.StickSpec) { s.MountedAt, s.Unlocked = "", true }}},
		{name: "backup is the boot stick", code: wire.CodeRefused, substr: "running from",
			setup: func(t *testing.T, w *world) {
				// The backup named is this Tails' own stick.
				w.fake.Set(w.backup.LUKS, iBlock, "IdUUID", "1b1b1b1b-0000-4000-8000-000000000000")
				w.fake.Set(w.boot.LUKS, iBlock, "IdUUID", dstUUID)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts)
			fillSource(t, w.src.mnt, 1, 3, 1000)
			fillSource(t, w.dst.mnt, 2, 3, 1000)
			if tt.setup != nil {
				tt.setup(t, w)
			}
			psBefore, backupBefore := listing(t, w.src.mnt), listing(t, w.dst.mnt)
			_, ev := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventError)
			t.Logf("%s: %s", ev.Code, ev.Message)
			if ev.Code != tt.code || !strings.Contains(ev.Message, tt.substr) {
				t.Errorf("error %s %q, want %s containing %q", ev.Code, ev.Message, tt.code, tt.substr)
			}
			if got := listing(t, w.src.mnt); got != psBefore {
				t.Errorf("the Persistent Storage changed:\nbefore:\n%s\nafter:\n%s", psBefore, got)
			}
			if got := listing(t, w.dst.mnt); got != backupBefore {
				t.Errorf("the backup changed:\nbefore:\n%s\nafter:\n%s", backupBefore, got)
			}
		})
	}
}

// TestRestoreSkip: the folders of the applications left open stay as they are.
func TestRestoreSkip(t *testing.T) {
	w := backedUpWorld(t, worldOpts{})
	for _, root := range []string{w.src.mnt, w.dst.mnt} {
		must(t, os.MkdirAll(filepath.Join(root, "thunderbird", "profile"), 0o700))
	}
	must(t, os.WriteFile(filepath.Join(w.src.mnt, "thunderbird", "profile", "mail-since-backup"), []byte("new"), 0o600))
	must(t, os.WriteFile(filepath.Join(w.dst.mnt, "thunderbird", "profile", "old-mail"), []byte("old"), 0o600))
	must(t, os.WriteFile(filepath.Join(w.src.mnt, "Persistent", "notes.txt"), []byte("changed since"), 0o600))
	before := listing(t, filepath.Join(w.src.mnt, "thunderbird"))

	_, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID, "thunderbird", "electrum")), wire.EventDone)
	if done.Report.Updated == 0 {
		t.Errorf("report %+v", done.Report)
	}
	if got := listing(t, filepath.Join(w.src.mnt, "thunderbird")); got != before {
		t.Errorf("the skipped folder changed:\n%s\n%s", before, got)
	}
	if diff := restoreDiff(t, w.dst.mnt, w.src.mnt, "thunderbird"); diff != "" {
		t.Errorf("the rest differs:\n%s", diff)
	}
}

// TestRestoreUntrustedBackup: what a hostile backup holds beyond files grants nothing in this
// Tails: no device node, no setuid or setgid file, no trusted or security xattr, a root that
// keeps Tails' owner, mode and ACL, and a persistence.conf that binds a system folder is not
// restored.
func TestRestoreUntrustedBackup(t *testing.T) {
	w := backedUpWorld(t, worldOpts{})
	b := w.dst.mnt
	must(t, unix.Mknod(filepath.Join(b, "Persistent", "disk"), unix.S_IFBLK|0o666, int(unix.Mkdev(8, 0))))
	suid := filepath.Join(b, "Persistent", "suid")
	must(t, os.WriteFile(suid, []byte("#!/bin/sh\nid\n"), 0o755))
	must(t, unix.Chmod(suid, 0o6755))
	must(t, unix.Setxattr(suid, "trusted.evil", []byte("1"), 0))
	must(t, unix.Setxattr(suid, "security.capability", []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	must(t, unix.Setxattr(suid, "user.note", []byte("kept"), 0))
	// The backup's root open to everyone, and owned by amnesia.
	bfd := openDir(t, b)
	must(t, unix.Fremovexattr(bfd, tails.ACLXattrAccess))
	must(t, unix.Fchown(bfd, tails.AmnesiaUID, tails.AmnesiaUID))
	must(t, unix.Fchmod(bfd, 0o777))
	// A persistence.conf that mounts a folder of the stick over a system folder, as root.
	evil := "/home/amnesia/Persistent\tsource=Persistent\n/etc/sudoers.d\tsource=Persistent\n"
	for _, name := range []string{tails.PersistenceConfName, confBakName} {
		must(t, os.WriteFile(filepath.Join(b, name), []byte(evil), 0o600))
		must(t, os.Chown(filepath.Join(b, name), tails.PersistentStorageUID, tails.PersistentStorageGID))
	}
	psConf, err := os.ReadFile(filepath.Join(w.src.mnt, tails.PersistenceConfName))
	must(t, err)
	rootBefore := rootMetaOf(t, w.src.mnt)

	problems, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	rep := done.Report
	if rep.ErrorCount != 1 || len(rep.Errors) != 1 || rep.Errors[0].Path != "Persistent/disk" {
		t.Errorf("report %+v, want one error: the device node", rep)
	}
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "warning: persistence.conf: The backup's persistence.conf mounts Persistent twice, on /home/amnesia/Persistent and on /etc/sudoers.d (persistence.conf), so it was not restored") ||
		rep.Warnings != 1 || rep.Problems != 0 {
		t.Errorf("problems %q, report %+v; want one warning about persistence.conf", problems, rep)
	}
	ps := w.src.mnt
	if _, err := os.Lstat(filepath.Join(ps, "Persistent", "disk")); !os.IsNotExist(err) {
		t.Errorf("a device node was restored: %v", err)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(ps, "Persistent", "suid"), &st))
	if st.Mode&0o7777 != 0o755 {
		t.Errorf("the setuid file was restored with mode %04o, want 0755", st.Mode&0o7777)
	}
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(filepath.Join(ps, "Persistent", "suid"), buf)
	must(t, err)
	if names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00"); !slices.Equal(names, []string{"user.note"}) {
		t.Errorf("xattrs restored: %q, want only user.note", names)
	}
	if got := rootMetaOf(t, ps); !got.equal(rootBefore) {
		t.Errorf("the Persistent Storage root has %+v after the restore, want %+v as before", got, rootBefore)
	}
	if got, err := os.ReadFile(filepath.Join(ps, tails.PersistenceConfName)); err != nil || string(got) != string(psConf) {
		t.Errorf("persistence.conf is %q (%v), want this Tails' own %q", got, err, psConf)
	}
	if _, err := os.Lstat(filepath.Join(ps, confBakName)); !os.IsNotExist(err) {
		t.Errorf("the backup's persistence.conf.bak was restored: %v", err)
	}
	if p, _ := tails.CheckPersistentStorage(openDir(t, ps)); len(p) != 0 {
		t.Errorf("the Persistent Storage is not valid after the restore: %v", p)
	}
	// Everything else was restored.
	var others []string
	for _, l := range strings.Split(restoreDiff(t, b, ps, "Persistent/disk", "Persistent/suid", tails.PersistenceConfName, confBakName), "\n") {
		if l != "" && !strings.HasSuffix(l, " ./") {
			others = append(others, l)
		}
	}
	if len(others) != 0 {
		t.Errorf("differences besides the root:\n%s", strings.Join(others, "\n"))
	}
}

// TestUnsafeConf: a backup's persistence.conf is accepted when it holds only Tails' own lines
// for its features, and refused, with the reason, for any other line, option, or nesting.
func TestUnsafeConf(t *testing.T) {
	var own []string
	for _, f := range tails.Features() {
		for _, b := range f.Bindings {
			if !safeBinding(b) {
				t.Errorf("safeBinding refuses Tails' own line %+v", b)
			}
			own = append(own, b.Destination+"\t"+strings.Join(b.Options, ",")+"\n")
		}
	}
	slices.Sort(own) // as tps writes them
	sample, err := os.ReadFile("../tails/testdata/persistence.conf")
	must(t, err)
	tests := []struct {
		name, conf string
		reason     string // "" when safe
	}{
		{"every feature", strings.Join(own, ""), ""},
		{"Tails 6 sample", string(sample), ""},
		{"a new Persistent Storage", "/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia\tsource=dotfiles,link\n", ""},
		{"options in another order", "/home/amnesia\tlink,source=dotfiles\n", ""},
		{"comments and no line", "# nothing\n\n", ""},
		{"a folder of the backup holding a symlink to /etc, and a binding through it",
			"/home/amnesia/a\tsource=A\n/home/amnesia/a/e/sudoers.d\tsource=S\n",
			"mounts S on /home/amnesia/a/e/sudoers.d, inside /home/amnesia/a where it mounts A (persistence.conf)"},
		{"inside a feature's folder", "/home/amnesia/Persistent/x\tsource=x\n/home/amnesia/Persistent\tsource=Persistent\n",
			"mounts x on /home/amnesia/Persistent/x, inside /home/amnesia/Persistent where it mounts Persistent"},
		{"two folders on one destination", "/home/amnesia/.gnupg\tsource=gnupg\n/home/amnesia/.gnupg\tsource=Persistent\n",
			"mounts both gnupg and Persistent on /home/amnesia/.gnupg"},
		{"a line twice", "/home/amnesia/.gnupg\tsource=gnupg\n/home/amnesia/.gnupg\tsource=gnupg\n", "has the line for /home/amnesia/.gnupg twice"},
		{"a folder mounted twice", "/home/amnesia/Persistent\tsource=Persistent\n/etc/sudoers.d\tsource=Persistent\n",
			"mounts Persistent twice, on /home/amnesia/Persistent and on /etc/sudoers.d"},
		{"a folder inside another", "/home/amnesia/.ssh\tsource=Persistent/ssh\n/home/amnesia/Persistent\tsource=Persistent\n",
			"mounts Persistent/ssh, and Persistent which holds it"},
		{"option file", "/home/amnesia/.ssh\tsource=openssh-client,file\n", `uses the option "file" for /home/amnesia/.ssh, which Tails does not write`},
		{"option union", "/home/amnesia/.ssh\tsource=openssh-client,union\n", `uses the option "union"`},
		{"no source", "/home/amnesia/Persistent\n", "has no source for /home/amnesia/Persistent"},
		{"source through ..", "/home/amnesia/Persistent\tsource=Persistent/../../etc\n", "cannot be parsed (persistence.conf: persistence.conf line 1: source"},
		{"source ..", "/home/amnesia/Persistent\tsource=..\n", "cannot be parsed"},
		{"absolute source", "/home/amnesia/Persistent\tsource=/etc\n", "cannot be parsed"},
		{"empty source", "/home/amnesia/Persistent\tsource=\n", "cannot be parsed"},
		{"larger than 1 MiB", strings.Repeat("#", 1<<20+1), "cannot be parsed"},
		{"too many lines", strings.Repeat("/home/amnesia/.ssh\tsource=openssh-client\n", maxConfLines+1), "has 65 lines, more than Tails writes"},
		{"as many lines as allowed", strings.Repeat("/home/amnesia/.ssh\tsource=openssh-client\n", maxConfLines), "has the line for /home/amnesia/.ssh twice"},
		{"in the home folder, not a feature", "/home/amnesia/.config/autostart\tsource=autostart\n",
			"mounts autostart on /home/amnesia/.config/autostart, which is not a feature of Tails (persistence.conf)"},
		{"a system folder", "/etc/sudoers.d\tsource=sudoers\n", "mounts sudoers on /etc/sudoers.d, which is not a feature of Tails"},
		{"a feature's destination, another source", "/etc/cups\tsource=Persistent\n", "mounts Persistent on /etc/cups, which is not"},
		{"a feature's line with link", "/etc/cups\tsource=cups-configuration,link\n", "mounts cups-configuration on /etc/cups, which is not"},
		{"dotfiles bind-mounted over the home folder", "/home/amnesia\tsource=dotfiles\n", "mounts dotfiles on /home/amnesia, which is not"},
		{"next to the home folder", "/home/amnesiax\tsource=x\n", "which is not a feature"},
		{"the default source", "/var/lib/tca\tlink\n", "has no source for /var/lib/tca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unsafeConf(tails.PersistenceConfName, []byte(tt.conf))
			if (got == "") != (tt.reason == "") || !strings.Contains(got, tt.reason) {
				t.Errorf("unsafeConf = %q, want %q", got, tt.reason)
			}
		})
	}
}

// bigBackupWorld is a world whose backup takes seconds to restore.
func bigBackupWorld(t *testing.T) *world {
	w := newWorld(t, worldOpts{srcMiB: 256, dstMiB: 256})
	fillSource(t, w.dst.mnt, 50, 100, 20<<10) // 5000 files, 100 MiB
	must(t, setPersistenceRoot(openDir(t, w.dst.mnt)))
	w.sys.ProgressInterval = 20 * time.Millisecond
	return w
}

func TestRestoreCancel(t *testing.T) {
	w := bigBackupWorld(t)
	must(t, os.WriteFile(filepath.Join(w.src.mnt, "only-here"), []byte("x"), 0o600))
	rootBefore := rootMetaOf(t, w.src.mnt)
	backupBefore := listing(t, w.dst.mnt)
	s := start(t, w.sys, restoreRequest(srcUUID))
	waitCopying(t, s)
	t0 := time.Now()
	s.send(`{"op":"cancel"}` + "\n")
	evs, err := s.finish()
	ev := checkEnd(t, evs, err, wire.EventError)
	if ev.Code != wire.CodeCancelled {
		t.Fatalf("error %s %q, want cancelled", ev.Code, ev.Message)
	}
	if elapsed := time.Since(t0); elapsed > 3*time.Second {
		t.Errorf("the restore stopped %v after the cancel", elapsed)
	}
	entries, err := os.ReadDir(w.src.mnt)
	must(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tails-backup-") || e.Name() == tails.MarkerName {
			t.Errorf("%s left at the root of the Persistent Storage", e.Name())
		}
	}
	if got := rootMetaOf(t, w.src.mnt); !got.equal(rootBefore) {
		t.Errorf("root metadata %+v after a cancelled restore, want %+v", got, rootBefore)
	}
	if got := listing(t, w.dst.mnt); got != backupBefore {
		t.Error("a cancelled restore changed the backup")
	}

	// Running it again finishes the job.
	w.sys.ProgressInterval = 0
	_, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if done.Report.ErrorCount != 0 {
		t.Errorf("report %+v", done.Report)
	}
	if diff := restoreDiff(t, w.dst.mnt, w.src.mnt); diff != "" {
		t.Fatalf("differences after the restore that followed a cancelled one:\n%s", diff)
	}
}

func TestRestoreNoSpace(t *testing.T) {
	w := newWorld(t, worldOpts{srcMiB: 16, dstMiB: 128})
	fillSource(t, w.dst.mnt, 4, 10, 1<<20) // 40 MiB into 16 MiB
	must(t, setPersistenceRoot(openDir(t, w.dst.mnt)))
	must(t, os.WriteFile(filepath.Join(w.src.mnt, "kept"), []byte("x"), 0o600))
	before := listing(t, w.src.mnt)
	_, ev := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventError)
	t.Logf("%s: %s", ev.Code, ev.Message)
	if ev.Code != wire.CodeNoSpace || ev.Needed <= ev.Available || ev.Needed < 30<<20 ||
		!strings.Contains(ev.Message, "The Persistent Storage of this Tails is too small for the backup on the stick Kingston DataTraveler") {
		t.Fatalf("error %+v, want no-space with the sizes", ev)
	}
	if got := listing(t, w.src.mnt); got != before {
		t.Errorf("the Persistent Storage changed:\nbefore:\n%s\nafter:\n%s", before, got)
	}
}

func TestRestoreRequestValidation(t *testing.T) {
	for _, tt := range []struct {
		line, wantErr string
	}{
		{`{"version":1,"op":"restore","backup":"` + dstUUID + `","source":"` + otherUUID + `","skip":["thunderbird"]}`, ""},
		{`{"version":1,"op":"restore","backup":"` + dstUUID + `"}`, `source "" is not a LUKS UUID`},
		{`{"version":1,"op":"restore","backup":"` + dstUUID + `","source":"../x"}`, "is not a LUKS UUID"},
		{`{"version":1,"op":"restore","source":"` + otherUUID + `"}`, `backup "" is not a LUKS UUID`},
		{`{"version":1,"op":"update","backup":"` + dstUUID + `","source":"` + otherUUID + `"}`, "only restore takes source"},
		{`{"version":1,"op":"restore","backup":"` + dstUUID + `","source":"` + otherUUID + `","checksum":true}`, "only verify takes checksum"},
		{`{"version":1,"op":"restore","backup":"` + dstUUID + `","source":"` + otherUUID + `","skip":["` + tails.MarkerName + `"]}`, "not a top-level folder"},
	} {
		_, err := wire.ParseRequest([]byte(tt.line))
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want %q", tt.line, err, tt.wantErr)
		}
	}
}

// TestRestoreConfSwappedMidRestore: a process of amnesia that can rename on the backup (its
// root is amnesia's, as on a stick that process made) swaps the backup's persistence.conf,
// at the helper's first scan event, for one that mounts a folder of the backup, holding a
// sudoers rule owned by root, on /etc/sudoers.d. Whatever reaches this Tails' Persistent
// Storage must be the bytes that were checked.
func TestRestoreConfSwappedMidRestore(t *testing.T) {
	testtool.Program(t, "setpriv", "util-linux") // the swap runs as amnesia
	// A backup of many small files, restored once already: the scan compares them all, which
	// takes a while (the window of the swap), and the copy then has little to do.
	w := newWorld(t, worldOpts{srcMiB: 1024, dstMiB: 1024})
	w.sys.ProgressInterval = 2 * time.Millisecond // the first scan event comes at once
	b, ps := w.dst.mnt, w.src.mnt
	fillSource(t, b, 150, 200, 0)
	must(t, setPersistenceRoot(openDir(t, b)))
	run(t, "rsync", "-aHAXS", "--numeric-ids", "--exclude=/"+tails.MarkerName, b+"/", ps+"/")
	checked, err := os.ReadFile(filepath.Join(b, tails.PersistenceConfName))
	must(t, err)
	writeConf := func(p, content string) {
		must(t, os.WriteFile(p, []byte(content), 0o600))
		must(t, os.Chown(p, tails.PersistentStorageUID, tails.PersistentStorageGID))
	}
	own := "/home/amnesia/Persistent\tsource=Persistent\n"
	writeConf(filepath.Join(ps, tails.PersistenceConfName), own)
	// Made on another computer: a root-owned sudoers rule, and the persistence.conf to swap in.
	sudoers := filepath.Join(b, "Persistent", "sudoers.d")
	must(t, os.Mkdir(sudoers, 0o755))
	must(t, os.WriteFile(filepath.Join(sudoers, "amnesia"), []byte("amnesia ALL=(ALL) NOPASSWD: ALL\n"), 0o440))
	evil := string(checked) + "/etc/sudoers.d\tsource=Persistent/sudoers.d\n"
	writeConf(filepath.Join(b, ".conf"), evil)
	must(t, os.Chown(b, tails.AmnesiaUID, tails.AmnesiaUID))

	attacker := exec.Command("setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
		"sh", "-c", "read go && mv -f .conf "+tails.PersistenceConfName+" && echo swapped")
	attacker.Dir = b
	stdin, err := attacker.StdinPipe()
	must(t, err)
	var out bytes.Buffer
	attacker.Stdout, attacker.Stderr = &out, &out
	must(t, attacker.Start())
	t.Cleanup(func() { stdin.Close(); _ = attacker.Wait() })

	s := start(t, w.sys, restoreRequest(srcUUID))
	var evs []wire.Event
	swapped := false
	for {
		ev, ok := s.next()
		if !ok {
			break
		}
		evs = append(evs, ev)
		if !swapped && ev.Event == wire.EventProgress && ev.Phase == "scan" {
			_, err := io.WriteString(stdin, "go\n")
			must(t, err)
			stdin.Close()
			if err := attacker.Wait(); err != nil || out.String() != "swapped\n" {
				t.Fatalf("the swap as amnesia: %v\n%s", err, out.String())
			}
			swapped = true
			// The events sent while the swap ran: the copy must not have started yet, or
			// this run would prove nothing.
			for pending := true; pending; {
				select {
				case ev, ok := <-s.events:
					if !ok {
						pending = false
						break
					}
					evs = append(evs, ev)
					if ev.Phase == "copy" || ev.Phase == "done" {
						t.Fatalf("the copy had started before the swap was done (event %+v), so this run proves nothing; give the backup more files", ev)
					}
				default:
					pending = false
				}
			}
		}
	}
	if !swapped {
		t.Fatal("no scan event: nothing was swapped")
	}
	var runErr error
	select {
	case runErr = <-s.result:
	case <-time.After(waitTimeout):
		t.Fatal("the helper did not return")
	}
	problems, _ := restoreEvents(t, evs, runErr, wire.EventDone)
	if got, err := os.ReadFile(filepath.Join(b, tails.PersistenceConfName)); err != nil || string(got) != evil {
		t.Fatalf("the backup's persistence.conf is %q (%v): the swap did not happen", got, err)
	}

	got, err := os.ReadFile(filepath.Join(ps, tails.PersistenceConfName))
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(ps, tails.PersistenceConfName), &st))
	if string(got) != string(checked) {
		t.Errorf("this Tails' persistence.conf (%d:%d %04o) is now\n%s\nwant the checked one\n%s\nproblems reported: %q",
			st.Uid, st.Gid, st.Mode&0o7777, got, checked, problems)
	}
	if st.Uid != tails.PersistentStorageUID || st.Gid != tails.PersistentStorageGID || st.Mode&0o7777 != tails.PersistenceConfMode {
		t.Errorf("this Tails' persistence.conf is %d:%d %04o", st.Uid, st.Gid, st.Mode&0o7777)
	}
}

// TestRestoreNestedBindings: a backup whose persistence.conf mounts, inside the home folder, a
// folder of the backup holding a symlink to /etc, and a second folder through that symlink on
// /etc/sudoers.d. Both lines are in the home folder as text; the conf is refused and this
// Tails keeps its own, while the folders themselves are restored as data.
func TestRestoreNestedBindings(t *testing.T) {
	w := backedUpWorld(t, worldOpts{})
	b, ps := w.dst.mnt, w.src.mnt
	must(t, os.Mkdir(filepath.Join(b, "A"), 0o700))
	must(t, os.Chown(filepath.Join(b, "A"), tails.AmnesiaUID, tails.AmnesiaUID))
	must(t, os.Symlink("/etc", filepath.Join(b, "A", "e")))
	must(t, os.Mkdir(filepath.Join(b, "S"), 0o755))
	must(t, os.WriteFile(filepath.Join(b, "S", "amnesia"), []byte("amnesia ALL=(ALL) NOPASSWD: ALL\n"), 0o440))
	conf := "/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia\tsource=dotfiles,link\n" +
		"/home/amnesia/a\tsource=A\n/home/amnesia/a/e/sudoers.d\tsource=S\n"
	for _, name := range []string{tails.PersistenceConfName, confBakName} {
		must(t, os.WriteFile(filepath.Join(b, name), []byte(conf), 0o600))
		must(t, os.Chown(filepath.Join(b, name), tails.PersistentStorageUID, tails.PersistentStorageGID))
	}
	own, err := os.ReadFile(filepath.Join(ps, tails.PersistenceConfName))
	must(t, err)

	problems, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	want := "warning: persistence.conf: The backup's persistence.conf mounts S on /home/amnesia/a/e/sudoers.d, inside /home/amnesia/a where it mounts A (persistence.conf), so it was not restored and this Tails keeps its own"
	if len(problems) != 1 || !strings.HasPrefix(problems[0], want) || done.Report.Warnings != 1 || done.Report.Problems != 0 {
		t.Errorf("problems %q, report %+v; want one warning %q", problems, done.Report, want)
	}
	if got, err := os.ReadFile(filepath.Join(ps, tails.PersistenceConfName)); err != nil || string(got) != string(own) {
		t.Errorf("this Tails' persistence.conf is %q (%v), want its own %q", got, err, own)
	}
	if _, err := os.Lstat(filepath.Join(ps, confBakName)); !os.IsNotExist(err) {
		t.Errorf("the backup's persistence.conf.bak was restored: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(ps, "A", "e")); err != nil || target != "/etc" {
		t.Errorf("A/e restored as %q (%v), want the symlink, as data", target, err)
	}
	if diff := restoreDiff(t, b, ps, tails.PersistenceConfName, confBakName); strings.TrimSpace(diff) != "" {
		t.Errorf("the rest differs:\n%s", diff)
	}
}

// TestRestoreConfs: what the backup has of persistence.conf and .bak is what this Tails gets,
// as the mirror (rsync --delete) would give it, but always as Tails requires it (owner
// tails-persistent-storage, mode 0600, no ACL), with the backup's time; a file the backup lacks
// is deleted; a refused one leaves this Tails' own two files as they are.
func TestRestoreConfs(t *testing.T) {
	const (
		safe  = "/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia/.gnupg\tsource=gnupg\n"
		safe2 = "/home/amnesia/Persistent\tsource=Persistent\n"
		own   = "/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia\tsource=dotfiles,link\n"
		ownB  = "/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia/.thunderbird\tsource=thunderbird\n"
		evil  = "/etc/sudoers.d\tsource=sudoers\n"
	)
	type file struct {
		content  string // "" for none
		uid, gid int
		mode     os.FileMode
		acl      bool
	}
	tails115 := func(c string) file {
		return file{content: c, uid: tails.PersistentStorageUID, gid: tails.PersistentStorageGID, mode: 0o600}
	}
	tests := []struct {
		name              string
		conf, bak         file   // on the backup
		wantConf, wantBak string // in this Tails after the restore ("" for none)
		created, upd, del int64
		warning           string
	}{
		{name: "both", conf: tails115(safe), bak: tails115(safe2), wantConf: safe, wantBak: safe2, upd: 2},
		{name: "no .bak on the backup", conf: tails115(safe), wantConf: safe, upd: 1, del: 1},
		{name: "neither on the backup", del: 2},
		{name: "as Tails would disable it", conf: file{content: safe, uid: tails.AmnesiaUID, gid: tails.AmnesiaUID, mode: 0o644, acl: true},
			wantConf: safe, upd: 1, del: 1},
		{name: "only a .bak", bak: tails115(safe2), wantBak: safe2, upd: 1, del: 1},
		{name: "refused .bak", conf: tails115(safe), bak: tails115(evil), wantConf: own, wantBak: ownB,
			warning: "mounts sudoers on /etc/sudoers.d, which is not a feature of Tails (persistence.conf.bak)"},
		{name: "a symlink", conf: file{content: "->"}, wantConf: own, wantBak: ownB, warning: "cannot be read safely (persistence.conf:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := backedUpWorld(t, worldOpts{})
			b, ps := w.dst.mnt, w.src.mnt
			for name, c := range map[string]string{tails.PersistenceConfName: own, confBakName: ownB} {
				p := filepath.Join(ps, name)
				must(t, os.WriteFile(p, []byte(c), 0o600))
				must(t, os.Chown(p, tails.PersistentStorageUID, tails.PersistentStorageGID))
			}
			for name, f := range map[string]file{tails.PersistenceConfName: tt.conf, confBakName: tt.bak} {
				p := filepath.Join(b, name)
				must(t, os.RemoveAll(p))
				switch f.content {
				case "":
					continue
				case "->":
					must(t, os.Symlink(filepath.Join(ps, tails.PersistenceConfName), p))
					continue
				}
				must(t, os.WriteFile(p, []byte(f.content), f.mode))
				must(t, os.Chmod(p, f.mode))
				must(t, os.Chown(p, f.uid, f.gid))
				if f.acl {
					must(t, unix.Setxattr(p, tails.ACLXattrAccess, tails.EncodeACL([]tails.ACLEntry{
						{Tag: tails.ACLUserObj, Perm: 6, ID: tails.ACLUndefinedID},
						{Tag: tails.ACLUser, Perm: 6, ID: 1001},
						{Tag: tails.ACLGroupObj, Perm: 4, ID: tails.ACLUndefinedID},
						{Tag: tails.ACLMask, Perm: 6, ID: tails.ACLUndefinedID},
						{Tag: tails.ACLOther, Perm: 4, ID: tails.ACLUndefinedID},
					}), 0))
				}
				ts := unix.Timespec{Sec: 1600000000, Nsec: 42}
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
			}
			// Only the two files differ: the counts are theirs.
			problems, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
			rep := done.Report
			if rep.Created != tt.created || rep.Updated != tt.upd || rep.Deleted != tt.del {
				t.Errorf("created %d, updated %d, deleted %d; want %d, %d, %d", rep.Created, rep.Updated, rep.Deleted, tt.created, tt.upd, tt.del)
			}
			var wantProblems []string
			if tt.warning != "" {
				wantProblems = append(wantProblems, "warning")
			}
			if tt.wantConf == "" {
				wantProblems = append(wantProblems, "persistence.conf: It is missing, so Tails would activate no feature of this Persistent Storage.")
			}
			if len(problems) != len(wantProblems) || (tt.warning != "" && !strings.Contains(problems[0], tt.warning)) ||
				(tt.wantConf == "" && problems[len(problems)-1] != wantProblems[len(wantProblems)-1]) {
				t.Errorf("problems %q, want %q (%s)", problems, wantProblems, tt.warning)
			}
			for name, want := range map[string]string{tails.PersistenceConfName: tt.wantConf, confBakName: tt.wantBak} {
				p := filepath.Join(ps, name)
				var st unix.Stat_t
				err := unix.Lstat(p, &st)
				if want == "" {
					if !errors.Is(err, unix.ENOENT) {
						t.Errorf("%s: %v, want none", name, err)
					}
					continue
				}
				got, _ := os.ReadFile(p)
				n, _ := unix.Lgetxattr(p, tails.ACLXattrAccess, nil)
				if err != nil || string(got) != want || st.Uid != tails.PersistentStorageUID || st.Gid != tails.PersistentStorageGID ||
					st.Mode != unix.S_IFREG|0o600 || n > 0 {
					t.Errorf("%s: %q %d:%d %o ACL %d bytes (%v); want %q 115:122 0100600 without ACL", name, got, st.Uid, st.Gid, st.Mode, n, err, want)
				}
				if tt.warning == "" && st.Mtim != (unix.Timespec{Sec: 1600000000, Nsec: 42}) {
					t.Errorf("%s: modification time %v, want the backup's", name, st.Mtim)
				}
			}
			if diff := restoreDiff(t, b, ps, tails.PersistenceConfName, confBakName); strings.TrimSpace(diff) != "" {
				t.Errorf("the rest differs:\n%s", diff)
			}
			// Again: nothing changes.
			before := listing(t, ps)
			_, done = restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
			if c := done.Report.Created + done.Report.Updated + done.Report.MetadataOnly + done.Report.Deleted; c != 0 {
				t.Errorf("a second restore changed %d entries: %+v", c, done.Report)
			}
			if after := listing(t, ps); after != before {
				t.Errorf("a second restore changed the Persistent Storage:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestCheckRestoredConfs: after the restore, this Tails' persistence.conf and .bak must be the
// bytes checked on the backup, or absent where the backup had none; anything else is a problem.
func TestCheckRestoredConfs(t *testing.T) {
	checked := []byte("/home/amnesia/Persistent\tsource=Persistent\n")
	tests := []struct {
		name    string
		inPS    string // content of persistence.conf in this Tails, "" for none
		present bool   // the backup had one
		want    string
	}{
		{"the checked bytes", string(checked), true, ""},
		{"absent, as on the backup", "", false, ""},
		{"other bytes", string(checked) + "/etc/sudoers.d\tsource=x\n", true, "It is not the file that was checked on the backup"},
		{"present, the backup had none", string(checked), false, "It is not the file that was checked on the backup"},
		{"missing", "", true, "It is missing, although the backup has one that was checked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.inPS != "" {
				must(t, os.WriteFile(filepath.Join(dir, tails.PersistenceConfName), []byte(tt.inPS), 0o600))
			}
			c := backupConf{name: tails.PersistenceConfName, present: tt.present}
			if tt.present {
				c.data = checked
			}
			ps := checkRestoredConfs(openDir(t, dir), []backupConf{c})
			switch {
			case tt.want == "" && len(ps) != 0:
				t.Errorf("problems %v, want none", ps)
			case tt.want != "" && (len(ps) != 1 || ps[0].Path != tails.PersistenceConfName || !strings.HasPrefix(ps[0].What, tt.want)):
				t.Errorf("problems %v, want one starting %q", ps, tt.want)
			}
		})
	}
}
