package main

// The terminal questions the session commands share (restore, update): one answer a line.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// lineReader reads answers one line at a time, reading no byte beyond the line, so that the
// next question gets the next line.
type lineReader struct {
	r io.Reader
}

// errNoAnswer: the input ended before an answer.
var errNoAnswer = errors.New("no answer")

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
