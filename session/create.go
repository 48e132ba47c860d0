package session

// The making of a backup Tails, once the stick is chosen, confirmed and the passphrase typed:
// partitions through udisks, then the root helper's operations, with progress. Until the very
// end nothing says the stick is a backup: the pairing store is written by the caller (the command's runCreate) only after
// every step succeeded, so an interrupted Creation leaves a stick that is not paired, that the
// agent never updates, and that create simply erases again.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// CreateSteps is the number of steps Creation.Run shows.
const CreateSteps = 8

// CreateProgress shows a creation to the person: a terminal for the command line.
type CreateProgress interface {
	// Step starts the next of the CreateSteps steps.
	Step(what string)
	// Note says something about the current step.
	Note(s string)
	// Event is a progress event of the root helper in the current step.
	Event(ev wire.Event)
	// Warn says something the person must know, that does not stop the creation.
	Warn(s string)
	// Complete says that the operation whose events came ended with everything done.
	Complete()
	// Finish ends what Event drew (a percentage on a terminal line).
	Finish()
}

// CreateDisks is what a creation needs of udisks2; *udisks.Client has it.
type CreateDisks interface {
	GetSnapshot(ctx context.Context) (*udisks.Snapshot, error)
	WaitFor(ctx context.Context, cond func(*udisks.Snapshot) (bool, error)) (*udisks.Snapshot, error)
	Format(ctx context.Context, block dbus.ObjectPath, typ string, o udisks.FormatOptions) error
	CreateSystemPartition(ctx context.Context, table dbus.ObjectPath, offset, size uint64) (dbus.ObjectPath, error)
	CreatePersistentPartition(ctx context.Context, table dbus.ObjectPath, offset, size uint64, passphrase string) (dbus.ObjectPath, error)
	MountOrReuse(ctx context.Context, fs dbus.ObjectPath) (string, bool, error)
	Unmount(ctx context.Context, fs dbus.ObjectPath) error
	Lock(ctx context.Context, luks dbus.ObjectPath) error
	PowerOff(ctx context.Context, drive dbus.ObjectPath) error
}

// Creation makes a backup Tails on one drive.
type Creation struct {
	Disks CreateDisks
	Boot  udisks.BootPaths
	Log   *logrus.Entry
	// Loc is the session's language (nil: English).
	Loc      *l10n.Locale
	Helper   wire.HelperRunner
	Name     string // how the user knows the stick
	Drive    dbus.ObjectPath
	Layout   Layout
	Used     uint64 // bytes in this Tails' Persistent Storage
	Progress CreateProgress
	// App: the person uses the Backup app, not a terminal: the texts say what to do there,
	// with no command or option to type.
	App bool

	// NoKeySlot makes a backup without a key slot: every update asks the passphrase.
	NoKeySlot bool

	// UUID is the LUKS UUID of the new Persistent Storage, lower case, once it is made.
	UUID string
	// KeySlot: the backup has a key slot whose key this Tails keeps, so its updates need no
	// passphrase (recorded by Pair).
	KeySlot bool

	// Made along the way.
	disk, system, luks, clear dbus.ObjectPath
	erased                    bool // the stick was written to
}

// Run makes the backup with the passphrase pass. On failure or interruption, what it opened is unmounted and locked,
// and the error says the stick is not finished.
func (c *Creation) Run(ctx context.Context, pass []byte) error {
	err := c.steps(ctx, pass)
	if err == nil {
		return nil
	}
	c.Progress.Finish()
	c.cleanup(ctx)
	if !c.erased {
		return err
	}
	if c.App {
		return errors.New(c.Loc.Tr("the backup Tails on %[1]s is not finished (%[2]v); try again to start over", c.Name, err))
	}
	return errors.New(c.Loc.Tr("the backup Tails on %[1]s is not finished (%[2]v); run 'tails-backup create' again to start over", c.Name, err))
}

