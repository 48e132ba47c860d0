package main

// What 'tails-backup update' shows at the terminal: the choice of the stick, the questions about
// open applications, the progress bars (of the copy, and of the refresh of the backup's Tails
// system), the summary, and each way the update can fail, in one sentence.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/session"
	tbsync "tails-backup/sync"
	"tails-backup/udisks"
)

// updateOutput is the session.UpdateObserver of the command.
type updateOutput struct {
	w         io.Writer
	loc       *l10n.Locale
	in        *lineReader
	skipClose bool
	name      string
	bar       *restoreOutput // the copy's progress on one line (restore draws it the same way)
	sysBar    *restoreOutput // the progress of the refresh of the backup's system partition
}

func newUpdateOutput(env *environment, skipClose bool, name string) *updateOutput {
	return &updateOutput{w: env.stdout, loc: env.loc, in: &lineReader{r: env.stdin}, skipClose: skipClose, name: name,
		bar:    &restoreOutput{bar: &progressBar{w: env.stderr, loc: env.loc, terminal: env.isTerminal}},
		sysBar: &restoreOutput{bar: &progressBar{w: env.stderr, loc: env.loc, terminal: env.isTerminal}}}
}

// AskApp asks on the terminal what to do about an open application.
func (o *updateOutput) AskApp(ctx context.Context, q session.AppQuestion) (session.AppAnswer, error) {
	if o.skipClose {
		fmt.Fprintln(o.w, o.loc.Tr("%[1]s is open: the data of %[2]s is skipped this time (--skip-close).", q.App, q.Feature))
		return session.AppLeave, nil
	}
	text := o.loc.Tr("%[1]s is open, so the data of %[2]s might be copied half-written. Close it to back up that data, or skip that data this time (your backup keeps its previous copy).", q.App, q.Feature)
	prompt, again := o.loc.Tr("[c] close %s and continue, [s] skip its data this time, [N] cancel: ", q.App), "c"
	switch {
	case !q.Closable:
		text = o.loc.Tr("%[1]s is running and using the data of %[2]s, so that data might be copied half-written. Wait until it has finished, then try again; or skip that data this time.", q.App, q.Feature)
		prompt, again = o.loc.Tr("[r] try again, [s] skip its data this time, [N] cancel: "), "r"
	case q.StillRunning:
		text = o.loc.Tr("%s did not close. Close it yourself (save your work first), then answer c again, or skip its data this time.", q.App)
	}
	fmt.Fprintln(o.w, text)
	answer, err := o.in.ask(ctx, o.w, prompt)
	switch {
	case ctx.Err() != nil:
		return session.AppCancel, ctx.Err()
	case errors.Is(err, errNoAnswer):
		fmt.Fprintln(o.w, o.loc.Tr("No answer about %s: cancelled (add --skip-close to skip the data of open applications).", q.App))
		return session.AppCancel, nil
	}
	switch strings.ToLower(answer) {
	case "s":
		return session.AppLeave, nil
	case again:
		if q.Closable {
			fmt.Fprintln(o.w, o.loc.Tr("Asking %s to close...", q.App))
		}
		return session.AppAgain, nil
	}
	return session.AppCancel, nil
}

// Copying says that the copy starts.
func (o *updateOutput) Copying() {
	fmt.Fprintln(o.w, o.loc.Tr("Copying your Persistent Storage to %s; do not unplug it.", o.name))
}

// Progress draws the progress bar.
func (o *updateOutput) Progress(p session.UpdateProgress) { o.bar.event(p.Event) }

// RefreshingSystem says that the backup's Tails system is updated.
func (o *updateOutput) RefreshingSystem(from, to string) {
	o.bar.endBar(true)
	if from == "" {
		fmt.Fprintln(o.w, o.loc.Tr("Updating the Tails system of %[1]s to %[2]s; do not unplug it.", o.name, oneLine(to)))
		return
	}
	fmt.Fprintln(o.w, o.loc.Tr("Updating the Tails system of %[1]s from %[2]s to %[3]s; do not unplug it.", o.name, oneLine(from), oneLine(to)))
}

// SystemProgress draws the progress bar of the system partition's refresh.
func (o *updateOutput) SystemProgress(p session.UpdateProgress) {
	ev := p.Event
	ev.Phase = string(tbsync.PhaseCopy)
	o.sysBar.event(ev)
}

