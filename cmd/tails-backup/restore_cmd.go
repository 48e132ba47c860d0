package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/quiesce"
	"tails-backup/session"
	tbsync "tails-backup/sync"
	"tails-backup/wire"
)

const restoreSynopsis = "[--yes] [--skip-close] [--state FILE] [--helper-command CMD] [DEVICE]"

const restoreDescription = `Restore the Persistent Storage of this Tails from a backup Tails made by tails-backup, for
example after installing Tails on a new USB stick because the old one was lost or broken. The
backup's Persistent Storage is unlocked (you type its passphrase) and copied into the Persistent
Storage of this Tails, which then holds what the backup holds: files that are not on the backup
are deleted. The backup itself is not changed; it is locked again at the end if it was locked.

Before copying, it says what the backup is and asks for confirmation: answer y, or, for a backup
made from another Tails (the one you lost), type restore. Applications that use the data being
replaced (Thunderbird, Tor Browser, Electrum...) are asked to close first, or their data is left
as it is. The tails-backup folder of this Tails (its pairings) is kept as it is.

Run it first, then plug in the backup: while it runs, Tails Backup does not update your backup
automatically (an update would overwrite what you want to get back). Without DEVICE, it waits
for a backup Tails to be plugged in, up to 10 minutes, unless one already is.

DEVICE is the backup stick's device, e.g. /dev/sdb; it may be left out when it is the only Tails
stick plugged in besides this one. Restart Tails afterwards: the features of the Persistent
Storage are turned on at startup.

Exit status: 0 when everything was restored, 1 otherwise, 2 for a usage error.`

// runRestore is `tails-backup restore`: run as amnesia in the desktop session.
func runRestore(ctx context.Context, env *environment, args []string) error {
	return restoreWith(ctx, env, args, nil)
}

// restoreWith runs the command with q finding and closing the applications; nil is the real
// one, on this Tails' Persistent Storage.
func restoreWith(ctx context.Context, env *environment, args []string, q quiesce.Quiescer) error {
	return restoreRun(ctx, env, args, restoreOptions{quiescer: q, plugWait: session.RestorePlugWait})
}

// restoreOptions are what tests change in the command.
type restoreOptions struct {
	quiescer quiesce.Quiescer // nil: the real one
	plugWait time.Duration    // how long to wait for a backup to be plugged in
}

// restoreRun is the command line of session.Restore, and its terminal.
func restoreRun(ctx context.Context, env *environment, args []string, opts restoreOptions) error {
	fs := newFlagSet(env, "restore", restoreSynopsis, env.loc.Tr(restoreDescription))
	yes := fs.Bool("yes", false, env.loc.Tr("restore without asking for confirmation (for scripts)"))
	skipClose := fs.Bool("skip-close", false, env.loc.Tr("leave the data of open applications as it is instead of asking to close them"))
	statePath, helperCmd, verbose := sessionFlags(env, fs)
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give at most one device, e.g. 'tails-backup restore /dev/sdb'"))
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "restore")
	helper, err := helperClient(env.loc, *helperCmd, log)
	if err != nil {
		return err
	}
	q := opts.quiescer
	if q == nil {
		pq := quiesce.NewProcQuiescer(log.WithField("component", "quiesce"))
		pq.PersistentStorage = sys.markerRoot
		q = pq
	}
	connect, closeDisks := connectDisks(env.loc, sys, log, "restore", false)
	defer closeDisks()
	out := &restoreOutput{bar: &progressBar{w: env.stderr, loc: env.loc, terminal: env.isTerminal}, findings: &verifyFindings{w: env.stdout, loc: env.loc}}
	r := &session.Restore{
		Connect: connect, Boot: sys.boot, OwnRoot: sys.markerRoot, Store: storeAt(env.loc, *statePath, sys, log),
		Helper: helper, Asker: pinentry.NewPinentry(log.WithField("component", "pinentry")), Quiescer: q,
		Now: sys.now, Log: log, Loc: env.loc,
		UI:     &restoreTerminal{terminal: terminal{env: env}, in: &lineReader{r: env.stdin}, out: out},
		Device: fs.Arg(0), PlugWait: opts.plugWait, Yes: *yes, SkipClose: *skipClose,
	}
	done, err := r.Run(ctx)
	if err != nil {
		return err
	}
	restoreSummary(env.loc, env.stdout, done.Report, done.Skipped)
	return session.RestoreResultIn(env.loc, done.Report)
}

