package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tails-backup/notify"
	"tails-backup/notify/notifytest"
	"tails-backup/pairing"
	"tails-backup/wire"
)

// A click on a notification (its default action, no button) opens the Backup app on the page
// that deals with it, and changes nothing else.
func TestClickOpensTheApp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *world)
		note  string // the summary of the notification clicked
		page  string
	}{
		{"reminder", func(w *world) { w.withStore(eightDaysOld) }, "Your backup Tails is 8 days old", pageOverview},
		{"unpaired stick", func(w *world) {
			spec := backupSpec()
			spec.LUKSUUID, spec.Serial, spec.Name = strayUUID, "STRAY", "sdd"
			w.udisks.AddStick(spec)
		}, "This Tails USB stick is not your backup", pagePair},
		{"backup Tails", func(w *world) { w.markers.ownMarker = true }, "This is a backup Tails", pagePromote},
		{"update in progress", func(w *world) {
			w.helper.WaitForCancel = true
			w.helper.Progress = []wire.Event{{Event: wire.EventProgress, Phase: "copy", BytesDone: 10, BytesTotal: 100}}
			w.plugBackup()
		}, "Updating your backup Tails", pageOverview},
		{"done", func(w *world) { w.plugBackup() }, "Backup updated: you can unplug it", pageOverview},
		{"helper error", func(w *world) {
			w.helper.Err = &wire.HelperError{Code: wire.CodeInternal, Message: "input/output error"}
			w.plugBackup()
		}, "Your backup Tails was not updated", pageOverview},
		{"stick too small", func(w *world) {
			w.helper.Err = &wire.HelperError{Code: wire.CodeNoSpace, Message: "no space", Needed: 3_000_000_000, Available: 1_000_000_000}
			w.plugBackup()
		}, "Your backup Tails was not updated", pageCreate},
		{"backup of another Tails", func(w *world) {
			w.markers.backupSource = strayUUID
			w.plugBackup()
		}, "This backup Tails belongs to another Tails", pageCreate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(w)
			w.start()
			n := w.waitNote(tc.note)
			if strings.HasPrefix(tc.note, "Updating") {
				n = w.notes.WaitFor(t, func(n notifytest.Notification) bool { return strings.Contains(n.Body, "10% done") }, wait)
			}
			w.notes.Click(t, n.ID, notify.DefaultActionKey)
			if got := w.waitOpened(); got != tc.page {
				t.Errorf("the click opened the page %q; want %q", got, tc.page)
			}
			switch tc.name {
			case "reminder":
				// Not an answer to the reminder: nothing snoozed or stopped, no "Plug in" note.
				time.Sleep(200 * time.Millisecond)
				if st := w.state(); !st.Reminder.SnoozedUntil.IsZero() || st.Reminder.Disabled {
					t.Errorf("the click changed the reminders: %+v", st.Reminder)
				}
				for _, n := range w.notes.Notifications() {
					if n.Summary == "Plug in your backup Tails" {
						t.Error("the click was taken for Update now")
					}
				}
			case "update in progress":
				// GNOME Shell 43 invokes the default action of a notification replaced N
				// times N times for one click: the app opens once.
				w.notes.Click(t, n.ID, notify.DefaultActionKey)
				// The update goes on: the click is not Cancel; Cancel still is.
				time.Sleep(200 * time.Millisecond)
				if len(w.opened) != 0 {
					t.Errorf("one click opened the app %d more times", len(w.opened))
				}
				if st := w.state(); st.LastAttempt.Result != pairing.ResultSuccess || len(w.udisks.CallsOf("Lock")) != 0 {
					t.Fatalf("the click ended the update: %+v", st.LastAttempt)
				}
				w.notes.Click(t, n.ID, actCancel)
				w.waitNote("Backup update cancelled")
			}
		})
	}
}

func eightDaysOld(s *pairing.State) {
	s.RecordAttempt(pairing.Attempt{Time: time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC), Backup: backupUUID, Result: pairing.ResultSuccess})
	s.LastSuccess = time.Date(2026, 11, 15, 10, 0, 0, 0, time.UTC)
	s.Backups[0].LastSuccess = s.LastSuccess
}

// LaunchApp runs tails-backup-app --page PAGE from PATH, with the agent's environment, and
// does not wait for it.
func TestLaunchApp(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ran")
	script := "#!/bin/sh\necho \"$* $TB_MARK\" > " + out + ".tmp && mv " + out + ".tmp " + out + "\nsleep 3\n"
	if err := os.WriteFile(filepath.Join(dir, "tails-backup-app"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("TB_MARK", "session-env")
	start := time.Now()
	if err := LaunchApp(context.Background(), "pair"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("LaunchApp waited %v for the app", d)
	}
	var got []byte
	for deadline := time.Now().Add(wait); ; {
		var err error
		if got, err = os.ReadFile(out); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(got) != "--page pair session-env\n" {
		t.Errorf("the app got %q; want \"--page pair session-env\\n\"", got)
	}
	if err := LaunchApp(context.Background(), "overview"); err != nil {
		t.Fatal(err)
	}
	// Its output written before the test ends: a write during t.TempDir's removal fails the
	// removal (seen: "directory not empty").
	for deadline := time.Now().Add(wait); ; {
		if got, err := os.ReadFile(out); (err == nil && string(got) == "--page overview session-env\n") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Setenv("PATH", t.TempDir()) // no tails-backup-app: /usr/bin's, if any, or an error
	if _, err := os.Stat(appProgram); os.IsNotExist(err) {
		if err := LaunchApp(context.Background(), "overview"); err == nil {
			t.Error("LaunchApp without the app said nothing")
		}
	}
}
