package session

// Restoring this Tails' Persistent Storage from a backup stick: the agent's updates are paused,
// the backup is opened read-only, described and confirmed, the applications that use the data
// replaced are closed or their data left alone, then the root helper copies.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/quiesce"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// RestoreCloseGrace is how long an application gets to quit, as in the agent.
const RestoreCloseGrace = 15 * time.Second

// RestorePause is how long the agent's automatic updates are paused by a restore at most: the
// restore ends the pause itself, and a restore that crashed must not stop the updates for
// long. The agent leaves a backup plugged in during the pause alone until it is plugged in
// again, so a restore that takes longer is not disturbed either.
const RestorePause = 2 * time.Hour

// RestorePlugWait is how long a restore waits for a backup to be plugged in.
const RestorePlugWait = 10 * time.Minute

// ErrNoAnswer is returned by a RestoreUI when the person gave no answer (the input ended).
var ErrNoAnswer = errors.New("no answer")

// RestoreUI is what the person is shown and asked during a restore.
type RestoreUI interface {
	// Sticks lists the Tails sticks plugged in, when the person must say which one (st is nil:
	// the pairings do not matter).
	Sticks(cands []Stick, st *pairing.State)
	Say(s string)
	Warn(s string)
	// ConfirmRestore asks whether to restore from the backup just described; other: it is a
	// backup of another Tails, which needs a stronger confirmation.
	ConfirmRestore(ctx context.Context, other bool) bool
	// AskApp asks about an application; its error is ErrNoAnswer, or ctx's.
	AskApp(ctx context.Context, q AppQuestion) (AppAnswer, error)
	// Event is a progress event or a problem of the restored Persistent Storage.
	Event(ev wire.Event)
	// EndProgress ends what Event drew: at 100% when the copy is complete.
	EndProgress(complete bool)
}

// Restore restores this Tails' Persistent Storage from a backup stick.
type Restore struct {
	Connect  Connect
	Boot     udisks.BootPaths
	OwnRoot  string // this Tails' Persistent Storage
	Store    func() (*pairing.Store, error)
	Helper   wire.HelperRunner
	Asker    pinentry.PassphraseAsker
	Quiescer quiesce.Quiescer
	Now      func() time.Time
	Log      *logrus.Entry
	// Loc is the session's language (nil: English).
	Loc *l10n.Locale
	// App: the person uses the Backup app, not a terminal: the texts say what to do there,
	// with no command or option to type.
	App bool
	UI  RestoreUI
	// Device names the stick (/dev/sdb, sdb); "" is the only one plugged in, waited for up to
	// PlugWait when none is.
	Device   string
	PlugWait time.Duration
	// Yes restores without asking; SkipClose leaves the data of open applications as it is.
	Yes, SkipClose bool
}

// Restored is what a restore did.
type Restored struct {
	Report  *wire.Report
	Skipped []string // the features whose data was left as it was
}

