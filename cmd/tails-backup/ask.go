package main

// The session flows' questions on the terminal (the UIs of session.Pair, session.Restore and
// session.Verify): one line an answer.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"tails-backup/pairing"
	"tails-backup/session"
)

// confirm asks a yes/no question on standard output and reads the answer on standard input;
// anything but y or yes (including no input) is no.
func confirm(env *environment, question string) bool {
	// TRANSLATORS: %s is a question; y and N are the answers typed, they stay y and N.
	fmt.Fprint(env.stdout, env.loc.Tr("%s [y/N] ", question))
	line, _ := bufio.NewReader(io.LimitReader(env.stdin, 1024)).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	if !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(env.stdout) // no answer: end the question's line
	}
	return false
}

func isYes(answer string) bool {
	a := strings.ToLower(answer)
	return a == "y" || a == "yes"
}

// lineReader reads answers one line at a time, reading no byte beyond the line, so that the
// next question gets the next line.
type lineReader struct {
	r io.Reader
}

// errNoAnswer: the input ended before an answer.
var errNoAnswer = session.ErrNoAnswer

// ask writes prompt and returns the next line, trimmed. It returns errNoAnswer at the end of
// the input, or ctx's error when ctx ends first (Ctrl-C).
func (l *lineReader) ask(ctx context.Context, w io.Writer, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var b []byte
		one := make([]byte, 1)
		for len(b) < 1024 {
			n, err := l.r.Read(one)
			if n == 1 {
				if one[0] == '\n' {
					ch <- result{strings.TrimSpace(string(b)), nil}
					return
				}
				b = append(b, one[0])
				continue
			}
			if err != nil {
				if len(b) > 0 {
					ch <- result{strings.TrimSpace(string(b)), nil}
				} else {
					ch <- result{"", errNoAnswer}
				}
				return
			}
		}
		ch <- result{strings.TrimSpace(string(b)), nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			fmt.Fprintln(w) // end the question's line
		}
		return r.line, r.err
	case <-ctx.Done():
		fmt.Fprintln(w)
		return "", ctx.Err()
	}
}

// terminal is how the session flows ask and tell the person at a terminal: questions and
// lines on standard output, warnings on standard error.
type terminal struct {
	env *environment
}

func (t *terminal) Sticks(cands []session.Stick, st *pairing.State) {
	printCandidates(t.env.loc, t.env.stdout, cands, st)
}

func (t *terminal) Confirm(ctx context.Context, question string) bool {
	return confirm(t.env, question)
}

func (t *terminal) Say(s string) { fmt.Fprintln(t.env.stdout, s) }

func (t *terminal) Warn(s string) { fmt.Fprintln(t.env.stderr, t.env.loc.Tr("Warning: %s", s)) }

func (t *restoreTerminal) ConfirmRestore(ctx context.Context, other bool) bool {
	if other {
		// TRANSLATORS: "restore" is the word to type; it stays "restore".
		answer, _ := t.in.ask(ctx, t.env.stdout, t.env.loc.Tr("Type restore to restore from this backup of another Tails, or anything else to cancel: "))
		return answer == "restore"
	}
	// TRANSLATORS: y and N are the answers typed; they stay y and N.
	answer, _ := t.in.ask(ctx, t.env.stdout, t.env.loc.Tr("Restore your Persistent Storage from this backup? [y/N] "))
	return isYes(answer)
}

// AskApp asks what to do about an open application: c (close it) or r (try again), s (leave
// its data), anything else cancels.
func (t *restoreTerminal) AskApp(ctx context.Context, q session.AppQuestion) (session.AppAnswer, error) {
	w := t.env.stdout
	prompt := t.env.loc.Tr("[c] close %s and continue, [s] leave its data as it is, [N] cancel: ", q.App)
	again := "c"
	if !q.Closable {
		prompt = t.env.loc.Tr("[r] try again, [s] leave its data as it is, [N] cancel: ")
		again = "r"
	}
	fmt.Fprintln(w, q.Text)
	answer, err := t.in.ask(ctx, w, prompt)
	if err != nil {
		return session.AppCancel, err
	}
	switch strings.ToLower(answer) {
	case "s":
		return session.AppLeave, nil
	case again:
		return session.AppAgain, nil
	}
	return session.AppCancel, nil
}
