package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/clock"
	"tails-backup/dbusapi"
	"tails-backup/inhibit"
	"tails-backup/l10n"
	"tails-backup/notify"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/quiesce"
	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// Disks is what the agent needs of udisks2, the flows of the Backup app's jobs included
// (session.FlowDisks, session.CreateDisks); *udisks.Client has it.
type Disks interface {
	Watch(ctx context.Context) (*udisks.Watcher, error)
	WaitFor(ctx context.Context, cond func(*udisks.Snapshot) (bool, error)) (*udisks.Snapshot, error)
	Format(ctx context.Context, block dbus.ObjectPath, typ string, o udisks.FormatOptions) error
	CreateSystemPartition(ctx context.Context, table dbus.ObjectPath, offset, size uint64) (dbus.ObjectPath, error)
	CreatePersistentPartition(ctx context.Context, table dbus.ObjectPath, offset, size uint64, passphrase string) (dbus.ObjectPath, error)
	UnlockOrReuse(ctx context.Context, luks dbus.ObjectPath, passphrase string) (dbus.ObjectPath, bool, error)
	MountOrReuse(ctx context.Context, fs dbus.ObjectPath) (string, bool, error)
	MountReadOnlyOrReuse(ctx context.Context, fs dbus.ObjectPath) (string, bool, error)
	Unmount(ctx context.Context, fs dbus.ObjectPath) error
	Lock(ctx context.Context, luks dbus.ObjectPath) error
	PowerOff(ctx context.Context, drive dbus.ObjectPath) error
	BootPaths() udisks.BootPaths
	GetSnapshot(ctx context.Context) (*udisks.Snapshot, error)
}

// Notifier is what the agent needs of the notification server; *notify.Notifier has it.
type Notifier interface {
	Show(ctx context.Context, n notify.Notification) (uint32, error)
	Replace(ctx context.Context, id uint32, n notify.Notification) (uint32, error)
	ShowProgress(ctx context.Context, prev notify.ProgressIDs, n notify.Notification, steadyBody string) (notify.ProgressIDs, error)
	CloseNotification(ctx context.Context, id uint32) error
	Events() <-chan notify.Event
}

// Deps are the agent's connections to the world. Tests pass fakes.
type Deps struct {
	Disks     Disks
	Notifier  Notifier
	Asker     pinentry.PassphraseAsker
	Quiescer  quiesce.Quiescer
	Inhibitor inhibit.Inhibitor
	Helper    wire.HelperRunner
	Store     *pairing.Store
	Clock     clock.Clock
	Log       *logrus.Entry
	// Hotplug, if set, delivers a value whenever udev sees a block device come or go; the
	// agent then looks at udisks at once instead of waiting for its signals.
	Hotplug <-chan struct{}
	// OpenApp opens the Backup app on a page ("overview", "pair", ...) when a notification is
	// clicked (its default action); LaunchApp if nil.
	OpenApp func(ctx context.Context, page string) error
}

// Config tunes the agent.
type Config struct {
	// QuiesceGrace is how long an application gets to close after being asked (15 s if 0).
	QuiesceGrace time.Duration
	// ProgressEvery is the shortest time between two updates of the progress notification
	// (1 s if 0): notification servers and users do not need more.
	ProgressEvery time.Duration
	// ReadMarker reads the backup marker at the root of a mounted Persistent Storage;
	// nil reads the file (as the session user: markers are world-readable).
	ReadMarker func(root string) (tails.Marker, error)
	// StatePath, if set, says where the store should be now; the agent moves to it when it
	// changes. The default location changes when the first pairing creates the tails-backup
	// folder of the Persistent Storage, and the agent may have started before.
	StatePath func() (string, error)
	// Medium is where the running system partition is mounted (tails.MediumMount if ""): the
	// backup's is refreshed from it after each update.
	Medium string
	// QuestionTimeout is how long a question of the API waits for its answer before its first
	// (safe) choice is taken (dbusapi.QuestionTimeout if 0).
	QuestionTimeout time.Duration
	// PlugWait is how long a job of the app (pair, verify, restore) waits for its stick to be
	// plugged in when none is (DefaultPlugWait if 0).
	PlugWait time.Duration
	// Loc is the session's language, of the notifications, of the texts of the API that the
	// app shows, of the passphrase prompts and of the session flows (nil: English).
	Loc *l10n.Locale
}

