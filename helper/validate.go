//go:build linux

package helper

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// root is a validated Persistent Storage: its mounted root, open, on the device udisks says.
type root struct {
	path      string
	fd        int
	dev       uint64
	uuid      string          // LUKS UUID of the TailsData partition
	cleartext *udisks.Object  // the unlocked cleartext block
	drive     dbus.ObjectPath // the drive holding it ("" if udisks knows none)
	name      stick           // how the user knows the stick
}

func (r *root) close() {
	if r != nil && r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// deviceNumber is the Block.DeviceNumber of o (0 if absent).
func deviceNumber(o *udisks.Object) uint64 {
	if o == nil {
		return 0
	}
	v, ok := o.Property(udisks.IfaceBlock, "DeviceNumber")
	if !ok {
		return 0
	}
	n, _ := v.Value().(uint64)
	return n
}

// blockByDevice returns the block objects whose device number is dev.
func blockByDevice(snap *udisks.Snapshot, dev uint64) []*udisks.Object {
	var out []*udisks.Object
	for _, o := range snap.Objects() {
		if o.Block != nil && deviceNumber(o) != 0 && sameDevice(deviceNumber(o), dev) {
			out = append(out, o)
		}
	}
	return out
}

func luksUUID(o *udisks.Object) string {
	if o == nil || o.Block == nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(o.Block.IdUUID))
}

// openMountRoot opens path, which udisks or the configuration says is the root of the file
// system on device dev, and checks it against the mount table. It returns the fd or a Failure
// built by the callbacks, which phrase the message for the source or the destination.
func openMountRoot(path string, dev uint64, mounts []tails.Mount, notFound, symlink, other func(error) *Failure) (int, tails.Mount, *Failure) {
	fd, err := beneath.OpenAbs(path, unix.O_RDONLY|unix.O_DIRECTORY)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return -1, tails.Mount{}, notFound(err)
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV):
		return -1, tails.Mount{}, symlink(err)
	case err != nil:
		return -1, tails.Mount{}, other(err)
	}
	m, err := mountRoot(fd, path, dev, mounts)
	if err != nil {
		unix.Close(fd)
		return -1, tails.Mount{}, other(err)
	}
	return fd, m, nil
}

// validateSource re-derives the Persistent Storage of the running Tails: sys.Source must be the
// root of a mounted file system whose device is the unlocked cleartext of a TailsData LUKS
// partition.
//
// Unlike the destination's mount point, which comes from udisks, sys.Source is a constant of
// the installation made only of root-owned directories, so symlinks in it (live-boot may make
// /live a link to /run/live) are resolved once; the resolved path then gets the same strict
// checks as the destination.
func validateSource(sys System, snap *udisks.Snapshot, mounts []tails.Mount) (*root, *Failure) {
	notUnlocked := func(err error) *Failure {
		return failf(wire.CodeNotFound, wire.ReasonSourceNotUnlocked, wire.Args{Path: sys.Source}, err, "The Persistent Storage of this Tails is not unlocked (nothing is mounted at %s); unlock it in the Welcome Screen and try again.", sys.Source)
	}
	path, err := filepath.EvalSymlinks(sys.Source)
	if err != nil {
		return nil, notUnlocked(err)
	}
	fd, err := beneath.OpenAbs(path, unix.O_RDONLY|unix.O_DIRECTORY)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return nil, notUnlocked(err)
	case err != nil:
		return nil, failf(wire.CodeRefused, wire.ReasonSourceUnsafe, wire.Args{Path: sys.Source}, err, "The Persistent Storage of this Tails cannot be opened safely at %s; restart Tails and try again.", sys.Source)
	}
	r := &root{path: path, fd: fd}
	fail := func(f *Failure) (*root, *Failure) { r.close(); return nil, f }
	if r.dev, err = fstatDev(fd); err != nil {
		return fail(failf(wire.CodeInternal, wire.ReasonSourceUnreadable, wire.Args{Path: path}, err, "The Persistent Storage of this Tails cannot be read at %s; restart Tails and try again.", path))
	}
	if _, err := mountRoot(fd, path, r.dev, mounts); err != nil {
		return fail(notUnlocked(err))
	}
	notTailsData := func(err error) *Failure {
		return failf(wire.CodeRefused, wire.ReasonSourceNotTails, wire.Args{Path: path}, err, "The file system mounted at %s is not the unlocked Persistent Storage of a Tails stick; unlock the Persistent Storage of this Tails and try again.", path)
	}
	objs := blockByDevice(snap, r.dev)
	if len(objs) != 1 {
		return fail(notTailsData(errors.New("udisks has no single block device " + devString(r.dev))))
	}
	r.cleartext = objs[0]
	luks := snap.Object(r.cleartext.Block.CryptoBackingDevice)
	if luks == nil || !udisks.IsTailsData(luks) || luks.Block == nil || luks.Block.IdType != "crypto_LUKS" {
		return fail(notTailsData(errors.New("device " + devString(r.dev) + " is not the cleartext of a TailsData LUKS partition")))
	}
	r.uuid = luksUUID(luks)
	if !tails.ValidUUID(r.uuid) {
		return fail(failf(wire.CodeRefused, wire.ReasonSourceNoUUID, wire.Args{}, nil, "The Persistent Storage of this Tails has no valid LUKS UUID (%q), so it cannot be named in a backup; restart Tails and try again.", r.uuid))
	}
	if d := snap.DriveOf(luks.Path); d != nil {
		r.drive = d.Path
		r.name = stickOf(d, nil)
	}
	return r, nil
}

