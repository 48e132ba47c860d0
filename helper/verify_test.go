//go:build linux

package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/wire"
)

// verifyRequest is a verify request line.
func verifyRequest(checksum bool, skip ...string) string {
	b, _ := json.Marshal(wire.Request{Version: wire.ProtocolVersion, Op: wire.OpVerify, Backup: dstUUID, Checksum: checksum, Skip: skip})
	return string(b) + "\n"
}

// verifyResult splits the events of a verify into changes ("kind type path what"), problems
// ("path: problem") and the final event.
func verifyResult(t *testing.T, s *session) (changes, problems []string, done wire.Event) {
	t.Helper()
	evs, err := s.finish()
	done = checkEnd(t, evs, err, wire.EventDone)
	for _, ev := range evs[:len(evs)-1] {
		switch ev.Phase {
		case wire.PhaseChange:
			changes = append(changes, fmt.Sprintf("%s %s %s %s", ev.Kind, ev.Type, ev.Path, strings.Join(ev.What, ",")))
		case wire.PhaseProblem:
			problems = append(problems, ev.Path+": "+ev.Problem)
		default:
			t.Errorf("verify sent a progress event of phase %q: %+v", ev.Phase, ev)
		}
	}
	slices.Sort(changes)
	if done.Report == nil {
		t.Fatal("done without a report")
	}
	return changes, problems, done
}

// updatedWorld is a world whose backup is an exact, complete copy of a Tails-like source.
func updatedWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, worldOpts{})
	fillSource(t, w.src.mnt, 2, 3, 4<<10)
	evs, err := w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Fatalf("the update left differences:\n%s", diff)
	}
	return w
}

