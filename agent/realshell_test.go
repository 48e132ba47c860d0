package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/gnomeshell"
	"tails-backup/internal/logtest"
	"tails-backup/pairing"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// screenshotsEnv names the folder, relative to the repository's root, where the journeys
// write the pictures of docs/user-guide.md (notification-NAME.png), from GNOME Shell 48, the
// one Tails 7 runs: `make screenshots` sets it to docs/screenshots, as for the Backup app's
// journey (app/journey_test.go).
const screenshotsEnv = "TAILS_BACKUP_SCREENSHOTS"

// shots saves the screenshots of a journey in the real shell.
type shots struct {
	t     *testing.T
	s     *gnomeshell.Session
	debug string // every picture, named SHELL-NAME.png: $GNOMESHELL_SCREENSHOTS or a temporary folder
	docs  string // the user guide's pictures, "" when not asked for
}

func newShots(t *testing.T, s *gnomeshell.Session) *shots {
	t.Helper()
	sh := &shots{t: t, s: s, debug: os.Getenv("GNOMESHELL_SCREENSHOTS")}
	if sh.debug == "" {
		sh.debug = t.TempDir()
	}
	if d := os.Getenv(screenshotsEnv); d != "" && s.Shell() == gnomeshell.Trixie48 {
		if !filepath.IsAbs(d) {
			d = filepath.Join("..", d) // the tests run in agent/
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// A session in another language writes its pictures in a folder of its own:
		// docs/screenshots/ar for Arabic.
		if lang := s.Lang(); lang != "" {
			d = filepath.Join(d, strings.SplitN(lang, "_", 2)[0])
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		sh.docs = d
	}
	return sh
}

// banner saves the banner shown as SHELL-NAME.png and, if doc is not "", as the user guide's
// doc.png.
func (sh *shots) banner(ctx context.Context, name, doc string) {
	sh.take(ctx, name, doc, sh.s.ScreenshotBanner)
}

// prompt saves the passphrase prompt shown, as banner does.
func (sh *shots) prompt(ctx context.Context, name, doc string) {
	sh.take(ctx, name, doc, sh.s.ScreenshotPrompt)
}

func (sh *shots) take(ctx context.Context, name, doc string, shoot func(context.Context, string) error) {
	sh.t.Helper()
	if err := shoot(ctx, filepath.Join(sh.debug, sh.s.Shell().String()+"-agent-"+name+".png")); err != nil {
		sh.t.Fatal(err)
	}
	if doc != "" && sh.docs != "" {
		if err := shoot(ctx, filepath.Join(sh.docs, doc+".png")); err != nil {
			sh.t.Fatal(err)
		}
	}
}

// waitBanner waits until the banner shows title with a body that contains body, and returns
// it; on a timeout, it fails the test with what the tray holds.
func waitBanner(ctx context.Context, t *testing.T, s *gnomeshell.Session, title, body string) gnomeshell.Notification {
	t.Helper()
	var last gnomeshell.Notification
	err := poll(ctx, func() (bool, error) {
		n, ok, err := s.Banner(ctx)
		last = n
		return ok && n.Title == title && strings.Contains(n.Body, body), err
	})
	if err != nil {
		ns, _ := s.Notifications(context.Background())
		t.Fatalf("wait for the banner %q with %q: %v (last shown: %+v; tray: %+v)", title, body, err, last, ns)
	}
	return last
}

// answer is a person's answer to the banner shown: its buttons, once expanded, are buttons;
// its picture is saved as shot (and as the user guide's doc.png, doc not ""); click is the
// button clicked with the pointer; the banner that follows has the title and a body containing
// body.
type answer struct {
	buttons     []string
	shot, doc   string
	click       string
	title, body string
}

// answerBanner answers the banner shown as a person does (see answer) and returns the banner
// that follows.
func answerBanner(ctx context.Context, t *testing.T, s *gnomeshell.Session, shots *shots, a answer) gnomeshell.Notification {
	t.Helper()
	if err := s.ExpandBanner(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Buttons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, a.buttons) {
		t.Errorf("the banner shows the buttons %q; want %q", got, a.buttons)
	}
	shots.banner(ctx, a.shot, a.doc)
	if err := s.ClickButton(ctx, a.click); err != nil {
		t.Fatal(err)
	}
	return waitBanner(ctx, t, s, a.title, a.body)
}

// The agent's journeys in the real GNOME Shell (43, and 48 as Tails 7 has it), its buttons
// clicked with the pointer as a person clicks them (see internal/gnomeshell), and what the
// banner shows read from the shell.
func TestRealShellReminderUpdateNow(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			// A backup created with the updates without the passphrase, as every backup is now:
			// its done notification offers nothing (TestRealShellKeySlotOffer has the offer).
			w := newWorldOn(t, s.Address(), nil, withState(eightDaysOld), withState(withKeySlot))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shots := newShots(t, s)
			w.start()

			r := waitBanner(ctx, t, s, "Your backup Tails is 8 days old", "Plug in your backup Tails to update it.")
			if want := []string{"Update now", "Remind me tomorrow", "Stop reminding"}; !slices.Equal(r.Actions, want) {
				t.Errorf("reminder actions %q; want %q", r.Actions, want)
			}
			shots.banner(ctx, "reminder-collapsed", "")
			answerBanner(ctx, t, s, shots, answer{
				buttons: []string{"Update now", "Remind me tomorrow", "Stop reminding"},
				shot:    "reminder", doc: "notification-reminder",
				click: "Update now",
				title: "Plug in your backup Tails", body: "The update starts as soon as it is plugged in.",
			})
			w.plugBackupWithKey()
			if n := waitBanner(ctx, t, s, "Backup updated: you can unplug it", "3 files changed, 12.5 MB copied"); len(n.Actions) != 0 {
				t.Errorf("the done banner of a backup updated without its passphrase has the buttons %q; want none", n.Actions)
			}
			shots.banner(ctx, "done", "notification-done")
			if got := w.state().LastSuccess; !got.After(time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("last success %v after Update now; want the update recorded", got)
			}
		})
	}
}

