//go:build linux

package helper

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

func TestUpdateMirrorsAndMarksComplete(t *testing.T) {
	w := newWorld(t, worldOpts{})
	fillSource(t, w.src.mnt, 20, 40, 16<<10)
	// Stale content on the backup, which the update deletes or replaces.
	if err := os.MkdirAll(filepath.Join(w.dst.mnt, "Persistent", "old"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dst.mnt, "Persistent", "notes.txt"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}

	evs, err := w.do(wire.OpUpdate, dstUUID)
	done := checkEnd(t, evs, err, wire.EventDone)
	if len(evs) < 2 {
		t.Errorf("no progress event before done: %+v", evs)
	}
	rep := done.Report
	if rep == nil || rep.Created == 0 || rep.Deleted == 0 || rep.BytesCopied == 0 || rep.ErrorCount != 0 {
		t.Fatalf("report %+v, want files created and deleted, data copied and no error", rep)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Fatalf("the backup differs from the source:\n%s", diff)
	}
	m := w.marker(w.dst.mnt)
	if m.State != tails.StateComplete || m.Source != srcUUID || m.TailsVersion != "6.10" ||
		!m.Finished.Equal(rep.Finished) || !m.Finished.After(m.Started) {
		t.Errorf("marker %+v after a complete update (report finished %v)", m, rep.Finished)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(w.dst.mnt, tails.MarkerName), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFREG|tails.MarkerMode || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("marker mode %o owner %d:%d, want a regular file 0644 root:root (readable by the session agent)", st.Mode, st.Uid, st.Gid)
	}
	if _, err := os.Lstat(filepath.Join(w.src.mnt, tails.MarkerName)); !os.IsNotExist(err) {
		t.Errorf("the source got a marker: %v", err)
	}
	for i, ev := range evs[:len(evs)-1] {
		if ev.Phase != "scan" && ev.Phase != "copy" && ev.Phase != "done" {
			t.Errorf("progress event %d has phase %q", i, ev.Phase)
		}
	}

	// A second update finds nothing to do and keeps the backup exact.
	before := w.marker(w.dst.mnt)
	evs, err = w.do(wire.OpUpdate, dstUUID)
	done = checkEnd(t, evs, err, wire.EventDone)
	if c := done.Report.Created + done.Report.Updated + done.Report.Deleted; c != 0 {
		t.Errorf("second update changed %d entries: %+v", c, done.Report)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Fatalf("the backup differs from the source after a second update:\n%s", diff)
	}
	if after := w.marker(w.dst.mnt); !after.Started.After(before.Started) || after.State != tails.StateComplete {
		t.Errorf("second update's marker %+v, first %+v", after, before)
	}
}

// TestUpdateRefusals: every check on the source and the destination refuses with its code,
// and neither tree changes.
func TestUpdateRefusals(t *testing.T) {
	tests := []struct {
		name   string
		opts   worldOpts
		setup  func(t *testing.T, w *world) (backup string)
		code   wire.ErrorCode
		substr string
	}{
		{name: "marker of another Tails", code: wire.CodeNotPaired, substr: "backup of another Tails",
			setup: func(t *testing.T, w *world) string {
				w.writeMarker(w.dst.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateIncomplete, Started: time.Unix(1, 0)})
				return dstUUID
			}},
		{name: "no marker", opts: worldOpts{unpaired: true}, code: wire.CodeNotPaired, substr: "no backup marker"},
		{name: "damaged marker", code: wire.CodeNotPaired, substr: "damaged",
			setup: func(t *testing.T, w *world) string {
				if err := os.WriteFile(filepath.Join(w.dst.mnt, tails.MarkerName), []byte(`{"format":1,"source":"`+srcUUID+`"`), 0o600); err != nil {
					t.Fatal(err)
				}
				return dstUUID
			}},
		{name: "marker is a symlink", opts: worldOpts{unpaired: true}, code: wire.CodeNotPaired, substr: "damaged",
			setup: func(t *testing.T, w *world) string {
				// A valid marker naming this Tails, reached through a symlink: never followed.
				w.writeMarker(w.dir, tails.Marker{Format: 1, Source: srcUUID, State: tails.StateIncomplete, Started: time.Unix(1, 0)})
				if err := os.Symlink(filepath.Join(w.dir, tails.MarkerName), filepath.Join(w.dst.mnt, tails.MarkerName)); err != nil {
					t.Fatal(err)
				}
				return dstUUID
			}},
		{name: "boot drive", code: wire.CodeRefused, substr: "running from",
			setup: func(t *testing.T, w *world) string { return srcUUID }},
		{name: "system device", code: wire.CodeRefused, substr: "system device",
			opts: worldOpts{backup: func(s *udiskstest.StickSpec) { s.HintSystem = true }}},
		{name: "not removable", code: wire.CodeRefused, substr: "not a removable drive",
			opts: worldOpts{backup: func(s *udiskstest.StickSpec) {
				// The vendor string comes from the device: a newline must not reach the message.
				s.Removable, s.ConnectionBus, s.Vendor = false, "ata", "Evil\nCorp"
			}}},
		{name: "UUID not present", code: wire.CodeNotFound, substr: "plug in the backup",
			setup: func(t *testing.T, w *world) string { return otherUUID }},
		{name: "two sticks with the UUID", code: wire.CodeRefused, substr: "Several",
			setup: func(t *testing.T, w *world) string {
				w.fake.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Clone", Model: "Stick", Removable: true,
					ConnectionBus: "usb", Tails: true, LUKSUUID: dstUUID})
				return dstUUID
			}},
		{name: "not unlocked", code: wire.CodeNotFound, substr: "locked",
			opts: worldOpts{backup: func(s *udiskstest.StickSpec) { s.MountedAt, s.Unlocked = "", false }}},
		{name: "not mounted", code: wire.CodeNotFound, substr: "not mounted",
			opts: worldOpts{backup: func(s *udiskstest.StickSpec) { s.MountedAt, s.Unlocked = "", true }}},
		{name: "mount point is a plain directory", code: wire.CodeRefused, substr: "is not the Persistent Storage",
			setup: func(t *testing.T, w *world) string {
				plain := filepath.Join(w.dir, "plain")
				if err := os.Mkdir(plain, 0o755); err != nil {
					t.Fatal(err)
				}
				w.setMountPoints(w.backup.Cleartext, plain)
				return dstUUID
			}},
		{name: "mount point holds another file system", code: wire.CodeRefused, substr: "is not the Persistent Storage",
			setup: func(t *testing.T, w *world) string {
				other := newImage(t, w.dir, "other", 16)
				w.writeMarker(other.mnt, tails.Marker{Format: 1, Source: srcUUID, State: tails.StateIncomplete, Started: time.Unix(1, 0)})
				w.setMountPoints(w.backup.Cleartext, other.mnt)
				return dstUUID
			}},
		{name: "udisks device differs from the mount table", code: wire.CodeRefused, substr: "is not the Persistent Storage",
			setup: func(t *testing.T, w *world) string {
				// udisks says the backup is mounted at the destination, but with the device
				// number of another file system.
				other := newImage(t, w.dir, "other", 16)
				w.fake.Set(w.backup.Cleartext, iBlock, "DeviceNumber", other.dev)
				return dstUUID
			}},
		{name: "bind mount of a subdirectory", code: wire.CodeRefused, substr: "is not the Persistent Storage",
			setup: func(t *testing.T, w *world) string {
				sub := filepath.Join(w.dst.mnt, "sub")
				bind := filepath.Join(w.dir, "bind")
				for _, d := range []string{sub, bind} {
					if err := os.Mkdir(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				w.writeMarker(sub, tails.Marker{Format: 1, Source: srcUUID, State: tails.StateIncomplete, Started: time.Unix(1, 0)})
				run(t, "mount", "--bind", sub, bind)
				t.Cleanup(func() { _ = exec.Command("umount", bind).Run() })
				w.setMountPoints(w.backup.Cleartext, bind)
				return dstUUID
			}},
		{name: "mount path through a symlink", code: wire.CodeRefused, substr: "symbolic link",
			setup: func(t *testing.T, w *world) string {
				link := filepath.Join(w.dir, "link")
				if err := os.Symlink(w.dir, link); err != nil {
					t.Fatal(err)
				}
				w.setMountPoints(w.backup.Cleartext, filepath.Join(link, "dst"))
				return dstUUID
			}},
		{name: "relative mount path", code: wire.CodeRefused, substr: "is not the Persistent Storage",
			setup: func(t *testing.T, w *world) string {
				w.setMountPoints(w.backup.Cleartext, "../"+filepath.Base(w.dir)+"/dst")
				return dstUUID
			}},
		{name: "source holds a marker", code: wire.CodeRefused, substr: "make it the main Tails first",
			setup: func(t *testing.T, w *world) string {
				w.writeMarker(w.src.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
					Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
				return dstUUID
			}},
		{name: "source not mounted", code: wire.CodeNotFound, substr: "not unlocked",
			setup: func(t *testing.T, w *world) string {
				w.sys.Source = filepath.Join(w.dir, "nowhere")
				return dstUUID
			}},
		{name: "source is not a mount point", code: wire.CodeNotFound, substr: "not unlocked",
			setup: func(t *testing.T, w *world) string {
				w.sys.Source = w.dir
				return dstUUID
			}},
		{name: "source is not a TailsData partition", code: wire.CodeRefused, substr: "not the unlocked Persistent Storage",
			setup: func(t *testing.T, w *world) string {
				w.fake.Set(w.boot.LUKS, "org.freedesktop.UDisks2.Partition", "Name", "Data")
				return dstUUID
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts)
			fillSource(t, w.src.mnt, 2, 5, 1000)
			backup := dstUUID
			if tt.setup != nil {
				backup = tt.setup(t, w)
			}
			srcBefore, dstBefore := listing(t, w.src.mnt), listing(t, w.dst.mnt)
			evs, err := w.do(wire.OpUpdate, backup)
			ev := checkEnd(t, evs, err, wire.EventError)
			t.Logf("%s: %s", ev.Code, ev.Message)
			if ev.Code != tt.code || !strings.Contains(ev.Message, tt.substr) {
				t.Errorf("error %s %q, want %s containing %q", ev.Code, ev.Message, tt.code, tt.substr)
			}
			if got := listing(t, w.dst.mnt); got != dstBefore {
				t.Errorf("the destination changed:\nbefore:\n%s\nafter:\n%s", dstBefore, got)
			}
			if got := listing(t, w.src.mnt); got != srcBefore {
				t.Errorf("the source changed:\nbefore:\n%s\nafter:\n%s", srcBefore, got)
			}
		})
	}
}

