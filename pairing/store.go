// Package pairing is the pairing store: which backups this Tails is paired with, the result of
// each update, the reminder settings and the pause of a restore, kept in one JSON file written
// atomically.
package pairing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// StateFormat is the version of the state file format written by this code. Any change that
// adds or changes a field bumps it: older code then reports ErrNewerState instead of dropping
// what it does not understand. Format 2 added the pause (PausedUntil, PausedBy); a state
// without a pause is still written as format 1 (see MarshalState), which older code reads.
// Format 3 added PairedBackup.KeySlot, KeySlotOffered and KeySlotWanted; a state where no
// backup has one of them is written as before.
const StateFormat = 3

// MaxPause bounds how far ahead a pause of the automatic updates is honoured. A pause set
// further ahead comes from a clock that was wrong when it was written (Tails sets its clock once
// Tor is connected) or from a hand edit: it must not stop the updates for longer than that.
const MaxPause = 24 * time.Hour

// maxPauseOwners bounds PausedBy; the oldest owners (restores that crashed) go first.
const maxPauseOwners = 16

// DefaultReminderPeriod is how old the last successful update may get before a reminder.
const DefaultReminderPeriod = 7 * 24 * time.Hour

// SnoozeDuration is how long "Remind me tomorrow" silences the reminders.
const SnoozeDuration = 24 * time.Hour

// MaxStateSize bounds the state file: it holds a few hundred bytes per backup.
const MaxStateSize = 1 << 20

// maxMessage bounds the stored message of an attempt.
const maxMessage = 4096

// State is the pairing store: the backups paired with this Tails, how their updates went and
// the reminder settings. It holds no secret.
type State struct {
	// Format is the format of the file read; MarshalState writes the lowest one that holds the
	// state.
	Format int `json:"format"`
	// Backups are the paired backups, in pairing order.
	Backups []PairedBackup `json:"backups"`
	// LastSuccess is when an update of any backup last completed; zero if never.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastAttempt is the last update that was tried, whatever its result; nil if none.
	LastAttempt *Attempt `json:"last_attempt,omitempty"`
	// Reminder holds the reminder settings.
	Reminder ReminderSettings `json:"reminder"`
	// PausedUntil holds off the agent's automatic updates until then, while 'tails-backup
	// restore' runs: an update would overwrite the backup with the very data the user wants to
	// get back from it. Use Paused: a pause that has expired is ignored, so that a restore that
	// crashed cannot stop the updates for good.
	PausedUntil time.Time `json:"paused_until,omitzero"`
	// PausedBy names the holders of the pause ("restore 1234"): each ends only its own, and the
	// updates resume when none is left (or the pause expires).
	PausedBy []string `json:"paused_by,omitempty"`
}

// PairedBackup is a backup stick that the agent may update. It is recognised by the LUKS UUID
// of its Persistent Storage partition.
type PairedBackup struct {
	UUID string `json:"uuid"`
	// Label is how the user knows the stick (its model, or a name they gave it).
	Label string `json:"label,omitempty"`
	// Size is the size of the stick in bytes.
	Size uint64 `json:"size"`
	// Added is when it was paired.
	Added time.Time `json:"added"`
	// LastSuccess is when its last update completed; zero if never.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastAttempt is its last update, whatever its result; nil if none.
	LastAttempt *Attempt `json:"last_attempt,omitempty"`
	// KeySlot says that the backup has a key slot whose key this Tails keeps (the root
	// helper's add-key-slot): its updates need no passphrase. It is cleared when the key no
	// longer opens the backup and the person was told so, once; and when it is turned off.
	KeySlot bool `json:"key_slot,omitempty"`
	// KeySlotOffered says that the person was offered updates without the passphrase for this
	// backup (paired before they existed, or turned off), once, after a successful update;
	// KeySlotWanted that they took the offer: the next update that asks the passphrase adds
	// the key slot with it.
	KeySlotOffered bool `json:"key_slot_offered,omitempty"`
	KeySlotWanted  bool `json:"key_slot_wanted,omitempty"`
}

// OfferKeySlot tells whether the paired backup uuid, just updated with its passphrase, is to
// be offered updates without it: it has no key slot, and was never offered one. It records
// the offer, so that it is made once.
func (s *State) OfferKeySlot(uuid string) bool {
	b := s.Backup(uuid)
	if b == nil || b.KeySlot || b.KeySlotOffered || b.KeySlotWanted {
		return false
	}
	b.KeySlotOffered = true
	return true
}

