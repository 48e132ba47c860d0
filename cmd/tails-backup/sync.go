package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	tbsync "tails-backup/sync"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

const syncSynopsis = "[--dry-run] [--itemize] [--checksum] [--progress] [--exclude PATH]... SRC DST"

const syncDescription = `Make the folder DST an exact copy of the folder SRC, like
rsync -aHAXS --delete --numeric-ids -x SRC/ DST/: files, folders, symlinks, hard links, owners,
modes, ACLs and other xattrs; what SRC lacks is deleted from DST. A symlink inside DST is never
followed. With --dry-run nothing is written, and each change is listed as rsync -n -i lists it
(>f+++++++++ a new file, cd+++++++++ a new folder, *deleting a deleted entry, .f...p..... a
file whose mode changed...).`

func runSync(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "sync", syncSynopsis, syncDescription)
	var opts tbsync.Options
	var excludes stringList
	progress := fs.Bool("progress", false, "show a progress bar on standard error")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "write nothing: list what would change")
	itemize := fs.Bool("itemize", false, "list each change as rsync -i does (the default with --dry-run)")
	fs.BoolVar(&opts.Checksum, "checksum", false, "compare the content of files of equal size, not just size and mtime")
	fs.Var(&excludes, "exclude", "path relative to the roots that is neither copied nor deleted (repeatable)")
	fs.IntVar(&opts.Workers, "workers", 0, "number of parallel workers (0: automatic)")
	verbose := fs.Bool("verbose", false, "log the details of errors and skipped files")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: give exactly two directories, SRC and DST", errUsage)
	}
	opts.Exclude = excludes
	log := logrus.New()
	log.Out = env.stderr
	if *verbose {
		log.SetLevel(logrus.DebugLevel)
	}
	opts.Log = logrus.NewEntry(log).WithField("cmd", "sync")
	if *itemize || opts.DryRun {
		opts.OnChange = func(c tbsync.Change) { fmt.Fprintln(env.stdout, c.Itemize()) }
	}
	if *progress {
		bar := &progressBar{w: env.stderr, terminal: env.isTerminal}
		opts.Progress = bar.update
		opts.ProgressInterval = 200 * time.Millisecond
	}
	rep, err := tbsync.Mirror(ctx, fs.Arg(0), fs.Arg(1), opts)
	if err != nil {
		log.WithError(err).Debug("sync failed")
		// A Report after a failed scan holds what the copy would have done: only a copy that
		// started (CopyTime) did part of the job.
		if rep.CopyTime > 0 && rep.Changes() > 0 {
			fmt.Fprintf(env.stderr, "tails-backup sync: stopped before the end, after part of the job (%s); each file in %s is either its old or its new version, and running sync again finishes the job\n",
				partialSummary(rep), fs.Arg(1))
		}
		return err
	}
	printReport(env.stdout, rep, opts.DryRun)
	if rep.ErrorCount > 0 {
		return fmt.Errorf("%d entries could not be mirrored (listed above); fix them and run again", rep.ErrorCount)
	}
	return nil
}

// partialSummary says what a run that failed did before it stopped.
func partialSummary(r tbsync.Report) string {
	return fmt.Sprintf("%d created, %d updated, %d metadata only, %d deleted (%s copied)",
		r.Created, r.Updated, r.MetadataOnly, r.Deleted, tbsync.FormatBytes(r.BytesCopied))
}

func printReport(w io.Writer, r tbsync.Report, dryRun bool) {
	verb := "mirrored"
	if dryRun {
		verb = "would mirror (dry run)"
	}
	fmt.Fprintf(w, "%s: %d created, %d updated, %d metadata only, %d deleted, %s copied, %d scanned, %d errors, in %s\n",
		verb, r.Created, r.Updated, r.MetadataOnly, r.Deleted, tbsync.FormatBytes(r.BytesCopied), r.Scanned, r.ErrorCount,
		r.Duration.Round(time.Millisecond))
	if r.Duration > 0 {
		fmt.Fprintf(w, "  (compare %s, copy %s, flush %s)\n", r.ScanTime.Round(time.Millisecond),
			r.CopyTime.Round(time.Millisecond), r.FlushTime.Round(time.Millisecond))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %v\n", e)
	}
	if int64(len(r.Errors)) < r.ErrorCount {
		fmt.Fprintf(w, "  ... and %d more errors\n", r.ErrorCount-int64(len(r.Errors)))
	}
}
