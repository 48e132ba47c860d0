package agent

// The jobs a person starts in the Backup app (pair, verify, restore, create): each runs the
// session flow the command line runs, with flowUI in place of the terminal.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"tails-backup/clock"
	"tails-backup/dbusapi"
	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// flowJob is the job of a session flow under way; the agent runs one job at a time, this or
// an update.
type flowJob struct {
	id, kind, device, backup string
	ui                       *flowUI
	// plug is set while the job waits for its stick to be plugged in.
	plug *plugWait
}

// plugWait is a flow job waiting for its stick: resolve (run on the Run goroutine at each
// change of the sticks) picks it as the job's method would have, and the pick goes to found.
type plugWait struct {
	resolve func(ctx context.Context) (session.Stick, error)
	found   chan plugFound
}

// plugFound is the stick plugged in for a waiting job, or why it cannot be used.
type plugFound struct {
	st  session.Stick
	err error
}

// flowEnd is how a flow job ended.
type flowEnd struct {
	id  string
	res dbusapi.Result
	// handled are the backups that the agent leaves alone while they stay plugged in: the
	// first update of a stick just paired comes at its next plug, as the sentence says.
	handled []string
}

// busy tells whether a job runs (an update, a promotion or a flow).
func (a *Agent) busy() bool { return a.job != nil || a.promoteJob != "" || a.flow != nil }

// startFlow starts a flow job of kind on device: run goes through the flow with the job's UI
// and says how it ended. It returns the API's ID of the job.
func (a *Agent) startFlow(ctx context.Context, kind, device, backup, step string, run func(ctx context.Context, ui *flowUI) flowEnd) string {
	return a.startFlowAt(ctx, kind, device, backup, dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: step, Cancellable: true}, run)
}

// startFlowAt is startFlow with the job's first Progress.
func (a *Agent) startFlowAt(ctx context.Context, kind, device, backup string, first dbusapi.Progress, run func(ctx context.Context, ui *flowUI) flowEnd) string {
	a.jobSeq++
	id := fmt.Sprintf("%s-%d", kind, a.jobSeq)
	jctx, cancel := context.WithCancelCause(ctx)
	ui := &flowUI{
		a: a, id: id, kind: kind, cancel: cancel,
		questions: dbusapi.NewQuestions(&a.events, a.cfg.QuestionTimeout),
		log:       a.log.WithFields(logrus.Fields{"job": id, "device": device}),
	}
	a.flow = &flowJob{id: id, kind: kind, device: device, backup: backup, ui: ui}
	ui.log.Info("job started through the API")
	a.events.Progress(id, first)
	a.events.Changed()
	go func() {
		end := run(jctx, ui)
		end.id = id
		cancel(nil)
		a.flowDone <- end
	}()
	return id
}

// startStickFlow starts a flow job of kind that needs a Tails stick: resolve picks it now, on
// the Run goroutine, as the job's method does (its errors are the method's). When device is ""
// and no stick fit for the job is plugged in, the job starts all the same and waits for one,
// saying texts.wait: it goes on with run once a stick is plugged in (or ends with why that
// stick cannot be used), and ends cancelled at Cancel, or failed after cfg.PlugWait.
func (a *Agent) startStickFlow(ctx context.Context, kind, device, step string, texts plugTexts,
	resolve func(ctx context.Context) (session.Stick, error), run func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd) (string, error) {
	st, err := resolve(ctx)
	if err == nil {
		return a.startFlow(ctx, kind, session.Device(st.Stick), st.UUID, step, func(ctx context.Context, ui *flowUI) flowEnd {
			return run(ctx, ui, st)
		}), nil
	}
	if !nonePlugged(device, err) {
		return "", err
	}
	found := make(chan plugFound, 1)
	wait, deadline := a.stickWait(), a.deps.Clock.Now().Add(a.stickWait())
	waitText := a.loc.Tr(texts.wait)
	waiting := dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: waitText, Text: waitText, Cancellable: true, WaitingForStick: true}
	id := a.startFlowAt(ctx, kind, "", "", waiting, func(ctx context.Context, ui *flowUI) flowEnd {
		ui.mu.Lock()
		ui.step = waitText
		ui.mu.Unlock()
		ui.log.WithField("wait", wait).Info("waiting for the stick to be plugged in")
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		timeout := make(chan error, 1)
		go func() { timeout <- clock.WaitUntil(wctx, a.deps.Clock, deadline) }()
		select {
		case f := <-found:
			stop()
			if f.err != nil {
				ui.log.WithError(f.err).Info("the stick plugged in cannot be used")
				return flowEnd{res: dbusapi.Result{Result: dbusapi.ResultFailed, Text: plugRefusedText(f.err)}}
			}
			ui.log.WithField("device", session.Device(f.st.Stick)).Info("the stick is plugged in")
			ui.setStep(step)
			return run(ctx, ui, f.st)
		case <-ctx.Done():
		case err := <-timeout:
			if err == nil {
				ui.log.Info("no stick was plugged in in time")
				return flowEnd{res: dbusapi.Result{Result: dbusapi.ResultFailed, Text: a.loc.Tr(texts.timeout, waitDuration(a.loc, wait))}}
			}
		}
		res := dbusapi.Result{Result: dbusapi.ResultFailed, Text: a.loc.Tr(textPlugStopped)}
		if ui.wasCancelled() {
			res = dbusapi.Result{Result: dbusapi.ResultCancelled, Text: a.loc.Tr(textPlugCancelled)}
		}
		ui.log.WithField("result", res.Result).Info("the wait for the stick ended")
		return flowEnd{res: res}
	})
	a.flow.plug = &plugWait{resolve: resolve, found: found}
	return id, nil
}

