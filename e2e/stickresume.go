package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"tails-backup/e2e/proto"
)

// The pull in the middle of a large file, in make e2e-bench (issue 16): a new large video in
// this Tails' Persistent Storage, the throttled stick plugged and pulled out once a share of
// the video's size has been written to it, then plugged again; by the agent (whose engine
// resumes the file from what the stick kept) and by Tails' own command (rsync -PaSHAXv --del,
// whose -P keeps the partial file), each from the same state of the stick.

const (
	// resumeSize is the size of the video: the demo's 200 MiB.
	resumeSize = 200 << 20
	// defaultResumePullPercent is the share of the video's size written to the stick (QEMU's
	// count of bytes written since the plug) at which the stick is pulled, unless
	// E2E_RESUME_PULL_PERCENT says otherwise (make e2e-bench only; scenario 10-pull-large-file
	// always pulls there): 40 %.
	defaultResumePullPercent = 40
	// minResumePullPercent and maxResumePullPercent bound E2E_RESUME_PULL_PERCENT: a pull
	// before 5 % may come before the video's copy has begun (the stick's other writes come
	// first), one after 95 % after it has ended.
	minResumePullPercent, maxResumePullPercent = 5, 95
	// resumeVideo is the video, in this Tails' Persistent Storage.
	resumeVideo = persistenceMount + "/Persistent/Videos/e2e-bench-resume.mkv"
)

// ResumePullPercentFromEnv returns the pull point of make e2e-bench that
// E2E_RESUME_PULL_PERCENT names: a whole number of percent from 5 to 95, 40 when unset.
func ResumePullPercentFromEnv() (int, error) {
	return parseResumePullPercent(os.Getenv("E2E_RESUME_PULL_PERCENT"))
}

// parseResumePullPercent reads a value of E2E_RESUME_PULL_PERCENT ("" is the default).
func parseResumePullPercent(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return defaultResumePullPercent, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minResumePullPercent || n > maxResumePullPercent {
		return 0, fmt.Errorf("E2E_RESUME_PULL_PERCENT=%q is not a whole number from %d to %d: set it to the percentage of the video written to the stick when it is pulled, or leave it unset for %d",
			v, minResumePullPercent, maxResumePullPercent, defaultResumePullPercent)
	}
	return n, nil
}

// ResumeRow is one tool's update of a large file cut off by a pull, then finished.
type ResumeRow struct {
	Name string
	// AtPull is what the stick had been asked to write from the first plug to the pull (the
	// last count before it), and PulledAfter how long after that plug the pull came.
	AtPull      BlockStats
	PulledAfter time.Duration
	// Left is what the pulled stick held of the video (its name, size and blocks).
	Left string
	// Progress is the last progress the user was shown before the pull ("" for rsync, whose
	// output goes to a file).
	Progress string
	// Second is the plug after the pull: from the plug to done, and what it wrote.
	Second BenchRow
	// Resumed is the bytes of the video that the engine read back and kept (the helper's
	// log), -1 when not known (rsync).
	Resumed int64
	// SecondProgress is the progress the user was shown during the second plug, every
	// notification of it in order (none for rsync). MirrorAt is how long after that plug the
	// helper began mirroring (its log), ReadBack when the stick's reads reached the bytes
	// kept, which the read-back cannot have ended before; each 0 when not known.
	SecondProgress     []ShownProgress
	MirrorAt, ReadBack time.Duration
}

