//go:build linux

package helper

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	tbsync "tails-backup/sync"
	"tails-backup/tails"
)

// The restore: a backup made by tails-backup, on a stick that may be hostile, copied back into
// this Tails' Persistent Storage. In run(), the Persistent Storage is the validated source and
// the backup the validated destination, locked as an update locks it; here the copy goes the
// other way.

// confBakName is the copy of persistence.conf that Tails keeps; it is restored, or kept, with
// persistence.conf.
const confBakName = tails.PersistenceConfName + ".bak"

// systemBindings are the persistence.conf lines of Tails 6 whose destination is outside the
// home folder of amnesia: destination → source. Those folders are used by root at boot and by
// system services (NetworkManager, CUPS, apt, Tor), so a backup's persistence.conf may bind
// nothing else outside /home/amnesia.
var systemBindings = map[string]string{
	"/var/lib/gdm3/settings/persistent":      "greeter-settings",
	"/etc/NetworkManager/system-connections": "nm-system-connections",
	"/var/lib/tca":                           "tca",
	"/var/cache/apt/archives":                "apt/cache",
	"/var/lib/apt/lists":                     "apt/lists",
	"/etc/cups":                              "cups-configuration",
}

// amnesiaHome is where the bindings of the desktop user's own features go.
const amnesiaHome = "/home/amnesia"

// restore mirrors the backup into this Tails' Persistent Storage ps.
//
// What is never copied either way: the backup marker (a main Tails must not become a backup),
// the folders the session skips (applications left open) and the tails-backup state folder.
// That folder holds the pairing store of the Tails the backup was made from: its pairings name
// backups whose markers name that Tails, and its dates describe that Tails' backups, so in
// another Tails they would be wrong (every plug of those backups refused, reminders counting
// from someone else's update), and in this same Tails the Persistent Storage's own store is
// newer than the backup's copy. This Tails keeps its own store (or none).
func (o *operation) restore(ps, backup *root) (*Report, *Failure) {
	if present, err := existsAt(ps.fd, tails.MarkerName); err != nil || present {
		return nil, failf(CodeRefused, err, "This Tails is itself a backup Tails (its Persistent Storage holds a backup marker), so nothing is restored into it; make it your main Tails first with 'tails-backup promote', or restore into another Tails.")
	}
	m, present, err := readMarker(backup.fd)
	if f := restoreMarkerFailure(backup, m, present, err, o.req.Source); f != nil {
		return nil, f
	}
	// Two restores into this Persistent Storage at once would mix two backups.
	if err := unix.Flock(ps.fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, failf(CodeRefused, err, "Another restore into the Persistent Storage of this Tails is running; wait for it to finish.")
	}
	o.log = o.log.WithFields(logrus.Fields{"backup_source": m.Source, "backup_state": m.State})

	exclude := mirrorExcludes(o.req.Skip) // the same both ways
	var notes []Event
	if reason := unsafeConf(backup.fd); reason != "" {
		exclude = append(exclude, tails.PersistenceConfName, confBakName)
		notes = append(notes, Event{Event: EventProgress, Phase: PhaseProblem, Path: tails.PersistenceConfName, Warning: true,
			Problem: fmt.Sprintf("The backup's persistence.conf %s, so it was not restored and this Tails keeps its own; after restarting Tails, turn on the features you need in the Persistent Storage settings.", reason)})
		o.log.WithField("reason", reason).Warn("the backup's persistence.conf is not restored")
	}

	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	o.log.WithField("excluded", exclude).Info("restoring")
	rep, err := tbsync.Mirror(o.ctx, fdPath(backup.fd), fdPath(ps.fd), tbsync.Options{
		Exclude:           exclude,
		UntrustedSource:   true,
		SourceDevice:      backup.dev,
		DestinationDevice: ps.dev,
		Progress:          o.progress(),
		ProgressInterval:  o.sys.ProgressInterval / 2,
		Log:               o.log,

		// The root of the Persistent Storage keeps the owner, mode and ACL it has, whatever the
		// backup's root has: Tails checks them at boot, and a root writable by amnesia would
		// let the session replace persistence.conf. The mirror never changes them, so that a
		// restore killed at any instant leaves them too (putting them back afterwards did not).
		KeepDestinationRoot: true,
	})
	if err != nil {
		return nil, o.restoreFailure(err, ps, backup)
	}
	if rep.ErrorCount > 0 && o.deviceGone(nil, backup) {
		return nil, restoreGoneFailure(backup, nil)
	}

	out := toReport(rep)
	for _, ev := range notes {
		o.out.write(ev)
		out.Warnings++
	}
	problems, features := tails.CheckPersistentStorage(ps.fd)
	for _, p := range problems {
		if p.Warning {
			out.Warnings++
		} else {
			out.Problems++
		}
		o.out.write(Event{Event: EventProgress, Phase: PhaseProblem, Path: p.Path, Problem: p.What, Warning: p.Warning})
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
		return failf(CodeNotPaired, nil, "The Persistent Storage on %s is not a backup made by tails-backup (it has no backup marker), so nothing is restored from it; plug in your backup Tails instead.", backup.name)
	case errors.Is(err, tails.ErrMarkerFormat):
		return failf(CodeNotPaired, err, "The backup on %s was last written by a newer version of tails-backup; update Tails and try again.", backup.name)
	case err != nil:
		return failf(CodeNotPaired, err, "The backup marker on %s is damaged (%s), so it is not trusted as a backup made by tails-backup and nothing is restored from it; restore from another backup.", backup.name, shorten(err.Error()))
	case m.Source != source:
		return failf(CodeRefused, nil, "The backup on %s is now a backup of the Persistent Storage %s, not of %s as confirmed, so nothing is restored from it; run the restore again and check what it says.", backup.name, m.Source, source)
	}
	return nil
}

