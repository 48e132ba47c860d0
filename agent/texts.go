package agent

import (
	"fmt"
	"slices"
	"time"

	"tails-backup/notify"
	"tails-backup/session"
)

// The texts the user sees, in one place: docs/technical-details.md quotes them. Each error says what
// happened and what to do next, in one or two sentences.

// Action keys of our notifications.
const (
	actUpdateNow   = "update-now"
	actSnooze      = "snooze"
	actStopRemind  = "stop-reminding"
	actCancel      = "cancel"
	actCloseApp    = "close-app"
	actSkipApp     = "skip-app"
	actPromote     = "promote"
	actPromoteSure = "promote-confirm"
)

const iconBackup = "drive-removable-media"

// openAppLabel names the default action: GNOME Shell shows no button for it, a click on the
// notification invokes it.
const openAppLabel = "Open Tails Backup"

// clickOpensApp is n with a default action: a click on it opens the Backup app.
func clickOpensApp(n notify.Notification) notify.Notification {
	n.Actions = append(slices.Clip(n.Actions), notify.Action{Key: notify.DefaultActionKey, Label: openAppLabel})
	return n
}

func reminderNote(days int) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: fmt.Sprintf("Your backup Tails is %s old", session.Plural(days, "day")),
		Body:    "Plug in your backup Tails to update it. The update runs in the background.",
		Actions: []notify.Action{
			{Key: actUpdateNow, Label: "Update now", Command: "To update, plug in your backup Tails."},
			{Key: actSnooze, Label: "Remind me tomorrow", Command: "To be reminded tomorrow, run: tails-backup reminders snooze"},
			{Key: actStopRemind, Label: "Stop reminding", Command: "To stop these reminders, run: tails-backup reminders off"},
		},
		Timeout: notify.TimeoutNever,
	}
}

func waitingNote() notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: "Plug in your backup Tails",
		Body:    "The update starts as soon as it is plugged in.",
		Actions: []notify.Action{{Key: actCancel, Label: "Cancel", Command: ""}},
		Timeout: notify.TimeoutNever,
	}
}

// pausedNote answers "Update now" while 'tails-backup restore' holds the updates off.
// byUpdate: only 'tails-backup update' holds them off, not a restore.
func pausedNote(byUpdate bool) notify.Notification {
	body := "A restore from your backup is running, so Tails Backup does not update it until the restore has finished."
	if byUpdate {
		body = "An update started with 'tails-backup update' is running, so Tails Backup does not start another one until it has finished."
	}
	return notify.Notification{
		Icon:    iconBackup,
		Summary: "Your backup Tails is not updated now",
		Body:    body,
	}
}

func foundNote() notify.Notification {
	return notify.Notification{
		Icon:     iconBackup,
		Summary:  "Updating your backup Tails",
		Body:     "Enter the passphrase of your backup Tails to start.",
		Actions:  []notify.Action{{Key: actCancel, Label: "Cancel"}},
		Timeout:  notify.TimeoutNever,
		Resident: true,
	}
}

func progressNote(percent int, left time.Duration, leftKnown bool) notify.Notification {
	body := fmt.Sprintf("%d%% done. Do not unplug your backup Tails.", percent)
	if leftKnown {
		body = fmt.Sprintf("%d%% done, %s left. Do not unplug your backup Tails.", percent, aboutDuration(left))
	}
	return notify.Notification{
		Icon:        iconBackup,
		Summary:     "Updating your backup Tails",
		Body:        body,
		Actions:     []notify.Action{{Key: actCancel, Label: "Cancel"}},
		Timeout:     notify.TimeoutNever,
		Resident:    true,
		HasProgress: true,
		Progress:    percent,
	}
}

// progressSteadyBody is the text of the progress banner where the shell cannot change a banner
// without dropping its Cancel (GNOME Shell 43, notify.ShowProgress): it stays true while the
// update goes on, and says where the progress is (the notification list, under the clock).
// What to do comes first: a collapsed banner shows about 50 characters.
const progressSteadyBody = "Do not unplug your backup Tails. To see how far the update is, click the clock at the top of the screen."

