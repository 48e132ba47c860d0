//go:build linux

package helper

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/dmcrypt"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// The key slot operations: a second LUKS2 key slot on a paired backup's TailsData, for a
// random key that only this Tails keeps (keys.go), so that updates need no passphrase.

// keyslotPBKDF are the cryptsetup options of the key slot for the kept key. A slow KDF
// (Tails' argon2id) protects a passphrase a person can remember from guessing; a 512-bit
// random key cannot be guessed, so PBKDF2 at its minimum makes unlocking instant and costs
// nothing in strength.
var keyslotPBKDF = []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}

// luksDevice is the TailsData partition of a validated stick: its device node, checked to be
// that block device now.
func luksDevice(st udisks.Stick, name stick) (string, *Failure) {
	dev := ""
	if st.LUKS != nil && st.LUKS.Block != nil {
		dev = strings.TrimRight(st.LUKS.Block.Device, "\x00")
	}
	if err := checkBlockDevice(dev, deviceNumber(st.LUKS)); err != nil {
		return "", failf(wire.CodeDeviceGone, wire.ReasonLUKSMoved, name.on(), err, "The Persistent Storage partition of %s is not where udisks says; plug the stick in again and try again.", name)
	}
	return dev, nil
}

// cryptsetupFailure explains a cryptsetup failure that no operation expects.
func (o *operation) cryptsetupFailure(err error, name stick, what string) *Failure {
	var ce *cryptsetupError
	switch {
	case errors.Is(err, errNoCryptsetup):
		return failf(wire.CodeNoCryptsetup, wire.ReasonNoCryptsetup, name.on(), err, "The cryptsetup program is not installed, so the key of %s cannot be %s; install cryptsetup and try again.", name, what)
	case o.ctx.Err() != nil:
		return cancelled(o.ctx)
	case errors.As(err, &ce) && ce.Code == cryptsetupWrongDevice:
		return failf(wire.CodeDeviceGone, wire.ReasonLUKSGone, name.on(), err, "The Persistent Storage partition of %s went away; plug the stick in again and try again.", name)
	default:
		return failf(wire.CodeInternal, wire.ReasonKeyOpFailed, name.on(), err, "The key of %s cannot be %s (%s); try again, and report the bug if it happens again.", name, what, shorten(err.Error()))
	}
}

