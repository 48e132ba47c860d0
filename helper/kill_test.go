//go:build linux

package helper

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/internal/killtest"
	"tails-backup/internal/testtree"
	"tails-backup/sysrefresh"
	"tails-backup/tails"
	"tails-backup/wire"
)

// The kill campaigns of the helper (issue 10, "Crash safety, shown"): the helper, a process of
// its own run as `tails-backup helper` runs it (process_test.go), killed with SIGKILL at
// random instants of an update, a restore and a refresh of the system partition, on the test
// world's ext4 images. After each kill, every entry of the tree written is its old or its new
// version, and what tells the tree complete (the update's marker, the system partition's
// identity files) never says so over a partial one; then the next run, to its end, leaves an
// exact copy and no temporary. TAILS_BACKUP_KILL_SEED replays a campaign, TAILS_BACKUP_KILLS
// sets the number of kills.

// killChain is a world for a campaign whose kills form a chain: a third image holds the old
// and the new tree (a generated week of changes), the side that is read (the Persistent
// Storage for an update, the backup for a restore) is made one of them before each run, and
// each kill goes from the tree the written side holds to the other one.
type killChain struct {
	*world
	c     *killtest.Campaign
	trees [2]string
	snaps [2]killtest.Snapshot
	start time.Time
}

// killSkip leaves out what the runs do not mirror: lost+found, the marker, the state folder and
// the backup's xattr cache.
func killSkip(rel string) bool {
	return rel == "lost+found" || rel == tails.MarkerName || rel == tails.StateDirName || rel == tails.XattrCacheDirName
}

// isKillTemporary tells the temporaries a killed helper may leave: the mirror's
// (.tails-backup-PID-X-N.tmp) and tails.WriteFileAt's (.NAME.tmp-N, the marker's or
// persistence.conf's).
func isKillTemporary(name string) bool {
	return strings.HasPrefix(name, ".tails-backup-") && strings.HasSuffix(name, ".tmp") ||
		strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// newKillChain makes the world and the trees. With hostileRoot the trees' roots are not a
// Persistent Storage root's (for a restore, which must keep this Tails' own); otherwise they are.
func newKillChain(t *testing.T, hostileRoot bool) *killChain {
	t.Helper()
	start := time.Now()
	// The images on /dev/shm: they are written over and over.
	t.Setenv("TMPDIR", killtest.ScratchDir(t))
	w := newWorld(t, worldOpts{srcMiB: 256, dstMiB: 256})
	ch := &killChain{world: w, c: killtest.NewCampaign(t), start: start}
	im := newImage(t, w.dir, "trees", 256)
	for i, name := range []string{"old", "new"} {
		ch.trees[i] = filepath.Join(im.mnt, name)
	}
	old := ch.trees[0]
	must(t, os.Mkdir(old, 0o755))
	// A Persistent Storage's configuration, the same in both (a restore checks it).
	conf := filepath.Join(old, tails.PersistenceConfName)
	must(t, os.WriteFile(conf, []byte("/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia\tsource=dotfiles,link\n"), 0o600))
	must(t, os.Chown(conf, tails.PersistentStorageUID, tails.PersistentStorageGID))
	tr := killtest.Generate(t, old, ch.c.Rand(), killtest.Shape{Dirs: 25, FilesPerDir: 75, MaxSmall: 8 << 10,
		Large: 3, LargeSize: 4 << 20, Groups: 20, Symlinks: 40, UID: tails.AmnesiaUID, GID: tails.AmnesiaUID})
	fd := openDir(t, old)
	if hostileRoot {
		// Amnesia's, open to all, with an ACL: a restore must never give them to this Tails'
		// Persistent Storage.
		must(t, unix.Fchown(fd, tails.AmnesiaUID, tails.AmnesiaUID))
		must(t, unix.Fchmod(fd, 0o777))
		acl := tails.EncodeACL([]tails.ACLEntry{
			{Tag: tails.ACLUserObj, Perm: 7, ID: tails.ACLUndefinedID},
			{Tag: tails.ACLUser, Perm: 7, ID: 1001},
			{Tag: tails.ACLGroupObj, Perm: 7, ID: tails.ACLUndefinedID},
			{Tag: tails.ACLMask, Perm: 7, ID: tails.ACLUndefinedID},
			{Tag: tails.ACLOther, Perm: 7, ID: tails.ACLUndefinedID},
		})
		must(t, unix.Fsetxattr(fd, tails.ACLXattrAccess, acl, 0))
	} else {
		must(t, setPersistenceRoot(fd))
	}
	run(t, "rsync", "-aHAXS", "--numeric-ids", old+"/", ch.trees[1]+"/")
	tr.Week(t, ch.trees[1])
	for i := range ch.trees {
		ch.snaps[i] = killtest.Hash(t, ch.trees[i], killSkip)
	}
	w.sys.ProgressInterval = 2 * time.Millisecond
	return ch
}

// flip makes the tree at dir tree i, its root's attributes too, the marker, the state folder,
// the xattr cache (kept, so that the next runs use it) and lost+found aside. rsync does it: a Mirror in this process is slow under the race detector.
func (ch *killChain) flip(dir string, i int) {
	ch.t.Helper()
	run(ch.t, "rsync", "-aHAXS", "--delete", "--numeric-ids", "--exclude=/lost+found",
		"--exclude=/"+tails.MarkerName, "--exclude=/"+tails.StateDirName, "--exclude=/"+tails.XattrCacheDirName, ch.trees[i]+"/", dir+"/")
}

// timeProcess runs the helper as a child process on input to its end and measures its span:
// the copy starts at the first event copy says is one of it.
func (ch *killChain) timeProcess(input string, copy func(wire.Event) bool) killtest.Span {
	return timeHelper(ch.world, input, copy)
}

func timeHelper(w *world, input string, copy func(wire.Event) bool) killtest.Span {
	t := w.t
	t.Helper()
	start := time.Now()
	p := w.startProcess(input)
	var s killtest.Span
	var last wire.Event
	for ev := range p.events {
		if s.Copy == 0 && copy(ev) {
			s.Copy = time.Since(start)
		}
		last = ev
	}
	<-p.exited
	s.Total = time.Since(start)
	if p.err != nil || last.Event != wire.EventDone || s.Copy == 0 {
		t.Fatalf("the whole run: %v, last event %+v, copy at %v\n%s", p.err, last, s.Copy, p.stderr.String())
	}
	return s
}

// killHelper runs the helper as a child process on input and kills it with SIGKILL at the
// instant in (the fraction of the copy read from its copy events). It returns whether the kill
// landed, and counts it in c.
func killHelper(w *world, c *killtest.Campaign, input string, in killtest.Instant, copy func(wire.Event) bool) bool {
	t := w.t
	t.Helper()
	p := w.startProcess(input)
	var timer <-chan time.Time
	if in.Delay > 0 {
		timer = time.After(in.Delay)
	}
wait:
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				break wait
			}
			if in.Delay == 0 && copy(ev) && killtest.Fraction(ev.FilesDone, ev.FilesTotal, ev.BytesDone, ev.BytesTotal) >= in.Fraction {
				break wait
			}
		case <-timer:
			break wait
		}
	}
	p.kill()
	if killtest.Killed(p.cmd.ProcessState) {
		c.Landed++
		return true
	}
	if p.err != nil {
		t.Fatalf("the helper ended with %v before it was killed:\n%s", p.err, p.stderr.String())
	}
	return false
}

