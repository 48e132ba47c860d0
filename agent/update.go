package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/notify"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/quiesce"
	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// job is the update running now; the agent runs one at a time.
type job struct {
	uuid   string
	drive  dbus.ObjectPath // the stick's drive in udisks
	cancel context.CancelFunc
	// gone tells the update that its stick left udisks' view.
	gone func()
}

// errBackupGone is the cause of a job cancelled because its stick was unplugged.
var errBackupGone = errors.New("the backup was unplugged")

// jobResult is how an update ended: what to record and what to tell the user.
type jobResult struct {
	attempt pairing.Attempt
	note    *notify.Notification
	// systemNote, shown after note, says why the backup's system partition was not refreshed
	// while its Persistent Storage was.
	systemNote *notify.Notification
}

func (a *Agent) startJob(ctx context.Context, st session.Classified) {
	a.closeNote(ctx, &a.waitingID)
	a.closeNote(ctx, &a.reminderID)
	jctx, cancel := context.WithCancel(ctx)
	a.job = &job{uuid: st.UUID, drive: st.Drive.Path, cancel: cancel}
	a.handled[st.UUID] = true
	u := &update{
		a:      a,
		ctx:    jctx,
		cancel: cancel,
		stick:  st,
		source: a.source,
		store:  a.deps.Store,
		events: make(chan notify.Event, 16),
		answer: make(chan string, 1),
		log:    a.log.WithField("backup", st.UUID),
	}
	u.open = session.NewOpened(a.deps.Disks, st.Stick, session.OpenOptions{Log: u.log})
	a.job.gone = u.stickGone
	u.log.Info("backup plugged in: updating")
	go func() {
		res := u.run()
		cancel()
		a.jobDone <- res
	}()
}

func (a *Agent) finishJob(ctx context.Context, res jobResult) {
	a.job = nil
	a.updateState(ctx, func(s *pairing.State) error { s.RecordAttempt(res.attempt); return nil })
	if res.note != nil {
		a.show(ctx, *res.note)
	}
	if res.systemNote != nil {
		a.show(ctx, *res.systemNote)
	}
}

// update is one run of the update flow for one stick.
type update struct {
	a      *Agent
	ctx    context.Context
	cancel context.CancelFunc
	stick  session.Classified
	source string
	store  *pairing.Store // the pairing store as the job started (Store is safe to share)
	log    *logrus.Entry

	events chan notify.Event // events of this update's notifications, from the agent
	answer chan string       // action keys other than Cancel, for the question asked

	mu       sync.Mutex
	noteID   uint32
	lastNote notify.Notification

	cancelled bool // the user chose Cancel (read after the pump is done)
	// stopHelper, while the root helper's update runs, stops it; unplugged says it did so
	// because the stick left udisks' view.
	stopHelper context.CancelCauseFunc
	unplugged  bool
	started    bool // the helper was started: the backup may have changed
	// open unlocks, mounts and ejects the backup: ejected at the end, never left as found.
	open *session.Opened
}

// run goes through the update flow and says how it ended.
func (u *update) run() jobResult {
	pumpDone := make(chan struct{})
	go func() { defer close(pumpDone); u.pump() }()
	res := u.steps()
	u.cancel()
	<-pumpDone
	u.closeNote()
	return res
}

// pump handles the events of our notifications while the steps run: Cancel cancels the
// update at any step, other actions answer the question asked, and a restarted
// notification server gets our notification again.
func (u *update) pump() {
	for {
		select {
		case <-u.ctx.Done():
			return
		case ev := <-u.events:
			switch e := ev.(type) {
			case notify.ActionInvoked:
				if e.ActionKey == actCancel {
					u.mu.Lock()
					u.cancelled = true
					u.mu.Unlock()
					u.cancel()
					return
				}
				select {
				case u.answer <- e.ActionKey:
				default:
				}
			case notify.NotificationClosed:
				// Dismissing the question of a busy application means: not now.
				if e.Reason == notify.ReasonDismissedByUser && u.asking() {
					select {
					case u.answer <- actCancel:
					default:
					}
				}
			case notify.ServerChanged:
				if e.Available {
					u.mu.Lock()
					u.a.routes.remove(u.noteID)
					u.noteID = 0
					n := u.lastNote
					u.mu.Unlock()
					u.show(n)
				}
			}
		}
	}
}

func (u *update) asking() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.lastNote.Actions) > 1
}