// WantKeySlot records that the person took the offer for the paired backup uuid (the next
// update adds the key slot); it reports whether the backup is paired.
func (s *State) WantKeySlot(uuid string, on bool) bool {
	b := s.Backup(uuid)
	if b == nil {
		return false
	}
	b.KeySlotWanted = on && !b.KeySlot
	return true
}

// Result is how an update attempt ended.
type Result string

const (
	ResultSuccess    Result = "success"
	ResultFailed     Result = "failed"
	ResultCancelled  Result = "cancelled"
	ResultIncomplete Result = "incomplete" // some files could not be copied, or it was interrupted
)

// Attempt is one update attempt.
type Attempt struct {
	Time time.Time `json:"time"`
	// Backup is the LUKS UUID of the backup it was for.
	Backup string `json:"backup,omitempty"`
	Result Result `json:"result"`
	// Message is the one-sentence explanation shown to the user, if any. Never a secret.
	Message string `json:"message,omitempty"`
}

// ReminderSettings are the user's choices about reminders.
type ReminderSettings struct {
	// PeriodSeconds is how old the last successful update may get before a reminder; 0 means
	// DefaultReminderPeriod. Use State.ReminderPeriod to read it.
	PeriodSeconds int64 `json:"period_seconds,omitempty"`
	// SnoozedUntil silences the reminders until then.
	SnoozedUntil time.Time `json:"snoozed_until,omitzero"`
	// Disabled means the user asked never to be reminded.
	Disabled bool `json:"disabled,omitempty"`
	// LastShown is when a reminder was last shown.
	LastShown time.Time `json:"last_shown,omitzero"`
}

// NewState returns the state of a Tails that has never paired a backup.
func NewState() State { return State{Format: StateFormat, Backups: []PairedBackup{}} }

// ReminderPeriod returns the reminder period, DefaultReminderPeriod when unset.
func (s *State) ReminderPeriod() time.Duration {
	if s.Reminder.PeriodSeconds <= 0 {
		return DefaultReminderPeriod
	}
	return time.Duration(s.Reminder.PeriodSeconds) * time.Second
}

// Backup returns the paired backup with this LUKS UUID, or nil.
func (s *State) Backup(uuid string) *PairedBackup {
	for i := range s.Backups {
		if s.Backups[i].UUID == uuid {
			return &s.Backups[i]
		}
	}
	return nil
}

// IsPaired tells whether the backup with this LUKS UUID is paired.
func (s *State) IsPaired(uuid string) bool { return s.Backup(uuid) != nil }

// Pair adds a backup, or updates the label and size of one already paired (keeping its
// history). It refuses a UUID that is not a canonical LUKS UUID.
func (s *State) Pair(b PairedBackup) error {
	if !tails.ValidUUID(b.UUID) {
		return fmt.Errorf("pair backup: %q is not a LUKS UUID", b.UUID)
	}
	if old := s.Backup(b.UUID); old != nil {
		old.Label, old.Size = b.Label, b.Size
		return nil
	}
	if b.Added.IsZero() {
		return fmt.Errorf("pair backup %s: no pairing time", b.UUID)
	}
	s.Backups = append(s.Backups, b)
	return nil
}

// SetKeySlot records whether the paired backup uuid has a key slot whose key this Tails
// keeps; it reports whether the backup is paired.
func (s *State) SetKeySlot(uuid string, on bool) bool {
	b := s.Backup(uuid)
	if b == nil {
		return false
	}
	b.KeySlot = on
	if on {
		b.KeySlotWanted = false
	}
	return true
}

// Unpair forgets a backup; it reports whether it was paired.
func (s *State) Unpair(uuid string) bool {
	for i := range s.Backups {
		if s.Backups[i].UUID == uuid {
			s.Backups = append(s.Backups[:i], s.Backups[i+1:]...)
			return true
		}
	}
	return false
}

// RecordAttempt records how an update of the backup a.Backup ended, in the state and in that
// backup's entry (if it is paired). A success also moves LastSuccess and clears the snooze.
func (s *State) RecordAttempt(a Attempt) {
	if len(a.Message) > maxMessage {
		a.Message = strings.ToValidUTF8(a.Message[:maxMessage], "")
	}
	s.LastAttempt = &a
	b := s.Backup(a.Backup)
	if b != nil {
		bc := a
		b.LastAttempt = &bc
	}
	if a.Result == ResultSuccess {
		if a.Time.After(s.LastSuccess) {
			s.LastSuccess = a.Time
		}
		if b != nil && a.Time.After(b.LastSuccess) {
			b.LastSuccess = a.Time
		}
		s.Reminder.SnoozedUntil = time.Time{}
	}
}

