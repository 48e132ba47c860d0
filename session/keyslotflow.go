package session

// The person's choices about a paired backup's key slot: updates without the passphrase turned
// on (the passphrase is typed once) or off (the slot removed, the key shredded), and forgetting
// a backup (its slot and key, then its pairing).

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// KeySlotFlow changes the key slot of a paired backup, or forgets the backup.
type KeySlotFlow struct {
	Connect Connect
	Boot    udisks.BootPaths
	Store   func() (*pairing.Store, error)
	Helper  wire.HelperRunner
	Asker   pinentry.PassphraseAsker
	Log     *logrus.Entry
	// Loc is the session's language (nil: English).
	Loc *l10n.Locale
	UI  PairUI
	// Device names the stick (/dev/sdb, sdb); "" is the only paired backup plugged in. Forget
	// also takes the LUKS UUID of a paired backup that is not plugged in.
	Device string
	// Yes forgets without asking for confirmation.
	Yes bool
	// App: the Backup app runs the flow (through the agent), so its texts name no command
	// or terminal answer.
	App bool
	// Name names a paired backup that is not plugged in (nil: by its LUKS UUID).
	Name func(pairing.PairedBackup) string
}

// backupName names the paired backup b, not plugged in.
func (f *KeySlotFlow) backupName(b pairing.PairedBackup) string {
	if f.Name != nil {
		return f.Name(b)
	}
	return f.Loc.Tr("the backup Tails %s", b.UUID)
}

// pairedStick finds the paired backup plugged in that Device names (or the only one).
func (f *KeySlotFlow) pairedStick(ctx context.Context, st *pairing.State) (FlowDisks, Stick, error) {
	disks, snap, err := f.Connect(ctx)
	if err != nil {
		return nil, Stick{}, err
	}
	var paired []Stick
	for _, c := range Candidates(snap, f.Boot) {
		if st.IsPaired(c.UUID) {
			paired = append(paired, c)
		}
	}
	stick, err := PickStick(snap, f.Boot, paired, f.Device)
	var pe *PickError
	switch {
	case errors.As(err, &pe) && pe.Reason == PickNone:
		return nil, Stick{}, errors.New(f.Loc.Tr("no paired backup Tails is plugged in; plug in your backup Tails and try again"))
	case errors.As(err, &pe) && pe.Reason == PickSeveral:
		// TRANSLATORS: %[1]d is a number of sticks (always 2 or more), %[2]s a device (/dev/sdb).
		return nil, Stick{}, fmt.Errorf("%w: %s", ErrUsage, f.Loc.TrN("%[1]d paired backup Tails is plugged in; say which one, e.g. '%[2]s'",
			"%[1]d paired backup Tails are plugged in; say which one, e.g. '%[2]s'", pe.Count, pe.Count, Device(paired[0].Stick)))
	case errors.As(err, &pe) && pe.Reason == PickNoDevice:
		return nil, Stick{}, errors.New(f.Loc.Tr("there is no device %s; plug in your backup Tails and try again", pe.Device))
	case err != nil:
		return nil, Stick{}, errors.New(f.Loc.Tr("%s is not a paired backup Tails of this Tails", f.Device))
	}
	if !st.IsPaired(stick.UUID) {
		if f.App {
			return nil, Stick{}, errors.New(f.Loc.Tr("%s is not a paired backup Tails of this Tails; pair it first", DescribeIn(f.Loc, stick.Stick)))
		}
		return nil, Stick{}, errors.New(f.Loc.Tr("%s is not a paired backup Tails of this Tails; pair it first with 'tails-backup pair'", DescribeIn(f.Loc, stick.Stick)))
	}
	return disks, stick, nil
}

// load reads the pairing store, warning about a damaged one.
func (f *KeySlotFlow) load(ctx context.Context) (*pairing.Store, pairing.State, error) {
	store, err := f.Store()
	if err != nil {
		return nil, pairing.State{}, err
	}
	st, se, err := LoadStateIn(ctx, f.Loc, store)
	if err != nil {
		return nil, pairing.State{}, err
	}
	if se != nil {
		f.UI.Warn(StateErrorTextIn(f.Loc, se))
	}
	return store, st, nil
}

func (f *KeySlotFlow) record(ctx context.Context, store *pairing.Store, fn func(*pairing.State) error) error {
	_, err := UpdateState(ctx, f.Loc, store, func(se *pairing.StateError) { f.UI.Warn(StateErrorTextIn(f.Loc, se)) }, fn)
	return err
}

