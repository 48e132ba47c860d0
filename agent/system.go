package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"tails-backup/notify"
	"tails-backup/session"
	"tails-backup/sysident"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// After the Persistent Storage of a backup is updated, its system partition is brought to the
// running Tails: the session compares the two system partitions (sysident.Identify, cheap: a
// version file, the module list and a size), and when they differ the root helper refreshes
// the backup's (refresh-system), then, when its boot files changed, installs its legacy BIOS
// boot loader on the unmounted partition (install-bootloader). A failure there never fails the
// update: the data is backed up, and the user is told what to do in a notification of its own.

// systemFailure classifies why the system partition was not refreshed, for its notification.
type systemFailure int

const (
	systemStopped    systemFailure = iota // the helper failed or stopped unexpectedly
	systemCancelled                       // the user (or the agent's end) cancelled it
	systemNoSpace                         // the backup's system partition is too small
	systemGone                            // the stick was unplugged
	systemUnreadable                      // the backup's system partition could not be mounted or read
	systemRefused                         // the helper refused it, and said why
	systemBootloader                      // refreshed, but the boot loader was not installed
)

// pendingBootloaders are the backups whose system partition was refreshed but whose boot
// loader could not be installed: the next plug installs it even if the systems are equal. It
// is kept for the session only.
type pendingBootloaders struct {
	mu      sync.Mutex
	pending map[string]bool
}

func (p *pendingBootloaders) get(uuid string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending[uuid]
}

func (p *pendingBootloaders) set(uuid string, pending bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = make(map[string]bool)
	}
	if pending {
		p.pending[uuid] = true
	} else {
		delete(p.pending, uuid)
	}
}

// refreshSystem brings the backup's system partition to the running Tails. It returns the
// version it was updated to ("" when nothing was written) and, when it failed, the
// notification that says so.
func (u *update) refreshSystem() (string, *notify.Notification) {
	// The stick as udisks sees it now: when the update started, at plug time, udisks may not
	// have probed the system partition yet (seen in the VM).
	part := u.stick.System
	if snap, err := u.a.deps.Disks.GetSnapshot(u.ctx); err != nil {
		u.log.WithError(err).Warn("look at the backup's stick again")
	} else if st, ok := snap.StickOf(u.stick.LUKS.Path, u.a.deps.Disks.BootPaths()); ok {
		part = st.System
	}
	if part == nil || part.Partition == nil || part.Partition.Number != 1 || part.Filesystem == nil {
		log := u.log
		if part != nil && part.Partition != nil {
			log = log.WithFields(logrus.Fields{"partition": part.Partition.Number, "filesystem": part.Filesystem != nil})
		}
		log.Info("the backup's stick has no Tails system partition as partition 1: its system is not refreshed")
		return "", nil
	}
	if u.ctx.Err() != nil {
		u.log.Info("cancelled: the backup's system is not checked")
		return "", nil
	}
	medium := u.a.cfg.Medium
	srcID, err := sysident.Identify(medium, sysident.Options{})
	if err != nil {
		u.log.WithError(err).Warn("this Tails' system partition cannot be read: the backup's system is not refreshed")
		return "", nil
	}

	d := u.a.deps.Disks
	dir, reused, err := d.MountOrReuse(u.ctx, part.Path)
	if err != nil {
		u.log.WithError(err).Warn("mount the backup's system partition")
		return "", u.systemNote(u.systemErrorKind(err, systemUnreadable), nil)
	}
	mounted := !reused // release exactly what we mounted
	unmount := func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), time.Minute)
		defer cancel()
		err := d.Unmount(ctx, part.Path)
		if err == nil || errors.Is(err, udisks.ErrNotMounted) {
			mounted, reused = false, false
			return nil
		}
		return err
	}
	defer func() {
		if mounted {
			if err := unmount(); err != nil {
				u.log.WithError(err).Warn("unmount the backup's system partition")
			}
		}
	}()
	log := u.log.WithField("system_partition", dir)

	dstID, err := sysident.Identify(dir, sysident.Options{})
	switch {
	case errors.Is(err, sysident.ErrNoVersion):
		// Empty, or filled by something else: the helper fills the first and refuses the other.
		log.WithError(err).Info("no Tails system on the backup's system partition")
	case err != nil:
		log.WithError(err).Warn("read the backup's system partition")
		return "", u.systemNote(systemUnreadable, nil)
	}
	differ := err != nil || dstID.Digest != srcID.Digest
	pending := u.a.bootloaders.get(u.stick.UUID)
	if !differ && !pending {
		log.WithField("version", srcID.Version).Info("the backup's system is up to date")
		return "", nil
	}

	version, bootloader := "", pending
	if differ {
		log.WithFields(logrus.Fields{"from": dstID.Version, "to": srcID.Version}).Info("refreshing the backup's system")
		rep, err := u.runSystemHelper()
		if err != nil {
			log.WithError(err).Warn("refresh the backup's system")
			return "", u.systemNote(u.systemErrorKind(err, systemStopped), err)
		}
		version = rep.SystemVersion
		bootloader = bootloader || rep.BootloaderChanged
	}
	if !bootloader {
		return version, nil
	}

	// syslinux writes the partition's FAT directly: it must be unmounted, even if it was
	// mounted before us (the stick is ejected next anyway).
	u.a.bootloaders.set(u.stick.UUID, true)
	if mounted || reused {
		if err := unmount(); err != nil {
			log.WithError(err).Warn("unmount the backup's system partition for its boot loader")
			return version, u.systemNote(systemBootloader, nil)
		}
	}
	if u.ctx.Err() != nil {
		return version, u.systemNote(systemCancelled, nil)
	}
	rep, err := u.a.deps.Helper.Run(u.ctx, newRequest(wire.OpInstallBootloader, u.stick.UUID), nil)
	if err != nil {
		log.WithError(err).Warn("install the backup's boot loader")
		kind := u.systemErrorKind(err, systemBootloader)
		if kind == systemRefused || kind == systemStopped {
			kind = systemBootloader
		}
		return version, u.systemNote(kind, err)
	}
	u.a.bootloaders.set(u.stick.UUID, false)
	if strings.HasPrefix(rep.Bootloader, "skipped") {
		// UEFI boot works without it; nothing the user can do about it here.
		log.WithField("bootloader", rep.Bootloader).Warn("the backup's legacy BIOS boot loader was not installed")
	} else {
		log.WithField("bootloader", rep.Bootloader).Info("the backup's boot loader installed")
	}
	return version, nil
}