// leftTemporaries lists the temporaries under root.
func leftTemporaries(t testing.TB, root string, isTemp func(string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if isTemp(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	must(t, err)
	return out
}

// tally sums up a campaign's checks.
type tally struct {
	entries, torn, midway, temps, exact int
}

func (ta *tally) add(t *testing.T, k int, in killtest.Instant, res killtest.Result) {
	t.Helper()
	ta.entries += res.Entries
	ta.torn += len(res.Torn)
	ta.temps += len(res.Temporaries)
	if !res.AllOld && !res.AllNew {
		ta.midway++
	}
	for i, s := range res.Torn {
		if i == 10 {
			t.Errorf("kill %d: ... %d torn in all", k, len(res.Torn))
			break
		}
		t.Errorf("kill %d %s: %s", k, in, s)
	}
}

func copyEvent(ev wire.Event) bool { return ev.Event == wire.EventProgress && ev.Phase == "copy" }

func TestKillUpdateRestore(t *testing.T) {
	t.Run("update", func(t *testing.T) {
		ch := newKillChain(t, false)
		w, c := ch.world, ch.c
		ps, backup := w.src.mnt, w.dst.mnt
		update := request(wire.OpUpdate, dstUUID)
		complete := func(k int) bool {
			t.Helper()
			evs, err := w.do(wire.OpUpdate, dstUUID)
			if done := checkEnd(t, evs, err, wire.EventDone); done.Report == nil || done.Report.ErrorCount != 0 {
				t.Errorf("kill %d: the next update: %+v", k, done.Report)
			}
			if m := w.marker(backup); m.State != tails.StateComplete {
				t.Errorf("kill %d: marker %+v after the next update", k, m)
			}
			if left := leftTemporaries(t, backup, isKillTemporary); len(left) != 0 {
				t.Errorf("kill %d: temporaries after the next update: %q", k, left)
				return false
			}
			if diff := rsyncDiff(t, ps, backup); diff != "" {
				t.Errorf("kill %d: the next update left differences:\n%s", k, diff)
				return false
			}
			return true
		}
		ch.flip(ps, 0)
		complete(-1) // the backup starts as the old tree
		ch.flip(ps, 1)
		span := ch.timeProcess(update, copyEvent)
		complete(-1)
		t.Logf("a whole update takes %v in a child process, its copy starting at %v", span.Total.Round(time.Millisecond), span.Copy.Round(time.Millisecond))

		var ta tally
		var completeMarkers int
		at := 1
		for k := range c.Kills {
			from := 1 - at
			ch.flip(ps, from)
			prev := w.marker(backup)
			in := c.Instant(k, span)
			killHelper(w, c, update, in, copyEvent)
			res := killtest.Check(t, backup, ch.snaps[at], ch.snaps[from], isKillTemporary, killSkip)
			ta.add(t, k, in, res)
			// The marker is complete only over a whole tree: the new one, or the old one of
			// the previous update when the kill came before the marker was made incomplete.
			m := w.marker(backup)
			switch {
			case m.State != tails.StateComplete:
			case res.AllNew:
				completeMarkers++
			case res.AllOld && m.Started.Equal(prev.Started):
				completeMarkers++
			default:
				t.Errorf("kill %d %s: the marker says complete (%+v) over a partial tree", k, in, m)
			}
			if complete(k) {
				ta.exact++
			}
			at = from
		}
		t.Logf("TestKillUpdateRestore/update: %d kills (%d landed, %d mid-copy), %d entries checked, %d torn, marker complete after %d kills (each over a whole tree), incomplete after the others; %d temporaries left by the kills and removed, %d/%d next updates exact; seed %d, %v",
			c.Kills, c.Landed, ta.midway, ta.entries, ta.torn, completeMarkers, ta.temps, ta.exact, c.Kills, c.Seed, time.Since(ch.start).Round(time.Second))
	})

	t.Run("restore", func(t *testing.T) {
		ch := newKillChain(t, true)
		w, c := ch.world, ch.c
		ps, backup := w.src.mnt, w.dst.mnt
		own := rootMetaOf(t, ps)
		restore := restoreRequest(srcUUID)
		complete := func(k int) bool {
			t.Helper()
			problems, done := restoreResult(t, start(t, w.sys, restore), wire.EventDone)
			if len(problems) != 0 || done.Report == nil || done.Report.ErrorCount != 0 {
				t.Errorf("kill %d: the next restore: problems %q, report %+v", k, problems, done.Report)
			}
			if got := rootMetaOf(t, ps); !got.equal(own) {
				t.Errorf("kill %d: the next restore left the Persistent Storage root with %+v, want its own %+v", k, got, own)
			}
			if left := leftTemporaries(t, ps, isKillTemporary); len(left) != 0 {
				t.Errorf("kill %d: temporaries after the next restore: %q", k, left)
				return false
			}
			// The roots differ by design: the Persistent Storage keeps its own.
			var diff []string
			for _, l := range strings.Split(restoreDiff(t, backup, ps), "\n") {
				if l != "" && !strings.HasSuffix(l, " ./") {
					diff = append(diff, l)
				}
			}
			if len(diff) != 0 {
				t.Errorf("kill %d: the next restore left differences:\n%s", k, strings.Join(diff, "\n"))
				return false
			}
			return true
		}
		ch.flip(backup, 0)
		if rootMetaOf(t, backup).equal(own) {
			t.Fatal("the backup's root has the Persistent Storage root's owner, mode and ACL: the test would show nothing")
		}
		complete(-1) // the Persistent Storage starts as the old tree
		ch.flip(backup, 1)
		span := ch.timeProcess(restore, copyEvent)
		complete(-1)
		t.Logf("a whole restore takes %v in a child process, its copy starting at %v", span.Total.Round(time.Millisecond), span.Copy.Round(time.Millisecond))

		var ta tally
		var rootKept int
		at := 1
		for k := range c.Kills {
			from := 1 - at
			ch.flip(backup, from)
			in := c.Instant(k, span)
			killHelper(w, c, restore, in, copyEvent)
			res := killtest.Check(t, ps, ch.snaps[at], ch.snaps[from], isKillTemporary, killSkip)
			ta.add(t, k, in, res)
			if got := rootMetaOf(t, ps); got.equal(own) {
				rootKept++
			} else {
				t.Errorf("kill %d %s: the Persistent Storage root has %+v, want its own %+v", k, in, got, own)
			}
			if complete(k) {
				ta.exact++
			}
			at = from
		}
		t.Logf("TestKillUpdateRestore/restore: %d kills (%d landed, %d mid-copy), %d entries checked, %d torn, Persistent Storage root kept %d/%d; %d temporaries left by the kills and removed, %d/%d next restores exact; seed %d, %v",
			c.Kills, c.Landed, ta.midway, ta.entries, ta.torn, rootKept, c.Kills, ta.temps, ta.exact, c.Kills, c.Seed, time.Since(ch.start).Round(time.Second))
	})
}

// TestKillRefreshSystem kills the helper's refresh of the backup's system partition (from a
// Tails 6.10 to the running 6.11: the large SquashFS images replaced, files added and deleted,
// the boot loader installed). After each kill every file is its old or its new version, and
// the identity files (.disk/info, live/Tails.module), renamed in last, say the new system only
// over a whole new one; the next refresh leaves a copy of the running system partition (its
// own ldlinux.sys aside, which syslinux writes) and no temporary. Each kill starts from the old
// backup.
func TestKillRefreshSystem(t *testing.T) {
	start := time.Now()
	t.Setenv("TMPDIR", killtest.ScratchDir(t))
	w := newSysWorld(t, 96)
	c := killtest.NewCampaign(t)
	w.sys.ProgressInterval = 2 * time.Millisecond
	bsys := w.bsysMnt
	// The old backup system partition, kept aside once: each kill starts from a copy of it
	// made by cp (writes from this process are slow under the race detector, which checks
	// every byte a write hands the kernel).
	pristine := filepath.Join(w.dir, "bsys-old")
	must(t, os.Mkdir(pristine, 0o755))
	testtree.Write(t, pristine, oldBackupFiles(), oldTime)
	reset := func() {
		t.Helper()
		entries, err := os.ReadDir(bsys)
		must(t, err)
		for _, e := range entries {
			must(t, os.RemoveAll(filepath.Join(bsys, e.Name())))
		}
		run(t, "cp", "-a", pristine+"/.", bsys+"/")
	}
	isTemp := func(name string) bool { return strings.HasPrefix(name, sysrefresh.TempPrefix) }
	reset()
	old := killtest.Hash(t, bsys, nil)
	newSnap := killtest.Hash(t, w.medium.mnt, nil)
	newSnap["syslinux/ldlinux.sys"] = old["syslinux/ldlinux.sys"] // the backup's own, never copied
	identity := []string{".disk/info", "live/Tails.module"}
	refresh := request(wire.OpRefreshSystem, dstUUID)
	systemEvent := func(ev wire.Event) bool { return ev.Event == wire.EventProgress && ev.Phase == wire.PhaseSystem }
	complete := func(k int) bool {
		t.Helper()
		evs, err := w.do(wire.OpRefreshSystem, dstUUID)
		if rep := checkEnd(t, evs, err, wire.EventDone).Report; rep == nil || rep.SystemVersion != newVersion {
			t.Errorf("kill %d: the next refresh: %+v", k, rep)
		}
		if left := leftTemporaries(t, bsys, isTemp); len(left) != 0 {
			t.Errorf("kill %d: temporaries after the next refresh: %q", k, left)
			return false
		}
		// A copy of the running system partition: every file its new version, nothing else.
		if res := killtest.Check(t, bsys, newSnap, newSnap, isTemp, nil); !res.AllNew || len(res.Torn) != 0 {
			t.Errorf("kill %d: the next refresh left a backup system partition that differs from the running one: %q", k, res.Torn)
			return false
		}
		if _, _, differ, err := sysrefresh.Check(w.medium.mnt, bsys, sysrefresh.Options{}); err != nil || differ {
			t.Errorf("kill %d: sysrefresh.Check after the next refresh: differ %v, %v", k, differ, err)
			return false
		}
		return true
	}
	span := timeHelper(w.world, refresh, systemEvent)
	complete(-1)
	t.Logf("a whole refresh takes %v in a child process, its copy starting at %v", span.Total.Round(time.Millisecond), span.Copy.Round(time.Millisecond))

	var ta tally
	var identityNew int
	for k := range c.Kills {
		reset()
		in := c.Instant(k, span)
		killHelper(w.world, c, refresh, in, systemEvent)
		res := killtest.Check(t, bsys, old, newSnap, isTemp, nil)
		ta.add(t, k, in, res)
		same := true
		for _, p := range identity {
			a, err := os.ReadFile(filepath.Join(bsys, p))
			must(t, err)
			b, err := os.ReadFile(filepath.Join(w.medium.mnt, p))
			must(t, err)
			same = same && bytes.Equal(a, b)
		}
		if same {
			identityNew++
			if !res.AllNew {
				t.Errorf("kill %d %s: the backup's identity files say the new system over a partial one", k, in)
			}
		}
		if complete(k) {
			ta.exact++
		}
	}
	t.Logf("TestKillRefreshSystem: %d kills (%d landed, %d mid-copy), %d entries checked, %d torn, identity new after %d kills (each over the whole new system), old after the others; %d temporaries left by the kills and removed, %d/%d next refreshes exact; seed %d, %v",
		c.Kills, c.Landed, ta.midway, ta.entries, ta.torn, identityNew, ta.temps, ta.exact, c.Kills, c.Seed, time.Since(start).Round(time.Second))
}
