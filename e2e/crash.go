package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"tails-backup/e2e/proto"
)

// Crash safety on the real stack (issue 10): the backup pulled out in the middle of an update
// at three points, with data still in the guest's page cache (10); the backup's Persistent
// Storage full in the middle of an update (11); this Tails' Persistent Storage full in the
// middle of a restore (12). In each, every file of the Persistent Storage written to must be
// either as it was before or as it is after (by the sha256 of manifests of the source taken
// before and after the changes, e2e-guest manifest and check-tree), none torn or lost, and
// the user told what happened and what to do.

// Texts the user sees after an update that stopped (agent/update.go failed).
const (
	noteNotUpdated = "Your backup Tails was not updated"
	// noteStopped is what comes after a pull: the agent says either that the stick was
	// unplugged or, when the helper saw the device fail first, that the update failed.
	noteStopped = noteUnplugged + "|" + noteNotUpdated
)

// stickWriteBps is the write speed of a cheap USB 2 flash stick, about 20 MB/s; the guest's
// page cache (3 GiB of memory: up to about 600 MB dirty) then holds written data for seconds,
// as on a real Tails, and the final flush of an update lasts long enough to be caught.
const stickWriteBps = 20_000_000

// syncfsNR is the number of syncfs(2) on x86_64, which the mirror engine calls once, at the end
// of the copy (sync/mirror.go run).
const syncfsNR = 306

const manifestDir = "/run/e2e/manifests"

// manifest records the manifest of this Tails' Persistent Storage in the guest as name, and
// returns what it counted.
func (w *World) manifest(ctx context.Context, name string) (string, error) {
	t := time.Now()
	out, err := w.G.Root(ctx, guestTool, "manifest", "--out", manifestDir+"/"+name+".json", persistenceMount)
	w.Log.Logf("manifest %s of the source: %s (%s)", name, strings.TrimSpace(out), round(time.Since(t)))
	return out, err
}

// withStick runs script as root in the guest with the Persistent Storage of st unlocked by
// cryptsetup and mounted at /run/e2e/ps ($PS): read-only (cryptsetup --readonly, mount -o ro)
// unless rw. The agent is stopped meanwhile (it would update a plugged backup), and st ends
// unplugged.
func (w *World) withStick(ctx context.Context, st *Stick, rw bool, script string) (string, error) {
	ro, mountRO := "--readonly ", "ro,"
	if rw {
		ro, mountRO = "", ""
	}
	return w.plugged(ctx, st, func(ds DriveState) (string, error) {
		full := `set -e
PS=/run/e2e/ps
cryptsetup open ` + ro + `--key-file - ` + ds.Device + `2 e2e-ps
mkdir -p $PS
mount -o ` + mountRO + `acl /dev/mapper/e2e-ps $PS
trap 'umount $PS; cryptsetup close e2e-ps' EXIT
` + script
		return w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", full}, Stdin: st.Passphrase})
	})
}

// plugged runs fn with st plugged in and the agent stopped meanwhile (it would update a
// plugged backup); st ends unplugged and the agent running again, whatever fn returned.
func (w *World) plugged(ctx context.Context, st *Stick, fn func(DriveState) (string, error)) (string, error) {
	if err := w.StopAgent(ctx); err != nil {
		return "", err
	}
	ds, err := w.PlugAndWait(ctx, st)
	if err != nil {
		return "", err
	}
	out, runErr := fn(ds)
	if err := w.Unplug(ctx, st); err != nil {
		return out, err
	}
	if err := w.StartAgent(ctx); err != nil {
		return out, err
	}
	return out, runErr
}

// checkTree runs check-tree on the Persistent Storage of st against the manifests old and new.
func (w *World) checkTree(ctx context.Context, st *Stick, rw bool, old, new string) (proto.TreeCheck, error) {
	var c proto.TreeCheck
	out, err := w.withStick(ctx, st, rw, guestTool+" check-tree --old "+manifestDir+"/"+old+".json --new "+manifestDir+"/"+new+".json $PS")
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal([]byte(out), &c)
}

