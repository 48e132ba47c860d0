package agent

// Updates without the passphrase (issue 15): a backup with a key slot is unlocked by the root
// helper with the key kept for it (session.Update), so its first notification asks nothing.

import (
	"tails-backup/l10n"
	"tails-backup/notify"
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
