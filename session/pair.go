package session

// Pairing a Tails stick plugged in as the backup of this Tails.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// Connect reaches udisks2 for a flow and lists the drives, or says why not in one sentence. The
// client must outlive the end of ctx (the stick is still unmounted and locked after Ctrl-C);
// the caller closes it after the flow.
type Connect func(ctx context.Context) (FlowDisks, *udisks.Snapshot, error)

// FlowDisks is what the flows a person starts (pair, restore, verify) need of udisks2:
// opening a stick, and watching the sticks plugged in; *udisks.Client has it.
type FlowDisks interface {
	Disks
	GetSnapshot(ctx context.Context) (*udisks.Snapshot, error)
	WaitFor(ctx context.Context, cond func(*udisks.Snapshot) (bool, error)) (*udisks.Snapshot, error)
}

// PairUI is what the person is shown and asked during a pairing: a terminal for the command
// line, a desktop application later.
type PairUI interface {
	// Sticks shows the Tails sticks plugged in besides the boot stick, and whether st pairs them.
	Sticks(cands []Stick, st *pairing.State)
	// Confirm asks a yes/no question; false is no.
	Confirm(ctx context.Context, question string) bool
	// Say tells the person something, one line.
	Say(s string)
	// Warn tells the person something that went wrong without stopping the flow.
	Warn(s string)
}

// Pair pairs a stick as the backup of this Tails: the root helper marks it (its passphrase is
// asked), then the pairing store records it.
type Pair struct {
	Connect Connect
	Boot    udisks.BootPaths
	// OwnRoot is this Tails' own Persistent Storage: a backup Tails has its marker there.
	OwnRoot string
	// Store opens the pairing store where it is now: its default place may change once the
	// stick is marked (the store's folder in the Persistent Storage exists only then).
	Store  func() (*pairing.Store, error)
	Helper wire.HelperRunner
	Asker  pinentry.PassphraseAsker
	Now    func() time.Time
	Log    *logrus.Entry
	// Loc is the session's language (nil: English).
	Loc *l10n.Locale
	// App: the person uses the Backup app, not a terminal: the texts say what to do there,
	// with no command or option to type.
	App bool
	UI  PairUI
	// Device names the stick (/dev/sdb, sdb); "" is the only one plugged in.
	Device string
	// Yes pairs without asking for confirmation.
	Yes bool
	// NoKeySlot pairs without a key slot: every update asks the passphrase.
	NoKeySlot bool
}

// notConfirmed: the person did not confirm, in the Backup app.
const notConfirmed = "not confirmed, so nothing was changed"

// PairedTextIn is said once a pairing is recorded.
func PairedTextIn(loc *l10n.Locale) string {
	return loc.Tr("Paired. Your backup Tails is updated each time you plug it in; unplug it and plug it in again now to make the first update.")
}

// Run pairs the stick, or says why not in one sentence.
func (p *Pair) Run(ctx context.Context) error {
	if ReadOwnMarker(p.OwnRoot).IsBackup() {
		// Its agent never updates backups: a pairing would never be used.
		if p.App {
			return errors.New(p.Loc.Tr("this Tails is itself a backup, so it does not update backups; if your main Tails is lost or broken, make it your main Tails first"))
		}
		return errors.New(p.Loc.Tr("this Tails is itself a backup, so it does not update backups; if your main Tails is lost or broken, run 'tails-backup promote' first"))
	}
	disks, snap, err := p.Connect(ctx)
	if err != nil {
		return err
	}

	// The store as it is now, to tell which sticks are already paired.
	store, err := p.Store()
	if err != nil {
		return err
	}
	before, se, err := LoadStateIn(ctx, p.Loc, store)
	if err != nil {
		return err
	}
	if se != nil {
		p.UI.Warn(stateErrorText(p.Loc, se, p.App))
	}

	candidates := Candidates(snap, p.Boot)
	p.UI.Sticks(candidates, &before)
	stick, err := pickToPair(p.Loc, snap, p.Boot, candidates, p.Device)
	if err != nil {
		return err
	}
	name := DescribeIn(p.Loc, stick.Stick)
	if before.IsPaired(stick.UUID) {
		p.UI.Say(p.Loc.Tr("%s is already paired as the backup of this Tails; plug it in to update it.", name))
		return nil
	}
	if !p.Yes && !p.UI.Confirm(ctx, p.Loc.Tr("Pair the Tails stick %s as the backup of this Tails? Its Persistent Storage will be overwritten by the next update.", name)) {
		if p.App {
			return errors.New(p.Loc.Tr(notConfirmed))
		}
		// TRANSLATORS: y is the answer the terminal's question takes (it stays y).
		return errors.New(p.Loc.Tr("not confirmed, so nothing was changed (answer y to pair, or use --yes)"))
	}

	o := OpenStick(disks, stick, p.Asker, Use{Kind: UsePair, App: p.App}, p.Loc, p.Log)
	defer o.Release(ctx) // on failure: leave the stick locked, as it was found
	// The passphrase typed is kept until the key slot is added, and wiped.
	var pass []byte
	defer func() { clear(pass) }()
	o.keep = func(p []byte) { clear(pass); pass = bytes.Clone(p) }
	if err := o.Unlock(ctx); err != nil {
		return err
	}
	if err := o.Mount(ctx); err != nil {
		return err
	}
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpMark, Backup: stick.UUID}
	if _, err := p.Helper.Run(ctx, req, nil); err != nil {
		// TRANSLATORS: %[1]s names the stick, %[2]w is a sentence saying why.
		return fmt.Errorf(p.Loc.Tr("%[1]s was not paired: %[2]w"), name, CommandHelperError(ctx, p.Loc, err, p.Log))
	}
	// Updates without the passphrase, on by default: a failure only warns (the updates ask
	// the passphrase, as before).
	keySlot := false
	switch {
	case p.NoKeySlot:
	case pass == nil:
		// Unlocked already when it was found: no passphrase was typed to authorise the slot.
		p.UI.Warn(p.Loc.Tr("Updates will ask for the passphrase of your backup Tails, because it was unlocked already and no passphrase was typed; to stop that, plug it in and run 'tails-backup passphrase-free on'."))
	default:
		err := AddKeySlot(ctx, p.Helper, stick.UUID, pass)
		clear(pass)
		if err != nil {
			p.UI.Warn(KeySlotNotAddedTextIn(ctx, p.Loc, err, p.Log))
		} else {
			keySlot = true
		}
	}

	// Unmounted and locked before the pairing is saved: a running agent that saw the stick
	// paired while it is still open here would start its first update at once and collide
	// with the lock (seen in the VM). The agent looks at the store when udisks tells it
	// something, so the first update comes at the next plug.
	releaseErr := o.Release(ctx)
	now := p.Now()
	err = p.save(ctx, store.Path(), before, se != nil, func(s *pairing.State) error {
		return s.Pair(pairing.PairedBackup{UUID: stick.UUID, Label: Label(stick.Stick), Size: Size(stick.Stick), Added: now, KeySlot: keySlot})
	})
	if err != nil {
		return fmt.Errorf(p.Loc.Tr("%[1]s was marked as the backup of this Tails, but %[2]w"), name, err)
	}
	if keySlot {
		p.UI.Say(KeySlotAddedTextIn(p.Loc))
	}
	if releaseErr != nil {
		p.UI.Say(p.Loc.Tr("Paired."))
		p.UI.Warn(NotLockedText(p.Loc, name, releaseErr))
		p.UI.Say(p.Loc.Tr("Your backup Tails is updated each time you plug it in; unplug it and plug it in again to make the first update."))
		return nil
	}
	p.UI.Say(PairedTextIn(p.Loc))
	return nil
}