// judge says what is wrong with a check of a tree interrupted in the middle of a change from
// old to new: a torn or lost file, or something that is neither; extra temporaries of the
// engine are only counted. wantMarker, if not "", is the state the marker must have when the
// tree is not complete.
func judge(c proto.TreeCheck, wantMarker string) error {
	var problems []string
	if len(c.Torn) > 0 {
		problems = append(problems, fmt.Sprintf("%d torn files (neither old nor new): %s", len(c.Torn), strings.Join(c.TornWhat, "; ")))
	}
	if len(c.Missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d entries lost (there before and after the changes): %q", len(c.Missing), c.Missing))
	}
	if len(c.Extra) > 0 {
		problems = append(problems, fmt.Sprintf("%d entries neither before nor after the changes: %q", len(c.Extra), c.Extra))
	}
	if wantMarker != "" {
		switch {
		case c.Marker == "complete" && !c.Complete:
			problems = append(problems, "the marker says complete, but the data is not the new data")
		case c.Marker != "complete" && c.Marker != wantMarker:
			problems = append(problems, fmt.Sprintf("the marker says %q, not %q", c.Marker, wantMarker))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

func describeCheck(c proto.TreeCheck) string {
	return fmt.Sprintf("%d entries checked (%d files): %d unchanged, %d old, %d new, torn: %d, lost: %d, other: %d, temporaries left: %d, marker %q, complete %v",
		c.Entries, c.Files, c.Unchanged, c.Old, c.New, len(c.Torn), len(c.Missing), len(c.Extra), len(c.Temps), c.Marker, c.Complete)
}

// pullPoint is where in an update scenario 10 pulls the stick.
type pullPoint struct {
	name string
	seed int // of the week of changes before it
	big  int // bytes of the new video of that week
	// wait returns when the update is at the point, and what it saw there.
	wait func(ctx context.Context, w *World, seq int) (string, error)
}

// atProgress waits for the first progress notification at or above min percent (below 95).
func atProgress(min int) func(context.Context, *World, int) (string, error) {
	return func(ctx context.Context, w *World, seq int) (string, error) {
		pct := regexp.MustCompile(`^(\d+)% done`)
		for {
			n, err := w.WaitNote(ctx, seq, noteUpdating, "% done", 5*time.Minute)
			if err != nil {
				return "", w.explain(ctx, seq, err)
			}
			seq = n.Seq
			m := pct.FindStringSubmatch(n.Body)
			if m == nil {
				continue
			}
			p, _ := strconv.Atoi(m[1])
			if p >= 95 {
				return "", fmt.Errorf("the update went past 95%% before the stick could be pulled: %q", n.Body)
			}
			if p >= min {
				return fmt.Sprintf("the notification says %q", n.Body), nil
			}
		}
	}
}

// atFinalFlush waits until the root helper is in its final syncfs(2), seen from /proc in the
// guest: the copy is over, the data not yet on the stick.
func atFinalFlush(ctx context.Context, w *World, seq int) (string, error) {
	out, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "wait-syscall", "--timeout", "5m", strconv.Itoa(syncfsNR)}, Timeout: 6 * time.Minute})
	if err != nil {
		return "", w.explain(ctx, seq, err)
	}
	dirty, _ := w.G.Root(ctx, "sh", "-c", "grep -E '^(Dirty|Writeback):' /proc/meminfo | tr -s ' \n' ' '")
	return fmt.Sprintf("the helper is in its final syncfs (%s; %s)", strings.TrimSpace(out), strings.TrimSpace(dirty)), nil
}

