package agent

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/gnomeshell"
	"tails-backup/internal/logtest"
	"tails-backup/internal/testtool"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/udisks/udiskstest"
)

// The agent's journeys in the real GNOME Shell (43, and 48 as Tails 7 has it), its buttons
// clicked with the pointer as a person clicks them (see internal/gnomeshell).
func TestRealShellReminderUpdateNow(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			w := newWorldOn(t, s.Address(), nil, withState(func(st *pairing.State) {
				st.RecordAttempt(pairing.Attempt{Time: time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC), Backup: backupUUID, Result: pairing.ResultSuccess})
				st.LastSuccess = time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)
				st.Backups[0].LastSuccess = st.LastSuccess
			}))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shots := t.TempDir()
			if d := os.Getenv("GNOMESHELL_SCREENSHOTS"); d != "" {
				shots = d
			}
			w.start()

			r, err := s.WaitBanner(ctx, "Your backup Tails is 8 days old")
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"Update now", "Remind me tomorrow", "Stop reminding"}; !slices.Equal(r.Actions, want) {
				t.Errorf("reminder buttons %q; want %q", r.Actions, want)
			}
			if err := s.ExpandBanner(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Screenshot(ctx, shots+"/"+shell.String()+"-agent-reminder.png"); err != nil {
				t.Fatal(err)
			}
			if err := s.ClickButton(ctx, "Update now"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.WaitBanner(ctx, "Plug in your backup Tails"); err != nil {
				t.Fatal(err)
			}
			w.plugBackup()
			done, err := s.WaitBanner(ctx, "Backup updated: you can unplug it")
			if err != nil {
				ns, _ := s.Notifications(ctx)
				t.Fatalf("%v (tray: %+v)", err, ns)
			}
			t.Logf("done: %+v", done)
			if err := s.Screenshot(ctx, shots+"/"+shell.String()+"-agent-done.png"); err != nil {
				t.Fatal(err)
			}
			if got := w.state().LastSuccess; !got.After(time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("last success %v after Update now; want the update recorded", got)
			}
		})
	}
}

// A plugged-in backup is updated after its passphrase is typed into pinentry-gnome3's real
// prompt: wrong once (the prompt comes again, saying so), then right.
func TestRealShellPassphraseWrongThenRight(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			if shell == gnomeshell.Host43 {
				testtool.Program(t, "pinentry-gnome3", "pinentry-gnome3")
			}
			s := gnomeshell.Start(t, shell)
			for k, v := range s.Env() {
				t.Setenv(k, v)
			}
			log, _ := logtest.New(t)
			p := pinentry.NewPinentry(log)
			argv := s.Argv("/usr/bin/pinentry-gnome3")
			p.Program, p.Args = argv[0], argv[1:]
			w := newWorldOn(t, s.Address(), nil, withAsker(p))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shots := t.TempDir()
			if d := os.Getenv("GNOMESHELL_SCREENSHOTS"); d != "" {
				shots = d
			}
			w.start()
			w.plugBackup()
			// The first prompt, then the second: the same, saying that the passphrase was wrong.
			wrongText := "Wrong passphrase"
			for i, pass := range []string{"wrong passphrase", udiskstest.BackupPassphrase} {
				var text string
				err := poll(ctx, func() (bool, error) {
					var err error
					text, err = s.PromptText(ctx)
					return text != "" && (i == 0) != strings.Contains(text, wrongText), err
				})
				if err != nil {
					t.Fatalf("prompt %d: %v (last shown: %q)", i+1, err, text)
				}
				t.Logf("prompt %d: %q", i+1, text)
				time.Sleep(500 * time.Millisecond) // the dialog's animation
				if err := s.ClickPasswordEntry(ctx); err != nil {
					t.Fatal(err)
				}
				if i == 1 {
					if err := s.Screenshot(ctx, shots+"/"+shell.String()+"-agent-passphrase-again.png"); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.TypeText(ctx, pass); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.WaitBanner(ctx, "Backup updated: you can unplug it"); err != nil {
				ns, _ := s.Notifications(ctx)
				t.Fatalf("%v (tray: %+v)", err, ns)
			}
			w.noPassphraseInLogs()
		})
	}
}

// poll checks cond every 100 ms until it holds, fails, or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
