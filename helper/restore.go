//go:build linux

package helper

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
	tbsync "tails-backup/sync"
	"tails-backup/tails"
	"tails-backup/wire"
)

// The restore: a backup made by tails-backup, on a stick that may be hostile, copied back into
// this Tails' Persistent Storage. In run(), the Persistent Storage is the validated source and
// the backup the validated destination, locked as an update locks it; here the copy goes the
// other way.

// confBakName is the copy of persistence.conf that Tails keeps; it is restored, or kept, with
// persistence.conf.
const confBakName = tails.PersistenceConfName + ".bak"

// restore mirrors the backup into this Tails' Persistent Storage ps.
//
// What is never copied either way: the backup marker (a main Tails must not become a backup),
// the folders the session skips (applications left open) and the tails-backup state folder.
// That folder holds the pairing store of the Tails the backup was made from: its pairings name
// backups whose markers name that Tails, and its dates describe that Tails' backups, so in
// another Tails they would be wrong (every plug of those backups refused, reminders counting
// from someone else's update), and in this same Tails the Persistent Storage's own store is
// newer than the backup's copy. This Tails keeps its own store (or none).
func (o *operation) restore(ps, backup *root) (*wire.Report, *Failure) {
	if present, err := existsAt(ps.fd, tails.MarkerName); err != nil || present {
		return nil, failf(wire.CodeRefused, wire.ReasonRestoreIntoBackup, wire.Args{}, err, "This Tails is itself a backup Tails (its Persistent Storage holds a backup marker), so nothing is restored into it; make it your main Tails first with 'tails-backup promote', or restore into another Tails.")
	}
	m, present, err := readMarker(backup.fd)
	if f := restoreMarkerFailure(backup, m, present, err, o.req.Source); f != nil {
		return nil, f
	}
	// Two restores into this Persistent Storage at once would mix two backups.
	if err := unix.Flock(ps.fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, failf(wire.CodeRefused, wire.ReasonRestoreRunning, wire.Args{}, err, "Another restore into the Persistent Storage of this Tails is running; wait for it to finish.")
	}
	o.log = o.log.WithFields(logrus.Fields{"backup_source": m.Source, "backup_state": m.State})

	// persistence.conf and its .bak never go through the mirror, which would read them again,
	// by name, long after the check: they are read once, here, and those very bytes are
	// checked and written (restoreConfs), so that swapping them on the backup meanwhile
	// changes nothing.
	exclude := append(mirrorExcludes(o.req.Skip), tails.PersistenceConfName, confBakName)
	// An update killed while it wrote the marker leaves the marker's temporary at the backup's
	// root (the next update deletes it); it is the helper's, like the marker, and never
	// restored. The engine's own temporaries are left out by the engine.
	leftovers, err := markerTemporaries(backup.fd)
	if err != nil {
		return nil, o.restoreFailure(fmt.Errorf("list the backup's root: %w", err), ps, backup)
	}
	exclude = append(exclude, leftovers...)
	var notes []wire.Event
	confs, reason := readBackupConfs(backup.fd)
	if reason != "" {
		notes = append(notes, wire.ProblemEvent(tails.Problem{Path: tails.PersistenceConfName, Warning: true,
			Code: tails.FindingBackupConfNotRestored, Args: tails.ProblemArgs{Detail: reason},
			What: fmt.Sprintf("The backup's persistence.conf %s, so it was not restored and this Tails keeps its own; after restarting Tails, turn on the features you need in the Persistent Storage settings.", reason)}))
		o.log.WithField("reason", reason).Warn("the backup's persistence.conf is not restored")
	}

	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	o.log.WithField("excluded", exclude).Info("restoring")
	rep, err := tbsync.MirrorFDs(o.ctx, backup.fd, ps.fd, tbsync.Options{
		Exclude:          exclude,
		UntrustedSource:  true,
		Progress:         o.progress(),
		ProgressInterval: o.sys.ProgressInterval / 2,
		Log:              o.log,

		// The root of the Persistent Storage keeps the owner, mode and ACL it has, whatever the
		// backup's root has: Tails checks them at boot, and a root writable by amnesia would
		// let the session replace persistence.conf. The mirror never changes them, so that a
		// restore killed at any instant leaves them too (putting them back afterwards did not).
		KeepDestinationRoot: true,

		// A cancelled restore deletes the resumable temporaries of the large files it was
		// copying, which an update keeps for its next run: they would stay as hidden files in
		// the Persistent Storage, which is the user's own, until a next restore that may never
		// come (updates do not copy them, and nothing else deletes them). Run
		// again, the restore copies those files whole. A failed restore deletes them anyway;
		// only a killed one leaves them, for the next restore to resume or delete.
		DiscardOnCancel: true,
	})
	if err != nil {
		return nil, o.restoreFailure(err, ps, backup)
	}
	if rep.ErrorCount > 0 && o.deviceGone(nil, backup) {
		return nil, restoreGoneFailure(backup, nil)
	}

	out := toReport(rep)
	if err := o.restoreConfs(ps.fd, confs, out); err != nil {
		if o.deviceGone(err, ps) {
			return nil, failf(wire.CodeDeviceGone, wire.ReasonRestoreTargetFailed, wire.Args{}, err, "The Persistent Storage of this Tails failed during the restore; restart Tails and run the restore again.")
		}
		return nil, failf(wire.CodeInternal, wire.ReasonRestoreConfFailed, wire.Args{}, err, "The files were restored, but the backup's persistence.conf could not be restored into this Tails' Persistent Storage (%s); run the restore again.", shorten(err.Error()))
	}
	for _, ev := range notes {
		o.out.write(ev)
		out.Warnings++
	}
	for _, p := range checkRestoredConfs(ps.fd, confs) {
		out.Problems++
		o.out.write(wire.ProblemEvent(p))
	}
	problems, features := tails.CheckPersistentStorage(ps.fd)
	for _, p := range problems {
		if p.Warning {
			out.Warnings++
		} else {
			out.Problems++
		}
		o.out.write(wire.ProblemEvent(p))
	}
	for _, f := range features {
		out.Features = append(out.Features, f.Name)
	}
	o.log.WithFields(logrus.Fields{"created": rep.Created, "updated": rep.Updated, "deleted": rep.Deleted,
		"errors": rep.ErrorCount, "bytes": rep.BytesCopied, "problems": out.Problems}).Info("restore complete")
	return out, nil
}

