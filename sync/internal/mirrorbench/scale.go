package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync/internal/treegen"
)

// scaleSpec is the tree of the scale section: n names, mostly small files as a long-used
// Persistent Storage holds (mail folders, APT lists, browser profiles), no large or sparse file,
// with BenchSpec's symlinks, hard links, xattrs and ACLs.
func scaleSpec(n int, seed uint64) treegen.Spec {
	s := treegen.BenchSpec(n, seed)
	s.LargeEvery, s.SparseEvery = 0, 0
	return s
}

// scaleRun is what one tool did at one scale in one scenario.
type scaleRun struct {
	run
	compare time.Duration // ours: the scan, after which the progress bar's total is known
	changes int64         // ours: what it reported changing (-1 if the summary was not found)
}

// scaleResult is one scale: a full copy onto empty destinations, then two no-op updates.
type scaleResult struct {
	files   int
	entries int // names in the tree, folders included
	stats   treegen.Stats
	gen     time.Duration
	full    [numTools]scaleRun
	noop    [numTools]scaleRun
	noop2   [numTools]scaleRun // a second no-op: ours's xattr cache, if any, filled by the first
	wrong   [numTools]string   // ours and ours612 only: rsync --checksum's output after the no-op
	err     error
	elapsed time.Duration // the whole scale: file systems, tree, runs, checks, clean-up
}

func (s scaleResult) correct() bool {
	if s.err != nil {
		return false
	}
	for _, t := range tools {
		if s.wrong[t] != "" || s.full[t].err != nil || s.noop[t].err != nil || s.noop2[t].err != nil {
			return false
		}
		if t != rsync && (s.noop[t].changes != 0 || s.noop2[t].changes != 0) {
			return false
		}
	}
	return true
}

