package agent

import (
	"slices"
	"time"

	"tails-backup/l10n"
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
func clickOpensApp(loc *l10n.Locale, n notify.Notification) notify.Notification {
	n.Actions = append(slices.Clip(n.Actions), notify.Action{Key: notify.DefaultActionKey, Label: loc.Tr(openAppLabel)})
	return n
}

func reminderNote(loc *l10n.Locale, days int) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.TrN("Your backup Tails is %d day old", "Your backup Tails is %d days old", days, days),
		Body:    loc.Tr("Plug in your backup Tails to update it. The update runs in the background."),
		Actions: []notify.Action{
			{Key: actUpdateNow, Label: loc.Tr("Update now"), Command: loc.Tr("To update, plug in your backup Tails.")},
			{Key: actSnooze, Label: loc.Tr("Remind me tomorrow"), Command: loc.Tr("To be reminded tomorrow, run: tails-backup reminders snooze")},
			{Key: actStopRemind, Label: loc.Tr("Stop reminding"), Command: loc.Tr("To stop these reminders, run: tails-backup reminders off")},
		},
		Timeout: notify.TimeoutNever,
	}
}

func waitingNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("Plug in your backup Tails"),
		Body:    loc.Tr("The update starts as soon as it is plugged in."),
		Actions: []notify.Action{{Key: actCancel, Label: loc.Tr("Cancel"), Command: ""}},
		Timeout: notify.TimeoutNever,
	}
}

// pausedNote answers "Update now" while 'tails-backup restore' holds the updates off.
// byUpdate: only 'tails-backup update' holds them off, not a restore.
func pausedNote(loc *l10n.Locale, byUpdate bool) notify.Notification {
	body := loc.Tr(apiTextPausedByRestore)
	if byUpdate {
		body = loc.Tr(apiTextPausedByUpdate)
	}
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("Your backup Tails is not updated now"),
		Body:    body,
	}
}

func foundNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:     iconBackup,
		Summary:  loc.Tr(updatingSummary),
		Body:     loc.Tr("Enter the passphrase of your backup Tails to start."),
		Actions:  []notify.Action{{Key: actCancel, Label: loc.Tr("Cancel")}},
		Timeout:  notify.TimeoutNever,
		Resident: true,
	}
}

// updatingSummary is the title of the notifications of an update under way.
const updatingSummary = "Updating your backup Tails"

func progressNote(loc *l10n.Locale, percent int, left time.Duration, leftKnown bool) notify.Notification {
	// TRANSLATORS: %d is a percentage; "%%" writes the percent sign.
	body := loc.Tr("%d%% done. Do not unplug your backup Tails.", percent)
	if leftKnown {
		// TRANSLATORS: %[1]d is a percentage ("%%" writes the percent sign), %[2]s the time left ("about 3 minutes").
		body = loc.Tr("%[1]d%% done, %[2]s left. Do not unplug your backup Tails.", percent, aboutDuration(loc, left))
	}
	return notify.Notification{
		Icon:        iconBackup,
		Summary:     loc.Tr(updatingSummary),
		Body:        body,
		Actions:     []notify.Action{{Key: actCancel, Label: loc.Tr("Cancel")}},
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

func quiesceNote(loc *l10n.Locale, app, featureName string) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("Close %s?", app),
		// GNOME Shell 43 shows the first 50 characters or so until the banner is expanded:
		// what to do comes first.
		// TRANSLATORS: %[1]s is an application ("Thunderbird"), %[2]s a feature of the Persistent Storage ("Thunderbird Email Client").
		Body: loc.Tr("Close it to back up its data, or skip that data this time (your backup keeps its previous copy): "+
			"while %[1]s is open, the data of %[2]s might be copied half-written.", app, featureName),
		Actions: []notify.Action{
			// GNOME Shell 48 gives the three buttons a third of the banner each and cuts longer
			// labels with "…": about 15 characters each.
			// TRANSLATORS: a button, about 15 characters at most; %s is an application.
			{Key: actCloseApp, Label: loc.Tr("Close %s", app)},
			// TRANSLATORS: a button, about 15 characters at most.
			{Key: actSkipApp, Label: loc.Tr("Skip its data")},
			// TRANSLATORS: a button, about 15 characters at most.
			{Key: actCancel, Label: loc.Tr("Cancel update")},
		},
		Timeout:  notify.TimeoutNever,
		Resident: true,
	}
}

// systemAppNote asks to wait for an application the session cannot close (the package
// manager runs as root).
func systemAppNote(loc *l10n.Locale, app, featureName string) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("%s is running", app),
		Body: loc.Tr("Wait until it has finished, then choose \"Try again\"; or skip the data of %s this time (your backup keeps its previous copy): "+
			"while it runs, that data might be copied half-written.", featureName),
		Actions: []notify.Action{
			{Key: actCloseApp, Label: loc.Tr("Try again")},
			{Key: actSkipApp, Label: loc.Tr("Skip its data")},
			{Key: actCancel, Label: loc.Tr("Cancel update")},
		},
		Timeout:  notify.TimeoutNever,
		Resident: true,
	}
}

func stillRunningNote(loc *l10n.Locale, app string) notify.Notification {
	n := quiesceNote(loc, app, "")
	n.Summary = loc.Tr("%s is still open", app)
	n.Body = loc.Tr("Close it yourself (save your work first), then choose \"Close %[1]s\" again, or skip its data this time.", app)
	return n
}