// show puts n in this update's notification, replacing the previous one.
func (u *update) show(n notify.Notification) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastNote = n
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 10*time.Second)
	defer cancel()
	var id uint32
	var err error
	if u.noteID == 0 {
		id, err = u.a.deps.Notifier.Show(ctx, n)
	} else {
		id, err = u.a.deps.Notifier.Replace(ctx, u.noteID, n)
	}
	if err != nil {
		u.log.WithError(err).Warn("show the update notification")
		return
	}
	if id != u.noteID {
		u.a.routes.remove(u.noteID)
		u.a.routes.add(id, u.events)
		u.noteID = id
	}
}

func (u *update) closeNote() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.noteID != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u.a.deps.Notifier.CloseNotification(ctx, u.noteID)
		u.a.routes.remove(u.noteID)
		u.noteID = 0
	}
}

// ask shows a question and waits for its answer; Cancel ends the update through the pump.
func (u *update) ask(n notify.Notification) (string, error) {
	for {
		select {
		case <-u.answer: // a stale answer to an earlier question
		default:
			u.show(n)
			select {
			case <-u.ctx.Done():
				return "", u.ctx.Err()
			case key := <-u.answer:
				return key, nil
			}
		}
	}
}

// errPaused stops an update that was under way when a restore paused the updates.
var errPaused = errors.New("a restore paused the automatic updates")

// steps is the update flow; every exit path leaves the stick locked, or as it was.
func (u *update) steps() jobResult {
	u.show(foundNote())
	if err := u.unlock(); err != nil {
		return u.failed(err)
	}
	root, err := u.mount()
	if err != nil {
		return u.failed(err)
	}
	if err := u.checkMarker(root); err != nil {
		return u.failed(err)
	}
	if err := u.checkSpace(root); err != nil {
		return u.failed(err)
	}
	skipped, skippedNames, err := u.quiesce()
	if err != nil {
		return u.failed(err)
	}
	// A restore may have started while this update waited for the passphrase or for the
	// applications: the backup holds the data it restores, so it must not be overwritten now.
	if st, err := u.store.Load(u.ctx); err == nil && st.Paused(u.a.deps.Clock.Now()) {
		return u.failed(errPaused)
	}
	release, err := u.a.deps.Inhibitor.Inhibit(u.ctx, "Updating your backup Tails")
	if err != nil {
		if u.ctx.Err() != nil {
			return u.failed(u.ctx.Err())
		}
		u.log.WithError(err).Warn("cannot keep the computer awake during the update")
		release = func() {}
	}
	report, err := u.runHelper(skipped)
	if err != nil {
		release()
		return u.failed(err)
	}
	// The data is backed up whatever happens to the system partition (system.go).
	system, systemNote := u.refreshSystem()
	release()
	ejected := u.eject()
	sum := Summary{
		Changed:      report.Created + report.Updated + report.MetadataOnly + report.Deleted,
		BytesCopied:  report.BytesCopied,
		ErrorCount:   report.ErrorCount,
		Skipped:      strings.Join(skippedNames, ", "),
		System:       system,
		SystemFailed: systemNote != nil,
	}
	note := doneNote(sum)
	if !ejected {
		note.Summary = "Backup updated"
		note.Body += " Eject it in the Files browser before you unplug it."
	}
	msg := ""
	if report.ErrorCount > 0 {
		msg = fmt.Sprintf("%d files could not be copied", report.ErrorCount)
	}
	u.log.WithField("changed", sum.Changed).Info("backup updated")
	return jobResult{attempt: u.attempt(pairing.ResultSuccess, msg), note: &note, systemNote: systemNote}
}

func (u *update) attempt(r pairing.Result, msg string) pairing.Attempt {
	return pairing.Attempt{Time: u.a.deps.Clock.Now(), Backup: u.stick.UUID, Result: r, Message: msg}
}

// unlock asks the passphrase and unlocks the backup's Persistent Storage, unless it already is.
func (u *update) unlock() error {
	return u.open.Unlock(u.ctx, session.Passphrase{
		Asker: u.a.deps.Asker,
		Prompt: pinentry.Prompt{
			Title:       "Tails Backup",
			Description: fmt.Sprintf("Enter the passphrase of your backup Tails (%s) to update it.", session.Name(u.stick.Stick.Stick)),
			Prompt:      "Passphrase:",
			OK:          "Update",
		},
		Tries:     3,
		WrongText: "Wrong passphrase. Try again: it is the passphrase of the backup's Persistent Storage.",
	})
}

func (u *update) mount() (string, error) { return u.open.Mount(u.ctx) }

