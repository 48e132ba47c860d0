// Package logtest gives tests a logger whose output is kept and shown when the test fails, and
// a context that ends with the test.
package logtest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// Buffer is a bytes.Buffer safe for concurrent use, to capture logs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// New returns a debug-level logger writing to the returned buffer, which the test's log shows
// when it fails.
func New(t *testing.T) (*logrus.Entry, *Buffer) {
	t.Helper()
	buf := &Buffer{}
	l := logrus.New()
	l.Out = buf
	l.Level = logrus.DebugLevel
	l.Formatter = &logrus.TextFormatter{DisableColors: true}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return logrus.NewEntry(l).WithField("test", t.Name()), buf
}

// Context returns a context that ends with the test or after a generous timeout.
func Context(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
