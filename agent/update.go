package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/dbusapi"
	"tails-backup/notify"
	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/wire"
)

// job is the update running now; the agent runs one at a time.
type job struct {
	id        string // the API's ID of the job
	automatic bool   // started on plug, not by the API's UpdateNow
	device    string
	uuid      string
	drive     dbus.ObjectPath // the stick's drive in udisks
	cancel    context.CancelFunc
	// gone tells the update that its stick left udisks' view.
	gone func()
	// userCancel is the Cancel of the notification and of the API.
	userCancel func()
	// answer answers the question asked through the API.
	answer func(question, choice string) error
}

// jobResult is how an update ended: what to record and what to tell the user.
type jobResult struct {
	attempt pairing.Attempt
	note    *notify.Notification
	// notePage is the page of the Backup app that a click on note opens ("" the overview).
	notePage string
	// systemNote, shown after note, says why the backup's system partition was not refreshed
	// while its Persistent Storage was.
	systemNote *notify.Notification
	// offerKeySlot, if set, is the backup offered updates without the passphrase by note, the
	// done notification (offerKeySlotOn).
	offerKeySlot string
	// id and api are the job's ID and how it ended, for the API.
	id  string
	api dbusapi.Result
}

// startJob starts the update of a paired backup plugged in, automatic when the agent starts it
// on plug, and returns the API's ID of the job.
func (a *Agent) startJob(ctx context.Context, st session.Classified, automatic bool) string {
	a.closeNote(ctx, &a.waitingID)
	a.closeNote(ctx, &a.reminderID)
	jctx, cancel := context.WithCancelCause(ctx)
	a.jobSeq++
	id := fmt.Sprintf("update-%d", a.jobSeq)
	a.job = &job{id: id, automatic: automatic, device: session.Device(st.Stick.Stick), uuid: st.UUID, drive: st.Drive.Path, cancel: func() { cancel(nil) }}
	a.handled[st.UUID] = true
	u := &update{
		id:     id,
		a:      a,
		ctx:    jctx,
		cancel: cancel,
		stick:  st,
		events: make(chan notify.Event, 16),
		answer: make(chan string, 1),
		log:    a.log.WithField("backup", st.UUID),
	}
	u.flow = &session.Update{
		Disks:        a.deps.Disks,
		Asker:        a.deps.Asker,
		Quiescer:     a.deps.Quiescer,
		Inhibitor:    a.deps.Inhibitor,
		Helper:       a.deps.Helper,
		Store:        a.deps.Store, // the pairing store as the job started (Store is safe to share)
		Now:          a.deps.Clock.Now,
		Log:          u.log,
		Stick:        st.Stick,
		Source:       a.source,
		Persistence:  a.deps.Disks.BootPaths().Persistence,
		ReadMarker:   a.cfg.ReadMarker,
		QuiesceGrace: a.cfg.QuiesceGrace,
		Observer:     u,
		Loc:          a.loc,
		System: &session.SystemRefresh{
			Disks:   a.deps.Disks,
			Helper:  a.deps.Helper,
			Medium:  a.cfg.Medium,
			Pending: &a.bootloaders,
			Now:     a.deps.Clock.Now,
			Log:     u.log,
		},
	}
	a.job.gone = u.flow.StickGone
	a.job.userCancel = u.userCancel
	a.job.answer = u.apiAnswer
	u.log.Info("backup plugged in: updating")
	a.events.Progress(id, dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: a.loc.Tr(apiStepUnlock), Cancellable: true})
	a.events.Changed()
	go func() {
		res := u.run()
		res.id = id
		cancel(nil)
		a.jobDone <- res
	}()
	return id
}

func (a *Agent) finishJob(ctx context.Context, res jobResult) {
	a.job = nil
	defer a.events.Changed()
	// Recorded first: a client that reads the status on JobFinished sees this attempt.
	a.updateState(ctx, func(s *pairing.State) error { s.RecordAttempt(res.attempt); return nil })
	a.events.Finished(res.id, res.api)
	if res.note != nil {
		id := a.showOn(ctx, *res.note, cmp.Or(res.notePage, pageOverview))
		if res.offerKeySlot != "" {
			// The done notification carries the offer: its action takes it.
			a.closeNote(ctx, &a.keyOfferID)
			a.keyOfferID, a.keyOfferUUID = id, res.offerKeySlot
		}
	}
	if res.systemNote != nil {
		a.show(ctx, *res.systemNote)
	}
}

