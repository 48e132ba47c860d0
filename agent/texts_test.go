package agent

import (
	"strings"
	"testing"
	"time"
)

func TestAboutDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Second, "less than a minute"},
		{70 * time.Second, "about a minute"},
		{2*time.Minute + 20*time.Second, "about 2 minutes"},
		{2*time.Minute + 40*time.Second, "about 3 minutes"},
		{time.Hour, "about 1 hour"},
		{2*time.Hour + 5*time.Minute, "about 2 hours 5 minutes"},
	}
	for _, tt := range tests {
		if got := aboutDuration(nil, tt.d); got != tt.want {
			t.Errorf("aboutDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestNotificationTexts(t *testing.T) {
	if got := reminderNote(nil, 1).Summary; got != "Your backup Tails is 1 day old" {
		t.Errorf("reminder summary %q", got)
	}
	if got := reminderNote(nil, 9).Summary; got != "Your backup Tails is 9 days old" {
		t.Errorf("reminder summary %q", got)
	}
	for _, a := range reminderNote(nil, 9).Actions {
		if a.Command == "" {
			t.Errorf("reminder action %q has no fallback text for servers without actions", a.Key)
		}
	}
	d := doneNote(nil, Summary{Changed: 3, BytesCopied: 12_500_000, ErrorCount: 1, Skipped: "Thunderbird Email Client"})
	for _, want := range []string{"3 files changed", "12.5 MB copied", "Thunderbird Email Client was skipped", "1 file could not be copied"} {
		if !strings.Contains(d.Body, want) {
			t.Errorf("done body %q lacks %q", d.Body, want)
		}
	}
	p := progressNote(nil, 45, 2*time.Minute, true)
	if !strings.Contains(p.Body, "45% done, about 2 minutes left") || !p.HasProgress || p.Progress != 45 {
		t.Errorf("progress note %+v", p)
	}
}
