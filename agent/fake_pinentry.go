package agent

import (
	"context"
	"fmt"
	"sync"
)

// FakeAnswer is one reply of FakeAsker: a passphrase, or an error (such as
// ErrPinentryCancelled).
type FakeAnswer struct {
	Pass string
	Err  error
}

// FakeAsker is a PassphraseAsker for tests: it replies with Answers in order (cancelling once
// they run out) and records the prompts it was given.
type FakeAsker struct {
	mu      sync.Mutex
	Answers []FakeAnswer
	prompts []Prompt
}

// AskPassphrase returns the next answer.
func (f *FakeAsker) AskPassphrase(ctx context.Context, p Prompt) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prompts = append(f.prompts, p)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ask passphrase: %w", err)
	}
	if len(f.prompts) > len(f.Answers) {
		return nil, fmt.Errorf("ask passphrase: %w", ErrPinentryCancelled)
	}
	a := f.Answers[len(f.prompts)-1]
	if a.Err != nil {
		return nil, a.Err
	}
	return []byte(a.Pass), nil
}

// Prompts returns the prompts shown so far.
func (f *FakeAsker) Prompts() []Prompt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Prompt(nil), f.prompts...)
}