func quiesceNote(app, featureName string) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: fmt.Sprintf("Close %s?", app),
		// GNOME Shell 43 shows the first 50 characters or so until the banner is expanded:
		// what to do comes first.
		Body: fmt.Sprintf("Close it to back up its data, or skip that data this time (your backup keeps its previous copy): "+
			"while %s is open, the data of %s might be copied half-written.", app, featureName),
		Actions: []notify.Action{
			// GNOME Shell 48 gives the three buttons a third of the banner each and cuts longer
			// labels with "…": about 15 characters each.
			{Key: actCloseApp, Label: fmt.Sprintf("Close %s", app)},
			{Key: actSkipApp, Label: "Skip its data"},
			{Key: actCancel, Label: "Cancel update"},
		},
		Timeout:  notify.TimeoutNever,
		Resident: true,
	}
}

// systemAppNote asks to wait for an application the session cannot close (the package
// manager runs as root).
func systemAppNote(app, featureName string) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: fmt.Sprintf("%s is running", app),
		Body: fmt.Sprintf("Wait until it has finished, then choose \"Try again\"; or skip the data of %s this time (your backup keeps its previous copy): "+
			"while it runs, that data might be copied half-written.", featureName),
		Actions: []notify.Action{
			{Key: actCloseApp, Label: "Try again"},
			{Key: actSkipApp, Label: "Skip its data"},
			{Key: actCancel, Label: "Cancel update"},
		},
		Timeout:  notify.TimeoutNever,
		Resident: true,
	}
}

func stillRunningNote(app string) notify.Notification {
	n := quiesceNote(app, "")
	n.Summary = fmt.Sprintf("%s is still open", app)
	n.Body = fmt.Sprintf("Close it yourself (save your work first), then choose \"Close %s\" again, or skip its data this time.", app)
	return n
}

func doneNote(r Summary) notify.Notification {
	// The title says that it is up to date; the numbers come first (GNOME Shell 43 shows the
	// first 50 characters or so until the banner is expanded).
	body := fmt.Sprintf("%s changed, %s copied.", session.Plural(int(r.Changed), "file"), session.SizeText(r.BytesCopied))
	if r.SystemFailed {
		body = fmt.Sprintf("Your data is up to date: %s changed, %s copied.", session.Plural(int(r.Changed), "file"), session.SizeText(r.BytesCopied))
	}
	if r.System != "" {
		body += fmt.Sprintf(" Its Tails system was updated to %s.", r.System)
	}
	if r.Skipped != "" {
		body += fmt.Sprintf(" The data of %s was skipped this time.", r.Skipped)
	}
	if r.ErrorCount > 0 {
		body += fmt.Sprintf(" %s could not be copied: they keep their previous copy, and the next update tries again.", session.Plural(int(r.ErrorCount), "file"))
	}
	return notify.Notification{
		Icon:    iconBackup,
		Summary: "Backup updated: you can unplug it",
		Body:    body,
		Timeout: 0,
	}
}

// Summary is what the done notification tells about an update.
type Summary struct {
	Changed     int64
	BytesCopied int64
	ErrorCount  int64
	Skipped     string // the features whose data was skipped, for the user
	// System is the Tails version the backup's system partition was updated to ("" if it
	// was already up to date, or not updated); SystemFailed says its update failed.
	System       string
	SystemFailed bool
}

// systemProgressNote shows the refresh of the backup's system partition.
func systemProgressNote(percent int, left time.Duration, leftKnown bool) notify.Notification {
	n := progressNote(percent, left, leftKnown)
	n.Summary = "Updating the Tails system on your backup"
	return n
}

// systemErrorNote says why the backup's system partition was not refreshed (its Persistent
// Storage was) and what to do.
func systemErrorNote(e *session.SystemError) notify.Notification {
	summary, body := "The Tails system on your backup was not updated", ""
	switch e.Kind {
	case session.SystemCancelled:
		summary = "Update of the Tails system on your backup cancelled"
		body = "Your data is backed up; plug your backup Tails in again to finish updating its Tails system."
	case session.SystemNoSpace:
		body = "Its system partition is too small for this version of Tails: create a new backup on a bigger USB stick with 'tails-backup create'."
	case session.SystemGone:
		body = "Your backup Tails was unplugged while its Tails system was updated: plug it in again to finish."
	case session.SystemUnreadable:
		body = "Its system partition could not be opened: plug your backup Tails in again to try again."
	case session.SystemRefused:
		body = e.Helper.Message
	case session.SystemBootloader:
		summary = "Your backup Tails might not start on older computers"
		body = "Its boot loader for computers without UEFI could not be installed: plug your backup Tails in again to try again."
	default:
		body = "The update of its Tails system stopped unexpectedly: plug your backup Tails in again to finish it."
	}
	return errorNote(summary, body)
}