// addKeySlot adds a key slot for a new random key to the paired backup dst, authorised by the
// passphrase of the Secret line, and keeps the key in this Tails' Persistent Storage.
func (o *operation) addKeySlot(snap *udisks.Snapshot, src, dst *root) (*wire.Report, *Failure) {
	if m, present, err := readMarker(dst.fd); !present || err != nil || m.Source != src.uuid {
		return nil, markerFailure(dst, m, present, err)
	}
	st, name, f := validateStick(o.sys, snap, src, dst.uuid)
	if f != nil {
		return nil, f
	}
	dev, f := luksDevice(st, name)
	if f != nil {
		return nil, f
	}
	dirfd, err := openKeysDir(src.fd, true)
	if err != nil {
		return nil, failf(wire.CodeInternal, wire.ReasonKeysDirFailed, wire.Args{}, err, "The folder of the backup keys in this Tails' Persistent Storage cannot be made (%s); restart Tails and try again.", shorten(err.Error()))
	}
	defer unix.Close(dirfd)

	// A key kept already that still opens its slot: nothing to do. One the backup refuses
	// (the stick was made again): replaced.
	if old, err := readKeyFile(dirfd, dst.uuid); err == nil {
		ok, err := o.keyOpensSlot(o.ctx, dev, old.KeySlot, old.Key)
		clear(old.Key)
		if err != nil {
			return nil, o.cryptsetupFailure(err, name, "checked")
		}
		if ok {
			o.log.WithField("key_slot", old.KeySlot).Info("the backup's key slot is there already")
			return &wire.Report{KeySlots: []int{old.KeySlot}}, nil
		}
		o.log.Warn("the kept key no longer opens the backup: replacing it")
	} else if !errors.Is(err, errKeyMissing) {
		o.log.WithError(err).Warn("unusable key file: replacing it")
	}

	before, err := o.luksDump(o.ctx, dev)
	if err != nil {
		return nil, o.cryptsetupFailure(err, name, "added")
	}
	if len(before.slots()) >= luksMaxKeyslots {
		return nil, failf(wire.CodeNoFreeKeySlot, wire.ReasonNoFreeKeySlot, name.on(), nil, "Every key slot of the Persistent Storage on %s is taken, so it cannot be unlocked without its passphrase; remove a passphrase you no longer use from it, or keep typing the passphrase.", name)
	}
	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	key := make([]byte, backupKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return nil, failf(wire.CodeInternal, wire.ReasonNoRandom, wire.Args{}, err, "No random key can be made (%s); restart Tails and try again.", shorten(err.Error()))
	}
	args := append([]string{"luksAddKey", "--batch-mode"}, keyslotPBKDF...)
	args = append(args, "--key-file", fdPath(0), dev, fdPath(1))
	_, err = o.cryptsetup(o.ctx, [][]byte{o.secret.Passphrase, key}, args...)
	var ce *cryptsetupError
	switch {
	case errors.As(err, &ce) && ce.Code == cryptsetupNoPermission:
		return nil, failf(wire.CodeWrongPassphrase, wire.ReasonWrongPassphrase, name.on(), err, "The passphrase does not unlock the Persistent Storage on %s; type the passphrase of the backup again.", name)
	case errors.As(err, &ce) && ce.Code == cryptsetupWrongParams && strings.Contains(strings.ToLower(ce.Output), "full"):
		return nil, failf(wire.CodeNoFreeKeySlot, wire.ReasonNoFreeKeySlot, name.on(), err, "Every key slot of the Persistent Storage on %s is taken, so it cannot be unlocked without its passphrase; remove a passphrase you no longer use from it, or keep typing the passphrase.", name)
	case err != nil:
		return nil, o.cryptsetupFailure(err, name, "added")
	}

	// The slot it took: the one that was not there before, and that the key opens.
	slot, f := o.newSlot(dev, name, before, key)
	if f != nil {
		return nil, f
	}
	undo := func() {
		// Authorised by the key itself; never the last slot (no --batch-mode: cryptsetup asks
		// before removing the last one, and standard input is /dev/null).
		if _, err := o.cryptsetup(context.WithoutCancel(o.ctx), [][]byte{key}, "luksRemoveKey", "--key-file", fdPath(0), dev); err != nil {
			o.log.WithError(err).Error("cannot remove the key slot just added")
		}
	}
	token, err := o.importToken(dev, slot, src.uuid)
	if err != nil {
		undo()
		return nil, o.cryptsetupFailure(err, name, "added")
	}
	k := keyFile{Format: keyFileFormat, Backup: dst.uuid, KeySlot: slot, Token: token, Created: o.now(), Key: key}
	if err := writeKeyFile(dirfd, k); err != nil {
		undo()
		o.removeToken(context.WithoutCancel(o.ctx), dev, token)
		return nil, failf(wire.CodeInternal, wire.ReasonKeyNotSaved, name.on(), err, "The key of %s cannot be saved in this Tails' Persistent Storage (%s); free some space in it and try again.", name, shorten(err.Error()))
	}
	o.log.WithField("key_slot", slot).WithField("token", token).Info("key slot added and key kept")
	return &wire.Report{KeySlots: []int{slot}}, nil
}

// newSlot finds the key slot that luksAddKey added: in the header now, not before, and opened
// by key.
func (o *operation) newSlot(dev string, name stick, before luksHeader, key []byte) (int, *Failure) {
	after, err := o.luksDump(o.ctx, dev)
	if err != nil {
		return -1, o.cryptsetupFailure(err, name, "added")
	}
	for _, s := range after.slots() {
		if slices.Contains(before.slots(), s) {
			continue
		}
		ok, err := o.keyOpensSlot(o.ctx, dev, s, key)
		if err != nil {
			return -1, o.cryptsetupFailure(err, name, "checked")
		}
		if ok {
			return s, nil
		}
	}
	return -1, failf(wire.CodeInternal, wire.ReasonKeySlotNotFound, name.on(), nil, "The new key slot of %s cannot be found after adding it; try again, and report the bug if it happens again.", name)
}

