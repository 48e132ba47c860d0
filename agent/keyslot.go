package agent

// Updates without the passphrase (issue 15): a backup with a key slot is unlocked by the root
// helper with the key kept for it (session.Update), so its first notification asks nothing.

import (
	"context"

	"tails-backup/dbusapi"
	"tails-backup/l10n"
	"tails-backup/notify"
	"tails-backup/pairing"
	"tails-backup/session"
)

// foundKeyNote is the first notification of an update of a backup whose key slot the pairing
// store records: no passphrase is asked (unless the key no longer opens it, and then the
// passphrase dialog says why).
func foundKeyNote(loc *l10n.Locale) notify.Notification {
	n := foundNote(loc)
	n.Body = loc.Tr("Unlocking your backup Tails with the key kept in this Tails: no passphrase is needed.")
	return n
}

// foundNote is the first notification of this update: foundKeyNote for a backup with a key
// slot, otherwise the one that asks the passphrase.
func (u *update) foundNote() notify.Notification {
	loc := u.a.loc
	st, err := u.a.deps.Store.Load(u.ctx)
	if err != nil {
		return foundNote(loc)
	}
	if b := st.Backup(u.flow.Stick.UUID); b != nil && b.KeySlot {
		return foundKeyNote(loc)
	}
	return foundNote(loc)
}

// actKeySlot takes the offer of updates without the passphrase.
const actKeySlot = "passphrase-free"

// offerKeySlotOn adds to the done notification n of a backup updated with its passphrase
// (paired before updates without it existed, or turned off) the offer of updates without it,
// once: a sentence and the action that takes it. The stick is ejected by then, so the next
// update adds the key slot with the passphrase typed for it. The offer and "done" come in one
// notification: a second one would take the place of the done banner in GNOME Shell. Short:
// GNOME Shell 48 shows two lines of an Arabic body.
func offerKeySlotOn(loc *l10n.Locale, n *notify.Notification) {
	n.Body += " " + loc.Tr("Next time, a key kept in this Tails can open it, with no passphrase.")
	n.Actions = append(n.Actions, notify.Action{Key: actKeySlot, Label: loc.Tr("Update without passphrase next time"),
		Command: loc.Tr("To update it without its passphrase, plug it in and run: tails-backup passphrase-free on")})
}

// keySlotWantedNote confirms the offer taken, and says what it means.
func keySlotWantedNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("Updates without the passphrase"),
		Body: loc.Tr("The next time you plug in your backup Tails, type its passphrase once more; after that, its updates will not ask for it.") + " " +
			loc.Tr("Whoever can unlock this Tails could then unlock the backup too; they already hold the same data."),
		Urgency: notify.UrgencyNormal,
	}
}

// offerKeySlot tells whether the backup uuid, just updated with its passphrase, is offered
// updates without it (once: the offer is recorded).
func (a *Agent) offerKeySlot(ctx context.Context, uuid string) bool {
	offer := false
	a.updateState(ctx, func(s *pairing.State) error { offer = s.OfferKeySlot(uuid); return nil })
	return offer
}

// takeKeySlotOffer records that the person took the offer for the backup uuid, and says what
// happens next.
func (a *Agent) takeKeySlotOffer(ctx context.Context, uuid string) {
	a.updateState(ctx, func(s *pairing.State) error { s.WantKeySlot(uuid, true); return nil })
	a.show(ctx, keySlotWantedNote(a.loc))
	a.events.Changed()
}

