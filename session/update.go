package session

// The update of a paired backup, once its stick is plugged in: open it, check its marker and
// its space, ask to close the applications, keep the computer awake, run the root helper's
// update with progress, eject. The agent (notifications) and 'tails-backup update' (a
// terminal) call it; what the person sees and decides goes through an UpdateObserver, and how
// it ended comes back as an UpdateDone or an *UpdateError that the caller words.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/inhibit"
	"tails-backup/internal/dmcrypt"
	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/quiesce"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// ErrCancelled is the cause (context.WithCancelCause) with which a caller cancels an update
// because the person asked to: the update then ends as cancelled, not as failed.
var ErrCancelled = errors.New("the update was cancelled")

// ErrBackupGone is the cause of a helper stopped because its stick was unplugged.
var ErrBackupGone = errors.New("the backup was unplugged")

// ErrPaused stops an update that was under way when a restore paused the updates.
var ErrPaused = errors.New("a restore paused the automatic updates")

// UpdateProgress is a progress event of the root helper's update, with, during the copy, the
// percentage done and, once it can be estimated, the time left.
type UpdateProgress struct {
	wire.Event
	Percent   int
	Left      time.Duration
	LeftKnown bool
}

// UpdateObserver is what the person sees and decides during an update. Its methods are called
// on the update's goroutine.
type UpdateObserver interface {
	// AskApp asks what to do about an application; an error (ctx ended) stops the update.
	AskApp(ctx context.Context, q AppQuestion) (AppAnswer, error)
	// Copying says that the root helper starts: from now on the backup may change.
	Copying()
	// Progress is each progress event of the helper; Percent and Left are set in the copy phase.
	Progress(p UpdateProgress)
	// SystemObserver sees the refresh of the backup's system partition, when Update.System
	// is set and the systems differ.
	SystemObserver
}

// UpdatePassphrase is how an update asks the passphrase of the backup's Persistent Storage,
// in the agent and in 'tails-backup update'.
func UpdatePassphrase(loc *l10n.Locale, asker pinentry.PassphraseAsker, st Stick) Passphrase {
	return Passphrase{
		Asker: asker,
		Prompt: pinentry.Prompt{
			Title:       loc.Tr("Tails Backup"),
			Description: loc.Tr("Enter the passphrase of your backup Tails (%s) to update it.", NameIn(loc, st.Stick)),
			// GNOME Shell shows the prompt as the dialog's heading, and not the title.
			Prompt: loc.Tr("Passphrase of your backup Tails"),
			OK:     loc.Tr("Update"),
			// pinentry-gnome3 labels its own Cancel in English when it is not given one.
			Cancel: loc.Tr("Cancel"),
		},
		Tries:     3,
		WrongText: loc.Tr("Wrong passphrase. Try again: it is the passphrase of the backup's Persistent Storage."),
	}
}

// Update is one update of one paired backup. Run it once; StickGone may be called from any
// goroutine while it runs.
type Update struct {
	Disks     Disks
	Asker     pinentry.PassphraseAsker
	Quiescer  quiesce.Quiescer
	Inhibitor inhibit.Inhibitor
	Helper    wire.HelperRunner
	// Store is read, after the applications are closed, for a pause of the updates.
	Store *pairing.Store
	Now   func() time.Time
	Log   *logrus.Entry
	// Loc is the session's language of the passphrase prompt and of what the session shows
	// while the update runs (nil: English).
	Loc *l10n.Locale

	Stick Stick
	// Source is the LUKS UUID of this Tails' Persistent Storage, which the marker must name;
	// Persistence is where it is mounted (its space used is compared to the backup's size).
	Source      string
	Persistence string
	// ReadMarker reads the marker at the root of the mounted backup (ReadMarkerFile if nil).
	ReadMarker func(root string) (tails.Marker, error)
	// QuiesceGrace is how long an application gets to close after being asked (15 s if 0).
	QuiesceGrace time.Duration
	// PauseOwner is this update's own holder of a pause of the updates ("update 1234"), which
	// does not stop it; "" for the agent, which every pause stops.
	PauseOwner string
	// KeepPlugged is for a command, which is run again where the agent waits for the stick to be
	// plugged in again: on a failure the stick is unmounted and locked, not powered off, and a
	// stick found unlocked is left as it was (another program, the agent's update maybe, uses
	// it).
	KeepPlugged bool
	// System, if set, brings the backup's system partition to the running Tails after the data
	// was updated and before the eject. Its failure never fails the update: it comes back in
	// UpdateDone.SystemErr.
	System   *SystemRefresh
	Observer UpdateObserver

	// statfs is unix.Statfs; tests replace it to fake the sizes of the file systems.
	statfs func(path string, st *unix.Statfs_t) error
	// mappings lists the crypt mappings of a LUKS UUID (dmcrypt.Of of the real sysfs if nil);
	// tests replace it.
	mappings func(uuid string) ([]dmcrypt.Mapping, error)

	mu sync.Mutex
	// stopHelper, while the root helper's update runs, stops it; unplugged says it did so
	// because the stick left udisks' view.
	stopHelper context.CancelCauseFunc
	unplugged  bool
	started    bool // the helper was started: the backup may have changed
	keyUsed    bool // unlocked with the kept key
	// kept is the passphrase typed, kept (and wiped at the end) when the person asked for
	// updates without it: the update adds the key slot with it (addWantedKeySlot).
	kept []byte
	open *Opened
}

