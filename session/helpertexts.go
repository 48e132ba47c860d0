package session

import (
	"context"
	"errors"
	"strings"

	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/wire"
)

// The user texts for each outcome of the root helper, written once: the agent's notifications
// and the commands' errors take them from here.

// HelperErrorTextIn explains an error of the root helper in one or two sentences, for the
// notification that ends an update (and a promotion) in the agent.
func HelperErrorTextIn(loc *l10n.Locale, err error) string {
	var he *wire.HelperError
	switch {
	case errors.As(err, &he) && he.Reason != wire.ReasonCancelled && KnownReason(he.Reason):
		// The helper said which of its failures it met: its sentence says what to do.
		return HelperText(loc, he)
	case errors.As(err, &he) && errors.Is(err, wire.ErrHelperNoSpace) && he.Needed <= he.Available:
		// The backup filled up during the copy: what is missing is not known.
		return loc.Tr("Your backup Tails ran out of space during the update. Nothing on it is lost, and it is marked incomplete. Free some space in your Persistent Storage, or create a new backup on a bigger USB stick with 'tails-backup create'.")
	case errors.As(err, &he) && errors.Is(err, wire.ErrHelperNoSpace):
		// TRANSLATORS: %[1]s is the size missing, %[2]s the size free ("1.5 GB").
		return loc.Tr("Your backup Tails is too small: the update needs %[1]s more than the %[2]s free. Create a new backup on a bigger USB stick with 'tails-backup create'.",
			loc.Size(he.Needed-he.Available), loc.Size(he.Available))
	case errors.Is(err, wire.ErrHelperNotPaired):
		return loc.Tr("Its backup marker names another Tails, so it was not changed. Use your own backup, or create a new one with 'tails-backup create'.")
	case errors.Is(err, wire.ErrHelperDeviceGone):
		return loc.Tr("Your backup Tails was unplugged or failed during the update. Plug it in again to finish the update.")
	case errors.Is(err, wire.ErrHelperCrashed) || errors.Is(err, wire.ErrHelperProtocol):
		// A crash, or an answer that cannot be understood: the error itself helps nobody
		// reading a notification (the caller logs it).
		return loc.Tr("The update stopped unexpectedly. Your backup is marked incomplete: plug it in again to finish the update.")
	case errors.Is(err, context.Canceled) || errors.Is(err, wire.ErrHelperCancelled):
		return loc.Tr("The update was cancelled. Your backup is marked incomplete: the next update finishes it.")
	case errors.As(err, &he):
		// A failure this session has no sentence for: the generic one of its code (the
		// helper's Message is English, for the log).
		return codeText(loc, he)
	}
	return loc.Tr("The backup tool stopped unexpectedly: plug your backup Tails in again to try again, and if it happens again, restart Tails.")
}

// FirstSentence is the first sentence of an error, without its full stop.
func FirstSentence(err error) string {
	s := err.Error()
	if i := strings.Index(s, ". "); i > 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// CommandHelperError says in one sentence why the helper failed, for a command at a
// terminal (which is run again, where the agent waits for the stick to be plugged in again).
// A crash, an answer that cannot be understood or a helper that cannot be run is said without
// the error, which goes to log (a warning: shown with --verbose); log may be nil when the
// caller logged it.
func CommandHelperError(ctx context.Context, loc *l10n.Locale, err error, log *logrus.Entry) error {
	var he *wire.HelperError
	if errors.As(err, &he) && ctx.Err() == nil {
		// The helper's own sentence is English: the log keeps it.
		if log != nil {
			log.WithField("code", he.Code).WithField("reason", he.Reason).WithField("message", he.Message).Info("the root helper failed")
		}
		return errors.New(strings.TrimSuffix(HelperText(loc, he), "."))
	}
	if log != nil {
		log.WithError(err).Warn("the root helper failed")
	}
	switch {
	case ctx.Err() != nil:
		return errors.New(loc.Tr("interrupted while the root helper was running; run the command again"))
	case errors.Is(err, wire.ErrHelperCrashed) || errors.Is(err, wire.ErrHelperProtocol):
		// Nothing the person can act on but trying again.
		return errors.New(loc.Tr("the backup tool stopped unexpectedly; try again, and if it happens again, restart Tails"))
	}
	return errors.New(loc.Tr("the root helper could not be run; check that tails-backup is installed completely, with its sudo rule, and try again"))
}

// helperCodeText words an error of the root helper from its code (and sizes) in the session's
// language, for the codes a person meets whatever the operation, when its Reason is not known
// (codeText); ok is false for the codes whose reasons are too many for one sentence.
func helperCodeText(loc *l10n.Locale, he *wire.HelperError) (text string, ok bool) {
	switch he.Code {
	case wire.CodeNoSpace:
		if he.Needed <= he.Available {
			return loc.Tr("The space ran out while the data was being written. Nothing is lost: free some space, or use a bigger USB stick, and try again."), true
		}
		// TRANSLATORS: %[1]s is the size missing, %[2]s the size free ("1.5 GB").
		return loc.Tr("There is not enough space: %[1]s more is needed than the %[2]s free. Free some space, or use a bigger USB stick, and try again.",
			loc.Size(he.Needed-he.Available), loc.Size(he.Available)), true
	case wire.CodeCancelled:
		return loc.Tr("The operation was cancelled. Nothing is lost, and running it again finishes the job."), true
	case wire.CodeKeyMissing:
		return loc.Tr("This Tails keeps no usable key for your backup Tails, so it cannot unlock it without its passphrase: type the passphrase."), true
	case wire.CodeKeyRefused:
		return loc.Tr("Your backup Tails no longer accepts the key this Tails keeps for it, because its key slot was removed or the stick was made again: type the passphrase."), true
	case wire.CodeWrongPassphrase:
		return loc.Tr("The passphrase does not unlock the Persistent Storage of your backup Tails: type its passphrase again."), true
	case wire.CodeNoFreeKeySlot:
		return loc.Tr("Every key slot of the Persistent Storage of your backup Tails is taken, so it cannot be unlocked without its passphrase: remove a passphrase you no longer use from it, or keep typing the passphrase."), true
	case wire.CodeLastKeySlot:
		return loc.Tr("That key slot is the only one left on the stick, so removing it would lock its data away for good: add a passphrase to it first."), true
	case wire.CodeNoCryptsetup:
		return loc.Tr("The cryptsetup program is not installed, so the key of your backup Tails cannot be used: install cryptsetup and try again."), true
	}
	return "", false
}