func (c *Creation) steps(ctx context.Context, pass []byte) error {
	l := c.Layout
	// The user took their time to confirm and type the passphrase: look again at what is
	// plugged in before erasing anything.
	snap, err := c.Disks.GetSnapshot(ctx)
	if err != nil {
		return errors.New(c.Loc.Tr("cannot list the USB sticks (%s), so nothing was changed; check that udisks2 is running and try again", Reason(err)))
	}
	drive, disk := snap.Object(c.Drive), snap.Disk(c.Drive)
	if drive == nil || drive.Drive == nil || disk == nil {
		if c.App {
			return errors.New(c.Loc.Tr("%s was unplugged, so nothing was changed; plug it in again and try again", c.Name))
		}
		return errors.New(c.Loc.Tr("%s was unplugged, so nothing was changed; plug it in again and run 'tails-backup create' again", c.Name))
	}
	facts := ReadDriveFacts(udisks.Stick{Drive: drive, Disk: disk}, snap.BootDrive(c.Boot))
	if reason := facts.NotEligibleIn(c.Loc, c.Used); reason != "" {
		return errors.New(c.Loc.Tr("%[1]s cannot be used any more (%[2]s), so nothing was changed", c.Name, reason))
	}
	if facts.Size != l.StickSize {
		if c.App {
			return errors.New(c.Loc.Tr("%s changed size while you confirmed, so nothing was changed; try again", c.Name))
		}
		return errors.New(c.Loc.Tr("%s changed size while you confirmed, so nothing was changed; run 'tails-backup create' again", c.Name))
	}
	c.disk = disk.Path

	c.Progress.Step(c.Loc.Tr("Erasing %s", c.Name))
	if err := c.teardown(ctx, snap); err != nil {
		if c.App {
			return errors.New(c.Loc.Tr("%[1]s is in use (%[2]s), so nothing was changed; close the files open on it or eject it in the Files browser, plug it in again and try again", c.Name, Reason(err)))
		}
		return errors.New(c.Loc.Tr("%[1]s is in use (%[2]s), so nothing was changed; close the files open on it or eject it in the Files browser, plug it in again and run 'tails-backup create' again", c.Name, Reason(err)))
	}
	if ctx.Err() != nil {
		return errors.New(c.Loc.Tr("interrupted, so nothing was changed"))
	}
	c.erased = true
	if err := c.Disks.Format(ctx, c.disk, "gpt", udisks.FormatOptions{}); err != nil {
		return c.failed(ctx, l10n.Mark("erasing it"), err)
	}

	c.Progress.Step(c.Loc.Tr("Creating the system partition"))
	if c.system, err = c.Disks.CreateSystemPartition(ctx, c.disk, l.SystemOffset, l.SystemSize); err != nil {
		return c.failed(ctx, l10n.Mark("creating its system partition"), err)
	}

	// udisks makes LUKS2 with cryptsetup's defaults, whose key derivation for LUKS2 is argon2id
	// (its memory cost at most 1 GiB), as Tails does; udisks 2.9 has no option to name it.
	c.Progress.Step(c.Loc.Tr("Creating the encrypted Persistent Storage (this takes a minute)"))
	if c.luks, err = c.Disks.CreatePersistentPartition(ctx, c.disk, l.DataOffset, 0, string(pass)); err != nil {
		return c.failed(ctx, l10n.Mark("creating its Persistent Storage"), err)
	}
	if err := c.openData(ctx); err != nil {
		return c.failed(ctx, l10n.Mark("opening its new Persistent Storage"), err)
	}

	c.Progress.Step(c.Loc.Tr("Preparing the Persistent Storage"))
	if _, err := c.helperOp(ctx, wire.OpCreatePersistence, nil); err != nil {
		return c.failed(ctx, l10n.Mark("preparing its Persistent Storage"), err)
	}

	// The marker says "incomplete" until the update below ends: a Creation interrupted after
	// this point is still never taken for a finished backup.
	c.Progress.Step(c.Loc.Tr("Marking it as the backup of this Tails"))
	if _, err := c.helperOp(ctx, wire.OpMark, nil); err != nil {
		return c.failed(ctx, l10n.Mark("marking it as the backup of this Tails"), err)
	}

	c.Progress.Step(c.Loc.Tr("Copying the system of this Tails"))
	if _, _, err := c.Disks.MountOrReuse(ctx, c.system); err != nil {
		return c.failed(ctx, l10n.Mark("opening its system partition"), err)
	}
	rep, err := c.helperOp(ctx, wire.OpRefreshSystem, c.Progress.Event)
	if err != nil {
		return c.failed(ctx, l10n.Mark("copying the system"), err)
	}
	c.Progress.Complete()
	// install-bootloader wants it unmounted.
	if err := c.Disks.Unmount(ctx, c.system); err != nil && !errors.Is(err, udisks.ErrNotMounted) {
		return c.failed(ctx, l10n.Mark("closing its system partition"), err)
	}
	if rep.SystemVersion != "" {
		// The version is "Tails 6.10 - 20241203" when read from .disk/info, "6.10" elsewhere.
		v := OneLine(rep.SystemVersion)
		if !strings.HasPrefix(v, "Tails") {
			v = "Tails " + v
		}
		c.Progress.Note(v + " copied.")
	}

	c.Progress.Step(c.Loc.Tr("Installing the boot loader for legacy BIOS computers"))
	if rep, err = c.helperOp(ctx, wire.OpInstallBootloader, nil); err != nil {
		return c.failed(ctx, l10n.Mark("installing its boot loader"), err)
	}
	if strings.HasPrefix(rep.Bootloader, "skipped:") {
		c.Progress.Finish()
		c.Progress.Warn(c.Loc.Tr("the backup Tails starts only on computers with UEFI: its boot loader for legacy BIOS was not installed (%s).",
			OneLine(strings.TrimSpace(strings.TrimPrefix(rep.Bootloader, "skipped:")))))
	}

	// Updates without the passphrase, on by default; a failure only warns (the updates ask
	// the passphrase). Before the copy: the key's folder, made now in this Tails' Persistent
	// Storage, changes the mtime of its root, which the copy then brings to the backup (verify
	// finds no difference right after create).
	if !c.NoKeySlot {
		if err := AddKeySlot(ctx, c.Helper, c.UUID, pass); err != nil {
			c.Progress.Finish()
			c.Progress.Warn(KeySlotNotAddedTextIn(ctx, c.Loc, err, c.Log))
		} else {
			c.KeySlot = true
			c.Progress.Note(KeySlotAddedTextIn(c.Loc))
		}
	}

	c.Progress.Step(c.Loc.Tr("Copying your Persistent Storage"))
	if rep, err = c.helperOp(ctx, wire.OpUpdate, c.Progress.Event); err != nil {
		return c.failed(ctx, l10n.Mark("copying your Persistent Storage"), err)
	}
	c.Progress.Complete()
	if rep.ErrorCount > 0 {
		n := int(min(rep.ErrorCount, 1<<31-1))
		c.Progress.Warn(c.Loc.TrN("%d file could not be copied; the next update copies it, so plug in your backup Tails again later.",
			"%d files could not be copied; the next update copies them, so plug in your backup Tails again later.", n, rep.ErrorCount))
	}

	return nil
}