// Agent is the session agent: one update at a time, reminders, notifications.
type Agent struct {
	cfg  Config
	deps Deps
	log  *logrus.Entry
	loc  *l10n.Locale // cfg.Loc

	// Owned by the Run goroutine.
	snap       *udisks.Snapshot
	source     string          // LUKS UUID of this Tails' Persistent Storage
	isBackup   bool            // this Tails is itself a backup
	handled    map[string]bool // paired sticks already handled while plugged in
	toldUnpair map[dbus.ObjectPath]bool
	job        *job
	jobDone    chan jobResult
	waitingID  uint32 // "Plug in your backup Tails" notification
	reminderID uint32
	warningID  uint32
	confirmID  uint32
	// keyOfferID is the offer of updates without the passphrase to the backup keyOfferUUID.
	keyOfferID   uint32
	keyOfferUUID string
	// pages are the pages of the Backup app that a click on the agent's own notifications
	// opens, by notification ID (those of an update open the overview).
	pages map[uint32]string
	// opened is the notification whose click last opened the app, and when.
	opened struct {
		id uint32
		at time.Time
	}
	promoteDone chan error

	routes router
	// requests are the calls of the D-Bus API (api.go), run on the Run goroutine.
	requests chan apiRequest
	// events is where the API's signals go (a Service once ServeAPI ran).
	events dbusapi.Relay
	jobSeq int
	// sticksSeen names the Tails sticks last seen, to tell the API when they change.
	sticksSeen string
	// promoteJob is the API's ID of the promotion under way ("" none).
	promoteJob string
	// flow is the job of a session flow the app started (pair, verify, restore, create), nil
	// when none; flowDone says how it ended.
	flow     *flowJob
	flowDone chan flowEnd
	// bootloaders are the backups whose boot loader must be installed again, for the session
	// (session.SystemRefresh).
	bootloaders session.PendingBootloaders
}