func doneNote(loc *l10n.Locale, r Summary) notify.Notification {
	// The title says that it is up to date; the numbers come first (GNOME Shell 43 shows the
	// first 50 characters or so until the banner is expanded).
	// TRANSLATORS: %[1]d is a number of files, %[2]s a size ("1.5 GB").
	body := loc.TrN("%[1]d file changed, %[2]s copied.", "%[1]d files changed, %[2]s copied.", int(r.Changed), r.Changed, loc.Size(r.BytesCopied))
	if r.SystemFailed {
		// TRANSLATORS: %[1]d is a number of files, %[2]s a size ("1.5 GB").
		body = loc.TrN("Your data is up to date: %[1]d file changed, %[2]s copied.", "Your data is up to date: %[1]d files changed, %[2]s copied.", int(r.Changed), r.Changed, loc.Size(r.BytesCopied))
	}
	// The sentences that follow are whole sentences, each after a space.
	if r.System != "" {
		// TRANSLATORS: %s is a version of Tails ("6.10").
		body += " " + loc.Tr("Its Tails system was updated to %s.", r.System)
	}
	if r.Skipped != "" {
		// TRANSLATORS: %s lists features of the Persistent Storage ("Thunderbird Email Client").
		body += " " + loc.Tr("The data of %s was skipped this time.", r.Skipped)
	}
	if r.ErrorCount > 0 {
		body += " " + loc.TrN("%d file could not be copied: it keeps its previous copy, and the next update tries again.",
			"%d files could not be copied: they keep their previous copy, and the next update tries again.", int(r.ErrorCount), r.ErrorCount)
	}
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr(doneSummary),
		Body:    body,
		Timeout: 0,
	}
}

// doneSummary is the title of the notification of an update that ended well.
const doneSummary = "Backup updated: you can unplug it"

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
func systemProgressNote(loc *l10n.Locale, percent int, left time.Duration, leftKnown bool) notify.Notification {
	n := progressNote(loc, percent, left, leftKnown)
	n.Summary = loc.Tr("Updating the Tails system on your backup")
	return n
}

// systemErrorNote says why the backup's system partition was not refreshed (its Persistent
// Storage was) and what to do.
func systemErrorNote(loc *l10n.Locale, e *session.SystemError) notify.Notification {
	summary, body := loc.Tr("The Tails system on your backup was not updated"), ""
	switch e.Kind {
	case session.SystemCancelled:
		summary = loc.Tr("Update of the Tails system on your backup cancelled")
		body = loc.Tr("Your data is backed up; plug your backup Tails in again to finish updating its Tails system.")
	case session.SystemNoSpace:
		body = loc.Tr("Its system partition is too small for this version of Tails: create a new backup on a bigger USB stick with 'tails-backup create'.")
	case session.SystemGone:
		body = loc.Tr("Your backup Tails was unplugged while its Tails system was updated: plug it in again to finish.")
	case session.SystemUnreadable:
		body = loc.Tr("Its system partition could not be opened: plug your backup Tails in again to try again.")
	case session.SystemRefused:
		// The sentence of the helper's reason: a refusal has too many reasons for a code.
		body = session.HelperText(loc, e.Helper)
	case session.SystemBootloader:
		summary = loc.Tr("Your backup Tails might not start on older computers")
		body = loc.Tr("Its boot loader for computers without UEFI could not be installed: plug your backup Tails in again to try again.")
	default:
		body = loc.Tr("The update of its Tails system stopped unexpectedly: plug your backup Tails in again to finish it.")
	}
	return errorNote(summary, body)
}

func unpairedNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("This Tails USB stick is not your backup"),
		Body: loc.Tr("Tails Backup only updates a backup Tails that you paired, so it did not touch this one. " +
			"To make it your backup, run 'tails-backup pair', or create a new backup on it with 'tails-backup create' (this erases it)."),
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

func backupTailsNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("This is a backup Tails"),
		Body: loc.Tr("Changes you make here are overwritten at the next update from your main Tails. " +
			"If your main Tails is lost or broken, make this one your main Tails."),
		Actions: []notify.Action{{Key: actPromote, Label: loc.Tr("Make this my main Tails"), Command: loc.Tr("To make this your main Tails, run: tails-backup promote")}},
		Timeout: notify.TimeoutNever,
	}
}

func promoteConfirmNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("Make this your main Tails?"),
		Body: loc.Tr("Do this only if your main Tails is lost or broken: this Tails will no longer be updated from it, " +
			"and you can then make a new backup of this one."),
		Actions: []notify.Action{
			{Key: actPromoteSure, Label: loc.Tr("Make this my main Tails"), Command: loc.Tr("To confirm, run: tails-backup promote")},
			{Key: actCancel, Label: loc.Tr("Cancel")},
		},
		Timeout: notify.TimeoutNever,
	}
}

func promotedNote(loc *l10n.Locale) notify.Notification {
	return notify.Notification{
		Icon:    iconBackup,
		Summary: loc.Tr("This is now your main Tails"),
		Body:    loc.Tr("Create a new backup of it with 'tails-backup create' on another USB stick."),
	}
}

// aboutDuration rounds a time left the way people say it.
func aboutDuration(loc *l10n.Locale, d time.Duration) string {
	switch {
	case d < time.Minute:
		return loc.Tr("less than a minute")
	case d < 90*time.Second:
		return loc.Tr("about a minute")
	case d < time.Hour:
		m := int((d + 30*time.Second) / time.Minute)
		return loc.TrN("about %d minute", "about %d minutes", m, m)
	default:
		h := int(d / time.Hour)
		m := int((d % time.Hour) / time.Minute)
		if m == 0 {
			return loc.TrN("about %d hour", "about %d hours", h, h)
		}
		// TRANSLATORS: %[1]s is a number of hours ("2 hours"), %[2]s of minutes ("5 minutes").
		return loc.Tr("about %[1]s %[2]s", loc.TrN("%d hour", "%d hours", h, h), loc.TrN("%d minute", "%d minutes", m, m))
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
