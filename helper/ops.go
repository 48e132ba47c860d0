//go:build linux

package helper

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
	tbsync "tails-backup/sync"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// MaxEventErrors bounds the per-file errors listed in a done event; Report.ErrorCount has the
// full number.
const MaxEventErrors = 100

// udisksTimeout bounds the wait for udisks' answer.
const udisksTimeout = 30 * time.Second

// operation is one validated request being served.
type operation struct {
	ctx context.Context
	sys System
	req wire.Request
	log *logrus.Entry
	out *eventWriter
	// secret is the Secret line of add-key-slot (wiped when Run returns), nil otherwise.
	secret *wire.Secret
}

func (o *operation) run() (*wire.Report, *Failure) {
	ctx, cancel := context.WithTimeout(o.ctx, udisksTimeout)
	snap, err := o.sys.UDisks.GetSnapshot(ctx)
	cancel()
	if err != nil {
		if o.ctx.Err() != nil {
			return nil, cancelled(o.ctx)
		}
		return nil, failf(wire.CodeInternal, wire.ReasonUDisksSilent, wire.Args{}, err, "The drives cannot be listed because udisks does not answer; restart the computer and try again.")
	}
	mounts, err := o.sys.mounts()
	if err != nil {
		return nil, failf(wire.CodeInternal, wire.ReasonNoMountTable, wire.Args{}, err, "The mount table cannot be read; restart the computer and try again.")
	}
	src, f := validateSource(o.sys, snap, mounts)
	if f != nil {
		if o.req.Op != wire.OpCreatePersistence {
			return nil, f
		}
		// Preparing a fresh Persistent Storage does not need this Tails' own: the boot drive
		// is still recognised through udisks.
		o.log.WithError(f).Warn("no Persistent Storage of this Tails; going on without it")
		src = nil
	}
	defer src.close()
	if src != nil {
		o.log = o.log.WithField("source", src.uuid)
	}

	switch o.req.Op {
	case wire.OpPromote:
		return o.promote(snap, src)
	case wire.OpForgetKey:
		return o.forgetKey(src)
	case wire.OpRemoveKeySlot:
		return o.removeKeySlot(snap, src)
	}
	if o.req.Op == wire.OpUpdate || o.req.Op == wire.OpRefreshSystem || o.req.Op == wire.OpInstallBootloader ||
		o.req.Op == wire.OpAddKeySlot || o.req.Op == wire.OpUnlockWithKey {
		if present, err := existsAt(src.fd, tails.MarkerName); err != nil || present {
			return nil, failf(wire.CodeRefused, wire.ReasonSourceIsBackup, wire.Args{}, err, "This Tails is a backup of another Tails (its Persistent Storage holds a backup marker), so it does not update backups itself; make it the main Tails first.")
		}
	}
	if o.req.Op == wire.OpLockBackup {
		return o.lockBackup(snap, src)
	}
	if o.req.Op == wire.OpUnlockWithKey {
		// The backup is still locked: no destination to open yet, only the stick to check.
		return o.unlockWithKey(snap, src)
	}
	dst, f := validateDestination(o.sys, snap, mounts, src, o.req.Backup)
	if f != nil {
		return nil, f
	}
	defer dst.close()
	o.log = o.log.WithField("destination", dst.path)
	// One operation at a time on a backup: the agent and a command could both start one. The
	// lock is on the open directory, so it dies with this process.
	if err := unix.Flock(dst.fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if o.req.Op == wire.OpRestore {
			// Most likely the agent's automatic update, started before the restore paused them.
			return nil, failf(wire.CodeRefused, wire.ReasonUpdateRunningRestore, dst.name.on(), err, "Another update of %s is running: press Cancel in its notification, then run 'tails-backup restore' again.", dst.name)
		}
		return nil, failf(wire.CodeRefused, wire.ReasonUpdateRunning, dst.name.on(), err, "Another update of %s is running; wait for it to finish.", dst.name)
	}

	switch o.req.Op {
	case wire.OpUpdate:
		return o.update(src, dst)
	case wire.OpMark:
		return nil, o.mark(src, dst)
	case wire.OpCreatePersistence:
		return nil, o.createPersistence(dst)
	case wire.OpVerify:
		return o.verify(src, dst)
	case wire.OpRefreshSystem:
		return o.refreshSystem(snap, mounts, src, dst)
	case wire.OpInstallBootloader:
		return o.installBootloader(snap, mounts, src, dst)
	case wire.OpRestore:
		return o.restore(src, dst)
	case wire.OpAddKeySlot:
		return o.addKeySlot(snap, src, dst)
	}
	return nil, failf(wire.CodeInvalidRequest, wire.ReasonUnknownOp, wire.Args{Op: shorten(string(o.req.Op))}, nil, "The tails-backup helper does not know the operation %q; update tails-backup.", o.req.Op)
}