// Run restores, or says in one sentence why not (nothing was changed, or the restore did not
// finish).
func (r *Restore) Run(ctx context.Context) (*Restored, error) {
	if _, present, _ := tails.ReadMarkerIn(r.OwnRoot); present {
		if r.App {
			return nil, errors.New(r.Loc.Tr("this Tails is itself a backup Tails (its Persistent Storage holds a backup marker), so nothing is restored into it; make it your main Tails first, or restore into another Tails"))
		}
		return nil, errors.New(r.Loc.Tr("this Tails is itself a backup Tails (its Persistent Storage holds a backup marker), so nothing is restored into it; make it your main Tails first with 'tails-backup promote', or restore into another Tails"))
	}
	// Before the backup can be plugged in: the agent would update it at once, overwriting the
	// data to restore with the data as it is now.
	store, err := r.Store()
	if err != nil {
		return nil, err
	}
	resume, err := r.pauseUpdates(ctx, store)
	if err != nil {
		return nil, err
	}
	defer resume()

	disks, snap, err := r.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if r.Device == "" && len(Candidates(snap, r.Boot)) == 0 {
		r.UI.Say(r.Loc.Tr("Plug in your backup Tails now (Ctrl-C to stop)."))
		if snap, err = waitForBackupStick(ctx, r.Loc, disks, r.Boot, r.PlugWait); err != nil {
			return nil, err
		}
	}
	stick, err := r.pick(snap)
	if err != nil {
		return nil, err
	}
	name := DescribeIn(r.Loc, stick.Stick)
	r.UI.Say(r.Loc.Tr("Opening the backup on %s.", name))

	o := OpenStick(disks, stick, r.Asker, Use{Kind: UseRestore, LeaveAsFound: true, ReadOnly: true, App: r.App}, r.Loc, r.Log)
	defer func() {
		if err := o.Release(ctx); err != nil {
			r.UI.Warn(NotLockedText(r.Loc, name, err))
		}
	}()
	if err := o.Unlock(ctx); err != nil {
		return nil, err
	}
	if err := o.Mount(ctx); err != nil {
		return nil, err
	}
	mp, err := mountPointOf(ctx, disks, o.Opened.Clear())
	if err != nil {
		r.Log.WithError(err).Debug("the backup's mount point")
		if r.App {
			return nil, errors.New(r.Loc.Tr("the Persistent Storage of %[1]s is not mounted any more (%[2]s); unplug it, plug it in again and try again", name, Reason(err)))
		}
		return nil, errors.New(r.Loc.Tr("the Persistent Storage of %[1]s is not mounted any more (%[2]s); unplug it, plug it in again and run 'tails-backup restore' again", name, Reason(err)))
	}
	m, present, err := tails.ReadMarkerIn(mp)
	switch {
	case !present:
		return nil, errors.New(r.Loc.Tr("%s is not a backup made by tails-backup (its Persistent Storage has no backup marker), so nothing was changed; plug in your backup Tails and give its device", name))
	case errors.Is(err, tails.ErrMarkerFormat):
		return nil, errors.New(r.Loc.Tr("the backup on %s was made by a newer version of tails-backup, so nothing was changed; update Tails and try again", name))
	case err != nil:
		r.Log.WithError(err).Debug("the backup's marker")
		return nil, errors.New(r.Loc.Tr("the backup marker on %[1]s is damaged (%[2]s), so it is not trusted as a backup made by tails-backup and nothing was changed; restore from another backup", name, Reason(err)))
	}

	other := m.Source != BootUUID(snap, r.Boot)
	for _, line := range RestoreDescription(r.Loc, name, m, other, r.Now()) {
		r.UI.Say(line)
	}
	if !r.Yes && !r.UI.ConfirmRestore(ctx, other) {
		if r.App {
			return nil, errors.New(r.Loc.Tr(notConfirmed))
		}
		if other {
			return nil, errors.New(r.Loc.Tr("not confirmed, so nothing was changed (type restore to restore from a backup of another Tails, or use --yes)"))
		}
		return nil, errors.New(r.Loc.Tr("not confirmed, so nothing was changed (answer y to restore, or use --yes)"))
	}

	skip, skipped, err := r.quiesce(ctx)
	if err != nil {
		return nil, err
	}

	r.UI.Say(r.Loc.Tr("Restoring from the backup on %s; do not unplug it.", name))
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpRestore, Backup: stick.UUID, Source: m.Source, Skip: skip}
	rep, err := r.Helper.Run(ctx, req, r.UI.Event)
	r.UI.EndProgress(err == nil)
	var he *wire.HelperError
	if errors.As(err, &he) && he.Code == wire.CodeNoSpace && he.Needed > he.Available {
		// Here the space is this Tails' own Persistent Storage: the generic sentence's "a
		// bigger USB stick" would send the person to make a new backup.
		r.Log.WithError(err).Warn("the restore ran out of space")
		// TRANSLATORS: %[1]s is the stick restored from; %[2]s the size missing, %[3]s the size free ("1.5 GB").
		return nil, errors.New(r.Loc.Tr("the restore from %[1]s did not finish: the Persistent Storage of this Tails is too small, %[2]s more is needed than the %[3]s free; delete files you do not need from it, or restore onto a Tails USB stick with a bigger Persistent Storage",
			name, r.Loc.Size(he.Needed-he.Available), r.Loc.Size(he.Available)))
	}
	if err != nil {
		return nil, fmt.Errorf(r.Loc.Tr("the restore from %[1]s did not finish: %[2]w"), name, CommandHelperError(ctx, r.Loc, err, r.Log))
	}
	if rep == nil {
		rep = &wire.Report{}
	}
	return &Restored{Report: rep, Skipped: skipped}, nil
}

