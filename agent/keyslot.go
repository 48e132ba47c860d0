package agent

// Updates without the passphrase (issue 15): a backup with a key slot is unlocked by the root
// helper with the key kept for it (session.Update), so its first notification asks nothing.

import (
	"context"

	"tails-backup/l10n"
	"tails-backup/notify"
	"tails-backup/pairing"
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

// keySlotOfferNote offers updates without the passphrase to a backup updated with it (paired
// before they existed, or turned off), once, after a successful update: the stick is ejected
// by then, so the next update adds the key slot with the passphrase typed for it.
func keySlotOfferNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("Update your backup Tails without its passphrase?"),
		Body: loc.Tr("A key kept in this Tails' Persistent Storage can open your backup Tails, so that plugging it in is enough. " +
			"Whoever can unlock this Tails could then unlock the backup too; they already hold the same data."),
		Actions: []notify.Action{{Key: actKeySlot, Label: loc.Tr("Stop asking for the passphrase"),
			Command: loc.Tr("To update it without its passphrase, plug it in and run: tails-backup passphrase-free on")}},
		Timeout: notify.TimeoutNever,
	}
}

// keySlotWantedNote confirms the offer taken.
func keySlotWantedNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("Updates without the passphrase"),
		Body:    loc.Tr("The next time you plug in your backup Tails, type its passphrase once more; after that, its updates will not ask for it."),
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
