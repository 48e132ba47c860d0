package dbusapi

import (
	"context"
	"slices"
	"sync"
	"time"
)

// QuestionTimeout is how long a question waits for its answer before its first (safe) choice
// is taken.
const QuestionTimeout = 10 * time.Minute

// Questions asks a job's questions through Events and matches the answers that come through
// Backend.Answer, for a Backend to use.
type Questions struct {
	events  Events
	timeout time.Duration

	mu      sync.Mutex
	pending map[[2]string]*pending // by job and question ID
}

type pending struct {
	q      Question
	answer chan string // buffered 1
}

// NewQuestions returns Questions emitted through events, each answered with its first choice
// after timeout (QuestionTimeout when 0).
func NewQuestions(events Events, timeout time.Duration) *Questions {
	if timeout <= 0 {
		timeout = QuestionTimeout
	}
	return &Questions{events: events, timeout: timeout, pending: make(map[[2]string]*pending)}
}

// Ask emits the question q of job and waits for its answer: the ID of one of its choices, its
// first when no answer comes in time. It returns ctx's error when ctx ends first (the job was
// cancelled). q must have at least one choice and an ID unique within the job.
func (qs *Questions) Ask(ctx context.Context, job string, q Question) (string, error) {
	key := [2]string{job, q.ID}
	p := &pending{q: q, answer: make(chan string, 1)}
	qs.mu.Lock()
	qs.pending[key] = p
	qs.mu.Unlock()
	defer func() {
		qs.mu.Lock()
		delete(qs.pending, key)
		qs.mu.Unlock()
	}()
	qs.events.Question(job, q)
	timer := time.NewTimer(qs.timeout)
	defer timer.Stop()
	select {
	case a := <-p.answer:
		return a, nil
	case <-timer.C:
		return q.Choices[0].ID, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Answer gives the answer to a question being asked: NotFound when no such question waits,
// Refused when choice is not one of its choices.
func (qs *Questions) Answer(job, question, choice string) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	p, ok := qs.pending[[2]string{job, question}]
	if !ok {
		return &Error{Kind: NotFound, Text: textNoQuestion}
	}
	if !slices.ContainsFunc(p.q.Choices, func(c Choice) bool { return c.ID == choice }) {
		return Errorf(Refused, textBadChoice, choice)
	}
	select {
	case p.answer <- choice:
	default: // answered twice: the first answer counts
	}
	return nil
}
