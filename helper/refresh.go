//go:build linux

package helper

// The backup's system partition: refresh-system makes it a copy of the running one
// (sysrefresh), install-bootloader makes it bootable on legacy BIOS as Tails Installer does.
// Both re-derive everything from udisks and the mount table: the running system partition from
// System.SystemMount, the backup's as partition 1 of the stick whose paired Persistent Storage
// validateDestination found.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
	tbsync "tails-backup/sync"
	"tails-backup/sysident"
	"tails-backup/sysrefresh"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

const (
	// placeholderVersion is written as the version of an empty system partition before it
	// is filled: the real version file comes last, so until a refresh completes the backup
	// keeps a version that differs from every Tails, and the next refresh finishes the job.
	placeholderVersion = "none: being written by tails-backup"
	// mbrCodeSize is the boot code at the start of the disk, before the partition table of
	// the protective MBR (offset 440: disk signature, then the partition entries).
	mbrCodeSize = 440
	// mediumSyslinux and mediumMBR are the syslinux installer and the GPT MBR boot code on a
	// Tails system partition; Tails Installer uses them (it installs syslinux' gptmbr.bin as
	// utils/mbr/mbr.bin).
	mediumSyslinux = "utils/linux/syslinux"
	mediumMBR      = "utils/mbr/mbr.bin"
	// maxSyslinuxSize bounds the syslinux installer copied from the medium.
	maxSyslinuxSize = 16 << 20
	// syslinuxTimeout bounds a syslinux run.
	syslinuxTimeout = 5 * time.Minute
	// versionFileMode is the mode of the placeholder version file (FAT ignores it).
	versionFileMode = 0o644
)

// checkPaired refuses a backup whose marker does not name src.
func checkPaired(src, dst *root) *Failure {
	prev, present, err := readMarker(dst.fd)
	if !present || err != nil || prev.Source != src.uuid {
		return markerFailure(dst, prev, present, err)
	}
	return nil
}

// validateMedium re-derives the running system partition: sys.SystemMount must be the root of
// a mounted file system whose device udisks says is a Tails system partition on the stick
// of this Tails' Persistent Storage. Like sys.Source, it is a constant of the installation:
// symlinks in it are resolved once, then the resolved path gets the strict checks.
func validateMedium(sys System, snap *udisks.Snapshot, mounts []tails.Mount, src *root) (*root, *Failure) {
	notMounted := func(err error) *Failure {
		return failf(wire.CodeNotFound, wire.ReasonSystemNotMounted, wire.Args{Path: sys.SystemMount}, err, "The system partition of this Tails is not mounted at %s, so the backup's cannot be refreshed; start Tails from its USB stick and try again.", sys.SystemMount)
	}
	notTails := func(err error) *Failure {
		return failf(wire.CodeRefused, wire.ReasonSystemNotBoot, wire.Args{Path: sys.SystemMount}, err, "What is mounted at %s is not the system partition of the USB stick this Tails runs from, so it is not copied; start Tails from its USB stick and try again.", sys.SystemMount)
	}
	p, err := filepath.EvalSymlinks(sys.SystemMount)
	if err != nil {
		return nil, notMounted(err)
	}
	fd, err := beneath.OpenAbs(p, unix.O_RDONLY|unix.O_DIRECTORY)
	switch {
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return nil, notMounted(err)
	case err != nil:
		return nil, notTails(err)
	}
	r := &root{path: p, fd: fd, name: stick{english: "this Tails"}}
	fail := func(f *Failure) (*root, *Failure) { r.close(); return nil, f }
	if r.dev, err = fstatDev(fd); err != nil {
		return fail(notMounted(err))
	}
	if _, err := mountRoot(fd, p, r.dev, mounts); err != nil {
		return fail(notMounted(err))
	}
	objs := blockByDevice(snap, r.dev)
	if len(objs) != 1 {
		return fail(notTails(fmt.Errorf("udisks has %d block devices %s", len(objs), devString(r.dev))))
	}
	part := objs[0]
	if !udisks.IsTailsSystem(part) {
		return fail(notTails(fmt.Errorf("device %s is not a Tails system partition", devString(r.dev))))
	}
	if d := snap.DriveOf(part.Path); src == nil || d == nil || src.drive == "" || d.Path != src.drive {
		return fail(notTails(fmt.Errorf("device %s is not on the drive of this Tails' Persistent Storage", devString(r.dev))))
	}
	return r, nil
}