func TestVerifyIdentical(t *testing.T) {
	w := updatedWorld(t)
	for _, checksum := range []bool{false, true} {
		before := listing(t, w.dst.mnt)
		changes, problems, done := verifyResult(t, start(t, w.sys, verifyRequest(checksum)))
		if len(changes) != 0 || len(problems) != 0 {
			t.Errorf("checksum %v: an exact backup has changes %q and problems %q", checksum, changes, problems)
		}
		r := done.Report
		if r.Created+r.Updated+r.MetadataOnly+r.Deleted+r.Problems+r.ErrorCount+r.ChangesNotListed != 0 {
			t.Errorf("checksum %v: report %+v", checksum, r)
		}
		if !slices.Equal(r.Features, []string{"Persistent Folder", "Network Connections", "Dotfiles"}) &&
			!slices.Equal(r.Features, []string{"Persistent Folder", "Dotfiles"}) {
			t.Errorf("features %q", r.Features)
		}
		if after := listing(t, w.dst.mnt); after != before {
			t.Errorf("verify changed the backup:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}
}

// TestPairingStoreIsNotBackedUp: the tails-backup folder holds this Tails' own pairings, written
// after every update: an update leaves the backup's copy (if any) alone, and verify does not
// compare it, so a backup verified right after its update is identical.
func TestPairingStoreIsNotBackedUp(t *testing.T) {
	w := updatedWorld(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	srcStore := filepath.Join(w.src.mnt, tails.StateDirName)
	dstStore := filepath.Join(w.dst.mnt, tails.StateDirName)
	must(os.MkdirAll(srcStore, 0o700))
	must(os.WriteFile(filepath.Join(srcStore, "state.json"), []byte(`{"format":1}`), 0o600))
	must(os.MkdirAll(dstStore, 0o700))
	must(os.WriteFile(filepath.Join(dstStore, "old.json"), []byte(`{}`), 0o600))
	before := listing(t, dstStore)

	evs, err := w.do(wire.OpUpdate, dstUUID)
	checkEnd(t, evs, err, wire.EventDone)
	if after := listing(t, dstStore); after != before {
		t.Errorf("the update changed the backup's tails-backup folder:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The store changes after the update, as the agent records it.
	must(os.WriteFile(filepath.Join(srcStore, "state.json"), []byte(`{"format":1,"backups":[]}`), 0o600))
	changes, problems, done := verifyResult(t, start(t, w.sys, verifyRequest(true)))
	if len(changes) != 0 || len(problems) != 0 || done.Report.Created+done.Report.Updated+done.Report.MetadataOnly+done.Report.Deleted != 0 {
		t.Errorf("verify after the update: changes %q, problems %q, report %+v", changes, problems, done.Report)
	}
}

func TestVerifyFindsDifferences(t *testing.T) {
	w := updatedWorld(t)
	src, dst := w.src.mnt, w.dst.mnt
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// New, changed, deleted, metadata-only, a symlink's target.
	must(os.WriteFile(filepath.Join(src, "Persistent", "new.txt"), []byte("new\n"), 0o600))
	must(os.WriteFile(filepath.Join(src, "Persistent", "dir000", "sub", "file0000"), []byte("shorter"), 0o644))
	must(os.Remove(filepath.Join(src, "Persistent", "dir001", "sub", "file0002")))
	must(os.Chmod(filepath.Join(src, "dotfiles"), 0o750))
	must(os.Remove(filepath.Join(src, "dotfiles", ".notes")))
	must(os.Symlink("../Persistent/new.txt", filepath.Join(src, "dotfiles", ".notes")))
	must(os.MkdirAll(filepath.Join(dst, "Persistent", "stale", "deeper"), 0o700))
	// Same size and mtime, other content: only --checksum sees it.
	same := filepath.Join(src, "Persistent", "dir001", "sub", "file0001")
	var st unix.Stat_t
	must(unix.Lstat(same, &st))
	data, err := os.ReadFile(same)
	must(err)
	data[0] ^= 0xff
	must(os.WriteFile(same, data, 0o644))
	must(unix.UtimesNano(same, []unix.Timespec{st.Atim, st.Mtim}))

	before := listing(t, dst)
	changes, problems, done := verifyResult(t, start(t, w.sys, verifyRequest(false)))
	if len(problems) != 0 {
		t.Errorf("problems %q", problems)
	}
	want := []string{
		"create f Persistent/new.txt ",
		"delete d Persistent/stale ",
		"delete f Persistent/dir001/sub/file0002 ",
		"metadata d Persistent ",         // its mtime: a file was added
		"metadata d dotfiles mode,mtime", // chmod, and the symlink replaced
		"update L dotfiles/.notes target",
		"update f Persistent/dir000/sub/file0000 data",
	}
	got := strings.Join(changes, "\n")
	for _, c := range want {
		if !strings.Contains(got, strings.TrimSuffix(c, " ")) {
			t.Errorf("no change %q in:\n%s", c, got)
		}
	}
	if strings.Contains(got, "file0001") {
		t.Errorf("without --checksum, a file of equal size and mtime was found different:\n%s", got)
	}
	r := done.Report
	// A deleted folder is one event, but its content counts too.
	if r.Created == 0 || r.Updated == 0 || r.MetadataOnly == 0 || r.Deleted == 0 || r.Created+r.Updated+r.MetadataOnly+r.Deleted < int64(len(changes)) {
		t.Errorf("report %+v for %d changes", r, len(changes))
	}

	changes, _, _ = verifyResult(t, start(t, w.sys, verifyRequest(true)))
	if !slices.Contains(changes, "update f Persistent/dir001/sub/file0001 data") {
		t.Errorf("--checksum missed a changed content:\n%s", strings.Join(changes, "\n"))
	}
	// Skipped folders are not compared.
	changes, _, _ = verifyResult(t, start(t, w.sys, verifyRequest(false, "Persistent")))
	for _, c := range changes {
		if strings.Contains(c, " Persistent/") {
			t.Errorf("a skipped folder was compared: %q", c)
		}
	}
	if after := listing(t, dst); after != before {
		t.Errorf("verify changed the backup:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestVerifyAcceptsTheACLTails7GivesAMountedBackup: Tails 7 runs `setfacl -m user:amnesia:rx`
// on the root of every TailsData that amnesia mounts at /media/amnesia/TailsData, so a backup
// that verify mounts always has it. It is not a difference (verify leaves the roots' own
// metadata to the check of Tails' rules, as a restore keeps this Tails' root), nor a problem.
// A root that Tails would refuse is still reported.
func TestVerifyAcceptsTheACLTails7GivesAMountedBackup(t *testing.T) {
	w := updatedWorld(t)
	acl := tails.PersistenceRootACL(0)
	acl[1].Perm = 5 // user:1000:r-x
	if err := unix.Setxattr(w.dst.mnt, tails.ACLXattrAccess, tails.EncodeACL(acl), 0); err != nil {
		t.Fatal(err)
	}
	changes, problems, done := verifyResult(t, start(t, w.sys, verifyRequest(true)))
	if len(changes) != 0 || len(problems) != 0 || done.Report.MetadataOnly+done.Report.Problems != 0 {
		t.Errorf("verify of a backup with Tails 7's ACL on its root: changes %q, problems %q, report %+v", changes, problems, done.Report)
	}
	if err := os.Chmod(w.dst.mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	changes, problems, _ = verifyResult(t, start(t, w.sys, verifyRequest(false)))
	if len(changes) != 0 || len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), "mode 0700 instead of 0770") {
		t.Errorf("verify of a backup whose root has mode 0700: changes %q, problems %q", changes, problems)
	}
}

func TestVerifyChecksTheBackupsPersistentStorage(t *testing.T) {
	w := updatedWorld(t)
	conf := filepath.Join(w.dst.mnt, tails.PersistenceConfName)
	if err := os.Chmod(conf, 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, w.dst.mnt)
	changes, problems, done := verifyResult(t, start(t, w.sys, verifyRequest(false)))
	if !slices.Equal(changes, []string{"metadata f persistence.conf mode"}) {
		t.Errorf("changes %q", changes)
	}
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "persistence.conf: Its mode is 0644 instead of exactly 0600") {
		t.Errorf("problems %q", problems)
	}
	if done.Report.Problems != 1 || len(done.Report.Features) != 0 {
		t.Errorf("report %+v", done.Report)
	}
	if after := listing(t, w.dst.mnt); after != before {
		t.Errorf("verify changed the backup:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestVerifyRefusesAnUnpairedBackup(t *testing.T) {
	w := newWorld(t, worldOpts{unpaired: true})
	before := listing(t, w.dst.mnt)
	evs, err := start(t, w.sys, verifyRequest(false)).finish()
	last := checkEnd(t, evs, err, wire.EventError)
	if last.Code != wire.CodeNotPaired {
		t.Errorf("error %+v, want not-paired", last)
	}
	if after := listing(t, w.dst.mnt); after != before {
		t.Error("verify changed the backup")
	}
}

func TestVerifyRequestValidation(t *testing.T) {
	for _, tt := range []struct {
		line, wantErr string
	}{
		{`{"version":1,"op":"verify","backup":"` + dstUUID + `","checksum":true,"skip":["thunderbird"]}`, ""},
		{`{"version":1,"op":"verify"}`, "not a LUKS UUID"},
		{`{"version":1,"op":"update","backup":"` + dstUUID + `","checksum":true}`, "only verify takes checksum"},
		{`{"version":1,"op":"mark","backup":"` + dstUUID + `","skip":["x"]}`, "only update and verify take skip"},
	} {
		_, err := wire.ParseRequest([]byte(tt.line))
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want %q", tt.line, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, wire.ErrInvalidRequest) {
			t.Errorf("%s: %v does not wrap ErrInvalidRequest", tt.line, err)
		}
	}
}

// TestVerifyTreesCapsChangeEvents: plain folders, no root needed for the comparison.
func TestVerifyTreesCapsChangeEvents(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srcfd, dstfd := openDir(t, src), openDir(t, dst)
	var evs []wire.Event
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := VerifyTrees(ctx, srcfd, dstfd, VerifyOptions{MaxChanges: 4}, func(ev wire.Event) { evs = append(evs, ev) })
	if err != nil {
		t.Fatal(err)
	}
	var changes int
	for _, ev := range evs {
		if ev.Phase == wire.PhaseChange {
			changes++
			if ev.Kind != "create" && !(ev.Kind == "metadata" && ev.Path == ".") {
				t.Errorf("change %+v", ev)
			}
		}
	}
	if changes != 4 || rep.Created != 10 || rep.ChangesNotListed != rep.Created+rep.MetadataOnly-4 {
		t.Errorf("%d change events, report %+v", changes, rep)
	}
	if rep.Problems == 0 {
		t.Error("a plain folder passed the Persistent Storage checks")
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Errorf("VerifyTrees wrote to the destination: %v", entries)
	}
}
