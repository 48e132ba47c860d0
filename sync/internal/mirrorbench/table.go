package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"tails-backup/sync/internal/noxattrat"
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

func medianOf(d []time.Duration) time.Duration {
	runs := make([]run, len(d))
	for i, x := range d {
		runs[i].wall = x
	}
	return median(runs)
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

// verdict is the last column of the row of tool t: correctness first, then the targets.
func verdict(r result, t tool, toRsync, toFloor float64, oursRSS int64) string {
	var bad []string
	for _, x := range []tool{t, rsync} {
		if len(r.failed[x]) > 0 {
			bad = append(bad, fmt.Sprintf("%s EXITED WITH AN ERROR", x))
		}
		if r.wrong[x] != "" {
			bad = append(bad, fmt.Sprintf("%s COPY DIFFERS FROM SOURCE", x))
		}
	}
	if len(bad) > 0 {
		return "FAIL: " + strings.Join(bad, ", ")
	}
	if toRsync > r.target {
		bad = append(bad, "time/rsync")
	}
	if r.floorTarget > 0 && toFloor > r.floorTarget {
		bad = append(bad, "time/floor")
	}
	if oursRSS >= rssTarget {
		bad = append(bad, "RSS")
	}
	if len(bad) > 0 {
		return "FAIL (" + strings.Join(bad, ", ") + ")"
	}
	return "PASS"
}

// printTable prints one table: each scenario of the generated tree (medians of the repetitions,
// with their floors), then each scale's full copy and no-op updates (one run each), each on
// both kernel paths, ours against rsync; then the peers and the notes.
func printTable(w io.Writer, b *bench, results []result, scales []scaleResult) {
	printHeader(w, b)
	// A Markdown table, aligned for the terminal, so that it can be pasted as it is.
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| names\t| scenario\t| path\t| ours (s)\t| rsync (s)\t| ours/rsync\t| target\t| floor (s)\t| ours/floor\t| target\t| floor 2 (s)\t| ours/floor 2\t| µs/name\t| total known after (s)\t| ours peak RSS (MiB)\t| rsync peak RSS (MiB)\t| result\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	st := b.stats
	names := st.Files + st.HardLinks + st.Symlinks + st.Dirs
	for _, r := range results {
		mr, mf := median(r.runs[rsync]), medianOf(r.floors)
		for _, t := range []tool{ours, ours612} {
			mo := median(r.runs[t])
			toRsync, toFloor := ratio(mo, mr), ratio(mo, mf)
			oursRSS := peak(r.runs[t], func(x run) int64 { return x.maxRSS })
			floorTarget := "–"
			if r.floorTarget > 0 {
				floorTarget = fmt.Sprintf("≤ %.2f", r.floorTarget)
			}
			floor2, toFloor2 := "–", "–"
			if len(r.floors2) > 0 {
				mf2 := medianOf(r.floors2)
				floor2 = fmt.Sprintf("%.3f %s", mf2.Seconds(), r.floor2Name)
				toFloor2 = fmt.Sprintf("%.2f", ratio(mo, mf2))
			}
			fmt.Fprintf(tw, "| %d\t| %s\t| %s\t| %.3f\t| %.3f\t| %.2f\t| ≤ %.1f\t| %.3f %s\t| %.2f\t| %s\t| %s\t| %s\t| %.1f\t| –\t| %s\t| %s\t| %s\t|\n",
				names, r.name, pathName(t), mo.Seconds(), mr.Seconds(), toRsync, r.target, mf.Seconds(), r.floorName, toFloor,
				floorTarget, floor2, toFloor2, perFile(mo, names), mib(oursRSS), mib(peak(r.runs[rsync], func(x run) int64 { return x.maxRSS })),
				verdict(r, t, toRsync, toFloor, oursRSS))
		}
	}
	for _, s := range scales {
		if s.err != nil && s.entries == 0 {
			fmt.Fprintf(tw, "| %d\t| scale\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| –\t| FAIL: %s\t|\n", s.files, oneLine(s.err.Error()))
			continue
		}
		for _, sc := range []struct {
			name string
			runs [numTools]scaleRun
		}{{"scale: full copy", s.full}, {"scale: no-op update", s.noop}, {"scale: no-op again", s.noop2}} {
			r := sc.runs[rsync]
			for _, t := range []tool{ours, ours612} {
				x := sc.runs[t]
				fmt.Fprintf(tw, "| %d\t| %s\t| %s\t| %.3f\t| %.3f\t| %.2f\t| –\t| –\t| –\t| –\t| –\t| –\t| %.1f\t| %.2f (%.0f%%)\t| %s\t| %s\t| %s\t|\n",
					s.entries, sc.name, pathName(t), x.wall.Seconds(), r.wall.Seconds(), ratio(x.wall, r.wall),
					perFile(x.wall, s.entries), x.compare.Seconds(), 100*ratio(x.compare, x.wall), mib(x.maxRSS), mib(r.maxRSS),
					scaleVerdict(s, sc.name, t, x, r))
			}
		}
	}
	tw.Flush()
	printPeers(w, results)
	printNotes(w, b, results)
	printScaleNotes(w, scales)
}

// printPeers prints the peers' times, for reference, next to ours's and rsync's.
func printPeers(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	header := false
	for _, r := range results {
		for p := range numPeers {
			if len(r.peerRuns[p]) == 0 {
				continue
			}
			if !header {
				fmt.Fprintln(w, "\nPeers (reference, no target), same repetitions:")
				fmt.Fprintln(tw, "| scenario\t| peer\t| time (s)\t| runs (s)\t| ours/peer\t| ours 6.12/peer\t| rsync/peer\t| peak RSS (MiB)\t| exact copy\t|")
				fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
				header = true
			}
			mp := median(r.peerRuns[p])
			var runs []string
			for _, x := range r.peerRuns[p] {
				runs = append(runs, fmt.Sprintf("%.2f", x.wall.Seconds()))
			}
			exact := "yes"
			if r.peerWrong[p] != "" {
				exact = fmt.Sprintf("no (%d lines from rsync -n -i --checksum)", strings.Count(strings.TrimRight(r.peerWrong[p], "\n"), "\n")+1)
			}
			fmt.Fprintf(tw, "| %s\t| %s\t| %.3f\t| %s\t| %.2f\t| %.2f\t| %.2f\t| %s\t| %s\t|\n", r.name, p, mp.Seconds(),
				strings.Join(runs, ", "), ratio(median(r.runs[ours]), mp), ratio(median(r.runs[ours612]), mp),
				ratio(median(r.runs[rsync]), mp), mib(peak(r.peerRuns[p], func(x run) int64 { return x.maxRSS })), exact)
		}
	}
	tw.Flush()
}

func pathName(t tool) string {
	if t == ours612 {
		return "6.12"
	}
	return "this kernel"
}

// kernelHasXattrAt tells whether listxattrat (Linux 6.13) exists here; if not, both paths are
// the 6.12 one.
func kernelHasXattrAt() bool {
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	p, _ := unix.BytePtrFromString(".")
	_, _, errno := unix.Syscall6(noxattrat.Listxattrat, uintptr(fd), uintptr(unsafe.Pointer(p)), 0, 0, 0, 0)
	return errno != unix.ENOSYS
}

func printHeader(w io.Writer, b *bench) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	ver, _ := exec.Command("rsync", "--version").Output()
	firstLine, _, _ := strings.Cut(string(ver), "\n")
	s := b.stats
	fmt.Fprintf(w, "\nmirrorbench: %d files (%d regular, %d hard-link names, %d symlinks, %d large, %d sparse), %d dirs,\n",
		s.Files+s.HardLinks+s.Symlinks, s.Files, s.HardLinks, s.Symlinks, s.Large, s.Sparse, s.Dirs)
	fmt.Fprintf(w, "  %.2f GiB of data (%.2f GiB apparent), %d with xattrs, %d with ACLs; seed %d, %d repetitions (%d of each update), generated in %s\n",
		float64(s.DataBytes)/(1<<30), float64(s.ApparentBytes)/(1<<30), s.Xattrs, s.ACLs, b.cfg.seed, b.cfg.reps, b.cfg.updateReps,
		b.gen.Round(time.Second))
	fmt.Fprintf(w, "  Linux %s (*xattrat system calls: %v), %d CPUs, %s, ours: %s (xattr cache: %v)\n", unix.ByteSliceToString(uts.Release[:]),
		kernelHasXattrAt(), runtime.NumCPU(), strings.TrimSpace(firstLine), b.bin, b.cfg.xattrCache)
	var load [3]float64
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(l), &load[0], &load[1], &load[2])
	}
	fmt.Fprintf(w, "  load average at the end: %.2f %.2f %.2f\n\n", load[0], load[1], load[2])
}