// ScenarioPulls (10): a week of changes; the backup is pulled out in the middle of the update
// at a point; before it is plugged again, a copy of its image is checked as the next plug will
// find it: each file old or new, none torn or lost, the marker incomplete (or the data
// complete); then it is plugged again and the update finishes. Three points: early (the first
// progress notification), the middle (50 %), and the final flush, each after its own week of
// changes. The stick writes at 20 MB/s, like a real one, so that at each point the guest holds
// written data in its page cache that the pull loses.
func (w *World) ScenarioPulls(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	st.WriteBps = stickWriteBps
	defer func() { st.WriteBps = 0 }()
	points := []pullPoint{
		{"early", 7, 96 << 20, atProgress(1)},
		{"middle", 8, 96 << 20, atProgress(50)},
		{"final-flush", 9, 96 << 20, atFinalFlush},
	}
	// With 3 GiB of memory the guest's page cache takes a whole week of changes at once
	// (10 % of it before writing back), the copy reaches 100 % in a second and no progress
	// notification comes in between. 64 MiB of dirty data at most (16 MiB before writing
	// back) is the share of a slow stick on a busy computer: the copy runs at the stick's
	// pace, and at each point up to 64 MiB written are still in the page cache only.
	if _, err := w.G.Root(ctx, "sysctl", "-q", "-w", "vm.dirty_background_bytes=16777216", "vm.dirty_bytes=67108864"); err != nil {
		return err
	}
	defer w.G.Root(ctx, "sysctl", "-q", "-w", "vm.dirty_background_ratio=10", "vm.dirty_ratio=20")
	// The backup is identical to this Tails' Persistent Storage after the scenarios before.
	if _, err := w.manifest(ctx, "pulls-0"); err != nil {
		return err
	}
	for i, p := range points {
		start := time.Now()
		old, new := fmt.Sprintf("pulls-%d", i), fmt.Sprintf("pulls-%d", i+1)
		w.Say.Logf("Another week of use, with a %d MB video; you plug in your backup and pull it out %s.", p.big>>20, map[string]string{
			"early": "as soon as the update shows its progress", "middle": "halfway through the update", "final-flush": "while it writes the last data to the stick"}[p.name])
		if err := w.ChangeData(ctx, p.seed, p.big); err != nil {
			return err
		}
		if _, err := w.manifest(ctx, new); err != nil {
			return err
		}
		seq, err := w.PlugAnswering(ctx, st, st.Passphrase)
		if err != nil {
			return err
		}
		if _, err := w.WaitNote(ctx, seq, noteUpdating, noteUpdatingBody, 2*time.Minute); err != nil {
			return w.explain(ctx, seq, err)
		}
		started := time.Now()
		at, err := p.wait(ctx, w, seq)
		if err != nil {
			return err
		}
		if err := w.Unplug(ctx, st); err != nil {
			return err
		}
		w.Say.Logf("%s into the update, %s: you pull the stick out.", round(time.Since(started)), at)
		w.Log.Logf("pull %s: %s", p.name, at)
		pulled := time.Now()
		n, err := w.WaitNote(ctx, seq, noteStopped, "", 4*time.Minute)
		if err != nil {
			return w.explain(ctx, seq, err)
		}
		w.Say.Logf("%s after the pull, Tails Backup says: %q, %q", round(time.Since(pulled)), n.Summary, n.Body)
		w.Log.Logf("timing: pull %s: the notification after the pull came in %s", p.name, round(time.Since(pulled)))
		if !regexp.MustCompile(`(?i)plug (it|your backup Tails) in again`).MatchString(n.Body) {
			return fmt.Errorf("after the pull the user is not told to plug the backup in again: %q", n.Body)
		}
		if p.name == "final-flush" {
			// The proof that the pull came during the flush: the helper's flush failed.
			if log, _ := w.G.Root(ctx, "sh", "-c", "journalctl -q -o cat -b | grep -c 'flush the destination' || true"); strings.TrimSpace(log) == "0" {
				w.Log.Logf("pull final-flush: no 'flush the destination' failure in the guest's journal (the helper's error may be worded otherwise)")
			} else {
				w.Log.Logf("pull final-flush: the guest's journal has %s line(s) of the failed flush of the destination", strings.TrimSpace(log))
			}
		}
		c, err := w.checkPulled(ctx, st, old, new)
		if err != nil {
			return err
		}
		w.Log.Logf("pull %s: check of the stick as the next plug finds it: %s", p.name, describeCheck(c))
		if err := judge(c, "incomplete"); err != nil {
			return fmt.Errorf("pull %s: %w", p.name, err)
		}
		w.Say.Logf("Before you plug it in again, its Persistent Storage as the next plug will find it: %d files, each as before or as after the week (%d old, %d new), none torn; its marker says %q.", c.Files, c.Old, c.New, c.Marker)
		w.Say.Logf("You plug it in again.")
		res, err := w.PlugAndUpdate(ctx, st.Passphrase)
		if err != nil {
			return err
		}
		w.Log.Logf("timing: pull %s: plug-to-start %s, finishing update %s, point with its check %s", p.name, round(res.PlugToStart), round(res.Update), round(time.Since(start)))
	}
	// Each point's check took the backup finished by the point before as "old": the last
	// finished update is checked here, with rsync and tails-backup verify.
	return w.CheckBackup(ctx)
}

