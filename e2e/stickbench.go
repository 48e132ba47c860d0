package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The throttled stick of make e2e-bench (issue 16, not run by CI): a week of changes copied onto
// a backup that QEMU slows down like a common flash stick, by the agent (plug to done) and by
// Tails' own command, rsync -PaSHAXv --del, each from the same state of the stick; then the
// mirror engine alone with one and with several workers, on many small files.

// A common USB flash stick, as QEMU's throttle group plays it: about 20 MB/s and 150 write
// requests per second, reads a bit faster. QEMU counts each request as one, whatever its size
// (no iops-size): a random 4 KiB write costs what a sequential one of up to 1 MiB does (the
// guest's max_sectors_kb), as a stick's flash translation layer makes small scattered writes
// cost nearly what an erase block's worth does.
const (
	flashWriteBps  = 20_000_000
	flashWriteIOPS = 150
	flashReadBps   = 30_000_000
	flashReadIOPS  = 500
)

// likeFlash gives st the limits of a common flash stick.
func likeFlash(st *Stick) *Stick {
	st.WriteBps, st.WriteIOPS, st.ReadBps, st.ReadIOPS = flashWriteBps, flashWriteIOPS, flashReadBps, flashReadIOPS
	return st
}

// benchWeek is a week of changes of the bench: e2e-guest change's usual ones (mail appended,
// the message index rewritten, a document, a photo added and one deleted, modes, xattrs,
// links, a Wi-Fi connection, a dotfile) and its options.
type benchWeek struct {
	seed, big, apt, mail int
}

func (b benchWeek) String() string {
	return fmt.Sprintf("e2e-guest change --seed %d --big %d --apt %d --mail %d", b.seed, b.big, b.apt, b.mail)
}

var (
	// compareWeek is the week of the comparison with rsync: a 48 MiB video, 200 APT lists
	// (1 to 256 KiB), 300 new small files of the mail cache (1 to 16 KiB).
	compareWeek = benchWeek{seed: 1, big: 48 << 20, apt: 200, mail: 300}
	// smallWeek is the week of the parallelism runs: 2,000 new small files of the mail cache.
	smallWeek = benchWeek{seed: 2, mail: 2000}
)

// BenchRow is one copy of a week onto the throttled stick.
type BenchRow struct {
	Name string
	// PlugToDone runs from the hot-plug to the end: the agent's done notification (it comes
	// once the stick is powered off), or udisksctl power-off returning after rsync.
	PlugToDone time.Duration
	// Mounted runs from the hot-plug until udisks shows the backup's file system mounted; 0
	// when it was not seen.
	Mounted time.Duration
	Stats   BlockStats
}

// SyncRun is one run of the mirror engine alone (tails-backup sync) onto the throttled stick.
type SyncRun struct {
	Workers string // "1", "8", "auto"
	Took    time.Duration
	Stats   BlockStats
}

// BenchResult is what StickBench measured.
type BenchResult struct {
	Speed       string // the stick's measured speeds (e2e-guest stick-speed), as JSON
	Queue       string // the guest's view of the stick's queue
	Ours, Rsync BenchRow
	Sync        []SyncRun
	// ResumeOurs and ResumeRsync are the pull in the middle of a large file, the stick pulled
	// once ResumePullPercent of the video's size was written to it.
	ResumeOurs, ResumeRsync ResumeRow
	ResumePullPercent       int
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }

func mb(n int64) string { return strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64) }

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