// update is one run of the update flow (session.Update) for one stick, shown in
// notifications: it is the flow's observer.
type update struct {
	id     string // the API's ID of the job
	a      *Agent
	ctx    context.Context
	cancel context.CancelCauseFunc
	stick  session.Classified
	log    *logrus.Entry
	flow   *session.Update

	events chan notify.Event // events of this update's notifications, from the agent
	answer chan string       // action keys other than Cancel, for the question asked

	mu     sync.Mutex
	noteID uint32 // the notification with the buttons
	// listID is the entry of the notification list that shows the progress where a replaced
	// banner loses its buttons (GNOME Shell 43: notify.ShowProgress), 0 elsewhere.
	listID   uint32
	lastNote notify.Notification
	// lastSteady is the banner's text of lastNote when it is a progress (showProgressLocked),
	// "" for another notification.
	lastSteady string

	cancelled bool // the user chose Cancel (read after the pump is done)
	// lastProgress and lastSystem are when the progress notification was last refreshed, in
	// the copy and in the refresh of the system partition.
	lastProgress, lastSystem time.Time
	// question is the question asked through the API now (ID "" none); questions counts them.
	question  dbusapi.Question
	questions int
}

// userCancel is the Cancel of the notification and of the API: the update stops at once.
func (u *update) userCancel() {
	u.mu.Lock()
	u.cancelled = true
	u.mu.Unlock()
	u.cancel(session.ErrCancelled)
}

// run goes through the update flow and says how it ended.
func (u *update) run() jobResult {
	pumpDone := make(chan struct{})
	go func() { defer close(pumpDone); u.pump() }()
	res := u.steps()
	u.cancel(nil)
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
					u.userCancel()
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
					u.a.routes.remove(u.listID)
					u.noteID, u.listID = 0, 0
					if u.lastSteady != "" {
						u.showProgressLocked(u.lastNote, u.lastSteady)
					} else {
						u.showLocked(u.lastNote)
					}
					u.mu.Unlock()
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

// show puts n in this update's notification, replacing the previous one in place.
func (u *update) show(n notify.Notification) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.showLocked(n)
}

// showNew shows n as a new notification, in place of the previous one, which it closes: a
// question. GNOME Shell 43 drops the buttons of a banner on screen whose notification is
// replaced in place (notify.ReplaceKeepsButtons), so a question would show no answer.
func (u *update) showNew(n notify.Notification) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closeLocked()
	u.showLocked(n)
}

func (u *update) showLocked(n notify.Notification) {
	u.lastNote, u.lastSteady = n, ""
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 10*time.Second)
	defer cancel()
	var id uint32
	var err error
	if u.noteID == 0 {
		id, err = u.a.deps.Notifier.Show(ctx, clickOpensApp(u.a.loc, n))
	} else {
		id, err = u.a.deps.Notifier.Replace(ctx, u.noteID, clickOpensApp(u.a.loc, n))
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

// showProgressNote shows n, the progress of a step, with its Cancel: in place of the
// progress shown, or, new step, in place of the previous notification, which it closes.
// Where a replaced banner loses its buttons (GNOME Shell 43), the banner keeps Cancel and
// steadyBody and the notification list shows the progress (notify.ShowProgress).
func (u *update) showProgressNote(n notify.Notification, steadyBody string, newStep bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if newStep || u.lastSteady == "" {
		u.closeLocked()
	}
	u.showProgressLocked(n, steadyBody)
}

func (u *update) showProgressLocked(n notify.Notification, steadyBody string) {
	u.lastNote, u.lastSteady = n, steadyBody
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), 10*time.Second)
	defer cancel()
	prev := notify.ProgressIDs{Banner: u.noteID, List: u.listID}
	ids, err := u.a.deps.Notifier.ShowProgress(ctx, prev, clickOpensApp(u.a.loc, n), steadyBody)
	for _, id := range prev.IDs() {
		if id != ids.Banner && id != ids.List {
			u.a.routes.remove(id)
		}
	}
	for _, id := range ids.IDs() {
		u.a.routes.add(id, u.events)
	}
	u.noteID, u.listID = ids.Banner, ids.List
	if err != nil {
		u.log.WithError(err).Warn("show the progress notification")
	}
}