// UpdateDone is how a successful update went.
type UpdateDone struct {
	Report *wire.Report
	// Changed counts the entries created, updated, changed in metadata only, or deleted.
	Changed int64
	// Skipped are the features whose data was skipped this time, for the person.
	Skipped []string
	// System is the Tails version the backup's system partition was updated to ("" if it was
	// not); SystemErr says why its refresh failed (nil if it did not).
	System    string
	SystemErr *SystemError
	// Ejected: the stick can be unplugged safely.
	Ejected bool
	// KeySlotAdded: the person had asked for updates without the passphrase, and this update
	// added the backup's key slot with the passphrase typed; KeySlotErr says why it could not
	// (nil if not asked or added).
	KeySlotAdded bool
	KeySlotErr   error
}

// MessageIn is the message recorded with the attempt, in loc's language (status shows it): ""
// unless some files were not copied.
func (d *UpdateDone) MessageIn(loc *l10n.Locale) string {
	if n := d.Report.ErrorCount; n > 0 {
		return loc.TrN("%d file could not be copied", "%d files could not be copied", int(min(n, 1<<31-1)), n)
	}
	return ""
}

// FailureKind is why an update failed, for the caller's words.
type FailureKind int

const (
	FailOther         FailureKind = iota // anything before the helper started
	FailCancelled                        // the person cancelled (or gave no passphrase)
	FailPaused                           // a restore paused the updates: the stick is left to it
	FailMarker                           // the stick's marker does not allow the update (Marker says why)
	FailTooSmall                         // the backup cannot hold the Persistent Storage (Need, Have)
	FailTooManyTries                     // the passphrase was wrong three times
	FailNotAuthorized                    // Tails did not allow the unlock
	FailUnplugged                        // the stick was unplugged
	FailHelper                           // the root helper failed after it started
)

// MarkerProblem says why a stick's marker does not allow the update.
type MarkerProblem int

const (
	MarkerInvalid    MarkerProblem = iota // no valid backup marker: not a backup made by Tails Backup
	MarkerOtherTails                      // a backup of another Tails
)

// UpdateError is a failed update: what happened, and whether the backup may have changed.
type UpdateError struct {
	Err  error
	Kind FailureKind
	// Started: the helper was started, so the backup may be marked incomplete.
	Started bool
	Marker  MarkerProblem // with FailMarker
	// Need and Have are the bytes in use here and the size of the backup, with FailTooSmall.
	Need, Have int64
}

func (e *UpdateError) Error() string { return e.Err.Error() }
func (e *UpdateError) Unwrap() error { return e.Err }

// Result is how the attempt is recorded in the pairing store.
func (e *UpdateError) Result() pairing.Result {
	switch e.Kind {
	case FailCancelled:
		if e.Started {
			return pairing.ResultIncomplete
		}
		return pairing.ResultCancelled
	case FailPaused:
		return pairing.ResultCancelled
	case FailUnplugged:
		if e.Started {
			return pairing.ResultIncomplete
		}
	case FailHelper:
		return pairing.ResultIncomplete
	}
	return pairing.ResultFailed
}

