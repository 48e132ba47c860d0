package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"tails-backup/dbusapi"
	"tails-backup/l10n"
	"tails-backup/session"
	"tails-backup/wire"
)

// The texts of the jobs the Backup app starts (flows.go, jobs.go), in one place. The session
// flows say the rest, in their words for the app (their App field).

// Question and choice IDs of the flow jobs (docs/dbus-api.md lists them for the app).
const (
	questionPair         = "pair-confirm"
	questionRestore      = "restore-confirm"
	questionRestoreOther = "restore-other"
	questionAppsPrefix   = "apps-" // apps-1, apps-2...: an open application, during a restore
	choicePair           = "pair"
	choiceRestore        = "restore"
	questionForget       = "forget-confirm"
	choiceForget         = "forget"
)

// The kinds of differences of a verify (dbusapi.Difference.Change).
const (
	diffMissing  = "missing"  // only on this Tails: the next update copies it
	diffExtra    = "extra"    // only on the backup: the next update deletes it
	diffChanged  = "changed"  // content or type differs
	diffMetadata = "metadata" // only permissions, owner, dates or attributes differ
)

const (
	apiStepPair                 = "Pairing the stick as your backup Tails."
	apiStepVerify               = "Comparing your backup with this Tails."
	apiStepRestore              = "Restoring your Persistent Storage from your backup Tails."
	apiStepAnswer               = "Waiting for your answer."
	apiStepRestoreCopy          = "Copying the backup into your Persistent Storage. Do not unplug it."
	apiStepCreatePass           = "Waiting for the passphrase of your new backup."
	apiTextWhichStick           = "Several Tails sticks are plugged in: choose one in the list."
	apiTextUnusable             = "This stick cannot be used: it is the stick this Tails runs from, not a removable USB stick, or it has no Persistent Storage."
	apiTextRestoreIntoBackup    = "This Tails is itself a backup Tails, so nothing is restored into it: make it your main Tails first, or restore into another Tails."
	apiTextRestoreNoPersistence = "Your Persistent Storage is not unlocked, so there is nothing to restore into: restart Tails, unlock it in the Welcome Screen (create it first on a new Tails), then try again."
	apiStepCreate               = "Step %[1]d of %[2]d: %[3]s."
	apiStepCreateIn             = "Preparing to erase the USB stick."
	apiTextNoStick              = "There is no USB stick %s plugged in any more: plug it in again, or choose another one."
	apiTextNotTails             = "This stick is not a Tails stick with a Persistent Storage: choose another one."
	apiTextBootStick            = "This is the stick this Tails is running from: choose another one."
	apiTextUnfit                = "This stick cannot be used: %s."
	apiTextChanged              = "The stick changed since you confirmed erasing it (it was unplugged, replaced or changed), so nothing was erased: look at the list of sticks again and confirm again."
	apiTextNoConfirm            = "Confirm first which stick to erase: choose it in the list of sticks, which says what will be erased."
	apiTextNoBackup             = "This backup is not paired with this Tails any more: look at the list of your backups again."
	apiStepForget               = "Forgetting the backup."
	apiStepPassphraseOn         = "Adding the key that updates your backup without its passphrase."
	apiStepPassphraseOff        = "Removing the key that updates your backup without its passphrase."

	textDiffMissing  = "Only on this Tails: the next update copies it to the backup."
	textDiffExtra    = "Only on the backup: the next update deletes it there."
	textDiffChanged  = "Different on the backup (%s): the next update copies this Tails' version."
	textDiffMetadata = "Only its permissions, owner or dates differ (%s): the next update sets them."

	textVerifyOK         = "The backup is identical and valid (metadata compared)."
	textVerifyFeatures   = "Tails would turn on these features of the backup at startup: %s."
	textVerifyNoFeatures = "Tails would turn on none of the features of the backup at startup."
	checkPersistence     = "Persistent Storage"
	textCheckAccepted    = "Tails accepts the backup's Persistent Storage at startup."
	textCheckRefused     = "Tails would not accept the backup's Persistent Storage as it is at startup: see the problems listed."
	textRestoreLeft      = "The data of %s was left as it was."
	textCreateDone       = "Your backup Tails is ready: you can unplug it. From now on, plug it in to update it; if this Tails is lost or broken, start on the backup."
	textCreateNotEjected = "Your backup Tails is ready and paired, but %[1]s could not be ejected (%[2]s): eject it in the Files browser before you unplug it."
	textCreateNotPaired  = "The backup Tails on %[1]s is complete, but it is not paired because %[2]s: pair it in the Backup app."
	textCreateIsBackup   = "This Tails is itself a backup, so it does not make backups: if your main Tails is lost or broken, make this one your main Tails first."
)

// DefaultPlugWait is how long a job of the app waits for its stick to be plugged in (Config.PlugWait
// if 0), as long as the command line's restore waits: long enough to fetch the stick from a
// drawer, while the window shows what to do. A job forgotten when the window was closed must
// not linger: it would take the stick when it is plugged in later, in place of the automatic
// update, and ask its passphrase out of the blue.
const DefaultPlugWait = session.RestorePlugWait

// plugTexts are what a job says while it waits for its stick, and when nothing was plugged in
// in time (%s: "10 minutes").
type plugTexts struct{ wait, timeout string }