// ScenarioPullLargeFile (10-pull-large-file, the last pull of scenario 10): a new large video
// (resumeSize), the stick (20 MB/s) pulled once QEMU counts defaultResumePullPercent of its size
// written since the plug, while the root helper still copies it (the pull of make e2e-bench,
// stickresume.go), with the guest's usual dirty limits (the copy runs ahead of the stick);
// then, as soon as the user is told, the stick is plugged again with nothing cleaned up by
// the test: no check of the pulled stick (whose plug would wake udisks' clean-up), no forced
// removal of what udisks left of it. The update must finish and leave no mapping
// (checkEjected), and the backup be exact (CheckBackup).
func (w *World) ScenarioPullLargeFile(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	st.WriteBps = stickWriteBps
	defer func() { st.WriteBps = 0 }()
	start := time.Now()
	video := persistenceMount + "/Persistent/Videos/e2e-pull-large.mkv"
	w.Say.Logf("You copy a %d MB video into your Persistent Folder, plug in your backup and pull it out while the video is copied.", resumeSize>>20)
	if _, err := w.G.Root(ctx, "sh", "-c", "mkdir -p "+filepath.Dir(video)+" && head -c "+strconv.Itoa(resumeSize)+" /dev/urandom >"+video+
		" && chown 1000:1000 "+video+" && sync"); err != nil {
		return err
	}
	since, err := w.G.Root(ctx, "date", "+%s")
	if err != nil {
		return err
	}
	seq, err := w.PlugAnswering(ctx, st, st.Passphrase)
	if err != nil {
		return err
	}
	// Whether udisks' clean-up at the pull finds the file system still held by the helper
	// depends on timing (in make e2e-bench runs 5 and 7 it did; since the copy's fdatasync
	// every 32 MiB, not always): a process of the test, started just before the pull with its
	// working directory in the backup, holds it for sure until the user is told.
	var holder string
	hold := func() {
		holder, _ = w.G.Root(ctx, "sh", "-c", "mp=$(awk '$2 ~ \"^/media/amnesia/\" {print $2; exit}' /proc/mounts); cd \"$mp\" && { setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!; }")
		holder = strings.TrimSpace(holder)
	}
	at, after, err := w.pullWhenWritten(ctx, st, int64(resumeSize)*defaultResumePullPercent/100, nil, hold)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	if _, err := strconv.Atoi(holder); err != nil {
		return fmt.Errorf("pull large-file: no process held the backup's file system at the pull (%q)", holder)
	}
	w.Log.Logf("pull large-file: pulled %s after the plug, %s MB written", round(after), mb(at.WrBytes))
	pulled := time.Now()
	n, err := w.WaitNote(ctx, seq, noteStopped, "", 4*time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("%s after the pull, Tails Backup says: %q, %q", round(time.Since(pulled)), n.Summary, n.Body)
	// The holder goes 3 s after udisks first failed to remove the mapping (or after 30 s):
	// udisks retries on each uevent of the pull, a burst of about 0.1 s; in runs 5 and 7 of
	// make e2e-bench the helper held the file system longer than that.
	tried, err := w.G.Root(ctx, "sh", "-c", "for i in $(seq 300); do journalctl -q -o short-monotonic -u udisks2 --since @"+strings.TrimSpace(since)+
		" | grep -q 'Error cleaning up LUKS device' && break; sleep 0.1; done; sleep 3; kill "+holder+"; while kill -0 "+holder+" 2>/dev/null; do sleep 0.1; done; "+
		"journalctl -q -o short-monotonic -u udisks2 --since @"+strings.TrimSpace(since)+" | grep -i 'cleaning up LUKS device' || true")
	if err != nil {
		return err
	}
	w.Log.Logf("pull large-file: udisks' failed clean-ups while the file system was held: %q", strings.TrimSpace(tried))
	left, _ := w.G.Root(ctx, "sh", "-c", "dmsetup ls --target crypt | awk '$1 != \"TailsData_unlocked\" && $1 != \"No\" {print \"mapping \" $1}'; "+
		"awk '$2 ~ \"^/media/amnesia/\" {print \"mount \" $1 \" \" $2}' /proc/mounts; pgrep -a -f '^/usr/lib/tails-backup/helper' | sed 's/^/helper /'; "+
		"for d in /sys/block/dm-*; do echo \"sysfs $d $(cat $d/dm/name) $(cat $d/dm/uuid) slaves: $(ls -l $d/slaves | tail -n +2 | awk '{print $NF}') $(for s in $d/slaves/*; do test -e $s && echo live || echo dangling; done)\"; done; "+
		"dmsetup info -c -o name,open,attr 2>&1; true")
	w.Log.Logf("pull large-file: left in the guest when the user is told: %q", strings.TrimSpace(left))
	w.Say.Logf("You plug it in again.")
	res, err := w.PlugAndUpdate(ctx, st.Passphrase)
	udisks, _ := w.G.Root(ctx, "sh", "-c", "journalctl -q -o short-monotonic -u udisks2 --since @"+strings.TrimSpace(since)+" | grep -iE 'clean|luks|unlock|mount|busy|exists' | tail -n 30")
	w.Log.Logf("pull large-file: udisks' journal since the plug:\n%s", strings.TrimSpace(udisks))
	ours, _ := w.G.Root(ctx, "sh", "-c", "journalctl -q -o short-monotonic --since @"+strings.TrimSpace(since)+" | grep -E 'tails-backup|helper' | grep -iE 'mapping|pull left|unplugged|unlock' | tail -n 20")
	w.Log.Logf("pull large-file: the agent's and the helper's lines since the plug:\n%s", strings.TrimSpace(ours))
	if err != nil {
		return fmt.Errorf("pull large-file: the plug after the pull: %w", err)
	}
	w.Log.Logf("timing: pull large-file: plug-to-start %s, finishing update %s, whole point %s", round(res.PlugToStart), round(res.Update), round(time.Since(start)))
	return w.CheckBackup(ctx)
}

// checkPulled checks the Persistent Storage of the pulled stick st as the next plug will find
// it. The ext4 of a stick pulled in the middle of writes needs its journal replayed, which
// the next mount does and which needs to write: a read-only mount of the stick (mount -o ro
// refuses a journal to replay on a read-only device; -o ro,noload shows the file system
// without the journal's last transactions, which the next plug would see). So the check
// mounts, read-write, a copy of the stick: a qcow2 overlay over its image, made on the host
// after the pull, plugged as another stick; the journal is replayed into the overlay, and the
// stick's image stays as the pull left it for the next plug.
func (w *World) checkPulled(ctx context.Context, st *Stick, old, new string) (proto.TreeCheck, error) {
	overlay := filepath.Join(w.Dir, st.ID+"-pulled.qcow2")
	os.Remove(overlay)
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", st.File, overlay).CombinedOutput(); err != nil {
		return proto.TreeCheck{}, fmt.Errorf("qemu-img create: %w: %s", err, out)
	}
	defer os.Remove(overlay)
	cp := &Stick{ID: st.ID + "-pulled", Serial: "PULLED0001", File: overlay, Format: "qcow2", Passphrase: st.Passphrase}
	t := time.Now()
	c, err := w.checkTree(ctx, cp, true, old, new)
	w.Log.Logf("timing: check of the pulled stick %s", round(time.Since(t)))
	return c, err
}

