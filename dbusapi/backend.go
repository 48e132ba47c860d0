package dbusapi

import (
	"context"
	"sync"
)

// Backend is what the API serves: the agent (agent/api) or the fake of the tests
// (dbusapitest). Each method returns quickly: a job runs on after its method has returned its
// ID, and reports through the Events the Backend was given. Errors are *Error when the app must
// tell them apart (Busy, NotFound, Refused); any other error is Failed.
type Backend interface {
	// Status is the whole state the overview shows.
	Status(ctx context.Context) (Status, error)
	// ListSticks lists the sticks plugged in for a purpose (PurposeCreate, PurposePair,
	// PurposeRestore or PurposeVerify; the Service refuses any other).
	ListSticks(ctx context.Context, purpose string) ([]StickInfo, error)
	// UpdateNow starts the update of a paired backup that is plugged in ("" the one plugged).
	UpdateNow(ctx context.Context, backup string) (job string, err error)
	// Create starts making a backup Tails on device; confirm is that stick's StickInfo.Confirm.
	Create(ctx context.Context, device, confirm string) (job string, err error)
	// Pair starts pairing the Tails stick on device as this Tails' backup.
	Pair(ctx context.Context, device string) (job string, err error)
	// Restore starts restoring this Tails' Persistent Storage from the backup on device.
	Restore(ctx context.Context, device string) (job string, err error)
	// Verify starts comparing the backup on device with this Tails.
	Verify(ctx context.Context, device string) (job string, err error)
	// Promote starts making this backup Tails the main Tails.
	Promote(ctx context.Context) (job string, err error)
	// Forget starts forgetting the paired backup uuid (plugged in or not): the job asks its
	// confirmation as a Question, then removes its key slot (when plugged in), the key kept
	// for it and its pairing, as 'tails-backup forget' does.
	Forget(ctx context.Context, backup string) (job string, err error)
	// SetPassphraseFree starts turning the updates without the passphrase of the paired backup
	// uuid on (its passphrase is asked once) or off (its key slot removed, the key shredded),
	// as 'tails-backup passphrase-free on|off' does; the job waits for the backup when it is
	// not plugged in.
	SetPassphraseFree(ctx context.Context, backup string, enabled bool) (job string, err error)
	// Cancel cancels a job; it returns at once, the job ends with JobFinished.
	Cancel(ctx context.Context, job string) error
	// Answer answers a Question a job asked.
	Answer(ctx context.Context, job, question, choice string) error
	// SetReminders turns the reminders on or off; periodDays is 1 to 90, or 0 to keep it.
	SetReminders(ctx context.Context, enabled bool, periodDays uint32) error
	// Snooze holds off the reminders for a day.
	Snooze(ctx context.Context) error
}

// Events is where a Backend reports what happens; the Service implements it by emitting the
// signals. The methods do not block on the app.
type Events interface {
	// Changed says that something GetStatus shows changed.
	Changed()
	// Progress says how far a job is.
	Progress(job string, p Progress)
	// Message is a sentence a job says on its way, at LevelInfo or LevelWarning.
	Message(job, level, text string)
	// Question asks the person something; the answer comes through Backend.Answer.
	Question(job string, q Question)
	// Finished says that a job ended.
	Finished(job string, r Result)
}

// Relay is an Events that passes each event on to the Events set by SetSink, and drops them
// while there is none: a Backend is made before the Service that serves it.
type Relay struct {
	mu   sync.Mutex
	sink Events
}

// SetSink sets where the events go (nil: nowhere).
func (r *Relay) SetSink(e Events) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sink = e
}

func (r *Relay) get() Events {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sink
}

// Changed implements Events.
func (r *Relay) Changed() {
	if e := r.get(); e != nil {
		e.Changed()
	}
}

// Progress implements Events.
func (r *Relay) Progress(job string, p Progress) {
	if e := r.get(); e != nil {
		e.Progress(job, p)
	}
}

// Message implements Events.
func (r *Relay) Message(job, level, text string) {
	if e := r.get(); e != nil {
		e.Message(job, level, text)
	}
}

// Question implements Events.
func (r *Relay) Question(job string, q Question) {
	if e := r.get(); e != nil {
		e.Question(job, q)
	}
}

// Finished implements Events.
func (r *Relay) Finished(job string, res Result) {
	if e := r.get(); e != nil {
		e.Finished(job, res)
	}
}
