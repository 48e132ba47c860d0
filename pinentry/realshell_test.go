package pinentry_test

import (
	"context"
	"os"
	"testing"
	"time"

	"tails-backup/internal/gnomeshell"
	"tails-backup/internal/logtest"
	"tails-backup/internal/secmem"
	"tails-backup/pinentry"
)

// pinentry-gnome3 in the real GNOME Shell (43, and 48 as Tails 7 has it) shows the shell's own
// modal prompt; a passphrase typed there with the virtual keyboard comes back to the client.
func TestRealPinentryGnome3(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			log, _ := logtest.New(t)
			p := s.Pinentry(t, log)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			type answer struct {
				pass []byte
				err  error
			}
			got := make(chan answer, 1)
			go func() {
				pass, err := p.AskPassphrase(ctx, pinentry.Prompt{
					Title:       "Tails Backup",
					Description: "Type the passphrase of your backup Tails to update it.",
					Prompt:      "Passphrase:",
				})
				got <- answer{pass, err}
			}()
			deadline := time.Now().Add(20 * time.Second)
			for {
				shown, err := s.ModalShown(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if shown {
					break
				}
				select {
				case a := <-got:
					t.Fatalf("pinentry answered %q, %v before the prompt showed", a.pass, a.err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("no prompt within 20 s")
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The prompt's field takes a click once the dialog's animation ended.
			time.Sleep(500 * time.Millisecond)
			// GNOME Shell 48 opens the prompt without the keyboard in its field (43 gives it):
			// a person clicks into it.
			if err := s.ClickPasswordEntry(ctx); err != nil {
				t.Fatal(err)
			}
			shot := t.TempDir()
			if d := os.Getenv("GNOMESHELL_SCREENSHOTS"); d != "" {
				shot = d
			}
			if err := s.Screenshot(ctx, shot+"/"+shell.String()+"-pinentry.png"); err != nil {
				t.Fatal(err)
			}
			const typed = "correct horse 42"
			if err := s.TypeText(ctx, typed); err != nil {
				t.Fatal(err)
			}
			select {
			case a := <-got:
				if a.err != nil || string(a.pass) != typed {
					t.Errorf("pinentry answered %q, %v; want %q", a.pass, a.err, typed)
				}
				secmem.Wipe(a.pass)
			case <-ctx.Done():
				t.Fatal("pinentry did not answer")
			}
		})
	}
}