// ScenarioBackupFull (11): the backup's Persistent Storage fills up in the middle of an update.
// The backup is nearly full (a file in a tails-backup folder made on it, which updates leave alone,
// takes its space: fallocate, so nothing is written), and the update replaces a 96 MiB video
// by a new version of the same size: the scan finds nothing more to need (the old version is
// freed once the new one is in place) but the new version does not fit next to the old one.
// Nothing may be lost, the user must be told what happened and what to do; after room is made
// on this Tails (the video deleted), the next update finishes identical.
func (w *World) ScenarioBackupFull(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	const size = 96 << 20
	video := persistenceMount + "/Persistent/Videos/e2e-full.mkv"
	w.Say.Logf("You edit a %d MB video in your Persistent Folder; your backup is nearly full.", size>>20)
	if _, err := w.G.Root(ctx, "sh", "-c", "mkdir -p "+filepath.Dir(video)+" && head -c "+strconv.Itoa(size)+" /dev/urandom >"+video+" && chown 1000:1000 "+video); err != nil {
		return err
	}
	if _, err := w.PlugAndUpdate(ctx, st.Passphrase); err != nil {
		return err
	}
	if _, err := w.manifest(ctx, "full-0"); err != nil {
		return err
	}
	// Fill the backup but half the size of the video; ext4 gives root its reserved blocks,
	// and the helper is root: f_bfree is its free space.
	fill := fmt.Sprintf(`mkdir -p $PS/tails-backup
fallocate -l $(stat -f -c '%%f %%S' $PS | awk '{printf "%%.0f", $1*$2 - %d}') $PS/tails-backup/e2e-filler
stat -f -c 'free for root after the filler: %%f blocks of %%S bytes' $PS`, size/2)
	out, err := w.withStick(ctx, st, true, fill)
	w.Log.Logf("backup filled: %s", strings.TrimSpace(out))
	if err != nil {
		return err
	}
	// The new version, written in place, and a new document.
	if _, err := w.G.Root(ctx, "sh", "-c", "head -c "+strconv.Itoa(size)+" /dev/urandom | dd of="+video+" conv=notrunc status=none && echo draft >"+persistenceMount+"/Persistent/Documents/e2e-full.txt"); err != nil {
		return err
	}
	if _, err := w.manifest(ctx, "full-1"); err != nil {
		return err
	}
	w.Say.Logf("You plug in your backup.")
	seq, err := w.PlugAnswering(ctx, st, st.Passphrase)
	if err != nil {
		return err
	}
	n, err := w.WaitNote(ctx, seq, noteNotUpdated+"|"+noteDone, "", updateTimeout)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	if n.Summary == noteDone {
		return w.explain(ctx, seq, fmt.Errorf("the update did not run out of space: %q", n.Body))
	}
	w.Say.Logf("%s later: %q, %q", round(time.Since(st.pluggedAt)), n.Summary, n.Body)
	if !regexp.MustCompile(`too small|holds|ran out of space`).MatchString(n.Body) || !strings.Contains(n.Body, "tails-backup create") {
		return fmt.Errorf("the error does not say that the backup is too small or ran out of space, and what to do: %q", n.Body)
	}
	if err := w.checkEjected(ctx, st); err != nil {
		return err
	}
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	// Ejected cleanly, so the read-only unlock sees what the next plug sees.
	c, err := w.checkTree(ctx, st, false, "full-0", "full-1")
	if err != nil {
		return err
	}
	w.Log.Logf("backup full: check of the backup after the failed update: %s", describeCheck(c))
	if err := judge(c, "incomplete"); err != nil {
		return err
	}
	if c.Complete {
		return errors.New("the backup is complete although its update ran out of space")
	}
	w.Say.Logf("Nothing is lost on the backup: %d files, each as before or as after (%d old, %d new), none torn; its marker says %q.", c.Files, c.Old, c.New, c.Marker)
	w.Say.Logf("You delete the video to make room, and plug in your backup again.")
	if _, err := w.G.Root(ctx, "rm", video); err != nil {
		return err
	}
	res, err := w.PlugAndUpdate(ctx, st.Passphrase)
	if err != nil {
		return err
	}
	w.Log.Logf("backup full: the update after making room took %s", round(res.Update))
	if err := w.CheckBackup(ctx); err != nil {
		return err
	}
	// The filler goes, for the scenarios after this one.
	_, err = w.withStick(ctx, st, true, "rm $PS/tails-backup/e2e-filler && rmdir --ignore-fail-on-non-empty $PS/tails-backup")
	return err
}

