// Command mirrorbench times `tails-backup sync` against `rsync -aHAXS --delete --numeric-ids` on the
// same synthetic tree (treegen.Bench), source and destinations on separate loop-mounted ext4 file
// systems, for a full copy, a no-op update, and updates after 1% data and 1% metadata changes. Ours
// runs twice, on this kernel's path and on Tails 7's Linux 6.12 path (the *xattrat system calls
// refused by a seccomp filter), each onto its own destination; each scenario's physical floor (a
// parallel statx walk of both trees for the updates, writing the data sequentially into one file
// for the full copy) is timed in the same repetition, and for the full copy a second one (creating
// the same inodes with their bytes in parallel, nothing else, then syncfs) and two reference
// peers (cp -a, tar | tar). It prints one table of ratios to rsync and to the floors, and exits 1 if a destination is not an exact copy of the source afterwards (or a
// tool failed); missed speed or memory targets only show as FAIL in the table. Run as root:
//
//	go run ./sync/internal/mirrorbench [-files N] [-reps R] [-update-reps U] [-scales N,N,...] [-bin PATH] [-seed S] [-keep]
//
// The scale section then mirrors trees of mostly small files of each -scales size (full copy, then
// a no-op update, one run of each tool) and reports the time per name, ours's peak RSS and when
// its progress total was known.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"tails-backup/sync/internal/noxattrat"
)

// config is the command line.
type config struct {
	files int
	reps  int
	// updateReps: repetitions of each update scenario; at most 500, so that the seeds of the
	// data and the metadata changes (seed*1000+rep and seed*1000+500+rep) never meet
	updateReps int
	bin        string
	keep       bool
	seed       uint64
	// scales are the sizes of the scale section's trees, in files.
	scales []int
	// xattrCache runs ours with an xattr cache on its destination (--xattr-cache).
	xattrCache bool
}

func main() { os.Exit(mainStatus()) }

// noXattrAtFlag, as the first argument, makes this program install the seccomp filter of
// noxattrat and execute the rest of its arguments: how the benchmark runs the engine on the path
// of Tails 7's Linux 6.12 (no *xattrat system calls) on any kernel, without a switch in the product.
const noXattrAtFlag = "-exec-with-xattrat-refused"

// execRefusingXattrAt never returns unless it fails.
func execRefusingXattrAt(argv []string) int {
	if err := noxattrat.Install(); err != nil {
		fmt.Fprintf(os.Stderr, "mirrorbench: %v\n", err)
		return 1
	}
	err := syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintf(os.Stderr, "mirrorbench: execute %s: %v\n", argv[0], err)
	return 1
}

func mainStatus() int {
	if len(os.Args) > 2 && os.Args[1] == noXattrAtFlag {
		return execRefusingXattrAt(os.Args[2:])
	}
	var cfg config
	flag.IntVar(&cfg.files, "files", 30000, "number of files in the generated tree of the scenarios")
	scales := flag.String("scales", "100000,300000,1000000", "comma-separated numbers of files of the scale section's trees (mostly small files), e.g. 100000,300000,1000000; empty for none")
	flag.IntVar(&cfg.reps, "reps", 3, "repetitions of the full copy; the median is reported")
	flag.IntVar(&cfg.updateReps, "update-reps", 0, "repetitions of each update scenario (0: 5 times -reps); the median is reported")
	flag.StringVar(&cfg.bin, "bin", "", "tails-backup binary to measure (default: go build ./cmd/tails-backup into a temporary directory)")
	flag.BoolVar(&cfg.xattrCache, "xattr-cache", true, "run ours with --xattr-cache DST/"+cacheDirName+" (excluded from the mirror and the checks)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the image files (unmounted) for inspection")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the generated tree and of the changes")
	flag.Parse()
	var err error
	if cfg.scales, err = parseScales(*scales); err != nil {
		fmt.Fprintf(os.Stderr, "mirrorbench: %v\n", err)
		return 2
	}
	if cfg.updateReps == 0 {
		cfg.updateReps = 5 * cfg.reps
	}
	if cfg.files < 100 || cfg.reps < 1 || cfg.updateReps < 1 || cfg.updateReps > 500 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "mirrorbench: -files must be at least 100, -reps at least 1, -update-reps from 1 to 500, and no arguments")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "mirrorbench: run as root: it mounts ext4 images and sets owners, ACLs and trusted xattrs")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once, clean-up or not
	}()

	b := &bench{cfg: cfg, log: os.Stderr}
	results, err := b.run(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "mirrorbench: interrupted; the images were unmounted and removed")
		return 1
	}
	if len(results) > 0 || len(b.scales) > 0 {
		printTable(os.Stdout, b, results, b.scales)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mirrorbench: %v\n", err)
		return 1
	}
	for _, r := range results {
		if !r.correct() {
			return 1
		}
	}
	for _, s := range b.scales {
		if !s.correct() {
			return 1
		}
	}
	return 0
}