// A click on the reminder's text (not on a button) opens the Backup app on its overview.
func TestRealShellClickOpensTheApp(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			w := newWorldOn(t, s.Address(), nil, withState(eightDaysOld))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			w.start()
			waitBanner(ctx, t, s, "Your backup Tails is 8 days old", "")
			if err := s.ClickBody(ctx); err != nil {
				t.Fatal(err)
			}
			if got := w.waitOpened(); got != pageOverview {
				t.Errorf("the click opened the page %q; want %q", got, pageOverview)
			}
			// Only the app: the reminder was not answered.
			if st := w.state(); !st.Reminder.SnoozedUntil.IsZero() || st.Reminder.Disabled {
				t.Errorf("the click changed the reminders: %+v", st.Reminder)
			}
		})
	}
}

// The progress of an update, and its Cancel clicked on the banner after several progress
// updates: the update ends, cancelled. GNOME Shell 43 drops the buttons of a banner replaced in
// place (docs/gnome-shell.md): there the banner keeps Cancel and a steady text, never replaced,
// and the notification list shows the progress (notify.ShowProgress).
func TestRealShellProgressCancel(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			w := newWorldOn(t, s.Address(), nil)
			w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				for _, done := range []int64{10, 25, 42} {
					progress(wire.Event{Event: wire.EventProgress, Phase: "copy", BytesDone: done, BytesTotal: 100})
					w.clock.Advance(2 * time.Second)   // past Config.ProgressEvery
					time.Sleep(400 * time.Millisecond) // the shell shows each
				}
				<-ctx.Done()
				return nil, fmt.Errorf("%w (%w)", &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}, ctx.Err())
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shots := newShots(t, s)
			w.start()
			w.plugBackup()
			done := "42% done"
			var list gnomeshell.Notification
			err := poll(ctx, func() (bool, error) {
				ns, err := s.Notifications(ctx)
				i := slices.IndexFunc(ns, func(n gnomeshell.Notification) bool { return strings.Contains(n.Body, done) })
				if i >= 0 {
					list = ns[i]
				}
				return i >= 0, err
			})
			if err != nil {
				ns, _ := s.Notifications(context.Background())
				t.Fatalf("no notification says %q: %v (tray: %+v)", done, err, ns)
			}
			if list.Title != "Updating your backup Tails" {
				t.Errorf("the progress shows as %+v", list)
			}
			body := done
			if shell == gnomeshell.Host43 {
				body = progressSteadyBody
			}
			waitBanner(ctx, t, s, "Updating your backup Tails", body)
			shots.banner(ctx, "progress-collapsed", "")
			answerBanner(ctx, t, s, shots, answer{
				buttons: []string{"Cancel"},
				shot:    "progress", doc: "notification-progress",
				click: "Cancel",
				title: "Backup update cancelled", body: "marked incomplete",
			})
			shots.banner(ctx, "cancelled", "")
			if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultIncomplete {
				t.Errorf("last attempt %+v, want incomplete", st.LastAttempt)
			}
			if len(w.udisks.CallsOf("Lock")) != 1 {
				t.Error("the cancelled backup was not locked")
			}
		})
	}
}