// systemPartition is the backup's system partition as udisks describes it.
type systemPartition struct {
	part *udisks.Object // partition 1 of the backup's stick
	disk *udisks.Object // the whole disk holding its partition table
	dev  uint64         // the partition's device number
}

// backupSystemPartition finds partition 1 of the stick holding dst (validated by
// validateDestination) and checks that it is a Tails system partition udisks may write to.
func backupSystemPartition(snap *udisks.Snapshot, dst *root) (systemPartition, *Failure) {
	name := dst.name
	var luks *udisks.Object
	if dst.cleartext != nil && dst.cleartext.Block != nil {
		luks = snap.Object(dst.cleartext.Block.CryptoBackingDevice)
	}
	if luks == nil || luks.Partition == nil {
		return systemPartition{}, failf(wire.CodeNotFound, wire.ReasonBackupNoLUKS, name.on(), nil, "udisks no longer shows the Persistent Storage partition of the backup on %s; plug it in again and try again.", name)
	}
	table := luks.Partition.Table
	disk := snap.Object(table)
	if disk == nil || disk.Block == nil || disk.PartitionTable == nil || disk.Partition != nil {
		return systemPartition{}, failf(wire.CodeNotFound, wire.ReasonBackupNoPartitionTable, name.on(), nil, "udisks does not show the partition table of the backup on %s; plug it in again and try again.", name)
	}
	var part *udisks.Object
	for _, p := range snap.Partitions(table) {
		if p.Partition.Number == 1 {
			part = p
			break
		}
	}
	switch {
	case part == nil:
		return systemPartition{}, failf(wire.CodeRefused, wire.ReasonBackupNoSystemPartition, name.on(), nil, "The backup on %s has no partition 1, so it has no Tails system partition to write to; create the backup again.", name)
	case !udisks.IsTailsSystem(part):
		return systemPartition{}, failf(wire.CodeRefused, wire.ReasonBackupPartitionESP, name.on(), nil, "Partition 1 of the backup on %s is not a Tails system partition (an EFI system partition named %s), so it is not written to; create the backup again.", name, udisks.SystemName)
	case part.Block == nil:
		return systemPartition{}, failf(wire.CodeNotFound, wire.ReasonBackupSystemNoBlock, name.on(), nil, "udisks does not show the system partition of the backup on %s as a block device; plug it in again and try again.", name)
	case snap.DriveOf(part.Path) == nil || snap.DriveOf(part.Path).Path != dst.drive || disk.Block.Drive != dst.drive:
		return systemPartition{}, failf(wire.CodeRefused, wire.ReasonBackupSystemElsewhere, name.on(), nil, "Partition 1 of the backup on %s is not on the same stick as its Persistent Storage, so it is not written to; plug in only the backup and try again.", name)
	case part.Block.HintSystem || disk.Block.HintSystem:
		return systemPartition{}, failf(wire.CodeRefused, wire.ReasonBackupSystemHint, name.on(), nil, "The system partition of the backup on %s is marked as a system device, so it is never written to; use another stick as the backup.", name)
	case part.Block.IdType != "vfat":
		return systemPartition{}, failf(wire.CodeRefused, wire.ReasonBackupSystemNotFAT, wire.Args{Stick: name.w(), FSType: shorten(part.Block.IdType)}, nil, "Partition 1 of the backup on %s holds a %q file system instead of FAT, so it is not written to; create the backup again.", name, shorten(part.Block.IdType))
	case !strings.EqualFold(part.Block.IdLabel, udisks.SystemName):
		return systemPartition{}, failf(wire.CodeRefused, wire.ReasonBackupSystemLabel, wire.Args{Stick: name.w(), Label: shorten(part.Block.IdLabel)}, nil, "The file system on partition 1 of the backup on %s is labelled %q instead of %s, so it is not written to; create the backup again.", name, shorten(part.Block.IdLabel), udisks.SystemName)
	case part.Block.ReadOnly || disk.Block.ReadOnly:
		return systemPartition{}, failf(wire.CodeRefused, wire.ReasonBackupSystemReadOnly, name.on(), nil, "The system partition of the backup on %s is read-only; turn off the write protection of the stick and try again.", name)
	}
	sp := systemPartition{part: part, disk: disk, dev: deviceNumber(part)}
	if sp.dev == 0 || deviceNumber(disk) == 0 {
		return systemPartition{}, failf(wire.CodeInternal, wire.ReasonNoDeviceNumber, name.on(), nil, "udisks does not give the device numbers of the backup on %s; restart the computer and try again.", name)
	}
	return sp, nil
}

