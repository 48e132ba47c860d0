package pinentry_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"tails-backup/internal/logtest"
	"testing"
	"time"

	"tails-backup/internal/secmem"
	"tails-backup/pinentry"
	"tails-backup/pinentry/pinentrytest"
)

var _ pinentry.PassphraseAsker = (*pinentry.Pinentry)(nil)

// fakePinentry returns a pinentry.Pinentry running the fake with these answers, the file where the
// fake logs the commands it receives, and the agent's log.
func fakePinentry(t *testing.T, answers ...string) (*pinentry.Pinentry, string, *logtest.Buffer) {
	t.Helper()
	bin := fakeProgram(t)
	cmdLog := pinentrytest.Script(t, bin, answers...)
	log, buf := logtest.New(t)
	p := pinentry.NewPinentry(log)
	if p.Program != bin {
		t.Fatalf("PINENTRY_PROGRAM not honoured: %s", p.Program)
	}
	return p, cmdLog, buf
}

func readCommands(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestPinentryPassphraseIsLocked: the passphrase comes back in a page locked in RAM, which
// Wipe clears and unlocks; the buffers it passed through are unlocked when the dialog ends.
func TestPinentryPassphraseIsLocked(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (or a RLIMIT_MEMLOCK) to be sure mlock works")
	}
	p, _, _ := fakePinentry(t, "locked secret")
	before, err := secmem.LockedBytes()
	if err != nil {
		t.Fatal(err)
	}
	pass, err := p.AskPassphrase(logtest.Context(t), pinentry.Prompt{Title: "x"})
	if err != nil {
		t.Fatal(err)
	}
	held, _ := secmem.LockedBytes()
	if string(pass) != "locked secret" || held-before != secmem.Size {
		t.Errorf("holding %q: %d bytes more locked, want one page (%d)", pass, held-before, secmem.Size)
	}
	secmem.Wipe(pass)
	if after, _ := secmem.LockedBytes(); after != before {
		t.Errorf("%d bytes locked after Wipe, %d before the dialog", after, before)
	}
	if !bytes.Equal(pass[:cap(pass)], make([]byte, cap(pass))) {
		t.Error("Wipe left the passphrase in its buffer")
	}
}