// errMarker and errTooSmall carry the details of a refusal to the failure.
type errMarker struct{ problem MarkerProblem }

func (e *errMarker) Error() string {
	if e.problem == MarkerOtherTails {
		return "This backup Tails belongs to another Tails"
	}
	return "This stick is not a backup made by Tails Backup"
}

type errTooSmall struct{ need, have int64 }

func (e *errTooSmall) Error() string { return "the backup is too small" }

// errAppCancelled: the person chose to cancel when asked about an application.
var errAppCancelled = fmt.Errorf("%w: asked to close an application", ErrCancelled)

// Run goes through the update; every way out leaves the stick ejected, or as it was. The
// error is an *UpdateError. Cancelling ctx with the cause ErrCancelled cancels it for the
// person; any other end of ctx stops it as a failure.
func (u *Update) Run(ctx context.Context) (*UpdateDone, error) {
	if u.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		u.Log = logrus.NewEntry(l)
	}
	if u.ReadMarker == nil {
		u.ReadMarker = ReadMarkerFile
	}
	if u.QuiesceGrace <= 0 {
		u.QuiesceGrace = 15 * time.Second
	}
	if u.Now == nil {
		u.Now = time.Now
	}
	if u.statfs == nil {
		u.statfs = unix.Statfs
	}
	u.clearStale(ctx)
	u.mu.Lock()
	u.open = NewOpened(u.Disks, u.Stick, OpenOptions{Log: u.Log})
	u.mu.Unlock()
	done, err := u.steps(ctx)
	clear(u.kept) // a failure before the key slot was added
	u.kept = nil
	if err != nil {
		return nil, u.failed(ctx, err)
	}
	return done, nil
}

func (u *Update) steps(ctx context.Context) (*UpdateDone, error) {
	if err := u.unlock(ctx); err != nil {
		return nil, err
	}
	root, err := u.open.Mount(ctx)
	if err != nil {
		return nil, err
	}
	// A backup the helper mounted as root, amnesia cannot read: the helper checked its marker.
	if !u.open.MountedAsRoot() {
		if err := u.checkMarker(root); err != nil {
			return nil, err
		}
	}
	if err := u.checkSpace(root); err != nil {
		return nil, err
	}
	// Before the copy: the key's folder, made the first time in this Tails' Persistent
	// Storage, changes the mtime of its root, which the copy then brings to the backup.
	keyAdded, keyErr := u.addWantedKeySlot(ctx)
	skipped, skippedNames, err := u.quiesce(ctx)
	if err != nil {
		return nil, err
	}
	// A restore may have started while this update waited for the passphrase or for the
	// applications: the backup holds the data it restores, so it must not be overwritten now.
	if st, err := u.Store.Load(ctx); err == nil && u.pausedByOther(st) {
		return nil, ErrPaused
	}
	release, err := u.Inhibitor.Inhibit(ctx, u.Loc.Tr("Updating your backup Tails"))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		u.Log.WithError(err).Warn("cannot keep the computer awake during the update")
		release = func() {}
	}
	report, err := u.runHelper(ctx, skipped)
	if err != nil {
		release()
		return nil, err
	}
	if report == nil {
		report = &wire.Report{}
	}
	done := &UpdateDone{
		Report:  report,
		Changed: report.Created + report.Updated + report.MetadataOnly + report.Deleted,
		Skipped: skippedNames,

		KeySlotAdded: keyAdded,
		KeySlotErr:   keyErr,
	}
	// The data is backed up whatever happens to the system partition.
	if u.System != nil {
		var err error
		done.System, err = u.System.Run(ctx, u.Stick, u.Observer)
		errors.As(err, &done.SystemErr)
	}
	release()
	done.Ejected = u.open.Eject(ctx) == nil
	u.Log.WithField("changed", done.Changed).Info("backup updated")
	return done, nil
}

