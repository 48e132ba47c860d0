package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/pairing"
	"tails-backup/quiesce"
	"tails-backup/session"
	tbsync "tails-backup/sync"
	"tails-backup/tails"
	"tails-backup/udisks"
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

// restoreCloseGrace is how long an application gets to quit, as in the agent.
const restoreCloseGrace = 15 * time.Second

// restorePause is how long the agent's automatic updates are paused by a restore at most: the
// restore ends the pause itself, and a restore that crashed must not stop the updates for
// long. The agent leaves a backup plugged in during the pause alone until it is plugged in
// again, so a restore that takes longer is not disturbed either.
const restorePause = 2 * time.Hour

// restorePlugWait is how long the command waits for a backup to be plugged in.
const restorePlugWait = 10 * time.Minute

// runRestore is `tails-backup restore`: run as amnesia in the desktop session.
func runRestore(ctx context.Context, env *environment, args []string) error {
	return restoreWith(ctx, env, args, nil)
}

// restoreWith runs the command with q finding and closing the applications; nil is the real
// one, on this Tails' Persistent Storage.
func restoreWith(ctx context.Context, env *environment, args []string, q quiesce.Quiescer) error {
	return restoreRun(ctx, env, args, restoreOptions{quiescer: q, plugWait: restorePlugWait})
}

// restoreOptions are what tests change in the command.
type restoreOptions struct {
	quiescer quiesce.Quiescer // nil: the real one
	plugWait time.Duration    // how long to wait for a backup to be plugged in
}

func restoreRun(ctx context.Context, env *environment, args []string, opts restoreOptions) error {
	q := opts.quiescer
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
	argv := strings.Fields(*helperCmd)
	if len(argv) == 0 {
		return fmt.Errorf("%w: --helper-command is empty", errUsage)
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "restore")
	if _, present, _ := tails.ReadMarkerIn(sys.markerRoot); present {
		return errors.New("this Tails is itself a backup Tails (its Persistent Storage holds a backup marker), so nothing is restored into it; make it your main Tails first with 'tails-backup promote', or restore into another Tails")
	}
	if q == nil {
		pq := quiesce.NewProcQuiescer(log.WithField("component", "quiesce"))
		pq.PersistentStorage = sys.markerRoot
		q = pq
	}

	// Before the backup can be plugged in: the agent would update it at once, overwriting the
	// data to restore with the data as it is now.
	path, err := statePathOr(*statePath, sys)
	if err != nil {
		return err
	}
	resume, err := pauseUpdates(ctx, env, openStore(path, sys, log), sys.now)
	if err != nil {
		return err
	}
	defer resume()

	disks, snap, closeDisks, err := openDisks(ctx, sys, log, "restore", "")
	if err != nil {
		return err
	}
	defer closeDisks()
	if fs.Arg(0) == "" && len(session.Candidates(snap, sys.boot)) == 0 {
		fmt.Fprintln(env.stdout, "Plug in your backup Tails now (Ctrl-C to stop).")
		if snap, err = waitForBackupStick(ctx, disks, sys.boot, opts.plugWait); err != nil {
			return err
		}
	}
	stick, err := chooseRestoreStick(env.stdout, snap, sys.boot, fs.Arg(0))
	if err != nil {
		return err
	}
	name := session.Describe(stick.Stick)
	fmt.Fprintf(env.stdout, "Opening the backup on %s.\n", name)

	o := &openStick{disks: disks, stick: stick, name: name, log: log, use: stickUse{
		command: "restore", purpose: "to restore your Persistent Storage from it", ok: "Unlock",
		notDone: "was not used", unchanged: "nothing was changed", leaveAsFound: true, readOnly: true,
	}}
	defer func() {
		if err := o.release(ctx); err != nil {
			fmt.Fprintf(env.stderr, "Warning: %s could not be locked again (%v); eject it in the Files browser before you unplug it.\n", name, err)
		}
	}()
	if err := o.unlock(ctx); err != nil {
		return err
	}
	if err := o.mount(ctx); err != nil {
		return err
	}
	mp, err := mountPointOf(ctx, disks, o.opened().Clear())
	if err != nil {
		return fmt.Errorf("the Persistent Storage of %s is not mounted any more (%v); unplug it, plug it in again and run 'tails-backup restore' again", name, err)
	}
	m, present, err := tails.ReadMarkerIn(mp)
	switch {
	case !present:
		return fmt.Errorf("%s is not a backup made by tails-backup (its Persistent Storage has no backup marker), so nothing was changed; plug in your backup Tails and give its device", name)
	case errors.Is(err, tails.ErrMarkerFormat):
		return fmt.Errorf("the backup on %s was made by a newer version of tails-backup, so nothing was changed; update Tails and try again", name)
	case err != nil:
		return fmt.Errorf("the backup marker on %s is damaged (%v), so it is not trusted as a backup made by tails-backup and nothing was changed; restore from another backup", name, err)
	}

	thisTails := session.BootUUID(snap, sys.boot)
	other := m.Source != thisTails
	for _, line := range restoreDescriptionLines(name, m, other, sys.now()) {
		fmt.Fprintln(env.stdout, line)
	}
	in := &lineReader{r: env.stdin}
	if !*yes {
		if other {
			answer, _ := in.ask(ctx, env.stdout, "Type restore to restore from this backup of another Tails, or anything else to cancel: ")
			if answer != "restore" {
				return errors.New("not confirmed, so nothing was changed (type restore to restore from a backup of another Tails, or use --yes)")
			}
		} else if answer, _ := in.ask(ctx, env.stdout, "Restore your Persistent Storage from this backup? [y/N] "); !isYes(answer) {
			return errors.New("not confirmed, so nothing was changed (answer y to restore, or use --yes)")
		}
	}

	skip, skipped, err := quiesceForRestore(ctx, env.stdout, in, q, *skipClose, log)
	if err != nil {
		return err
	}

	fmt.Fprintf(env.stdout, "Restoring from the backup on %s; do not unplug it.\n", name)
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpRestore, Backup: stick.UUID, Source: m.Source, Skip: skip}
	out := &restoreOutput{bar: &progressBar{w: env.stderr, terminal: env.isTerminal}, findings: &verifyFindings{w: env.stdout}}
	client := wire.NewHelperClient(argv, log.WithField("component", "helper"))
	rep, err := client.Run(ctx, req, out.event)
	out.endBar(err == nil)
	if err != nil {
		return fmt.Errorf("the restore from %s did not finish: %w", name, session.CommandHelperError(ctx, err))
	}
	return restoreSummary(env.stdout, rep, skipped)
}

