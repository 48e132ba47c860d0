package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/pinentry"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// Disks is what opening a stick needs of udisks2; *udisks.Client has it.
type Disks interface {
	UnlockOrReuse(ctx context.Context, luks dbus.ObjectPath, passphrase string) (dbus.ObjectPath, bool, error)
	MountOrReuse(ctx context.Context, fs dbus.ObjectPath) (string, bool, error)
	MountReadOnlyOrReuse(ctx context.Context, fs dbus.ObjectPath) (string, bool, error)
	Unmount(ctx context.Context, fs dbus.ObjectPath) error
	Lock(ctx context.Context, luks dbus.ObjectPath) error
	PowerOff(ctx context.Context, drive dbus.ObjectPath) error
}

// Passphrase is how the person is asked the passphrase of a stick's Persistent Storage: through
// an asker (pinentry in the desktop session, or a fake in tests), with the caller's words.
type Passphrase struct {
	Asker  pinentry.PassphraseAsker
	Prompt pinentry.Prompt
	// Tries is how many passphrases are tried (3 if 0); WrongText is shown after a wrong one.
	Tries     int
	WrongText string
	// Keep, if set, is given the passphrase that unlocked the stick, before it is wiped: it
	// must copy it (pair adds the backup's key slot with it).
	Keep func(pass []byte)
}

// OpenOptions says how a stick is opened and released.
type OpenOptions struct {
	// ReadOnly mounts the stick read-only (udisks.ReadOnlyMountOptions), for a command that only
	// reads it (restore, verify), so that it changes nothing on it.
	ReadOnly bool
	// LeaveAsFound: Release unmounts and locks only what Open itself mounted and unlocked;
	// otherwise the stick ends unmounted and locked whatever it was (the update, pair).
	LeaveAsFound bool
	// Log receives a warning for each step of the release that fails.
	Log *logrus.Entry
}

// Opened is a stick being opened, or open: its Persistent Storage unlocked and mounted.
type Opened struct {
	disks Disks
	stick Stick
	opts  OpenOptions

	clear             dbus.ObjectPath // its unlocked cleartext device
	root              string          // where it is mounted
	unlocked, mounted bool            // to be undone by Release
	released          bool

	// byHelper: the root helper unlocked and mounted it (UnlockWithKey), so the helper
	// unmounts and locks it (udisks2 refuses amnesia the lock of a device root unlocked).
	byHelper      wire.HelperRunner
	mountedAsRoot bool
}

// NewOpened prepares to open stick through disks; nothing is done yet.
func NewOpened(disks Disks, stick Stick, opts OpenOptions) *Opened {
	if opts.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		opts.Log = logrus.NewEntry(l)
	}
	return &Opened{disks: disks, stick: stick, opts: opts}
}

// Stick is the stick being opened.
func (o *Opened) Stick() Stick { return o.stick }

// Clear is its unlocked cleartext device, once Unlock has succeeded.
func (o *Opened) Clear() dbus.ObjectPath { return o.clear }

// Root is where its Persistent Storage is mounted, once Mount has succeeded.
func (o *Opened) Root() string { return o.root }

// Unlock unlocks the stick's Persistent Storage with a passphrase asked as pass says, unless
// udisks says it is already unlocked (then it is reused, and nothing is asked). A wrong
// passphrase is asked again; the error wraps pinentry.ErrTooManyTries after the last try,
// pinentry.ErrPinentryCancelled when the person did not give one, or udisks' error.
func (o *Opened) Unlock(ctx context.Context, pass Passphrase) error {
	if o.stick.Cleartext != nil {
		o.clear = o.stick.Cleartext.Path
		return nil
	}
	policy := pinentry.RetryPolicy{
		Tries:     pass.Tries,
		WrongText: pass.WrongText,
		IsWrong:   func(err error) bool { return errors.Is(err, udisks.ErrWrongPassphrase) },
	}
	return pinentry.AskWithRetries(ctx, pass.Asker, pass.Prompt, policy, func(p []byte) error {
		clear, reused, err := o.disks.UnlockOrReuse(ctx, o.stick.LUKS.Path, string(p))
		if clear != "" && clear != "/" {
			o.clear = clear
			o.unlocked = o.unlocked || !reused
		}
		if err == nil && pass.Keep != nil {
			pass.Keep(p)
		}
		return err
	})
}