var (
	plugPair = plugTexts{
		wait:    l10n.Mark("Plug in the Tails stick to pair as your backup: the pairing starts as soon as it is plugged in."),
		timeout: l10n.Mark("No Tails stick was plugged in within %s, so nothing was changed: plug it in, then try again."),
	}
	plugVerify = plugTexts{
		wait:    l10n.Mark("Plug in your backup Tails: the comparison starts as soon as it is plugged in."),
		timeout: l10n.Mark("Your backup Tails was not plugged in within %s, so nothing was compared: plug it in, then try again."),
	}
	plugPassphraseFree = plugTexts{
		wait:    l10n.Mark("Plug in your backup Tails: the change starts as soon as it is plugged in."),
		timeout: l10n.Mark("Your backup Tails was not plugged in within %s, so nothing was changed: plug it in, then try again."),
	}
	plugRestore = plugTexts{
		wait:    l10n.Mark("Plug in your backup Tails: the restore starts as soon as it is plugged in. Nothing is changed before you confirm."),
		timeout: l10n.Mark("No backup Tails was plugged in within %s, so nothing was changed: plug it in, then try again."),
	}
)

const (
	textPlugCancelled = "Cancelled before the stick was plugged in, so nothing was changed."
	textPlugStopped   = "Tails Backup stopped while waiting for the stick, so nothing was changed: try again."
)

// plugRefusedText is why the stick plugged in for a waiting job cannot be used, as the job's
// closing sentence.
func plugRefusedText(err error) string {
	var e *dbusapi.Error
	if errors.As(err, &e) {
		return e.Text
	}
	return errorSentence(err)
}

// waitDuration: "10 minutes", or the exact duration when it is not whole minutes.
func waitDuration(loc *l10n.Locale, d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		m := int(d / time.Minute)
		return loc.TrN("%d minute", "%d minutes", m, m)
	}
	return d.String()
}

// pairQuestion is what Confirm asks during a pairing; its body is the flow's question.
func pairQuestion(loc *l10n.Locale) dbusapi.Question {
	return dbusapi.Question{
		ID:          questionPair,
		Title:       loc.Tr("Pair this Tails stick as your backup?"),
		Choices:     []dbusapi.Choice{{ID: actCancel, Label: loc.Tr("Cancel")}, {ID: choicePair, Label: loc.Tr("Pair")}},
		Destructive: choicePair,
	}
}

// forgetQuestion is what Confirm asks before forgetting a backup; its body is the flow's
// question, which says what goes and what stays.
func forgetQuestion(loc *l10n.Locale) dbusapi.Question {
	return dbusapi.Question{
		ID:          questionForget,
		Title:       loc.Tr("Forget this backup?"),
		Choices:     []dbusapi.Choice{{ID: actCancel, Label: loc.Tr("Cancel")}, {ID: choiceForget, Label: loc.Tr("Forget")}},
		Destructive: choiceForget,
	}
}

// restoreQuestion asks to restore from the backup just described (the description came as
// Messages before); other: a backup of another Tails.
func restoreQuestion(loc *l10n.Locale, other bool) dbusapi.Question {
	q := dbusapi.Question{
		ID:    questionRestore,
		Title: loc.Tr("Restore your Persistent Storage from this backup?"),
		Body: loc.Tr("Files in your Persistent Storage that are not on the backup will be deleted, and files that differ will be " +
			"replaced by the backup's version."),
		Choices:     []dbusapi.Choice{{ID: actCancel, Label: loc.Tr("Cancel")}, {ID: choiceRestore, Label: loc.Tr("Restore")}},
		Destructive: choiceRestore,
	}
	if other {
		q.ID = questionRestoreOther
		q.Title = loc.Tr("Restore from the backup of another Tails?")
		q.Body = loc.Tr("This backup was not made from this Tails. Restore from it only if it is your own backup, for example of " +
			"the Tails USB stick you lost: files in your Persistent Storage that are not on the backup will be deleted, " +
			"and files that differ will be replaced by the backup's version.")
		q.Choices[1].Label = loc.Tr("Restore from the other Tails")
	}
	return q
}

// restoreAppQuestion asks about an application open during a restore (the n-th question).
func restoreAppQuestion(loc *l10n.Locale, n int, aq session.AppQuestion) dbusapi.Question {
	q := dbusapi.Question{
		ID:    fmt.Sprintf("%s%d", questionAppsPrefix, n),
		Title: loc.Tr("Close %s?", aq.App),
		Body:  appText(aq.Text),
		Choices: []dbusapi.Choice{
			{ID: actCancel, Label: loc.Tr("Cancel the restore")},
			{ID: actCloseApp, Label: loc.Tr("Close %s and continue", aq.App)},
			{ID: actSkipApp, Label: loc.Tr("Leave its data as it is")},
		},
	}
	if !aq.Closable {
		q.Title = loc.Tr("%s is running", aq.App)
		q.Choices[1].Label = loc.Tr("Try again")
	}
	return q
}

// percentText is the text of a Progress: "45% done, about 2 minutes left."
func percentText(loc *l10n.Locale, pct int, left time.Duration, known bool) string {
	if known {
		// TRANSLATORS: %[1]d is a percentage ("%%" writes the percent sign), %[2]s the time left ("about 3 minutes").
		return loc.Tr("%[1]d%% done, %[2]s left.", pct, aboutDuration(loc, left))
	}
	// TRANSLATORS: %d is a percentage; "%%" writes the percent sign.
	return loc.Tr("%d%% done.", pct)
}

// problemText is what Tails would refuse (or warn about) in a backup's Persistent Storage, in
// the session's language (the helper's English sentence is for the log).
func problemText(loc *l10n.Locale, ev wire.Event) string {
	return sentence(session.OneLine(session.FindingText(loc, ev)))
}

// appText is a sentence of the session flows as the app shows it: with a capital first letter
// and a full stop. The flows the agent runs are told they speak to the app (their App), so
// their texts name no command to type.
func appText(s string) string { return sentence(s) }

// sentence gives s a capital first letter and a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "!") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}

// errorSentence is a flow's error as the closing sentence of its job (the session's errors
// are in its language already: the flows' Loc).
func errorSentence(err error) string { return appText(err.Error()) }