// importToken records in the LUKS2 header of dev that slot holds the key kept by the Tails
// whose Persistent Storage is source, and returns the token's number.
func (o *operation) importToken(dev string, slot int, source string) (int, error) {
	tok, err := json.Marshal(luksToken{Type: keyslotTokenType, Keyslots: []string{strconv.Itoa(slot)}, Source: source})
	if err != nil {
		return -1, err
	}
	if _, err := o.cryptsetup(o.ctx, [][]byte{tok}, "token", "import", "--json-file", fdPath(0), dev); err != nil {
		return -1, err
	}
	h, err := o.luksDump(o.ctx, dev)
	if err != nil {
		return -1, err
	}
	for id, t := range h.Tokens {
		if t.Type == keyslotTokenType && slices.Equal(t.Keyslots, []string{strconv.Itoa(slot)}) {
			return strconv.Atoi(id)
		}
	}
	return -1, errors.New("the imported token is not in the header")
}

// removeToken removes the token id from dev's header; a failure is only logged (a token
// whose slot is gone is harmless: its slot is not active).
func (o *operation) removeToken(ctx context.Context, dev string, id int) {
	if _, err := o.cryptsetup(ctx, nil, "token", "remove", "--token-id", strconv.Itoa(id), dev); err != nil {
		o.log.WithError(err).WithField("token", id).Warn("cannot remove the key slot's token")
	}
}

// ourTokens returns the tokens of h that the helper wrote, by number.
func ourTokens(h luksHeader) map[int]luksToken {
	out := map[int]luksToken{}
	for id, t := range h.Tokens {
		if n, err := strconv.Atoi(id); err == nil && t.Type == keyslotTokenType {
			out[n] = t
		}
	}
	return out
}

// keptKey reads the key kept for the backup of the request, as a Failure when it cannot.
func (o *operation) keptKey(src *root, name stick) (keyFile, *Failure) {
	dirfd, err := openKeysDir(src.fd, false)
	if err == nil {
		defer unix.Close(dirfd)
		var k keyFile
		if k, err = readKeyFile(dirfd, o.req.Backup); err == nil {
			return k, nil
		}
	}
	if errors.Is(err, errKeyMissing) {
		return keyFile{}, failf(wire.CodeKeyMissing, wire.ReasonKeyMissing, name.on(), err, "This Tails keeps no key for %s, so it cannot unlock it without its passphrase; type the passphrase.", name)
	}
	return keyFile{}, failf(wire.CodeKeyMissing, wire.ReasonKeyUnusable, name.on(), err, "The key this Tails keeps for %s cannot be used (%s); type the passphrase.", name, shorten(err.Error()))
}

// unlockWithKey unlocks the locked backup with the kept key, through udisks.
func (o *operation) unlockWithKey(snap *udisks.Snapshot, src *root) (*wire.Report, *Failure) {
	st, name, f := validateStick(o.sys, snap, src, o.req.Backup)
	if f != nil {
		return nil, f
	}
	if st.Cleartext != nil {
		o.log.Info("already unlocked")
		return &wire.Report{Cleartext: string(st.Cleartext.Path), AlreadyUnlocked: true}, nil
	}
	k, f := o.keptKey(src, name)
	if f != nil {
		return nil, f
	}
	defer clear(k.Key)
	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	ctx, cancel := context.WithTimeout(o.ctx, udisksTimeout)
	clearPath, err := o.sys.UDisks.UnlockWithKey(ctx, st.LUKS.Path, k.Key)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, udisks.ErrWrongPassphrase):
		return nil, failf(wire.CodeKeyRefused, wire.ReasonKeyRefused, name.on(), err, "%s no longer accepts the key this Tails keeps for it (its key slot was removed, or the stick was made again); type the passphrase.", capitalize(name.String()))
	case errors.Is(err, udisks.ErrAlreadyUnlocked):
		return o.alreadyUnlocked(st.LUKS.Path, name, err)
	case errors.Is(err, udisks.ErrDeviceGone):
		return nil, failf(wire.CodeDeviceGone, wire.ReasonUnpluggedUnlocking, name.on(), err, "%s was unplugged while it was being unlocked; plug it in again.", capitalize(name.String()))
	case o.ctx.Err() != nil:
		return nil, cancelled(o.ctx)
	default:
		return nil, failf(wire.CodeInternal, wire.ReasonUnlockFailed, name.on(), err, "udisks could not unlock %s with the key this Tails keeps for it (%s); type the passphrase.", name, shorten(err.Error()))
	}
	o.log.WithField("cleartext", clearPath).Info("unlocked with the kept key")
	rep := &wire.Report{Cleartext: string(clearPath)}
	if f := o.mountUnlocked(snap, src, st, name, clearPath, rep); f != nil {
		// Nothing stays unlocked that the session could neither use nor lock.
		o.release(st.LUKS.Path, clearPath, rep.MountPoint != "")
		return nil, f
	}
	return rep, nil
}