// Forget implements dbusapi.Backend: session.KeySlotFlow.Forget, as 'tails-backup forget UUID'
// does; its confirmation is a Question whose body says what goes and what stays.
func (api *API) Forget(ctx context.Context, backup string) (string, error) {
	return api.startChecked(ctx, func(ctx context.Context) (string, error) {
		a := api.a
		b, err := a.pairedBackup(ctx, backup)
		if err != nil {
			return "", err
		}
		device := ""
		if a.snap != nil {
			for _, st := range session.Candidates(a.snap, a.deps.Disks.BootPaths()) {
				if st.UUID == b.UUID {
					device = session.Device(st.Stick)
				}
			}
		}
		return a.startFlow(ctx, dbusapi.KindForget, device, b.UUID, a.loc.Tr(apiStepForget), func(ctx context.Context, ui *flowUI) flowEnd {
			ui.confirm = forgetQuestion(a.loc)
			ui.closingFormats = []string{session.ForgottenTextIn(a.loc, "%s")}
			f := a.keySlotFlow(ui, b.UUID)
			if err := f.Forget(ctx); err != nil {
				return flowEnd{res: ui.failed(err)}
			}
			a.events.Changed()
			return flowEnd{res: dbusapi.Result{Result: dbusapi.ResultSuccess, Text: appText(ui.closingText())}}
		}), nil
	})
}

// SetPassphraseFree implements dbusapi.Backend: session.KeySlotFlow.On or Off, as
// 'tails-backup passphrase-free on|off' does, on the paired backup uuid; the job waits for it
// when it is not plugged in. The backup is left alone while it stays plugged in after: it is
// updated at its next plug.
func (api *API) SetPassphraseFree(ctx context.Context, backup string, enabled bool) (string, error) {
	return api.startChecked(ctx, func(ctx context.Context) (string, error) {
		a := api.a
		if a.isBackup {
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: a.loc.Tr(apiTextIsBackup)}
		}
		b, err := a.pairedBackup(ctx, backup)
		if err != nil {
			return "", err
		}
		uuid := b.UUID
		resolve := func(ctx context.Context) (session.Stick, error) {
			return a.pickTails("", func(st session.Stick) bool { return st.UUID == uuid })
		}
		step := a.loc.Tr(apiStepPassphraseOff)
		if enabled {
			step = a.loc.Tr(apiStepPassphraseOn)
		}
		return a.startStickFlow(ctx, dbusapi.KindPassphraseFree, "", step, plugPassphraseFree, resolve, func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd {
			f := a.keySlotFlow(ui, session.Device(st.Stick))
			run := f.Off
			ui.closingFormats = []string{session.PassphraseOffTextIn(a.loc, "%s")}
			if enabled {
				run = f.On
				ui.closing = map[string]bool{session.KeySlotAddedTextIn(a.loc): true}
			}
			if err := run(ctx); err != nil {
				return flowEnd{res: ui.failed(err), handled: []string{uuid}}
			}
			a.events.Changed()
			return flowEnd{res: dbusapi.Result{Result: dbusapi.ResultSuccess, Text: appText(ui.closingText()) + " " + a.loc.Tr(textKeySlotUnplug)},
				handled: []string{uuid}}
		})
	})
}

// textKeySlotUnplug ends the result of SetPassphraseFree: the backup is not updated now.
const textKeySlotUnplug = "You can unplug your backup Tails: it is updated the next time you plug it in."

// pairedBackup is the paired backup uuid, as the pairing store has it now.
func (a *Agent) pairedBackup(ctx context.Context, uuid string) (pairing.PairedBackup, error) {
	state := a.loadState(ctx)
	if b := state.Backup(uuid); b != nil && uuid != "" {
		return *b, nil
	}
	return pairing.PairedBackup{}, &dbusapi.Error{Kind: dbusapi.NotFound, Text: a.loc.Tr(apiTextNoBackup)}
}

// keySlotFlow is the session flow of Forget and SetPassphraseFree on device (a device or a
// LUKS UUID), with the job's UI.
func (a *Agent) keySlotFlow(ui *flowUI, device string) *session.KeySlotFlow {
	loc := a.loc
	return &session.KeySlotFlow{
		Connect: a.connect, Boot: a.deps.Disks.BootPaths(), Store: a.flowStore(), Helper: a.deps.Helper,
		Asker: a.deps.Asker, Log: ui.log, Loc: loc, UI: ui, Device: device, App: true,
		Name: func(b pairing.PairedBackup) string { return loc.Tr("the backup Tails %s", backupName(loc, b)) },
	}
}
