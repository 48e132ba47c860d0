package session

// What a creation shows and asks before it erases a stick, for the command line and the agent:
// what erasing it destroys, and the new passphrase, twice, through pinentry.

import (
	"context"
	"crypto/subtle"
	"errors"
	"os/exec"
	"strings"

	"tails-backup/internal/secmem"
	"tails-backup/l10n"
	"tails-backup/pinentry"
	"tails-backup/udisks"
)

// ErasedLinesIn says what erasing the target destroys, one line each, without a capital
// letter: each partition with its number, size, GPT name and file system, or the whole stick's.
func ErasedLinesIn(loc *l10n.Locale, snap *udisks.Snapshot, c CreateTarget) []string {
	disk := c.Stick.Disk
	if disk == nil {
		return nil
	}
	parts := snap.Partitions(disk.Path)
	if len(parts) == 0 {
		if disk.Block != nil && disk.Block.IdType != "" {
			// TRANSLATORS: %s is what the stick holds ("FAT file system labelled "Tails"").
			return []string{loc.Tr("the whole stick: %s", contentText(loc, snap, disk))}
		}
		return []string{loc.Tr("no partitions")}
	}
	var out []string
	for _, p := range parts {
		size := loc.Size(int64(p.Partition.Size))
		if p.Partition.Name != "" {
			// TRANSLATORS: %[1]d is a partition's number, %[2]s its size, %[3]q its name, %[4]s what it holds.
			out = append(out, loc.Tr("partition %[1]d: %[2]s, named %[3]q, %[4]s", p.Partition.Number, size, OneLine(p.Partition.Name), contentText(loc, snap, p)))
			continue
		}
		// TRANSLATORS: %[1]d is a partition's number, %[2]s its size, %[3]s what it holds.
		out = append(out, loc.Tr("partition %[1]d: %[2]s, %[3]s", p.Partition.Number, size, contentText(loc, snap, p)))
	}
	return out
}

// contentText says what a block holds: "FAT file system labelled "Tails"", "encrypted (LUKS)".
func contentText(loc *l10n.Locale, snap *udisks.Snapshot, o *udisks.Object) string {
	b := o.Block
	if b == nil || b.IdType == "" {
		return loc.Tr("no file system")
	}
	if b.IdUsage == "crypto" {
		if ct := snap.Cleartext(o.Path); ct != nil && ct.Block != nil && ct.Block.IdLabel != "" {
			return loc.Tr("encrypted (LUKS), holding a file system labelled %q", OneLine(ct.Block.IdLabel))
		}
		return loc.Tr("encrypted (LUKS)")
	}
	if b.IdLabel != "" {
		// TRANSLATORS: %[1]s is a kind of file system ("FAT", "ext4"), %[2]q its label.
		return loc.Tr("%[1]s file system labelled %[2]q", fsTypeText(b.IdType), OneLine(b.IdLabel))
	}
	return loc.Tr("%s file system", fsTypeText(b.IdType))
}

func fsTypeText(t string) string {
	switch t {
	case "vfat":
		return "FAT"
	case "ntfs", "exfat":
		return strings.ToUpper(t)
	}
	return OneLine(t)
}

// ReplaceBackupTextIn is said before erasing the backup paired with this Tails.
func ReplaceBackupTextIn(loc *l10n.Locale) string {
	return loc.Tr("This stick is your backup Tails: erasing it destroys that backup until the new one is ready.")
}

// NewPassphraseTries is how many times the passphrase may be typed differently twice.
const NewPassphraseTries = 3

// ErrPassphraseNotGiven is AskNewPassphraseIn's error (its sentence in the session's language
// wraps it) when the person cancelled the dialog.
var ErrPassphraseNotGiven = errors.New("the passphrase was not given, so nothing was changed")

var (
	errPassphrasesDiffer = errors.New("the two passphrases were different")
	errPassphraseEmpty   = errors.New("the passphrase was empty")
)

// AskNewPassphraseIn asks the passphrase of the Persistent Storage of the backup made on the
// stick called name twice, until both are the same, or says why not in one sentence. The
// caller clears the result.
func AskNewPassphraseIn(ctx context.Context, loc *l10n.Locale, asker pinentry.PassphraseAsker, name string) ([]byte, error) {
	return askNewPassphrase(ctx, loc, asker, name, false)
}

// AskNewPassphraseApp is AskNewPassphraseIn for the Backup app: its errors say "try again",
// not which command to run again.
func AskNewPassphraseApp(ctx context.Context, loc *l10n.Locale, asker pinentry.PassphraseAsker, name string) ([]byte, error) {
	return askNewPassphrase(ctx, loc, asker, name, true)
}