// openSystemMount finds where the backup's system partition is mounted, by its device number
// in the mount table (never a path from the session), and opens it: the open directory pins
// that file system for the whole refresh.
func openSystemMount(sp systemPartition, mounts []tails.Mount, name stick) (*root, *Failure) {
	var first *Failure
	for _, m := range mounts {
		if m.Major != unix.Major(sp.dev) || m.Minor != unix.Minor(sp.dev) || m.Root != "/" {
			continue
		}
		shown := shorten(m.MountPoint)
		notFound := func(err error) *Failure {
			return failf(wire.CodeNotFound, wire.ReasonBackupSystemMoved, wire.Args{Stick: name.w(), Path: shown}, err, "The system partition of the backup on %s is not mounted at %s any more; mount it again and try again.", name, shown)
		}
		symlink := func(err error) *Failure {
			return failf(wire.CodeRefused, wire.ReasonBackupSystemMountSymlink, wire.Args{Stick: name.w(), Path: shown}, err, "The path where the system partition of the backup on %s is mounted, %s, goes through a symbolic link, so it is not trusted; unmount it, mount it again and try again.", name, shown)
		}
		other := func(err error) *Failure {
			return failf(wire.CodeRefused, wire.ReasonBackupSystemMountOther, wire.Args{Stick: name.w(), Path: shown}, err, "What is mounted at %s is not the system partition of the backup on %s; unmount it, mount it again and try again.", shown, name)
		}
		fd, _, f := openMountRoot(m.MountPoint, sp.dev, mounts, notFound, symlink, other)
		if f != nil {
			if first == nil {
				first = f
			}
			continue
		}
		return &root{path: m.MountPoint, fd: fd, dev: sp.dev, name: name}, nil
	}
	if first != nil {
		return nil, first
	}
	return nil, failf(wire.CodeNotFound, wire.ReasonBackupSystemNotMounted, name.on(), nil, "The system partition of the backup on %s is not mounted; mount it and try again.", name)
}