// ComparisonTable is the table of ours against rsync, in Markdown.
func ComparisonTable(ours, rsync BenchRow) string {
	var b strings.Builder
	b.WriteString("| | plug-to-done (s) | plug to mounted (s) | mounted to done (s) | MB written | write requests | flushes |\n|---|---|---|---|---|---|---|\n")
	after := func(r BenchRow) time.Duration {
		if r.Mounted == 0 {
			return 0
		}
		return r.PlugToDone - r.Mounted
	}
	for _, r := range []BenchRow{ours, rsync} {
		mounted, rest := "—", "—"
		if r.Mounted > 0 {
			mounted, rest = secs(r.Mounted), secs(after(r))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d |\n", r.Name, secs(r.PlugToDone), mounted, rest, mb(r.Stats.WrBytes), r.Stats.WrOperations, r.Stats.FlushOps)
	}
	afterRatio := "—"
	if ours.Mounted > 0 && rsync.Mounted > 0 {
		afterRatio = ratio(after(ours).Seconds(), after(rsync).Seconds())
	}
	fmt.Fprintf(&b, "| ratio ours/rsync | %s | | %s | %s | %s | |\n", ratio(ours.PlugToDone.Seconds(), rsync.PlugToDone.Seconds()), afterRatio,
		ratio(float64(ours.Stats.WrBytes), float64(rsync.Stats.WrBytes)), ratio(float64(ours.Stats.WrOperations), float64(rsync.Stats.WrOperations)))
	return b.String()
}

// ParallelismTable is the table of the engine's runs by number of workers, in Markdown: each
// run's time, their mean, and the mean bytes and requests written; the ratio is the mean time
// against the first row's.
func ParallelismTable(runs []SyncRun) string {
	type agg struct {
		times         []string
		sum           time.Duration
		bytes, writes int64
		n             int64
	}
	var order []string
	by := map[string]*agg{}
	for _, r := range runs {
		a := by[r.Workers]
		if a == nil {
			a = &agg{}
			by[r.Workers] = a
			order = append(order, r.Workers)
		}
		a.times = append(a.times, secs(r.Took))
		a.sum += r.Took
		a.bytes += r.Stats.WrBytes
		a.writes += r.Stats.WrOperations
		a.n++
	}
	var b strings.Builder
	b.WriteString("| workers | runs (s) | mean (s) | / first row | MB written | write requests |\n|---|---|---|---|---|---|\n")
	var first float64
	for i, w := range order {
		a := by[w]
		mean := a.sum / time.Duration(a.n)
		if i == 0 {
			first = mean.Seconds()
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d |\n", w, strings.Join(a.times, ", "), secs(mean), ratio(mean.Seconds(), first), mb(a.bytes/a.n), a.writes/a.n)
	}
	return b.String()
}

// Report is the bench's whole result in Markdown.
func (r BenchResult) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Stick (QEMU throttle group: bps-write=%d, iops-write=%d, bps-read=%d, iops-read=%d), measured in the guest with O_DIRECT: %s\n",
		flashWriteBps, flashWriteIOPS, flashReadBps, flashReadIOPS, strings.TrimSpace(r.Speed))
	fmt.Fprintf(&b, "Its queue in the guest: %s\n\n", strings.TrimSpace(r.Queue))
	fmt.Fprintf(&b, "A week of changes (%s), onto the same state of the stick:\n\n%s\n", compareWeek, ComparisonTable(r.Ours, r.Rsync))
	fmt.Fprintf(&b, "The engine alone (tails-backup sync --workers N, ending with its syncfs), %s, onto the same state of the stick:\n\n%s", smallWeek, ParallelismTable(r.Sync))
	if r.ResumeOurs.Name != "" {
		fmt.Fprintf(&b, "\nA new %d MiB video, the stick pulled once %d %% of its size was written to it, then plugged again, onto the same state of the stick:\n\n%s\n",
			resumeSize>>20, r.ResumePullPercent, ResumeTable(r.ResumeOurs, r.ResumeRsync))
		for _, row := range []ResumeRow{r.ResumeOurs, r.ResumeRsync} {
			fmt.Fprintf(&b, "After the pull, the stick of %s held: %s\n", row.Name, row.Left)
		}
		if r.ResumeOurs.Progress != "" {
			fmt.Fprintf(&b, "The agent's last progress before the pull: %q\n", r.ResumeOurs.Progress)
		}
		if r.ResumeOurs.Second.PlugToDone == 0 {
			return b.String()
		}
		fmt.Fprintf(&b, "\nAfter the replug, %s; the agent's progress notifications (on the guest's clock; the stick's counts at the last reading before each):\n\n%s",
			ReplugTimes(r.ResumeOurs), ProgressTable(r.ResumeOurs))
	}
	return b.String()
}