// stickWait is how long a job waits for its stick.
func (a *Agent) stickWait() time.Duration {
	if a.cfg.PlugWait > 0 {
		return a.cfg.PlugWait
	}
	return DefaultPlugWait
}

// nonePlugged tells whether err, of a job's pick of device, means that no stick fit for the job
// is plugged in, so that the job waits for one: only when the app named none.
func nonePlugged(device string, err error) bool {
	var e *dbusapi.Error
	return device == "" && errors.As(err, &e) && e.Kind == dbusapi.NotFound
}

// checkPlug gives the flow job waiting for its stick the stick just plugged in (on the Run
// goroutine, after each change of the sticks); it waits on while none fit for it is.
func (a *Agent) checkPlug(ctx context.Context) {
	f := a.flow
	if f == nil || f.plug == nil {
		return
	}
	st, err := f.plug.resolve(ctx)
	if nonePlugged("", err) {
		return
	}
	p := f.plug
	f.plug = nil
	if err == nil {
		f.device, f.backup = session.Device(st.Stick), st.UUID
		a.events.Changed()
	}
	p.found <- plugFound{st: st, err: err}
}

// finishFlow ends the flow job on the Run goroutine.
func (a *Agent) finishFlow(ctx context.Context, end flowEnd) {
	a.flow = nil
	for _, uuid := range end.handled {
		a.handled[uuid] = true
	}
	a.log.WithFields(logrus.Fields{"job": end.id, "result": end.res.Result}).Info("job ended")
	a.events.Finished(end.id, end.res)
	a.events.Changed()
}

// flowStore is the pairing store where it is now, for a flow: its default place moves into the
// Persistent Storage once the first backup is marked.
func (a *Agent) flowStore() func() (*pairing.Store, error) {
	store, statePath := a.deps.Store, a.cfg.StatePath
	return func() (*pairing.Store, error) {
		if statePath == nil {
			return store, nil
		}
		p, err := statePath()
		if err != nil {
			return nil, fmt.Errorf("cannot tell where the pairing store is (%s)", session.Reason(err))
		}
		if p == store.Path() {
			return store, nil
		}
		return pairing.NewStore(p, a.deps.Clock.Now, a.log.WithField("component", "store")), nil
	}
}

// connect is the flows' session.Connect: the agent's own udisks2 connection.
func (a *Agent) connect(ctx context.Context) (session.FlowDisks, *udisks.Snapshot, error) {
	snap, err := a.deps.Disks.GetSnapshot(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list the USB sticks (%s); check that udisks2 is running and try again", session.Reason(err))
	}
	return a.deps.Disks, snap, nil
}

// flowUI is what a flow job shows and asks, through the API: it is the flow's PairUI,
// VerifyUI, RestoreUI and CreateProgress. Confirmations and applications become Questions
// (the safe choice first), sentences Messages, the root helper's events Progress, and the
// findings of a verify the details of its result.
type flowUI struct {
	a         *Agent
	id, kind  string
	cancel    context.CancelCauseFunc
	questions *dbusapi.Questions
	log       *logrus.Entry
	// confirm is the question a Confirm asks, its body the flow's question.
	confirm dbusapi.Question
	// closing are sentences the flow says that end it: kept for the result, not sent as Messages.
	closing map[string]bool
	// closingFormats are such sentences as formats with one %s (textMatches).
	closingFormats []string

	mu        sync.Mutex
	cancelled bool   // the person cancelled the job
	declined  bool   // the person answered a question with its safe choice (or did not answer)
	closed    string // the closing sentence said
	nApps     int    // application questions asked
	step      string // what the job does now
	stepN     int    // the creation's step
	eta       session.ETA
	lastProg  time.Time
	counted   bool // an event with totals came in this step
	diffs     []dbusapi.Difference
	checks    []dbusapi.Check
}