func (o *operation) now() time.Time { return o.sys.Now().UTC() }

// markerFailure explains why the backup's marker does not pair it with src.
func markerFailure(dst *root, m tails.Marker, present bool, err error) *Failure {
	switch {
	case !present:
		return failf(wire.CodeNotPaired, wire.ReasonNoMarker, dst.name.on(), nil, "The Persistent Storage on %s has no backup marker, so it is not the backup of this Tails; pair it with this Tails first.", dst.name)
	case errors.Is(err, tails.ErrMarkerFormat):
		return failf(wire.CodeNotPaired, wire.ReasonMarkerNewer, dst.name.on(), err, "The backup on %s was last written by a newer version of tails-backup; update Tails and try again.", dst.name)
	case err != nil:
		return failf(wire.CodeNotPaired, wire.ReasonMarkerDamaged, dst.name.on(), err, "The backup marker on %s is damaged (%s), so this stick is not trusted as a backup; pair it with this Tails again.", dst.name, shorten(err.Error()))
	default:
		return failf(wire.CodeNotPaired, wire.ReasonOtherTails, wire.Args{Stick: dst.name.w(), UUID: m.Source}, nil, "%s is the backup of another Tails (Persistent Storage %s), so it is not overwritten; plug in the backup of this Tails.", capitalize(dst.name.String()), m.Source)
	}
}

func (o *operation) writeMarker(dst *root, m tails.Marker) *Failure {
	data, err := m.Marshal()
	if err != nil {
		return failf(wire.CodeInternal, wire.ReasonMarkerNotWritten, wire.Args{}, err, "The backup marker cannot be written (%v); report this bug.", err)
	}
	// World-readable: the session agent (amnesia) reads it to check that a backup is paired
	// and to tell a backup Tails apart; it holds no secret. Only root can change it.
	if err := tails.WriteFileAt(dst.fd, tails.MarkerName, data, tails.MarkerMode, 0, 0); err != nil {
		return o.writeFailure(dst, err, int64(len(data)))
	}
	return nil
}

// writeFailure explains an error writing to the destination outside the mirror.
func (o *operation) writeFailure(dst *root, err error, size int64) *Failure {
	switch {
	case errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT):
		var fs unix.Statfs_t
		var avail int64
		if unix.Fstatfs(dst.fd, &fs) == nil {
			avail = int64(fs.Bavail) * fs.Bsize
		}
		return noSpace(wire.ReasonBackupFull, dst.name.on(), err, max(size, avail+1), avail,
			"The backup on %s is full; free some space on it or use a bigger stick.", dst.name)
	case o.deviceGone(err, dst):
		return deviceGoneFailure(dst, err)
	default:
		return failf(wire.CodeInternal, wire.ReasonWriteFailed, dst.name.on(), err, "Writing to the backup on %s failed (%s); check the stick and try again.", dst.name, shorten(err.Error()))
	}
}

func deviceGoneFailure(dst *root, err error) *Failure {
	return failf(wire.CodeDeviceGone, wire.ReasonBackupGone, dst.name.on(), err, "The backup on %s failed or was unplugged; nothing is lost: plug it in again and run the update again.", dst.name)
}

// deviceGone tells whether err, or the state of the destination, says the backup device failed
// or went away.
func (o *operation) deviceGone(err error, dst *root) bool {
	for _, e := range []error{unix.EIO, unix.ENODEV, unix.ENXIO, unix.ESHUTDOWN, unix.EROFS, unix.ENOTCONN, unix.ESTALE} {
		if errors.Is(err, e) {
			return true
		}
	}
	if _, err := fstatDev(dst.fd); err != nil {
		return true
	}
	mounts, merr := o.sys.mounts()
	if merr != nil {
		return false
	}
	_, rerr := mountRoot(dst.fd, dst.path, dst.dev, mounts)
	return rerr != nil
}