// overlay makes a qcow2 overlay named name over the image base (of format baseFormat) in the
// run folder, and returns a stick of it with the serial and passphrase of like, throttled
// like a flash stick: the same starting state for each copy, the base left as it is.
func (w *World) overlay(ctx context.Context, name, base, baseFormat string, like *Stick) (*Stick, error) {
	file := filepath.Join(w.Dir, name+".qcow2")
	os.Remove(file)
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", baseFormat, "-b", base, file).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img create %s: %w: %s", name, err, out)
	}
	return likeFlash(&Stick{ID: like.ID, Serial: like.Serial, File: file, Format: "qcow2", Passphrase: like.Passphrase}), nil
}

// change applies a week to this Tails' Persistent Storage.
func (w *World) change(ctx context.Context, wk benchWeek) error {
	t := time.Now()
	_, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "change", "--seed", strconv.Itoa(wk.seed), "--big", strconv.Itoa(wk.big),
		"--apt", strconv.Itoa(wk.apt), "--mail", strconv.Itoa(wk.mail), persistenceMount}, Timeout: 10 * time.Minute})
	w.Log.Logf("bench: %s (%s)", wk, round(time.Since(t)))
	if err != nil {
		return err
	}
	// The first read of a file changed since its last read updates its atime (relatime): the
	// first copy after a week would write them all to the source's disk and the next copies
	// not. One byte of each file is read first, so that no copy pays for that (the first of the
	// runs of the engine alone took 2 to 3 times as long as the others before).
	_, err = w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", "find " + persistenceMount + " -xdev -type f -exec head -q -c1 {} + >/dev/null && sync"}, Timeout: 10 * time.Minute})
	return err
}

// dropCaches writes back and drops the guest's page cache, so that each copy reads the source
// from its disk.
func (w *World) dropCaches(ctx context.Context) error {
	_, err := w.G.Root(ctx, "sh", "-c", "sync && echo 3 >/proc/sys/vm/drop_caches")
	return err
}

// StickBench runs the bench on the backup that ScenarioCreate made (unplugged, unthrottled):
// the stick's own speeds on a blank stick, then a week of changes by the agent and by rsync,
// each onto an overlay of the backup, then the engine alone by workers, then the pull in the
// middle of a large file once pullPercent of it was written to the stick.
func (w *World) StickBench(ctx context.Context, pullPercent int) (BenchResult, error) {
	res := BenchResult{ResumePullPercent: pullPercent}
	backup := w.Sticks[StickBackup]
	if err := w.calibrate(ctx, &res); err != nil {
		return res, err
	}
	if err := w.change(ctx, compareWeek); err != nil {
		return res, err
	}
	ours, err := w.overlay(ctx, "bench-ours", backup.File, "raw", backup)
	if err != nil {
		return res, err
	}
	if res.Ours, err = w.benchOurs(ctx, ours, nil); err != nil {
		return res, err
	}
	w.Log.Logf("bench: ours %+v", res.Ours)
	rs, err := w.overlay(ctx, "bench-rsync", backup.File, "raw", backup)
	if err != nil {
		return res, err
	}
	if res.Rsync, err = w.benchRsync(ctx, rs); err != nil {
		return res, err
	}
	w.Log.Logf("bench: rsync %+v", res.Rsync)
	// Both copies are checked against the source with rsync --checksum.
	for _, st := range []*Stick{ours, rs} {
		if err := w.checkCopy(ctx, st); err != nil {
			return res, err
		}
	}
	if err := w.StopAgent(ctx); err != nil {
		return res, err
	}
	defer w.StartAgent(ctx)
	if err := w.change(ctx, smallWeek); err != nil {
		return res, err
	}
	// Alternating, so that neither order nor the host's load favours one.
	for i, workers := range []int{1, 8, 0, 0, 8, 1} {
		st, err := w.overlay(ctx, fmt.Sprintf("bench-sync-%d", i), ours.File, "qcow2", backup)
		if err != nil {
			return res, err
		}
		run, err := w.benchSync(ctx, st, workers)
		if err != nil {
			return res, err
		}
		w.Log.Logf("bench: sync --workers %d: %s, %+v", workers, round(run.Took), run.Stats)
		res.Sync = append(res.Sync, run)
		if i == 0 {
			// The first copy is checked too (with the agent started again at its end).
			if err := w.checkCopy(ctx, st); err != nil {
				return res, err
			}
			if err := w.StopAgent(ctx); err != nil {
				return res, err
			}
		}
		os.Remove(st.File)
	}
	res.ResumeOurs, res.ResumeRsync, err = w.resumeBench(ctx, ours, pullPercent)
	return res, err
}