// userCancel is the API's Cancel: the flow stops at once.
func (u *flowUI) userCancel() {
	u.mu.Lock()
	u.cancelled = true
	u.mu.Unlock()
	u.cancel(session.ErrCancelled)
}

// wasCancelled: the person cancelled the job, or declined what it asked.
func (u *flowUI) wasCancelled() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.cancelled || u.declined
}

// Sticks implements session.PairUI and session.RestoreUI: the app listed them itself.
func (u *flowUI) Sticks([]session.Stick, *pairing.State) {}

// Say implements the flows' UIs.
func (u *flowUI) Say(s string) {
	if u.closing[s] || slices.ContainsFunc(u.closingFormats, func(f string) bool { return textMatches(s, f) }) {
		u.mu.Lock()
		u.closed = s
		u.mu.Unlock()
		return
	}
	u.a.events.Message(u.id, dbusapi.LevelInfo, appText(s))
}

// Warn implements the flows' UIs.
func (u *flowUI) Warn(s string) {
	u.a.events.Message(u.id, dbusapi.LevelWarning, appText(s))
}

// ask asks q and waits for the answer: its first choice when ctx ends or no answer comes.
func (u *flowUI) ask(ctx context.Context, q dbusapi.Question) string {
	u.progress(dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: u.a.loc.Tr(apiStepAnswer), Cancellable: true})
	choice, err := u.questions.Ask(ctx, u.id, q)
	if err != nil {
		choice = q.Choices[0].ID
	}
	u.log.WithFields(logrus.Fields{"question": q.ID, "choice": choice}).Info("answered")
	if choice == q.Choices[0].ID {
		u.decline()
	}
	return choice
}

func (u *flowUI) decline() {
	u.mu.Lock()
	u.declined = true
	u.mu.Unlock()
}

// Confirm implements session.PairUI.
func (u *flowUI) Confirm(ctx context.Context, question string) bool {
	q := u.confirm
	q.Body = appText(question)
	return u.ask(ctx, q) == q.Destructive
}

// ConfirmRestore implements session.RestoreUI: the description said just before is in the body;
// a backup of another Tails is its own question, with a stronger warning.
func (u *flowUI) ConfirmRestore(ctx context.Context, other bool) bool {
	q := restoreQuestion(u.a.loc, other)
	return u.ask(ctx, q) == q.Destructive
}

// AskApp implements session.RestoreUI.
func (u *flowUI) AskApp(ctx context.Context, aq session.AppQuestion) (session.AppAnswer, error) {
	u.mu.Lock()
	u.nApps++
	n := u.nApps
	u.mu.Unlock()
	q := restoreAppQuestion(u.a.loc, n, aq)
	choice, err := u.questions.Ask(ctx, u.id, q)
	if err != nil {
		return session.AppCancel, err
	}
	switch choice {
	case actCloseApp:
		return session.AppAgain, nil
	case actSkipApp:
		return session.AppLeave, nil
	}
	u.decline()
	return session.AppCancel, nil
}

// Event implements session.VerifyUI and session.RestoreUI, and CreateProgress: the findings
// of a verify (and the problems of a restored Persistent Storage) are kept for the result, the
// progress goes out as Progress.
func (u *flowUI) Event(ev wire.Event) {
	switch ev.Phase {
	case wire.PhaseChange:
		u.mu.Lock()
		u.diffs = append(u.diffs, difference(u.a.loc, ev))
		u.mu.Unlock()
		return
	case wire.PhaseProblem:
		u.mu.Lock()
		u.checks = append(u.checks, dbusapi.Check{Name: session.OneLine(ev.Path), OK: ev.Warning, Text: problemText(u.a.loc, ev)})
		u.mu.Unlock()
		return
	case "scan":
		return
	}
	if ev.BytesTotal <= 0 && ev.FilesTotal <= 0 {
		return
	}
	now := u.a.deps.Clock.Now()
	u.mu.Lock()
	u.counted = true
	pct, left, known := u.eta.Update(now, ev.BytesDone, ev.BytesTotal, ev.FilesDone, ev.FilesTotal)
	if !u.lastProg.IsZero() && now.Sub(u.lastProg) < u.a.cfg.ProgressEvery {
		u.mu.Unlock()
		return
	}
	u.lastProg = now
	step := u.step
	u.mu.Unlock()
	secs := int64(-1)
	if known {
		secs = int64(left / time.Second)
	}
	u.progress(dbusapi.Progress{Fraction: float64(pct) / 100, Text: percentText(u.a.loc, pct, left, known), Step: step, SecondsLeft: secs, Cancellable: true})
}