// update mirrors src onto dst, recording the update in dst's marker: incomplete while it runs
// (and if it fails), complete at the end. The order is what makes a stick pulled at any instant
// hold a marker saying "incomplete" or complete data (docs/sync.md, "Order of writes and
// flushes"): the incomplete marker is on the device (WriteFileAt: fsync of the file, then of the
// root after the rename) before the mirror writes anything; the mirror renames new versions only
// after a syncfs and ends with one; the complete marker is written only after the mirror
// returned without error, so after its last syncfs.
func (o *operation) update(src, dst *root) (*wire.Report, *Failure) {
	prev, present, err := readMarker(dst.fd)
	if !present || err != nil || prev.Source != src.uuid {
		return nil, markerFailure(dst, prev, present, err)
	}
	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	m := tails.Marker{Format: tails.MarkerFormat, Source: src.uuid, State: tails.StateIncomplete,
		Started: o.now(), Finished: prev.Finished, TailsVersion: prev.TailsVersion}
	var before unix.Stat_t
	rootKnown := unix.Fstat(dst.fd, &before) == nil
	if f := o.writeMarker(dst, m); f != nil {
		return nil, f
	}
	// The xattr cache's folder (xattrcache.go), made after the incomplete marker, as everything
	// the update writes, and before the root's mtime is put back, as making it touches it too.
	cacheFD, err := openXattrCacheDir(dst)
	if err != nil {
		o.log.WithError(err).Warn("no xattr cache; reading every xattr")
	} else {
		defer unix.Close(cacheFD)
	}
	// Writing the marker touched the root's mtime; put it back, so that an update with nothing
	// to do changes nothing (the mirror would otherwise count the root as changed).
	if rootKnown {
		if err := setMtime(dst.fd, before.Mtim); err != nil {
			o.log.WithError(err).Warn("cannot restore the mtime of the backup's root")
		}
	}
	o.log.Info("marker written incomplete; mirroring")

	exclude := mirrorExcludes(o.req.Skip)
	cache := o.openXattrCache(cacheFD, src, dst)
	// The roots validated above, by their descriptors: nothing is looked up again by path.
	rep, err := tbsync.MirrorFDs(o.ctx, src.fd, dst.fd, tbsync.Options{
		Exclude:          exclude,
		Progress:         o.progress(),
		ProgressInterval: o.sys.ProgressInterval / 2,
		Log:              o.log,
		XattrCache:       cache,
	})
	if err != nil {
		return nil, o.mirrorFailure(err, dst)
	}
	// The mirror saved the cache before its final syncfs.
	o.logXattrCache(cache, rep.XattrCacheErr)

	m.State, m.Finished, m.TailsVersion = tails.StateComplete, o.now(), ReadTailsVersion(o.sys.VersionFile)
	if m.Finished.Before(m.Started) {
		m.Finished = m.Started // a clock stepped back: keep the marker valid
	}
	if f := o.writeMarker(dst, m); f != nil {
		return nil, f
	}
	// Writing the marker changed the root's mtime, which the mirror had copied: copy it again so
	// that the backup's root stays identical to the source's.
	var st unix.Stat_t
	if err := unix.Fstat(src.fd, &st); err == nil {
		if err := setMtime(dst.fd, st.Mtim); err != nil {
			o.log.WithError(err).Warn("cannot restore the mtime of the backup's root")
		} else if err := unix.Fsync(dst.fd); err != nil {
			o.log.WithError(err).Warn("cannot flush the backup's root")
		}
	}
	out := toReport(rep)
	out.Finished = m.Finished
	o.log.WithFields(logrus.Fields{"created": rep.Created, "updated": rep.Updated, "deleted": rep.Deleted,
		"errors": rep.ErrorCount, "bytes": rep.BytesCopied, "resumed": rep.BytesResumed}).Info("update complete")
	return out, nil
}