// Pair records in s the backup that c made on target, paired and completely updated at now,
// in place of the backup that the stick held before, if any (its LUKS volume was erased).
func (c *Creation) Pair(s *pairing.State, target CreateTarget, now time.Time) error {
	if target.PairedUUID != "" {
		s.Unpair(target.PairedUUID)
	}
	if err := s.Pair(pairing.PairedBackup{UUID: c.UUID, Label: Label(target.Stick), Size: target.Facts.Size, Added: now, KeySlot: c.KeySlot}); err != nil {
		return err
	}
	s.RecordAttempt(pairing.Attempt{Time: now, Backup: c.UUID, Result: pairing.ResultSuccess})
	return nil
}

// openData waits for the unlocked Persistent Storage that udisks left after creating it, and
// mounts it for the helper.
func (c *Creation) openData(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, udisks.DefaultWait)
	defer cancel()
	s, err := c.Disks.WaitFor(wctx, func(s *udisks.Snapshot) (bool, error) {
		o := s.Object(c.luks)
		if o == nil {
			return false, udisks.ErrDeviceGone
		}
		ct := s.Cleartext(c.luks)
		return o.Block != nil && o.Block.IdUUID != "" && ct != nil && ct.Filesystem != nil, nil
	})
	if err != nil {
		return err
	}
	c.UUID = strings.ToLower(s.Object(c.luks).Block.IdUUID)
	if !tails.ValidUUID(c.UUID) {
		return errors.New(c.Loc.Tr("udisks gives the new LUKS volume the UUID %q, which is not a UUID", c.UUID))
	}
	c.clear = s.Cleartext(c.luks).Path
	_, _, err = c.Disks.MountOrReuse(ctx, c.clear)
	return err
}

