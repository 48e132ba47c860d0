package main

// The making of a backup Tails, once the stick is chosen, confirmed and the passphrase typed:
// partitions through udisks, then the root helper's operations, with progress. Until the very
// end nothing says the stick is a backup: the pairing store is written by runCreate only after
// every step succeeded, so an interrupted creation leaves a stick that is not paired, that the
// agent never updates, and that create simply erases again.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// createSteps is the number of steps creation.run shows.
const createSteps = 8

// creation makes a backup Tails on one drive.
type creation struct {
	env       *environment
	disks     *udisks.Client
	boot      udisks.BootPaths
	log       *logrus.Entry
	helperCmd string
	name      string // how the user knows the stick
	drive     dbus.ObjectPath
	layout    backupLayout
	used      uint64 // bytes in this Tails' Persistent Storage
	progress  *createProgress

	// Made along the way.
	disk, system, luks, clear dbus.ObjectPath
	uuid                      string // LUKS UUID of the new Persistent Storage, lower case
	erased                    bool   // the stick was written to
}

// run makes the backup. On failure or interruption, what it opened is unmounted and locked,
// and the error says the stick is not finished.
func (c *creation) run(ctx context.Context, pass []byte) error {
	err := c.steps(ctx, pass)
	if err == nil {
		return nil
	}
	c.progress.finish()
	c.cleanup(ctx)
	if !c.erased {
		return err
	}
	return fmt.Errorf("the backup Tails on %s is not finished (%v); run 'tails-backup create' again to start over", c.name, err)
}