func (o *operation) mirrorFailure(err error, dst *root) *Failure {
	var ns *tbsync.NoSpaceError
	var le *tbsync.LimitError
	switch {
	case errors.As(err, &ns) && ns.During:
		// Needed is not known (sync.NoSpaceError.During): sent as 0, which the agent words
		// without a size.
		return noSpace(wire.ReasonBackupFull, dst.name.on(), err, 0, ns.Available,
			"The backup on %s ran out of space during the update, so the update stopped; nothing on it is lost: free some space in your Persistent Storage or create a new backup on a bigger stick.", dst.name)
	case errors.As(err, &ns):
		return noSpace(wire.ReasonBackupTooSmall, dst.name.on(), err, ns.Needed, ns.Available,
			"The backup on %s is too small: the update needs %s and %s are free; free some space on the backup or use a bigger stick.",
			dst.name, tbsync.FormatBytes(ns.Needed), tbsync.FormatBytes(ns.Available))
	case errors.As(err, &le) && le.InDestination:
		return failf(wire.CodeRefused, wire.ReasonBackupLimit, wire.Args{Stick: dst.name.w(), Path: shorten(tbsync.ShortPath(le.Path)), Limit: string(le.What), Count: le.Limit}, err, "The backup on %s holds %s (%s), which no Persistent Storage needs, so the update stopped; delete it from the backup or create a new backup with 'tails-backup create'.",
			dst.name, le.Problem(), shorten(tbsync.ShortPath(le.Path)))
	case errors.As(err, &le):
		return failf(wire.CodeRefused, wire.ReasonSourceLimit, wire.Args{Path: shorten(tbsync.ShortPath(le.Path)), Limit: string(le.What), Count: le.Limit}, err, "Your Persistent Storage holds %s (%s), more than the backup can copy, so the update stopped; move or delete it and update again.",
			le.Problem(), shorten(tbsync.ShortPath(le.Path)))
	case o.ctx.Err() != nil:
		return cancelled(o.ctx)
	case o.deviceGone(err, dst):
		return deviceGoneFailure(dst, err)
	default:
		return failf(wire.CodeInternal, wire.ReasonUpdateFailed, dst.name.on(), err, "The update of the backup on %s stopped (%s); nothing is lost: run it again, and report the bug if it happens again.", dst.name, shorten(err.Error()))
	}
}

// progress returns the Mirror callback that sends progress events, at most one per
// sys.ProgressInterval.
func (o *operation) progress() func(tbsync.Progress) {
	var last time.Time
	return func(p tbsync.Progress) { // called from one goroutine
		now := time.Now()
		if !last.IsZero() && now.Sub(last) < o.sys.ProgressInterval {
			return
		}
		last = now
		o.out.write(wire.Event{Event: wire.EventProgress, Phase: string(p.Phase), FilesDone: p.FilesDone,
			FilesTotal: p.FilesTotal, BytesDone: p.BytesDone, BytesTotal: p.BytesTotal, Path: p.Path})
	}
}

func toReport(r tbsync.Report) *wire.Report {
	out := &wire.Report{Created: r.Created, Updated: r.Updated, MetadataOnly: r.MetadataOnly, Deleted: r.Deleted,
		BytesCopied: r.BytesCopied, ErrorCount: r.ErrorCount, Duration: r.Duration}
	if out.ErrorCount < int64(len(r.Errors)) {
		out.ErrorCount = int64(len(r.Errors))
	}
	for i, e := range r.Errors {
		if i == MaxEventErrors {
			break
		}
		msg := ""
		if e.Err != nil {
			msg = shorten(e.Err.Error())
		}
		out.Errors = append(out.Errors, wire.ReportError{Path: e.Path, Op: e.Op, Error: msg})
	}
	return out
}

// mirrorExcludes is what an update leaves alone on the backup, and verify does not compare
// (tails.MirrorExcludes).
func mirrorExcludes(skip []string) []string { return tails.MirrorExcludes(skip) }

// mark pairs dst with src: a marker naming src, incomplete until the first update.
func (o *operation) mark(src, dst *root) *Failure {
	prev, present, err := readMarker(dst.fd)
	if present {
		if err == nil && prev.Source == src.uuid {
			o.log.Info("already the backup of this Tails")
			return o.ensureStateDir(src)
		}
		return markerFailure(dst, prev, present, err)
	}
	if o.ctx.Err() != nil {
		return cancelled(o.ctx)
	}
	m := tails.Marker{Format: tails.MarkerFormat, Source: src.uuid, State: tails.StateIncomplete, Started: o.now()}
	if f := o.writeMarker(dst, m); f != nil {
		return f
	}
	o.log.Info("marked as the backup of this Tails")
	return o.ensureStateDir(src)
}