// refreshSystem makes the backup's system partition a copy of the running one.
func (o *operation) refreshSystem(snap *udisks.Snapshot, mounts []tails.Mount, src, dst *root) (*wire.Report, *Failure) {
	if f := checkPaired(src, dst); f != nil {
		return nil, f
	}
	medium, f := validateMedium(o.sys, snap, mounts, src)
	if f != nil {
		return nil, f
	}
	defer medium.close()
	sp, f := backupSystemPartition(snap, dst)
	if f != nil {
		return nil, f
	}
	sys, f := openSystemMount(sp, mounts, dst.name)
	if f != nil {
		return nil, f
	}
	defer sys.close()
	o.log = o.log.WithFields(logrus.Fields{"medium": medium.path, "system_partition": sys.path})
	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	start := time.Now()
	// The roots validated above, by their descriptors: nothing is looked up again by path.
	if _, err := sysident.ReadVersionFD(medium.fd, sysident.Options{}); err != nil {
		if errors.Is(err, sysident.ErrOtherFileSystem) {
			return nil, o.systemFailure(err, sys)
		}
		return nil, failf(wire.CodeRefused, wire.ReasonSystemNoVersion, wire.Args{Path: medium.path}, err, "The system partition of this Tails at %s has no readable Tails version (%s), so it is not copied; restart Tails and try again.", medium.path, sysident.DefaultVersionFiles[0])
	}

	fresh := false
	if _, err := sysident.ReadVersionFD(sys.fd, sysident.Options{}); err != nil {
		if !errors.Is(err, sysident.ErrNoVersion) {
			return nil, o.systemFailure(onBackup(err), sys)
		}
		names, _, err := beneath.ReadNames(sys.fd, nil, nil)
		if err != nil {
			return nil, o.systemFailure(err, sys)
		}
		if len(names) > 0 {
			return nil, failf(wire.CodeRefused, wire.ReasonBackupSystemNotTails, dst.name.on(), nil, "The system partition of the backup on %s holds files but no Tails system, so it is not overwritten; create the backup again.", dst.name)
		}
		if err := writePlaceholderVersion(sys.fd); err != nil {
			return nil, o.systemFailure(err, sys)
		}
		fresh = true
		o.log.Info("empty system partition: filling it")
	}

	srcID, err := sysident.IdentifyFD(medium.fd, sysident.Options{})
	if err != nil {
		return nil, o.systemFailure(err, sys)
	}
	dstID, err := sysident.IdentifyFD(sys.fd, sysident.Options{})
	if err != nil {
		return nil, o.systemFailure(onBackup(err), sys)
	}
	plan, err := sysrefresh.PlanFDs(medium.fd, sys.fd, sysrefresh.Options{})
	if err != nil {
		return nil, o.systemFailure(err, sys)
	}
	filesTotal := int64(len(plan.Copies) + len(plan.Commit))
	var last time.Time
	var current string
	var filesDone int64
	progress := func(p sysrefresh.Progress) { // called from this goroutine
		if p.Path != current {
			if current != "" {
				filesDone++
			}
			current = p.Path
		}
		now := time.Now()
		if !last.IsZero() && now.Sub(last) < o.sys.ProgressInterval {
			return
		}
		last = now
		o.out.write(wire.Event{Event: wire.EventProgress, Phase: wire.PhaseSystem, FilesDone: filesDone, FilesTotal: max(filesTotal, filesDone),
			BytesDone: p.Done, BytesTotal: p.Total, Path: p.Path})
	}
	rep, err := sysrefresh.RefreshFDs(o.ctx, medium.fd, sys.fd, sysrefresh.Options{Progress: progress})
	if err != nil {
		o.log.WithError(err).WithField("written", rep.Written).Warn("system partition refresh stopped")
		return nil, o.systemFailure(err, sys)
	}
	ch := rep.Changes
	out := &wire.Report{BytesCopied: rep.Written, Deleted: int64(len(ch.Deletes)), Duration: time.Since(start),
		SystemVersion: rep.DestinationVersion}
	if !ch.Empty() {
		out.SystemVersion = rep.SourceVersion
		n := int64(len(ch.Copies) + len(ch.Commit))
		o.out.write(wire.Event{Event: wire.EventProgress, Phase: wire.PhaseSystem, FilesDone: n, FilesTotal: n, BytesDone: rep.Written, BytesTotal: ch.Bytes})
	}
	for _, c := range append(append([]sysrefresh.FileCopy(nil), ch.Copies...), ch.Commit...) {
		if c.Reason == "new" {
			out.Created++
		} else {
			out.Updated++
		}
	}
	out.Created += int64(len(ch.Mkdirs))
	// A refresh towards another system may have replaced syslinux/ in an earlier run that was
	// interrupted, which this run cannot see: any refresh that completes another system asks
	// for the boot loader, as does a change under syslinux/ or a partition filled from empty.
	out.BootloaderChanged = fresh || rep.DestinationVersion == placeholderVersion || touchesSyslinux(ch) ||
		(!ch.Empty() && srcID.Digest != dstID.Digest)
	o.log.WithFields(logrus.Fields{"from": rep.DestinationVersion, "to": out.SystemVersion, "created": out.Created,
		"updated": out.Updated, "deleted": out.Deleted, "bytes": out.BytesCopied, "temporaries_removed": len(rep.RemovedTemporaries),
		"bootloader_changed": out.BootloaderChanged}).Info("system partition refreshed")
	return out, nil
}

// touchesSyslinux tells whether a refresh changed anything under syslinux/ (FAT: any case),
// after which legacy BIOS boot needs syslinux installed again (ldlinux.sys must match
// ldlinux.c32).
func touchesSyslinux(ch sysrefresh.Changes) bool {
	in := func(p string) bool {
		top, _, _ := strings.Cut(p, "/")
		return strings.EqualFold(top, "syslinux")
	}
	for _, d := range append(append([]sysrefresh.Delete(nil), ch.Conflicts...), ch.Deletes...) {
		if in(d.Path) {
			return true
		}
	}
	for _, d := range ch.Mkdirs {
		if in(d) {
			return true
		}
	}
	for _, c := range append(append([]sysrefresh.FileCopy(nil), ch.Copies...), ch.Commit...) {
		if in(c.DstPath) {
			return true
		}
	}
	return false
}

