package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"tails-backup/internal/secmem"
)

// fakePinentry returns a Pinentry running the fake with these answers, the file where the
// fake logs the commands it receives, and the agent's log.
func fakePinentry(t *testing.T, answers ...string) (*Pinentry, string, *syncBuffer) {
	t.Helper()
	bin := fakeProgram(t, "fakepinentry")
	dir := t.TempDir()
	a, _ := json.Marshal(answers)
	cmdLog := filepath.Join(dir, "commands")
	t.Setenv("FAKEPIN_ANSWERS", string(a))
	t.Setenv("FAKEPIN_COUNTER", filepath.Join(dir, "counter"))
	t.Setenv("FAKEPIN_LOG", cmdLog)
	t.Setenv("PINENTRY_PROGRAM", bin)
	log, buf := testLog(t)
	p := NewPinentry(log)
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
	pass, err := p.AskPassphrase(testCtx(t), Prompt{Title: "x"})
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
	pass, err := p.AskPassphrase(testCtx(t), Prompt{
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
			pass, err := p.AskPassphrase(testCtx(t), Prompt{Title: "x"})
			if err == nil || pass != nil {
				t.Fatalf("got %q, %v", pass, err)
			}
			if errors.Is(err, ErrPinentryCancelled) != tc.cancelled {
				t.Errorf("cancelled = %v for %v", !tc.cancelled, err)
			}
			if errors.Is(err, ErrPinentryProtocol) != tc.protocol {
				t.Errorf("protocol error = %v for %v", !tc.protocol, err)
			}
			var pe *PinentryError
			if tc.code != 0 && (!errors.As(err, &pe) || pe.Code != tc.code) {
				t.Errorf("err = %v, want code %d", err, tc.code)
			}
		})
	}
}

