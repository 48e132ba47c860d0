// Package pinentrytest provides fakes of pinentry for tests: FakeAsker, an in-process
// pinentry.PassphraseAsker, and Script, which scripts the fake pinentry program of testdata.
package pinentrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"tails-backup/pinentry"
)

// FakeAnswer is one reply of FakeAsker: a passphrase, or an error (such as
// pinentry.ErrPinentryCancelled).
type FakeAnswer struct {
	Pass string
	Err  error
}

// FakeAsker is a pinentry.PassphraseAsker for tests: it replies with Answers in order (cancelling once
// they run out) and records the prompts it was given.
type FakeAsker struct {
	mu      sync.Mutex
	Answers []FakeAnswer
	prompts []pinentry.Prompt
}

// AskPassphrase returns the next answer.
func (f *FakeAsker) AskPassphrase(ctx context.Context, p pinentry.Prompt) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prompts = append(f.prompts, p)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ask passphrase: %w", err)
	}
	if len(f.prompts) > len(f.Answers) {
		return nil, fmt.Errorf("ask passphrase: %w", pinentry.ErrPinentryCancelled)
	}
	a := f.Answers[len(f.prompts)-1]
	if a.Err != nil {
		return nil, a.Err
	}
	return []byte(a.Pass), nil
}

// Prompts returns the prompts shown so far.
func (f *FakeAsker) Prompts() []pinentry.Prompt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pinentry.Prompt(nil), f.prompts...)
}

var _ pinentry.PassphraseAsker = (*FakeAsker)(nil)

// Script makes the fake pinentry program (testdata/fakepinentry, built to bin) the one that
// pinentry.NewPinentry runs (PINENTRY_PROGRAM) for the rest of the test: its invocation N
// answers with answers[N], the last one when fewer ("!cancel" cancels; the other scripts are
// described in testdata/fakepinentry). It returns the file where the fake logs the commands it
// receives.
func Script(t testing.TB, bin string, answers ...string) (log string) {
	t.Helper()
	dir := t.TempDir()
	a, _ := json.Marshal(answers)
	log = filepath.Join(dir, "log")
	t.Setenv("FAKEPIN_ANSWERS", string(a))
	t.Setenv("FAKEPIN_COUNTER", filepath.Join(dir, "counter"))
	t.Setenv("FAKEPIN_LOG", log)
	t.Setenv("PINENTRY_PROGRAM", bin)
	return log
}