// calibrate measures a blank throttled stick with O_DIRECT requests, and reads the guest's
// view of its queue.
func (w *World) calibrate(ctx context.Context, res *BenchResult) error {
	st, err := w.NewStick("calib", "CALIB0001", 1<<30)
	if err != nil {
		return err
	}
	likeFlash(st)
	ds, err := w.PlugAndWait(ctx, st)
	if err != nil {
		return err
	}
	dev := strings.TrimPrefix(ds.Device, "/dev/")
	res.Queue, err = w.G.Root(ctx, "sh", "-c", "cd /sys/block/"+dev+"/queue && for f in rotational nr_requests max_sectors_kb scheduler; do printf '%s=%s ' $f \"$(cat $f)\"; done")
	if err != nil {
		return err
	}
	res.Speed, err = w.G.Run(ctx, Cmd{Argv: []string{guestTool, "stick-speed", ds.Device}, Timeout: 5 * time.Minute})
	if err != nil {
		return err
	}
	w.Log.Logf("bench: blank stick: %s; queue: %s", strings.TrimSpace(res.Speed), res.Queue)
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	delete(w.Sticks, st.ID)
	return os.Remove(st.File)
}

// stats reads the counters of the plugged st.
func (w *World) stats(ctx context.Context, st *Stick) (BlockStats, error) {
	return w.VM.QMP.StickStats(ctx, st.usb)
}

// watchMounted waits, in the background, until udisks shows st's file system mounted, and
// sends how long after its plug that was (0 if it was not seen within the timeout).
func (w *World) watchMounted(ctx context.Context, st *Stick, plugged time.Time) <-chan time.Duration {
	ch := make(chan time.Duration, 1)
	go func() {
		if _, err := w.WaitDrive(ctx, st, "mounted", 5*time.Minute); err != nil {
			ch <- 0
			return
		}
		ch <- time.Since(plugged)
	}()
	return ch
}

// benchOurs plugs st (the backup's state, throttled) with the agent running: the automatic
// update, from the hot-plug to the done notification, which comes once the stick is powered off.
// plugged, if not nil, runs just after the plug.
func (w *World) benchOurs(ctx context.Context, st *Stick, plugged func()) (BenchRow, error) {
	row := BenchRow{Name: "ours (the agent's update)"}
	if err := w.dropCaches(ctx); err != nil {
		return row, err
	}
	seq, err := w.LastSeq(ctx)
	if err != nil {
		return row, err
	}
	// The backup made by create opens with the key kept in this Tails; the passphrase only if
	// that failed (the log says so).
	if err := w.SetPinentry(ctx, st.Passphrase); err != nil {
		return row, err
	}
	w.Say.Logf("You plug in your backup Tails, a stick that writes at 20 MB/s.")
	start := time.Now()
	if err := w.Plug(ctx, st); err != nil {
		return row, err
	}
	if plugged != nil {
		plugged()
	}
	mounted := w.watchMounted(ctx, st, start)
	done, err := w.WaitNote(ctx, seq, noteDone, "", updateTimeout)
	if err != nil {
		return row, w.explain(ctx, seq, err)
	}
	row.PlugToDone = time.Since(start)
	row.Mounted = <-mounted
	w.Say.Logf("%s after the plug: %q, %q", round(row.PlugToDone), done.Summary, done.Body)
	if _, shown, _ := w.PinentryLog(ctx); shown != 0 {
		w.Log.Logf("bench: the agent asked the passphrase %d times (the kept key did not open the backup)", shown)
	}
	if err := w.checkEjected(ctx, st); err != nil {
		return row, err
	}
	if row.Stats, err = w.stats(ctx, st); err != nil {
		return row, err
	}
	// The mirror itself, from the root helper's log lines passed on by the agent.
	out, err := w.G.Root(ctx, "sh", "-c", "journalctl -q -o short-unix _SYSTEMD_USER_UNIT=tails-backup-agent.service | grep -E 'marker written incomplete; mirroring|update complete' | tail -n 2 | cut -d' ' -f1")
	if f := strings.Fields(out); err == nil && len(f) == 2 {
		a, _ := strconv.ParseFloat(f[0], 64)
		b, _ := strconv.ParseFloat(f[1], 64)
		w.Log.Logf("bench: ours's mirror (the engine, its syncfs included) took %.1fs by the helper's log", b-a)
	}
	return row, w.Unplug(ctx, st)
}