// mountUnlocked mounts the cleartext file system that unlock-with-key made, for the session:
// udisks2 records who unlocked a device and refuses the mount (and the lock) of a device
// unlocked by root to amnesia (NotAuthorizedCanObtain in Tails 7, seen in the VM). udisks2
// ≥ 2.10 mounts it on behalf of amnesia (as-user: at /media/amnesia/LABEL, recorded as
// amnesia's, so the rest of the update, Tails 7's ACL unit bound to that mount included, is as
// for any plug); older ones (Tails 6's 2.9.4) ignore as-user, so it is mounted as root, where
// amnesia cannot read it (/media/root). Either way its marker must name this Tails, checked
// here: with a mount as root the session cannot read it.
func (o *operation) mountUnlocked(snap *udisks.Snapshot, src *root, st udisks.Stick, name stick, clearPath dbus.ObjectPath, rep *wire.Report) *Failure {
	asUser := snap.CanMountAsUser()
	ctx, cancel := context.WithTimeout(o.ctx, udisksTimeout)
	var dir string
	var err error
	if asUser {
		dir, err = o.sys.UDisks.MountAs(ctx, clearPath, tails.AmnesiaUser)
	} else {
		dir, err = o.sys.UDisks.Mount(ctx, clearPath)
	}
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, udisks.ErrDeviceGone):
		return failf(wire.CodeDeviceGone, wire.ReasonUnpluggedUnlocking, name.on(), err, "%s was unplugged while it was being opened; plug it in again.", capitalize(name.String()))
	case o.ctx.Err() != nil:
		return cancelled(o.ctx)
	default:
		return failf(wire.CodeInternal, wire.ReasonKeyMountFailed, name.on(), err, "udisks could not mount the Persistent Storage of %s after unlocking it with the key this Tails keeps for it (%s); type the passphrase.", name, shorten(err.Error()))
	}
	rep.MountPoint, rep.MountedAsRoot = dir, !asUser
	o.log.WithField("mount", dir).WithField("as_root", !asUser).WithField("udisks", snap.DaemonVersion()).Info("mounted for the session")

	// The marker, through the mount just made: udisks' view of it (a new snapshot) and the
	// mount table, as for any destination.
	ctx, cancel = context.WithTimeout(o.ctx, udisksTimeout)
	now, err := o.sys.UDisks.GetSnapshot(ctx)
	cancel()
	if err != nil {
		return failf(wire.CodeInternal, wire.ReasonUDisksSilent, wire.Args{}, err, "The drives cannot be listed because udisks does not answer; restart the computer and try again.")
	}
	mounts, err := o.sys.mounts()
	if err != nil {
		return failf(wire.CodeInternal, wire.ReasonNoMountTable, wire.Args{}, err, "The mount table cannot be read; restart the computer and try again.")
	}
	dst, f := validateDestination(o.sys, now, mounts, src, o.req.Backup)
	if f != nil {
		return f
	}
	defer dst.close()
	if m, present, err := readMarker(dst.fd); !present || err != nil || m.Source != src.uuid {
		return markerFailure(dst, m, present, err)
	}
	return nil
}

// release unmounts (if mounted) and locks, as root, what unlock-with-key opened; failures are
// only logged (the caller reports its own).
func (o *operation) release(luks, clearPath dbus.ObjectPath, mounted bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(o.ctx), udisksTimeout)
	defer cancel()
	if mounted {
		if err := o.sys.UDisks.Unmount(ctx, clearPath); err != nil && !errors.Is(err, udisks.ErrNotMounted) {
			o.log.WithError(err).Error("cannot unmount the backup again")
			return
		}
	}
	if err := o.sys.UDisks.Lock(ctx, luks); err != nil {
		o.log.WithError(err).Error("cannot lock the backup again")
	}
}

