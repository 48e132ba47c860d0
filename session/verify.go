package session

// Verifying a paired backup stick plugged in: the root helper compares it with this Tails'
// Persistent Storage and checks it as Tails does at boot, changing nothing.

import (
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

// VerifyUI is what the person is shown during a verify.
type VerifyUI interface {
	Say(s string)
	Warn(s string)
	// Event is a finding of the helper (wire.PhaseChange, wire.PhaseProblem) or its progress.
	Event(ev wire.Event)
}

// Verify compares a backup stick with this Tails' Persistent Storage through the root helper.
type Verify struct {
	Connect Connect
	Boot    udisks.BootPaths
	Store   func() (*pairing.Store, error)
	Helper  wire.HelperRunner
	Asker   pinentry.PassphraseAsker
	Log     *logrus.Entry
	// Loc is the session's language (nil: English).
	Loc *l10n.Locale
	// App: the person uses the Backup app, not a terminal: the texts say what to do there,
	// with no command or option to type.
	App bool
	UI  VerifyUI
	// Device names the stick (/dev/sdb, sdb); "" is the only paired backup plugged in.
	Device   string
	Checksum bool
	Skip     []string // top-level folders not compared
}

// Run verifies the backup and returns the helper's report (the findings went to UI.Event), or
// says in one sentence why it was not verified.
func (v *Verify) Run(ctx context.Context) (*wire.Report, error) {
	disks, snap, err := v.Connect(ctx)
	if err != nil {
		return nil, err
	}
	store, err := v.Store()
	if err != nil {
		return nil, err
	}
	state, se, err := LoadStateIn(ctx, v.Loc, store)
	if err != nil {
		return nil, err
	}
	if se != nil {
		v.UI.Warn(stateErrorText(v.Loc, se, v.App))
	}
	stick, err := pickToVerify(v.Loc, snap, v.Boot, &state, v.Device)
	if err != nil {
		return nil, err
	}
	name := DescribeIn(v.Loc, stick.Stick)
	v.UI.Say(v.Loc.Tr("Verifying the backup on %s.", name))

	o := OpenStick(disks, stick, v.Asker, Use{Kind: UseVerify, LeaveAsFound: true, ReadOnly: true, App: v.App}, v.Loc, v.Log)
	defer func() {
		if err := o.Release(ctx); err != nil {
			v.UI.Warn(NotLockedText(v.Loc, name, err))
		}
	}()
	if err := o.Unlock(ctx); err != nil {
		return nil, err
	}
	if err := o.Mount(ctx); err != nil {
		return nil, err
	}
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpVerify, Backup: stick.UUID, Checksum: v.Checksum, Skip: v.Skip}
	rep, err := v.Helper.Run(ctx, req, v.UI.Event)
	if err != nil {
		return nil, fmt.Errorf(v.Loc.Tr("%[1]s was not verified: %[2]w"), name, CommandHelperError(ctx, v.Loc, err, v.Log))
	}
	if rep == nil {
		rep = &wire.Report{}
	}
	return rep, nil
}

// pickToVerify picks the stick named by dev, or the only paired backup plugged in.
func pickToVerify(loc *l10n.Locale, snap *udisks.Snapshot, boot udisks.BootPaths, state *pairing.State, dev string) (Stick, error) {
	var paired []Stick
	for _, c := range Candidates(snap, boot) {
		if state.IsPaired(c.UUID) {
			paired = append(paired, c)
		}
	}
	st, err := PickStick(snap, boot, paired, dev)
	var pe *PickError
	if !errors.As(err, &pe) {
		return st, err
	}
	switch pe.Reason {
	case PickNone:
		return st, errors.New(loc.Tr("no paired backup Tails is plugged in; plug it in and try again, or name its device, e.g. 'tails-backup verify /dev/sdb'"))
	case PickSeveral:
		return st, fmt.Errorf("%w: %s", ErrUsage, loc.TrN("%[1]d paired backup is plugged in; say which one to verify, e.g. 'tails-backup verify %[2]s'",
			"%[1]d paired backups are plugged in; say which one to verify, e.g. 'tails-backup verify %[2]s'", pe.Count, pe.Count, Device(paired[0].Stick)))
	case PickNoDevice:
		return st, errors.New(loc.Tr("there is no device %s; plug in the backup Tails and give its device, e.g. /dev/sdb, or the folder where it is mounted", pe.Device))
	case PickNotTails:
		return st, errors.New(loc.Tr("%s is not a Tails stick (it has no Persistent Storage partition); give the device of your backup Tails", pe.Device))
	case PickUnfit:
		if pe.Unfit == UnfitBoot {
			return st, errors.New(loc.Tr("%s is the stick this Tails is running from, so it is not a backup; give the device of your backup Tails", pe.Device))
		}
	}
	return st, errors.New(UnfitTextIn(loc, pe.Device, pe.Unfit))
}