func printNotes(w io.Writer, b *bench, results []result) {
	fmt.Fprint(w, `
Times are medians of the repetitions (the updates, a second each, are repeated more: see the
header), wall clock; which tool goes first rotates between repetitions.
ours = tails-backup sync SRC DST, which ends with syncfs(2) of DST (with -xattr-cache,
the header says, also --xattr-cache DST/tails-backup-cache --exclude tails-backup-cache: the full
copy fills the cache with the files it copied, the first update with the rest (symlinks, hard
links), the next ones use it); rsync = rsync -aHAXS
--delete --numeric-ids SRC/ DST/ followed by sync -f DST, timed together, so that both have flushed
DST. Path "6.12" is ours with listxattrat/getxattrat (and setxattrat/removexattrat) refused with
ENOSYS by a seccomp filter, as on Tails 7's Linux 6.12; "this kernel" uses them if the kernel has
them (the header says). Source and each destination are separate loop-mounted ext4 file systems
(acl,user_xattr), one destination per tool. Floors, timed in the same repetition: "statx" is a
parallel walk (2 goroutines per CPU) listing every folder and statx(2)ing every entry of the source
and of ours's destination, after the tools ran; "write" is writing the tree's data bytes
sequentially into one file on the empty destination file system, then fdatasync(2); floor 2,
"create", is creating the same inodes (folders, files, symlinks, then the hard links) on an empty
file system, 2 goroutines per CPU, each file's bytes (read into memory beforehand) written whole
in one write(2), then syncfs(2): no owner, times, xattrs or ACLs, no temporary name nor rename.
Peers: cp -a SRC/. DST/ and "tar pipe", tar -C SRC --xattrs --xattrs-include='*' --acls --sparse
--numeric-owner -cf - . | tar -C DST (same flags) -xf -, each followed by sync -f DST, on an
empty file system of their own, after ours, rsync and the floors; their first copy is checked as
ours is, for information only.
Caches are warm for both (nothing is dropped); all dirty data is flushed with sync(2) before each
timed run. Peak RSS is ru_maxrss of each command, from /usr/bin/time -f %M (wait4): for rsync, whose
generator and receiver are reaped by rsync itself, the kernel folds their peaks in, so it is the
peak of the largest rsync process (the largest sum over rsync's processes, sampled every 20 ms
from /proc, is in the log above). Targets (issue 16): ours/rsync ≤ 0.6 for the full copy, ≤ 0.3 for the
updates; the full copy within 1.25× the write floor, the no-op update within 1.5× the statx floor;
ours peak RSS < 64 MiB. After each scenario each destination is checked against the source with
rsync -aHAXS --numeric-ids --delete -n -i --checksum SRC/ DST/ (tails-backup-cache excluded):
any output is a failure.
`)
	fmt.Fprintf(w, "\nThe scenarios took %s, set-up included.\n", b.elapsed.Round(time.Second))
	fmt.Fprintln(w, "\nruns (seconds, in order ours|ours-6.12|rsync|floor[|floor 2]):")
	for _, r := range results {
		var parts []string
		for i := range r.runs[rsync] {
			if i < len(r.runs[ours]) && i < len(r.runs[ours612]) && i < len(r.floors) {
				part := fmt.Sprintf("%.2f|%.2f|%.2f|%.2f", r.runs[ours][i].wall.Seconds(),
					r.runs[ours612][i].wall.Seconds(), r.runs[rsync][i].wall.Seconds(), r.floors[i].Seconds())
				if i < len(r.floors2) {
					part += fmt.Sprintf("|%.2f", r.floors2[i].Seconds())
				}
				parts = append(parts, part)
			}
		}
		fmt.Fprintf(w, "  %-24s %s   (%s)\n", r.name, strings.Join(parts, "  "), strings.Join(unique(r.prepared), "; "))
	}
	for _, r := range results {
		for _, t := range tools {
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