// clearStale asks the root helper (lock-backup) to remove what an earlier plug of the backup
// left unlocked when it was pulled out: a crypt mapping of its LUKS UUID whose backing device
// is gone. udisks2 removes it when the stick goes, but not while the update that was writing
// to it still holds its file system, and does not try again; the mapping is named as udisks
// names the next unlock (luks-UUID), which it makes fail, or it passes for the backup's
// cleartext device. A failure is logged: the unlock that follows says what is wrong.
func (u *Update) clearStale(ctx context.Context) {
	list := u.mappings
	if list == nil {
		list = func(uuid string) ([]dmcrypt.Mapping, error) { return dmcrypt.Of("", uuid) }
	}
	maps, err := list(u.Stick.UUID)
	if err != nil {
		u.Log.WithError(err).Warn("cannot list the device-mapper mappings of the backup")
		return
	}
	var stale []string
	for _, m := range maps {
		if m.Stale {
			stale = append(stale, m.Name)
		}
	}
	if len(stale) == 0 {
		return
	}
	log := u.Log.WithField("mappings", stale)
	log.Warn("an earlier plug of the backup left it unlocked with its stick gone: asking the helper to remove it")
	if _, err := u.Helper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: wire.OpLockBackup, Backup: u.Stick.UUID}, nil); err != nil {
		log.WithError(err).Warn("the helper could not remove what the pull left")
		return
	}
	if ct := u.Stick.Cleartext; ct != nil && ct.Block != nil {
		for _, m := range maps {
			if m.Stale && ct.Block.Device == m.Device {
				u.Stick.Cleartext = nil // that was the mapping removed: the backup is locked
			}
		}
	}
}

// unlock opens the backup with the key this Tails keeps for it (the root helper's
// unlock-with-key), with no prompt, when the pairing store says it has one; when there is no key, or the backup refuses it, it asks the
// passphrase as before, saying why once when the pairing store says it had a key slot.
func (u *Update) unlock(ctx context.Context) error {
	pass := UpdatePassphrase(u.Loc, u.Asker, u.Stick)
	if u.keySlotWanted(ctx) {
		pass.Keep = func(p []byte) { clear(u.kept); u.kept = bytes.Clone(p) }
	}
	if u.Stick.Cleartext == nil && u.hasKeySlot(ctx) {
		err := u.open.UnlockWithKey(ctx, u.Helper)
		switch {
		case err == nil:
			u.mu.Lock()
			u.keyUsed = true
			u.mu.Unlock()
			u.Log.Info("unlocked with the key kept for the backup")
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, wire.ErrHelperKeyMissing) || errors.Is(err, wire.ErrHelperKeyRefused):
			u.Log.WithError(err).Info("no key opens the backup: asking its passphrase")
			if keyLost(ctx, u.Store, u.Stick.UUID, u.Log) {
				pass = KeyLostPassphrase(u.Loc, pass, u.Stick)
			}
		case KeyFallsBack(err):
			u.Log.WithError(err).Warn("the key kept for the backup could not be used: asking its passphrase")
		default:
			return err
		}
	}
	return u.open.Unlock(ctx, pass)
}

// hasKeySlot tells whether the pairing store says that the backup has a key slot whose key
// this Tails keeps: only then is the key tried (a backup paired before, or whose slot was
// turned off, is opened with its passphrase without running the helper for nothing).
func (u *Update) hasKeySlot(ctx context.Context) bool {
	if u.Store == nil {
		return false
	}
	st, err := u.Store.Load(ctx)
	if err != nil {
		u.Log.WithError(err).Warn("cannot read the pairing store: asking the backup's passphrase")
		return false
	}
	b := st.Backup(u.Stick.UUID)
	return b != nil && b.KeySlot
}

// keySlotWanted tells whether the person asked for updates of this backup without the
// passphrase (the offer after an update) and it has no key slot yet.
func (u *Update) keySlotWanted(ctx context.Context) bool {
	if u.Store == nil {
		return false
	}
	st, err := u.Store.Load(ctx)
	if err != nil {
		return false
	}
	b := st.Backup(u.Stick.UUID)
	return b != nil && b.KeySlotWanted && !b.KeySlot
}