func unpairedNote() notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: "This Tails USB stick is not your backup",
		Body: "Tails Backup only updates a backup Tails that you paired, so it did not touch this one. " +
			"To make it your backup, run 'tails-backup pair', or create a new backup on it with 'tails-backup create' (this erases it).",
	}
}

func errorNote(summary, body string) notify.Notification {
	return notify.Notification{
		Icon:    "dialog-error",
		Summary: summary,
		Body:    body,
		Urgency: notify.UrgencyNormal,
	}
}

func backupTailsNote() notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: "This is a backup Tails",
		Body: "Changes you make here are overwritten at the next update from your main Tails. " +
			"If your main Tails is lost or broken, make this one your main Tails.",
		Actions: []notify.Action{{Key: actPromote, Label: "Make this my main Tails", Command: "To make this your main Tails, run: tails-backup promote"}},
		Timeout: notify.TimeoutNever,
	}
}

func promoteConfirmNote() notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: "Make this your main Tails?",
		Body: "Do this only if your main Tails is lost or broken: this Tails will no longer be updated from it, " +
			"and you can then make a new backup of this one.",
		Actions: []notify.Action{
			{Key: actPromoteSure, Label: "Make this my main Tails", Command: "To confirm, run: tails-backup promote"},
			{Key: actCancel, Label: "Cancel"},
		},
		Timeout: notify.TimeoutNever,
	}
}

func promotedNote() notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: "This is now your main Tails",
		Body:    "Create a new backup of it with 'tails-backup create' on another USB stick.",
	}
}

// aboutDuration rounds a time left the way people say it.
func aboutDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < 90*time.Second:
		return "about a minute"
	case d < time.Hour:
		return fmt.Sprintf("about %d minutes", int((d+30*time.Second)/time.Minute))
	default:
		h := int(d / time.Hour)
		m := int((d % time.Hour) / time.Minute)
		if m == 0 {
			return fmt.Sprintf("about %s", session.Plural(h, "hour"))
		}
		return fmt.Sprintf("about %s %s", session.Plural(h, "hour"), session.Plural(m, "minute"))
	}
}

// The texts of the D-Bus API (api.go), which the Backup app shows as they are.
const (
	apiStepUnlock          = "Unlocking your backup Tails."
	apiStepCopy            = "Copying your Persistent Storage."
	apiStepPromote         = "Making this Tails your main Tails."
	apiStepSystem          = "Updating the Tails system of your backup."
	apiTextNoAnswer        = "The backup agent did not answer in time. Try again; if it does not answer again, restart Tails."
	apiTextBusy            = "Another backup task is under way: wait for it to finish, or cancel it."
	apiTextIsBackup        = "This Tails is itself a backup Tails: it is updated from its main Tails, not the other way around."
	apiTextNotBackup       = "This Tails is already your main Tails: there is nothing to promote."
	apiTextNoPersistence   = "Your Persistent Storage is not unlocked, so there is nothing to back up: restart Tails and unlock it in the Welcome Screen."
	apiTextPausedByRestore = "A restore from your backup is running, so Tails Backup does not update it until the restore has finished."
	apiTextPausedByUpdate  = "An update started with 'tails-backup update' is running, so Tails Backup does not start another one until it has finished."
	apiTextNotPlugged      = "Your backup Tails is not plugged in: plug it in, and the update starts."
	apiTextAlreadyPaired   = "This stick is already your backup Tails: plug it in to update it."
	apiTextNotYourBackup   = "This stick is not paired as your backup Tails: pair it first, or choose your backup Tails."
	apiTextPromoteNoCancel = "Making this Tails your main Tails cannot be cancelled: it takes only a moment."
	apiTextNoJob           = "That task is not running any more: it has already finished."
	apiTextNoQuestion      = "That question is no longer asked: it was answered, or its task ended."
	apiTextBadChoice       = "%q is not one of the answers to that question: choose one of those it offers."
	apiTextNotSaved        = "Your reminder settings could not be saved (%s). Check that your Persistent Storage is unlocked and not full, then try again."
)