func (u *update) closeNote() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closeLocked()
}

func (u *update) closeLocked() {
	for _, id := range []uint32{u.noteID, u.listID} {
		if id != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			u.a.routes.remove(id)
			u.a.deps.Notifier.CloseNotification(ctx, id)
			cancel()
		}
	}
	u.noteID, u.listID = 0, 0
}

// ask shows a question, in the notification and through the API, and waits for its answer;
// Cancel ends the update through the pump. After dbusapi.QuestionTimeout with no answer, the
// answer is Cancel.
func (u *update) ask(n notify.Notification) (string, error) {
	for {
		select {
		case <-u.answer: // a stale answer to an earlier question
		default:
			u.showNew(n)
			q := u.askAPI(n)
			defer u.endAPIQuestion()
			timer := time.NewTimer(dbusapi.QuestionTimeout)
			defer timer.Stop()
			select {
			case <-u.ctx.Done():
				return "", u.ctx.Err()
			case key := <-u.answer:
				return key, nil
			case <-timer.C:
				u.log.WithField("question", q.ID).Info("no answer: cancelling")
				return q.Choices[0].ID, nil
			}
		}
	}
}

// askAPI emits the question of a notification through the API: its actions are the choices,
// Cancel first (the safe one).
func (u *update) askAPI(n notify.Notification) dbusapi.Question {
	u.mu.Lock()
	u.questions++
	q := dbusapi.Question{ID: fmt.Sprintf("apps-%d", u.questions), Title: n.Summary, Body: n.Body}
	for _, act := range n.Actions {
		c := dbusapi.Choice{ID: act.Key, Label: act.Label}
		if act.Key == actCancel {
			q.Choices = append([]dbusapi.Choice{c}, q.Choices...)
		} else {
			q.Choices = append(q.Choices, c)
		}
	}
	u.question = q
	u.mu.Unlock()
	u.a.events.Question(u.id, q)
	return q
}

func (u *update) endAPIQuestion() {
	u.mu.Lock()
	u.question = dbusapi.Question{}
	u.mu.Unlock()
}

// apiAnswer is the API's Answer to the question asked now.
func (u *update) apiAnswer(question, choice string) error {
	u.mu.Lock()
	q := u.question
	u.mu.Unlock()
	if q.ID == "" || q.ID != question {
		return &dbusapi.Error{Kind: dbusapi.NotFound, Text: u.a.loc.Tr(apiTextNoQuestion)}
	}
	if !slices.ContainsFunc(q.Choices, func(c dbusapi.Choice) bool { return c.ID == choice }) {
		return &dbusapi.Error{Kind: dbusapi.Refused, Text: u.a.loc.Tr(apiTextBadChoice, choice)}
	}
	if choice == actCancel {
		u.userCancel()
		return nil
	}
	select {
	case u.answer <- choice:
	default:
	}
	return nil
}