// writePlaceholderVersion writes placeholderVersion as the version file of the empty system
// partition open as rootfd.
func writePlaceholderVersion(rootfd int) error {
	dir, name := path.Split(sysident.DefaultVersionFiles[0])
	dir = strings.TrimSuffix(dir, "/")
	dfd := rootfd
	if dir != "" {
		if err := unix.Mkdirat(rootfd, dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		fd, err := unix.Openat(rootfd, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", dir, err)
		}
		defer unix.Close(fd)
		dfd = fd
	}
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, versionFileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", sysident.DefaultVersionFiles[0], err)
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = f.Write([]byte(placeholderVersion + "\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", sysident.DefaultVersionFiles[0], err)
	}
	if err := unix.Fsync(dfd); err != nil {
		return err
	}
	return unix.Fsync(rootfd)
}

// onBackup marks a *sysrefresh.MountError from a function that saw the backup's tree alone
// (Identify, ReadVersion: they cannot tell which tree they read) as the backup's.
func onBackup(err error) error {
	var me *sysrefresh.MountError
	if errors.As(err, &me) {
		return &sysrefresh.MountError{Backup: true, Path: me.Path}
	}
	return err
}

// systemLimit and systemLimitCount are the wire.Args of a bound of the system refresh.
func systemLimit(le *sysrefresh.LimitError) string {
	if le.Depth {
		return wire.LimitDepth
	}
	return wire.LimitEntries
}

func systemLimitCount(le *sysrefresh.LimitError) int64 {
	if le.Depth {
		return sysrefresh.MaxDepth
	}
	return sysrefresh.MaxEntries
}

// systemFailure explains an error of the system partition refresh.
func (o *operation) systemFailure(err error, sys *root) *Failure {
	var se *sysrefresh.SpaceError
	var me *sysrefresh.MountError
	var le *sysrefresh.LimitError
	switch {
	case errors.As(err, &le) && le.Backup:
		return failf(wire.CodeRefused, wire.ReasonBackupSystemLimit, wire.Args{Stick: sys.name.w(), Path: shorten(tbsync.ShortPath(le.Path)), Limit: systemLimit(le), Count: systemLimitCount(le)}, err, "The system partition of the backup on %s holds %s (%s), which no Tails system needs, so nothing is written there; create the backup again.",
			sys.name, le.What(), shorten(tbsync.ShortPath(le.Path)))
	case errors.As(err, &le):
		return failf(wire.CodeRefused, wire.ReasonSystemLimit, wire.Args{Path: shorten(tbsync.ShortPath(le.Path)), Limit: systemLimit(le), Count: systemLimitCount(le)}, err, "The system partition of this Tails holds %s (%s), which no Tails system has, so nothing is copied from it; restart Tails and try again.", le.What(), shorten(tbsync.ShortPath(le.Path)))
	case errors.As(err, &me) && me.Backup:
		return failf(wire.CodeRefused, wire.ReasonBackupSystemNestedMount, wire.Args{Stick: sys.name.w(), Path: shorten(me.Path)}, err, "Another file system is mounted on %q in the system partition of the backup on %s, so nothing is written there; unplug the stick, plug it in again and try again.",
			shorten(me.Path), sys.name)
	case errors.As(err, &me):
		return failf(wire.CodeRefused, wire.ReasonSystemNestedMount, wire.Args{Path: shorten(me.Path)}, err, "Another file system is mounted on %q in the system partition of this Tails, so nothing is copied from it; restart Tails and try again.", shorten(me.Path))
	case errors.As(err, &se) && se.During:
		return noSpace(wire.ReasonBackupSystemFull, sys.name.on(), err, max(se.Needed, se.Available+1), se.Available,
			"The system partition of the backup on %s ran out of space for this version of Tails; create a new backup on a bigger USB stick.", sys.name)
	case errors.As(err, &se):
		return noSpace(wire.ReasonBackupSystemTooSmall, sys.name.on(), err, se.Needed, se.Available,
			"The system partition of the backup on %s is too small for this version of Tails: it needs %s free and has %s; create a new backup on a bigger USB stick.",
			sys.name, tbsync.FormatBytes(se.Needed), tbsync.FormatBytes(se.Available))
	case o.ctx.Err() != nil:
		return cancelled(o.ctx)
	case o.deviceGone(err, sys):
		return deviceGoneFailure(sys, err)
	default:
		return failf(wire.CodeInternal, wire.ReasonRefreshFailed, sys.name.on(), err, "The refresh of the system partition of the backup on %s stopped (%s); nothing is lost: run it again, and report the bug if it happens again.", sys.name, shorten(err.Error()))
	}
}

// installBootloader makes the backup bootable on legacy BIOS the way Tails Installer does:
// the syslinux of the running system installed on the backup's unmounted system partition,
// and syslinux' GPT MBR boot code written over the first 440 bytes of the stick. UEFI boot
// needs neither: its files come with the system partition's copy.
func (o *operation) installBootloader(snap *udisks.Snapshot, mounts []tails.Mount, src, dst *root) (*wire.Report, *Failure) {
	start := time.Now()
	if f := checkPaired(src, dst); f != nil {
		return nil, f
	}
	medium, f := validateMedium(o.sys, snap, mounts, src)
	if f != nil {
		return nil, f
	}
	defer medium.close()
	sp, f := backupSystemPartition(snap, dst)
	if f != nil {
		return nil, f
	}
	// syslinux writes the partition's FAT behind the back of any mounted file system.
	mounted := sp.part.Filesystem != nil && len(sp.part.Filesystem.MountPoints) > 0
	for _, m := range mounts {
		if m.Major == unix.Major(sp.dev) && m.Minor == unix.Minor(sp.dev) {
			mounted = true
		}
	}
	if mounted {
		return nil, failf(wire.CodeRefused, wire.ReasonBackupSystemMounted, dst.name.on(), nil, "The system partition of the backup on %s is mounted, so its boot loader is not installed; unmount it and try again.", dst.name)
	}
	partDev, diskDev := sp.part.Block.Device, sp.disk.Block.Device
	for _, d := range []struct {
		path string
		dev  uint64
	}{{partDev, sp.dev}, {diskDev, deviceNumber(sp.disk)}} {
		if err := checkBlockDevice(d.path, d.dev); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
				return nil, deviceGoneFailure(dst, err)
			}
			return nil, failf(wire.CodeRefused, wire.ReasonBackupDeviceMismatch, dst.name.on(), err, "The device that udisks names for the backup on %s is not the expected one; unplug the stick, plug it in again and try again.", dst.name)
		}
	}

	syslinux, cleanup, err := o.findSyslinux(medium)
	if err != nil {
		return nil, failf(wire.CodeInternal, wire.ReasonNoSyslinux, wire.Args{}, err, "The syslinux boot loader installer of this Tails cannot be read (%s); restart Tails and try again.", shorten(err.Error()))
	}
	defer cleanup()
	if syslinux == "" {
		o.log.Warn("no syslinux on this Tails' system partition nor in the PATH: legacy BIOS boot not installed")
		return &wire.Report{Bootloader: wire.BootloaderNoSyslinux, Duration: time.Since(start)}, nil
	}
	mbr, err := o.readMBRCode(medium)
	if err != nil {
		return nil, failf(wire.CodeInternal, wire.ReasonNoMBRCode, wire.Args{}, err, "The MBR boot code of this Tails cannot be read (%s); restart Tails and try again.", shorten(err.Error()))
	}
	if mbr == nil {
		o.log.Warn("no GPT MBR boot code on this Tails' system partition nor in the system: legacy BIOS boot not installed")
		return &wire.Report{Bootloader: wire.BootloaderNoMBR, Duration: time.Since(start)}, nil
	}
	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}

	// As Tails Installer runs it: "syslinux -d syslinux DEVICE", LC_CTYPE=C.
	argv := []string{syslinux, "-d", "syslinux", partDev}
	ctx, cancel := context.WithTimeout(o.ctx, syslinuxTimeout)
	out, err := o.sys.RunCommand(ctx, argv, []string{"LC_CTYPE=C", "PATH=" + o.sys.ProgramPath})
	cancel()
	o.log.WithFields(logrus.Fields{"argv": argv, "output": shorten(string(out))}).Info("syslinux ran")
	if err != nil {
		switch {
		case o.ctx.Err() != nil:
			return nil, cancelled(o.ctx)
		case checkBlockDevice(partDev, sp.dev) != nil:
			return nil, deviceGoneFailure(dst, err)
		}
		return nil, failf(wire.CodeInternal, wire.ReasonBootloaderFailed, dst.name.on(), fmt.Errorf("%v: %s", err, shorten(string(out))), "Installing the legacy BIOS boot loader on the backup on %s failed (%s); plug it in again and try again.", dst.name, shorten(err.Error()))
	}
	if err := writeMBRCode(diskDev, deviceNumber(sp.disk), mbr); err != nil {
		if o.deviceGone(err, dst) {
			return nil, deviceGoneFailure(dst, err)
		}
		return nil, failf(wire.CodeInternal, wire.ReasonMBRFailed, dst.name.on(), err, "Writing the MBR boot code of the backup on %s failed (%s); plug it in again and try again.", dst.name, shorten(err.Error()))
	}
	o.log.WithFields(logrus.Fields{"partition": partDev, "disk": diskDev}).Info("legacy BIOS boot loader installed")
	return &wire.Report{Bootloader: wire.BootloaderSyslinux, Duration: time.Since(start)}, nil
}