// restoreFailure explains a failed mirror of a restore: the destination is this Tails'
// Persistent Storage, the source the backup stick.
func (o *operation) restoreFailure(err error, ps, backup *root) *Failure {
	var ns *tbsync.NoSpaceError
	switch {
	case errors.As(err, &ns):
		return &Failure{Code: CodeNoSpace, Err: err, Needed: ns.Needed, Available: ns.Available,
			Message: fmt.Sprintf("The Persistent Storage of this Tails is too small for the backup on %s: the restore needs %s and %s are free; restore onto a Tails USB stick with a bigger Persistent Storage.",
				backup.name, tbsync.FormatBytes(ns.Needed), tbsync.FormatBytes(ns.Available))}
	case o.ctx.Err() != nil:
		return cancelled(o.ctx)
	case o.deviceGone(err, backup):
		return restoreGoneFailure(backup, err)
	case o.deviceGone(err, ps):
		return failf(CodeDeviceGone, err, "The Persistent Storage of this Tails failed during the restore; restart Tails and run the restore again.")
	default:
		return failf(CodeInternal, err, "The restore from the backup on %s stopped (%s); run it again, and report the bug if it happens again.", backup.name, shorten(err.Error()))
	}
}

func restoreGoneFailure(backup *root, err error) *Failure {
	return failf(CodeDeviceGone, err, "The backup on %s failed or was unplugged during the restore; plug it in again and run the restore again to finish it.", backup.name)
}

// unsafeConf tells why the backup's persistence.conf (or its .bak) must not replace this
// Tails' own, "" if it may. persistence.conf decides what Tails mounts, as root, at boot: from
// a stick that may be hostile, only the bindings of Tails' own features are accepted, and any
// binding inside amnesia's home folder (what amnesia can write anyway).
func unsafeConf(rootfd int) string {
	for _, name := range []string{tails.PersistenceConfName, confBakName} {
		data, err := tails.ReadFileAt(rootfd, name, 1<<20+1)
		switch {
		case errors.Is(err, unix.ENOENT):
			continue
		case err != nil:
			return fmt.Sprintf("cannot be read safely (%s: %s)", name, shorten(err.Error()))
		}
		bindings, err := tails.ParsePersistenceConf(bytes.NewReader(data))
		if err != nil {
			return fmt.Sprintf("cannot be parsed (%s: %s)", name, shorten(err.Error()))
		}
		for _, b := range bindings {
			if !safeBinding(b) {
				return fmt.Sprintf("mounts %s on %s, which is not a feature of Tails (%s)", shorten(b.Source), shorten(b.Destination), name)
			}
		}
	}
	return ""
}

// safeBinding accepts a binding inside amnesia's home folder, or one of Tails' system bindings
// exactly as Tails writes it.
func safeBinding(b tails.Binding) bool {
	if b.Destination == amnesiaHome || strings.HasPrefix(b.Destination, amnesiaHome+"/") {
		return true
	}
	src, ok := systemBindings[b.Destination]
	if !ok || b.Source != src || b.Link || b.File {
		return false
	}
	for _, opt := range b.Options {
		if opt != "source="+src {
			return false
		}
	}
	return true
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