// Snooze silences the reminders for SnoozeDuration from now ("Remind me tomorrow").
func (s *State) Snooze(now time.Time) { s.Reminder.SnoozedUntil = now.Add(SnoozeDuration) }

// ReminderShown records that a reminder was shown at now.
func (s *State) ReminderShown(now time.Time) { s.Reminder.LastShown = now }

// Paused tells whether the automatic updates are paused at now: until PausedUntil, unless
// that lies more than MaxPause ahead.
func (s *State) Paused(now time.Time) bool {
	return now.Before(s.PausedUntil) && s.PausedUntil.Sub(now) <= MaxPause
}

// Pause holds off the automatic updates until until, for owner. A pause that is no longer in
// force is replaced; one in force is extended if need be, and owner joins its holders.
func (s *State) Pause(owner string, until, now time.Time) {
	if !s.Paused(now) {
		s.PausedUntil, s.PausedBy = time.Time{}, nil
	}
	if until.After(s.PausedUntil) {
		s.PausedUntil = until
	}
	if !slices.Contains(s.PausedBy, owner) {
		s.PausedBy = append(s.PausedBy, owner)
	}
	if n := len(s.PausedBy); n > maxPauseOwners {
		s.PausedBy = slices.Clone(s.PausedBy[n-maxPauseOwners:])
	}
}

// Resume ends owner's part of the pause; the pause ends when no holder is left.
func (s *State) Resume(owner string) {
	s.PausedBy = slices.DeleteFunc(s.PausedBy, func(o string) bool { return o == owner })
	if len(s.PausedBy) == 0 {
		s.PausedUntil, s.PausedBy = time.Time{}, nil
	}
}

// PausedOnlyByUpdates tells whether the pause in force at now is held only by updates run at a
// terminal (`tails-backup update`, owner "update <pid>"), not by a restore ("restore <pid>"):
// the agent then says that an update, not a restore, is running.
func (s *State) PausedOnlyByUpdates(now time.Time) bool {
	if !s.Paused(now) || len(s.PausedBy) == 0 {
		return false
	}
	for _, o := range s.PausedBy {
		if kind, _, _ := strings.Cut(o, " "); kind != "update" {
			return false
		}
	}
	return true
}

// Validate checks a state read from disk or about to be written.
func (s *State) Validate() error {
	if s.Format < 1 || s.Format > StateFormat {
		return fmt.Errorf("format %d, want 1 to %d", s.Format, StateFormat)
	}
	seen := make(map[string]bool, len(s.Backups))
	for i, b := range s.Backups {
		if !tails.ValidUUID(b.UUID) {
			return fmt.Errorf("backup %d: %q is not a LUKS UUID", i, b.UUID)
		}
		if seen[b.UUID] {
			return fmt.Errorf("backup %s is listed twice", b.UUID)
		}
		seen[b.UUID] = true
		if b.Added.IsZero() {
			return fmt.Errorf("backup %s has no pairing time", b.UUID)
		}
		if b.LastAttempt != nil {
			if err := b.LastAttempt.validate(); err != nil {
				return fmt.Errorf("backup %s: %w", b.UUID, err)
			}
		}
	}
	if s.LastAttempt != nil {
		if err := s.LastAttempt.validate(); err != nil {
			return err
		}
	}
	if s.Reminder.PeriodSeconds < 0 || s.Reminder.PeriodSeconds > 366*24*3600 {
		return fmt.Errorf("reminder period of %d seconds is out of range", s.Reminder.PeriodSeconds)
	}
	if len(s.PausedBy) > maxPauseOwners {
		return fmt.Errorf("the pause has %d holders, at most %d", len(s.PausedBy), maxPauseOwners)
	}
	for _, o := range s.PausedBy {
		if o == "" || len(o) > 128 || !utf8.ValidString(o) {
			return fmt.Errorf("the pause has a holder %q that is empty, too long or not UTF-8", o)
		}
	}
	if len(s.PausedBy) > 0 && s.PausedUntil.IsZero() {
		return errors.New("the pause has holders but no end")
	}
	return nil
}

func (a *Attempt) validate() error {
	switch a.Result {
	case ResultSuccess, ResultFailed, ResultCancelled, ResultIncomplete:
	default:
		return fmt.Errorf("last attempt has result %q", a.Result)
	}
	if a.Time.IsZero() {
		return errors.New("last attempt has no time")
	}
	if a.Backup != "" && !tails.ValidUUID(a.Backup) {
		return fmt.Errorf("last attempt names backup %q, which is not a LUKS UUID", a.Backup)
	}
	if len(a.Message) > maxMessage {
		return errors.New("last attempt has a message longer than 4 KiB")
	}
	return nil
}