// lockBackup unmounts and locks, as root, the paired backup that unlock-with-key opened: the
// session may not (udisks2 refuses amnesia the lock of a device that root unlocked, and on
// udisks2 older than 2.10 the unmount of what root mounted). A mounted backup must be this
// Tails' (its marker) and not in use by another operation of the helper.
func (o *operation) lockBackup(snap *udisks.Snapshot, src *root) (*wire.Report, *Failure) {
	st, name, f := validateStick(o.sys, snap, src, o.req.Backup)
	if f != nil {
		return nil, f
	}
	removed := o.removeStale()
	if st.Cleartext == nil || removed[st.Cleartext.Device()] {
		o.log.Info("locked already")
		return &wire.Report{}, nil
	}
	if st.Cleartext.Filesystem != nil && len(st.Cleartext.Filesystem.MountPoints) > 0 {
		mounts, err := o.sys.mounts()
		if err != nil {
			return nil, failf(wire.CodeInternal, wire.ReasonNoMountTable, wire.Args{}, err, "The mount table cannot be read; restart the computer and try again.")
		}
		dst, f := validateDestination(o.sys, snap, mounts, src, o.req.Backup)
		if f != nil {
			return nil, f
		}
		m, present, err := readMarker(dst.fd)
		if !present || err != nil || m.Source != src.uuid {
			dst.close()
			return nil, markerFailure(dst, m, present, err)
		}
		// The lock of the operations on a backup (run): none may be running. It is let go
		// before the unmount, which the open directory would keep busy.
		err = unix.Flock(dst.fd, unix.LOCK_EX|unix.LOCK_NB)
		dst.close()
		if err != nil {
			return nil, failf(wire.CodeRefused, wire.ReasonUpdateRunning, name.on(), err, "Another update of %s is running; wait for it to finish.", name)
		}
		ctx, cancel := context.WithTimeout(o.ctx, udisksTimeout)
		err = o.sys.UDisks.Unmount(ctx, st.Cleartext.Path)
		cancel()
		if f := o.udisksFailure(err, name, "unmount", "unmounted"); f != nil {
			return nil, f
		}
	}
	ctx, cancel := context.WithTimeout(o.ctx, udisksTimeout)
	err := o.sys.UDisks.Lock(ctx, st.LUKS.Path)
	cancel()
	if f := o.udisksFailure(err, name, "lock", "locked"); f != nil {
		return nil, f
	}
	o.log.Info("backup unmounted and locked")
	return &wire.Report{}, nil
}

// udisksFailure explains a failed unmount or lock of lock-backup (nil for none, or for an
// unmount of what is not mounted): verb is "unmount" or "lock", what its participle.
func (o *operation) udisksFailure(err error, name stick, verb, what string) *Failure {
	switch {
	case err == nil || errors.Is(err, udisks.ErrNotMounted):
		return nil
	case errors.Is(err, udisks.ErrDeviceGone):
		return failf(wire.CodeDeviceGone, wire.ReasonReleaseGone, name.on(), err, "%s was unplugged before it was %s; nothing is lost if no update was running.", capitalize(name.String()), what)
	case errors.Is(err, udisks.ErrBusy):
		return failf(wire.CodeRefused, wire.ReasonReleaseBusy, name.on(), err, "The Persistent Storage of %s is in use, so it cannot be %s; close what uses it and eject it from the Files application.", name, what)
	case o.ctx.Err() != nil:
		return cancelled(o.ctx)
	default:
		return failf(wire.CodeInternal, wire.ReasonReleaseFailed, name.on(), err, "udisks could not %s the Persistent Storage of %s (%s); eject it from the Files application.", verb, name, shorten(err.Error()))
	}
}

// alreadyUnlocked reports the cleartext block of a backup unlocked meanwhile.
func (o *operation) alreadyUnlocked(luks dbus.ObjectPath, name stick, cause error) (*wire.Report, *Failure) {
	ctx, cancel := context.WithTimeout(o.ctx, udisksTimeout)
	snap, err := o.sys.UDisks.GetSnapshot(ctx)
	cancel()
	if err == nil {
		if ct := snap.Cleartext(luks); ct != nil {
			return &wire.Report{Cleartext: string(ct.Path), AlreadyUnlocked: true}, nil
		}
	}
	return nil, failf(wire.CodeInternal, wire.ReasonUnlockedNoDevice, name.on(), errors.Join(cause, err), "udisks says %s is unlocked already but shows no unlocked device; unplug it, plug it in again and try again.", name)
}

