package dbusapi

import "time"

// Status is what GetStatus returns: the whole state the app's overview shows.
type Status struct {
	IsBackup           bool // this Tails is itself a backup Tails
	PersistentStorage  bool // this Tails' Persistent Storage is unlocked
	Backups            []Backup
	RemindersEnabled   bool
	ReminderPeriodDays uint32
	SnoozedUntil       time.Time // zero: not snoozed
	NextReminder       time.Time // zero: none planned
	ReminderText       string    // the status sentence about the reminders
	Paused             bool      // automatic updates are held off
	PausedText         string
	Job                *Job // the job under way, nil when none
}

// Backup is a paired backup as the overview shows it.
type Backup struct {
	UUID        string
	Name        string // the stick's name as the notifications say it
	Paired      time.Time
	LastSuccess time.Time
	LastAttempt time.Time
	LastResult  string // the pairing store's words: success, failed, cancelled, incomplete ("" never tried)
	LastMessage string // the sentence that ended the last attempt
	AgeText     string // "Updated 3 days ago", "Never updated"
	Plugged     bool
	Device      string // when plugged
	// PassphraseFree: its updates need no passphrase (its key slot is recorded);
	// PassphraseFreeNext: the person asked for that, and the next update that asks its
	// passphrase adds the key slot.
	PassphraseFree     bool
	PassphraseFreeNext bool
}

// Job kinds.
const (
	KindUpdate  = "update"
	KindCreate  = "create"
	KindPair    = "pair"
	KindRestore = "restore"
	KindVerify  = "verify"
	KindPromote = "promote"
	// KindForget forgets a paired backup (Forget).
	KindForget = "forget"
	// KindPassphraseFree turns a paired backup's updates without the passphrase on or off
	// (SetPassphraseFree).
	KindPassphraseFree = "passphrase-free"
)

// Job is the job under way.
type Job struct {
	ID        string
	Kind      string // one of the Kind constants
	Backup    string // the backup's LUKS UUID, when known
	Device    string
	Automatic bool // the agent started it on plug
	// Progress is the job's last progress; a Backend may leave it nil, the Service then adds
	// the last Progress it emitted for that job.
	Progress *Progress
}

// Progress is how far a job is.
type Progress struct {
	Fraction    float64 // 0 to 1, -1 unknown
	Text        string  // "Copying: 1.2 GB of 3.4 GB"
	Step        string  // what the job is doing, a short sentence
	SecondsLeft int64   // -1 unknown
	Cancellable bool
	// WaitingForStick: the job waits for its stick to be plugged in (Step and Text say which,
	// to show as they are); it goes on by itself once it is, or ends at Cancel.
	WaitingForStick bool
}

// Purposes of ListSticks.
const (
	PurposeCreate  = "create"
	PurposePair    = "pair"
	PurposeRestore = "restore"
	PurposeVerify  = "verify"
)

// StickInfo is a stick plugged in, as ListSticks shows it for a purpose.
type StickInfo struct {
	Device       string // /dev/sdb
	Name         string
	Size         uint64 // bytes
	SizeText     string // "15.5 GB"
	Usable       bool
	Reason       string // why it is not usable, a sentence
	Paired       bool
	BackupOfThis bool     // a backup of this Tails
	Erase        []string // create only: what will be erased, one line each
	Confirm      string   // create only: a token naming this stick as it is now
}

// Message levels.
const (
	LevelInfo    = "info"
	LevelWarning = "warning"
)

// Question is what a job asks the person; the answer comes through Answer.
type Question struct {
	ID          string
	Title       string
	Body        string
	Choices     []Choice // the first is the safe default
	Destructive string   // the ID of a choice that deletes or overwrites ("" none)
}

// Choice is one answer to a Question.
type Choice struct {
	ID    string
	Label string
}

// Results of a job.
const (
	ResultSuccess   = "success"
	ResultFailed    = "failed"
	ResultCancelled = "cancelled"
)

// Result is how a job ended.
type Result struct {
	Result      string // ResultSuccess, ResultFailed or ResultCancelled
	Text        string // the closing sentence
	Backup      string // create and pair: the backup's LUKS UUID
	Differences []Difference
	Checks      []Check
}

// Difference is one way a backup differs from this Tails (verify).
type Difference struct {
	Path   string
	Change string
	Text   string
}

// Check is one boot-time check of a backup's system partition (verify).
type Check struct {
	Name string
	OK   bool
	Text string
}
