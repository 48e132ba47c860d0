package session

// What the flows a person starts (pair, restore, verify) share: a stick opened in the words of
// the command, the pairing store read and written with its faults explained, and the texts.

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/tails"
	"tails-backup/udisks"
)

// ErrUsage is wrapped by the errors that ask the person to say more (which stick, among
// several): the command line shows how to use the command.
var ErrUsage = errors.New("usage")

// Use is what a flow opens a stick for, in the words of its passphrase prompt and its errors.
type Use struct {
	Kind UseKind
	// LeaveAsFound: unmount and lock only what the command itself mounted and unlocked;
	// otherwise the stick ends unmounted and locked whatever it was.
	LeaveAsFound bool
	// ReadOnly: the command only reads the stick (restore, verify), which it then mounts
	// read-only, so that it changes nothing on it (udisks.ReadOnlyMountOptions).
	ReadOnly bool
	// App: the person uses the Backup app, not a terminal: the texts say "try again", not
	// which command to run again.
	App bool
}

// UseKind is the command that opens a stick: each has its own sentences, whole, for translators.
type UseKind int

const (
	UsePair UseKind = iota
	UseRestore
	UseVerify
	UsePassphraseFree // tails-backup passphrase-free on
)

// command is the command to run again: "pair".
func (k UseKind) command() string {
	switch k {
	case UseRestore:
		return "restore"
	case UseVerify:
		return "verify"
	case UsePassphraseFree:
		return "passphrase-free on"
	}
	return "pair"
}

// prompt is the passphrase dialog's text: its description (naming the stick), its heading, the
// label of its button.
func (k UseKind) prompt(loc *l10n.Locale, name string) (description, heading, ok string) {
	switch k {
	case UseRestore:
		return loc.Tr("Enter the passphrase of the Persistent Storage of %s to restore your Persistent Storage from it.", name),
			loc.Tr("Passphrase of the backup Tails"), loc.Tr("Unlock")
	case UseVerify:
		return loc.Tr("Enter the passphrase of the Persistent Storage of %s to verify your backup Tails.", name),
			loc.Tr("Passphrase of your backup Tails"), loc.Tr("Verify")
	case UsePassphraseFree:
		return loc.Tr("Enter the passphrase of the Persistent Storage of %s once, so that its updates no longer ask for it.", name),
			loc.Tr("Passphrase of your backup Tails"), loc.Tr("Turn on")
	}
	return loc.Tr("Enter the passphrase of the Persistent Storage of %s to pair it as your backup Tails.", name),
		loc.Tr("Passphrase of the Tails stick to pair"), loc.Tr("Pair")
}