// endBars ends the progress lines; complete: at 100%.
func (o *updateOutput) endBars(complete bool) {
	o.bar.endBar(complete)
	o.sysBar.endBar(complete)
}

// summary prints what the update did and returns the command's result.
func (o *updateOutput) summary(d *session.UpdateDone) error {
	o.endBars(d.SystemErr == nil)
	changed := int(min(d.Changed, 1<<31-1))
	// TRANSLATORS: %[1]d is a number of files, %[2]s a size ("1.5 GB").
	fmt.Fprintln(o.w, o.loc.TrN("Backup updated: %[1]d file changed, %[2]s copied.", "Backup updated: %[1]d files changed, %[2]s copied.", changed, d.Changed, o.loc.Size(d.Report.BytesCopied)))
	if len(d.Skipped) > 0 {
		fmt.Fprintln(o.w, o.loc.Tr("The data of %s was skipped this time.", strings.Join(d.Skipped, ", ")))
	}
	for _, e := range d.Report.Errors {
		fmt.Fprintln(o.w, o.loc.Tr("error: %[1]s: not copied (%[2]s: %[3]s)", oneLine(e.Path), oneLine(e.Op), oneLine(e.Error)))
	}
	if d.System != "" && d.SystemErr == nil {
		fmt.Fprintln(o.w, o.loc.Tr("The backup's Tails system was updated to %s.", oneLine(d.System)))
	}
	if d.Ejected {
		fmt.Fprintln(o.w, o.loc.Tr("You can unplug it."))
	} else {
		fmt.Fprintln(o.w, o.loc.Tr("Eject it in the Files browser before you unplug it."))
	}
	var problems []string
	if d.Report.ErrorCount > 0 {
		n := int(min(d.Report.ErrorCount, 1<<31-1))
		problems = append(problems, o.loc.TrN("%d file could not be copied: it keeps its previous copy, and the next update tries again",
			"%d files could not be copied: they keep their previous copy, and the next update tries again", n, d.Report.ErrorCount))
	}
	if d.SystemErr != nil {
		problems = append(problems, systemErrorText(o.loc, d.SystemErr, d.System))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// systemErrorText says in one sentence why the backup's Tails system was not updated, and what
// to do; version is the version written when only the boot loader failed.
func systemErrorText(loc *l10n.Locale, e *session.SystemError, version string) string {
	switch e.Kind {
	case session.SystemCancelled:
		return loc.Tr("cancelled while the backup's Tails system was updated; your data is backed up: run 'tails-backup update' again to finish updating its Tails system")
	case session.SystemNoSpace:
		return loc.Tr("your data is backed up, but the backup's Tails system was not updated: its system partition is too small for this version of Tails; create a new backup on a bigger USB stick with 'tails-backup create'")
	case session.SystemGone:
		return loc.Tr("the backup was unplugged while its Tails system was updated; your data is backed up: plug it in again and run 'tails-backup update' to finish")
	case session.SystemUnreadable:
		return loc.Tr("your data is backed up, but the backup's Tails system was not updated: its system partition could not be opened; unplug it, plug it in again and run 'tails-backup update' again")
	case session.SystemRefused:
		// TRANSLATORS: %s is the sentences saying why and what to do, translated.
		return loc.Tr("your data is backed up, but the backup's Tails system was not updated: %s", strings.TrimSuffix(session.HelperText(loc, e.Helper), "."))
	case session.SystemBootloader:
		if version == "" {
			return loc.Tr("the backup's Tails system was updated to this Tails, but its boot loader for computers without UEFI could not be installed: " +
				"it starts on computers with UEFI, and on older ones only once the next Tails upgrade has been copied to it")
		}
		return loc.Tr("the backup's Tails system was updated to %s, but its boot loader for computers without UEFI could not be installed: "+
			"it starts on computers with UEFI, and on older ones only once the next Tails upgrade has been copied to it", oneLine(version))
	}
	return loc.Tr("your data is backed up, but the backup's Tails system was not updated: its update stopped unexpectedly; run 'tails-backup update' again to finish it")
}

// updateErrorText says in one sentence why the update of the stick name failed.
func updateErrorText(ctx context.Context, loc *l10n.Locale, e *session.UpdateError, name string) error {
	switch e.Kind {
	case session.FailCancelled:
		if e.Started {
			return errors.New(loc.Tr("cancelled; your backup is marked incomplete: the next update finishes it"))
		}
		return errors.New(loc.Tr("cancelled, so your backup Tails was not changed"))
	case session.FailPaused:
		return errors.New(loc.Tr("a restore from your backup Tails is running, so it was not updated; run 'tails-backup update' again once the restore has finished"))
	case session.FailMarker:
		if e.Marker == session.MarkerOtherTails {
			return errors.New(loc.Tr("%s is a backup of another Tails, so it was not changed; use your own backup, or create a new one on this stick with 'tails-backup create' (this erases it)", name))
		}
		return errors.New(loc.Tr("%s has no valid backup marker, so it was not changed; to make it your backup, create a new one on it with 'tails-backup create' (this erases it)", name))
	case session.FailTooSmall:
		return errors.New(loc.Tr("the Persistent Storage of %[1]s holds %[2]s, but your data takes %[3]s; create a new backup on a bigger USB stick with 'tails-backup create'",
			name, loc.Size(e.Have), loc.Size(e.Need)))
	case session.FailTooManyTries:
		return errors.New(loc.TrN("the passphrase was wrong %[1]d time, so %[2]s was not updated; run 'tails-backup update' again and type the passphrase of its Persistent Storage",
			"the passphrase was wrong %[1]d times, so %[2]s was not updated; run 'tails-backup update' again and type the passphrase of its Persistent Storage", 3, 3, name))
	case session.FailNotAuthorized:
		return errors.New(loc.Tr("Tails did not allow unlocking %s; unlock it in the Files browser, then run 'tails-backup update' again", name))
	case session.FailUnplugged:
		if e.Started {
			return errors.New(loc.Tr("%s was unplugged during the update; plug it in again and run 'tails-backup update' again to finish it", name))
		}
		return errors.New(loc.Tr("%s was unplugged, so it was not changed; plug it in again and run 'tails-backup update' again", name))
	case session.FailHelper:
		return fmt.Errorf(loc.Tr("the update of %[1]s did not finish: %[2]w"), name, session.CommandHelperError(ctx, loc, e.Err, nil))
	}
	// TRANSLATORS: %[1]s names the stick, %[2]v says why (in English).
	return errors.New(loc.Tr("%[1]s was not updated (%[2]v); unplug it, plug it in again and run 'tails-backup update' again", name, session.FirstSentence(e.Err)))
}

// chooseUpdateStick picks the paired backup named by dev, or the only one plugged in.
func chooseUpdateStick(loc *l10n.Locale, snap *udisks.Snapshot, boot udisks.BootPaths, st *pairing.State, dev string) (session.Stick, error) {
	var paired []session.Stick
	for _, c := range session.Candidates(snap, boot) {
		if st.IsPaired(c.UUID) {
			paired = append(paired, c)
		}
	}
	stick, err := session.PickStick(snap, boot, paired, dev)
	var pe *session.PickError
	switch {
	case err == nil && !st.IsPaired(stick.UUID):
		return stick, errors.New(loc.Tr("%s is not paired as the backup of this Tails; pair it first with 'tails-backup pair'", session.DevicePath(dev)))
	case !errors.As(err, &pe):
		return stick, err
	case pe.Reason == session.PickNone:
		return stick, errors.New(loc.Tr("no paired backup Tails is plugged in; plug in your backup Tails and run 'tails-backup update' again"))
	case pe.Reason == session.PickSeveral:
		return stick, fmt.Errorf("%w: %s", errUsage, loc.TrN("%[1]d paired backup is plugged in; say which one to update, e.g. 'tails-backup update %[2]s'",
			"%[1]d paired backups are plugged in; say which one to update, e.g. 'tails-backup update %[2]s'", pe.Count, pe.Count, session.Device(paired[0].Stick)))
	case pe.Reason == session.PickNoDevice:
		return stick, errors.New(loc.Tr("there is no device %s; plug in your backup Tails and give its device, e.g. /dev/sdb", pe.Device))
	}
	return stick, errors.New(loc.Tr("%s is not a paired backup Tails; give the device of your backup Tails", pe.Device))
}
