//go:build linux

package helper

import (
	"bytes"
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

func TestMarkPairsThenUpdateCompletes(t *testing.T) {
	w := newWorld(t, worldOpts{unpaired: true})
	fillSource(t, w.src.mnt, 2, 5, 1000)

	evs, err := w.do(wire.OpMark, dstUUID)
	if ev := checkEnd(t, evs, err, wire.EventDone); ev.Report != nil {
		t.Errorf("mark reported %+v", ev.Report)
	}
	m := w.marker(w.dst.mnt)
	if m.Source != srcUUID || m.State != tails.StateIncomplete || m.Started.IsZero() || !m.Finished.IsZero() {
		t.Fatalf("marker after mark: %+v", m)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(w.dst.mnt, tails.MarkerName), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFREG|tails.MarkerMode || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("marker mode %o owner %d:%d, want 0644 root:root (readable by the session agent)", st.Mode, st.Uid, st.Gid)
	}

	// Marking again is a success that changes nothing.
	before := listing(t, w.dst.mnt)
	evs, err = w.do(wire.OpMark, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if got := listing(t, w.dst.mnt); got != before {
		t.Errorf("a second mark changed the backup:\n%s\n%s", before, got)
	}

	// The pairing makes the first update possible, which completes the marker.
	evs, err = w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if m := w.marker(w.dst.mnt); m.State != tails.StateComplete || m.Source != srcUUID {
		t.Errorf("marker after the first update: %+v", m)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Errorf("backup differs:\n%s", diff)
	}
}

func TestMarkRefusals(t *testing.T) {
	tests := []struct {
		name   string
		opts   worldOpts
		marker []byte
		code   wire.ErrorCode
	}{
		{"marker of another Tails", worldOpts{unpaired: true},
			[]byte(`{"format":1,"source":"` + otherUUID + `","state":"incomplete","started":"2026-01-01T00:00:00Z"}`), wire.CodeNotPaired},
		{"damaged marker", worldOpts{unpaired: true}, []byte("not json"), wire.CodeNotPaired},
		{"boot drive", worldOpts{}, nil, wire.CodeRefused},
		{"not removable", worldOpts{unpaired: true, backup: func(s *udiskstest.StickSpec) { s.Removable = false }}, nil, wire.CodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts)
			if tt.marker != nil {
				if err := os.WriteFile(filepath.Join(w.dst.mnt, tails.MarkerName), tt.marker, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			backup := dstUUID
			if tt.name == "boot drive" {
				backup = srcUUID
			}
			srcBefore, dstBefore := listing(t, w.src.mnt), listing(t, w.dst.mnt)
			evs, err := w.do(wire.OpMark, backup)
			ev := checkEnd(t, evs, err, wire.EventError)
			t.Logf("%s: %s", ev.Code, ev.Message)
			if ev.Code != tt.code {
				t.Errorf("code %s, want %s", ev.Code, tt.code)
			}
			if listing(t, w.dst.mnt) != dstBefore || listing(t, w.src.mnt) != srcBefore {
				t.Error("a refused mark changed a tree")
			}
		})
	}
}

func TestPromote(t *testing.T) {
	w := newWorld(t, worldOpts{})
	// promote reads this Tails' own LUKS header (the key slots of a former main Tails).
	w.setLUKSDevice(w.boot.LUKS, newLUKS(t, w.dir, "own", "p"))
	fillSource(t, w.src.mnt, 1, 2, 100)
	// This Tails is a backup of another one.
	w.writeMarker(w.src.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
		Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
	dstBefore := listing(t, w.dst.mnt)

	evs, err := w.do(wire.OpPromote, "")
	checkEnd(t, evs, err, wire.EventDone)
	if _, err := os.Lstat(filepath.Join(w.src.mnt, tails.MarkerName)); !os.IsNotExist(err) {
		t.Fatalf("the marker is still there: %v", err)
	}
	if listing(t, w.dst.mnt) != dstBefore {
		t.Error("promote touched the backup")
	}
	// Already the main Tails: success, nothing to do.
	srcBefore := listing(t, w.src.mnt)
	evs, err = w.do(wire.OpPromote, "")
	checkEnd(t, evs, err, wire.EventDone)
	if listing(t, w.src.mnt) != srcBefore {
		t.Error("a second promote changed the source")
	}
	// Now this Tails may update its backup.
	evs, err = w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
}

func TestPromoteNeverFollowsASymlink(t *testing.T) {
	w := newWorld(t, worldOpts{})
	w.setLUKSDevice(w.boot.LUKS, newLUKS(t, w.dir, "own", "p"))
	victim := filepath.Join(w.dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(w.src.mnt, tails.MarkerName)); err != nil {
		t.Fatal(err)
	}
	evs, err := w.do(wire.OpPromote, "")
	checkEnd(t, evs, err, wire.EventDone)
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Errorf("the symlink's target was touched: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(w.src.mnt, tails.MarkerName)); !os.IsNotExist(err) {
		t.Errorf("the marker symlink is still there: %v", err)
	}
}

func TestCreatePersistence(t *testing.T) {
	w := newWorld(t, worldOpts{unpaired: true})
	if err := os.Chmod(w.dst.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	evs, err := w.do(wire.OpCreatePersistence, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)

	var st unix.Stat_t
	if err := unix.Lstat(w.dst.mnt, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFDIR|0o770 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("root mode %o owner %d:%d, want a directory 0770 root:root", st.Mode, st.Uid, st.Gid)
	}
	out, err := exec.Command("getfacl", "-n", "-p", "-c", w.dst.mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("getfacl: %v\n%s", err, out)
	}
	want := "user::rwx\nuser:1000:--x\ngroup::rwx\nmask::rwx\nother::---\n"
	if got := strings.TrimSpace(string(out)) + "\n"; got != want {
		t.Errorf("getfacl:\n%s\nwant:\n%s", got, want)
	}
	// The same ACL as the source root, which newWorld prepared the same way: the xattr bytes match
	// what setfacl would write for "u::rwx,u:1000:x,g::rwx,m::rwx,o::-".
	probe := filepath.Join(w.dir, "probe")
	if err := os.Mkdir(probe, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("setfacl", "-m", "u::rwx,u:1000:x,g::rwx,m::rwx,o::-", probe).CombinedOutput(); err != nil {
		t.Skipf("setfacl on %s: %v %s", probe, err, out)
	}
	a, b := make([]byte, 256), make([]byte, 256)
	n, err1 := unix.Getxattr(probe, tails.ACLXattrAccess, a)
	m, err2 := unix.Getxattr(w.dst.mnt, tails.ACLXattrAccess, b)
	if err1 != nil || err2 != nil || !bytes.Equal(a[:n], b[:m]) {
		t.Errorf("ACL xattr %x (%v), setfacl writes %x (%v)", b[:m], err2, a[:n], err1)
	}
}

func TestCreatePersistenceRefusesANonEmptyRoot(t *testing.T) {
	w := newWorld(t, worldOpts{unpaired: true})
	if err := os.WriteFile(filepath.Join(w.dst.mnt, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, w.dst.mnt)
	evs, err := w.do(wire.OpCreatePersistence, dstUUID)
	ev := checkEnd(t, evs, err, wire.EventError)
	if ev.Code != wire.CodeRefused || !strings.Contains(ev.Message, "not empty") {
		t.Errorf("error %s %q, want refused: not empty", ev.Code, ev.Message)
	}
	if listing(t, w.dst.mnt) != before {
		t.Error("the backup changed")
	}
}

func TestCreatePersistenceRefusesTheBootDrive(t *testing.T) {
	w := newWorld(t, worldOpts{unpaired: true})
	// Even with this Tails' Persistent Storage unknown to the helper, the boot drive is
	// recognised through udisks (HintSystem, the system partition mount).
	w.sys.Source = filepath.Join(w.dir, "nowhere")
	w.fake.Set(w.boot.System, "org.freedesktop.UDisks2.Filesystem", "MountPoints", [][]byte{append([]byte(w.sys.SystemMount), 0)})
	before := listing(t, w.src.mnt)
	evs, err := w.do(wire.OpCreatePersistence, srcUUID)
	ev := checkEnd(t, evs, err, wire.EventError)
	if ev.Code != wire.CodeRefused {
		t.Errorf("error %s %q, want refused", ev.Code, ev.Message)
	}
	if listing(t, w.src.mnt) != before {
		t.Error("the boot drive's Persistent Storage changed")
	}
}

// TestSourceThroughASymlink: the configured source path may go through a symlink (a root-owned
// installation path such as /live -> /run/live); the helper resolves it and checks the result.
func TestSourceThroughASymlink(t *testing.T) {
	w := newWorld(t, worldOpts{unpaired: true})
	link := filepath.Join(w.dir, "live")
	if err := os.Symlink(w.dir, link); err != nil {
		t.Fatal(err)
	}
	w.sys.Source = filepath.Join(link, "src")
	evs, err := w.do(wire.OpMark, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if m := w.marker(w.dst.mnt); m.Source != srcUUID {
		t.Errorf("marker %+v", m)
	}
}

func TestMarkMakesTheAgentStateFolder(t *testing.T) {
	w := newWorld(t, worldOpts{unpaired: true})
	evs, err := w.do(wire.OpMark, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(w.src.mnt, tails.StateDirName), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFDIR|0o700 || st.Uid != tails.AmnesiaUID || st.Gid != tails.AmnesiaUID {
		t.Errorf("state folder mode %o owner %d:%d, want a 0700 folder of amnesia", st.Mode, st.Uid, st.Gid)
	}

	// A symlink in its place is refused and never followed.
	w2 := newWorld(t, worldOpts{unpaired: true})
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(w2.src.mnt, tails.StateDirName)); err != nil {
		t.Fatal(err)
	}
	evs, err = w2.do(wire.OpMark, dstUUID)
	if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != wire.CodeRefused {
		t.Errorf("code %s, want refused", ev.Code)
	}
	if err := unix.Stat(outside, &st); err != nil || st.Uid != 0 || st.Mode&0o777 != 0o755 {
		t.Errorf("the symlink's target was changed: %+v %v", st, err)
	}
}

func TestOneOperationAtATimeOnABackup(t *testing.T) {
	w := newWorld(t, worldOpts{})
	fd, err := unix.Open(w.dst.mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil { // another update holds the backup
		t.Fatal(err)
	}
	before := listing(t, w.dst.mnt)
	evs, err := w.do(wire.OpUpdate, dstUUID)
	if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != wire.CodeRefused || !strings.Contains(ev.Message, "Another update") {
		t.Errorf("event %+v, want refused: another update", ev)
	}
	if got := listing(t, w.dst.mnt); got != before {
		t.Error("the backup changed while another update held it")
	}
	unix.Flock(fd, unix.LOCK_UN)
	evs, err = w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
}
