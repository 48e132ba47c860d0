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

	"tails-backup/pairing"
	"tails-backup/session"
	tbsync "tails-backup/sync"
	"tails-backup/udisks"
)

// updateOutput is the session.UpdateObserver of the command.
type updateOutput struct {
	w         io.Writer
	in        *lineReader
	skipClose bool
	name      string
	bar       *restoreOutput // the copy's progress on one line (restore draws it the same way)
	sysBar    *restoreOutput // the progress of the refresh of the backup's system partition
}

func newUpdateOutput(env *environment, skipClose bool, name string) *updateOutput {
	return &updateOutput{w: env.stdout, in: &lineReader{r: env.stdin}, skipClose: skipClose, name: name,
		bar:    &restoreOutput{bar: &progressBar{w: env.stderr, terminal: env.isTerminal}},
		sysBar: &restoreOutput{bar: &progressBar{w: env.stderr, terminal: env.isTerminal}}}
}

// AskApp asks on the terminal what to do about an open application.
func (o *updateOutput) AskApp(ctx context.Context, q session.AppQuestion) (session.AppAnswer, error) {
	if o.skipClose {
		fmt.Fprintf(o.w, "%s is open: the data of %s is skipped this time (--skip-close).\n", q.App, q.Feature)
		return session.AppLeave, nil
	}
	text := fmt.Sprintf("%s is open, so the data of %s might be copied half-written. Close it to back up that data, or skip that data this time (your backup keeps its previous copy).", q.App, q.Feature)
	prompt, again := fmt.Sprintf("[c] close %s and continue, [s] skip its data this time, [N] cancel: ", q.App), "c"
	switch {
	case !q.Closable:
		text = fmt.Sprintf("%s is running and using the data of %s, so that data might be copied half-written. Wait until it has finished, then try again; or skip that data this time.", q.App, q.Feature)
		prompt, again = "[r] try again, [s] skip its data this time, [N] cancel: ", "r"
	case q.StillRunning:
		text = fmt.Sprintf("%s did not close. Close it yourself (save your work first), then answer c again, or skip its data this time.", q.App)
	}
	fmt.Fprintln(o.w, text)
	answer, err := o.in.ask(ctx, o.w, prompt)
	switch {
	case ctx.Err() != nil:
		return session.AppCancel, ctx.Err()
	case errors.Is(err, errNoAnswer):
		fmt.Fprintf(o.w, "No answer about %s: cancelled (add --skip-close to skip the data of open applications).\n", q.App)
		return session.AppCancel, nil
	}
	switch strings.ToLower(answer) {
	case "s":
		return session.AppLeave, nil
	case again:
		if q.Closable {
			fmt.Fprintf(o.w, "Asking %s to close...\n", q.App)
		}
		return session.AppAgain, nil
	}
	return session.AppCancel, nil
}

// Copying says that the copy starts.
func (o *updateOutput) Copying() {
	fmt.Fprintf(o.w, "Copying your Persistent Storage to %s; do not unplug it.\n", o.name)
}

// Progress draws the progress bar.
func (o *updateOutput) Progress(p session.UpdateProgress) { o.bar.event(p.Event) }