// benchRsync does what Tails' "Back Up Persistent Storage" and its user do, with the agent
// stopped: the stick plugged, then tailsCommand; timed from the plug to the eject's end.
func (w *World) benchRsync(ctx context.Context, st *Stick) (BenchRow, error) {
	row := BenchRow{Name: "Tails' rsync -PaSHAXv --del"}
	if err := w.StopAgent(ctx); err != nil {
		return row, err
	}
	defer w.StartAgent(ctx)
	if err := w.rsyncKey(ctx, st); err != nil {
		return row, err
	}
	if err := w.dropCaches(ctx); err != nil {
		return row, err
	}
	w.Say.Logf("You plug in your backup Tails (the same stick, as it was before the update) and back up with Tails' own command.")
	start := time.Now()
	if err := w.Plug(ctx, st); err != nil {
		return row, err
	}
	var err error
	if row.Mounted, err = w.tailsCommand(ctx, st, start); err != nil {
		return row, err
	}
	row.PlugToDone = time.Since(start)
	w.Say.Logf("%s after the plug, rsync is done and the stick ejected.", round(row.PlugToDone))
	if _, err := w.WaitDrive(ctx, st, "absent", time.Minute); err != nil {
		return row, err
	}
	if row.Stats, err = w.stats(ctx, st); err != nil {
		return row, err
	}
	return row, w.Unplug(ctx, st)
}

// rsyncKeyFile holds the passphrase of the backup for udisksctl unlock --key-file.
const rsyncKeyFile = "/run/e2e/bench-key"

// rsyncKey writes st's passphrase to rsyncKeyFile, readable by amnesia only.
func (w *World) rsyncKey(ctx context.Context, st *Stick) error {
	_, err := w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", "mkdir -p /run/e2e && install -o amnesia -m 0600 /dev/null " + rsyncKeyFile + " && cat >" + rsyncKeyFile}, Stdin: st.Passphrase})
	return err
}

// tailsCommand does, on the plugged st, what Tails' "Back Up Persistent Storage" and its user
// do: its Persistent Storage unlocked with the passphrase and mounted by udisks in the session
// (Tails' script does it with gio mount), rsync -PaSHAXv --del as root (its output to a file,
// as to a terminal), then the eject of the file manager: unmount, lock, power off. It returns
// how long after start the file system was mounted.
func (w *World) tailsCommand(ctx context.Context, st *Stick, start time.Time) (time.Duration, error) {
	ds, err := w.WaitDrive(ctx, st, "locked", time.Minute)
	if err != nil {
		return 0, err
	}
	out, err := w.Terminal(ctx, "udisksctl", "unlock", "--no-user-interaction", "-b", ds.Device+"2", "--key-file", rsyncKeyFile)
	if err != nil {
		return 0, err
	}
	// "Unlocked /dev/sda2 as /dev/dm-1."
	_, clear, ok := strings.Cut(strings.TrimSpace(out), " as ")
	clear = strings.TrimSuffix(clear, ".")
	if !ok || !strings.HasPrefix(clear, "/dev/") {
		return 0, fmt.Errorf("udisksctl unlock said %q", out)
	}
	if out, err = w.Terminal(ctx, "udisksctl", "mount", "--no-user-interaction", "-b", clear); err != nil {
		return 0, err
	}
	// "Mounted /dev/dm-1 at /media/amnesia/TailsData"
	_, mnt, ok := strings.Cut(strings.TrimSpace(out), " at ")
	mnt = strings.TrimSuffix(mnt, ".")
	if !ok || !strings.HasPrefix(mnt, "/") {
		return 0, fmt.Errorf("udisksctl mount said %q", out)
	}
	mounted := time.Since(start)
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", "rsync -PaSHAXv --del " + persistenceMount + "/ '" + mnt + "/' >/run/e2e/bench-rsync.log"}, Timeout: 30 * time.Minute}); err != nil {
		return mounted, fmt.Errorf("rsync: %w", err)
	}
	// rsync leaves its writes in the page cache: the unmount of the eject writes them.
	w.Log.Logf("bench: rsync itself took %s after the mount; the eject follows", round(time.Since(start)-mounted))
	for _, argv := range [][]string{{"unmount", "-b", clear}, {"lock", "-b", ds.Device + "2"}, {"power-off", "-b", ds.Device}} {
		if _, err := w.Terminal(ctx, append([]string{"udisksctl", argv[0], "--no-user-interaction"}, argv[1:]...)...); err != nil {
			return mounted, fmt.Errorf("udisksctl %s: %w", argv[0], err)
		}
	}
	return mounted, nil
}