func (c *creation) steps(ctx context.Context, pass []byte) error {
	l := c.layout
	// The user took their time to confirm and type the passphrase: look again at what is
	// plugged in before erasing anything.
	snap, err := c.disks.GetSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("cannot list the USB sticks (%v), so nothing was changed; check that udisks2 is running and try again", err)
	}
	drive, disk := snap.Object(c.drive), snap.Disk(c.drive)
	if drive == nil || drive.Drive == nil || disk == nil {
		return fmt.Errorf("%s was unplugged, so nothing was changed; plug it in again and run 'tails-backup create' again", c.name)
	}
	facts := driveFacts(udisks.Stick{Drive: drive, Disk: disk}, snap.BootDrive(c.boot))
	if reason := facts.notEligible(c.used); reason != "" {
		return fmt.Errorf("%s cannot be used any more (%s), so nothing was changed", c.name, reason)
	}
	if facts.Size != l.StickSize {
		return fmt.Errorf("%s changed size while you confirmed, so nothing was changed; run 'tails-backup create' again", c.name)
	}
	c.disk = disk.Path

	c.progress.step("Erasing " + c.name)
	if err := c.teardown(ctx, snap); err != nil {
		return fmt.Errorf("%s is in use (%v), so nothing was changed; close the files open on it or eject it in the Files browser, plug it in again and run 'tails-backup create' again", c.name, err)
	}
	if ctx.Err() != nil {
		return errors.New("interrupted, so nothing was changed")
	}
	c.erased = true
	if err := c.disks.Format(ctx, c.disk, "gpt", udisks.FormatOptions{}); err != nil {
		return c.failed(ctx, "erasing it", err)
	}

	c.progress.step("Creating the system partition")
	if c.system, err = c.disks.CreateSystemPartition(ctx, c.disk, l.SystemOffset, l.SystemSize); err != nil {
		return c.failed(ctx, "creating its system partition", err)
	}

	// udisks makes LUKS2 with cryptsetup's defaults, whose key derivation for LUKS2 is argon2id
	// (its memory cost at most 1 GiB), as Tails does; udisks 2.9 has no option to name it.
	c.progress.step("Creating the encrypted Persistent Storage (this takes a minute)")
	if c.luks, err = c.disks.CreatePersistentPartition(ctx, c.disk, l.DataOffset, 0, string(pass)); err != nil {
		return c.failed(ctx, "creating its Persistent Storage", err)
	}
	if err := c.openData(ctx); err != nil {
		return c.failed(ctx, "opening its new Persistent Storage", err)
	}

	c.progress.step("Preparing the Persistent Storage")
	if _, err := c.helperOp(ctx, wire.OpCreatePersistence, nil); err != nil {
		return c.failed(ctx, "preparing its Persistent Storage", err)
	}

	// The marker says "incomplete" until the update below ends: a creation interrupted after
	// this point is still never taken for a finished backup.
	c.progress.step("Marking it as the backup of this Tails")
	if _, err := c.helperOp(ctx, wire.OpMark, nil); err != nil {
		return c.failed(ctx, "marking it as the backup of this Tails", err)
	}

	c.progress.step("Copying the system of this Tails")
	if _, _, err := c.disks.MountOrReuse(ctx, c.system); err != nil {
		return c.failed(ctx, "opening its system partition", err)
	}
	rep, err := c.helperOp(ctx, wire.OpRefreshSystem, c.progress.event)
	if err != nil {
		return c.failed(ctx, "copying the system", err)
	}
	// install-bootloader wants it unmounted.
	if err := c.disks.Unmount(ctx, c.system); err != nil && !errors.Is(err, udisks.ErrNotMounted) {
		return c.failed(ctx, "closing its system partition", err)
	}
	if rep.SystemVersion != "" {
		// The version is "Tails 6.10 - 20241203" when read from .disk/info, "6.10" elsewhere.
		v := oneLine(rep.SystemVersion)
		if !strings.HasPrefix(v, "Tails") {
			v = "Tails " + v
		}
		c.progress.note(v + " copied.")
	}

	c.progress.step("Installing the boot loader for legacy BIOS computers")
	if rep, err = c.helperOp(ctx, wire.OpInstallBootloader, nil); err != nil {
		return c.failed(ctx, "installing its boot loader", err)
	}
	if strings.HasPrefix(rep.Bootloader, "skipped:") {
		c.progress.finish()
		fmt.Fprintf(c.env.stderr, "Warning: the backup Tails starts only on computers with UEFI: its boot loader for legacy BIOS was not installed (%s).\n",
			oneLine(strings.TrimSpace(strings.TrimPrefix(rep.Bootloader, "skipped:"))))
	}

	c.progress.step("Copying your Persistent Storage")
	if rep, err = c.helperOp(ctx, wire.OpUpdate, c.progress.event); err != nil {
		return c.failed(ctx, "copying your Persistent Storage", err)
	}
	c.progress.finish()
	if rep.ErrorCount > 0 {
		files := fmt.Sprintf("%d files", rep.ErrorCount)
		if rep.ErrorCount == 1 {
			files = "1 file"
		}
		fmt.Fprintf(c.env.stderr, "Warning: %s could not be copied; the next update copies them, so plug in your backup Tails again later.\n", files)
	}
	return nil
}

// openData waits for the unlocked Persistent Storage that udisks left after creating it, and
// mounts it for the helper.
func (c *creation) openData(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, udisks.DefaultWait)
	defer cancel()
	s, err := c.disks.WaitFor(wctx, func(s *udisks.Snapshot) (bool, error) {
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
	c.uuid = strings.ToLower(s.Object(c.luks).Block.IdUUID)
	if !tails.ValidUUID(c.uuid) {
		return fmt.Errorf("udisks gives the new LUKS volume the UUID %q, which is not a UUID", c.uuid)
	}
	c.clear = s.Cleartext(c.luks).Path
	_, _, err = c.disks.MountOrReuse(ctx, c.clear)
	return err
}

// failed words the failure of a step for the "not finished" error.
func (c *creation) failed(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted while %s", what)
	case errors.Is(err, udisks.ErrDeviceGone):
		return fmt.Errorf("it was unplugged while %s", what)
	case errors.Is(err, udisks.ErrNotAuthorized):
		return fmt.Errorf("Tails did not allow %s", what)
	}
	return fmt.Errorf("%s failed: %v", what, err)
}