// RefreshingSystem says that the backup's Tails system is updated.
func (o *updateOutput) RefreshingSystem(from, to string) {
	o.bar.endBar(true)
	if from == "" {
		fmt.Fprintf(o.w, "Updating the Tails system of %s to %s; do not unplug it.\n", o.name, oneLine(to))
		return
	}
	fmt.Fprintf(o.w, "Updating the Tails system of %s from %s to %s; do not unplug it.\n", o.name, oneLine(from), oneLine(to))
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
	fmt.Fprintf(o.w, "Backup updated: %s changed, %s copied.\n", session.Plural(int(d.Changed), "file"), session.SizeText(d.Report.BytesCopied))
	if len(d.Skipped) > 0 {
		fmt.Fprintf(o.w, "The data of %s was skipped this time.\n", strings.Join(d.Skipped, ", "))
	}
	for _, e := range d.Report.Errors {
		fmt.Fprintf(o.w, "error: %s: not copied (%s: %s)\n", oneLine(e.Path), oneLine(e.Op), oneLine(e.Error))
	}
	if d.System != "" && d.SystemErr == nil {
		fmt.Fprintf(o.w, "The backup's Tails system was updated to %s.\n", oneLine(d.System))
	}
	if d.Ejected {
		fmt.Fprintln(o.w, "You can unplug it.")
	} else {
		fmt.Fprintln(o.w, "Eject it in the Files browser before you unplug it.")
	}
	var problems []string
	if d.Report.ErrorCount > 0 {
		problems = append(problems, fmt.Sprintf("%s could not be copied: they keep their previous copy, and the next update tries again", session.Plural(int(d.Report.ErrorCount), "file")))
	}
	if d.SystemErr != nil {
		problems = append(problems, systemErrorText(d.SystemErr, d.System))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// systemErrorText says in one sentence why the backup's Tails system was not updated, and what
// to do; version is the version written when only the boot loader failed.
func systemErrorText(e *session.SystemError, version string) string {
	const data = "your data is backed up, but the backup's Tails system was not updated: "
	switch e.Kind {
	case session.SystemCancelled:
		return "cancelled while the backup's Tails system was updated; your data is backed up: run 'tails-backup update' again to finish updating its Tails system"
	case session.SystemNoSpace:
		return data + "its system partition is too small for this version of Tails; create a new backup on a bigger USB stick with 'tails-backup create'"
	case session.SystemGone:
		return "the backup was unplugged while its Tails system was updated; your data is backed up: plug it in again and run 'tails-backup update' to finish"
	case session.SystemUnreadable:
		return data + "its system partition could not be opened; unplug it, plug it in again and run 'tails-backup update' again"
	case session.SystemRefused:
		return data + strings.TrimSuffix(oneLine(e.Helper.Message), ".")
	case session.SystemBootloader:
		if version == "" {
			version = "this Tails"
		}
		return fmt.Sprintf("the backup's Tails system was updated to %s, but its boot loader for computers without UEFI could not be installed: "+
			"it starts on computers with UEFI, and on older ones only once the next Tails upgrade has been copied to it", oneLine(version))
	}
	return data + "its update stopped unexpectedly; run 'tails-backup update' again to finish it"
}

// updateErrorText says in one sentence why the update of the stick name failed.
func updateErrorText(ctx context.Context, e *session.UpdateError, name string) error {
	const again = "run 'tails-backup update' again"
	switch e.Kind {
	case session.FailCancelled:
		if e.Started {
			return errors.New("cancelled; your backup is marked incomplete: the next update finishes it")
		}
		return errors.New("cancelled, so your backup Tails was not changed")
	case session.FailPaused:
		return errors.New("a restore from your backup Tails is running, so it was not updated; " + again + " once the restore has finished")
	case session.FailMarker:
		if e.Marker == session.MarkerOtherTails {
			return fmt.Errorf("%s is a backup of another Tails, so it was not changed; use your own backup, or create a new one on this stick with 'tails-backup create' (this erases it)", name)
		}
		return fmt.Errorf("%s has no valid backup marker, so it was not changed; to make it your backup, create a new one on it with 'tails-backup create' (this erases it)", name)
	case session.FailTooSmall:
		return fmt.Errorf("the Persistent Storage of %s holds %s, but your data takes %s; create a new backup on a bigger USB stick with 'tails-backup create'",
			name, session.SizeText(e.Have), session.SizeText(e.Need))
	case session.FailTooManyTries:
		return fmt.Errorf("the passphrase was wrong 3 times, so %s was not updated; %s and type the passphrase of its Persistent Storage", name, again)
	case session.FailNotAuthorized:
		return fmt.Errorf("Tails did not allow unlocking %s; unlock it in the Files browser, then %s", name, again)
	case session.FailUnplugged:
		if e.Started {
			return fmt.Errorf("%s was unplugged during the update; plug it in again and %s to finish it", name, again)
		}
		return fmt.Errorf("%s was unplugged, so it was not changed; plug it in again and %s", name, again)
	case session.FailHelper:
		return fmt.Errorf("the update of %s did not finish: %w", name, session.CommandHelperError(ctx, e.Err, nil))
	}
	return fmt.Errorf("%s was not updated (%v); unplug it, plug it in again and %s", name, session.FirstSentence(e.Err), again)
}

// chooseUpdateStick picks the paired backup named by dev, or the only one plugged in.
func chooseUpdateStick(snap *udisks.Snapshot, boot udisks.BootPaths, st *pairing.State, dev string) (session.Stick, error) {
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
		return stick, fmt.Errorf("%s is not paired as the backup of this Tails; pair it first with 'tails-backup pair'", session.DevicePath(dev))
	case !errors.As(err, &pe):
		return stick, err
	case pe.Reason == session.PickNone:
		return stick, errors.New("no paired backup Tails is plugged in; plug in your backup Tails and run 'tails-backup update' again")
	case pe.Reason == session.PickSeveral:
		return stick, fmt.Errorf("%w: %d paired backups are plugged in; say which one to update, e.g. 'tails-backup update %s'",
			errUsage, pe.Count, session.Device(paired[0].Stick))
	case pe.Reason == session.PickNoDevice:
		return stick, fmt.Errorf("there is no device %s; plug in your backup Tails and give its device, e.g. /dev/sdb", pe.Device)
	}
	return stick, fmt.Errorf("%s is not a paired backup Tails; give the device of your backup Tails", pe.Device)
}