// restoreMarkerFailure explains why the backup's marker does not allow the restore: there
// must be a valid one, naming the Tails the user confirmed (source).
func restoreMarkerFailure(backup *root, m tails.Marker, present bool, err error, source string) *Failure {
	switch {
	case !present:
		return failf(wire.CodeNotPaired, wire.ReasonRestoreNoMarker, backup.name.on(), nil, "The Persistent Storage on %s is not a backup made by tails-backup (it has no backup marker), so nothing is restored from it; plug in your backup Tails instead.", backup.name)
	case errors.Is(err, tails.ErrMarkerFormat):
		return failf(wire.CodeNotPaired, wire.ReasonMarkerNewer, backup.name.on(), err, "The backup on %s was last written by a newer version of tails-backup; update Tails and try again.", backup.name)
	case err != nil:
		return failf(wire.CodeNotPaired, wire.ReasonRestoreMarkerDamaged, backup.name.on(), err, "The backup marker on %s is damaged (%s), so it is not trusted as a backup made by tails-backup and nothing is restored from it; restore from another backup.", backup.name, shorten(err.Error()))
	case m.Source != source:
		return failf(wire.CodeRefused, wire.ReasonRestoreSourceChanged, backup.name.on(), nil, "The backup on %s is now a backup of the Persistent Storage %s, not of %s as confirmed, so nothing is restored from it; run the restore again and check what it says.", backup.name, m.Source, source)
	}
	return nil
}