// ResumeTable is the table of the pull in the middle of a large file, ours against rsync, in
// Markdown.
func ResumeTable(ours, rsync ResumeRow) string {
	var b strings.Builder
	b.WriteString("| | MB written before the pull | pulled after (s) | second plug: plug-to-done (s) | MB written | write requests | flushes | MB kept (read back) |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range []ResumeRow{ours, rsync} {
		kept := "—"
		if r.Resumed >= 0 {
			kept = mb(r.Resumed)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d | %s |\n", r.Name, mb(r.AtPull.WrBytes), secs(r.PulledAfter),
			secs(r.Second.PlugToDone), mb(r.Second.Stats.WrBytes), r.Second.Stats.WrOperations, r.Second.Stats.FlushOps, kept)
	}
	fmt.Fprintf(&b, "| ratio ours/rsync | %s | | %s | %s | %s | | |\n", ratio(float64(ours.AtPull.WrBytes), float64(rsync.AtPull.WrBytes)),
		ratio(ours.Second.PlugToDone.Seconds(), rsync.Second.PlugToDone.Seconds()),
		ratio(float64(ours.Second.Stats.WrBytes), float64(rsync.Second.Stats.WrBytes)),
		ratio(float64(ours.Second.Stats.WrOperations), float64(rsync.Second.Stats.WrOperations)))
	return b.String()
}

// resumeBench runs the pull in the middle of a large file, the stick pulled once pullPercent
// of the video's size was written to it, on the stick whose image after is
// (the overlay of the agent's update of the bench): the agent started again (the runs of the
// engine alone stop it), the stick brought up to date with this Tails by the agent
// (unthrottled), the video added, then ours and rsync, each on an overlay of that state, each
// copy checked by rsync --checksum at its end.
func (w *World) resumeBench(ctx context.Context, after *Stick, pullPercent int) (ours, rsync ResumeRow, err error) {
	backup := w.Sticks[StickBackup]
	ours, rsync = ResumeRow{Name: "ours (the agent's update)", Resumed: -1}, ResumeRow{Name: "Tails' rsync -PaSHAXv --del", Resumed: -1}
	if err := w.StartAgent(ctx); err != nil {
		return ours, rsync, err
	}
	base, err := w.overlay(ctx, "bench-resume-base", after.File, "qcow2", backup)
	if err != nil {
		return ours, rsync, err
	}
	base.WriteBps, base.WriteIOPS, base.ReadBps, base.ReadIOPS = 0, 0, 0, 0
	up, err := w.benchOurs(ctx, base, nil)
	if err != nil {
		return ours, rsync, fmt.Errorf("the update before the video: %w", err)
	}
	w.Log.Logf("bench: resume: the stick brought up to date by the agent, unthrottled: %+v", up)
	w.Say.Logf("You copy a %d MB video into your Persistent Folder.", resumeSize>>20)
	// Read once (a byte), so that its first read's atime update falls on neither copy.
	if _, err := w.G.Root(ctx, "sh", "-c", "mkdir -p "+filepath.Dir(resumeVideo)+" && head -c "+strconv.Itoa(resumeSize)+" /dev/urandom >"+resumeVideo+
		" && chown 1000:1000 "+resumeVideo+" && head -c1 "+resumeVideo+" >/dev/null && sync"); err != nil {
		return ours, rsync, err
	}
	st, err := w.overlay(ctx, "bench-resume-ours", base.File, "qcow2", backup)
	if err != nil {
		return ours, rsync, err
	}
	if err := w.resumeOurs(ctx, st, pullPercent, &ours); err != nil {
		return ours, rsync, fmt.Errorf("ours: %w", err)
	}
	w.Log.Logf("bench: resume: ours %+v", ours)
	rs, err := w.overlay(ctx, "bench-resume-rsync", base.File, "qcow2", backup)
	if err != nil {
		return ours, rsync, err
	}
	if err := w.resumeRsync(ctx, rs, pullPercent, &rsync); err != nil {
		return ours, rsync, fmt.Errorf("rsync: %w", err)
	}
	w.Log.Logf("bench: resume: rsync %+v", rsync)
	for _, s := range []*Stick{st, rs} {
		if err := w.checkCopy(ctx, s); err != nil {
			return ours, rsync, err
		}
	}
	return ours, rsync, nil
}

