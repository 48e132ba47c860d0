package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/gnomeshell"
	"tails-backup/internal/logtest"
	"tails-backup/l10n"
	"tails-backup/l10n/l10ntest"
	"tails-backup/notify"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// arabicWorld starts GNOME Shell 48 in Arabic, as Tails' Welcome Screen sets it, and a world
// whose agent speaks Arabic from the project's catalog; opts go to the world.
func arabicWorld(t *testing.T, opts ...worldOpt) (*gnomeshell.Session, *world, *l10n.Locale) {
	t.Helper()
	s := gnomeshell.StartIn(t, gnomeshell.Trixie48, "ar_EG")
	ar := l10n.Load([]string{"ar_EG", "ar"}, l10ntest.Catalogs(t, "ar"))
	if ar.Lang() != "ar" {
		t.Fatalf("the Arabic catalog was not loaded: %q", ar.Lang())
	}
	w := newWorldOn(t, s.Address(), nil, opts...)
	w.agent.cfg.Loc, w.agent.loc = ar, ar
	return s, w, ar
}

// TestRealShellArabic: the agent's notifications and its passphrase prompt in GNOME Shell 48 in
// Arabic, written right to left, with their pictures in the user guide's folder
// (docs/screenshots/ar by `make screenshots`): the reminder, the update's progress, the question
// about an open application, the update done, an error, the prompt. What the banners show is
// read from the shell and compared with the agent's texts in Arabic.
func TestRealShellArabic(t *testing.T) {
	t.Run("ReminderUpdateNow", func(t *testing.T) {
		s, w, ar := arabicWorld(t, withState(eightDaysOld), withState(withKeySlot))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shots := newShots(t, s)
		w.start()
		rem := reminderNote(ar, 8)
		waitBanner(ctx, t, s, rem.Summary, rem.Body)
		var buttons []string
		for _, a := range rem.Actions {
			buttons = append(buttons, a.Label)
		}
		answerBanner(ctx, t, s, shots, answer{
			buttons: buttons,
			shot:    "reminder", doc: "notification-reminder",
			click: ar.Tr("Update now"),
			title: waitingNote(ar).Summary, body: waitingNote(ar).Body,
		})
		w.plugBackupWithKey()
		// The size copied, in Arabic digits' separator and unit, isolated in the sentence.
		waitBanner(ctx, t, s, ar.Tr(doneSummary), ar.Isolate(ar.Size(12_500_000)))
		shots.banner(ctx, "done", "notification-done")
	})

	t.Run("KeySlotOffer", func(t *testing.T) {
		s, w, ar := arabicWorld(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shots := newShots(t, s)
		w.start()
		w.plugBackup()
		var offer notify.Notification
		offerKeySlotOn(ar, &offer)
		n := waitBanner(ctx, t, s, ar.Tr(doneSummary), strings.TrimSpace(offer.Body))
		label := offer.Actions[0].Label
		if len(n.Actions) != 1 || n.Actions[0] != label {
			t.Errorf("the done banner's actions %q; want %q", n.Actions, label)
		}
		shots.banner(ctx, "done-offer-collapsed", "")
		answerBanner(ctx, t, s, shots, answer{
			buttons: []string{label},
			shot:    "done-offer", doc: "notification-done-offer",
			click: label,
			title: keySlotWantedNote(ar).Summary,
		})
		if st := w.state(); st.Backup(backupUUID) == nil || !st.Backup(backupUUID).KeySlotWanted {
			t.Errorf("the offer taken is not recorded: %+v", st.Backups)
		}
	})

	t.Run("ProgressCancel", func(t *testing.T) {
		s, w, ar := arabicWorld(t)
		w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
			for _, done := range []int64{10, 25, 42} {
				progress(wire.Event{Event: wire.EventProgress, Phase: "copy", BytesDone: done, BytesTotal: 100})
				w.clock.Advance(2 * time.Second)
				time.Sleep(400 * time.Millisecond)
			}
			<-ctx.Done()
			return nil, fmt.Errorf("%w (%w)", &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}, ctx.Err())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shots := newShots(t, s)
		w.start()
		w.plugBackup()
		waitBanner(ctx, t, s, ar.Tr(updatingSummary), "42")
		answerBanner(ctx, t, s, shots, answer{
			buttons: []string{ar.Tr("Cancel")},
			shot:    "progress", doc: "notification-progress",
			click: ar.Tr("Cancel"),
			title: ar.Tr("Backup update cancelled"),
			body:  ar.Tr("Your backup is marked incomplete: the next update finishes it. You can unplug it."),
		})
	})

	t.Run("CloseThunderbird", func(t *testing.T) {
		s, w, ar := arabicWorld(t)
		w.quiescer.Features, w.quiescer.Busy = busyThunderbird()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shots := newShots(t, s)
		w.start()
		w.plugBackup()
		q := quiesceNote(ar, "Thunderbird", "")
		waitBanner(ctx, t, s, q.Summary, "Thunderbird")
		var buttons []string
		for _, a := range q.Actions {
			buttons = append(buttons, a.Label)
		}
		answerBanner(ctx, t, s, shots, answer{
			buttons: buttons,
			shot:    "close-apps", doc: "notification-close-apps",
			click: ar.Tr("Close %s", "Thunderbird"),
			title: ar.Tr(doneSummary),
		})
	})

	t.Run("HelperError", func(t *testing.T) {
		s, w, ar := arabicWorld(t)
		w.helper.Err = &wire.HelperError{Code: wire.CodeNoSpace, Message: "no space", Needed: 3_000_000_000, Available: 1_000_000_000}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shots := newShots(t, s)
		w.start()
		w.plugBackup()
		// The sizes in the sentence, and the command to run, which is Latin.
		n := waitBanner(ctx, t, s, ar.Tr("Your backup Tails was not updated"), ar.Isolate(ar.Size(2_000_000_000)))
		if !strings.Contains(n.Body, "tails-backup create") {
			t.Errorf("the error says %q; want the command to run", n.Body)
		}
		if err := s.ExpandBanner(ctx); err != nil { // the whole text
			t.Fatal(err)
		}
		shots.banner(ctx, "error", "notification-error")
	})

	t.Run("Passphrase", func(t *testing.T) {
		s := gnomeshell.StartIn(t, gnomeshell.Trixie48, "ar_EG")
		ar := l10n.Load([]string{"ar_EG", "ar"}, l10ntest.Catalogs(t, "ar"))
		log, _ := logtest.New(t)
		w := newWorldOn(t, s.Address(), nil, withAsker(s.Pinentry(t, log)))
		w.agent.cfg.Loc, w.agent.loc = ar, ar
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		shots := newShots(t, s)
		w.start()
		w.plugBackup()
		heading := ar.Tr("Passphrase of your backup Tails")
		var text string
		if err := poll(ctx, func() (bool, error) {
			var err error
			text, err = s.PromptText(ctx)
			return text != "", err
		}); err != nil {
			t.Fatalf("prompt: %v (last shown: %q)", err, text)
		}
		t.Logf("prompt: %q", text)
		// The heading, then the stick's name isolated in the Arabic sentence.
		if lines := strings.Split(text, "\n"); lines[0] != heading || !strings.Contains(text, "\u2068Kingston DataTraveler\u2069") {
			t.Errorf("the prompt shows %q; want the heading %q and the stick's name isolated", text, heading)
		}
		time.Sleep(500 * time.Millisecond) // the dialog's animation
		if err := s.ClickPasswordEntry(ctx); err != nil {
			t.Fatal(err)
		}
		shots.prompt(ctx, "passphrase", "notification-passphrase")
		if err := s.TypeText(ctx, udiskstest.BackupPassphrase); err != nil {
			t.Fatal(err)
		}
		waitBanner(ctx, t, s, ar.Tr(doneSummary), "")
		w.noPassphraseInLogs()
	})
}
