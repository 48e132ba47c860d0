package main

// What create asks: the confirmation to erase, on the terminal, and the new passphrase, twice,
// through pinentry.

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"tails-backup/internal/secmem"
	"tails-backup/pinentry"
	"tails-backup/session"
)

// confirmErase asks to type yes: erasing a stick is not undone by a stray y.
func confirmErase(env *environment, name string) bool {
	fmt.Fprintf(env.stdout, "Type yes to erase %s and make it your backup Tails: ", name)
	line, _ := bufio.NewReader(io.LimitReader(env.stdin, 1024)).ReadString('\n')
	if !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(env.stdout) // no answer: end the question's line
	}
	return strings.EqualFold(strings.TrimSpace(line), "yes")
}

// newPassphraseTries is how many times the passphrase may be typed differently twice.
const newPassphraseTries = 3

var (
	errPassphrasesDiffer = errors.New("the two passphrases were different")
	errPassphraseEmpty   = errors.New("the passphrase was empty")
)

// askNewPassphrase asks the passphrase of the backup's Persistent Storage twice, until both are
// the same. The caller clears the result.
func askNewPassphrase(ctx context.Context, asker pinentry.PassphraseAsker, name string) ([]byte, error) {
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
	for range newPassphraseTries {
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
		return nil, errors.New("the passphrase was not given, so nothing was changed")
	case ctx.Err() != nil:
		return nil, errors.New("interrupted, so nothing was changed")
	case errors.As(err, &execErr):
		return nil, fmt.Errorf("the passphrase dialog could not be shown (%v), so nothing was changed; run 'tails-backup create' in the Tails desktop session", err)
	case errors.Is(err, errPassphraseEmpty):
		return nil, fmt.Errorf("the passphrase was empty %d times, so nothing was changed; run 'tails-backup create' again and type a passphrase", newPassphraseTries)
	case errors.Is(err, errPassphrasesDiffer):
		return nil, fmt.Errorf("the two passphrases were different %d times, so nothing was changed; run 'tails-backup create' again and type the same passphrase twice", newPassphraseTries)
	}
	return nil, fmt.Errorf("the passphrase could not be asked (%s), so nothing was changed; run 'tails-backup create' again", session.Reason(err))
}