// UnlockWithKey asks the root helper to unlock the stick with the key this Tails keeps for it
// and to mount it (unlock-with-key: as root, through udisks, which then refuses amnesia the
// mount and the lock of that device: the helper mounts it, on behalf of amnesia where udisks2
// can, and Release asks it to unmount and lock it), unless udisks says it is unlocked already.
// Its error is the helper's: it wraps wire.ErrHelperKeyMissing when no key is kept,
// wire.ErrHelperKeyRefused when the stick refuses it.
func (o *Opened) UnlockWithKey(ctx context.Context, helper wire.HelperRunner) error {
	if o.stick.Cleartext != nil {
		o.clear = o.stick.Cleartext.Path
		return nil
	}
	rep, err := helper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: wire.OpUnlockWithKey, Backup: o.stick.UUID}, nil)
	if err != nil {
		return err
	}
	if rep == nil || !dbus.ObjectPath(rep.Cleartext).IsValid() || rep.Cleartext == "/" {
		return fmt.Errorf("unlock %s with its key: %w: no valid cleartext device in the report", o.stick.UUID, wire.ErrHelperProtocol)
	}
	o.clear = dbus.ObjectPath(rep.Cleartext)
	if rep.AlreadyUnlocked {
		// Unlocked meanwhile by someone else: opened and released as any other.
		return nil
	}
	o.byHelper = helper
	o.unlocked = true
	if rep.MountPoint != "" {
		o.root, o.mounted, o.mountedAsRoot = rep.MountPoint, true, rep.MountedAsRoot
	}
	return nil
}

// MountedAsRoot tells that the helper mounted the stick as root (udisks2 older than 2.10):
// amnesia cannot read it, and the helper checked its marker.
func (o *Opened) MountedAsRoot() bool { return o.mountedAsRoot }

// Mount mounts the unlocked Persistent Storage (read-only if the options say so), or reuses
// its mount, and returns where it is.
func (o *Opened) Mount(ctx context.Context) (string, error) {
	if o.byHelper != nil && o.root != "" {
		return o.root, nil // mounted by the helper
	}
	mount := o.disks.MountOrReuse
	if o.opts.ReadOnly {
		mount = o.disks.MountReadOnlyOrReuse
	}
	dir, reused, err := mount(ctx, o.clear)
	if err != nil {
		return "", err
	}
	o.root = dir
	o.mounted = !reused || !o.opts.LeaveAsFound
	return dir, nil
}

// Release unmounts and locks the stick as the options say (it stays plugged in and powered).
// It runs once, even after ctx ended (within a minute); later calls return nil.
func (o *Opened) Release(ctx context.Context) error {
	if o.released {
		return nil
	}
	o.released = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if o.byHelper != nil {
		if _, err := o.byHelper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: wire.OpLockBackup, Backup: o.stick.UUID}, nil); err != nil {
			o.opts.Log.WithError(err).Warn("the helper could not unmount and lock the stick")
			return fmt.Errorf("unmount and lock %s: %w", o.stick.UUID, err)
		}
		return nil
	}
	if o.mounted {
		if err := o.disks.Unmount(ctx, o.clear); err != nil && !errors.Is(err, udisks.ErrNotMounted) {
			o.opts.Log.WithError(err).Warn("unmount the stick")
			return fmt.Errorf("unmount %s: %w", o.clear, err)
		}
	}
	if o.unlocked || (!o.opts.LeaveAsFound && o.clear != "") {
		if err := o.disks.Lock(ctx, o.stick.LUKS.Path); err != nil {
			o.opts.Log.WithError(err).Warn("lock the stick")
			return fmt.Errorf("lock %s: %w", o.stick.LUKS.Path, err)
		}
	}
	return nil
}

// Eject releases the stick and powers it off, so that it can be unplugged. Its error says it
// cannot be unplugged safely; a failed power off only gets a warning (a stick unmounted and
// locked is safe to unplug).
func (o *Opened) Eject(ctx context.Context) error {
	if err := o.Release(ctx); err != nil {
		return err
	}
	if o.stick.Drive == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := o.disks.PowerOff(ctx, o.stick.Drive.Path); err != nil {
		o.opts.Log.WithError(err).Warn("power off the stick")
	}
	return nil
}