// addWantedKeySlot adds the backup's key slot with the passphrase just typed, when the person
// asked for it, and records it; it always wipes the passphrase kept. A failure is reported,
// not fatal: the update goes on, and the wish is dropped (the person may turn it on with
// 'tails-backup passphrase-free on').
func (u *Update) addWantedKeySlot(ctx context.Context) (bool, error) {
	pass := u.kept
	u.kept = nil
	defer clear(pass)
	if pass == nil {
		return false, nil
	}
	err := AddKeySlot(ctx, u.Helper, u.Stick.UUID, pass)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if _, serr := u.Store.Update(ctx, func(s *pairing.State) error {
		if err == nil {
			s.SetKeySlot(u.Stick.UUID, true)
		} else {
			s.WantKeySlot(u.Stick.UUID, false)
		}
		return nil
	}); serr != nil {
		u.Log.WithError(serr).Warn("cannot record the backup's key slot")
	}
	if err != nil {
		u.Log.WithError(err).Warn("the key slot asked for could not be added")
		return false, err
	}
	u.Log.Info("key slot added, as asked: the next updates need no passphrase")
	return true, nil
}

// KeyUsed tells whether the backup was unlocked with the key kept for it, with no passphrase.
func (u *Update) KeyUsed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keyUsed
}

// pausedByOther tells whether a pause of the updates holds this update off: any pause in force
// but this update's own.
func (u *Update) pausedByOther(st pairing.State) bool {
	if !st.Paused(u.Now()) {
		return false
	}
	return len(st.PausedBy) == 0 || slices.ContainsFunc(st.PausedBy, func(o string) bool { return o != u.PauseOwner })
}

func (u *Update) checkMarker(root string) error {
	m, err := u.ReadMarker(root)
	if err != nil {
		u.Log.WithError(err).Warn("no valid backup marker")
		return &errMarker{MarkerInvalid}
	}
	if m.Source != u.Source {
		return &errMarker{MarkerOtherTails}
	}
	return nil
}

// checkSpace refuses early a backup that cannot hold the data in use; the helper checks the
// exact need before writing.
func (u *Update) checkSpace(root string) error {
	var src, dst unix.Statfs_t
	if err := u.statfs(u.Persistence, &src); err != nil {
		return nil // the helper will tell
	}
	if err := u.statfs(root, &dst); err != nil {
		return nil
	}
	used := int64(src.Blocks-src.Bfree) * src.Bsize
	capacity := int64(dst.Blocks) * dst.Bsize
	if used > capacity {
		return &errTooSmall{need: used, have: capacity}
	}
	return nil
}

// quiesce asks the person to close the applications that hold persistent files open. It
// returns the folders to skip (and their names for the person).
func (u *Update) quiesce(ctx context.Context) (skip, names []string, err error) {
	q := u.Quiescer
	features, err := q.ActiveFeatures(ctx)
	if err != nil {
		u.Log.WithError(err).Warn("cannot tell which features are on; not checking for open applications")
		return nil, nil, nil
	}
	busy, err := q.BusyApps(ctx, features)
	if err != nil {
		u.Log.WithError(err).Warn("cannot list the running applications")
		return nil, nil, nil
	}
	for _, app := range busy {
		question := AppQuestion{App: app.App.Name, Feature: app.Feature.Name, Closable: app.Closable}
		for {
			answer, err := u.Observer.AskApp(ctx, question)
			if err != nil {
				return nil, nil, err
			}
			if answer == AppCancel {
				return nil, nil, errAppCancelled
			}
			if answer == AppLeave {
				top, _, _ := strings.Cut(app.Feature.Source, "/")
				skip = append(skip, top)
				names = append(names, app.Feature.Name)
				break
			}
			if !app.Closable { // "Try again": has it finished?
				still, err := q.BusyApps(ctx, []tails.Feature{app.Feature})
				if err != nil {
					return nil, nil, err
				}
				if !slices.ContainsFunc(still, func(b quiesce.BusyApp) bool { return b.App.Name == app.App.Name }) {
					break
				}
				continue
			}
			err = q.CloseApp(ctx, app, u.QuiesceGrace)
			if err == nil {
				break
			}
			if !errors.Is(err, quiesce.ErrStillRunning) {
				return nil, nil, err
			}
			question.StillRunning = true
		}
	}
	return skip, names, nil
}