// resumeOurs plugs st with the agent running, pulls it once pullPercent of the video's size
// was written to it,
// waits for the agent to tell the user, looks at what the stick kept, then plugs it again
// and times the update that finishes.
func (w *World) resumeOurs(ctx context.Context, st *Stick, pullPercent int, row *ResumeRow) error {
	pullAt := int64(resumeSize) * int64(pullPercent) / 100
	if err := w.dropCaches(ctx); err != nil {
		return err
	}
	w.Say.Logf("You plug in your backup Tails, and pull it out when %d %% of the video is on it.", pullPercent)
	seq, err := w.PlugAnswering(ctx, st, st.Passphrase)
	if err != nil {
		return err
	}
	// What the user is shown at the pull: the notifications read just before it.
	var shown []proto.Notification
	if row.AtPull, row.PulledAfter, err = w.pullWhenWritten(ctx, st, pullAt, nil, func() { shown, _ = w.Notes(ctx, seq) }); err != nil {
		return w.explain(ctx, seq, err)
	}
	pulled := time.Now()
	row.Progress = lastProgress(shown)
	n, err := w.WaitNote(ctx, seq, noteStopped, "", 4*time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("%s after the pull, Tails Backup says: %q, %q", round(time.Since(pulled)), n.Summary, n.Body)
	// What udisks could not remove after the pull is left to the next plug: udisks removes it
	// at that plug's uevents, before the unlock (scenario 10-pull-large-file checks it).
	if err := w.waitNoBackupMapping(ctx, time.Minute); err != nil {
		return err
	}
	if row.Left, err = w.leftOnStick(ctx, st); err != nil {
		return err
	}
	// What the user is shown after the replug: the notifications of that plug (on the guest's
	// clock, on which the plug is put by the clocks' offset), beside the stick's counters read
	// meanwhile.
	ahead, within, err := w.guestClockAhead(ctx)
	if err != nil {
		return err
	}
	w.Log.Logf("bench: resume: the guest's clock is %s ahead of the host's (within %s)", ahead, within)
	if seq, err = w.LastSeq(ctx); err != nil {
		return err
	}
	w.Say.Logf("You plug it in again.")
	stop, sampled := make(chan struct{}), make(chan []stickSample, 1)
	row.Second, err = w.benchOurs(ctx, st, func() { go func() { sampled <- w.sampleStick(ctx, st, stop) }() })
	close(stop)
	if err != nil {
		return err
	}
	samples := <-sampled
	row.Second.Name = row.Name
	out, err := w.G.Root(ctx, "sh", "-c", "journalctl -q -o cat _SYSTEMD_USER_UNIT=tails-backup-agent.service | grep 'update complete' | tail -n 1")
	if err != nil {
		return err
	}
	w.Log.Logf("bench: resume: the helper's last update: %s", strings.TrimSpace(out))
	if m := regexp.MustCompile(`resumed=(\d+)`).FindStringSubmatch(out); m != nil {
		row.Resumed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	plugged := st.pluggedAt.Add(ahead) // on the guest's clock
	out, err = w.G.Root(ctx, "sh", "-c", "journalctl -q -o short-unix _SYSTEMD_USER_UNIT=tails-backup-agent.service | grep 'marker written incomplete; mirroring' | tail -n 1 | cut -d' ' -f1")
	if t, perr := strconv.ParseFloat(strings.TrimSpace(out), 64); err == nil && perr == nil {
		row.MirrorAt = time.Unix(0, int64(t*1e9)).Sub(plugged)
	}
	notes, err := w.Notes(ctx, seq)
	if err != nil {
		return err
	}
	row.SecondProgress = shownProgress(notes, plugged, samples)
	row.ReadBack = readBackEnd(samples, row.Resumed)
	w.Log.Logf("bench: resume: after the replug, %s (%d counts of the stick's)", ReplugTimes(*row), len(samples))
	for _, p := range row.SecondProgress {
		w.Log.Logf("bench: resume: after the replug, %ss: %q (the stick: %s MB read, %s MB written)", secs(p.After), p.Body, mb(p.Read), mb(p.Written))
	}
	return nil
}

// guestClockAhead returns how far the guest's clock is ahead of the host's, taking the
// guest's time as read in the middle of the tightest of three round trips, and half that
// round trip, within which it is right.
func (w *World) guestClockAhead(ctx context.Context) (ahead, within time.Duration, err error) {
	within = time.Hour
	for range 3 {
		sent := time.Now()
		out, err := w.G.Root(ctx, "date", "+%s.%N")
		took := time.Since(sent)
		if err != nil {
			return 0, 0, err
		}
		t, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("the guest's date said %q: %w", out, err)
		}
		if took/2 < within {
			ahead, within = time.Unix(0, int64(t*1e9)).Sub(sent.Add(took/2)), took/2
		}
	}
	return ahead, within, nil
}

// stickSample is the counters of a plugged stick, read that long after its plug.
type stickSample struct {
	After time.Duration
	BlockStats
}

// sampleStick reads the counters of the plugged st every 100 ms, from its plug until stop is
// closed or the stick is gone, and returns them.
func (w *World) sampleStick(ctx context.Context, st *Stick, stop <-chan struct{}) []stickSample {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var samples []stickSample
	for {
		s, err := w.stats(ctx, st)
		if err != nil {
			return samples
		}
		samples = append(samples, stickSample{time.Since(st.pluggedAt), s})
		select {
		case <-ctx.Done():
			return samples
		case <-stop:
			return samples
		case <-tick.C:
		}
	}
}

// ShownProgress is a progress notification the agent showed during a plug.
type ShownProgress struct {
	// After is how long after the plug it came (the guest's clock).
	After time.Duration
	Body  string
	// Read and Written are the bytes read from the stick and written to it since the plug, at
	// the last count of the stick's before it (0 before the first).
	Read, Written int64
}

// shownProgress returns the progress notifications ("N% done") among notes, in order, each
// with its time after plugged (on the same clock as the notes') and the last of samples (the
// stick's counts, in order) taken before it.
func shownProgress(notes []proto.Notification, plugged time.Time, samples []stickSample) []ShownProgress {
	var shown []ShownProgress
	for _, n := range notes {
		if !isProgress(n) {
			continue
		}
		p := ShownProgress{After: n.Time.Sub(plugged), Body: n.Body}
		for _, s := range samples {
			if s.After > p.After {
				break
			}
			p.Read, p.Written = s.RdBytes, s.WrBytes
		}
		shown = append(shown, p)
	}
	return shown
}

// readBackEnd returns how long after the plug the stick's reads first reached kept bytes, by
// samples (in order): the read-back of a kept part of that size cannot have ended sooner. It
// is 0 when nothing was kept or the reads never reached it.
func readBackEnd(samples []stickSample, kept int64) time.Duration {
	if kept <= 0 {
		return 0
	}
	for _, s := range samples {
		if s.RdBytes >= kept {
			return s.After
		}
	}
	return 0
}

// ReplugTimes says, in a sentence without its full stop, when r's second plug began
// mirroring and when the stick's reads reached the bytes kept.
func ReplugTimes(r ResumeRow) string {
	at := func(d time.Duration) string {
		if d == 0 {
			return "(not known)"
		}
		return "at " + secs(d) + " s"
	}
	read := "nothing was kept to read back"
	switch {
	case r.Resumed > 0 && r.ReadBack == 0:
		read = "the stick's reads never reached the " + mb(r.Resumed) + " MB kept"
	case r.Resumed > 0:
		read = "the stick's reads reached the " + mb(r.Resumed) + " MB kept " + at(r.ReadBack) + " (the read-back cannot have ended sooner)"
	}
	return "the helper began mirroring " + at(r.MirrorAt) + " after the plug, " + read
}

// ProgressTable is the table of the progress that r's second plug showed, in Markdown, each
// notification marked by whether it came before the stick's reads reached the bytes kept.
func ProgressTable(r ResumeRow) string {
	if len(r.SecondProgress) == 0 {
		return "No progress notification was shown.\n"
	}
	var b strings.Builder
	b.WriteString("| s after the plug | shown | MB read from the stick | MB written to it | the kept part |\n|---|---|---|---|---|\n")
	for _, p := range r.SecondProgress {
		kept := "read back"
		if r.ReadBack == 0 || p.After < r.ReadBack {
			kept = "not all read back yet"
		}
		if r.Resumed <= 0 {
			kept = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", secs(p.After), p.Body, mb(p.Read), mb(p.Written), kept)
	}
	return b.String()
}

// resumeRsync plugs st with the agent stopped and runs Tails' command (tailsCommand), pulls
// the stick once pullPercent of the video's size was written to it, looks at what the stick kept, then does it
// all again, timed.
func (w *World) resumeRsync(ctx context.Context, st *Stick, pullPercent int, row *ResumeRow) error {
	pullAt := int64(resumeSize) * int64(pullPercent) / 100
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.rsyncKey(ctx, st); err != nil {
		return err
	}
	if err := w.dropCaches(ctx); err != nil {
		return err
	}
	w.Say.Logf("You plug in your backup Tails (the same stick, as it was before), back up with Tails' own command, and pull it out when %d %% of the video is on it.", pullPercent)
	start := time.Now()
	if err := w.Plug(ctx, st); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.tailsCommand(ctx, st, start)
		done <- err
	}()
	var err error
	if row.AtPull, row.PulledAfter, err = w.pullWhenWritten(ctx, st, pullAt, done, nil); err != nil {
		return err
	}
	// What was going on at the pull: rsync's last lines, or the eject.
	ps, _ := w.G.Root(ctx, "sh", "-c", "ps -eo args | grep -E '^(rsync|udisksctl)' || true")
	w.Log.Logf("bench: resume: rsync pulled after %s; running then: %q", round(row.PulledAfter), strings.TrimSpace(ps))
	select {
	case err := <-done:
		w.Log.Logf("bench: resume: Tails' command after the pull: %v", err)
	case <-time.After(3 * time.Minute):
		return fmt.Errorf("Tails' command did not end within 3 minutes of the pull")
	}
	tail, _ := w.G.Root(ctx, "sh", "-c", "tail -c 600 /run/e2e/bench-rsync.log | tr '\\r' '\\n' | tail -n 4")
	w.Log.Logf("bench: resume: rsync's output ended with: %q", tail)
	if err := w.waitNoBackupMapping(ctx, time.Minute); err != nil {
		return err
	}
	if row.Left, err = w.leftOnStick(ctx, st); err != nil {
		return err
	}
	w.Say.Logf("You plug it in again and run Tails' command again.")
	if row.Second, err = w.benchRsync(ctx, st); err != nil {
		return err
	}
	row.Second.Name = row.Name
	return nil
}

// pullWhenWritten polls the counters of the plugged st until at least n bytes were written to
// it since its plug, then pulls it out, and returns the last counts before the pull and how
// long after the plug it came; atPull, if not nil, runs just before the pull. A copy that
// ends first (done, which may be nil) or 5 minutes without reaching n are errors. The counts
// go to the log every second.
func (w *World) pullWhenWritten(ctx context.Context, st *Stick, n int64, done <-chan error, atPull func()) (BlockStats, time.Duration, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(5 * time.Minute)
	var logged time.Time
	for {
		select {
		case <-ctx.Done():
			return BlockStats{}, 0, ctx.Err()
		case <-timeout:
			return BlockStats{}, 0, fmt.Errorf("%s MB were not written to the stick within 5 minutes", mb(n))
		case err := <-done:
			return BlockStats{}, 0, fmt.Errorf("the copy ended (%v) before %s MB were written to the stick", err, mb(n))
		case <-tick.C:
		}
		s, err := w.stats(ctx, st)
		if err != nil {
			return s, 0, err
		}
		after := time.Since(st.pluggedAt)
		if s.WrBytes >= n {
			if atPull != nil {
				atPull()
			}
			if err := w.Unplug(ctx, st); err != nil {
				return s, after, err
			}
			w.Log.Logf("bench: resume: pulled %s after the plug, %s MB written (%d requests, %d flushes)", round(after), mb(s.WrBytes), s.WrOperations, s.FlushOps)
			return s, after, nil
		}
		if time.Since(logged) >= time.Second {
			w.Log.Logf("bench: resume: %s after the plug: %s MB written (%d requests, %d flushes)", round(after), mb(s.WrBytes), s.WrOperations, s.FlushOps)
			logged = time.Now()
		}
	}
}

// waitNoBackupMapping waits until the guest has no device-mapper mapping but this Tails' own
// Persistent Storage, and no mount of a stick: what udisks and the helper left of a pulled
// stick is gone. What is still there after timeout is logged and left to the next plug, at
// whose uevents udisks removes it (its backing device's number is not reused while the
// mapping holds it, so udisks' clean-up finds it gone), as scenario 10-pull-large-file shows.
func (w *World) waitNoBackupMapping(ctx context.Context, timeout time.Duration) error {
	const left = "dmsetup ls --target crypt | awk '$1 != \"TailsData_unlocked\" && $1 != \"No\" {print \"mapping \" $1}'; awk '$2 ~ \"^/media/amnesia/|^/run/e2e/(ps|bench)$\" {print \"mount \" $2}' /proc/mounts"
	deadline := time.Now().Add(timeout)
	for {
		out, err := w.G.Root(ctx, "sh", "-c", left)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" {
			return nil
		}
		if time.Now().After(deadline) {
			w.Log.Logf("bench: resume: %s after the pull, the pulled stick is still there (%q): left to the next plug", timeout, strings.TrimSpace(out))
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// leftOnStick tells what the pulled stick st holds of the video: a copy of its image (an
// overlay, unthrottled; its journal replayed as the next plug does), the video's name and any
// temporary beside it, with their sizes and allocated blocks.
func (w *World) leftOnStick(ctx context.Context, st *Stick) (string, error) {
	cp, err := w.overlay(ctx, filepath.Base(strings.TrimSuffix(st.File, ".qcow2"))+"-pulled", st.File, "qcow2", st)
	if err != nil {
		return "", err
	}
	cp.WriteBps, cp.WriteIOPS, cp.ReadBps, cp.ReadIOPS = 0, 0, 0, 0
	dir := strings.TrimPrefix(filepath.Dir(resumeVideo), persistenceMount)
	out, err := w.withStick(ctx, cp, true, "find $PS"+dir+" -maxdepth 1 -type f \\( -name '.tails-backup-part-*' -o -name '*"+strings.TrimSuffix(filepath.Base(resumeVideo), ".mkv")+"*' \\) -printf '%f: %s bytes, %b blocks of 512; ' 2>/dev/null || true")
	out = strings.TrimSpace(out)
	if out == "" {
		out = "nothing"
	}
	w.Log.Logf("bench: resume: the pulled %s holds (its journal replayed): %s", filepath.Base(st.File), out)
	return out, err
}

// lastProgress is the body of the last of notes that shows the update's progress ("N% done"),
// "" when none does.
func lastProgress(notes []proto.Notification) string {
	last := ""
	for _, n := range notes {
		if isProgress(n) {
			last = n.Body
		}
	}
	return last
}

// isProgress tells whether n shows the update's progress ("N% done").
func isProgress(n proto.Notification) bool {
	return summaryMatches(n.Summary, noteUpdating) && strings.Contains(n.Body, "% done")
}