// runScales runs the scale section, one scale after the other, each on its own file systems
// in a folder of b.tmp, removed before the next scale.
func (b *bench) runScales(ctx context.Context) []scaleResult {
	var out []scaleResult
	for _, n := range b.cfg.scales {
		sb := &bench{cfg: b.cfg, log: b.log, bin: b.bin, self: b.self, tmp: filepath.Join(b.tmp, fmt.Sprintf("scale-%d", n))}
		sb.cfg.files, sb.cfg.keep = n, false // the images of a million files take gigabytes
		start := time.Now()
		r := sb.runScale(ctx, n)
		r.err = errors.Join(r.err, sb.cleanup())
		r.elapsed = time.Since(start)
		out = append(out, r)
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

func (b *bench) runScale(ctx context.Context, n int) (r scaleResult) {
	r.files = n
	if err := os.Mkdir(b.tmp, 0o700); err != nil {
		r.err = err
		return r
	}
	b.logf("scale %d: making the file systems and the tree", n)
	if err := b.makeTree(ctx, scaleSpec(n, b.cfg.seed)); err != nil {
		r.err = fmt.Errorf("scale %d: %w", n, err)
		return r
	}
	r.stats, r.gen, r.entries = b.stats, b.gen, b.stats.Entries()
	// One tool after the other, each with its three runs in a row: while a tool runs, only the
	// source and its own destination are in use, and at a million names two file systems fit
	// in the kernel's caches where four did not (each tool's no-op then came after the two
	// other tools' full copies, which had evicted its destination's inodes).
	for _, t := range tools {
		for _, sc := range []struct {
			name string
			into *[numTools]scaleRun
		}{{"full copy", &r.full}, {"no-op update", &r.noop}, {"no-op again", &r.noop2}} {
			// Each tool writes its own file system: flush what the previous run left to write
			// back, so that it does not slow the next one down.
			unix.Sync()
			run := scaleRun{run: b.runTool(ctx, t), changes: -1}
			if ctx.Err() != nil {
				r.err = ctx.Err()
				return r
			}
			if t != rsync {
				run.compare, run.changes = parseSummary(run.stdout)
			}
			sc.into[t] = run
			b.logf("scale %-8d %-13s %-9s %8.3fs  %6.1f µs/file  CPU %7.3fs %6.1f µs/file  read %7.1f MB  peak RSS %6.1f MiB  %s", n, sc.name, t,
				run.wall.Seconds(), perFile(run.wall, r.entries), run.cpu.Seconds(), perFile(run.cpu, r.entries),
				float64(run.readBytes)/1e6, float64(run.maxRSS)/1024, strings.TrimSpace(lastLines(run.stdout, 1)))
		}
	}
	for _, t := range []tool{ours, ours612} {
		diff, err := b.verify(ctx, b.dst[t].MountPoint)
		if err != nil {
			r.err = err
			return r
		}
		r.wrong[t] = diff
		if diff != "" {
			b.logf("scale %d: %s destination DIFFERS from the source:\n%s", n, t, lastLines(diff, 20))
		}
	}
	return r
}

var (
	compareRe = regexp.MustCompile(`\(compare ([^,]+),`)
	changesRe = regexp.MustCompile(`mirrored: (\d+) created, (\d+) updated, (\d+) metadata only, (\d+) deleted`)
)

// parseSummary reads, from tails-backup sync's summary, the time of the comparison (after
// which the progress bar's total is known) and the number of changes.
func parseSummary(stdout string) (compare time.Duration, changes int64) {
	changes = -1
	if m := compareRe.FindStringSubmatch(stdout); m != nil {
		compare, _ = time.ParseDuration(m[1])
	}
	if m := changesRe.FindStringSubmatch(stdout); m != nil {
		changes = 0
		for _, x := range m[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			changes += n
		}
	}
	return compare, changes
}

// growth is how much the time per name of a run over bigEntries grew from that of a run over
// smallEntries: 1 is flat; 0 when the smaller run took no time.
func growth(big time.Duration, bigEntries int, small time.Duration, smallEntries int) float64 {
	s := perFile(small, smallEntries)
	if s == 0 {
		return 0
	}
	return perFile(big, bigEntries) / s
}

func perFile(d time.Duration, entries int) float64 {
	if entries == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(entries)
}

// printScaleNotes prints, under the table that holds the scales' rows, how flat the time per
// name stayed from the smallest scale to the largest, and how each scale went.
func printScaleNotes(w io.Writer, scales []scaleResult) {
	if len(scales) == 0 {
		return
	}
	first, last := scales[0], scales[len(scales)-1]
	if len(scales) > 1 && first.entries > 0 && last.entries > 0 {
		for _, m := range []struct {
			what string
			of   func(run) time.Duration
		}{{"time", func(x run) time.Duration { return x.wall }}, {"CPU time", func(x run) time.Duration { return x.cpu }}} {
			fmt.Fprintf(w, "\n%s per name at %d names / at %d names:", m.what, last.entries, first.entries)
			for _, t := range []tool{ours, ours612, rsync} {
				fmt.Fprintf(w, "  %s full copy %.2f, no-op %.2f, again %.2f;", t,
					growth(m.of(last.full[t].run), last.entries, m.of(first.full[t].run), first.entries),
					growth(m.of(last.noop[t].run), last.entries, m.of(first.noop[t].run), first.entries),
					growth(m.of(last.noop2[t].run), last.entries, m.of(first.noop2[t].run), first.entries))
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "read from the devices (MB) at %d names, full copy / no-op / again:", last.entries)
		for _, t := range []tool{ours, ours612, rsync} {
			fmt.Fprintf(w, "  %s %.1f / %.1f / %.1f;", t, float64(last.full[t].readBytes)/1e6,
				float64(last.noop[t].readBytes)/1e6, float64(last.noop2[t].readBytes)/1e6)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, `
"total known after" is ours's comparison (tails-backup sync's "compare" time): the progress
bar's total of changes and bytes is known from then on. Each tool makes its full copy and its
two no-op updates in a row, the next tool after it, so that only the source and that tool's
destination are in use at a time. Ours's full copy fills its xattr cache with the files it
copied (if -xattr-cache); the first no-op update adds the rest, the second uses it all. After
them each of ours's destinations is checked with rsync --checksum as above, and the no-ops must
report no change. CPU time is the user and system time of the tool and of the processes it
reaped (wait4's rusage); "read from the devices" is what their reads asked of the block devices
(ru_inblock): a run whose time per name grows while its CPU time per name does not waited, for
the disk if it read much (the trees of the largest scale may no longer fit in the kernel's
caches).
`)
	for _, s := range scales {
		fmt.Fprintf(w, "scale %d took %s (tree generated in %s)\n", s.files, s.elapsed.Round(time.Second), s.gen.Round(time.Second))
	}
	for _, s := range scales {
		if s.err != nil {
			fmt.Fprintf(w, "\n!! scale %d: %v\n", s.files, s.err)
		}
		for _, t := range tools {
			if s.wrong[t] != "" {
				fmt.Fprintf(w, "\n!! scale %d: the %s destination is NOT a copy of the source; rsync --checksum -n -i says:\n%s\n",
					s.files, t, indent(lastLines(s.wrong[t], 30)))
			}
		}
	}
}

func scaleVerdict(s scaleResult, scenario string, t tool, x, r scaleRun) string {
	var bad []string
	if x.err != nil {
		bad = append(bad, "EXITED WITH AN ERROR")
	}
	if r.err != nil {
		bad = append(bad, "RSYNC EXITED WITH AN ERROR")
	}
	if s.wrong[t] != "" {
		bad = append(bad, "COPY DIFFERS FROM SOURCE")
	}
	if t != rsync && strings.Contains(scenario, "no-op") && x.changes != 0 {
		bad = append(bad, fmt.Sprintf("NO-OP CHANGED %d", x.changes))
	}
	if len(bad) > 0 {
		return "FAIL: " + strings.Join(bad, ", ")
	}
	if t != rsync && x.maxRSS >= rssTarget {
		return "FAIL (RSS)"
	}
	if t == rsync {
		return "–"
	}
	return "PASS"
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// parseScales reads -scales: comma-separated counts of names, "" for none.
func parseScales(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n < 100 {
			return nil, fmt.Errorf("-scales: %q is not a number of files of at least 100", f)
		}
		out = append(out, n)
	}
	return out, nil
}
