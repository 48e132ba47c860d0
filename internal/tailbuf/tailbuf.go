// Package tailbuf keeps the end of what a child process writes: a bounded record of its
// standard error.
package tailbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is an io.Writer keeping the last maxLines lines written to it, each cut to
// maxLen bytes: a bounded record of a child's standard error. Safe for concurrent use.
type Buffer struct {
	mu       sync.Mutex
	maxLines int
	maxLen   int
	lines    []string
	partial  []byte
	// OnLine, if not nil, is called, outside the lock, for each complete line; set it before
	// the first Write.
	OnLine func(string)
}

// New returns a Buffer keeping maxLines lines of at most maxLen bytes.
func New(maxLines, maxLen int) *Buffer {
	return &Buffer{maxLines: maxLines, maxLen: maxLen}
}

func (t *Buffer) Write(p []byte) (int, error) {
	var done []string
	t.mu.Lock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := max(t.maxLen-len(t.partial), 0)
			t.partial = append(t.partial, p[:min(room, len(p))]...)
			break
		}
		room := max(t.maxLen-len(t.partial), 0)
		t.partial = append(t.partial, p[:min(room, i)]...)
		done = append(done, t.pushLocked())
		p = p[i+1:]
	}
	cb := t.OnLine
	t.mu.Unlock()
	if cb != nil {
		for _, l := range done {
			cb(l)
		}
	}
	return n, nil
}

// pushLocked moves the partial line into the ring and returns it.
func (t *Buffer) pushLocked() string {
	l := strings.ToValidUTF8(string(t.partial), "?")
	t.partial = t.partial[:0]
	t.lines = append(t.lines, l)
	if len(t.lines) > t.maxLines {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.maxLines:]...)
	}
	return l
}

// Lines returns the last lines, including an unfinished last line.
func (t *Buffer) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, strings.ToValidUTF8(string(t.partial), "?"))
		if len(out) > t.maxLines {
			out = out[1:]
		}
	}
	return out
}