func askNewPassphrase(ctx context.Context, loc *l10n.Locale, asker pinentry.PassphraseAsker, name string, app bool) ([]byte, error) {
	first := pinentry.Prompt{
		Title: loc.Tr("Tails Backup"),
		Description: loc.Tr("Choose the passphrase of the Persistent Storage of your backup Tails on %s. "+
			"We recommend the passphrase of this Tails: it is the one you will remember on the day you need the backup.", name),
		// GNOME Shell shows the prompt as the dialog's heading, and not the title.
		Prompt: loc.Tr("New passphrase of your backup Tails"),
		OK:     loc.Tr("Next"),
		// pinentry-gnome3 labels its own Cancel in English when it is not given one.
		Cancel: loc.Tr("Cancel"),
	}
	again := pinentry.Prompt{
		Title:       loc.Tr("Tails Backup"),
		Description: loc.Tr("Type the passphrase of the Persistent Storage of your backup Tails on %s again, to check it.", name),
		Prompt:      loc.Tr("New passphrase again"),
		OK:          loc.Tr("Create"),
		Cancel:      loc.Tr("Cancel"),
	}
	var err error
	for range NewPassphraseTries {
		var pass, check []byte
		if pass, err = asker.AskPassphrase(ctx, first); err != nil {
			break
		}
		if len(pass) == 0 {
			secmem.Wipe(pass)
			first.Error = loc.Tr("The passphrase is empty: type a passphrase.")
			err = errPassphraseEmpty
			continue
		}
		if check, err = asker.AskPassphrase(ctx, again); err != nil {
			secmem.Wipe(pass)
			break
		}
		same := subtle.ConstantTimeCompare(pass, check) == 1
		secmem.Wipe(check)
		if same {
			return pass, nil
		}
		secmem.Wipe(pass)
		first.Error = loc.Tr("The two passphrases were different. Type the passphrase again, twice.")
		err = errPassphrasesDiffer
	}
	var execErr *exec.Error
	switch {
	case errors.Is(err, pinentry.ErrPinentryCancelled):
		return nil, sentinelText{loc.Tr("the passphrase was not given, so nothing was changed"), ErrPassphraseNotGiven}
	case ctx.Err() != nil:
		return nil, errors.New(loc.Tr("interrupted, so nothing was changed"))
	case errors.As(err, &execErr) && app:
		return nil, errors.New(loc.Tr("the passphrase dialog could not be shown (%v), so nothing was changed; restart Tails if it happens again", err))
	case errors.As(err, &execErr):
		return nil, errors.New(loc.Tr("the passphrase dialog could not be shown (%v), so nothing was changed; run 'tails-backup create' in the Tails desktop session", err))
	case errors.Is(err, errPassphraseEmpty) && app:
		return nil, errors.New(loc.TrN("the passphrase was empty %d time, so nothing was changed; try again and type a passphrase",
			"the passphrase was empty %d times, so nothing was changed; try again and type a passphrase", NewPassphraseTries, NewPassphraseTries))
	case errors.Is(err, errPassphrasesDiffer) && app:
		return nil, errors.New(loc.TrN("the two passphrases were different %d time, so nothing was changed; try again and type the same passphrase twice",
			"the two passphrases were different %d times, so nothing was changed; try again and type the same passphrase twice", NewPassphraseTries, NewPassphraseTries))
	case errors.Is(err, errPassphraseEmpty):
		return nil, errors.New(loc.TrN("the passphrase was empty %d time, so nothing was changed; run 'tails-backup create' again and type a passphrase",
			"the passphrase was empty %d times, so nothing was changed; run 'tails-backup create' again and type a passphrase", NewPassphraseTries, NewPassphraseTries))
	case errors.Is(err, errPassphrasesDiffer):
		return nil, errors.New(loc.TrN("the two passphrases were different %d time, so nothing was changed; run 'tails-backup create' again and type the same passphrase twice",
			"the two passphrases were different %d times, so nothing was changed; run 'tails-backup create' again and type the same passphrase twice", NewPassphraseTries, NewPassphraseTries))
	}
	if app {
		return nil, errors.New(loc.Tr("the passphrase could not be asked (%s), so nothing was changed; try again", Reason(err)))
	}
	return nil, errors.New(loc.Tr("the passphrase could not be asked (%s), so nothing was changed; run 'tails-backup create' again", Reason(err)))
}

// sentinelText is a sentinel error said in the session's language: errors.Is still finds the
// sentinel.
type sentinelText struct {
	text     string
	sentinel error
}

func (e sentinelText) Error() string { return e.text }
func (e sentinelText) Unwrap() error { return e.sentinel }