// checkBlockDevice checks that the device node at p is the block device dev.
func checkBlockDevice(p string, dev uint64) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%q is not a clean absolute path", p)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || !sameDevice(st.Rdev, dev) {
		return fmt.Errorf("%s is not the block device %s", p, devString(dev))
	}
	return nil
}

// openFileBeneath opens the regular file rel beneath the directory dirfd, never following a
// symlink nor entering another file system mounted below dirfd (EXDEV, beneath.Open); it
// returns ENOENT when there is none.
func openFileBeneath(dirfd int, rel string) (*os.File, error) {
	fd, err := beneath.Open(dirfd, rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", rel)
		}
		return nil, err
	}
	return f, nil
}

// findSyslinux returns the syslinux installer to run: the running system partition's, copied
// to a private folder and made executable as Tails Installer does (FAT has no execute bits
// and the medium may be mounted noexec), else syslinux from the PATH; "" if neither exists.
// cleanup removes the copy.
func (o *operation) findSyslinux(medium *root) (string, func(), error) {
	f, err := openFileBeneath(medium.fd, mediumSyslinux)
	if err == nil {
		defer f.Close()
		dir, err := os.MkdirTemp("", "tails-backup-syslinux-")
		if err != nil {
			return "", func() {}, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		p := filepath.Join(dir, "syslinux")
		if err := copyBounded(p, f, maxSyslinuxSize); err != nil {
			cleanup()
			return "", func() {}, err
		}
		return p, cleanup, nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return "", func() {}, fmt.Errorf("%s: %w", mediumSyslinux, err)
	}
	for _, dir := range filepath.SplitList(o.sys.ProgramPath) {
		if !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the working directory
		}
		p := filepath.Join(dir, "syslinux")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, func() {}, nil
		}
	}
	return "", func() {}, nil
}