// restoreTerminal asks and shows a restore's questions and progress on the terminal.
type restoreTerminal struct {
	terminal
	in  *lineReader
	out *restoreOutput
}

// Sticks lists the Tails sticks plugged in, for the person to say which one.
func (t *restoreTerminal) Sticks(cands []session.Stick, _ *pairing.State) {
	w := t.env.stdout
	fmt.Fprintln(w, t.env.loc.Tr("Tails sticks plugged in, besides the one this Tails runs from:"))
	for _, c := range cands {
		fmt.Fprintf(w, "  %-10s %s, %s\n", session.Device(c.Stick), session.Label(c.Stick), sizeText(t.env.loc, session.Size(c.Stick)))
	}
}

func (t *restoreTerminal) Event(ev wire.Event)       { t.out.event(ev) }
func (t *restoreTerminal) EndProgress(complete bool) { t.out.endBar(complete) }

// restoreOutput shows the helper's events: the copy's progress on one line, then the
// problems of the restored Persistent Storage.
type restoreOutput struct {
	bar      *progressBar
	findings *verifyFindings
	last     tbsync.Progress
	drawn    bool
	ended    bool
}

func (r *restoreOutput) event(ev wire.Event) {
	switch ev.Phase {
	case wire.PhaseProblem:
		r.endBar(true)
		r.findings.event(ev)
	case string(tbsync.PhaseScan), string(tbsync.PhaseCopy), string(tbsync.PhaseDone):
		if r.ended {
			return
		}
		p := tbsync.Progress{Phase: tbsync.Phase(ev.Phase), FilesDone: ev.FilesDone, FilesTotal: ev.FilesTotal,
			BytesDone: ev.BytesDone, BytesTotal: ev.BytesTotal, Path: oneLine(ev.Path)}
		r.bar.update(p)
		r.last, r.drawn = p, true
		r.ended = p.Phase == tbsync.PhaseDone
	}
}

// endBar ends the progress line: at 100% when the copy is complete (the helper does not send
// every event, so its last one may be missing), else just ending the line.
func (r *restoreOutput) endBar(complete bool) {
	if r.ended || !r.drawn {
		r.ended = true
		return
	}
	r.ended = true
	if complete {
		p := r.last
		p.Phase, p.FilesDone, p.BytesDone, p.Path = tbsync.PhaseDone, p.FilesTotal, p.BytesTotal, ""
		r.bar.update(p)
	} else if r.bar.terminal {
		fmt.Fprintln(r.bar.w)
	}
}

// restoreSummary prints what the restore did.
func restoreSummary(loc *l10n.Locale, w io.Writer, rep *wire.Report, skipped []string) {
	if rep == nil {
		rep = &wire.Report{}
	}
	// TRANSLATORS: %[1]d files or folders were created, %[2]d replaced, %[3]d deleted, %[4]d
	// changed in permissions or dates only; %[5]s is a size ("1.5 GB").
	fmt.Fprintln(w, loc.TrN("Restored: %[1]d file or folder created, %[2]d replaced, %[3]d deleted, %[4]d with new permissions or dates; %[5]s copied.",
		"Restored: %[1]d files and folders created, %[2]d replaced, %[3]d deleted, %[4]d with new permissions or dates; %[5]s copied.",
		clampInt(rep.Created), rep.Created, rep.Updated, rep.Deleted, rep.MetadataOnly, loc.Size(rep.BytesCopied)))
	if len(skipped) > 0 {
		fmt.Fprintln(w, loc.Tr("The data of %s was left as it was.", strings.Join(skipped, ", ")))
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(w, loc.Tr("error: %[1]s: not restored (%[2]s: %[3]s)", oneLine(e.Path), oneLine(e.Op), oneLine(e.Error)))
	}
	if n := rep.ErrorCount - int64(len(rep.Errors)); n > 0 {
		fmt.Fprintln(w, loc.Tr("error: ... and %d more files were not restored.", n))
	}
	if len(rep.Features) > 0 {
		fmt.Fprintln(w, loc.Tr("Features Tails will turn on at the next start: %s.", strings.Join(rep.Features, ", ")))
	} else {
		fmt.Fprintln(w, loc.Tr("Features Tails will turn on at the next start: none."))
	}
	fmt.Fprintln(w, loc.Tr("Restart Tails to use everything that was restored."))
}