// RestoreResultIn is the result of a restore that ran to its end: nil when everything was
// restored and Tails accepts the result.
func RestoreResultIn(loc *l10n.Locale, rep *wire.Report) error {
	switch {
	case rep.ErrorCount > 0:
		n := int(min(rep.ErrorCount, 1<<31-1))
		return errors.New(loc.TrN("%d file could not be restored (listed above); everything else was restored",
			"%d files could not be restored (listed above); everything else was restored", n, rep.ErrorCount))
	case rep.Problems > 0:
		return errors.New(loc.Tr("everything was restored, but Tails would not accept this Persistent Storage as it is (see the problems above); after restarting Tails, turn on the features you need in the Persistent Storage settings"))
	}
	return nil
}

// pauseUpdates pauses the agent's automatic updates in the store for RestorePause at most,
// and returns what ends the pause: it runs at the end of the restore whatever happened,
// Ctrl-C included (a pause that ends later by itself is only a warning).
func (r *Restore) pauseUpdates(ctx context.Context, store *pairing.Store) (resume func(), err error) {
	owner := fmt.Sprintf("restore %d", os.Getpid())
	start := r.Now()
	until := start.Add(RestorePause)
	if _, err := UpdateState(ctx, r.Loc, store, func(se *pairing.StateError) { r.UI.Warn(stateErrorText(r.Loc, se, r.App)) }, func(s *pairing.State) error {
		s.Pause(owner, until, start)
		return nil
	}); err != nil {
		return nil, fmt.Errorf(r.Loc.Tr("the automatic updates of your backup could not be paused for the restore, so nothing was changed: %w"), err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := store.Update(ctx, func(s *pairing.State) error { s.Resume(owner); return nil }); err != nil {
			r.Log.WithError(err).Debug("end the pause")
			r.UI.Warn(r.Loc.Tr("the automatic updates of your backup stay paused until %[1]s (%[2]s).", TimeText(r.Loc, until, r.Now()), Reason(err)))
		}
	}, nil
}

// waitForBackupStick waits until a Tails stick that could be a backup is plugged in, for at
// most d, and returns the udisks view that has it.
func waitForBackupStick(ctx context.Context, loc *l10n.Locale, disks FlowDisks, boot udisks.BootPaths, d time.Duration) (*udisks.Snapshot, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	snap, err := disks.WaitFor(wctx, func(s *udisks.Snapshot) (bool, error) {
		return len(Candidates(s, boot)) > 0, nil
	})
	switch {
	case err == nil:
		return snap, nil
	case ctx.Err() != nil:
		return nil, errors.New(loc.Tr("interrupted while waiting for the backup Tails, so nothing was changed"))
	case errors.Is(err, context.DeadlineExceeded):
		if d >= time.Minute && d%time.Minute == 0 {
			m := int(d / time.Minute)
			return nil, errors.New(loc.TrN("no backup Tails was plugged in within %d minute, so nothing was changed; run 'tails-backup restore' again and plug in your backup Tails when it asks",
				"no backup Tails was plugged in within %d minutes, so nothing was changed; run 'tails-backup restore' again and plug in your backup Tails when it asks", m, m))
		}
		// TRANSLATORS: %s is a duration as Go writes it ("1m30s").
		return nil, errors.New(loc.Tr("no backup Tails was plugged in within %s, so nothing was changed; run 'tails-backup restore' again and plug in your backup Tails when it asks", d))
	}
	return nil, errors.New(loc.Tr("cannot watch the USB sticks (%s), so nothing was changed; check that udisks2 is running, plug in your backup Tails and run 'tails-backup restore' again", Reason(err)))
}

// pick picks the stick named by Device, or the only Tails stick plugged in besides the boot
// stick; with several, it lists them and asks for the device.
func (r *Restore) pick(snap *udisks.Snapshot) (Stick, error) {
	cands := Candidates(snap, r.Boot)
	st, err := PickStick(snap, r.Boot, cands, r.Device)
	var pe *PickError
	if !errors.As(err, &pe) {
		return st, err
	}
	switch pe.Reason {
	case PickNone:
		return st, errors.New(r.Loc.Tr("no backup Tails is plugged in (besides the stick this Tails runs from); plug in your backup Tails and try again"))
	case PickSeveral:
		r.UI.Sticks(cands, nil)
		return st, fmt.Errorf("%w: %s", ErrUsage, r.Loc.TrN("%[1]d Tails stick is plugged in; say which one to restore from, e.g. 'tails-backup restore %[2]s'",
			"%[1]d Tails sticks are plugged in; say which one to restore from, e.g. 'tails-backup restore %[2]s'", pe.Count, pe.Count, Device(cands[0].Stick)))
	case PickNoDevice:
		return st, errors.New(r.Loc.Tr("there is no device %s; plug in your backup Tails and give its device, e.g. /dev/sdb", pe.Device))
	case PickNotTails:
		return st, errors.New(r.Loc.Tr("%s is not a Tails stick (it has no Persistent Storage partition); give the device of your backup Tails", pe.Device))
	}
	switch pe.Unfit {
	case UnfitBoot:
		return st, errors.New(r.Loc.Tr("%s is the stick this Tails is running from, which holds the Persistent Storage to restore into; give the device of your backup Tails", pe.Device))
	case UnfitNotRemovable:
		return st, errors.New(r.Loc.Tr("%s is not a removable USB stick, so it is not a backup Tails; give the device of your backup Tails", pe.Device))
	}
	return st, errors.New(r.Loc.Tr("%s has no encrypted Persistent Storage, so it is not a backup made by tails-backup; give the device of your backup Tails", pe.Device))
}

// mountPointOf is where udisks says the file system clear is mounted.
func mountPointOf(ctx context.Context, disks FlowDisks, clear dbus.ObjectPath) (string, error) {
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

// RestoreDescription says what the backup is and what restoring does.
func RestoreDescription(loc *l10n.Locale, name string, m tails.Marker, other bool, now time.Time) []string {
	var lines []string
	switch {
	case m.Finished.IsZero():
		lines = append(lines, loc.Tr("The backup on %s has never been updated completely.", name))
	case m.TailsVersion != "":
		// TRANSLATORS: %[1]s names the stick, %[2]s is a date and time, %[3]s a version of Tails ("6.10").
		lines = append(lines, loc.Tr("The backup on %[1]s was last updated completely on %[2]s, from Tails %[3]s.", name, TimeText(loc, m.Finished, now), OneLine(m.TailsVersion)))
	default:
		lines = append(lines, loc.Tr("The backup on %[1]s was last updated completely on %[2]s.", name, TimeText(loc, m.Finished, now)))
	}
	if m.State == tails.StateIncomplete {
		lines = append(lines, loc.Tr("Its last update, started on %s, did not finish: some of its files may be older than others, or missing.", TimeText(loc, m.Started, now)))
	}
	lines = append(lines, loc.Tr("Restoring copies it into the Persistent Storage of this Tails: files in your Persistent Storage that are not on the backup will be deleted, and files that differ will be replaced by the backup's version."))
	if other {
		lines = append(lines, loc.Tr("This backup was made from another Tails (Persistent Storage %s), not from this one: restore from it only if it is your own backup, for example of the Tails USB stick you lost.", m.Source))
	}
	return lines
}

// quiesce asks to close the applications that use the data the restore replaces, as the
// agent's update does. It returns the top-level folders to leave as they are (and the
// features' names for the person).
func (r *Restore) quiesce(ctx context.Context) (skip, names []string, err error) {
	q := r.Quiescer
	features, err := q.ActiveFeatures(ctx)
	if err != nil {
		r.Log.WithError(err).Warn("cannot tell which features are on; not checking for open applications")
		return nil, nil, nil
	}
	busy, err := q.BusyApps(ctx, features)
	if err != nil {
		r.Log.WithError(err).Warn("cannot list the running applications")
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
		if r.SkipClose {
			r.UI.Say(r.Loc.Tr("%[1]s is open: the data of %[2]s is left as it is (--skip-close).", a, f))
			leave(app)
			continue
		}
		question := AppQuestion{App: a, Feature: f, Closable: app.Closable,
			Text: r.Loc.Tr("%[1]s is open, so the data of %[2]s might be replaced while it uses it. Close it to restore that data, or leave that data as it is.", a, f)}
		if !app.Closable {
			question.Text = r.Loc.Tr("%[1]s is running and using the data of %[2]s, so that data might be replaced while it uses it. Wait until it has finished, then try again; or leave that data as it is.", a, f)
		}
	ask:
		for {
			answer, err := r.UI.AskApp(ctx, question)
			switch {
			case ctx.Err() != nil:
				return nil, nil, errors.New(r.Loc.Tr("interrupted, so nothing was changed"))
			case errors.Is(err, ErrNoAnswer) && r.App:
				return nil, nil, errors.New(r.Loc.Tr("no answer about %s, so nothing was changed; close it and try again", a))
			case errors.Is(err, ErrNoAnswer):
				return nil, nil, errors.New(r.Loc.Tr("no answer about %s, so nothing was changed; close it and run 'tails-backup restore' again, or add --skip-close to leave its data as it is", a))
			}
			switch answer {
			case AppLeave:
				leave(app)
				break ask
			case AppAgain:
			default:
				return nil, nil, errors.New(r.Loc.Tr("cancelled, so nothing was changed"))
			}
			if !app.Closable {
				still, err := q.BusyApps(ctx, []tails.Feature{app.Feature})
				if err != nil {
					r.Log.WithError(err).Debug("list the running applications")
					if r.App {
						return nil, nil, errors.New(r.Loc.Tr("cannot tell whether %[1]s has finished (%[2]s), so nothing was changed; try again", a, Reason(err)))
					}
					return nil, nil, errors.New(r.Loc.Tr("cannot tell whether %[1]s has finished (%[2]s), so nothing was changed; run 'tails-backup restore' again", a, Reason(err)))
				}
				if !slices.ContainsFunc(still, func(b quiesce.BusyApp) bool { return b.App.Name == a }) {
					break ask
				}
				continue
			}
			r.UI.Say(r.Loc.Tr("Asking %s to close...", a))
			err = q.CloseApp(ctx, app, RestoreCloseGrace)
			switch {
			case err == nil:
				break ask
			case errors.Is(err, quiesce.ErrStillRunning) && r.App:
				question.Text = r.Loc.Tr("%s did not close. Close it yourself (save your work first), then choose to close it again, or leave its data as it is.", a)
			case errors.Is(err, quiesce.ErrStillRunning):
				question.Text = r.Loc.Tr("%s did not close. Close it yourself (save your work first), then answer c again, or leave its data as it is.", a)
			case ctx.Err() != nil:
				return nil, nil, errors.New(r.Loc.Tr("interrupted, so nothing was changed"))
			default:
				r.Log.WithError(err).Debug("close the application")
				if r.App {
					return nil, nil, errors.New(r.Loc.Tr("%[1]s could not be closed (%[2]s), so nothing was changed; close it yourself and try again", a, Reason(err)))
				}
				return nil, nil, errors.New(r.Loc.Tr("%[1]s could not be closed (%[2]s), so nothing was changed; close it yourself and run 'tails-backup restore' again", a, Reason(err)))
			}
		}
	}
	return skip, names, nil
}