// On adds the key slot to the paired backup plugged in: its passphrase is asked once (or it
// is unlocked already, and the passphrase is asked for the slot alone).
func (f *KeySlotFlow) On(ctx context.Context) error {
	store, st, err := f.load(ctx)
	if err != nil {
		return err
	}
	disks, stick, err := f.pairedStick(ctx, &st)
	if err != nil {
		return err
	}
	name := DescribeIn(f.Loc, stick.Stick)
	o := OpenStick(disks, stick, f.Asker, Use{Kind: UsePassphraseFree, App: f.App}, f.Loc, f.Log)
	defer o.Release(ctx)
	var pass []byte
	defer func() { clear(pass) }()
	o.keep = func(p []byte) { clear(pass); pass = bytes.Clone(p) }
	if err := o.Unlock(ctx); err != nil {
		return err
	}
	if err := o.Mount(ctx); err != nil {
		return err
	}
	if pass != nil {
		err = AddKeySlot(ctx, f.Helper, stick.UUID, pass)
		clear(pass)
	} else {
		// Found unlocked: the passphrase authorises the slot alone, and the helper says
		// whether it is right.
		description, heading, ok := UsePassphraseFree.prompt(f.Loc, name)
		err = pinentry.AskWithRetries(ctx, f.Asker, pinentry.Prompt{Title: f.Loc.Tr("Tails Backup"), Description: description, Prompt: heading, OK: ok},
			pinentry.RetryPolicy{Tries: StickTries, WrongText: f.Loc.Tr("Wrong passphrase. Try again: it is the passphrase of that stick's Persistent Storage."),
				IsWrong: func(err error) bool { return errors.Is(err, wire.ErrHelperWrongPassphrase) }},
			func(p []byte) error { return AddKeySlot(ctx, f.Helper, stick.UUID, p) })
		switch {
		case errors.Is(err, pinentry.ErrTooManyTries):
			return errors.New(UsePassphraseFree.tooManyTries(f.Loc, name, f.App))
		case errors.Is(err, pinentry.ErrPinentryCancelled):
			return errors.New(UsePassphraseFree.notGiven(f.Loc))
		}
	}
	if err != nil {
		// TRANSLATORS: %[1]s names the stick, %[2]w is a sentence saying why.
		return fmt.Errorf(f.Loc.Tr("updates of %[1]s still ask for its passphrase: %[2]w"), name, CommandHelperError(ctx, f.Loc, err, f.Log))
	}
	releaseErr := o.Release(ctx)
	if err := f.record(ctx, store, func(s *pairing.State) error { s.SetKeySlot(stick.UUID, true); return nil }); err != nil {
		return err
	}
	f.UI.Say(KeySlotAddedTextIn(f.Loc))
	if releaseErr != nil {
		f.UI.Warn(NotLockedText(f.Loc, name, releaseErr))
	}
	return nil
}

// Off removes the key slot from the paired backup plugged in and shreds its key: its updates
// ask the passphrase again.
func (f *KeySlotFlow) Off(ctx context.Context) error {
	store, st, err := f.load(ctx)
	if err != nil {
		return err
	}
	_, stick, err := f.pairedStick(ctx, &st)
	if err != nil {
		return err
	}
	name := DescribeIn(f.Loc, stick.Stick)
	if err := f.removeSlot(ctx, stick.UUID); err != nil {
		// TRANSLATORS: %[1]s names the stick, %[2]w is a sentence saying why.
		return fmt.Errorf(f.Loc.Tr("the key slot of %[1]s was not removed: %[2]w"), name, CommandHelperError(ctx, f.Loc, err, f.Log))
	}
	// Turned off by the person: not offered again after an update.
	if err := f.record(ctx, store, func(s *pairing.State) error {
		s.SetKeySlot(stick.UUID, false)
		s.WantKeySlot(stick.UUID, false)
		if b := s.Backup(stick.UUID); b != nil {
			b.KeySlotOffered = true
		}
		return nil
	}); err != nil {
		return err
	}
	f.UI.Say(PassphraseOffTextIn(f.Loc, name))
	return nil
}