// Thunderbird is open when the update starts: "Close Thunderbird and continue" closes it and
// the update goes on; "Skip its data this time" leaves it open and skips its data.
func TestRealShellCloseThunderbird(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			for _, tc := range []struct {
				button, doneBody string
				closed           bool
			}{
				{"Close Thunderbird", "3 files changed", true},
				{"Skip its data", "The data of Thunderbird Email Client was skipped this time.", false},
			} {
				t.Run(strings.Fields(tc.button)[0], func(t *testing.T) {
					s := gnomeshell.Start(t, shell)
					w := newWorldOn(t, s.Address(), nil)
					w.quiescer.Features, w.quiescer.Busy = busyThunderbird()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					shots := newShots(t, s)
					w.start()
					w.plugBackup()
					waitBanner(ctx, t, s, "Close Thunderbird?", "Thunderbird Email Client")
					doc := ""
					if tc.closed {
						shots.banner(ctx, "close-apps-collapsed", "")
						doc = "notification-close-apps"
					}
					answerBanner(ctx, t, s, shots, answer{
						buttons: []string{"Close Thunderbird", "Skip its data", "Cancel update"},
						shot:    "close-apps", doc: doc,
						click: tc.button,
						title: "Backup updated: you can unplug it", body: tc.doneBody,
					})
					if got := w.quiescer.Closed(); tc.closed != (len(got) == 1) {
						t.Errorf("closed %v after %q", got, tc.button)
					}
					if reqs := w.helper.Requests(); len(reqs) != 1 || tc.closed != (len(reqs[0].Skip) == 0) {
						t.Errorf("helper requests %+v after %q", reqs, tc.button)
					}
				})
			}
		})
	}
}

// The helper fails: the notification says why and what to do, and a click on it opens the
// Backup app where a new backup is created.
func TestRealShellHelperError(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			w := newWorldOn(t, s.Address(), nil)
			w.helper.Err = &wire.HelperError{Code: wire.CodeNoSpace, Message: "no space", Needed: 3_000_000_000, Available: 1_000_000_000}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shots := newShots(t, s)
			w.start()
			w.plugBackup()
			n := waitBanner(ctx, t, s, "Your backup Tails was not updated", "bigger USB stick")
			if len(n.Actions) != 0 {
				t.Errorf("the error shows the buttons %q; want none (a click on it opens the app)", n.Actions)
			}
			shots.banner(ctx, "error-collapsed", "")
			if err := s.ExpandBanner(ctx); err != nil { // the whole text
				t.Fatal(err)
			}
			shots.banner(ctx, "error", "notification-error")
			if err := s.ClickBody(ctx); err != nil {
				t.Fatal(err)
			}
			if got := w.waitOpened(); got != pageCreate {
				t.Errorf("the click opened the page %q; want %q", got, pageCreate)
			}
		})
	}
}