// runHelper runs the root helper's update and passes on its progress.
func (u *Update) runHelper(ctx context.Context, skip []string) (*wire.Report, error) {
	var eta ETA
	u.mu.Lock()
	u.started = true
	u.mu.Unlock()
	u.Observer.Copying()
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpUpdate, Backup: u.Stick.UUID, Skip: skip}
	hctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	u.mu.Lock()
	u.stopHelper = stop
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.stopHelper = nil
		u.mu.Unlock()
	}()
	return u.Helper.Run(hctx, req, func(ev wire.Event) {
		p := UpdateProgress{Event: ev}
		if ev.Phase == "copy" {
			p.Percent, p.Left, p.LeftKnown = eta.Update(u.Now(), ev.BytesDone, ev.BytesTotal, ev.FilesDone, ev.FilesTotal)
		}
		u.Observer.Progress(p)
	})
}

// StickGone says that the stick's drive left udisks' view. While the root helper's update
// runs, it stops it: the helper would go on writing into the page cache of a stick that is
// gone until a flush fails (minutes on a busy machine), with "Do not unplug" on the screen all
// that time. At the other steps, the udisks call or the helper fails at once.
func (u *Update) StickGone() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stopHelper != nil && !u.unplugged {
		u.unplugged = true
		u.Log.Warn("the backup was unplugged during the update: stopping the helper")
		u.stopHelper(ErrBackupGone)
	}
}

// Started tells whether the root helper was started: the backup may have changed.
func (u *Update) Started() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.started
}

// failed leaves the stick safe to unplug and says what happened.
func (u *Update) failed(ctx context.Context, err error) *UpdateError {
	u.mu.Lock()
	unplugged, started := u.unplugged, u.started
	u.mu.Unlock()
	userCancelled := errors.Is(context.Cause(ctx), ErrCancelled) || errors.Is(err, ErrCancelled)
	// Unplugged, as udisks saw it, whatever the step that was stopped says (the helper a
	// cancellation, pinentry a closed prompt).
	gone := unplugged || errors.Is(err, udisks.ErrDeviceGone) || errors.Is(err, wire.ErrHelperDeviceGone)
	// A restore that paused the updates uses the stick as it is: ejecting it would pull it
	// from under the restore.
	leave := gone || errors.Is(err, ErrPaused) || (u.KeepPlugged && u.Stick.Cleartext != nil)
	switch {
	case leave:
	case u.KeepPlugged:
		u.open.Release(ctx)
	default:
		u.open.Eject(ctx)
	}
	u.Log.WithError(err).Warn("update failed")

	e := &UpdateError{Err: err, Kind: FailOther, Started: started}
	var em *errMarker
	var small *errTooSmall
	switch {
	case (userCancelled || errors.Is(err, pinentry.ErrPinentryCancelled)) && !unplugged:
		e.Kind = FailCancelled
	case errors.Is(err, ErrPaused):
		e.Kind = FailPaused
	case errors.As(err, &em):
		e.Kind, e.Marker = FailMarker, em.problem
	case errors.As(err, &small):
		e.Kind, e.Need, e.Have = FailTooSmall, small.need, small.have
	case errors.Is(err, pinentry.ErrTooManyTries):
		e.Kind = FailTooManyTries
	case errors.Is(err, udisks.ErrNotAuthorized):
		e.Kind = FailNotAuthorized
	case gone:
		e.Kind = FailUnplugged
	case started:
		e.Kind = FailHelper
	}
	return e
}

// ReadMarkerFile reads the marker at the root of a mounted Persistent Storage, refusing a
// symlink or anything but a small regular file; no marker is an error. It works as amnesia,
// which may not open a Tails root for reading (see tails.ReadMarkerIn).
func ReadMarkerFile(root string) (tails.Marker, error) {
	m, present, err := tails.ReadMarkerIn(root)
	if err == nil && !present {
		err = fmt.Errorf("%s holds no backup marker: %w", root, fs.ErrNotExist)
	}
	return m, err
}
