package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"tails-backup/l10n"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	tbsync "tails-backup/sync"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

const syncSynopsis = "[--dry-run] [--itemize] [--checksum] [--progress] [--exclude PATH]... [--xattr-cache DIR] SRC DST"

const syncDescription = `Make the folder DST an exact copy of the folder SRC, like
rsync -aHAXS --delete --numeric-ids -x SRC/ DST/: files, folders, symlinks, hard links, owners,
modes, ACLs and other xattrs; what SRC lacks is deleted from DST. A symlink inside DST is never
followed. With --dry-run nothing is written, and each change is listed as rsync -n -i lists it
(>f+++++++++ a new file, cd+++++++++ a new folder, *deleting a deleted entry, .f...p..... a
file whose mode changed...).`

func runSync(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "sync", syncSynopsis, env.loc.Tr(syncDescription))
	var opts tbsync.Options
	var excludes stringList
	progress := fs.Bool("progress", false, env.loc.Tr("show a progress bar on standard error"))
	fs.BoolVar(&opts.DryRun, "dry-run", false, env.loc.Tr("write nothing: list what would change"))
	itemize := fs.Bool("itemize", false, env.loc.Tr("list each change as rsync -i does (the default with --dry-run)"))
	fs.BoolVar(&opts.Checksum, "checksum", false, env.loc.Tr("compare the content of files of equal size, not just size and mtime"))
	fs.Var(&excludes, "exclude", env.loc.Tr("path relative to the roots that is neither copied nor deleted (repeatable)"))
	fs.IntVar(&opts.Workers, "workers", 0, env.loc.Tr("number of parallel workers (0: automatic)"))
	verbose := fs.Bool("verbose", false, env.loc.Tr("log the details of errors and skipped files"))
	xattrCache := fs.String("xattr-cache", "", env.loc.Tr("folder that remembers which entries had equal xattrs, so that the next run reads only those that changed (outside DST, or excluded)"))
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give exactly two directories, SRC and DST"))
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
		bar := &progressBar{w: env.stderr, loc: env.loc, terminal: env.isTerminal}
		opts.Progress = bar.update
		opts.ProgressInterval = 200 * time.Millisecond
	}
	if *xattrCache != "" {
		c, closeCache, err := openXattrCache(*xattrCache, fs.Arg(0), fs.Arg(1))
		if err != nil {
			return err
		}
		defer closeCache()
		if why := c.Unused(); why != "" {
			opts.Log.WithField("reason", why).Debug("xattr cache not used")
		}
		opts.XattrCache = c
	}
	rep, err := tbsync.Mirror(ctx, fs.Arg(0), fs.Arg(1), opts)
	if err == nil {
		err = rep.XattrCacheErr
	}
	if err != nil {
		log.WithError(err).Debug("sync failed")
		// A Report after a failed scan holds what the copy would have done: only a copy that
		// started (CopyTime) did part of the job.
		if rep.CopyTime > 0 && rep.Changes() > 0 {
			fmt.Fprintln(env.stderr, env.loc.Tr("tails-backup sync: stopped before the end, after part of the job (%[1]s); each file in %[2]s is either its old or its new version, and running sync again finishes the job",
				partialSummary(env.loc, rep), fs.Arg(1)))
		}
		return err
	}
	printReport(env.loc, env.stdout, rep, opts.DryRun)
	if rep.ErrorCount > 0 {
		return errors.New(env.loc.TrN("%d entry could not be mirrored (listed above); fix it and run again",
			"%d entries could not be mirrored (listed above); fix them and run again", clampInt(rep.ErrorCount), rep.ErrorCount))
	}
	return nil
}

// partialSummary says what a run that failed did before it stopped.
func partialSummary(loc *l10n.Locale, r tbsync.Report) string {
	return loc.Tr("%[1]d created, %[2]d updated, %[3]d metadata only, %[4]d deleted (%[5]s copied)",
		r.Created, r.Updated, r.MetadataOnly, r.Deleted, loc.Size(r.BytesCopied))
}

func printReport(loc *l10n.Locale, w io.Writer, r tbsync.Report, dryRun bool) {
	// TRANSLATORS: what the sync command did, counted: entries created, updated, with new
	// metadata only, deleted; %[5]s bytes copied; entries scanned, errors; %[8]s is a duration ("1.5s").
	format := loc.TrN("mirrored: %[1]d created, %[2]d updated, %[3]d metadata only, %[4]d deleted, %[5]s copied, %[6]d scanned, %[7]d error, in %[8]s",
		"mirrored: %[1]d created, %[2]d updated, %[3]d metadata only, %[4]d deleted, %[5]s copied, %[6]d scanned, %[7]d errors, in %[8]s", clampInt(r.ErrorCount))
	if dryRun {
		format = loc.TrN("would mirror (dry run): %[1]d created, %[2]d updated, %[3]d metadata only, %[4]d deleted, %[5]s copied, %[6]d scanned, %[7]d error, in %[8]s",
			"would mirror (dry run): %[1]d created, %[2]d updated, %[3]d metadata only, %[4]d deleted, %[5]s copied, %[6]d scanned, %[7]d errors, in %[8]s", clampInt(r.ErrorCount))
	}
	fmt.Fprintf(w, format+"\n", r.Created, r.Updated, r.MetadataOnly, r.Deleted, loc.Size(r.BytesCopied), r.Scanned, r.ErrorCount,
		r.Duration.Round(time.Millisecond))
	if r.Duration > 0 {
		fmt.Fprintln(w, loc.Tr("  (compare %[1]s, copy %[2]s, flush %[3]s)", r.ScanTime.Round(time.Millisecond),
			r.CopyTime.Round(time.Millisecond), r.FlushTime.Round(time.Millisecond)))
	}
	if r.BytesResumed > 0 {
		// TRANSLATORS: %s is an amount of data ("80.0 MiB") that an interrupted earlier run had
		// copied, which this run read back, found right and did not copy again.
		fmt.Fprintln(w, loc.Tr("  (%s of interrupted copies checked and kept)", loc.Size(r.BytesResumed)))
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, loc.Tr("  error: %v", e))
	}
	if int64(len(r.Errors)) < r.ErrorCount {
		more := r.ErrorCount - int64(len(r.Errors))
		fmt.Fprintln(w, loc.TrN("  ... and %d more error", "  ... and %d more errors", clampInt(more), more))
	}
}

// openXattrCache creates the cache folder dir if needed (0700: it describes the files of the
// backup) and loads the cache for mirroring src onto dst; the returned function closes the folder.
func openXattrCache(dir, src, dst string) (*tbsync.XattrCache, func(), error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("xattr cache: %w", err)
	}
	var fds [3]int
	for i, p := range []string{dir, src, dst} {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, f := range fds[:i] {
				unix.Close(f)
			}
			return nil, nil, fmt.Errorf("open %s: %w", p, err)
		}
		fds[i] = fd
	}
	defer unix.Close(fds[1])
	defer unix.Close(fds[2])
	c, err := tbsync.OpenXattrCache(fds[0], fds[1], fds[2])
	if err != nil {
		unix.Close(fds[0])
		return nil, nil, err
	}
	return c, func() { unix.Close(fds[0]) }, nil
}