// New makes an agent; Run starts it.
func New(cfg Config, deps Deps) *Agent {
	if cfg.QuiesceGrace <= 0 {
		cfg.QuiesceGrace = 15 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.ReadMarker == nil {
		cfg.ReadMarker = readMarkerFile
	}
	if cfg.Medium == "" {
		cfg.Medium = tails.MediumMount
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.OpenApp == nil {
		deps.OpenApp = LaunchApp
	}
	log := deps.Log
	if log == nil {
		l := logrus.New()
		l.Out = discardWriter{}
		log = logrus.NewEntry(l)
	}
	return &Agent{
		cfg:         cfg,
		deps:        deps,
		log:         log,
		loc:         cfg.Loc,
		handled:     make(map[string]bool),
		toldUnpair:  make(map[dbus.ObjectPath]bool),
		pages:       make(map[uint32]string),
		jobDone:     make(chan jobResult, 1),
		promoteDone: make(chan error, 1),
		flowDone:    make(chan flowEnd, 1),
		routes:      router{routes: make(map[uint32]chan<- notify.Event)},
		requests:    make(chan apiRequest),
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// Run runs the agent until ctx ends. It returns an error only when it cannot start: no
// udisks2, no state store.
func (a *Agent) Run(ctx context.Context) error {
	state, err := a.deps.Store.Load(ctx)
	if err != nil {
		var se *pairing.StateError
		if !errors.As(err, &se) {
			return fmt.Errorf("load the tails-backup state: %w", err)
		}
		a.log.WithError(err).Warn("state set aside")
		a.showOn(ctx, errorNote(a.loc.Tr("Your Tails Backup settings were damaged"),
			a.loc.Tr("They were set aside and Tails Backup starts afresh: pair your backup Tails again with 'tails-backup pair'.")), pagePair)
	}

	watch, err := a.watch(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if watch != nil {
			watch.Close()
		}
	}()
	a.snap = watch.Initial()
	a.source = session.SourceUUID(a.snap, a.deps.Disks.BootPaths())
	a.checkBackupTails(ctx)

	// Watched before the reminder is scheduled, so that no set of the clock falls in between.
	clockSet := clockChanges(ctx, a.deps.Clock, a.log)
	timer := a.deps.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	a.evaluate(ctx, state)
	a.scheduleReminder(ctx, timer)

	events := a.deps.Notifier.Events()
	for {
		select {
		case <-ctx.Done():
			if a.job != nil {
				a.job.cancel()
				<-a.jobDone
			}
			if a.flow != nil {
				a.flow.ui.cancel(context.Canceled)
				<-a.flowDone
			}
			return nil
		case ev, ok := <-watch.Events():
			if !ok {
				continue
			}
			if ev.Snapshot != nil {
				a.snap = ev.Snapshot
			}
			if a.source == "" {
				a.source = session.SourceUUID(a.snap, a.deps.Disks.BootPaths())
			}
			a.evaluateNow(ctx)
			a.scheduleReminder(ctx, timer)
		case <-watch.Done():
			// udisksd went away for good or the bus dropped: watch again until it is back.
			a.log.WithError(watch.Err()).Warn("udisks watch ended; reconnecting")
			watch.Close()
			if watch = a.rewatch(ctx); watch == nil {
				return nil
			}
			a.snap = watch.Initial()
			a.evaluateNow(ctx)
		case <-a.deps.Hotplug:
			if snap, err := a.snapshotNow(ctx, watch); err == nil {
				a.snap = snap
				a.evaluateNow(ctx)
			}
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			a.handleNotification(ctx, ev, timer)
		case res := <-a.jobDone:
			a.finishJob(ctx, res)
			a.evaluateNow(ctx)
			a.scheduleReminder(ctx, timer)
		case err := <-a.promoteDone:
			a.finishPromote(ctx, err)
		case end := <-a.flowDone:
			a.finishFlow(ctx, end)
			a.evaluateNow(ctx)
			a.scheduleReminder(ctx, timer)
		case r := <-a.requests:
			r(ctx, timer)
		case <-timer.C():
			a.remind(ctx)
			a.scheduleReminder(ctx, timer)
		case _, ok := <-clockSet:
			if !ok {
				clockSet = nil
				if ctx.Err() == nil {
					a.log.Warn("the wall clock watch ended: a reminder may come late after the clock is set")
				}
				continue
			}
			// The timer counts monotonic time: its deadline is stale once the wall clock moved.
			a.log.WithField("now", a.deps.Clock.Now().Format(time.RFC3339)).Info("the wall clock was set: rescheduling the reminder")
			a.scheduleReminder(ctx, timer)
		}
	}
}

func (a *Agent) watch(ctx context.Context) (*udisks.Watcher, error) {
	w, err := a.deps.Disks.Watch(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch udisks2: %w", err)
	}
	return w, nil
}

// rewatch watches udisks again, retrying every two seconds; nil means ctx ended.
func (a *Agent) rewatch(ctx context.Context) *udisks.Watcher {
	for {
		w, err := a.watch(ctx)
		if err == nil {
			return w
		}
		t := a.deps.Clock.NewTimer(2 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// snapshotNow returns the watcher's latest view once the events it has queued are applied.
func (a *Agent) snapshotNow(ctx context.Context, w *udisks.Watcher) (*udisks.Snapshot, error) {
	snap := a.snap
	for {
		select {
		case ev := <-w.Events():
			if ev.Snapshot != nil {
				snap = ev.Snapshot
			}
		default:
			return snap, nil
		}
	}
}

func (a *Agent) loadState(ctx context.Context) pairing.State {
	a.followStatePath()
	st, err := a.deps.Store.Load(ctx)
	if err != nil {
		a.log.WithError(err).Warn("load state")
	}
	return st
}

// followStatePath switches to the store at Config.StatePath when it moved. Only the Run
// goroutine uses the store.
func (a *Agent) followStatePath() {
	if a.cfg.StatePath == nil {
		return
	}
	p, err := a.cfg.StatePath()
	if err != nil || p == a.deps.Store.Path() {
		return
	}
	a.log.WithField("state", p).Info("the pairing store moved")
	a.deps.Store = pairing.NewStore(p, a.deps.Clock.Now, a.log.WithField("component", "store"))
}

func (a *Agent) evaluateNow(ctx context.Context) {
	a.evaluate(ctx, a.loadState(ctx))
	a.checkPlug(ctx)
}

// evaluate looks at the sticks present: starts the update of a paired one, tells once about
// an unpaired Tails stick, and forgets the sticks that left.
func (a *Agent) evaluate(ctx context.Context, state pairing.State) {
	if a.snap == nil {
		return
	}
	sticks := session.Classify(a.snap, a.deps.Disks.BootPaths(), state.IsPaired)
	a.sticksChanged(sticks)
	// state was read from the store just now (evaluateNow), so a pause set by a restore is
	// seen before any update of a stick that appeared since.
	paused := state.Paused(a.deps.Clock.Now())
	present := make(map[string]bool)
	drives := make(map[dbus.ObjectPath]bool)
	for _, st := range sticks {
		drives[st.Drive.Path] = true
		if st.UUID != "" {
			present[st.UUID] = true
		}
		switch st.Kind {
		case session.Paired:
			if a.isBackup || a.handled[st.UUID] {
				continue
			}
			if paused {
				// A restore runs, most likely from this very stick: updating it would overwrite
				// what the user wants back. Handled, so that the end of the pause does not start
				// it while it is still plugged in: the next plug is a new chance.
				a.handled[st.UUID] = true
				a.log.WithField("backup", st.UUID).Info("a paired backup is plugged in while a restore runs: not updating it")
				continue
			}
			if a.job != nil || a.flow != nil {
				continue // a flow job uses the stick, or the flow's result decides (flowEnd.handled)
			}
			if a.source == "" {
				a.log.Warn("a paired backup is plugged in but this Tails' Persistent Storage is not unlocked")
				a.handled[st.UUID] = true
				a.show(ctx, errorNote(a.loc.Tr("Your Persistent Storage is not unlocked"),
					a.loc.Tr("Tails Backup copies your Persistent Storage: restart Tails, unlock it in the Welcome Screen, then plug in your backup again.")))
				continue
			}
			a.startJob(ctx, st, true)
		case session.Unpaired:
			if a.toldUnpair[st.Drive.Path] || a.isBackup {
				continue
			}
			a.toldUnpair[st.Drive.Path] = true
			switch {
			case paused:
				// During a restore, it is the stick restored from (the backup of a lost Tails):
				// telling how to pair it would only confuse.
			case a.flow != nil:
				// A job of the Backup app (create, pair, verify, restore) is using a stick or
				// waiting for one: most likely this one; the person is in the app already.
			case st.Cleartext != nil:
				// Unlocked here: the backup that 'tails-backup create' is making (its Persistent
				// Storage exists, unlocked, some seconds before it is marked and paired), or a
				// stick the user opened in the Files browser. Not news to them.
				a.log.WithField("drive", st.Drive.Path).Info("an unpaired Tails stick is unlocked here: not telling how to pair it")
			default:
				a.showOn(ctx, unpairedNote(a.loc), pagePair)
			}
		}
	}
	// The drive object goes when the stick is unplugged or powered off (the partitions'
	// objects change while udisks unlocks, locks and probes, so they say nothing here).
	if a.job != nil && a.snap.Object(a.job.drive) == nil {
		a.job.gone()
	}
	for uuid := range a.handled {
		if !present[uuid] {
			delete(a.handled, uuid) // unplugged: the next plug is a new chance
		}
	}
	for d := range a.toldUnpair {
		if !drives[d] {
			delete(a.toldUnpair, d)
		}
	}
}

// show displays a notification of the agent, whose click opens the Backup app's overview;
// failures are logged, never fatal.
func (a *Agent) show(ctx context.Context, n notify.Notification) uint32 {
	return a.showOn(ctx, n, pageOverview)
}

// showOn is show with a click that opens the Backup app on page.
func (a *Agent) showOn(ctx context.Context, n notify.Notification, page string) uint32 {
	id, err := a.deps.Notifier.Show(ctx, clickOpensApp(a.loc, n))
	if err != nil {
		a.log.WithError(err).Warn("show notification")
		return 0
	}
	a.pages[id] = page
	return id
}

func (a *Agent) closeNote(ctx context.Context, id *uint32) {
	if *id != 0 {
		if err := a.deps.Notifier.CloseNotification(ctx, *id); err != nil {
			a.log.WithError(err).Debug("close notification")
		}
		*id = 0
	}
}

// handleNotification routes a notification event: to the update job that owns the
// notification, or to the agent's own reminder, waiting and warning notifications.
func (a *Agent) handleNotification(ctx context.Context, ev notify.Event, timer clock.Timer) {
	switch e := ev.(type) {
	case notify.ServerChanged:
		// Old ids are gone; the running job re-shows its notification.
		a.waitingID, a.reminderID, a.warningID, a.confirmID, a.keyOfferID = 0, 0, 0, 0, 0
		clear(a.pages)
		a.routes.forgetEarly()
		a.routes.broadcast(ev)
		if e.Available && a.isBackup {
			a.warningID = a.showOn(ctx, backupTailsNote(a.loc), pagePromote)
		}
	case notify.ActionInvoked:
		if e.ActionKey == notify.DefaultActionKey {
			// A click on the notification itself: the notifications of an update (routed
			// to it) open the overview, which shows the update.
			page, ok := a.pages[e.ID]
			if !ok {
				page = pageOverview
			}
			// GNOME Shell 43 invokes the default action once per Notify of the notification
			// (its daemon connects a handler each time): a progress notification replaced a
			// hundred times would open the app a hundred times for one click.
			now := a.deps.Clock.Now()
			if e.ID == a.opened.id && now.Sub(a.opened.at) < openAgain {
				return
			}
			a.opened.id, a.opened.at = e.ID, now
			a.openApp(ctx, page)
			return
		}
		if a.routes.deliver(e.ID, ev) {
			return
		}
		a.handleAction(ctx, e, timer)
	case notify.NotificationClosed:
		delete(a.pages, e.ID)
		if a.routes.deliver(e.ID, ev) {
			return
		}
		switch e.ID {
		case a.reminderID:
			a.reminderID = 0
		case a.waitingID:
			a.waitingID = 0
		case a.warningID:
			a.warningID = 0
		case a.confirmID:
			a.confirmID = 0
		case a.keyOfferID:
			a.keyOfferID = 0
		}
	}
}

func (a *Agent) handleAction(ctx context.Context, e notify.ActionInvoked, timer clock.Timer) {
	now := a.deps.Clock.Now()
	switch {
	case e.ID == a.reminderID && e.ActionKey == actUpdateNow:
		a.reminderID = 0
		switch {
		case a.job != nil:
		case a.pausedNow(ctx):
			a.show(ctx, pausedNote(a.loc, a.pausedByUpdates(ctx)))
		default:
			a.waitingID = a.show(ctx, waitingNote(a.loc))
		}
	case e.ID == a.reminderID && e.ActionKey == actSnooze:
		a.reminderID = 0
		a.updateState(ctx, func(s *pairing.State) error { s.Snooze(now); return nil })
		a.scheduleReminder(ctx, timer)
		a.events.Changed()
	case e.ID == a.reminderID && e.ActionKey == actStopRemind:
		a.reminderID = 0
		a.updateState(ctx, func(s *pairing.State) error { s.Reminder.Disabled = true; return nil })
		a.scheduleReminder(ctx, timer)
		a.events.Changed()
	case e.ID == a.waitingID && e.ActionKey == actCancel:
		a.closeNote(ctx, &a.waitingID)
	case e.ID == a.warningID && e.ActionKey == actPromote:
		a.warningID = 0
		a.confirmID = a.showOn(ctx, promoteConfirmNote(a.loc), pagePromote)
	case e.ID == a.confirmID && e.ActionKey == actPromoteSure:
		a.confirmID = 0
		if a.promoteJob == "" {
			a.promote(ctx)
		}
	case e.ID == a.confirmID && e.ActionKey == actCancel:
		a.confirmID = 0
	case e.ID == a.keyOfferID && e.ActionKey == actKeySlot:
		a.keyOfferID = 0
		a.takeKeySlotOffer(ctx, a.keyOfferUUID)
	}
}

// pausedNow tells whether a restore holds the automatic updates off now.
func (a *Agent) pausedNow(ctx context.Context) bool {
	st := a.loadState(ctx)
	return st.Paused(a.deps.Clock.Now())
}

// pausedByUpdates tells whether only 'tails-backup update' holds the automatic updates off now.
func (a *Agent) pausedByUpdates(ctx context.Context) bool {
	st := a.loadState(ctx)
	return st.PausedOnlyByUpdates(a.deps.Clock.Now())
}

func (a *Agent) updateState(ctx context.Context, fn func(*pairing.State) error) {
	a.followStatePath()
	if _, err := a.deps.Store.Update(ctx, fn); err != nil {
		a.log.WithError(err).Warn("save state")
	}
}

// scheduleReminder arms the timer for the next reminder decision.
func (a *Agent) scheduleReminder(ctx context.Context, timer clock.Timer) {
	d := a.decideReminder(ctx)
	timer.Stop()
	if d.Due {
		timer.Reset(0)
		return
	}
	if !d.Next.IsZero() {
		timer.Reset(max(d.Next.Sub(a.deps.Clock.Now()), time.Second))
	}
}

func (a *Agent) decideReminder(ctx context.Context) session.Reminder {
	state := a.loadState(ctx)
	stickPresent := a.job != nil
	if a.snap != nil {
		for _, st := range session.Classify(a.snap, a.deps.Disks.BootPaths(), state.IsPaired) {
			if st.Kind == session.Paired {
				stickPresent = true
			}
		}
	}
	return session.DecideReminder(session.ReminderInput{State: state, Now: a.deps.Clock.Now(), StickPresent: stickPresent, IsBackupTails: a.isBackup})
}

func (a *Agent) remind(ctx context.Context) {
	d := a.decideReminder(ctx)
	if !d.Due || a.reminderID != 0 {
		return
	}
	a.reminderID = a.show(ctx, reminderNote(a.loc, d.DaysOld))
	now := a.deps.Clock.Now()
	a.updateState(ctx, func(s *pairing.State) error { s.ReminderShown(now); return nil })
}

// checkBackupTails warns, once per session, when this Tails is itself a backup.
func (a *Agent) checkBackupTails(ctx context.Context) {
	root := a.deps.Disks.BootPaths().Persistence
	if root == "" {
		return
	}
	if _, err := a.cfg.ReadMarker(root); err == nil {
		a.isBackup = true
		a.warningID = a.showOn(ctx, backupTailsNote(a.loc), pagePromote)
	}
}

// promote asks the helper to remove this Tails' own backup marker; it returns the API's ID of
// the job.
func (a *Agent) promote(ctx context.Context) string {
	a.jobSeq++
	a.promoteJob = fmt.Sprintf("promote-%d", a.jobSeq)
	a.events.Progress(a.promoteJob, dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: a.loc.Tr(apiStepPromote)})
	a.events.Changed()
	go func() {
		_, err := a.deps.Helper.Run(ctx, newRequest(OpPromote, ""), nil)
		a.promoteDone <- err
	}()
	return a.promoteJob
}

func (a *Agent) finishPromote(ctx context.Context, err error) {
	id := a.promoteJob
	a.promoteJob = ""
	defer a.events.Changed()
	if err != nil {
		a.log.WithError(err).Warn("promote")
		n := errorNote(a.loc.Tr("This Tails could not be made your main Tails"), session.HelperErrorTextIn(a.loc, err))
		a.events.Finished(id, dbusapi.Result{Result: dbusapi.ResultFailed, Text: noteText(n)})
		a.show(ctx, n)
		return
	}
	a.isBackup = false
	a.closeNote(ctx, &a.warningID)
	// The old main Tails is lost: forget its backups, whose markers name it, not this Tails.
	a.updateState(ctx, func(s *pairing.State) error {
		s.Backups = []pairing.PairedBackup{}
		s.LastSuccess = time.Time{}
		return nil
	})
	n := promotedNote(a.loc)
	a.events.Finished(id, dbusapi.Result{Result: dbusapi.ResultSuccess, Text: noteText(n)})
	a.showOn(ctx, n, pageCreate)
}

// router hands notification events to the goroutine waiting for them.
type router struct {
	mu     sync.Mutex
	routes map[uint32]chan<- notify.Event
	// early are the last events that came for a notification with no route: the server
	// answers a click on a notification that an update just showed before that update has its
	// ID back from Show (seen: a click on a new question right after it appeared went
	// nowhere). add delivers them to the route of their ID; the server never reuses an ID.
	early []earlyEvent
}

// earlyEvent is an event kept until its notification has a route.
type earlyEvent struct {
	id uint32
	ev notify.Event
}

// maxEarly bounds the events kept for notifications with no route (most are for
// notifications the agent's own loop handles, which never get one).
const maxEarly = 8

func (r *router) add(id uint32, ch chan<- notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes[id] = ch
	kept := r.early[:0]
	for _, e := range r.early {
		if e.id != id {
			kept = append(kept, e)
			continue
		}
		select {
		case ch <- e.ev:
		default:
		}
	}
	r.early = kept
}

// forgetEarly drops the events kept for notifications with no route (the server changed).
func (r *router) forgetEarly() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.early = nil
}

func (r *router) remove(id uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routes, id)
}

// deliver passes ev to the route of id, without blocking, and tells whether one exists; an
// event with no route is kept for a route of that id added soon after.
func (r *router) deliver(id uint32, ev notify.Event) bool {
	r.mu.Lock()
	ch, ok := r.routes[id]
	if !ok {
		if len(r.early) == maxEarly {
			r.early = append(r.early[:0], r.early[1:]...)
		}
		r.early = append(r.early, earlyEvent{id, ev})
	}
	r.mu.Unlock()
	if ok {
		select {
		case ch <- ev:
		default:
		}
	}
	return ok
}

func (r *router) broadcast(ev notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[chan<- notify.Event]bool)
	for _, ch := range r.routes {
		if !seen[ch] {
			seen[ch] = true
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// readMarkerFile is the agent's default Config.ReadMarker: the marker file read as amnesia.
func readMarkerFile(root string) (tails.Marker, error) { return session.ReadMarkerFile(root) }