// stickOf is how the user knows a drive: vendor and model, size and device (disk, its whole
// block device, may be nil).
func stickOf(d, disk *udisks.Object) stick {
	var s stick
	if disk != nil {
		s.Device = shorten(disk.Device())
	}
	if d == nil || d.Drive == nil {
		return s
	}
	s.Size = int64(min(d.Drive.Size, 1<<62))
	// Vendor and model come from the stick itself: sanitised and bounded.
	name := strings.TrimSpace(strings.TrimSpace(d.Drive.Vendor) + " " + strings.TrimSpace(d.Drive.Model))
	if name = strings.TrimSpace(shorten(name)); name != "" && len(name) <= 80 {
		s.Label = name
	}
	return s
}

// validateDestination finds the backup whose TailsData LUKS UUID is uuid and checks everything
// about it: a removable drive other than the boot drive and the source's, unlocked, its ext4
// file system mounted, the mount point the root of a mount of exactly that device, reached
// without a symlink.
func validateDestination(sys System, snap *udisks.Snapshot, mounts []tails.Mount, src *root, uuid string) (*root, *Failure) {
	st, name, f := validateStick(sys, snap, src, uuid)
	if f != nil {
		return nil, f
	}
	switch {
	case st.Cleartext == nil:
		return nil, failf(wire.CodeNotFound, wire.ReasonBackupLocked, name.on(), nil, "The Persistent Storage of the backup on %s is locked; unlock it and try again.", name)
	case st.Cleartext.Block == nil || st.Cleartext.Filesystem == nil || len(st.Cleartext.Filesystem.MountPoints) == 0:
		return nil, failf(wire.CodeNotFound, wire.ReasonBackupNotMounted, name.on(), nil, "The Persistent Storage of the backup on %s is not mounted; mount it and try again.", name)
	case st.Cleartext.Block.IdType != "ext4":
		return nil, failf(wire.CodeRefused, wire.ReasonBackupNotExt4, wire.Args{Stick: name.w(), FSType: shorten(st.Cleartext.Block.IdType)}, nil, "The Persistent Storage of the backup on %s holds a %q file system instead of ext4; create the backup again.", name, st.Cleartext.Block.IdType)
	}
	dev := deviceNumber(st.Cleartext)
	if dev == 0 {
		return nil, failf(wire.CodeInternal, wire.ReasonNoDeviceNumber, name.on(), nil, "udisks does not give the device number of the backup's Persistent Storage on %s; restart the computer and try again.", name)
	}
	if src != nil && sameDevice(dev, src.dev) {
		return nil, failf(wire.CodeRefused, wire.ReasonBackupIsSource, name.on(), nil, "%s holds the Persistent Storage of this Tails, which is never its own backup; plug in the backup Tails instead.", capitalize(name.String()))
	}
	var first *Failure
	for _, mp := range st.Cleartext.Filesystem.MountPoints {
		// The mount point derives from the stick's label: shown only sanitised.
		shown := shorten(mp)
		notFound := func(err error) *Failure {
			return failf(wire.CodeNotFound, wire.ReasonBackupMoved, wire.Args{Stick: name.w(), Path: shown}, err, "The Persistent Storage of the backup on %s is not mounted at %s any more; mount it again and try again.", name, shown)
		}
		symlink := func(err error) *Failure {
			return failf(wire.CodeRefused, wire.ReasonBackupMountSymlink, wire.Args{Stick: name.w(), Path: shown}, err, "The path where the backup on %s is mounted, %s, goes through a symbolic link, so it is not trusted; unmount the backup, mount it again and try again.", name, shown)
		}
		other := func(err error) *Failure {
			return failf(wire.CodeRefused, wire.ReasonBackupMountOther, wire.Args{Stick: name.w(), Path: shown}, err, "What is mounted at %s is not the Persistent Storage of the backup on %s; unmount the backup, mount it again and try again.", shown, name)
		}
		fd, m, f := openMountRoot(mp, dev, mounts, notFound, symlink, other)
		if f == nil && m.FSType != "ext4" {
			unix.Close(fd)
			f = other(errors.New("the mount table says " + m.FSType + ", not ext4"))
		}
		if f != nil {
			if first == nil {
				first = f
			}
			continue
		}
		return &root{path: mp, fd: fd, dev: dev, uuid: uuid, cleartext: st.Cleartext, drive: st.Drive.Path, name: name}, nil
	}
	return nil, first
}

