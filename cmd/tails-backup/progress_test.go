package main

import (
	"bytes"
	"strings"
	"testing"

	tbsync "tails-backup/sync"
)

// TestProgressNeverFullBeforeTheEnd: the percentage counts the changes as well as the bytes, so
// that it does not say 100% while changes remain (it did at 1261/2011 changes, all bytes copied).
func TestProgressNeverFullBeforeTheEnd(t *testing.T) {
	tests := []struct {
		name     string
		p        tbsync.Progress
		min, max int // percent
	}{
		{"bytes all copied, changes left", tbsync.Progress{Phase: tbsync.PhaseCopy, FilesDone: 1261, FilesTotal: 2011, BytesDone: 1 << 20, BytesTotal: 1 << 20}, 55, 70},
		{"one big file being copied", tbsync.Progress{Phase: tbsync.PhaseCopy, FilesDone: 0, FilesTotal: 1, BytesDone: 1 << 30, BytesTotal: 2 << 30}, 45, 55},
		{"everything counted, not ended", tbsync.Progress{Phase: tbsync.PhaseCopy, FilesDone: 4, FilesTotal: 4, BytesDone: 10, BytesTotal: 10}, 99, 99},
		{"no data, changes only", tbsync.Progress{Phase: tbsync.PhaseCopy, FilesDone: 1, FilesTotal: 4}, 25, 25},
		{"ended", tbsync.Progress{Phase: tbsync.PhaseDone, FilesDone: 4, FilesTotal: 4, BytesDone: 10, BytesTotal: 10}, 100, 100},
		{"ended early", tbsync.Progress{Phase: tbsync.PhaseDone, FilesDone: 3, FilesTotal: 4}, 75, 75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := int(progressFraction(tt.p) * 100); got < tt.min || got > tt.max {
				t.Errorf("%d%%, want %d..%d%%", got, tt.min, tt.max)
			}
			var out bytes.Buffer
			(&progressBar{w: &out, terminal: true}).update(tt.p)
			if tt.max < 100 && strings.Contains(out.String(), "100%") {
				t.Errorf("the bar says %q", out.String())
			}
		})
	}
}

// TestProgressFinalLineOnce: the final line is drawn once, whatever comes after it, and a line
// equal to the one drawn last is not drawn again.
func TestProgressFinalLineOnce(t *testing.T) {
	for _, terminal := range []bool{true, false} {
		var out bytes.Buffer
		b := &progressBar{w: &out, terminal: terminal}
		copying := tbsync.Progress{Phase: tbsync.PhaseCopy, FilesDone: 4, FilesTotal: 4, BytesDone: 2048, BytesTotal: 2048, Path: "a"}
		done := tbsync.Progress{Phase: tbsync.PhaseDone, FilesDone: 4, FilesTotal: 4, BytesDone: 2048, BytesTotal: 2048}
		b.update(copying)
		b.update(copying)
		b.update(done)
		b.update(done)
		got := out.String()
		if n := strings.Count(got, "100% 4/4 changes"); n != 1 {
			t.Errorf("terminal %v: the final line is drawn %d times: %q", terminal, n, got)
		}
		if n := strings.Count(got, " 99% 4/4 changes"); n != 1 && terminal {
			t.Errorf("terminal %v: the same line is drawn %d times: %q", terminal, n, got)
		}
		if !strings.HasSuffix(got, "\n") || (terminal && strings.Count(got, "\n") != 1) {
			t.Errorf("terminal %v: %q does not end with one line end", terminal, got)
		}
	}
}