// benchSync runs the engine alone with that many workers (0: its own choice) onto st, with the
// agent stopped: the stick unlocked and mounted first, then tails-backup sync timed to its end
// (its syncfs included), the bytes written counted meanwhile.
func (w *World) benchSync(ctx context.Context, st *Stick, workers int) (SyncRun, error) {
	run := SyncRun{Workers: strconv.Itoa(workers)}
	if workers == 0 {
		run.Workers = "auto"
	}
	ds, err := w.PlugAndWait(ctx, st)
	if err != nil {
		return run, err
	}
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", `set -e
cryptsetup open --key-file - ` + ds.Device + `2 e2e-bench
mkdir -p /run/e2e/bench
mount -o acl /dev/mapper/e2e-bench /run/e2e/bench
sync
echo 3 >/proc/sys/vm/drop_caches`}, Stdin: st.Passphrase}); err != nil {
		return run, err
	}
	before, err := w.stats(ctx, st)
	if err != nil {
		return run, err
	}
	t := time.Now()
	out, err := w.G.Run(ctx, Cmd{Argv: []string{"tails-backup", "sync", "--workers", strconv.Itoa(workers),
		"--exclude", ".tails-backup.json", "--exclude", "tails-backup", "--exclude", "tails-backup-keys", "--exclude", "tails-backup-cache",
		persistenceMount + "/", "/run/e2e/bench/"}, Timeout: 30 * time.Minute})
	run.Took = time.Since(t)
	if err != nil {
		return run, fmt.Errorf("tails-backup sync: %w: %s", err, out)
	}
	after, err := w.stats(ctx, st)
	if err != nil {
		return run, err
	}
	run.Stats = BlockStats{WrBytes: after.WrBytes - before.WrBytes, WrOperations: after.WrOperations - before.WrOperations,
		RdBytes: after.RdBytes - before.RdBytes, RdOperations: after.RdOperations - before.RdOperations, FlushOps: after.FlushOps - before.FlushOps}
	if _, err := w.G.Root(ctx, "sh", "-c", "umount /run/e2e/bench && cryptsetup close e2e-bench"); err != nil {
		return run, err
	}
	return run, w.Unplug(ctx, st)
}

// checkCopy compares st's Persistent Storage with this Tails' by rsync --checksum (the marker,
// the tails-backup folders and the helper's xattr cache left out, as CheckBackup does),
// unthrottled.
func (w *World) checkCopy(ctx context.Context, st *Stick) error {
	plain := *st
	plain.WriteBps, plain.WriteIOPS, plain.ReadBps, plain.ReadIOPS = 0, 0, 0, 0
	out, err := w.withStick(ctx, &plain, false, "rsync -aHAXS --numeric-ids -n -i --checksum --delete --exclude=/.tails-backup.json --exclude=/tails-backup/ --exclude=/tails-backup-keys/ --exclude=/tails-backup-cache/ "+persistenceMount+"/ $PS/")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return fmt.Errorf("the copy on %s differs from this Tails' Persistent Storage:\n%s", filepath.Base(st.File), out)
	}
	w.Log.Logf("bench: %s checked: identical by rsync --checksum", filepath.Base(st.File))
	return nil
}