// failed words the failure of a step for the "not finished" error.
func (c *Creation) failed(ctx context.Context, what string, err error) error {
	// what is one of the phrases marked at the calls ("erasing it"), in English for the log.
	doing := c.Loc.Tr(what)
	switch {
	case ctx.Err() != nil:
		// TRANSLATORS: %s is what the creation of a backup was doing ("erasing it",
		// "copying the system"); the sentences that follow it are in the same list.
		return errors.New(c.Loc.Tr("interrupted while %s", doing))
	case errors.Is(err, udisks.ErrDeviceGone):
		return errors.New(c.Loc.Tr("it was unplugged while %s", doing))
	case errors.Is(err, udisks.ErrNotAuthorized):
		return errors.New(c.Loc.Tr("Tails did not allow %s", doing))
	}
	c.Log.WithError(err).Debug(what)
	// TRANSLATORS: %[1]s is what the creation was doing ("erasing it"), %[2]s why it failed (in English).
	return errors.New(c.Loc.Tr("%[1]s failed: %[2]s", doing, Reason(err)))
}

// helperOp runs one root helper operation on the new backup.
func (c *Creation) helperOp(ctx context.Context, op wire.Op, progress func(wire.Event)) (*wire.Report, error) {
	rep, err := c.Helper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: op, Backup: c.UUID}, progress)
	if err != nil {
		return nil, CommandHelperError(ctx, c.Loc, err, c.Log)
	}
	if rep == nil {
		rep = &wire.Report{}
	}
	return rep, nil
}

// teardown unmounts every file system of the drive and locks its unlocked LUKS volumes (every
// one of them is erased, or was made by this Creation).
func (c *Creation) teardown(ctx context.Context, snap *udisks.Snapshot) error {
	var mounted, unlocked []dbus.ObjectPath
	for _, o := range snap.Objects() {
		if o.Block == nil {
			continue
		}
		if d := snap.DriveOf(o.Path); d == nil || d.Path != c.Drive {
			continue
		}
		if o.Filesystem != nil && len(o.Filesystem.MountPoints) > 0 {
			mounted = append(mounted, o.Path)
		}
		if o.Encrypted != nil && snap.Cleartext(o.Path) != nil {
			unlocked = append(unlocked, o.Path)
		}
	}
	var errs []error
	for _, p := range mounted {
		if err := c.Disks.Unmount(ctx, p); err != nil && !errors.Is(err, udisks.ErrNotMounted) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, p := range unlocked {
		if err := c.Disks.Lock(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanup leaves the stick unmounted and locked after a failure; it is not powered off, so
// that create can start again at once.
func (c *Creation) cleanup(ctx context.Context) {
	if !c.erased {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	snap, err := c.Disks.GetSnapshot(ctx)
	if err == nil {
		err = c.teardown(ctx, snap)
	}
	if err != nil {
		c.Log.WithError(err).Error("unmount and lock the unfinished backup")
	}
}

// Eject unmounts, locks and powers off the finished backup.
func (c *Creation) Eject(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	snap, err := c.Disks.GetSnapshot(ctx)
	if err != nil {
		return err
	}
	if err := c.teardown(ctx, snap); err != nil {
		return err
	}
	if d := snap.Object(c.Drive); d == nil || d.Drive == nil || !d.Drive.CanPowerOff {
		return nil
	}
	if err := c.Disks.PowerOff(ctx, c.Drive); err != nil {
		return err
	}
	// PowerOff returns once udisks wrote the USB device's sysfs remove, but udisks drops the
	// drive's objects only when the kernel's remove events reach it, seconds later on a busy
	// machine; a running agent that sees the pairing saved before that still finds the stick
	// and starts an update of a stick that is going away (seen in the e2e guest: the update
	// started 1.6 s after the power-off, then "device gone"). So wait until the drive and its
	// block devices are gone.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	gone := func(s *udisks.Snapshot) (bool, error) {
		for _, o := range s.Objects() {
			if o.Path == c.Drive || (o.Block != nil && o.Block.Drive == c.Drive) {
				return false, nil
			}
		}
		return true, nil
	}
	if _, err := c.Disks.WaitFor(wctx, gone); err != nil {
		c.Log.WithError(err).Warn("the powered-off backup is still listed by udisks")
	}
	return nil
}