// pauseUpdates pauses the agent's automatic updates in the store for restorePause at most,
// and returns what ends the pause: it runs at the end of the command whatever happened,
// Ctrl-C included (a pause that ends later by itself is only a warning).
func pauseUpdates(ctx context.Context, env *environment, store *pairing.Store, now func() time.Time) (resume func(), err error) {
	owner := fmt.Sprintf("restore %d", os.Getpid())
	start := now()
	until := start.Add(restorePause)
	if _, err := updateState(ctx, env, store, func(s *pairing.State) error {
		s.Pause(owner, until, start)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("the automatic updates of your backup could not be paused for the restore, so nothing was changed: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := store.Update(ctx, func(s *pairing.State) error { s.Resume(owner); return nil }); err != nil {
			fmt.Fprintf(env.stderr, "Warning: the automatic updates of your backup stay paused until %s (%v).\n", session.TimeText(until, now()), err)
		}
	}, nil
}

// waitForBackupStick waits until a Tails stick that could be a backup is plugged in, for at
// most d, and returns the udisks view that has it.
func waitForBackupStick(ctx context.Context, disks *udisks.Client, boot udisks.BootPaths, d time.Duration) (*udisks.Snapshot, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	snap, err := disks.WaitFor(wctx, func(s *udisks.Snapshot) (bool, error) {
		return len(session.Candidates(s, boot)) > 0, nil
	})
	switch {
	case err == nil:
		return snap, nil
	case ctx.Err() != nil:
		return nil, errors.New("interrupted while waiting for the backup Tails, so nothing was changed")
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("no backup Tails was plugged in within %s, so nothing was changed; run 'tails-backup restore' again and plug in your backup Tails when it asks", waitText(d))
	}
	return nil, fmt.Errorf("cannot watch the USB sticks (%v), so nothing was changed; check that udisks2 is running, plug in your backup Tails and run 'tails-backup restore' again", err)
}

// waitText: "10 minutes", or the exact duration when it is not whole minutes.
func waitText(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return countText(int64(d/time.Minute), "minute", "minutes")
	}
	return d.String()
}