// removeKeySlot removes from the plugged-in backup the key slot that the kept key opens,
// authorised by that key, then shreds the key. A key the backup no longer accepts is
// shredded too: its slot is gone already.
func (o *operation) removeKeySlot(snap *udisks.Snapshot, src *root) (*wire.Report, *Failure) {
	st, name, f := validateStick(o.sys, snap, src, o.req.Backup)
	if f != nil {
		return nil, f
	}
	k, f := o.keptKey(src, name)
	if f != nil {
		return nil, f
	}
	defer clear(k.Key)
	dev, f := luksDevice(st, name)
	if f != nil {
		return nil, f
	}
	h, err := o.luksDump(o.ctx, dev)
	if err != nil {
		return nil, o.cryptsetupFailure(err, name, "removed")
	}
	ok, err := o.keyOpensSlot(o.ctx, dev, k.KeySlot, k.Key)
	if err != nil {
		return nil, o.cryptsetupFailure(err, name, "removed")
	}
	var removed []int
	if ok {
		if len(h.slots()) <= 1 {
			return nil, failf(wire.CodeLastKeySlot, wire.ReasonLastKeySlot, name.on(), nil, "The key slot of this Tails is the only one left on %s, so removing it would lock its data away for good; add a passphrase to it first.", name)
		}
		if o.ctx.Err() != nil {
			return nil, cancelled(o.ctx)
		}
		// luksRemoveKey removes the slot that the key opens (luksKillSlot insists on being
		// authorised by another slot's passphrase); without --batch-mode it asks, and so
		// fails on /dev/null, before removing a last slot.
		if _, err := o.cryptsetup(o.ctx, [][]byte{k.Key}, "luksRemoveKey", "--key-file", fdPath(0), dev); err != nil {
			return nil, o.cryptsetupFailure(err, name, "removed")
		}
		removed = []int{k.KeySlot}
	} else {
		o.log.Warn("the backup no longer accepts the kept key: only shredding it")
	}
	for id, t := range ourTokens(h) {
		if id == k.Token || slices.Contains(t.Keyslots, strconv.Itoa(k.KeySlot)) {
			o.removeToken(o.ctx, dev, id)
		}
	}
	rep, f := o.forgetKey(src)
	if rep != nil {
		rep.KeySlots = removed
	}
	return rep, f
}

// forgetKey shreds the key kept for the backup of the request, if any.
func (o *operation) forgetKey(src *root) (*wire.Report, *Failure) {
	dirfd, err := openKeysDir(src.fd, false)
	if errors.Is(err, errKeyMissing) {
		return &wire.Report{}, nil
	}
	if err != nil {
		return nil, failf(wire.CodeInternal, wire.ReasonKeysDirFailed, wire.Args{}, err, "The folder of the backup keys in this Tails' Persistent Storage cannot be opened (%s); restart Tails and try again.", shorten(err.Error()))
	}
	defer unix.Close(dirfd)
	shredded, err := shredKeyFile(dirfd, o.req.Backup)
	if err != nil {
		return nil, failf(wire.CodeInternal, wire.ReasonKeyNotShredded, wire.Args{}, err, "The key this Tails keeps for the backup %s cannot be shredded (%s); restart Tails and try again.", o.req.Backup, shorten(err.Error()))
	}
	o.log.WithField("shredded", shredded).Info("kept key forgotten")
	return &wire.Report{KeyShredded: shredded}, nil
}

// removeOwnKeySlots removes from this Tails' own TailsData the key slots that the helper's
// tokens name (those whose key a main Tails kept when this Tails was its backup) and the
// tokens. Root needs no passphrase for that; the last slot is never removed.
func (o *operation) removeOwnKeySlots(snap *udisks.Snapshot, src *root) ([]int, *Failure) {
	name := stick{english: "this Tails' Persistent Storage"}
	luks := snap.Object(src.cleartext.Block.CryptoBackingDevice)
	dev, f := luksDevice(udisks.Stick{LUKS: luks}, name)
	if f != nil {
		return nil, f
	}
	h, err := o.luksDump(o.ctx, dev)
	if err != nil {
		return nil, o.cryptsetupFailure(err, name, "removed")
	}
	tokens := ourTokens(h)
	if len(tokens) == 0 {
		return nil, nil
	}
	active := h.slots()
	var removed []int
	for id, t := range tokens {
		for _, s := range t.Keyslots {
			n, err := strconv.Atoi(s)
			if err != nil || !slices.Contains(active, n) || slices.Contains(removed, n) {
				continue
			}
			if len(active)-len(removed) <= 1 {
				return removed, failf(wire.CodeLastKeySlot, wire.ReasonOwnLastKeySlot, wire.Args{}, nil, "The key slot that the lost main Tails could open is the only one left on this Tails, so removing it would lock its data away for good; add a passphrase to this Tails' Persistent Storage first.")
			}
			// --batch-mode with no key file and standard input /dev/null: root removes the slot
			// without a passphrase (the user may not have the old main stick's key).
			if _, err := o.cryptsetup(o.ctx, nil, "luksKillSlot", "--batch-mode", dev, s); err != nil {
				return removed, o.cryptsetupFailure(err, name, "removed")
			}
			removed = append(removed, n)
		}
		o.removeToken(o.ctx, dev, id)
	}
	o.log.WithField("key_slots", removed).Info("removed the key slots of the former main Tails")
	return removed, nil
}