// TestUpdateSkip: the folders the session asks to skip keep their previous copy on the backup,
// untouched; everything else is mirrored and the update is complete.
func TestUpdateSkip(t *testing.T) {
	w := newWorld(t, worldOpts{})
	fillSource(t, w.src.mnt, 2, 5, 1000)
	for _, root := range []string{w.src.mnt, w.dst.mnt} {
		if err := os.MkdirAll(filepath.Join(root, "thunderbird", "profile"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(w.src.mnt, "thunderbird", "profile", "new-mail"), []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dst.mnt, "thunderbird", "profile", "old-mail"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := listing(t, filepath.Join(w.dst.mnt, "thunderbird"))

	b, _ := json.Marshal(wire.Request{Version: wire.ProtocolVersion, Op: wire.OpUpdate, Backup: dstUUID, Skip: []string{"thunderbird", "gnupg"}})
	evs, err := start(t, w.sys, string(b)+"\n").finish()
	checkEnd(t, evs, err, wire.EventDone)
	if got := listing(t, filepath.Join(w.dst.mnt, "thunderbird")); got != before {
		t.Errorf("the skipped folder changed:\n%s\n%s", before, got)
	}
	out, err := exec.Command("rsync", "-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum",
		"--exclude=/"+tails.MarkerName, "--exclude=/"+tails.XattrCacheDirName, "--exclude=/thunderbird", w.src.mnt+"/", w.dst.mnt+"/").CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("the rest differs (%v):\n%s", err, out)
	}
	if m := w.marker(w.dst.mnt); m.State != tails.StateComplete {
		t.Errorf("marker %+v", m)
	}
}
