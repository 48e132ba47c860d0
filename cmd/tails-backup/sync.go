package main

import (
	"context"
	"errors"
	"flag"
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

func runSync(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	var opts tbsync.Options
	var excludes stringList
	progress := fs.Bool("progress", false, "show a progress bar on standard error")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "only report what would change")
	fs.BoolVar(&opts.Checksum, "checksum", false, "compare the content of files of equal size, not just size and mtime")
	fs.Var(&excludes, "exclude", "path relative to the roots that is neither copied nor deleted (repeatable)")
	fs.IntVar(&opts.Workers, "workers", 0, "number of parallel workers (0: automatic)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: tails-backup sync [--dry-run] [--checksum] [--progress] [--exclude PATH]... SRC DST")
		fmt.Fprintln(env.stderr, "Makes DST an exact copy of SRC (like rsync -aHAXS --delete --numeric-ids -x SRC/ DST/),")
		fmt.Fprintln(env.stderr, "never following a symlink inside DST.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("%w: give exactly two directories, SRC and DST", errUsage)
	}
	opts.Exclude = excludes
	log := logrus.New()
	log.Out = env.stderr
	opts.Log = logrus.NewEntry(log).WithField("cmd", "sync")
	if *progress {
		bar := &progressBar{w: env.stderr, terminal: env.isTerminal}
		opts.Progress = bar.update
		opts.ProgressInterval = 200 * time.Millisecond
	}
	rep, err := tbsync.Mirror(ctx, fs.Arg(0), fs.Arg(1), opts)
	printReport(env.stdout, rep, opts.DryRun)
	if err != nil {
		return err
	}
	if rep.ErrorCount > 0 {
		return fmt.Errorf("%d entries could not be mirrored (listed above); fix them and run again", rep.ErrorCount)
	}
	return nil
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

// progressBar draws Mirror's progress on one terminal line, or as a line every few seconds
// when the output is not a terminal.
type progressBar struct {
	w        io.Writer
	terminal bool
	last     time.Time
	started  time.Time
}

func (b *progressBar) update(p tbsync.Progress) {
	now := time.Now()
	if b.started.IsZero() && p.Phase == tbsync.PhaseCopy {
		b.started = now
	}
	if !b.terminal && p.Phase != tbsync.PhaseDone && now.Sub(b.last) < 5*time.Second {
		return
	}
	b.last = now
	var line string
	switch p.Phase {
	case tbsync.PhaseScan:
		line = fmt.Sprintf("comparing: %d changes found so far, %s to copy", p.FilesTotal, tbsync.FormatBytes(p.BytesTotal))
	default:
		frac := 1.0
		if p.BytesTotal > 0 {
			frac = min(1, float64(p.BytesDone)/float64(p.BytesTotal))
		} else if p.FilesTotal > 0 {
			frac = min(1, float64(p.FilesDone)/float64(p.FilesTotal))
		}
		const width = 30
		filled := int(frac * width)
		left := ""
		if elapsed := now.Sub(b.started); p.Phase == tbsync.PhaseCopy && frac > 0.01 && elapsed > time.Second {
			left = fmt.Sprintf(", %s left", (time.Duration(float64(elapsed)/frac) - elapsed).Round(time.Second))
		}
		line = fmt.Sprintf("[%s%s] %3.0f%% %d/%d changes, %s/%s%s  %s",
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100,
			p.FilesDone, p.FilesTotal, tbsync.FormatBytes(p.BytesDone), tbsync.FormatBytes(p.BytesTotal), left, shorten(p.Path, 40))
	}
	if b.terminal {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
		if p.Phase == tbsync.PhaseDone {
			fmt.Fprintln(b.w)
		}
		return
	}
	fmt.Fprintln(b.w, line)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n+3:]
}