// EndProgress implements session.RestoreUI.
func (u *flowUI) EndProgress(complete bool) {
	if complete {
		u.Complete()
	}
}

// setStep says what the job does now.
func (u *flowUI) setStep(step string) {
	u.mu.Lock()
	u.step, u.eta, u.lastProg, u.counted = step, session.ETA{}, time.Time{}, false
	u.mu.Unlock()
	u.progress(dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: step, Cancellable: true})
}

// Step implements session.CreateProgress.
func (u *flowUI) Step(what string) {
	u.mu.Lock()
	u.stepN++
	n := u.stepN
	u.mu.Unlock()
	// TRANSLATORS: %[1]d and %[2]d count the steps, %[3]s is what the step does.
	u.setStep(u.a.loc.Tr(apiStepCreate, n, session.CreateSteps, what))
}

// Note implements session.CreateProgress.
func (u *flowUI) Note(s string) { u.Say(s) }

// Complete implements session.CreateProgress: the step's operation ended with everything done.
func (u *flowUI) Complete() {
	u.mu.Lock()
	counted, step := u.counted, u.step
	u.mu.Unlock()
	if counted {
		u.progress(dbusapi.Progress{Fraction: 1, Text: percentText(u.a.loc, 100, 0, false), Step: step, SecondsLeft: 0, Cancellable: true})
	}
}

// Finish implements session.CreateProgress: nothing is left drawn.
func (u *flowUI) Finish() {}

func (u *flowUI) progress(p dbusapi.Progress) {
	if p.Step == "" {
		u.mu.Lock()
		p.Step = u.step
		u.mu.Unlock()
	}
	u.a.events.Progress(u.id, p)
}

// findings returns the differences and checks gathered (never nil: verify's details hold both
// once the comparison ran).
func (u *flowUI) findings() ([]dbusapi.Difference, []dbusapi.Check) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]dbusapi.Difference{}, u.diffs...), append([]dbusapi.Check{}, u.checks...)
}

func (u *flowUI) closingText() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.closed
}

// failed is the result of a flow that returned err: cancelled when the person cancelled it.
func (u *flowUI) failed(err error) dbusapi.Result {
	r := dbusapi.Result{Result: dbusapi.ResultFailed, Text: errorSentence(err)}
	if u.wasCancelled() {
		// The flow says it was interrupted (its context ended): the person cancelled it.
		loc := u.a.loc
		r.Result = dbusapi.ResultCancelled
		switch r.Text {
		case appText(loc.Tr("interrupted, so nothing was changed")):
			r.Text = appText(loc.Tr("cancelled, so nothing was changed"))
		case appText(loc.Tr("interrupted, so the backup was not verified")):
			r.Text = appText(loc.Tr("cancelled, so the backup was not verified"))
		case appText(loc.Tr("interrupted while the root helper was running; run the command again")):
			r.Text = appText(loc.Tr("cancelled while the root helper was running; try again to finish"))
		}
	}
	u.log.WithError(err).WithField("result", r.Result).Info("the flow ended without doing its work")
	return r
}

// difference is a change event of a verify as the app shows it.
func difference(loc *l10n.Locale, ev wire.Event) dbusapi.Difference {
	d := dbusapi.Difference{Path: session.OneLine(ev.Path)}
	what := session.OneLine(strings.Join(ev.What, ", "))
	switch ev.Kind {
	case "create":
		d.Change, d.Text = diffMissing, loc.Tr(textDiffMissing)
	case "delete":
		d.Change, d.Text = diffExtra, loc.Tr(textDiffExtra)
	case "metadata":
		d.Change, d.Text = diffMetadata, loc.Tr(textDiffMetadata, what)
	default:
		d.Change, d.Text = diffChanged, loc.Tr(textDiffChanged, what)
	}
	return d
}