// steps runs the update flow and words how it ended; every exit path leaves the stick locked,
// or as it was.
func (u *update) steps() jobResult {
	loc := u.a.loc
	u.show(u.foundNote())
	done, err := u.flow.Run(u.ctx)
	if err != nil {
		return u.failed(err)
	}
	sum := Summary{
		Changed:      done.Changed,
		BytesCopied:  done.Report.BytesCopied,
		ErrorCount:   done.Report.ErrorCount,
		Skipped:      loc.List(done.Skipped...),
		System:       done.System,
		SystemFailed: done.SystemErr != nil,
	}
	note := doneNote(loc, sum)
	if !done.Ejected {
		note.Summary = loc.Tr("Backup updated")
		// Two sentences: what to do first.
		note.Body = loc.Tr("Eject it in the Files browser before you unplug it.") + " " + note.Body
	}
	if done.KeySlotAdded {
		note.Body += " " + session.KeySlotAddedTextIn(loc)
	}
	res := jobResult{attempt: u.attempt(pairing.ResultSuccess, done.MessageIn(u.a.loc)), note: &note,
		api: dbusapi.Result{Result: dbusapi.ResultSuccess, Text: noteText(note)}}
	// Opened with its passphrase, and no key slot asked for: offered once (its key slot was
	// never added, or turned off).
	if !u.flow.KeyUsed() && !done.KeySlotAdded && done.KeySlotErr == nil && u.a.offerKeySlot(u.ctx, u.stick.UUID) {
		res.offerKeySlot = u.stick.UUID
		offerKeySlotOn(loc, &note)
	}
	if done.SystemErr != nil {
		n := systemErrorNote(loc, done.SystemErr)
		res.systemNote = &n
	}
	return res
}

func (u *update) attempt(r pairing.Result, msg string) pairing.Attempt {
	return pairing.Attempt{Time: u.a.deps.Clock.Now(), Backup: u.stick.UUID, Result: r, Message: msg}
}

// AskApp asks about an application that holds persistent files open (session.UpdateObserver).
func (u *update) AskApp(ctx context.Context, q session.AppQuestion) (session.AppAnswer, error) {
	note := quiesceNote(u.a.loc, q.App, q.Feature)
	switch {
	case !q.Closable:
		note = systemAppNote(u.a.loc, q.App, q.Feature)
	case q.StillRunning:
		note = stillRunningNote(u.a.loc, q.App)
	}
	for {
		key, err := u.ask(note)
		if err != nil {
			return session.AppCancel, err
		}
		switch key {
		case actCancel:
			u.userCancel()
			return session.AppCancel, nil
		case actSkipApp:
			return session.AppLeave, nil
		case actCloseApp:
			return session.AppAgain, nil
		}
	}
}

// Copying shows the progress notification as the helper starts (session.UpdateObserver).
func (u *update) Copying() {
	n := progressNote(u.a.loc, 0, 0, false)
	u.showProgressNote(n, u.a.loc.Tr(progressSteadyBody), true)
	u.a.events.Progress(u.id, dbusapi.Progress{Fraction: 0, SecondsLeft: -1, Step: u.a.loc.Tr(apiStepCopy), Text: n.Body, Cancellable: true})
}

// Progress refreshes the progress notification, at most once per Config.ProgressEvery
// (session.UpdateObserver).
func (u *update) Progress(p session.UpdateProgress) {
	now := u.a.deps.Clock.Now()
	if p.Phase != "copy" || now.Sub(u.lastProgress) < u.a.cfg.ProgressEvery {
		return
	}
	u.lastProgress = now
	u.showProgress(u.a.loc.Tr(apiStepCopy), progressNote(u.a.loc, p.Percent, p.Left, p.LeftKnown), u.a.loc.Tr(progressSteadyBody), p)
}

// showProgress shows n, a progress notification (steadyBody: see showProgressNote), and tells
// the API the same progress of step.
func (u *update) showProgress(step string, n notify.Notification, steadyBody string, p session.UpdateProgress) {
	u.showProgressNote(n, steadyBody, false)
	left := int64(-1)
	if p.LeftKnown {
		left = int64(p.Left / time.Second)
	}
	u.a.events.Progress(u.id, dbusapi.Progress{Fraction: float64(p.Percent) / 100, SecondsLeft: left, Step: step, Text: n.Body, Cancellable: true})
}

// RefreshingSystem shows the progress notification of the system partition's refresh
// (session.SystemObserver).
func (u *update) RefreshingSystem(from, to string) {
	u.showProgressNote(systemProgressNote(u.a.loc, 0, 0, false), u.a.loc.Tr(progressSteadyBody), true)
}