// chooseRestoreStick picks the stick named by dev, or the only Tails stick plugged in besides
// the boot stick; with several, it lists them and asks for the device.
func chooseRestoreStick(w io.Writer, snap *udisks.Snapshot, boot udisks.BootPaths, dev string) (session.Stick, error) {
	cands := session.Candidates(snap, boot)
	st, err := session.PickStick(snap, boot, cands, dev)
	var pe *session.PickError
	if !errors.As(err, &pe) {
		return st, err
	}
	switch pe.Reason {
	case session.PickNone:
		return st, errors.New("no backup Tails is plugged in (besides the stick this Tails runs from); plug in your backup Tails and try again")
	case session.PickSeveral:
		fmt.Fprintln(w, "Tails sticks plugged in, besides the one this Tails runs from:")
		for _, c := range cands {
			fmt.Fprintf(w, "  %-10s %s, %s\n", session.Device(c.Stick), session.Label(c.Stick), sizeText(session.Size(c.Stick)))
		}
		return st, fmt.Errorf("%w: %d Tails sticks are plugged in; say which one to restore from, e.g. 'tails-backup restore %s'",
			errUsage, pe.Count, session.Device(cands[0].Stick))
	case session.PickNoDevice:
		return st, fmt.Errorf("there is no device %s; plug in your backup Tails and give its device, e.g. /dev/sdb", pe.Device)
	case session.PickNotTails:
		return st, fmt.Errorf("%s is not a Tails stick (it has no Persistent Storage partition); give the device of your backup Tails", pe.Device)
	}
	switch pe.Unfit {
	case session.UnfitBoot:
		return st, fmt.Errorf("%s is the stick this Tails is running from, which holds the Persistent Storage to restore into; give the device of your backup Tails", pe.Device)
	case session.UnfitNotRemovable:
		return st, fmt.Errorf("%s is not a removable USB stick, so it is not a backup Tails; give the device of your backup Tails", pe.Device)
	}
	return st, fmt.Errorf("%s has no encrypted Persistent Storage, so it is not a backup made by tails-backup; give the device of your backup Tails", pe.Device)
}

// mountPointOf is where udisks says the file system clear is mounted.
func mountPointOf(ctx context.Context, disks *udisks.Client, clear dbus.ObjectPath) (string, error) {
	snap, err := disks.GetSnapshot(ctx)
	if err != nil {
		return "", err
	}
	o := snap.Object(clear)
	if o == nil || o.Filesystem == nil || len(o.Filesystem.MountPoints) == 0 {
		return "", errors.New("udisks gives no mount point")
	}
	return o.Filesystem.MountPoints[0], nil
}

// restoreDescriptionLines say what the backup is and what restoring does.
func restoreDescriptionLines(name string, m tails.Marker, other bool, now time.Time) []string {
	var lines []string
	from := ""
	if m.TailsVersion != "" {
		from = ", from Tails " + oneLine(m.TailsVersion)
	}
	if m.Finished.IsZero() {
		lines = append(lines, fmt.Sprintf("The backup on %s has never been updated completely.", name))
	} else {
		lines = append(lines, fmt.Sprintf("The backup on %s was last updated completely on %s%s.", name, session.TimeText(m.Finished, now), from))
	}
	if m.State == tails.StateIncomplete {
		lines = append(lines, fmt.Sprintf("Its last update, started on %s, did not finish: some of its files may be older than others, or missing.", session.TimeText(m.Started, now)))
	}
	lines = append(lines, "Restoring copies it into the Persistent Storage of this Tails: files in your Persistent Storage that are not on the backup will be deleted, and files that differ will be replaced by the backup's version.")
	if other {
		lines = append(lines, fmt.Sprintf("This backup was made from another Tails (Persistent Storage %s), not from this one: restore from it only if it is your own backup, for example of the Tails USB stick you lost.", m.Source))
	}
	return lines
}

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
var errNoAnswer = errors.New("no answer")

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