// ScenarioRestoreFull (12): this Tails' Persistent Storage fills up in the middle of
// 'tails-backup restore'. The backup holds a 64 MiB video; here the video was edited since
// (same size), and this Persistent Storage has 4 MiB free for the session, and the reserved blocks of
// ext4 for root, less than the video (a file in its tails-backup folder, which a restore leaves
// alone, takes the rest: fallocate). The restore's scan finds
// room (the local version is freed once the backup's is in place), the copy does not.
// Nothing may be lost here, and the message must say what happened; after room is made, the
// restore finishes and this Persistent Storage is the backup's.
func (w *World) ScenarioRestoreFull(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	// Bigger than the blocks ext4 reserves for root (5 %, about 65 MiB here), which the root
	// helper may use and the session (the store of the agent, written as amnesia) may not.
	const size = 128 << 20
	video := persistenceMount + "/Persistent/Videos/e2e-restore.mkv"
	filler := persistenceMount + "/tails-backup/e2e-filler"
	if _, err := w.G.Root(ctx, "sh", "-c", "mkdir -p "+filepath.Dir(video)+" && head -c "+strconv.Itoa(size)+" /dev/urandom >"+video+" && chown 1000:1000 "+video); err != nil {
		return err
	}
	if _, err := w.PlugAndUpdate(ctx, st.Passphrase); err != nil {
		return err
	}
	if _, err := w.manifest(ctx, "restore-backup"); err != nil {
		return err
	}
	w.Say.Logf("You edit a %d MB video after your last backup, then decide to restore your Persistent Storage from the backup; it is nearly full.", size>>20)
	prep := "head -c " + strconv.Itoa(size) + " /dev/urandom | dd of=" + video + " conv=notrunc status=none && echo draft >" + persistenceMount + "/Persistent/Documents/e2e-restore.txt" +
		fmt.Sprintf(` && fallocate -l $(stat -f -c '%%a %%S' %s | awk '{printf "%%.0f", $1*$2 - %d}') %s && stat -f -c 'free: %%a blocks of %%S bytes, for root %%f' %s`, persistenceMount, 4<<20, filler, persistenceMount)
	out, err := w.G.Root(ctx, "sh", "-c", prep)
	w.Log.Logf("this Persistent Storage filled: %s", strings.TrimSpace(out))
	if err != nil {
		return err
	}
	if _, err := w.manifest(ctx, "restore-local"); err != nil {
		return err
	}
	restore := func() (string, error) {
		// The agent is stopped: it would update the plugged backup, which the restore's pause
		// prevents only for a backup plugged in after the restore started.
		if err := w.StopAgent(ctx); err != nil {
			return "", err
		}
		defer w.StartAgent(ctx)
		ds, err := w.PlugAndWait(ctx, st)
		if err != nil {
			return "", err
		}
		defer w.Unplug(ctx, st)
		if err := w.SetPinentry(ctx, st.Passphrase); err != nil {
			return "", err
		}
		t := time.Now()
		out, err := w.Terminal(ctx, "tails-backup", "restore", "--yes", ds.Device)
		w.Log.Logf("tails-backup restore --yes %s (%s):\n%s", ds.Device, round(time.Since(t)), out)
		if _, werr := w.WaitDrive(ctx, st, "locked", time.Minute); werr != nil && err == nil {
			err = fmt.Errorf("the backup was not locked again after the restore: %w", werr)
		}
		return out, err
	}
	out, err = restore()
	if err == nil {
		return fmt.Errorf("the restore into a full Persistent Storage did not fail: %q", out)
	}
	var ce *CommandError
	if !errors.As(err, &ce) {
		return err
	}
	msg := strings.TrimSpace(ce.Stderr)
	w.Say.Logf("It says: %q", lastLine(msg))
	if !strings.Contains(msg, "is too small") || strings.Contains(msg, "paused") {
		return fmt.Errorf("the restore's error does not say that the Persistent Storage is full: %q", msg)
	}
	t := time.Now()
	cOut, err := w.G.Root(ctx, guestTool, "check-tree", "--old", manifestDir+"/restore-local.json", "--new", manifestDir+"/restore-backup.json", persistenceMount)
	if err != nil {
		return err
	}
	var c proto.TreeCheck
	if err := json.Unmarshal([]byte(cOut), &c); err != nil {
		return err
	}
	w.Log.Logf("restore full: check of this Persistent Storage after the failed restore (%s): %s", round(time.Since(t)), describeCheck(c))
	if err := judge(c, ""); err != nil {
		return err
	}
	w.Say.Logf("Nothing is lost here: %d files, each as before the restore or as on the backup (%d local, %d from the backup), none torn.", c.Files, c.Old, c.New)
	w.Say.Logf("You make room and run the restore again.")
	if _, err := w.G.Root(ctx, "rm", filler); err != nil {
		return err
	}
	if _, err := restore(); err != nil {
		return err
	}
	cOut, err = w.G.Root(ctx, guestTool, "check-tree", "--old", manifestDir+"/restore-local.json", "--new", manifestDir+"/restore-backup.json", persistenceMount)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(cOut), &c); err != nil {
		return err
	}
	w.Log.Logf("restore full: check after the second restore: %s", describeCheck(c))
	if err := judge(c, ""); err != nil {
		return err
	}
	if !c.Complete {
		return errors.New("after the second restore, this Persistent Storage is not the backup's")
	}
	w.Say.Logf("Restored: your Persistent Storage is the backup's, file for file.")
	return nil
}