// runSystemHelper runs the helper's refresh-system and shows its progress.
func (u *update) runSystemHelper() (*wire.Report, error) {
	var eta session.ETA
	var last time.Time
	u.show(systemProgressNote(0, 0, false))
	return u.a.deps.Helper.Run(u.ctx, newRequest(wire.OpRefreshSystem, u.stick.UUID), func(ev wire.Event) {
		now := u.a.deps.Clock.Now()
		if ev.Phase != wire.PhaseSystem || now.Sub(last) < u.a.cfg.ProgressEvery {
			return
		}
		last = now
		pct, left, known := eta.Update(now, ev.BytesDone, ev.BytesTotal, ev.FilesDone, ev.FilesTotal)
		u.show(systemProgressNote(pct, left, known))
	})
}

// systemErrorKind classifies an error of the system refresh; other is the kind of anything
// not recognised.
func (u *update) systemErrorKind(err error, other systemFailure) systemFailure {
	u.mu.Lock()
	userCancelled := u.cancelled
	u.mu.Unlock()
	var he *wire.HelperError
	switch {
	case userCancelled || u.ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, wire.ErrHelperCancelled):
		return systemCancelled
	case errors.Is(err, wire.ErrHelperNoSpace):
		return systemNoSpace
	case errors.Is(err, wire.ErrHelperDeviceGone) || errors.Is(err, udisks.ErrDeviceGone):
		return systemGone
	case errors.Is(err, wire.ErrHelperNotFound):
		return systemUnreadable // unmounted or unplugged under us
	case errors.As(err, &he) && he.Message != "" && (errors.Is(err, wire.ErrHelperRefused) || errors.Is(err, wire.ErrHelperNotPaired)):
		return systemRefused // the helper says why and what to do
	}
	return other
}

// systemNote is the notification of a failed system refresh; err is the helper's error.
func (u *update) systemNote(kind systemFailure, err error) *notify.Notification {
	var he *wire.HelperError
	if kind == systemRefused && !errors.As(err, &he) {
		kind = systemStopped
	}
	n := systemErrorNote(kind, he)
	return &n
}
