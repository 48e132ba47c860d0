package session

// Updates without the passphrase: a second LUKS2 key slot on the backup, for a random key that
// the root helper keeps in this Tails' Persistent Storage (docs/technical-details.md). Create
// and pair add it with the passphrase just typed; the update unlocks with it and falls back to
// the passphrase when it is missing or refused; the person turns it off and on again, and
// forgetting a backup removes it.

import (
	"bytes"
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/wire"
)

// AddKeySlot asks the root helper to add a key slot to the backup uuid (unlocked, mounted, and
// marked as the backup of this Tails), authorised by its passphrase pass. pass stays the
// caller's: the helper gets a copy, on the line after the request (never in it), wiped after.
func AddKeySlot(ctx context.Context, helper wire.HelperRunner, uuid string, pass []byte) error {
	secret := &wire.Secret{Passphrase: bytes.Clone(pass)}
	defer secret.Wipe()
	_, err := helper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: wire.OpAddKeySlot, Backup: uuid, Secret: secret}, nil)
	return err
}

// KeyFallsBack tells whether an error of the helper's unlock-with-key leaves the passphrase to
// open the backup: no key kept, a key the backup refuses, or a failure of the key's own
// unlock that the passphrase may not meet (cryptsetup missing, udisks failing on the key).
func KeyFallsBack(err error) bool {
	return errors.Is(err, wire.ErrHelperKeyMissing) || errors.Is(err, wire.ErrHelperKeyRefused) ||
		errors.Is(err, wire.ErrHelperNoCryptsetup) || errors.Is(err, wire.ErrHelperInternal) ||
		errors.Is(err, wire.ErrHelperProtocol)
}

// KeySlotAddedTextIn says, where a backup is created or paired, that its updates need no
// passphrase.
func KeySlotAddedTextIn(loc *l10n.Locale) string {
	return loc.Tr("Updates will not ask for the passphrase: a key kept in this Tails' Persistent Storage opens the backup.")
}

// KeySlotNotAddedTextIn warns that the key slot of a backup just created or paired could not
// be added: its updates ask the passphrase, and the person may try again later.
func KeySlotNotAddedTextIn(ctx context.Context, loc *l10n.Locale, err error, log *logrus.Entry) string {
	// TRANSLATORS: %s says why, in a sentence without its full stop.
	return loc.Tr("Updates will ask for the passphrase of your backup Tails, because the key that opens it without the passphrase could not be added (%s); to try again, plug it in and run 'tails-backup passphrase-free on'.",
		CommandHelperError(ctx, loc, err, log).Error())
}

// KeyLostPassphrase is the update's passphrase prompt when the key kept for the backup no
// longer opens it: the prompt says why, this once.
func KeyLostPassphrase(loc *l10n.Locale, pass Passphrase, st Stick) Passphrase {
	pass.Prompt.Description = loc.Tr("Your backup Tails needs its passphrase this time: the key kept in this Tails no longer opens it. Enter the passphrase of your backup Tails (%s) to update it.", NameIn(loc, st.Stick))
	return pass
}

// keyLost tells whether the person is to be told that the key kept for the backup uuid no
// longer opens it: the pairing store says it had a key slot. It records that they were told
// (the backup has no working key slot any more), so that it is said once.
func keyLost(ctx context.Context, store *pairing.Store, uuid string, log *logrus.Entry) bool {
	if store == nil {
		return false
	}
	told := false
	_, err := store.Update(ctx, func(s *pairing.State) error {
		if b := s.Backup(uuid); b != nil && b.KeySlot {
			told = true
			b.KeySlot = false
		}
		return nil
	})
	if err != nil {
		log.WithError(err).Warn("cannot record that the backup's key no longer opens it")
	}
	return told
}