// restoreFailure explains a failed mirror of a restore: the destination is this Tails'
// Persistent Storage, the source the backup stick.
func (o *operation) restoreFailure(err error, ps, backup *root) *Failure {
	var ns *tbsync.NoSpaceError
	var le *tbsync.LimitError
	switch {
	case errors.As(err, &ns):
		return noSpace(wire.ReasonRestoreTooSmall, backup.name.on(), err, ns.Needed, ns.Available,
			"The Persistent Storage of this Tails is too small for the backup on %s: the restore needs %s and %s are free; restore onto a Tails USB stick with a bigger Persistent Storage.",
			backup.name, tbsync.FormatBytes(ns.Needed), tbsync.FormatBytes(ns.Available))
	case errors.As(err, &le) && !le.InDestination:
		return failf(wire.CodeRefused, wire.ReasonRestoreBackupLimit, wire.Args{Stick: backup.name.w(), Path: shorten(tbsync.ShortPath(le.Path)), Limit: string(le.What), Count: le.Limit}, err, "The backup on %s holds %s (%s), which no Persistent Storage needs, so the restore stopped; restore from another backup.",
			backup.name, le.Problem(), shorten(tbsync.ShortPath(le.Path)))
	case errors.As(err, &le):
		return failf(wire.CodeRefused, wire.ReasonRestoreTargetLimit, wire.Args{Path: shorten(tbsync.ShortPath(le.Path)), Limit: string(le.What), Count: le.Limit}, err, "The Persistent Storage of this Tails holds %s (%s), more than the restore can replace, so the restore stopped; delete it and run the restore again.",
			le.Problem(), shorten(tbsync.ShortPath(le.Path)))
	case o.ctx.Err() != nil:
		return cancelled(o.ctx)
	case o.deviceGone(err, backup):
		return restoreGoneFailure(backup, err)
	case o.deviceGone(err, ps):
		return failf(wire.CodeDeviceGone, wire.ReasonRestoreTargetFailed, wire.Args{}, err, "The Persistent Storage of this Tails failed during the restore; restart Tails and run the restore again.")
	default:
		return failf(wire.CodeInternal, wire.ReasonRestoreFailed, backup.name.on(), err, "The restore from the backup on %s stopped (%s); run it again, and report the bug if it happens again.", backup.name, shorten(err.Error()))
	}
}

func restoreGoneFailure(backup *root, err error) *Failure {
	return failf(wire.CodeDeviceGone, wire.ReasonRestoreBackupGone, backup.name.on(), err, "The backup on %s failed or was unplugged during the restore; plug it in again and run the restore again to finish it.", backup.name)
}

// maxConfRead bounds what is read of the backup's persistence.conf: one byte more than
// ParsePersistenceConf accepts, so that a larger file is refused as such.
const maxConfRead = 1<<20 + 1

// backupConf is the backup's persistence.conf or its .bak, read once: what is checked is what
// is written.
type backupConf struct {
	name    string
	present bool
	data    []byte
	mtime   unix.Timespec
}

// readBackupConfs reads the backup's persistence.conf and .bak, once each (regular files only,
// no symlink followed, bounded), and checks those bytes. It returns them, or why they may not
// replace this Tails' own; a file the backup lacks is returned as not present.
func readBackupConfs(rootfd int) ([]backupConf, string) {
	var out []backupConf
	for _, name := range []string{tails.PersistenceConfName, confBakName} {
		data, st, err := tails.ReadFileStatAt(rootfd, name, maxConfRead)
		switch {
		case errors.Is(err, unix.ENOENT):
			out = append(out, backupConf{name: name})
			continue
		case err != nil:
			return nil, fmt.Sprintf("cannot be read safely (%s: %s)", name, shorten(err.Error()))
		}
		if reason := unsafeConf(name, data); reason != "" {
			return nil, reason
		}
		out = append(out, backupConf{name: name, present: true, data: data, mtime: st.Mtim})
	}
	return out, ""
}

// unsafeConf tells why data, the content of the backup's persistence.conf (or its .bak: name),
// must not replace this Tails' own, "" if it may. persistence.conf decides what Tails mounts,
// as root, at boot: from a stick that may be hostile, only Tails' own lines for its features
// are accepted (see unsafeBindings).
func unsafeConf(name string, data []byte) string {
	bindings, err := tails.ParsePersistenceConf(bytes.NewReader(data))
	if err != nil {
		return fmt.Sprintf("cannot be parsed (%s: %s)", name, shorten(err.Error()))
	}
	if reason := unsafeBindings(bindings); reason != "" {
		return fmt.Sprintf("%s (%s)", reason, name)
	}
	return ""
}