// errMarker explains why a stick's marker does not allow the update.
type errMarker struct{ summary, body string }

func (e *errMarker) Error() string { return e.summary }

func (u *update) checkMarker(root string) error {
	m, err := u.a.cfg.ReadMarker(root)
	if err != nil {
		u.log.WithError(err).Warn("no valid backup marker")
		return &errMarker{"This stick is not a backup made by Tails Backup",
			"It has no valid backup marker, so it was not changed. To make it your backup, create a new one on it with 'tails-backup create' (this erases it)."}
	}
	if m.Source != u.source {
		return &errMarker{"This backup Tails belongs to another Tails",
			"Its Persistent Storage is a backup of another Tails, so it was not changed. Use your own backup, or create a new one on this stick with 'tails-backup create' (this erases it)."}
	}
	return nil
}

// errTooSmall is a backup whose file system cannot hold the Persistent Storage at all.
type errTooSmall struct{ need, have int64 }

func (e *errTooSmall) Error() string { return "the backup is too small" }

// checkSpace refuses early a backup that cannot hold the data in use; the helper checks the
// exact need before writing.
func (u *update) checkSpace(root string) error {
	var src, dst unix.Statfs_t
	if err := unix.Statfs(u.a.deps.Disks.BootPaths().Persistence, &src); err != nil {
		return nil // the helper will tell
	}
	if err := unix.Statfs(root, &dst); err != nil {
		return nil
	}
	used := int64(src.Blocks-src.Bfree) * src.Bsize
	capacity := int64(dst.Blocks) * dst.Bsize
	if used > capacity {
		return &errTooSmall{need: used, have: capacity}
	}
	return nil
}

// quiesce asks the user to close the applications that hold persistent files open. It returns
// the folders to skip (and their names for the user).
func (u *update) quiesce() (skip, names []string, err error) {
	q := u.a.deps.Quiescer
	features, err := q.ActiveFeatures(u.ctx)
	if err != nil {
		u.log.WithError(err).Warn("cannot tell which features are on; not checking for open applications")
		return nil, nil, nil
	}
	busy, err := q.BusyApps(u.ctx, features)
	if err != nil {
		u.log.WithError(err).Warn("cannot list the running applications")
		return nil, nil, nil
	}
	for _, app := range busy {
		note := quiesceNote(app.App.Name, app.Feature.Name)
		if !app.Closable {
			note = systemAppNote(app.App.Name, app.Feature.Name)
		}
		for {
			key, err := u.ask(note)
			if err != nil {
				return nil, nil, err
			}
			if key == actCancel {
				u.mu.Lock()
				u.cancelled = true
				u.mu.Unlock()
				u.cancel()
				return nil, nil, context.Canceled
			}
			if key == actSkipApp {
				top, _, _ := strings.Cut(app.Feature.Source, "/")
				skip = append(skip, top)
				names = append(names, app.Feature.Name)
				break
			}
			if key != actCloseApp {
				continue
			}
			if !app.Closable { // "Try again": has it finished?
				still, err := q.BusyApps(u.ctx, []tails.Feature{app.Feature})
				if err != nil {
					return nil, nil, err
				}
				if !slices.ContainsFunc(still, func(b quiesce.BusyApp) bool { return b.App.Name == app.App.Name }) {
					break
				}
				continue
			}
			err = q.CloseApp(u.ctx, app, u.a.cfg.QuiesceGrace)
			if err == nil {
				break
			}
			if !errors.Is(err, quiesce.ErrStillRunning) {
				return nil, nil, err
			}
			note = stillRunningNote(app.App.Name)
		}
	}
	return skip, names, nil
}

// runHelper runs the root helper's update and shows its progress.
func (u *update) runHelper(skip []string) (*wire.Report, error) {
	var eta etaEstimator
	var last time.Time
	u.started = true
	u.show(progressNote(0, 0, false))
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpUpdate, Backup: u.stick.UUID, Skip: skip}
	hctx, stop := context.WithCancelCause(u.ctx)
	defer stop(nil)
	u.mu.Lock()
	u.stopHelper = stop
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.stopHelper = nil
		u.mu.Unlock()
	}()
	return u.a.deps.Helper.Run(hctx, req, func(ev wire.Event) {
		now := u.a.deps.Clock.Now()
		if ev.Phase != "copy" || now.Sub(last) < u.a.cfg.ProgressEvery {
			return
		}
		last = now
		pct, left, known := eta.update(now, ev.BytesDone, ev.BytesTotal, ev.FilesDone, ev.FilesTotal)
		u.show(progressNote(pct, left, known))
	})
}