func (p *Pair) save(ctx context.Context, readPath string, before pairing.State, beforeDamaged bool, change func(*pairing.State) error) error {
	store, err := p.Store()
	if err != nil {
		return err
	}
	return SavePairingIn(ctx, p.Loc, store, readPath, before, beforeDamaged, func(se *pairing.StateError) { p.UI.Warn(stateErrorText(p.Loc, se, p.App)) }, change)
}

// SavePairingIn records a pairing in store with change, once the helper's mark has run: only
// then does the store's folder exist in the Persistent Storage, which is where the store lives
// by default from then on. When the store moves there (store is not at readPath), what was set
// in the one read before (before, read from readPath; beforeDamaged if it was set aside) comes
// along. A damaged store is given to setAside.
func SavePairingIn(ctx context.Context, loc *l10n.Locale, store *pairing.Store, readPath string, before pairing.State, beforeDamaged bool, setAside func(*pairing.StateError), change func(*pairing.State) error) error {
	path := store.Path()
	_, err := UpdateState(ctx, loc, store, setAside, func(s *pairing.State) error {
		if path != readPath && !beforeDamaged && IsFreshState(*s) {
			// The store moves into the Persistent Storage: keep what was set before.
			*s = before
		}
		return change(s)
	})
	return err
}

// UnfitTextIn says why the Tails stick name cannot be paired, in one sentence.
func UnfitTextIn(loc *l10n.Locale, name string, u Unfit) string {
	switch u {
	case UnfitBoot:
		return loc.Tr("%s is the stick this Tails is running from, so it cannot be its own backup; plug in another Tails stick", name)
	case UnfitNotRemovable:
		return loc.Tr("%s is not a removable USB stick, so it is not used as a backup; plug in a Tails USB stick", name)
	}
	return loc.Tr("%s has no encrypted Persistent Storage; start Tails from it once and create its Persistent Storage, then pair it", name)
}

// pickToPair picks the stick named by dev (a device such as /dev/sdb, or sdb), or the only
// candidate when dev is "".
func pickToPair(loc *l10n.Locale, snap *udisks.Snapshot, boot udisks.BootPaths, cands []Stick, dev string) (Stick, error) {
	st, err := PickStick(snap, boot, cands, dev)
	var pe *PickError
	if !errors.As(err, &pe) {
		return st, err
	}
	switch pe.Reason {
	case PickNone:
		return st, errors.New(loc.Tr("no Tails stick to pair is plugged in (besides the one this Tails runs from); plug in the Tails stick to use as a backup and try again"))
	case PickSeveral:
		// TRANSLATORS: %[1]d is a number of sticks (always 2 or more), %[2]s a device (/dev/sdb).
		return st, fmt.Errorf("%w: %s", ErrUsage, loc.TrN("%[1]d Tails stick is plugged in; say which one to pair, e.g. 'tails-backup pair %[2]s'",
			"%[1]d Tails sticks are plugged in; say which one to pair, e.g. 'tails-backup pair %[2]s'", pe.Count, pe.Count, Device(cands[0].Stick)))
	case PickNoDevice:
		return st, errors.New(loc.Tr("there is no device %s; run 'tails-backup pair' without a device to list the Tails sticks plugged in", pe.Device))
	case PickNotTails:
		return st, errors.New(loc.Tr("%s is not a Tails stick (it has no Persistent Storage partition); plug in a Tails stick, or make one with 'tails-backup create'", pe.Device))
	}
	return st, errors.New(UnfitTextIn(loc, pe.Device, pe.Unfit))
}
