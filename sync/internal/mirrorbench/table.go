package main

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// rssTarget is the most memory our engine may use, whatever the tree.
const rssTarget = 64 << 10 // KiB

func median(runs []run) time.Duration {
	if len(runs) == 0 {
		return 0
	}
	d := make([]time.Duration, len(runs))
	for i, r := range runs {
		d[i] = r.wall
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

func peak(runs []run, f func(run) int64) int64 {
	var m int64
	for _, r := range runs {
		m = max(m, f(r))
	}
	return m
}

func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }

// verdict is the last column: correctness first, then the targets.
func verdict(r result, ratio float64, oursRSS int64) string {
	var bad []string
	for _, t := range []tool{ours, rsync} {
		if len(r.failed[t]) > 0 {
			bad = append(bad, fmt.Sprintf("%s EXITED WITH AN ERROR", t))
		}
		if r.wrong[t] != "" {
			bad = append(bad, fmt.Sprintf("%s COPY DIFFERS FROM SOURCE", t))
		}
	}
	if len(bad) > 0 {
		return "FAIL: " + strings.Join(bad, ", ")
	}
	if ratio > r.target {
		bad = append(bad, "time")
	}
	if oursRSS >= rssTarget {
		bad = append(bad, "RSS")
	}
	if len(bad) > 0 {
		return "FAIL (" + strings.Join(bad, ", ") + ")"
	}
	return "PASS"
}

func printTable(w io.Writer, b *bench, results []result) {
	printHeader(w, b)
	// A Markdown table, aligned for the terminal, so that it can be pasted as it is.
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| scenario\t| ours (s)\t| rsync (s)\t| ours/rsync\t| target\t| ours peak RSS (MiB)\t| rsync peak RSS (MiB)\t| rsync Σ RSS (MiB)\t| result\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, r := range results {
		mo, mr := median(r.runs[ours]), median(r.runs[rsync])
		ratio := 0.0
		if mr > 0 {
			ratio = mo.Seconds() / mr.Seconds()
		}
		oursRSS := peak(r.runs[ours], func(x run) int64 { return x.maxRSS })
		fmt.Fprintf(tw, "| %s\t| %.3f\t| %.3f\t| %.2f\t| ≤ %.1f\t| %s\t| %s\t| %s\t| %s\t|\n", r.name, mo.Seconds(), mr.Seconds(), ratio,
			r.target, mib(oursRSS), mib(peak(r.runs[rsync], func(x run) int64 { return x.maxRSS })),
			mib(peak(r.runs[rsync], func(x run) int64 { return x.sumRSS })), verdict(r, ratio, oursRSS))
	}
	tw.Flush()
	printNotes(w, b, results)
}

func printHeader(w io.Writer, b *bench) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	ver, _ := exec.Command("rsync", "--version").Output()
	firstLine, _, _ := strings.Cut(string(ver), "\n")
	s := b.stats
	fmt.Fprintf(w, "\nmirrorbench: %d files (%d regular, %d hard-link names, %d symlinks, %d large, %d sparse), %d dirs,\n",
		s.Files+s.HardLinks+s.Symlinks, s.Files, s.HardLinks, s.Symlinks, s.Large, s.Sparse, s.Dirs)
	fmt.Fprintf(w, "  %.2f GiB of data (%.2f GiB apparent), %d with xattrs, %d with ACLs; seed %d, %d repetitions, generated in %s\n",
		float64(s.DataBytes)/(1<<30), float64(s.ApparentBytes)/(1<<30), s.Xattrs, s.ACLs, b.cfg.seed, b.cfg.reps,
		b.gen.Round(time.Second))
	fmt.Fprintf(w, "  Linux %s, %d CPUs, %s, ours: %s\n\n", unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(),
		strings.TrimSpace(firstLine), b.bin)
}

func printNotes(w io.Writer, b *bench, results []result) {
	fmt.Fprint(w, `
Times are medians of the repetitions, wall clock; which tool goes first alternates between
repetitions. ours = tails-backup sync SRC DST, which ends with syncfs(2) of DST; rsync = rsync -aHAXS
--delete --numeric-ids SRC/ DST/ followed by sync -f DST, timed together, so that both have flushed
DST. Source and each destination are separate loop-mounted ext4 file systems (acl,user_xattr).
Caches are warm for both (nothing is dropped); all dirty data is flushed with sync(2) before each
timed run. Peak RSS is ru_maxrss of each command, from /usr/bin/time -f %M (wait4): for rsync, whose
generator and receiver are reaped by rsync itself, the kernel folds their peaks in, so it is the
peak of the largest rsync process; "rsync Σ RSS" is the largest sum over rsync's processes, sampled
every 20 ms from /proc. Targets: ours/rsync ≤ 0.8 for the full copy, ≤ 0.5 for the updates, ours
peak RSS < 64 MiB. After each scenario each destination is checked against the source with
rsync -aHAXS --numeric-ids --delete -n -i --checksum SRC/ DST/: any output is a failure.
`)
	fmt.Fprintln(w, "\nruns (seconds, in order ours|rsync):")
	for _, r := range results {
		var parts []string
		for i := range r.runs[ours] {
			if i < len(r.runs[rsync]) {
				parts = append(parts, fmt.Sprintf("%.2f|%.2f", r.runs[ours][i].wall.Seconds(), r.runs[rsync][i].wall.Seconds()))
			}
		}
		fmt.Fprintf(w, "  %-24s %s   (%s)\n", r.name, strings.Join(parts, "  "), strings.Join(unique(r.prepared), "; "))
	}
	for _, r := range results {
		for _, t := range []tool{ours, rsync} {
			for _, e := range unique(r.failed[t]) {
				fmt.Fprintf(w, "\n!! %s: %s failed: %s\n", r.name, t, e)
			}
			if r.wrong[t] != "" {
				fmt.Fprintf(w, "\n!! %s: the %s destination is NOT a copy of the source; rsync --checksum -n -i says:\n%s\n",
					r.name, t, indent(lastLines(r.wrong[t], 30)))
			}
		}
	}
}

func unique(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
