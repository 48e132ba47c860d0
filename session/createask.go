package session

// What a creation shows and asks before it erases a stick, for the command line and the agent:
// what erasing it destroys, and the new passphrase, twice, through pinentry.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"tails-backup/internal/secmem"
	"tails-backup/pinentry"
	"tails-backup/udisks"
)

// ErasedLines says what erasing the target destroys, one line each, without a capital letter:
// each partition with its number, size, GPT name and file system, or the whole stick's.
func ErasedLines(snap *udisks.Snapshot, c CreateTarget) []string {
	disk := c.Stick.Disk
	if disk == nil {
		return nil
	}
	parts := snap.Partitions(disk.Path)
	if len(parts) == 0 {
		if disk.Block != nil && disk.Block.IdType != "" {
			return []string{"the whole stick: " + contentText(snap, disk)}
		}
		return []string{"no partitions"}
	}
	var out []string
	for _, p := range parts {
		name := ""
		if p.Partition.Name != "" {
			name = fmt.Sprintf(", named %q", OneLine(p.Partition.Name))
		}
		out = append(out, fmt.Sprintf("partition %d: %s%s, %s", p.Partition.Number, SizeText(int64(p.Partition.Size)), name, contentText(snap, p)))
	}
	return out
}

// contentText says what a block holds: "FAT file system labelled "Tails"", "encrypted (LUKS)".
func contentText(snap *udisks.Snapshot, o *udisks.Object) string {
	b := o.Block
	if b == nil || b.IdType == "" {
		return "no file system"
	}
	if b.IdUsage == "crypto" {
		s := "encrypted (LUKS)"
		if ct := snap.Cleartext(o.Path); ct != nil && ct.Block != nil && ct.Block.IdLabel != "" {
			s += fmt.Sprintf(", holding a file system labelled %q", OneLine(ct.Block.IdLabel))
		}
		return s
	}
	s := fsTypeText(b.IdType) + " file system"
	if b.IdLabel != "" {
		s += fmt.Sprintf(" labelled %q", OneLine(b.IdLabel))
	}
	return s
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

// ReplaceBackupText is said before erasing the backup paired with this Tails.
const ReplaceBackupText = "This stick is your backup Tails: erasing it destroys that backup until the new one is ready."

// NewPassphraseTries is how many times the passphrase may be typed differently twice.
const NewPassphraseTries = 3

// ErrPassphraseNotGiven is AskNewPassphrase's error when the person cancelled the dialog.
var ErrPassphraseNotGiven = errors.New("the passphrase was not given, so nothing was changed")

var (
	errPassphrasesDiffer = errors.New("the two passphrases were different")
	errPassphraseEmpty   = errors.New("the passphrase was empty")
)

// AskNewPassphrase asks the passphrase of the Persistent Storage of the backup made on the
// stick called name twice, until both are the same, or says why not in one sentence. The
// caller clears the result.
func AskNewPassphrase(ctx context.Context, asker pinentry.PassphraseAsker, name string) ([]byte, error) {
	first := pinentry.Prompt{
		Title: "Tails Backup",
		Description: fmt.Sprintf("Choose the passphrase of the Persistent Storage of your backup Tails on %s. "+
			"We recommend the passphrase of this Tails: it is the one you will remember on the day you need the backup.", name),
		// GNOME Shell shows the prompt as the dialog's heading, and not the title.
		Prompt: "New passphrase of your backup Tails",
		OK:     "Next",
	}
	again := pinentry.Prompt{
		Title:       "Tails Backup",
		Description: fmt.Sprintf("Type the passphrase of the Persistent Storage of your backup Tails on %s again, to check it.", name),
		Prompt:      "New passphrase again",
		OK:          "Create",
	}
	var err error
	for range NewPassphraseTries {
		var pass, check []byte
		if pass, err = asker.AskPassphrase(ctx, first); err != nil {
			break
		}
		if len(pass) == 0 {
			secmem.Wipe(pass)
			first.Error = "The passphrase is empty: type a passphrase."
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
		first.Error = "The two passphrases were different. Type the passphrase again, twice."
		err = errPassphrasesDiffer
	}
	var execErr *exec.Error
	switch {
	case errors.Is(err, pinentry.ErrPinentryCancelled):
		return nil, ErrPassphraseNotGiven
	case ctx.Err() != nil:
		return nil, errors.New("interrupted, so nothing was changed")
	case errors.As(err, &execErr):
		return nil, fmt.Errorf("the passphrase dialog could not be shown (%v), so nothing was changed; run 'tails-backup create' in the Tails desktop session", err)
	case errors.Is(err, errPassphraseEmpty):
		return nil, fmt.Errorf("the passphrase was empty %d times, so nothing was changed; run 'tails-backup create' again and type a passphrase", NewPassphraseTries)
	case errors.Is(err, errPassphrasesDiffer):
		return nil, fmt.Errorf("the two passphrases were different %d times, so nothing was changed; run 'tails-backup create' again and type the same passphrase twice", NewPassphraseTries)
	}
	return nil, fmt.Errorf("the passphrase could not be asked (%s), so nothing was changed; run 'tails-backup create' again", Reason(err))
}
