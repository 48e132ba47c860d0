package agent

import (
	"bytes"
	"strings"
	"sync"
)

// tailBuffer is an io.Writer keeping the last maxLines lines written to it, each cut to
// maxLen bytes: a bounded record of a child's standard error. Safe for concurrent use.
type tailBuffer struct {
	mu       sync.Mutex
	maxLines int
	maxLen   int
	lines    []string
	partial  []byte
	onLine   func(string) // called, outside the lock, for each complete line; may be nil
}

func newTailBuffer(maxLines, maxLen int) *tailBuffer {
	return &tailBuffer{maxLines: maxLines, maxLen: maxLen}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
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
	cb := t.onLine
	t.mu.Unlock()
	if cb != nil {
		for _, l := range done {
			cb(l)
		}
	}
	return n, nil
}

// pushLocked moves the partial line into the ring and returns it.
func (t *tailBuffer) pushLocked() string {
	l := strings.ToValidUTF8(string(t.partial), "?")
	t.partial = t.partial[:0]
	t.lines = append(t.lines, l)
	if len(t.lines) > t.maxLines {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.maxLines:]...)
	}
	return l
}

// Lines returns the last lines, including an unfinished last line.
func (t *tailBuffer) Lines() []string {
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
