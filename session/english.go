package session

import (
	"context"
	"fmt"
	"time"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/udisks"
	"tails-backup/wire"
)

// The texts in English only, for agent/ whose callers do not give a Locale yet (issue 14, second
// round: agent/ and app/ move to the functions these call, with the session's *l10n.Locale, and
// this file goes).

// LoadState reads the store, with its errors in English. Deprecated: use LoadStateIn.
func LoadState(ctx context.Context, store *pairing.Store) (pairing.State, *pairing.StateError, error) {
	return LoadStateIn(ctx, nil, store)
}

// SavePairing records a pairing, with its errors in English. Deprecated: use SavePairingIn.
func SavePairing(ctx context.Context, store *pairing.Store, readPath string, before pairing.State, beforeDamaged bool, setAside func(*pairing.StateError), change func(*pairing.State) error) error {
	return SavePairingIn(ctx, nil, store, readPath, before, beforeDamaged, setAside, change)
}

// PairedText is said once a pairing is recorded, in English. Deprecated: use PairedTextIn.
const PairedText = "Paired. Your backup Tails is updated each time you plug it in; unplug it and plug it in again now to make the first update."

// UnfitText says why a Tails stick cannot be paired, in English and after its name.
// Deprecated: use UnfitTextIn, a whole sentence.
func UnfitText(u Unfit) string {
	switch u {
	case UnfitBoot:
		return "is the stick this Tails is running from, so it cannot be its own backup; plug in another Tails stick"
	case UnfitNotRemovable:
		return "is not a removable USB stick, so it is not used as a backup; plug in a Tails USB stick"
	}
	return "has no encrypted Persistent Storage; start Tails from it once and create its Persistent Storage, then pair it"
}

// RestoreResult is the result of a restore, in English. Deprecated: use RestoreResultIn.
func RestoreResult(rep *wire.Report) error { return RestoreResultIn(nil, rep) }

// ErasedLines says what erasing the target destroys, in English. Deprecated: use ErasedLinesIn.
func ErasedLines(snap *udisks.Snapshot, c CreateTarget) []string { return ErasedLinesIn(nil, snap, c) }

// ReplaceBackupText is said before erasing the backup paired with this Tails, in English.
// Deprecated: use ReplaceBackupTextIn.
const ReplaceBackupText = "This stick is your backup Tails: erasing it destroys that backup until the new one is ready."

// AskNewPassphrase asks the new passphrase, with its prompts and errors in English.
// Deprecated: use AskNewPassphraseIn.
func AskNewPassphrase(ctx context.Context, asker pinentry.PassphraseAsker, name string) ([]byte, error) {
	return AskNewPassphraseIn(ctx, nil, asker, name)
}

// CreateTargets lists every drive, with its reasons in English. Deprecated: use CreateTargetsIn.
func CreateTargets(snap *udisks.Snapshot, boot udisks.BootPaths, used uint64, st *pairing.State) []CreateTarget {
	return CreateTargetsIn(nil, snap, boot, used, st)
}

// NotEligible says why a drive cannot become a backup, in English. Deprecated: use NotEligibleIn.
func (d DriveFacts) NotEligible(used uint64) string { return d.NotEligibleIn(nil, used) }

// SizeText writes a size in English: "15.5 GB", "512 bytes". Deprecated: use loc.Size.
func SizeText(n int64) string { return l10n.English().Size(n) }

// Plural: "1 file", "3 files", in English only. Deprecated: use loc.TrN with whole texts
// ("%d file", "%d files"); an "s" added is no plural in most languages.
func Plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// CountText: "1 file", "3 files", in English only. Deprecated: use loc.TrN.
func CountText(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// AgeText says how old a backup is, in English. Deprecated: use AgeTextIn.
func AgeText(lastSuccess, now time.Time) string { return AgeTextIn(nil, lastSuccess, now) }

// ReminderStatusText is the app's sentence about the next reminder, in English. Deprecated:
// use ReminderStatusTextIn.
func ReminderStatusText(r Reminder, now time.Time) string { return ReminderStatusTextIn(nil, r, now) }

// StateErrorText explains a store that could not be used, in English. Deprecated: use
// StateErrorTextIn.
func StateErrorText(se *pairing.StateError) string { return StateErrorTextIn(nil, se) }

// HelperErrorText explains an error of the root helper, in English. Deprecated: use
// HelperErrorTextIn.
func HelperErrorText(err error) string { return HelperErrorTextIn(nil, err) }