// ErrCorruptState: the state file could not be understood. It has been set aside (see
// StateError.SetAside) and the agent starts afresh: the user must pair their backups again.
var ErrCorruptState = errors.New("the tails-backup state file is damaged")

// ErrNewerState: the state file was written by a newer tails-backup. It has been set aside
// (see StateError.SetAside), so that the newer version can be restored by renaming it back.
var ErrNewerState = errors.New("the tails-backup state file was written by a newer version of tails-backup")

// StateError reports a state file that could not be used. errors.Is(err, ErrCorruptState) or
// errors.Is(err, ErrNewerState) tells which.
type StateError struct {
	Kind error // ErrCorruptState or ErrNewerState
	// Path is the state file; SetAside is where it was moved ("" if it could not be).
	Path, SetAside string
	// Err is the detail (the parse error, or why setting aside failed).
	Err error
}

func (e *StateError) Error() string {
	where := "it was moved to " + e.SetAside
	if e.SetAside == "" {
		where = "it could not be moved aside"
	}
	return fmt.Sprintf("%v (%s; %s): %v", e.Kind, e.Path, where, e.Err)
}

// Unwrap returns the kind and the detail.
func (e *StateError) Unwrap() []error { return []error{e.Kind, e.Err} }

// ParseState decodes a state file. It returns an error wrapping ErrNewerState for a format
// this code does not know, and one wrapping ErrCorruptState for anything else it cannot use:
// bad JSON, unknown fields, trailing data, invalid values, more than MaxStateSize bytes.
func ParseState(data []byte) (State, error) {
	if len(data) > MaxStateSize {
		return State{}, fmt.Errorf("%w: larger than %d bytes", ErrCorruptState, MaxStateSize)
	}
	// Read the format first, so that a newer file is not reported as corrupt because of a
	// field this code does not know.
	var head struct {
		Format json.RawMessage `json:"format"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	var format int
	if err := json.Unmarshal(head.Format, &format); err != nil || len(head.Format) == 0 {
		return State{}, fmt.Errorf("%w: no valid format number", ErrCorruptState)
	}
	if format > StateFormat {
		return State{}, fmt.Errorf("%w: format %d, this version knows %d", ErrNewerState, format, StateFormat)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return State{}, fmt.Errorf("%w: data after the JSON object", ErrCorruptState)
	}
	if err := s.Validate(); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if s.Backups == nil {
		s.Backups = []PairedBackup{}
	}
	return s, nil
}

// MarshalState encodes a valid state as the bytes of the state file, in the lowest format
// that holds it: format 1 unless a pause is set (2) or a backup has a key slot, or was offered one (3). A pause lasts minutes, so the store stays
// readable by an older tails-backup nearly all the time; one that meets a pause reports
// ErrNewerState (and sets the file aside to be renamed back) instead of calling it damaged.
func MarshalState(s State) ([]byte, error) {
	s.Format = 1
	if !s.PausedUntil.IsZero() || len(s.PausedBy) > 0 {
		s.Format = 2
	}
	if slices.ContainsFunc(s.Backups, func(b PairedBackup) bool { return b.KeySlot || b.KeySlotOffered || b.KeySlotWanted }) {
		s.Format = 3
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("refusing to write an invalid state: %w", err)
	}
	if s.Backups == nil {
		s.Backups = []PairedBackup{}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the state: %w", err)
	}
	return append(b, '\n'), nil
}

// DefaultStatePath returns where the state lives by default: on Tails, state.json in the
// tails-backup folder of the Persistent Storage (created, owned by amnesia, by the root helper
// when a backup is paired), so that it survives reboots; elsewhere, or before any pairing,
// $XDG_CONFIG_HOME/tails-backup/state.json.
func DefaultStatePath() (string, error) {
	// On Tails, inside the Persistent Storage, so that pairings survive a reboot.
	psDir := filepath.Join(tails.PersistentStorageMount, tails.StateDirName)
	if fi, err := os.Stat(psDir); err == nil && fi.IsDir() {
		return filepath.Join(psDir, "state.json"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the configuration folder: %w", err)
	}
	return filepath.Join(dir, "tails-backup", "state.json"), nil
}

// Store reads and writes the state file at one path. Writes are atomic (temporary file,
// fsync, rename, fsync of the folder; mode 0600) and serialised, within this process by a
// mutex and across processes (the agent and the command line) by a lock file next to it.
type Store struct {
	path string
	now  func() time.Time
	log  *logrus.Entry
	mu   sync.Mutex
}

// NewStore returns a Store for the state file at path. now dates set-aside files.
func NewStore(path string, now func() time.Time, log *logrus.Entry) *Store {
	return &Store{path: path, now: now, log: log}
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the state. A missing file is a fresh state (NewState) and no error. A file that
// cannot be used is moved aside and reported as a *StateError (ErrCorruptState or
// ErrNewerState) alongside a fresh state, which the caller may use after telling the user: it
// is never reset silently. Other errors (permissions, I/O) leave the file alone.
func (s *Store) Load(ctx context.Context) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock(ctx)
	if err != nil {
		return State{}, err
	}
	defer unlock()
	return s.loadLocked()
}

// Update reads the state, lets fn change it and writes it back, all under the lock. If fn
// returns an error nothing is written. If the file cannot be used, it is moved aside, fn is
// not called and the *StateError is returned: the next Update starts from a fresh state.
func (s *Store) Update(ctx context.Context, fn func(*State) error) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock(ctx)
	if err != nil {
		return State{}, err
	}
	defer unlock()
	st, err := s.loadLocked()
	if err != nil {
		return State{}, err
	}
	if err := fn(&st); err != nil {
		return State{}, err
	}
	if err := s.writeLocked(st); err != nil {
		return State{}, err
	}
	return st, nil
}

// Save replaces the state with st.
func (s *Store) Save(ctx context.Context, st State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.writeLocked(st)
}

func (s *Store) loadLocked() (State, error) {
	st, err := s.read()
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, ErrCorruptState) && !errors.Is(err, ErrNewerState) {
		return State{}, fmt.Errorf("read the state file %s: %w", s.path, err)
	}
	kind, suffix := ErrCorruptState, ".corrupt-"
	if errors.Is(err, ErrNewerState) {
		kind, suffix = ErrNewerState, ".newer-"
	}
	se := &StateError{Kind: kind, Path: s.path, Err: err}
	aside, aerr := s.setAside(suffix)
	if aerr != nil {
		se.Err = errors.Join(err, aerr)
	} else {
		se.SetAside = aside
	}
	s.log.WithFields(logrus.Fields{"path": s.path, "set_aside": se.SetAside}).WithError(err).Warn("state file unusable, starting afresh")
	return NewState(), se
}

// read reads and parses the state file: a missing file is a fresh state; a symlink or
// anything but a regular file, which this code never writes, is ErrCorruptState.
func (s *Store) read() (State, error) {
	f, err := os.OpenFile(s.path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return NewState(), nil
	case errors.Is(err, unix.ELOOP):
		return State{}, fmt.Errorf("%w: it is a symbolic link", ErrCorruptState)
	case err != nil:
		return State{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return State{}, err
	}
	if !fi.Mode().IsRegular() {
		return State{}, fmt.Errorf("%w: it is not a regular file", ErrCorruptState)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxStateSize+1))
	if err != nil {
		return State{}, err
	}
	return ParseState(data)
}

// setAside renames the state file to path+suffix+timestamp, never replacing an existing file.
func (s *Store) setAside(suffix string) (string, error) {
	base := s.path + suffix + s.now().UTC().Format("20060102T150405Z")
	for i := 1; i <= 100; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		err := unix.Renameat2(unix.AT_FDCWD, s.path, unix.AT_FDCWD, name, unix.RENAME_NOREPLACE)
		if err == nil {
			return name, syncDir(filepath.Dir(s.path))
		}
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// No RENAME_NOREPLACE on this file system: check, then rename.
			if _, serr := os.Lstat(name); serr == nil {
				continue
			}
			if err := os.Rename(s.path, name); err != nil {
				return "", fmt.Errorf("set aside the state file: %w", err)
			}
			return name, syncDir(filepath.Dir(s.path))
		}
		return "", fmt.Errorf("set aside the state file: %w", err)
	}
	return "", errors.New("set aside the state file: too many set-aside files already")
}

func (s *Store) writeLocked(st State) error {
	data, err := MarshalState(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the state folder: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write the state: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write the state: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the state: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("flush the state folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush the state folder: %w", err)
	}
	return nil
}

// lockPoll is how often a busy lock is retried.
const lockPoll = 20 * time.Millisecond

// lock takes an exclusive flock on path+".lock", retrying until ctx ends.
func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return nil, fmt.Errorf("create the state folder: %w", err)
	}
	f, err := os.OpenFile(s.path+".lock", os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the state lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock the state: %w", err)
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock the state: %w", ctx.Err())
		case <-t.C:
		}
	}
}