// copyBounded copies at most limit bytes of r into a new executable file at p.
func copyBounded(p string, r io.Reader, limit int64) error {
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return err
	}
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return err
	case n > limit:
		return fmt.Errorf("%s is larger than %d bytes", mediumSyslinux, limit)
	}
	return nil
}

// readMBRCode returns the GPT MBR boot code: the running system partition's, else
// sys.GPTMBR; nil if neither exists. It must be exactly mbrCodeSize bytes: more would
// overwrite the partition table.
func (o *operation) readMBRCode(medium *root) ([]byte, error) {
	f, err := openFileBeneath(medium.fd, mediumMBR)
	name := mediumMBR
	if errors.Is(err, unix.ENOENT) {
		name = o.sys.GPTMBR
		f, err = os.Open(o.sys.GPTMBR)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, mbrCodeSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) != mbrCodeSize {
		return nil, fmt.Errorf("%s is not %d bytes long", name, mbrCodeSize)
	}
	return b, nil
}

// writeMBRCode writes code (mbrCodeSize bytes) at the start of the whole-disk device at p,
// which must be the block device dev, leaving the partition table after it untouched.
//
// The device is opened without O_EXCL: the backup's Persistent Storage is unlocked, and the
// kernel then holds its partition for dm-crypt, which makes an exclusive open of the whole
// disk fail with EBUSY. The write covers only the boot code, which no partition contains.
func writeMBRCode(p string, dev uint64, code []byte) error {
	if len(code) != mbrCodeSize {
		return fmt.Errorf("the MBR boot code is %d bytes, not %d", len(code), mbrCodeSize)
	}
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || !sameDevice(st.Rdev, dev) {
		return fmt.Errorf("%s is not the block device %s", p, devString(dev))
	}
	old := make([]byte, mbrCodeSize)
	if n, err := unix.Pread(fd, old, 0); err == nil && n == mbrCodeSize && bytes.Equal(old, code) {
		return nil // already there: no write
	}
	n, err := unix.Pwrite(fd, code, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if n != mbrCodeSize {
		return fmt.Errorf("write %s: %d bytes written of %d", p, n, mbrCodeSize)
	}
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("flush %s: %w", p, err)
	}
	return nil
}