// validateStick finds the one plugged-in stick whose TailsData LUKS UUID is uuid and checks
// that it may be a backup, locked or not: encrypted with LUKS, a removable drive other than
// the boot drive and the source's, not hinted as a system device.
func validateStick(sys System, snap *udisks.Snapshot, src *root, uuid string) (udisks.Stick, stick, *Failure) {
	bp := sys.bootPaths()
	var found []udisks.Stick
	for _, st := range snap.TailsSticks(bp) {
		if luksUUID(st.LUKS) == uuid {
			found = append(found, st)
		}
	}
	switch len(found) {
	case 0:
		return udisks.Stick{}, stick{}, failf(wire.CodeNotFound, wire.ReasonBackupNotPlugged, wire.Args{UUID: uuid}, nil, "No stick with the backup's Persistent Storage (%s) is plugged in; plug in the backup Tails and try again.", uuid)
	case 1:
	default:
		return udisks.Stick{}, stick{}, failf(wire.CodeRefused, wire.ReasonBackupAmbiguous, wire.Args{UUID: uuid}, nil, "Several plugged-in sticks have a Persistent Storage with the UUID %s, so the backup cannot be told apart; unplug all but the backup and try again.", uuid)
	}
	st := found[0]
	name := stickOf(st.Drive, st.Disk)
	boot := snap.BootDrive(bp)
	switch {
	case !st.IsLUKS():
		return udisks.Stick{}, stick{}, failf(wire.CodeRefused, wire.ReasonBackupNotLUKS, name.on(), nil, "The Persistent Storage partition of %s is not encrypted with LUKS, so it is not used as a backup; create the backup again.", name)
	case st.Drive == nil || st.Drive.Drive == nil || !st.Drive.Drive.Removable:
		return udisks.Stick{}, stick{}, failf(wire.CodeRefused, wire.ReasonBackupNotRemovable, name.on(), nil, "%s is not a removable drive, so it is never used as a backup; use a USB stick.", capitalize(name.String()))
	case st.Boot || (boot != nil && boot.Path == st.Drive.Path) || (src != nil && src.drive != "" && src.drive == st.Drive.Path):
		return udisks.Stick{}, stick{}, failf(wire.CodeRefused, wire.ReasonBackupIsBoot, name.on(), nil, "%s is the stick this Tails is running from, which is never its own backup; plug in the backup Tails instead.", capitalize(name.String()))
	case hintSystem(st):
		return udisks.Stick{}, stick{}, failf(wire.CodeRefused, wire.ReasonBackupSystemDevice, name.on(), nil, "%s is marked as a system device, so it is never written to; use another stick as the backup.", capitalize(name.String()))
	}
	return st, name, nil
}

func hintSystem(st udisks.Stick) bool {
	// Not the cleartext: udisks hints every device-mapper device as a system device.
	for _, o := range []*udisks.Object{st.Disk, st.System, st.LUKS} {
		if o != nil && o.Block != nil && o.Block.HintSystem {
			return true
		}
	}
	return false
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// readMarker reads the backup marker at the root open as fd. present is false when there is
// none; err is set when there is one that cannot be used.
func readMarker(fd int) (m tails.Marker, present bool, err error) {
	data, err := tails.ReadFileAt(fd, tails.MarkerName, 64<<10)
	if errors.Is(err, unix.ENOENT) {
		return tails.Marker{}, false, nil
	}
	if err != nil {
		return tails.Marker{}, true, err
	}
	m, err = tails.ParseMarker(strings.NewReader(string(data)))
	return m, true, err
}
