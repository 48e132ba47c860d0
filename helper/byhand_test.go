package helper

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestRunByHand: run by hand (nothing on standard input, or not as root), the helper says so in
// one sentence, which its log repeats once without an empty error field.
func TestRunByHand(t *testing.T) {
	tests := []struct {
		name   string
		euid   int
		substr string
	}{
		{"empty input as root", 0, "not meant to be run by hand (the session agent and the tails-backup commands run it through sudo)"},
		{"not root", 1000, "must run as root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, logs bytes.Buffer
			l := logrus.New()
			l.SetOutput(&logs)
			sys := System{UDisks: nopUDisks{}, Euid: func() int { return tt.euid }}
			err := Run(t.Context(), strings.NewReader(""), &out, sys, logrus.NewEntry(l))
			if err == nil || !strings.Contains(out.String(), tt.substr) {
				t.Errorf("error %v, event %q; want one containing %q", err, out.String(), tt.substr)
			}
			if strings.Contains(out.String(), "report the bug") {
				t.Errorf("the event asks to report a bug: %q", out.String())
			}
			if strings.Contains(logs.String(), `error="<nil>"`) || strings.Count(logs.String(), "\n") != 1 {
				t.Errorf("log %q, want one line without an empty error", logs.String())
			}
		})
	}
}