// removeSlot runs remove-key-slot; no key kept is nothing to remove.
func (f *KeySlotFlow) removeSlot(ctx context.Context, uuid string) error {
	_, err := f.Helper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: wire.OpRemoveKeySlot, Backup: uuid}, nil)
	if errors.Is(err, wire.ErrHelperKeyMissing) {
		f.Log.WithError(err).Info("no key kept for the backup: no key slot to remove")
		return nil
	}
	return err
}

// Forget forgets a paired backup: its key slot is removed when it is plugged in (otherwise its
// key is shredded alone: the slot stays on the stick, for a key that no longer exists), then
// its pairing.
func (f *KeySlotFlow) Forget(ctx context.Context) error {
	store, st, err := f.load(ctx)
	if err != nil {
		return err
	}
	uuid, name, plugged := "", "", false
	if b := st.Backup(f.Device); b != nil {
		// A LUKS UUID: plugged in or not.
		uuid, name = b.UUID, f.backupName(*b)
	} else if f.Device == "" && len(st.Backups) == 1 {
		uuid, name = st.Backups[0].UUID, f.backupName(st.Backups[0])
	} else if len(st.Backups) == 0 {
		return errors.New(f.Loc.Tr("no backup Tails is paired with this Tails, so there is nothing to forget"))
	}
	if uuid == "" {
		_, stick, err := f.pairedStick(ctx, &st)
		if err != nil {
			return err
		}
		uuid, name, plugged = stick.UUID, DescribeIn(f.Loc, stick.Stick), true
	} else if _, snap, err := f.Connect(ctx); err == nil {
		for _, c := range Candidates(snap, f.Boot) {
			if c.UUID == uuid {
				name, plugged = DescribeIn(f.Loc, c.Stick), true
			}
		}
	} else {
		f.Log.WithError(err).Warn("cannot list the sticks: forgetting the backup as if it were not plugged in")
	}
	if !f.Yes && !f.UI.Confirm(ctx, ForgetQuestionIn(f.Loc, name)) {
		if f.App {
			return errors.New(f.Loc.Tr("not confirmed, so nothing was changed"))
		}
		// TRANSLATORS: y is the answer the terminal's question takes (it stays y).
		return errors.New(f.Loc.Tr("not confirmed, so nothing was changed (answer y to forget it, or use --yes)"))
	}
	if plugged {
		err = f.removeSlot(ctx, uuid)
	}
	if !plugged || err != nil {
		if err != nil {
			f.UI.Warn(f.Loc.Tr("The key slot of %[1]s could not be removed (%[2]s); the key kept in this Tails is shredded instead, so the slot opens nothing.", name, CommandHelperError(ctx, f.Loc, err, f.Log).Error()))
		}
		_, err = f.Helper.Run(ctx, wire.Request{Version: wire.ProtocolVersion, Op: wire.OpForgetKey, Backup: uuid}, nil)
		if err != nil {
			// TRANSLATORS: %[1]s names the stick, %[2]w is a sentence saying why.
			return fmt.Errorf(f.Loc.Tr("%[1]s was not forgotten: %[2]w"), name, CommandHelperError(ctx, f.Loc, err, f.Log))
		}
	}
	if err := f.record(ctx, store, func(s *pairing.State) error { s.Unpair(uuid); return nil }); err != nil {
		return err
	}
	f.UI.Say(ForgottenTextIn(f.Loc, name))
	return nil
}

// ForgetQuestionIn asks whether to forget the paired backup named name: what goes (the
// pairing, the key and its slot), and what stays (the backup's data).
func ForgetQuestionIn(loc *l10n.Locale, name string) string {
	// TRANSLATORS: %s names the backup ("the backup Tails SanDisk Cruzer Blade, 16.0 GB").
	return loc.Tr("Forget %s? It will no longer be updated; the key that updates it without its passphrase, "+
		"and that key's slot on the stick, are removed. What the backup holds stays on it.", name)
}

// ForgottenTextIn says that the paired backup named name is forgotten.
func ForgottenTextIn(loc *l10n.Locale, name string) string {
	return loc.Tr("%s is forgotten: it is no longer updated, and no key for it is kept in this Tails.", name)
}

// PassphraseOffTextIn says that the updates of the backup named name ask its passphrase again.
func PassphraseOffTextIn(loc *l10n.Locale, name string) string {
	return loc.Tr("Updates of %s will ask for its passphrase: its key slot is removed and the key kept in this Tails is shredded.", name)
}
