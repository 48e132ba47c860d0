package treegen

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// TailsChange is one thing TailsWeekOfUse did, for people to read.
type TailsChange struct {
	Path string // relative to the Persistent Storage root
	What string
}

// TailsWeekOfUse changes a TailsSample tree in dir as a week of use would: a document edited, new
// mail, a new Wi-Fi network, a downloaded file deleted, an SSH key made read-only. Files it writes
// get the mtime now, as they would on a real system.
func TailsWeekOfUse(dir string, now time.Time) ([]TailsChange, error) {
	s := &sample{rng: rand.New(rand.NewPCG(7, 0x7765656b)), clock: now}
	inbox := "thunderbird/profile.default/ImapMail/imap.riseup.net/INBOX"
	var mail strings.Builder
	for i := 0; i < 3; i++ {
		s.mail(&mail, 1000+i)
	}
	steps := []struct {
		change TailsChange
		do     func(p string) error
	}{
		{TailsChange{"Persistent/Documents/notes.txt", "edited: two paragraphs added"},
			func(p string) error { return appendFile(p, "\n"+s.prose(12)) }},
		{TailsChange{inbox, "3 new messages arrived"},
			func(p string) error { return appendFile(p, mail.String()) }},
		{TailsChange{"nm-system-connections/Library.nmconnection", "new Wi-Fi network saved (root, 0600)"},
			func(p string) error { return writeNew(p, nmConnection("Library", "books-and-tea"), 0o600) }},
		{TailsChange{"Persistent/Downloads/old-invoice.pdf", "deleted"},
			func(p string) error { return os.Remove(p) }},
		{TailsChange{"openssh-client/id_ed25519", "made read-only: chmod 0600 -> 0400"},
			func(p string) error { return os.Chmod(p, 0o400) }},
	}
	var done []TailsChange
	for _, st := range steps {
		if err := st.do(filepath.Join(dir, st.change.Path)); err != nil {
			return done, fmt.Errorf("week of use: %s: %w", st.change.Path, err)
		}
		done = append(done, st.change)
	}
	return done, nil
}

func appendFile(p, text string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeNew creates a root-owned file (the creator's owner, root here) with an exact mode.
func writeNew(p, text string, mode uint32) error {
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		return err
	}
	return unix.Chmod(p, mode)
}
