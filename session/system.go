package session

// After the Persistent Storage of a backup is updated, its system partition is brought to the
// running Tails: the session compares the two system partitions (sysident.Identify, cheap: a
// version file, the module list and a size), and when they differ the root helper refreshes
// the backup's (refresh-system), then, when its boot files changed, installs its legacy BIOS
// boot loader on the unmounted partition (install-bootloader). A failure there never fails the
// update: the data is backed up; the caller words the *SystemError.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/sysident"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// SystemDisks is what the refresh of a backup's system partition needs of udisks2;
// *udisks.Client has it.
type SystemDisks interface {
	MountOrReuse(ctx context.Context, fs dbus.ObjectPath) (string, bool, error)
	Unmount(ctx context.Context, fs dbus.ObjectPath) error
	GetSnapshot(ctx context.Context) (*udisks.Snapshot, error)
	BootPaths() udisks.BootPaths
}

// SystemFailure is why the backup's system partition was not refreshed, for the caller's
// words.
type SystemFailure int

const (
	SystemStopped    SystemFailure = iota // the helper failed or stopped unexpectedly
	SystemCancelled                       // the person (or the caller's end) cancelled it
	SystemNoSpace                         // the backup's system partition is too small
	SystemGone                            // the stick was unplugged
	SystemUnreadable                      // the backup's system partition could not be mounted or read
	SystemRefused                         // the helper refused it: HelperText(Helper) says why and what to do
	SystemBootloader                      // refreshed, but the boot loader was not installed
)

// SystemError is a failed refresh of a backup's system partition.
type SystemError struct {
	Kind SystemFailure
	// Helper is the root helper's error, when it sent one; with SystemRefused it is set and
	// its Message is a sentence for the person.
	Helper *wire.HelperError
	Err    error // the cause, for the log (nil when there is none beyond Kind)
}

func (e *SystemError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("system partition not refreshed (failure %d)", e.Kind)
	}
	return "system partition not refreshed: " + e.Err.Error()
}

func (e *SystemError) Unwrap() error { return e.Err }

// SystemObserver is what the person sees of a refresh of the system partition. Its methods
// are called on the refresh's goroutine.
type SystemObserver interface {
	// RefreshingSystem says that the helper starts refreshing the backup's system partition,
	// from the Tails version it holds ("" if none) to the running one.
	RefreshingSystem(from, to string)
	// SystemProgress is each progress event of the refresh, with its percentage done and,
	// once it can be estimated, the time left.
	SystemProgress(p UpdateProgress)
}

// PendingBootloaders are the backups whose system partition was refreshed but whose boot
// loader could not be installed: the next refresh installs it even if the systems are then
// equal. The caller keeps it as long as it runs (the agent: the desktop session); the zero
// value is ready to use and safe for concurrent use.
type PendingBootloaders struct {
	mu      sync.Mutex
	pending map[string]bool
}

// Pending tells whether the boot loader of the backup with LUKS UUID uuid is still to install.
func (p *PendingBootloaders) Pending(uuid string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending[uuid]
}

