package session

// What the flows a person starts (pair, restore, verify) share: a stick opened in the words of
// the command, the pairing store read and written with its faults explained, and the texts.

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

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
	Command   string // "pair": the command to run again
	Purpose   string // "to pair it as your backup Tails", after the prompt's request
	Asked     string // "Passphrase of the Tails stick to pair": the prompt's heading
	OK        string // the label of the dialog's button
	NotDone   string // "was not paired", after the stick's name
	Unchanged string // "nothing was changed", when the command did nothing
	// LeaveAsFound: unmount and lock only what the command itself mounted and unlocked;
	// otherwise the stick ends unmounted and locked whatever it was.
	LeaveAsFound bool
	// ReadOnly: the command only reads the stick (restore, verify), which it then mounts
	// read-only, so that it changes nothing on it (udisks.ReadOnlyMountOptions).
	ReadOnly bool
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
}

// OpenStick prepares to open stick for use; nothing is done yet.
func OpenStick(disks Disks, stick Stick, asker pinentry.PassphraseAsker, use Use, log *logrus.Entry) *CommandStick {
	return &CommandStick{
		Opened: NewOpened(disks, stick, OpenOptions{ReadOnly: use.ReadOnly, LeaveAsFound: use.LeaveAsFound, Log: log}),
		Name:   Describe(stick.Stick),
		use:    use, asker: asker, log: log,
	}
}

// Unlock asks the passphrase and unlocks the stick, or says why not in one sentence.
func (o *CommandStick) Unlock(ctx context.Context) error {
	err := o.Opened.Unlock(ctx, Passphrase{
		Asker: o.asker,
		Prompt: pinentry.Prompt{
			Title:       "Tails Backup",
			Description: fmt.Sprintf("Enter the passphrase of the Persistent Storage of %s %s.", o.Name, o.use.Purpose),
			// GNOME Shell shows the prompt as the dialog's heading, and not the title.
			Prompt: o.use.Asked,
			OK:     o.use.OK,
		},
		Tries:     StickTries,
		WrongText: "Wrong passphrase. Try again: it is the passphrase of that stick's Persistent Storage.",
	})
	cmd := "tails-backup " + o.use.Command
	var execErr *exec.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pinentry.ErrTooManyTries):
		return fmt.Errorf("the passphrase was wrong %d times, so %s %s; run '%s' again and type the passphrase of that stick's Persistent Storage", StickTries, o.Name, o.use.NotDone, cmd)
	case errors.Is(err, pinentry.ErrPinentryCancelled):
		return fmt.Errorf("the passphrase was not given, so %s", o.use.Unchanged)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted, so %s", o.use.Unchanged)
	case errors.As(err, &execErr):
		return fmt.Errorf("the passphrase dialog could not be shown (%v); run '%s' in the Tails desktop session", err, cmd)
	case errors.Is(err, udisks.ErrNotAuthorized):
		return fmt.Errorf("Tails did not allow unlocking %s; unlock it in the Files browser, then run '%s' again", o.Name, cmd)
	case errors.Is(err, udisks.ErrDeviceGone):
		return fmt.Errorf("%s was unplugged; plug it in again and run '%s' again", o.Name, cmd)
	}
	o.log.WithError(err).Debug("unlock the stick")
	return fmt.Errorf("%s could not be unlocked (%s); unplug it, plug it in again and run '%s' again", o.Name, Reason(err), cmd)
}

// Mount mounts the unlocked stick, or says why not in one sentence.
func (o *CommandStick) Mount(ctx context.Context) error {
	cmd := "tails-backup " + o.use.Command
	if _, err := o.Opened.Mount(ctx); err != nil {
		if errors.Is(err, udisks.ErrDeviceGone) {
			return fmt.Errorf("%s was unplugged; plug it in again and run '%s' again", o.Name, cmd)
		}
		o.log.WithError(err).Debug("mount the stick")
		return fmt.Errorf("the Persistent Storage of %s could not be opened (%s); unplug it, plug it in again and run '%s' again", o.Name, Reason(err), cmd)
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
func NotLockedText(name string, err error) string {
	return fmt.Sprintf("%s could not be locked again (%s); eject it in the Files browser before you unplug it.", name, Reason(err))
}

// LoadState reads the store. A missing file is a fresh state. A damaged (or newer) file was
// set aside by the store: it comes back as se, with a fresh state, for the caller to report.
func LoadState(ctx context.Context, store *pairing.Store) (st pairing.State, se *pairing.StateError, err error) {
	st, err = store.Load(ctx)
	if errors.As(err, &se) {
		return st, se, nil
	}
	if err != nil {
		return pairing.State{}, nil, fmt.Errorf("cannot read the pairing store %s (%s); check that it is readable by you", store.Path(), Reason(err))
	}
	return st, nil, nil
}

// UpdateState changes the store with fn. A damaged file is given to setAside (the store has
// set it aside) and fn is applied to a fresh state.
func UpdateState(ctx context.Context, store *pairing.Store, setAside func(*pairing.StateError), fn func(*pairing.State) error) (pairing.State, error) {
	st, err := store.Update(ctx, fn)
	var se *pairing.StateError
	if errors.As(err, &se) {
		setAside(se)
		st, err = store.Update(ctx, fn)
	}
	if err != nil {
		if errors.As(err, &se) {
			return pairing.State{}, fmt.Errorf("cannot use the pairing store %s (%s); move it away and try again", store.Path(), Reason(err))
		}
		return pairing.State{}, fmt.Errorf("cannot save the pairing store %s (%s); check that its folder is writable by you and try again", store.Path(), Reason(err))
	}
	return st, nil
}

// StateErrorText explains a store that could not be used, in one sentence.
func StateErrorText(se *pairing.StateError) string {
	what := "damaged"
	if errors.Is(se, pairing.ErrNewerState) {
		what = "written by a newer version of tails-backup"
	}
	where := "it was moved to " + se.SetAside
	if se.SetAside == "" {
		where = "it could not be moved aside"
	}
	detail := se.Err.Error()
	detail = strings.TrimPrefix(detail, se.Kind.Error()+": ")
	return fmt.Sprintf("The pairing store %s was %s, so %s and Tails Backup starts afresh; pair your backup Tails again with 'tails-backup pair' (detail: %s).",
		se.Path, what, where, detail)
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

// TimeText shows a time in the location of now, to the minute.
func TimeText(t, now time.Time) string {
	return t.In(now.Location()).Format("Mon 2 Jan 2006 15:04")
}

// CountText: "1 file", "3 files".
func CountText(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