// ensureStateDir makes, at the root of this Tails' Persistent Storage, the folder where the
// session agent keeps its pairings: only root can create entries there, and they must
// survive reboots. It is amnesia's, 0700. An existing folder must already be exactly that;
// anything else in its place (a symlink, a file) is refused, never followed or replaced.
func (o *operation) ensureStateDir(src *root) *Failure {
	name := tails.StateDirName
	err := unix.Mkdirat(src.fd, name, 0o700)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return failf(wire.CodeInternal, wire.ReasonStateDirFailed, wire.Args{}, err, "The tails-backup folder of this Tails' Persistent Storage cannot be created (%s); restart Tails and try again.", shorten(err.Error()))
	}
	fd, err := unix.Openat(src.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return failf(wire.CodeRefused, wire.ReasonStateDirNotFolder, wire.Args{Path: name}, err, "%s in this Tails' Persistent Storage is not a folder; move it away and pair again.", name)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, tails.AmnesiaUID, tails.AmnesiaUID); err != nil {
		return failf(wire.CodeInternal, wire.ReasonStateDirFailed, wire.Args{}, err, "The tails-backup folder cannot be given to amnesia (%s); restart Tails and try again.", shorten(err.Error()))
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		return failf(wire.CodeInternal, wire.ReasonStateDirFailed, wire.Args{}, err, "The tails-backup folder cannot be made private (%s); restart Tails and try again.", shorten(err.Error()))
	}
	return nil
}

// promote removes from this Tails' own TailsData the key slot whose key the main Tails kept
// (whoever has the lost main stick and its passphrase must not open the new main Tails), then
// the xattr cache folder that updates kept in its Persistent Storage (xattrcache.go), and the
// backup marker.
func (o *operation) promote(snap *udisks.Snapshot, src *root) (*wire.Report, *Failure) {
	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	removed, f := o.removeOwnKeySlots(snap, src)
	if f != nil {
		return nil, f
	}
	// Before the marker, whose removal flushes the root folder. A cache that cannot be removed
	// takes some room and nothing else: the promote goes on.
	switch had, err := removeXattrCacheDir(src); {
	case err != nil:
		o.log.WithError(err).Warn("the xattr cache folder of the former backup cannot be removed")
	case had:
		o.log.Info("the xattr cache folder of the former backup removed")
	}
	if f := o.removeMarker(src); f != nil {
		return nil, f
	}
	return &wire.Report{KeySlots: removed}, nil
}

// removeMarker removes the backup marker from this Tails' own Persistent Storage.
func (o *operation) removeMarker(src *root) *Failure {
	err := unix.Unlinkat(src.fd, tails.MarkerName, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		o.log.Info("no backup marker: already the main Tails")
		return nil
	case err != nil:
		return failf(wire.CodeInternal, wire.ReasonUnmarkFailed, wire.Args{}, err, "The backup marker of this Tails cannot be removed (%s); restart Tails and try again.", shorten(err.Error()))
	}
	if err := unix.Fsync(src.fd); err != nil {
		return failf(wire.CodeInternal, wire.ReasonUnmarkFailed, wire.Args{}, err, "The removal of the backup marker of this Tails cannot be saved (%s); restart Tails and try again.", shorten(err.Error()))
	}
	o.log.Info("backup marker removed: this is the main Tails now")
	return nil
}

// createPersistence gives a fresh backup Persistent Storage root the ownership, mode and ACL
// of Tails.
func (o *operation) createPersistence(dst *root) *Failure {
	names, _, err := beneath.ReadNames(dst.fd, nil, nil)
	if err != nil {
		return o.writeFailure(dst, err, 0)
	}
	for _, n := range names {
		if n != "lost+found" {
			return failf(wire.CodeRefused, wire.ReasonBackupNotEmpty, dst.name.on(), nil, "The Persistent Storage on %s is not empty, so it is not set up as a new one; create the backup again to start from an empty one.", dst.name)
		}
	}
	if o.ctx.Err() != nil {
		return cancelled(o.ctx)
	}
	if err := setPersistenceRoot(dst.fd); err != nil {
		return o.writeFailure(dst, err, 0)
	}
	o.log.Info("Persistent Storage root prepared")
	return nil
}
