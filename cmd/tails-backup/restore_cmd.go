package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

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
	fs := newFlagSet(env, "restore", restoreSynopsis, restoreDescription)
	yes := fs.Bool("yes", false, "restore without asking for confirmation (for scripts)")
	skipClose := fs.Bool("skip-close", false, "leave the data of open applications as it is instead of asking to close them")
	statePath := fs.String("state", "", stateFlagHelp)
	helperCmd := fs.String("helper-command", defaultHelperCommand(), "how to run the root helper")
	verbose := fs.Bool("verbose", false, "log debug messages")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: give at most one device, e.g. 'tails-backup restore /dev/sdb'", errUsage)
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "restore")
	helper, err := helperClient(*helperCmd, log)
	if err != nil {
		return err
	}
	q := opts.quiescer
	if q == nil {
		pq := quiesce.NewProcQuiescer(log.WithField("component", "quiesce"))
		pq.PersistentStorage = sys.markerRoot
		q = pq
	}
	connect, closeDisks := connectDisks(sys, log, "restore", "")
	defer closeDisks()
	out := &restoreOutput{bar: &progressBar{w: env.stderr, terminal: env.isTerminal}, findings: &verifyFindings{w: env.stdout}}
	r := &session.Restore{
		Connect: connect, Boot: sys.boot, OwnRoot: sys.markerRoot, Store: storeAt(*statePath, sys, log),
		Helper: helper, Asker: pinentry.NewPinentry(log.WithField("component", "pinentry")), Quiescer: q,
		Now: sys.now, Log: log,
		UI:     &restoreTerminal{terminal: terminal{env: env}, in: &lineReader{r: env.stdin}, out: out},
		Device: fs.Arg(0), PlugWait: opts.plugWait, Yes: *yes, SkipClose: *skipClose,
	}
	done, err := r.Run(ctx)
	if err != nil {
		return err
	}
	restoreSummary(env.stdout, done.Report, done.Skipped)
	return session.RestoreResult(done.Report)
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
	fmt.Fprintln(w, "Tails sticks plugged in, besides the one this Tails runs from:")
	for _, c := range cands {
		fmt.Fprintf(w, "  %-10s %s, %s\n", session.Device(c.Stick), session.Label(c.Stick), sizeText(session.Size(c.Stick)))
	}
}

func (t *restoreTerminal) ConfirmRestore(ctx context.Context, other bool) bool {
	if other {
		answer, _ := t.in.ask(ctx, t.env.stdout, "Type restore to restore from this backup of another Tails, or anything else to cancel: ")
		return answer == "restore"
	}
	answer, _ := t.in.ask(ctx, t.env.stdout, "Restore your Persistent Storage from this backup? [y/N] ")
	return isYes(answer)
}

// AskApp asks what to do about an open application: c (close it) or r (try again), s (leave
// its data), anything else cancels.
func (t *restoreTerminal) AskApp(ctx context.Context, q session.AppQuestion) (session.AppAnswer, error) {
	w := t.env.stdout
	prompt := fmt.Sprintf("[c] close %s and continue, [s] leave its data as it is, [N] cancel: ", q.App)
	again := "c"
	if !q.Closable {
		prompt = "[r] try again, [s] leave its data as it is, [N] cancel: "
		again = "r"
	}
	fmt.Fprintln(w, q.Text)
	answer, err := t.in.ask(ctx, w, prompt)
	if err != nil {
		return session.AppCancel, err
	}
	switch strings.ToLower(answer) {
	case "s":
		return session.AppLeave, nil
	case again:
		return session.AppAgain, nil
	}
	return session.AppCancel, nil
}

func (t *restoreTerminal) Event(ev wire.Event)       { t.out.event(ev) }
func (t *restoreTerminal) EndProgress(complete bool) { t.out.endBar(complete) }

func isYes(answer string) bool {
	a := strings.ToLower(answer)
	return a == "y" || a == "yes"
}

// lineReader reads answers one line at a time, reading no byte beyond the line, so that the
// next question gets the next line.
type lineReader struct {
	r io.Reader
}

// errNoAnswer: the input ended before an answer.
var errNoAnswer = session.ErrNoAnswer

// ask writes prompt and returns the next line, trimmed. It returns errNoAnswer at the end of
// the input, or ctx's error when ctx ends first (Ctrl-C).
func (l *lineReader) ask(ctx context.Context, w io.Writer, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var b []byte
		one := make([]byte, 1)
		for len(b) < 1024 {
			n, err := l.r.Read(one)
			if n == 1 {
				if one[0] == '\n' {
					ch <- result{strings.TrimSpace(string(b)), nil}
					return
				}
				b = append(b, one[0])
				continue
			}
			if err != nil {
				if len(b) > 0 {
					ch <- result{strings.TrimSpace(string(b)), nil}
				} else {
					ch <- result{"", errNoAnswer}
				}
				return
			}
		}
		ch <- result{strings.TrimSpace(string(b)), nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			fmt.Fprintln(w) // end the question's line
		}
		return r.line, r.err
	case <-ctx.Done():
		fmt.Fprintln(w)
		return "", ctx.Err()
	}
}

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
func restoreSummary(w io.Writer, rep *wire.Report, skipped []string) {
	if rep == nil {
		rep = &wire.Report{}
	}
	fmt.Fprintf(w, "Restored: %s created, %d replaced, %d deleted, %d with new permissions or dates; %s copied.\n",
		session.CountText(rep.Created, "file or folder", "files and folders"), rep.Updated, rep.Deleted, rep.MetadataOnly, session.SizeText(rep.BytesCopied))
	if len(skipped) > 0 {
		fmt.Fprintf(w, "The data of %s was left as it was.\n", strings.Join(skipped, ", "))
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %s: not restored (%s: %s)\n", oneLine(e.Path), oneLine(e.Op), oneLine(e.Error))
	}
	if n := rep.ErrorCount - int64(len(rep.Errors)); n > 0 {
		fmt.Fprintf(w, "error: ... and %d more files were not restored.\n", n)
	}
	if len(rep.Features) > 0 {
		fmt.Fprintf(w, "Features Tails will turn on at the next start: %s.\n", strings.Join(rep.Features, ", "))
	} else {
		fmt.Fprintln(w, "Features Tails will turn on at the next start: none.")
	}
	fmt.Fprintln(w, "Restart Tails to use everything that was restored.")
}
