package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"tails-backup/dbusapi"
	"tails-backup/internal/logtest"
	"tails-backup/l10n"
	"tails-backup/l10n/l10ntest"
	"tails-backup/wire"
)

// frenchWorld is a world whose agent speaks French, with the project's catalog compiled as
// `make` installs it.
func frenchWorld(t *testing.T) *world {
	t.Helper()
	loc := l10n.Load([]string{"fr"}, l10ntest.Catalogs(t, "fr"))
	if loc.Lang() != "fr" {
		t.Fatalf("the French catalog was not loaded: %q", loc.Lang())
	}
	w := newWorld(t)
	w.agent.cfg.Loc, w.agent.loc = loc, loc
	return w
}

// TestUpdateInTheSessionLanguage: the notifications of an update, its passphrase prompt and the
// texts of its API job are in the session's language.
func TestUpdateInTheSessionLanguage(t *testing.T) {
	w := frenchWorld(t)
	_, sigs := w.serveAPI()
	w.start()
	w.plugBackup()

	done := w.waitNote("Sauvegarde à jour : vous pouvez la débrancher")
	// The first update typed with the passphrase: the done notification offers the updates
	// without it.
	if want := "3 fichiers modifiés, 12,5 Mo copiés. La prochaine fois, une clé gardée dans ce Tails peut l'ouvrir, sans phrase de passe."; done.Body != want {
		t.Errorf("done body %q, want %q", done.Body, want)
	}
	prompts := w.asker.Prompts()
	if len(prompts) == 0 {
		t.Fatal("no passphrase asked")
	}
	if p := prompts[0]; p.Description != "Saisissez la phrase de passe de votre Tails de sauvegarde (Kingston DataTraveler, 17,2 Go) pour le mettre à jour." ||
		p.Prompt != "Phrase de passe de votre Tails de sauvegarde" {
		t.Errorf("passphrase prompt %+v", p)
	}
	var steps []string
	timeout := time.After(wait)
	for finished := false; !finished; {
		select {
		case s := <-sigs:
			if !strings.HasPrefix(s.Job, "update-") {
				continue
			}
			switch s.Name {
			case dbusapi.SignalProgress:
				steps = append(steps, s.Progress.Step)
			case dbusapi.SignalJobFinished:
				finished = true
				if want := "Sauvegarde à jour : vous pouvez la débrancher. 3 fichiers modifiés, 12,5 Mo copiés."; s.Result.Text != want {
					t.Errorf("the job's result %q, want %q", s.Result.Text, want)
				}
			}
		case <-timeout:
			t.Fatalf("the update job did not finish within %v; steps %q", wait, steps)
		}
	}
	for _, want := range []string{"Déverrouillage de votre Tails de sauvegarde.", "Copie de votre Stockage persistant."} {
		if !strings.Contains(strings.Join(steps, "\n"), want) {
			t.Errorf("job steps %q, want %q among them", steps, want)
		}
	}
}

// TestAPITextsInTheSessionLanguage: what the API refuses, and what a job waiting for its stick
// says, is in the session's language.
func TestAPITextsInTheSessionLanguage(t *testing.T) {
	w := frenchWorld(t)
	verifyHelper(w, nil, wire.Report{})
	c, sigs := w.serveAPI()
	w.start()
	ctx := logtest.Context(t)

	_, err := c.Promote(ctx)
	var e *dbusapi.Error
	if !errors.As(err, &e) || e.Text != "Ce Tails est déjà votre Tails principal : il n'y a rien à promouvoir." {
		t.Errorf("Promote on the main Tails: %v", err)
	}
	job, err := c.Verify(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	p := nextSignal(t, sigs, job, dbusapi.SignalProgress).Progress
	if want := "Branchez votre Tails de sauvegarde : la comparaison commence dès qu'il est branché."; p.Step != want || !p.WaitingForStick {
		t.Errorf("waiting step %q, want %q", p.Step, want)
	}
	if err := c.Cancel(ctx, job); err != nil {
		t.Fatal(err)
	}
	if r := nextSignal(t, sigs, job, dbusapi.SignalJobFinished).Result; r.Text != "Annulé avant que la clé soit branchée, rien n'a donc été changé." {
		t.Errorf("cancelled while waiting: %q", r.Text)
	}
}

// TestNotificationTextsWithoutCatalogs: a Locale without a catalog speaks the English texts,
// byte for byte.
func TestNotificationTextsWithoutCatalogs(t *testing.T) {
	loc := l10n.Load([]string{"fr"}, t.TempDir())
	for _, tc := range []struct{ got, want string }{
		{reminderNote(loc, 1).Summary, "Your backup Tails is 1 day old"},
		{doneNote(loc, Summary{Changed: 1, BytesCopied: 1500}).Body, "1 file changed, 1.5 kB copied."},
		{percentText(loc, 45, 125*time.Minute, true), "45% done, about 2 hours 5 minutes left."},
		{restoreQuestion(loc, true).Choices[1].Label, "Restore from the other Tails"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestRestoreStepsInTheSessionLanguage: the restore's job recognizes the flow's sentences that
// start its steps in the session's language, not only in English.
func TestRestoreStepsInTheSessionLanguage(t *testing.T) {
	fr := l10n.Load([]string{"fr"}, l10ntest.Catalogs(t, "fr"))
	for _, loc := range []*l10n.Locale{nil, fr} {
		opening := loc.Tr("Opening the backup on %s.")
		said := loc.Tr("Opening the backup on %s.", "Kingston (17,2 Go, /dev/sdb)")
		if !textMatches(said, opening) {
			t.Errorf("%q: %q not recognized", loc.Lang(), said)
		}
		if other := loc.Tr("Restoring from the backup on %s; do not unplug it.", "K"); textMatches(other, opening) {
			t.Errorf("%q: %q taken for the opening", loc.Lang(), other)
		}
	}
	if fr.Tr("Opening the backup on %s.") == "Opening the backup on %s." {
		t.Error("the French catalog does not translate the restore's opening")
	}
}