// staleTimeout bounds each command that removes what a pull left (umount, cryptsetup close).
const staleTimeout = 30 * time.Second

// removeStale removes what an earlier plug of the backup left unlocked when the stick was
// pulled out: its device-mapper crypt mappings whose backing device is gone. udisks2 removes
// them when the stick goes, but fails ("Device or resource busy") while a process, the update
// that was writing to it, still holds the file system, and does not try again; the mapping,
// named as udisks names the next unlock of that stick (luks-UUID), then makes that unlock fail.
// Each mount of such a mapping is detached first (umount --lazy: the device is gone, nothing
// can be written to it any more). It returns the devices removed; a failure is logged, not
// fatal: the unlock that follows fails and says so.
func (o *operation) removeStale() map[string]bool {
	removed := map[string]bool{}
	maps, err := dmcrypt.Of(o.sys.Sysfs, o.req.Backup)
	if err != nil {
		o.log.WithError(err).Warn("cannot list the device-mapper mappings of the backup")
		return removed
	}
	for _, m := range maps {
		if !m.Stale {
			continue
		}
		log := o.log.WithFields(logrus.Fields{"mapping": m.Name, "device": m.Device})
		log.Warn("the stick of this mapping is gone: removing what its pull left")
		if err := o.removeMapping(m); err != nil {
			log.WithError(err).Warn("cannot remove the mapping left by a pull")
			continue
		}
		log.Info("mapping left by a pull removed")
		removed[m.Device] = true
	}
	return removed
}

// removeMapping detaches every mount of the crypt mapping m, then removes it (cryptsetup close).
func (o *operation) removeMapping(m dmcrypt.Mapping) error {
	mounts, err := o.sys.mounts()
	if err != nil {
		return fmt.Errorf("remove %s: read the mount table: %w", m.Name, err)
	}
	env := []string{"LC_ALL=C", "PATH=" + o.sys.ProgramPath}
	// The deepest mount first: one inside another is detached before it.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].MountPoint) > len(mounts[j].MountPoint) })
	for _, mt := range mounts {
		if mt.Major != m.Major || mt.Minor != m.Minor {
			continue
		}
		umount, ok := o.sys.findProgram("umount")
		if !ok {
			return fmt.Errorf("remove %s: unmount %s: umount not found", m.Name, mt.MountPoint)
		}
		ctx, cancel := context.WithTimeout(o.ctx, staleTimeout)
		out, err := o.sys.RunCommand(ctx, []string{umount, "--lazy", mt.MountPoint}, env)
		cancel()
		if err != nil {
			return fmt.Errorf("remove %s: unmount %s: %w: %s", m.Name, mt.MountPoint, err, shorten(string(out)))
		}
		o.log.WithFields(logrus.Fields{"mapping": m.Name, "mount": mt.MountPoint}).Info("detached a mount of a mapping left by a pull")
	}
	cs, ok := o.sys.findProgram("cryptsetup")
	if !ok {
		return fmt.Errorf("remove %s: %w", m.Name, errNoCryptsetup)
	}
	ctx, cancel := context.WithTimeout(o.ctx, staleTimeout)
	out, err := o.sys.RunCommand(ctx, []string{cs, "close", m.Name}, env)
	cancel()
	if err != nil {
		return fmt.Errorf("remove %s: cryptsetup close: %w: %s", m.Name, err, shorten(string(out)))
	}
	return nil
}