// stickGone is called by the agent when the stick's drive left udisks' view. While the root
// helper's update runs, it stops it: the helper would go on writing into the page cache of a
// stick that is gone until a flush fails (minutes on a busy machine), with "Do not unplug" on
// the screen all that time. At the other steps, the udisks call or the helper fails at once.
func (u *update) stickGone() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stopHelper != nil && !u.unplugged {
		u.unplugged = true
		u.log.Warn("the backup was unplugged during the update: stopping the helper")
		u.stopHelper(errBackupGone)
	}
}

// eject unmounts, locks and powers off the backup, so that it can be unplugged. It reports
// whether the stick can be unplugged safely.
func (u *update) eject() bool { return u.open.Eject(u.ctx) == nil }

// failed leaves the stick safe to unplug and says what happened and what to do.
func (u *update) failed(err error) jobResult {
	u.mu.Lock()
	userCancelled := u.cancelled
	u.mu.Unlock()
	// Unplugged, as udisks saw it, whatever the step that was stopped says (the helper a
	// cancellation, pinentry a closed prompt).
	u.mu.Lock()
	unplugged := u.unplugged
	u.mu.Unlock()
	gone := unplugged || errors.Is(err, udisks.ErrDeviceGone) || errors.Is(err, wire.ErrHelperDeviceGone)
	// A restore that paused the updates uses the stick as it is: ejecting it would pull it
	// from under the restore.
	if !gone && !errors.Is(err, errPaused) {
		u.eject()
	}
	u.log.WithError(err).Warn("update failed")

	result, summary, body := pairing.ResultFailed, "Your backup Tails was not updated", ""
	var em *errMarker
	var small *errTooSmall
	switch {
	case (userCancelled || errors.Is(err, pinentry.ErrPinentryCancelled)) && !unplugged:
		result, summary = pairing.ResultCancelled, "Backup update cancelled"
		body = "Your backup Tails was not changed."
		if u.started {
			result = pairing.ResultIncomplete
			body = "Your backup is marked incomplete: the next update finishes it. You can unplug it."
		}
	case errors.Is(err, errPaused):
		result, summary = pairing.ResultCancelled, "Backup update stopped"
		body = "A restore from your backup Tails started, so the backup was not changed; the restore uses it."
	case errors.As(err, &em):
		summary, body = em.summary, em.body
	case errors.As(err, &small):
		body = fmt.Sprintf("Its Persistent Storage holds %s, but your data takes %s. Create a new backup on a bigger USB stick with 'tails-backup create'.",
			session.SizeText(small.have), session.SizeText(small.need))
	case errors.Is(err, pinentry.ErrTooManyTries):
		body = "The passphrase was wrong three times. Unplug your backup Tails and plug it in again to try again."
	case errors.Is(err, udisks.ErrNotAuthorized):
		body = "Tails did not allow Tails Backup to unlock the stick. Unlock it in the Files browser, then unplug it and plug it in again."
	case gone:
		result = pairing.ResultIncomplete
		summary = "Your backup Tails was unplugged during the update"
		body = "Plug it in again to finish the update."
		if !u.started {
			result, body = pairing.ResultFailed, "It was not changed. Plug it in again to update it."
		}
	case u.started:
		result = pairing.ResultIncomplete
		body = session.HelperErrorText(err)
	default:
		body = fmt.Sprintf("Something went wrong: %s. Unplug your backup Tails and plug it in again to try again.", session.FirstSentence(err))
	}
	note := errorNote(summary, body)
	return jobResult{attempt: u.attempt(result, body), note: &note}
}

// newRequest builds a helper request.
func newRequest(op wire.Op, backup string) wire.Request {
	return wire.Request{Version: wire.ProtocolVersion, Op: op, Backup: backup}
}

// OpPromote is re-exported for the agent's own use.
const OpPromote = wire.OpPromote

// readMarkerFile reads the marker at the root of a mounted Persistent Storage, refusing a
// symlink or anything but a small regular file; no marker is an error. It works as amnesia,
// which may not open a Tails root for reading (see tails.ReadMarkerIn).
func readMarkerFile(root string) (tails.Marker, error) {
	m, present, err := tails.ReadMarkerIn(root)
	if err == nil && !present {
		err = fmt.Errorf("%s holds no backup marker: %w", root, fs.ErrNotExist)
	}
	return m, err
}