// quiesceForRestore asks to close the applications that use the data the restore replaces,
// as the agent's update does. It returns the top-level folders to leave as they are (and the
// features' names for the user).
func quiesceForRestore(ctx context.Context, w io.Writer, in *lineReader, q quiesce.Quiescer, skipClose bool, log *logrus.Entry) (skip, names []string, err error) {
	features, err := q.ActiveFeatures(ctx)
	if err != nil {
		log.WithError(err).Warn("cannot tell which features are on; not checking for open applications")
		return nil, nil, nil
	}
	busy, err := q.BusyApps(ctx, features)
	if err != nil {
		log.WithError(err).Warn("cannot list the running applications")
		return nil, nil, nil
	}
	leave := func(app quiesce.BusyApp) {
		top, _, _ := strings.Cut(app.Feature.Source, "/")
		if !slices.Contains(skip, top) {
			skip = append(skip, top)
			names = append(names, app.Feature.Name)
		}
	}
	for _, app := range busy {
		a, f := app.App.Name, app.Feature.Name
		if skipClose {
			fmt.Fprintf(w, "%s is open: the data of %s is left as it is (--skip-close).\n", a, f)
			leave(app)
			continue
		}
		text := fmt.Sprintf("%s is open, so the data of %s might be replaced while it uses it. Close it to restore that data, or leave that data as it is.", a, f)
		prompt := fmt.Sprintf("[c] close %s and continue, [s] leave its data as it is, [N] cancel: ", a)
		again := "c"
		if !app.Closable {
			text = fmt.Sprintf("%s is running and using the data of %s, so that data might be replaced while it uses it. Wait until it has finished, then try again; or leave that data as it is.", a, f)
			prompt = "[r] try again, [s] leave its data as it is, [N] cancel: "
			again = "r"
		}
	ask:
		for {
			fmt.Fprintln(w, text)
			answer, err := in.ask(ctx, w, prompt)
			switch {
			case ctx.Err() != nil:
				return nil, nil, fmt.Errorf("interrupted, so nothing was changed")
			case errors.Is(err, errNoAnswer):
				return nil, nil, fmt.Errorf("no answer about %s, so nothing was changed; close it and run 'tails-backup restore' again, or add --skip-close to leave its data as it is", a)
			}
			switch strings.ToLower(answer) {
			case "s":
				leave(app)
				break ask
			case again:
			default:
				return nil, nil, errors.New("cancelled, so nothing was changed")
			}
			if !app.Closable {
				still, err := q.BusyApps(ctx, []tails.Feature{app.Feature})
				if err != nil {
					return nil, nil, fmt.Errorf("cannot tell whether %s has finished (%v), so nothing was changed; run 'tails-backup restore' again", a, err)
				}
				if !slices.ContainsFunc(still, func(b quiesce.BusyApp) bool { return b.App.Name == a }) {
					break ask
				}
				continue
			}
			fmt.Fprintf(w, "Asking %s to close...\n", a)
			err = q.CloseApp(ctx, app, restoreCloseGrace)
			switch {
			case err == nil:
				break ask
			case errors.Is(err, quiesce.ErrStillRunning):
				text = fmt.Sprintf("%s did not close. Close it yourself (save your work first), then answer c again, or leave its data as it is.", a)
			case ctx.Err() != nil:
				return nil, nil, fmt.Errorf("interrupted, so nothing was changed")
			default:
				return nil, nil, fmt.Errorf("%s could not be closed (%v), so nothing was changed; close it yourself and run 'tails-backup restore' again", a, err)
			}
		}
	}
	return skip, names, nil
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

// restoreSummary prints what the restore did and returns the command's result.
func restoreSummary(w io.Writer, rep *wire.Report, skipped []string) error {
	if rep == nil {
		rep = &wire.Report{}
	}
	fmt.Fprintf(w, "Restored: %s created, %d replaced, %d deleted, %d with new permissions or dates; %s copied.\n",
		countText(rep.Created, "file or folder", "files and folders"), rep.Updated, rep.Deleted, rep.MetadataOnly, session.SizeText(rep.BytesCopied))
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
	switch {
	case rep.ErrorCount > 0:
		return fmt.Errorf("%s could not be restored (listed above); everything else was restored", countText(rep.ErrorCount, "file", "files"))
	case rep.Problems > 0:
		return errors.New("everything was restored, but Tails would not accept this Persistent Storage as it is (see the problems above); after restarting Tails, turn on the features you need in the Persistent Storage settings")
	}
	return nil
}

// countText: "1 file", "3 files".
func countText(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