func TestPinentryContextKillsIt(t *testing.T) {
	p, cmdLog, _ := fakePinentry(t, "!hang")
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := p.AskPassphrase(ctx, Prompt{Title: "x"})
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
	log, _ := testLog(t)
	p := &Pinentry{Program: filepath.Join(t.TempDir(), "nope"), log: log}
	if _, err := p.AskPassphrase(testCtx(t), Prompt{}); err == nil {
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
		{"three wrong", []string{"xyzzy-1", "xyzzy-2", "xyzzy-3", "right secret"}, nil, ErrTooManyTries, 3},
		{"cancelled at the second", []string{"xyzzy-1", "!cancel"}, nil, ErrPinentryCancelled, 1},
		{"other error stops at once", []string{"xyzzy-1", "right secret"}, func(string) error { return errBoom }, errBoom, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, cmdLog, logs := fakePinentry(t, tc.answers...)
			tries := 0
			var seen [][]byte
			err := AskWithRetries(testCtx(t), p, Prompt{Title: "Unlock", Description: "Backup"},
				RetryPolicy{IsWrong: isWrong, WrongText: "Wrong passphrase, try again."},
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
			if errors.Is(err, ErrTooManyTries) && !errors.Is(err, errWrong) {
				t.Error("ErrTooManyTries does not wrap the last error")
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
	ctx := testCtx(t)
	f := &FakeAsker{Answers: []FakeAnswer{{Pass: "a"}, {Pass: "b"}}}
	err := AskWithRetries(ctx, f, Prompt{Title: "T", Error: ""}, RetryPolicy{Tries: 2, IsWrong: func(error) bool { return true }},
		func([]byte) error { return errBoom })
	if !errors.Is(err, ErrTooManyTries) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	ps := f.Prompts()
	if len(ps) != 2 || ps[0].Error != "" || ps[1].Error != "Wrong passphrase, try again." {
		t.Errorf("prompts = %+v", ps)
	}
	// Without IsWrong, any error is final.
	f = &FakeAsker{Answers: []FakeAnswer{{Pass: "a"}, {Pass: "b"}}}
	if err := AskWithRetries(ctx, f, Prompt{}, RetryPolicy{}, func([]byte) error { return errBoom }); !errors.Is(err, errBoom) || errors.Is(err, ErrTooManyTries) {
		t.Fatalf("err = %v", err)
	}
	// A cancelled context stops between tries.
	cctx, cancel := context.WithCancel(ctx)
	f = &FakeAsker{Answers: []FakeAnswer{{Pass: "a"}, {Pass: "b"}}}
	err = AskWithRetries(cctx, f, Prompt{}, RetryPolicy{IsWrong: func(error) bool { return true }}, func([]byte) error { cancel(); return errBoom })
	if !errors.Is(err, context.Canceled) || len(f.Prompts()) != 1 {
		t.Fatalf("err = %v after %d prompts", err, len(f.Prompts()))
	}
}

func TestAssuanEscapeAndLine(t *testing.T) {
	if got := assuanEscape("a%b\nc\rd\te"); got != "a%25b%0Ac%0Dd%09e" {
		t.Errorf("escape = %q", got)
	}
	long := strings.Repeat("é%\n", 600)
	line := assuanLine("SETDESC", long)
	if len(line) > assuanLineMax {
		t.Errorf("line of %d bytes", len(line))
	}
	arg := strings.TrimPrefix(line, "SETDESC ")
	dec, err := appendPercentDecoded(nil, []byte(arg), 4096)
	if err != nil {
		t.Fatalf("cut inside an escape: %v", err)
	}
	if !utf8.Valid(dec) || !strings.HasPrefix(long, string(dec)) || len(dec) < 300 {
		t.Errorf("bad cut: %d bytes, valid=%v", len(dec), utf8.Valid(dec))
	}
	if got := assuanLine("SETTITLE", "short"); got != "SETTITLE short" {
		t.Errorf("line = %q", got)
	}
}

func TestParseAssuanResponse(t *testing.T) {
	cases := []struct {
		line string
		kind assuanKind
		code uint32
		text string
		err  bool
	}{
		{line: "OK", kind: assuanOK},
		{line: "OK Pleased to meet you", kind: assuanOK, text: "Pleased to meet you"},
		{line: "ERR 83886179 Operation cancelled <Pinentry>", kind: assuanErr, code: 83886179, text: "Operation cancelled <Pinentry>"},
		{line: "ERR 5 bad%0Aline", kind: assuanErr, code: 5, text: "bad\nline"},
		{line: "ERR", err: true},
		{line: "ERR x text", err: true},
		{line: "ERR 99999999999 too big", err: true},
		{line: "D abc", kind: assuanData},
		{line: "D", kind: assuanData},
		{line: "S PROGRESS 1", kind: assuanStatus, text: "PROGRESS 1"},
		{line: "# comment", kind: assuanComment},
		{line: "#", kind: assuanComment},
		{line: "INQUIRE PINENTRY_LAUNCHED", kind: assuanInquire, text: "PINENTRY_LAUNCHED"},
		{line: "", err: true},
		{line: "OKAY", err: true},
		{line: "Dsecret", err: true},
	}
	for _, tc := range cases {
		r, err := parseAssuanResponse([]byte(tc.line))
		if (err != nil) != tc.err {
			t.Errorf("%q: err = %v", tc.line, err)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("%q: the error quotes the line", tc.line)
			}
			continue
		}
		if r.Kind != tc.kind || r.Code != tc.code || r.Text != tc.text {
			t.Errorf("%q: got %+v", tc.line, r)
		}
	}
	for _, bad := range []string{"%", "%4", "%G0", "a%0"} {
		if _, err := appendPercentDecoded(nil, []byte(bad), 100); !errors.Is(err, ErrPinentryProtocol) {
			t.Errorf("decode %q: err = %v", bad, err)
		}
	}
	if _, err := appendPercentDecoded(nil, []byte("abcdef"), 5); err == nil {
		t.Error("limit not enforced")
	}
	if (&PinentryError{Code: 198}).Is(ErrPinentryCancelled) != true || (&PinentryError{Code: 83886142}).Is(ErrPinentryCancelled) {
		t.Error("cancellation codes")
	}
}

func TestLineReader(t *testing.T) {
	r := newLineReader(strings.NewReader("one\ntwo\nthree"), 16)
	for _, want := range []string{"one", "two"} {
		l, err := r.readLine()
		if err != nil || string(l) != want {
			t.Fatalf("got %q, %v", l, err)
		}
	}
	if _, err := r.readLine(); err == nil {
		t.Fatal("an unterminated last line was returned")
	}
	r.wipe()
	if bytes.Trim(r.buf, "\x00") != nil && len(bytes.Trim(r.buf, "\x00")) != 0 {
		t.Error("wipe left data")
	}
	r = newLineReader(strings.NewReader(strings.Repeat("x", 40)+"\n"), 16)
	if _, err := r.readLine(); !errors.Is(err, ErrPinentryProtocol) {
		t.Fatalf("long line: %v", err)
	}
}

func FuzzAssuanResponse(f *testing.F) {
	for _, s := range []string{"OK", "ERR 83886179 Operation cancelled <Pinentry>", "D p%25ss%0Aw", "S X", "# c", "INQUIRE X", "D %", "D %zz", "ERR 1 %"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseAssuanResponse(line)
		if err != nil {
			if !errors.Is(err, ErrPinentryProtocol) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.Kind == assuanData {
			dec, err := appendPercentDecoded(make([]byte, 0, 1), r.Data, maxPassphrase)
			if err == nil && len(dec) > len(r.Data) {
				t.Fatalf("decoding grew the data")
			}
		}
		// Escaping then decoding anything gives it back, and the line stays one line.
		esc := assuanEscape(string(line))
		if strings.ContainsAny(esc, "\n\r") {
			t.Fatalf("escaped text holds a line break: %q", esc)
		}
		dec, err := appendPercentDecoded(nil, []byte(esc), 4*len(line)+1)
		if err != nil || !bytes.Equal(dec, line) {
			t.Fatalf("round trip of %q: %q, %v", line, dec, err)
		}
		// The reader splits a stream into the same lines.
		lr := newLineReader(bytes.NewReader(append(append([]byte(nil), line...), '\n')), len(line)+2)
		got, err := lr.readLine()
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		if err != nil || !bytes.Equal(got, line) {
			t.Fatalf("line reader: %q, %v", got, err)
		}
	})
}