// tooManyTries says that every passphrase tried was wrong; app: in the Backup app.
func (k UseKind) tooManyTries(loc *l10n.Locale, name string, app bool) string {
	if app {
		// TRANSLATORS: %[1]d is the number of tries, %[2]s names the stick.
		switch k {
		case UseRestore:
			return loc.TrN("the passphrase was wrong %[1]d time, so %[2]s was not used; try again and type the passphrase of that stick's Persistent Storage",
				"the passphrase was wrong %[1]d times, so %[2]s was not used; try again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name)
		case UseVerify:
			return loc.TrN("the passphrase was wrong %[1]d time, so %[2]s was not verified; try again and type the passphrase of that stick's Persistent Storage",
				"the passphrase was wrong %[1]d times, so %[2]s was not verified; try again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name)
		case UsePassphraseFree:
			return loc.TrN("the passphrase was wrong %[1]d time, so the updates of %[2]s still ask for it; try again and type the passphrase of that stick's Persistent Storage",
				"the passphrase was wrong %[1]d times, so the updates of %[2]s still ask for it; try again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name)
		}
		return loc.TrN("the passphrase was wrong %[1]d time, so %[2]s was not paired; try again and type the passphrase of that stick's Persistent Storage",
			"the passphrase was wrong %[1]d times, so %[2]s was not paired; try again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name)
	}
	cmd := "tails-backup " + k.command()
	// TRANSLATORS: %[1]d is the number of tries, %[2]s names the stick, %[3]s is the command to run again.
	switch k {
	case UseRestore:
		return loc.TrN("the passphrase was wrong %[1]d time, so %[2]s was not used; run '%[3]s' again and type the passphrase of that stick's Persistent Storage",
			"the passphrase was wrong %[1]d times, so %[2]s was not used; run '%[3]s' again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name, cmd)
	case UseVerify:
		return loc.TrN("the passphrase was wrong %[1]d time, so %[2]s was not verified; run '%[3]s' again and type the passphrase of that stick's Persistent Storage",
			"the passphrase was wrong %[1]d times, so %[2]s was not verified; run '%[3]s' again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name, cmd)
	case UsePassphraseFree:
		return loc.TrN("the passphrase was wrong %[1]d time, so the updates of %[2]s still ask for it; run '%[3]s' again and type the passphrase of that stick's Persistent Storage",
			"the passphrase was wrong %[1]d times, so the updates of %[2]s still ask for it; run '%[3]s' again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name, cmd)
	}
	return loc.TrN("the passphrase was wrong %[1]d time, so %[2]s was not paired; run '%[3]s' again and type the passphrase of that stick's Persistent Storage",
		"the passphrase was wrong %[1]d times, so %[2]s was not paired; run '%[3]s' again and type the passphrase of that stick's Persistent Storage", StickTries, StickTries, name, cmd)
}

// notGiven and interrupted say that the command stopped before it used the stick.
func (k UseKind) notGiven(loc *l10n.Locale) string {
	if k == UseVerify {
		return loc.Tr("the passphrase was not given, so the backup was not verified")
	}
	return loc.Tr("the passphrase was not given, so nothing was changed")
}

func (k UseKind) interrupted(loc *l10n.Locale) string {
	if k == UseVerify {
		return loc.Tr("interrupted, so the backup was not verified")
	}
	return loc.Tr("interrupted, so nothing was changed")
}

// StickTries is how many passphrases a person's command tries.
const StickTries = 3

// CommandStick unlocks (through a passphrase asker) and mounts a stick for a flow a person
// started, and releases it afterwards (Opened), with errors in the words of its Use.
type CommandStick struct {
	Opened *Opened
	Name   string
	use    Use
	asker  pinentry.PassphraseAsker
	log    *logrus.Entry
	loc    *l10n.Locale
	// keep, if set, is given the passphrase that unlocked the stick (Passphrase.Keep).
	keep func(pass []byte)
}

// OpenStick prepares to open stick for use; nothing is done yet.
func OpenStick(disks Disks, stick Stick, asker pinentry.PassphraseAsker, use Use, loc *l10n.Locale, log *logrus.Entry) *CommandStick {
	return &CommandStick{
		Opened: NewOpened(disks, stick, OpenOptions{ReadOnly: use.ReadOnly, LeaveAsFound: use.LeaveAsFound, Log: log}),
		Name:   DescribeIn(loc, stick.Stick),
		use:    use, asker: asker, log: log, loc: loc,
	}
}

// Unlock asks the passphrase and unlocks the stick, or says why not in one sentence.
func (o *CommandStick) Unlock(ctx context.Context) error {
	description, heading, ok := o.use.Kind.prompt(o.loc, o.Name)
	err := o.Opened.Unlock(ctx, Passphrase{
		Asker: o.asker,
		Prompt: pinentry.Prompt{
			Title:       o.loc.Tr("Tails Backup"),
			Description: description,
			// GNOME Shell shows the prompt as the dialog's heading, and not the title.
			Prompt: heading,
			OK:     ok,
			// pinentry-gnome3 labels its own Cancel in English when it is not given one.
			Cancel: o.loc.Tr("Cancel"),
		},
		Tries:     StickTries,
		WrongText: o.loc.Tr("Wrong passphrase. Try again: it is the passphrase of that stick's Persistent Storage."),
		Keep:      o.keep,
	})
	cmd := "tails-backup " + o.use.Kind.command()
	var execErr *exec.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pinentry.ErrTooManyTries):
		return errors.New(o.use.Kind.tooManyTries(o.loc, o.Name, o.use.App))
	case errors.Is(err, pinentry.ErrPinentryCancelled):
		return errors.New(o.use.Kind.notGiven(o.loc))
	case ctx.Err() != nil:
		return errors.New(o.use.Kind.interrupted(o.loc))
	case errors.As(err, &execErr) && o.use.App:
		// TRANSLATORS: %s is the error (in English).
		return errors.New(o.loc.Tr("the passphrase dialog could not be shown (%v); restart Tails if it happens again", err))
	case errors.Is(err, udisks.ErrNotAuthorized) && o.use.App:
		// TRANSLATORS: %s names the stick.
		return errors.New(o.loc.Tr("Tails did not allow unlocking %s; unlock it in the Files browser, then try again", o.Name))
	case errors.Is(err, udisks.ErrDeviceGone) && o.use.App:
		return errors.New(o.loc.Tr("%s was unplugged; plug it in again and try again", o.Name))
	case errors.As(err, &execErr):
		// TRANSLATORS: %[1]s is the error (in English), %[2]s the command to run.
		return errors.New(o.loc.Tr("the passphrase dialog could not be shown (%[1]v); run '%[2]s' in the Tails desktop session", err, cmd))
	case errors.Is(err, udisks.ErrNotAuthorized):
		// TRANSLATORS: %[1]s names the stick, %[2]s is the command to run again.
		return errors.New(o.loc.Tr("Tails did not allow unlocking %[1]s; unlock it in the Files browser, then run '%[2]s' again", o.Name, cmd))
	case errors.Is(err, udisks.ErrDeviceGone):
		return errors.New(o.loc.Tr("%[1]s was unplugged; plug it in again and run '%[2]s' again", o.Name, cmd))
	}
	o.log.WithError(err).Debug("unlock the stick")
	if o.use.App {
		// TRANSLATORS: %[1]s names the stick, %[2]s says why (in English).
		return errors.New(o.loc.Tr("%[1]s could not be unlocked (%[2]s); unplug it, plug it in again and try again", o.Name, Reason(err)))
	}
	// TRANSLATORS: %[1]s names the stick, %[2]s says why (in English), %[3]s is the command to run again.
	return errors.New(o.loc.Tr("%[1]s could not be unlocked (%[2]s); unplug it, plug it in again and run '%[3]s' again", o.Name, Reason(err), cmd))
}

// Mount mounts the unlocked stick, or says why not in one sentence.
func (o *CommandStick) Mount(ctx context.Context) error {
	cmd := "tails-backup " + o.use.Kind.command()
	if _, err := o.Opened.Mount(ctx); err != nil {
		switch {
		case errors.Is(err, udisks.ErrDeviceGone) && o.use.App:
			return errors.New(o.loc.Tr("%s was unplugged; plug it in again and try again", o.Name))
		case errors.Is(err, udisks.ErrDeviceGone):
			return errors.New(o.loc.Tr("%[1]s was unplugged; plug it in again and run '%[2]s' again", o.Name, cmd))
		}
		o.log.WithError(err).Debug("mount the stick")
		if o.use.App {
			return errors.New(o.loc.Tr("the Persistent Storage of %[1]s could not be opened (%[2]s); unplug it, plug it in again and try again", o.Name, Reason(err)))
		}
		return errors.New(o.loc.Tr("the Persistent Storage of %[1]s could not be opened (%[2]s); unplug it, plug it in again and run '%[3]s' again", o.Name, Reason(err), cmd))
	}
	return nil
}

// Release unmounts and locks the stick as its use says (it stays plugged in). It runs once;
// later calls return nil.
func (o *CommandStick) Release(ctx context.Context) error {
	if err := o.Opened.Release(ctx); err != nil {
		o.log.WithError(err).Error("release the stick")
		return err
	}
	return nil
}

// NotLockedText warns that a stick could not be locked again after a command.
func NotLockedText(loc *l10n.Locale, name string, err error) string {
	// TRANSLATORS: %[1]s names a USB stick, %[2]s says why (in English, from the system).
	return loc.Tr("%[1]s could not be locked again (%[2]s); eject it in the Files browser before you unplug it.", name, Reason(err))
}

// LoadStateIn reads the store. A missing file is a fresh state. A damaged (or newer) file was
// set aside by the store: it comes back as se, with a fresh state, for the caller to report.
func LoadStateIn(ctx context.Context, loc *l10n.Locale, store *pairing.Store) (st pairing.State, se *pairing.StateError, err error) {
	st, err = store.Load(ctx)
	if errors.As(err, &se) {
		return st, se, nil
	}
	if err != nil {
		// TRANSLATORS: %[1]s is a file, %[2]s says why (in English).
		return pairing.State{}, nil, errors.New(loc.Tr("cannot read the pairing store %[1]s (%[2]s); check that it is readable by you", store.Path(), Reason(err)))
	}
	return st, nil, nil
}

// UpdateState changes the store with fn. A damaged file is given to setAside (the store has
// set it aside) and fn is applied to a fresh state.
func UpdateState(ctx context.Context, loc *l10n.Locale, store *pairing.Store, setAside func(*pairing.StateError), fn func(*pairing.State) error) (pairing.State, error) {
	st, err := store.Update(ctx, fn)
	var se *pairing.StateError
	if errors.As(err, &se) {
		setAside(se)
		st, err = store.Update(ctx, fn)
	}
	if err != nil {
		if errors.As(err, &se) {
			return pairing.State{}, errors.New(loc.Tr("cannot use the pairing store %[1]s (%[2]s); move it away and try again", store.Path(), Reason(err)))
		}
		return pairing.State{}, errors.New(loc.Tr("cannot save the pairing store %[1]s (%[2]s); check that its folder is writable by you and try again", store.Path(), Reason(err)))
	}
	return st, nil
}

// StateErrorTextIn explains a store that could not be used, in one sentence.
func StateErrorTextIn(loc *l10n.Locale, se *pairing.StateError) string {
	return stateErrorText(loc, se, false)
}

// StateErrorAppTextIn is StateErrorTextIn for the Backup app, with no command to type.
func StateErrorAppTextIn(loc *l10n.Locale, se *pairing.StateError) string {
	return stateErrorText(loc, se, true)
}

func stateErrorText(loc *l10n.Locale, se *pairing.StateError, app bool) string {
	detail := se.Err.Error()
	detail = strings.TrimPrefix(detail, se.Kind.Error()+": ")
	newer := errors.Is(se, pairing.ErrNewerState)
	if app {
		// TRANSLATORS: %[1]s is the store's file, %[2]s where it was moved, %[3]s the detail (in English).
		switch {
		case newer && se.SetAside == "":
			return loc.Tr("The pairing store %[1]s was written by a newer version of tails-backup, so it could not be moved aside and Tails Backup starts afresh; pair your backup Tails again (detail: %[2]s).", se.Path, detail)
		case newer:
			return loc.Tr("The pairing store %[1]s was written by a newer version of tails-backup, so it was moved to %[2]s and Tails Backup starts afresh; pair your backup Tails again (detail: %[3]s).", se.Path, se.SetAside, detail)
		case se.SetAside == "":
			return loc.Tr("The pairing store %[1]s was damaged, so it could not be moved aside and Tails Backup starts afresh; pair your backup Tails again (detail: %[2]s).", se.Path, detail)
		}
		return loc.Tr("The pairing store %[1]s was damaged, so it was moved to %[2]s and Tails Backup starts afresh; pair your backup Tails again (detail: %[3]s).", se.Path, se.SetAside, detail)
	}
	// TRANSLATORS: %[1]s is the store's file, %[2]s where it was moved, %[3]s the detail (in English).
	switch {
	case newer && se.SetAside == "":
		return loc.Tr("The pairing store %[1]s was written by a newer version of tails-backup, so it could not be moved aside and Tails Backup starts afresh; pair your backup Tails again with 'tails-backup pair' (detail: %[2]s).", se.Path, detail)
	case newer:
		return loc.Tr("The pairing store %[1]s was written by a newer version of tails-backup, so it was moved to %[2]s and Tails Backup starts afresh; pair your backup Tails again with 'tails-backup pair' (detail: %[3]s).", se.Path, se.SetAside, detail)
	case se.SetAside == "":
		return loc.Tr("The pairing store %[1]s was damaged, so it could not be moved aside and Tails Backup starts afresh; pair your backup Tails again with 'tails-backup pair' (detail: %[2]s).", se.Path, detail)
	}
	return loc.Tr("The pairing store %[1]s was damaged, so it was moved to %[2]s and Tails Backup starts afresh; pair your backup Tails again with 'tails-backup pair' (detail: %[3]s).", se.Path, se.SetAside, detail)
}

// IsFreshState: the state of a store file that does not exist.
func IsFreshState(s pairing.State) bool {
	return len(s.Backups) == 0 && s.LastSuccess.IsZero() && s.LastAttempt == nil && s.Reminder == (pairing.ReminderSettings{})
}

// OwnMarker is what this Tails' own Persistent Storage says about being a backup.
type OwnMarker struct {
	Present bool         // a marker file (or something in its place) is there
	Marker  tails.Marker // valid when present and Err is nil
	Err     error        // why a present marker cannot be used
}

// IsBackup: this Tails is a backup (a valid marker), as the agent decides it.
func (m OwnMarker) IsBackup() bool { return m.Present && m.Err == nil }

// ReadOwnMarker reads the marker at the root of this Tails' Persistent Storage, refusing a
// symlink or anything but a small regular file (as the agent does).
func ReadOwnMarker(root string) OwnMarker {
	m, present, err := tails.ReadMarkerIn(root)
	if !present {
		// No Persistent Storage (or none to look into), or no marker in it.
		return OwnMarker{}
	}
	return OwnMarker{Present: true, Marker: m, Err: err}
}

// TimeText shows a time in the location of now, to the minute: "Mon 2 Jan 2006 15:04".
func TimeText(loc *l10n.Locale, t, now time.Time) string {
	return loc.DateTime(t.In(now.Location()))
}