// SystemProgress refreshes it, at most once per Config.ProgressEvery (session.SystemObserver).
func (u *update) SystemProgress(p session.UpdateProgress) {
	now := u.a.deps.Clock.Now()
	if now.Sub(u.lastSystem) < u.a.cfg.ProgressEvery {
		return
	}
	u.lastSystem = now
	u.showProgress(u.a.loc.Tr(apiStepSystem), systemProgressNote(u.a.loc, p.Percent, p.Left, p.LeftKnown), u.a.loc.Tr(progressSteadyBody), p)
}

// failed says what happened and what to do; the flow left the stick safe to unplug.
func (u *update) failed(err error) jobResult {
	var e *session.UpdateError
	if !errors.As(err, &e) {
		e = &session.UpdateError{Err: err}
	}
	loc := u.a.loc
	result, summary, body := e.Result(), loc.Tr("Your backup Tails was not updated"), ""
	// The Backup app's overview, unless the way out is a new backup.
	page := pageOverview
	switch e.Kind {
	case session.FailCancelled:
		summary = loc.Tr("Backup update cancelled")
		body = loc.Tr("Your backup Tails was not changed.")
		if e.Started {
			body = loc.Tr("Your backup is marked incomplete: the next update finishes it. You can unplug it.")
		}
	case session.FailPaused:
		summary = loc.Tr("Backup update stopped")
		body = loc.Tr("A restore from your backup Tails started, so the backup was not changed; the restore uses it.")
		if u.a.pausedByUpdates(u.ctx) {
			body = loc.Tr("An update started with 'tails-backup update' took over, so this one stopped without changing the backup.")
		}
	case session.FailMarker:
		page = pageCreate
		if e.Marker == session.MarkerOtherTails {
			summary = loc.Tr("This backup Tails belongs to another Tails")
			body = loc.Tr("Its Persistent Storage is a backup of another Tails, so it was not changed. Use your own backup, or create a new one on this stick with 'tails-backup create' (this erases it).")
		} else {
			summary = loc.Tr("This stick is not a backup made by Tails Backup")
			body = loc.Tr("It has no valid backup marker, so it was not changed. To make it your backup, create a new one on it with 'tails-backup create' (this erases it).")
		}
	case session.FailTooSmall:
		page = pageCreate
		// TRANSLATORS: %[1]s and %[2]s are sizes ("15.5 GB").
		body = loc.Tr("Its Persistent Storage holds %[1]s, but your data takes %[2]s. Create a new backup on a bigger USB stick with 'tails-backup create'.",
			loc.Size(e.Have), loc.Size(e.Need))
	case session.FailTooManyTries:
		body = loc.Tr("The passphrase was wrong three times. Unplug your backup Tails and plug it in again to try again.")
	case session.FailNotAuthorized:
		body = loc.Tr("Tails did not allow Tails Backup to unlock the stick. Unlock it in the Files browser, then unplug it and plug it in again.")
	case session.FailUnplugged:
		summary = loc.Tr("Your backup Tails was unplugged during the update")
		body = loc.Tr("Plug it in again to finish the update.")
		if !e.Started {
			body = loc.Tr("It was not changed. Plug it in again to update it.")
		}
	case session.FailHelper:
		body = session.HelperErrorTextIn(loc, e.Err)
		if errors.Is(e.Err, wire.ErrHelperNoSpace) {
			page = pageCreate
		}
	default:
		// TRANSLATORS: %s is what went wrong, in English (an error of the system).
		body = loc.Tr("Something went wrong: %s. Unplug your backup Tails and plug it in again to try again.", session.FirstSentence(e.Err))
	}
	note := errorNote(summary, body)
	api := dbusapi.Result{Result: dbusapi.ResultFailed, Text: noteText(note)}
	if e.Kind == session.FailCancelled {
		api.Result = dbusapi.ResultCancelled
	}
	return jobResult{attempt: u.attempt(result, body), note: &note, notePage: page, api: api}
}

// newRequest builds a helper request.
func newRequest(op wire.Op, backup string) wire.Request {
	return wire.Request{Version: wire.ProtocolVersion, Op: op, Backup: backup}
}

// OpPromote is re-exported for the agent's own use.
const OpPromote = wire.OpPromote