func TestPinentryAsksAndDecodes(t *testing.T) {
	secret := "p%ss\nw0rd\r é 100%"
	p, cmdLog, logs := fakePinentry(t, secret)
	pass, err := p.AskPassphrase(logtest.Context(t), pinentry.Prompt{
		Title:       "Tails Backup",
		Description: "Enter the passphrase of your backup.\n50% done",
		Prompt:      "Passphrase:",
		OK:          "Unlock",
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(pass) != secret {
		t.Errorf("passphrase = %q, want %q", pass, secret)
	}
	want := []string{
		"0: SETTITLE Tails Backup",
		"0: SETDESC Enter the passphrase of your backup.%0A50%25 done",
		"0: SETPROMPT Passphrase:",
		"0: SETOK Unlock",
		"0: GETPIN",
		"0: BYE",
	}
	if got := readCommands(t, cmdLog); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(logs.String(), "w0rd") {
		t.Error("the passphrase reached the log")
	}
}

func TestPinentryFailures(t *testing.T) {
	cases := []struct {
		answer    string
		cancelled bool
		protocol  bool
		code      uint32
	}{
		{answer: "!cancel", cancelled: true, code: 83886179},
		{answer: "!timeout", code: 83886142},
		{answer: "!crash"},
		{answer: "!garbage", protocol: true},
		{answer: "!unknown", protocol: true},
	}
	for _, tc := range cases {
		t.Run(tc.answer, func(t *testing.T) {
			p, _, _ := fakePinentry(t, tc.answer)
			pass, err := p.AskPassphrase(logtest.Context(t), pinentry.Prompt{Title: "x"})
			if err == nil || pass != nil {
				t.Fatalf("got %q, %v", pass, err)
			}
			if errors.Is(err, pinentry.ErrPinentryCancelled) != tc.cancelled {
				t.Errorf("cancelled = %v for %v", !tc.cancelled, err)
			}
			if errors.Is(err, pinentry.ErrPinentryProtocol) != tc.protocol {
				t.Errorf("protocol error = %v for %v", !tc.protocol, err)
			}
			var pe *pinentry.PinentryError
			if tc.code != 0 && (!errors.As(err, &pe) || pe.Code != tc.code) {
				t.Errorf("err = %v, want code %d", err, tc.code)
			}
		})
	}
}

func TestPinentryContextKillsIt(t *testing.T) {
	p, cmdLog, _ := fakePinentry(t, "!hang")
	ctx, cancel := context.WithCancel(logtest.Context(t))
	done := make(chan error, 1)
	go func() {
		_, err := p.AskPassphrase(ctx, pinentry.Prompt{Title: "x"})
		done <- err
	}()
	// Wait until the dialog is up (GETPIN received), then cancel.
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(cmdLog)
		if bytes.Contains(b, []byte("GETPIN")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake never got GETPIN")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("AskPassphrase did not return after cancel")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to stop", d)
	}
}

func TestPinentryMissingProgram(t *testing.T) {
	log, _ := logtest.New(t)
	p := pinentry.NewPinentry(log)
	p.Program = filepath.Join(t.TempDir(), "nope")
	if _, err := p.AskPassphrase(logtest.Context(t), pinentry.Prompt{}); err == nil {
		t.Fatal("no error")
	}
}

func TestAskWithRetriesRealPinentry(t *testing.T) {
	errWrong := errors.New("wrong passphrase")
	isWrong := func(err error) bool { return errors.Is(err, errWrong) }
	cases := []struct {
		name      string
		answers   []string
		tryErr    func(pass string) error
		wantErr   error
		wantTries int
	}{
		{"right at the third try", []string{"xyzzy-1", "xyzzy-2", "right secret"}, nil, nil, 3},
		{"right at once", []string{"right secret"}, nil, nil, 1},
		{"three wrong", []string{"xyzzy-1", "xyzzy-2", "xyzzy-3", "right secret"}, nil, pinentry.ErrTooManyTries, 3},
		{"cancelled at the second", []string{"xyzzy-1", "!cancel"}, nil, pinentry.ErrPinentryCancelled, 1},
		{"other error stops at once", []string{"xyzzy-1", "right secret"}, func(string) error { return errBoom }, errBoom, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, cmdLog, logs := fakePinentry(t, tc.answers...)
			tries := 0
			var seen [][]byte
			err := pinentry.AskWithRetries(logtest.Context(t), p, pinentry.Prompt{Title: "Unlock", Description: "Backup"},
				pinentry.RetryPolicy{IsWrong: isWrong, WrongText: "Wrong passphrase, try again."},
				func(pass []byte) error {
					tries++
					seen = append(seen, pass)
					if tc.tryErr != nil {
						return tc.tryErr(string(pass))
					}
					if string(pass) != "right secret" {
						return errWrong
					}
					return nil
				})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, pinentry.ErrTooManyTries) && !errors.Is(err, errWrong) {
				t.Error("pinentry.ErrTooManyTries does not wrap the last error")
			}
			if tries != tc.wantTries {
				t.Errorf("tried %d times, want %d", tries, tc.wantTries)
			}
			for _, s := range seen {
				if strings.Trim(string(s), "\x00") != "" {
					t.Errorf("a passphrase buffer was not cleared: %q", s)
				}
			}
			cmds := strings.Join(readCommands(t, cmdLog), "\n")
			for i := 0; i < len(tc.answers); i++ {
				hasErr := strings.Contains(cmds, strconvItoa(i)+": SETERROR Wrong passphrase, try again.")
				asked := strings.Contains(cmds, strconvItoa(i)+": GETPIN")
				if hasErr != (i > 0 && asked) {
					t.Errorf("dialog %d: SETERROR sent = %v (asked = %v)", i, hasErr, asked)
				}
			}
			for _, a := range tc.answers {
				if !strings.HasPrefix(a, "!") && (strings.Contains(logs.String(), a) || strings.Contains(cmds, a)) {
					t.Errorf("passphrase %q leaked into the logs or back to pinentry", a)
				}
			}
		})
	}
}

var errBoom = errors.New("boom")

func strconvItoa(i int) string { return string(rune('0' + i)) }

func TestAskWithRetriesFake(t *testing.T) {
	ctx := logtest.Context(t)
	f := &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{{Pass: "a"}, {Pass: "b"}}}
	err := pinentry.AskWithRetries(ctx, f, pinentry.Prompt{Title: "T", Error: ""}, pinentry.RetryPolicy{Tries: 2, IsWrong: func(error) bool { return true }},
		func([]byte) error { return errBoom })
	if !errors.Is(err, pinentry.ErrTooManyTries) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	ps := f.Prompts()
	if len(ps) != 2 || ps[0].Error != "" || ps[1].Error != "Wrong passphrase, try again." {
		t.Errorf("prompts = %+v", ps)
	}
	// Without IsWrong, any error is final.
	f = &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{{Pass: "a"}, {Pass: "b"}}}
	if err := pinentry.AskWithRetries(ctx, f, pinentry.Prompt{}, pinentry.RetryPolicy{}, func([]byte) error { return errBoom }); !errors.Is(err, errBoom) || errors.Is(err, pinentry.ErrTooManyTries) {
		t.Fatalf("err = %v", err)
	}
	// A cancelled context stops between tries.
	cctx, cancel := context.WithCancel(ctx)
	f = &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{{Pass: "a"}, {Pass: "b"}}}
	err = pinentry.AskWithRetries(cctx, f, pinentry.Prompt{}, pinentry.RetryPolicy{IsWrong: func(error) bool { return true }}, func([]byte) error { cancel(); return errBoom })
	if !errors.Is(err, context.Canceled) || len(f.Prompts()) != 1 {
		t.Fatalf("err = %v after %d prompts", err, len(f.Prompts()))
	}
}