// On a backup Tails: the warning, then "Make this my main Tails" and its confirmation.
func TestRealShellBackupTails(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			w := newWorldOn(t, s.Address(), nil)
			w.markers.ownMarker = true
			w.helper.Report = &wire.Report{}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shots := newShots(t, s)
			w.start()
			waitBanner(ctx, t, s, "This is a backup Tails", "Changes you make here are overwritten")
			shots.banner(ctx, "backup-tails-collapsed", "")
			answerBanner(ctx, t, s, shots, answer{
				buttons: []string{"Make this my main Tails"},
				shot:    "backup-tails",
				click:   "Make this my main Tails",
				title:   "Make this your main Tails?", body: "only if your main Tails is lost or broken",
			})
			answerBanner(ctx, t, s, shots, answer{
				buttons: []string{"Make this my main Tails", "Cancel"},
				shot:    "promote-confirm",
				click:   "Make this my main Tails",
				title:   "This is now your main Tails",
			})
			if reqs := w.helper.Requests(); len(reqs) != 1 || reqs[0].Op != wire.OpPromote {
				t.Fatalf("helper requests %+v, want one promote", reqs)
			}
		})
	}
}

// A plugged-in backup is updated after its passphrase is typed into pinentry-gnome3's real
// prompt: wrong once (the prompt comes again, saying so), then right.
func TestRealShellPassphraseWrongThenRight(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			log, _ := logtest.New(t)
			p := s.Pinentry(t, log)
			w := newWorldOn(t, s.Address(), nil, withAsker(p))
			// Both prompts within it, on a loaded machine too (one minute was once too short
			// with the e2e guest running beside).
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			shots := newShots(t, s)
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
				// What a person reads: the heading says what is asked, the text which stick
				// and why.
				if lines := strings.Split(text, "\n"); lines[0] != "Passphrase of your backup Tails" ||
					!strings.Contains(text, "Kingston DataTraveler") || !strings.Contains(text, "to update it") {
					t.Errorf("prompt %d shows %q", i+1, text)
				}
				time.Sleep(500 * time.Millisecond) // the dialog's animation
				if err := s.ClickPasswordEntry(ctx); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					shots.prompt(ctx, "passphrase", "notification-passphrase")
				} else {
					shots.prompt(ctx, "passphrase-again", "")
				}
				if err := s.TypeText(ctx, pass); err != nil {
					t.Fatal(err)
				}
			}
			waitBanner(ctx, t, s, "Backup updated: you can unplug it", "")
			w.noPassphraseInLogs()
		})
	}
}

// TestRealShellKeySlotOffer: a backup paired before the updates without the passphrase
// existed is offered them once, by the done notification itself: the banner says "done" and
// carries the offer's button (a notification of its own would take the place of the done
// banner); the button, clicked with the pointer, takes the offer.
func TestRealShellKeySlotOffer(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			w := newWorldOn(t, s.Address(), nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shots := newShots(t, s)
			w.start()
			w.plugBackup()
			n := waitBanner(ctx, t, s, "Backup updated: you can unplug it", "Next time, a key kept in this Tails can open it")
			if want := []string{"Update without passphrase next time"}; !slices.Equal(n.Actions, want) {
				t.Errorf("the done banner's actions %q; want %q", n.Actions, want)
			}
			shots.banner(ctx, "done-offer-collapsed", "")
			answerBanner(ctx, t, s, shots, answer{
				buttons: []string{"Update without passphrase next time"},
				shot:    "done-offer", doc: "notification-done-offer",
				click: "Update without passphrase next time",
				title: "Updates without the passphrase", body: "type its passphrase once more",
			})
			if st := w.state(); st.Backup(backupUUID) == nil || !st.Backup(backupUUID).KeySlotWanted {
				t.Errorf("the offer taken is not recorded: %+v", st.Backups)
			}
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