// unsafeBindings tells why the bindings of a persistence.conf from a backup are not safe, ""
// when they are: each line must be one of Tails' own feature lines exactly (safeBinding); and,
// so that no binding can reach through another (a folder of the backup mounted in the home
// folder, holding a symlink to /etc, with a second binding below it), no binding may be
// mounted on or inside another bind-mounted one, and no folder may be used twice or inside
// another's. Only the dotfiles line ("link": it symlinks files, mounts nothing) may hold the
// others' destinations, as it does in Tails.
func unsafeBindings(bs []tails.Binding) string {
	// Tails writes one line per binding of its features, fourteen at most; the bound keeps the
	// comparisons of every pair below cheap (a 1 MiB file could hold 50,000 lines).
	if len(bs) > maxConfLines {
		return fmt.Sprintf("has %d lines, more than Tails writes", len(bs))
	}
	for _, b := range bs {
		for _, o := range b.Options {
			if o != "link" && !strings.HasPrefix(o, "source=") {
				return fmt.Sprintf("uses the option %q for %s, which Tails does not write", shorten(o), shorten(b.Destination))
			}
		}
		if !slices.ContainsFunc(b.Options, func(o string) bool { return strings.HasPrefix(o, "source=") }) {
			return fmt.Sprintf("has no source for %s, which Tails always writes", shorten(b.Destination))
		}
	}
	for i, b := range bs {
		for j, c := range bs {
			switch {
			case i == j:
			case b.Destination == c.Destination && b.Source == c.Source:
				return fmt.Sprintf("has the line for %s twice", shorten(b.Destination))
			case b.Destination == c.Destination:
				return fmt.Sprintf("mounts both %s and %s on %s", shorten(b.Source), shorten(c.Source), shorten(b.Destination))
			case !c.Link && inside(b.Destination, c.Destination):
				return fmt.Sprintf("mounts %s on %s, inside %s where it mounts %s", shorten(b.Source), shorten(b.Destination), shorten(c.Destination), shorten(c.Source))
			case b.Source == c.Source:
				return fmt.Sprintf("mounts %s twice, on %s and on %s", shorten(b.Source), shorten(b.Destination), shorten(c.Destination))
			case inside(b.Source, c.Source):
				return fmt.Sprintf("mounts %s, and %s which holds it", shorten(b.Source), shorten(c.Source))
			}
		}
	}
	for _, b := range bs {
		if !safeBinding(b) {
			return fmt.Sprintf("mounts %s on %s, which is not a feature of Tails", shorten(b.Source), shorten(b.Destination))
		}
	}
	return ""
}

// maxConfLines bounds the lines of a backup's persistence.conf.
const maxConfLines = 64

// inside reports whether the slash-separated path p is below dir.
func inside(p, dir string) bool {
	return strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// safeBinding accepts one of Tails' own persistence.conf lines for its features, exactly as
// Tails writes it (tails.Features): the destination, the source and the options.
func safeBinding(b tails.Binding) bool {
	_, ok := tails.FeatureOfBinding(b)
	return ok
}

// restoreConfs gives this Tails' Persistent Storage (the root open as psfd) the backup's
// persistence.conf and .bak read and checked by readBackupConfs: exactly those bytes, with the
// owner and mode Tails requires (tails-persistent-storage, 0600, no ACL) and the backup's
// modification time, each replaced atomically (persistence.conf last); a file the backup lacks
// is deleted, as the mirror (and rsync --delete) would. A file that already is what it would
// become is left alone, so that a second restore changes nothing. With no confs (the backup's
// were refused) this Tails keeps its own. The changes are counted in rep.
func (o *operation) restoreConfs(psfd int, confs []backupConf, rep *wire.Report) error {
	var root unix.Stat_t
	if err := unix.Fstat(psfd, &root); err != nil {
		return fmt.Errorf("the root folder: %w", err)
	}
	changed := false
	for _, c := range slices.Backward(confs) { // .bak first
		exists, same := confIs(psfd, c)
		switch {
		case same:
			continue
		case !c.present:
			if err := unix.Unlinkat(psfd, c.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("delete %s: %w", c.name, err)
			}
			if err := unix.Fsync(psfd); err != nil {
				return fmt.Errorf("flush the root folder: %w", err)
			}
			rep.Deleted++
		default:
			if err := tails.WriteFileMtimeAt(psfd, c.name, c.data, tails.PersistenceConfMode,
				tails.PersistentStorageUID, tails.PersistentStorageGID, c.mtime); err != nil {
				return err
			}
			if exists {
				rep.Updated++
			} else {
				rep.Created++
			}
		}
		changed = true
		o.log.WithFields(logrus.Fields{"file": c.name, "present": c.present}).Info("restored from the backup")
	}
	if changed {
		// The mirror gave the root the backup root's modification time, as rsync does; these
		// renames changed it again.
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, root.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, beneath.FDPath(psfd), ts, 0); err != nil {
			return fmt.Errorf("set the modification time of the root folder: %w", err)
		}
		if err := unix.Fsync(psfd); err != nil {
			return fmt.Errorf("flush the root folder: %w", err)
		}
	}
	return nil
}