func (p *PendingBootloaders) set(uuid string, pending bool) {
	if p == nil {
		return
	}
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

// SystemRefresh brings the system partition of a backup, whose Persistent Storage was just
// updated, to the running Tails.
type SystemRefresh struct {
	Disks  SystemDisks
	Helper wire.HelperRunner
	// Medium is where the running system partition is mounted (tails.MediumMount if "").
	Medium string
	// Pending remembers the boot loaders still to install; nil remembers nothing past Run.
	Pending *PendingBootloaders
	Now     func() time.Time // time.Now if nil
	Log     *logrus.Entry
}

// Run refreshes the backup's system partition when it holds another Tails than the running
// one. It returns the version written ("" when nothing was written) and, when something
// failed, a *SystemError; both are set when the system was refreshed but its boot loader not
// installed. A stick without a Tails system partition as partition 1, or a running system
// partition that cannot be read, is left alone (logged), without an error.
func (r *SystemRefresh) Run(ctx context.Context, stick Stick, obs SystemObserver) (string, error) {
	log := r.Log
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		log = logrus.NewEntry(l)
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	medium := r.Medium
	if medium == "" {
		medium = tails.MediumMount
	}
	run := &systemRun{r: r, ctx: ctx, stick: stick, obs: obs, log: log, now: now}
	return run.refresh(medium)
}

// systemRun is one Run.
type systemRun struct {
	r     *SystemRefresh
	ctx   context.Context
	stick Stick
	obs   SystemObserver
	log   *logrus.Entry
	now   func() time.Time
}

func (s *systemRun) refresh(medium string) (string, error) {
	ctx, d := s.ctx, s.r.Disks
	// The stick as udisks sees it now: when the update started, at plug time, udisks may not
	// have probed the system partition yet (seen in the VM).
	part := s.stick.System
	if snap, err := d.GetSnapshot(ctx); err != nil {
		s.log.WithError(err).Warn("look at the backup's stick again")
	} else if st, ok := snap.StickOf(s.stick.LUKS.Path, d.BootPaths()); ok {
		part = st.System
	}
	if part == nil || part.Partition == nil || part.Partition.Number != 1 || part.Filesystem == nil {
		log := s.log
		if part != nil && part.Partition != nil {
			log = log.WithFields(logrus.Fields{"partition": part.Partition.Number, "filesystem": part.Filesystem != nil})
		}
		log.Info("the backup's stick has no Tails system partition as partition 1: its system is not refreshed")
		return "", nil
	}
	if ctx.Err() != nil {
		s.log.Info("cancelled: the backup's system is not checked")
		return "", nil
	}
	srcID, err := sysident.Identify(medium, sysident.Options{})
	if err != nil {
		s.log.WithError(err).Warn("this Tails' system partition cannot be read: the backup's system is not refreshed")
		return "", nil
	}

	dir, reused, err := d.MountOrReuse(ctx, part.Path)
	if err != nil {
		s.log.WithError(err).Warn("mount the backup's system partition")
		return "", s.failure(s.kind(err, SystemUnreadable), err)
	}
	mounted := !reused // release exactly what we mounted
	unmount := func() error {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err := d.Unmount(uctx, part.Path)
		if err == nil || errors.Is(err, udisks.ErrNotMounted) {
			mounted, reused = false, false
			return nil
		}
		return err
	}
	defer func() {
		if mounted {
			if err := unmount(); err != nil {
				s.log.WithError(err).Warn("unmount the backup's system partition")
			}
		}
	}()
	log := s.log.WithField("system_partition", dir)

	dstID, err := sysident.Identify(dir, sysident.Options{})
	switch {
	case errors.Is(err, sysident.ErrNoVersion):
		// Empty, or filled by something else: the helper fills the first and refuses the other.
		log.WithError(err).Info("no Tails system on the backup's system partition")
	case err != nil:
		log.WithError(err).Warn("read the backup's system partition")
		return "", s.failure(SystemUnreadable, err)
	}
	differ := err != nil || dstID.Digest != srcID.Digest
	pending := s.r.Pending.Pending(s.stick.UUID)
	if !differ && !pending {
		log.WithField("version", srcID.Version).Info("the backup's system is up to date")
		return "", nil
	}

	version, bootloader := "", pending
	if differ {
		log.WithFields(logrus.Fields{"from": dstID.Version, "to": srcID.Version}).Info("refreshing the backup's system")
		rep, err := s.runHelper(dstID.Version, srcID.Version)
		if err != nil {
			log.WithError(err).Warn("refresh the backup's system")
			return "", s.failure(s.kind(err, SystemStopped), err)
		}
		version = rep.SystemVersion
		bootloader = bootloader || rep.BootloaderChanged
	}
	if !bootloader {
		return version, nil
	}

	// syslinux writes the partition's FAT directly: it must be unmounted, even if it was
	// mounted before us (the stick is ejected next anyway).
	s.r.Pending.set(s.stick.UUID, true)
	if mounted || reused {
		if err := unmount(); err != nil {
			log.WithError(err).Warn("unmount the backup's system partition for its boot loader")
			return version, s.failure(SystemBootloader, err)
		}
	}
	if ctx.Err() != nil {
		return version, s.failure(SystemCancelled, ctx.Err())
	}
	rep, err := s.r.Helper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: wire.OpInstallBootloader, Backup: s.stick.UUID}, nil)
	if err != nil {
		log.WithError(err).Warn("install the backup's boot loader")
		kind := s.kind(err, SystemBootloader)
		if kind == SystemRefused || kind == SystemStopped {
			kind = SystemBootloader
		}
		return version, s.failure(kind, err)
	}
	s.r.Pending.set(s.stick.UUID, false)
	if rep != nil && strings.HasPrefix(rep.Bootloader, "skipped") {
		// UEFI boot works without it; nothing the person can do about it here.
		log.WithField("bootloader", rep.Bootloader).Warn("the backup's legacy BIOS boot loader was not installed")
	} else if rep != nil {
		log.WithField("bootloader", rep.Bootloader).Info("the backup's boot loader installed")
	}
	return version, nil
}

// runHelper runs the helper's refresh-system and passes on its progress.
func (s *systemRun) runHelper(from, to string) (*wire.Report, error) {
	var eta ETA
	s.obs.RefreshingSystem(from, to)
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpRefreshSystem, Backup: s.stick.UUID}
	rep, err := s.r.Helper.Run(s.ctx, req, func(ev wire.Event) {
		if ev.Phase != wire.PhaseSystem {
			return
		}
		p := UpdateProgress{Event: ev}
		p.Percent, p.Left, p.LeftKnown = eta.Update(s.now(), ev.BytesDone, ev.BytesTotal, ev.FilesDone, ev.FilesTotal)
		s.obs.SystemProgress(p)
	})
	if err == nil && rep == nil {
		rep = &wire.Report{}
	}
	return rep, err
}

// kind classifies an error of the system refresh; other is the kind of anything not
// recognised.
func (s *systemRun) kind(err error, other SystemFailure) SystemFailure {
	var he *wire.HelperError
	switch {
	case s.ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, wire.ErrHelperCancelled):
		return SystemCancelled
	case errors.Is(err, wire.ErrHelperNoSpace):
		return SystemNoSpace
	case errors.Is(err, wire.ErrHelperDeviceGone) || errors.Is(err, udisks.ErrDeviceGone):
		return SystemGone
	case errors.Is(err, wire.ErrHelperNotFound):
		return SystemUnreadable // unmounted or unplugged under us
	case errors.As(err, &he) && KnownReason(he.Reason) && (errors.Is(err, wire.ErrHelperRefused) || errors.Is(err, wire.ErrHelperNotPaired)):
		return SystemRefused // the helper says why, and HelperText what to do
	}
	return other
}

// failure is the *SystemError of kind for err.
func (s *systemRun) failure(kind SystemFailure, err error) *SystemError {
	e := &SystemError{Kind: kind, Err: err}
	errors.As(err, &e.Helper)
	if kind == SystemRefused && (e.Helper == nil || !KnownReason(e.Helper.Reason)) {
		e.Kind = SystemStopped
	}
	return e
}