// helperOp runs one root helper operation on the new backup.
func (c *creation) helperOp(ctx context.Context, op wire.Op, progress func(wire.Event)) (*wire.Report, error) {
	client := wire.NewHelperClient(strings.Fields(c.helperCmd), c.log.WithField("component", "helper"))
	rep, err := client.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: op, Backup: c.uuid}, progress)
	if err != nil {
		return nil, session.CommandHelperError(ctx, err)
	}
	if rep == nil {
		rep = &wire.Report{}
	}
	return rep, nil
}

// teardown unmounts every file system of the drive and locks its unlocked LUKS volumes (every
// one of them is erased, or was made by this creation).
func (c *creation) teardown(ctx context.Context, snap *udisks.Snapshot) error {
	var mounted, unlocked []dbus.ObjectPath
	for _, o := range snap.Objects() {
		if o.Block == nil {
			continue
		}
		if d := snap.DriveOf(o.Path); d == nil || d.Path != c.drive {
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
		if err := c.disks.Unmount(ctx, p); err != nil && !errors.Is(err, udisks.ErrNotMounted) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, p := range unlocked {
		if err := c.disks.Lock(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanup leaves the stick unmounted and locked after a failure; it is not powered off, so
// that create can start again at once.
func (c *creation) cleanup(ctx context.Context) {
	if !c.erased {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	snap, err := c.disks.GetSnapshot(ctx)
	if err == nil {
		err = c.teardown(ctx, snap)
	}
	if err != nil {
		c.log.WithError(err).Error("unmount and lock the unfinished backup")
	}
}

// eject unmounts, locks and powers off the finished backup.
func (c *creation) eject(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	snap, err := c.disks.GetSnapshot(ctx)
	if err != nil {
		return err
	}
	if err := c.teardown(ctx, snap); err != nil {
		return err
	}
	if d := snap.Object(c.drive); d == nil || d.Drive == nil || !d.Drive.CanPowerOff {
		return nil
	}
	if err := c.disks.PowerOff(ctx, c.drive); err != nil {
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
			if o.Path == c.drive || (o.Block != nil && o.Block.Drive == c.drive) {
				return false, nil
			}
		}
		return true, nil
	}
	if _, err := c.disks.WaitFor(wctx, gone); err != nil {
		c.log.WithError(err).Warn("the powered-off backup is still listed by udisks")
	}
	return nil
}

// createProgress shows the steps, and the percentage of the long ones: redrawn on one line on
// a terminal, else a line every 10%.
type createProgress struct {
	w        io.Writer
	terminal bool
	steps, n int
	pct      int  // last percentage shown, -1 for none
	open     bool // a percentage is drawn on a terminal line not ended yet
}

func (p *createProgress) step(what string) {
	p.finish()
	p.n++
	p.pct = -1
	fmt.Fprintf(p.w, "[%d/%d] %s...\n", p.n, p.steps, what)
}

// note prints a line about the current step.
func (p *createProgress) note(s string) {
	p.finish()
	fmt.Fprintf(p.w, "      %s\n", s)
}

// event shows a progress event of the helper: bytes done of the bytes to copy (files when
// there are no bytes to count). The comparison before an update's copy has no total yet.
func (p *createProgress) event(ev wire.Event) {
	done, total := ev.BytesDone, ev.BytesTotal
	if total <= 0 {
		done, total = ev.FilesDone, ev.FilesTotal
	}
	if ev.Phase == "scan" || total <= 0 {
		return
	}
	pct := int(min(100, max(0, done)*100/total))
	switch {
	case p.terminal:
		if pct != p.pct {
			fmt.Fprintf(p.w, "\r\033[K      %d%%", pct)
			p.open = true
		}
	case p.pct < 0 || pct/10 > p.pct/10:
		fmt.Fprintf(p.w, "      %d%%\n", pct)
	default:
		return
	}
	p.pct = pct
}

// finish ends a percentage line left open on a terminal.
func (p *createProgress) finish() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}