// confIs tells whether the Persistent Storage root psfd has a file named c.name, and whether
// it already is c: absent if c is, or a regular file with those bytes and that modification
// time, owned by tails-persistent-storage, mode 0600, one link, no ACL.
func confIs(psfd int, c backupConf) (exists, same bool) {
	data, st, err := tails.ReadFileStatAt(psfd, c.name, maxConfRead)
	if errors.Is(err, unix.ENOENT) {
		return false, !c.present
	}
	if err != nil || !c.present {
		return true, false
	}
	// The Persistent Storage root is root's alone: the name is not swapped under us.
	_, aclErr := unix.Lgetxattr(beneath.AtPath(psfd, c.name), tails.ACLXattrAccess, nil)
	noACL := errors.Is(aclErr, unix.ENODATA) || errors.Is(aclErr, unix.EOPNOTSUPP)
	return true, noACL && bytes.Equal(data, c.data) && st.Mtim == c.mtime && st.Nlink == 1 &&
		st.Uid == tails.PersistentStorageUID && st.Gid == tails.PersistentStorageGID &&
		st.Mode == unix.S_IFREG|tails.PersistenceConfMode
}

// checkRestoredConfs checks, after the restore, that this Tails' persistence.conf and .bak hold
// the bytes readBackupConfs checked on the backup (absent where the backup had none): any
// difference is a problem, since Tails would mount what no one checked.
func checkRestoredConfs(psfd int, confs []backupConf) []tails.Problem {
	var out []tails.Problem
	for _, c := range confs {
		data, err := tails.ReadFileAt(psfd, c.name, maxConfRead)
		p := tails.Problem{Path: c.name}
		switch {
		case errors.Is(err, unix.ENOENT) && !c.present:
		case errors.Is(err, unix.ENOENT):
			p.Code, p.What = tails.FindingRestoredConfMissing, "It is missing, although the backup has one that was checked; run the restore again."
		case err != nil:
			p.Code, p.Args.Detail = tails.FindingRestoredConfUnreadable, shorten(err.Error())
			p.What = fmt.Sprintf("It cannot be read (%s); run the restore again.", p.Args.Detail)
		case !c.present || !bytes.Equal(data, c.data):
			p.Code, p.What = tails.FindingRestoredConfChanged, "It is not the file that was checked on the backup, so Tails could mount folders that no one checked; run the restore again before restarting Tails."
		}
		if p.Code != "" {
			out = append(out, p)
		}
	}
	return out
}

// rootMeta is the owner, mode and ACLs of a Persistent Storage root (tests compare them).
type rootMeta struct {
	uid, gid    uint32
	mode        uint32
	acl, defACL []byte // nil when absent
}

func readRootMeta(fd int) (rootMeta, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return rootMeta{}, err
	}
	m := rootMeta{uid: st.Uid, gid: st.Gid, mode: st.Mode & 0o7777}
	var err error
	if m.acl, err = getXattr(fd, tails.ACLXattrAccess); err != nil {
		return rootMeta{}, err
	}
	if m.defACL, err = getXattr(fd, tails.ACLXattrDefault); err != nil {
		return rootMeta{}, err
	}
	return m, nil
}

func (m rootMeta) equal(n rootMeta) bool {
	return m.uid == n.uid && m.gid == n.gid && m.mode == n.mode &&
		bytes.Equal(m.acl, n.acl) && (m.acl == nil) == (n.acl == nil) &&
		bytes.Equal(m.defACL, n.defACL) && (m.defACL == nil) == (n.defACL == nil)
}

// getXattr reads the xattr name of the file open as fd; nil when it has none.
func getXattr(fd int, name string) ([]byte, error) {
	buf := make([]byte, 4096)
	n, err := unix.Fgetxattr(fd, name, buf)
	switch {
	case errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return append([]byte{}, buf[:n]...), nil
}

// maxMarkerTemporaries bounds what markerTemporaries keeps of a hostile backup's root.
const maxMarkerTemporaries = 64

// markerTemporaries lists the names of the backup's root directory dirfd that are temporaries
// of the marker (tails.IsWriteTemporary), reading the listing a block at a time so that a huge
// root costs no memory; past maxMarkerTemporaries the rest are copied like any file.
func markerTemporaries(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "backup root")
	defer f.Close()
	var out []string
	for len(out) < maxMarkerTemporaries {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			if tails.IsWriteTemporary(n, tails.MarkerName) && len(out) < maxMarkerTemporaries {
				out = append(out, n)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
