package main

import (
	"bytes"
	"testing"

	"tails-backup/wire"
)

// TestCreateProgress: create's percentage is progressFraction's (changes and bytes count), never
// 100% before the operation ended, and its 100% is shown once.
func TestCreateProgress(t *testing.T) {
	ev := func(phase string, files, filesTotal, bytes, bytesTotal int64) wire.Event {
		return wire.Event{Event: wire.EventProgress, Phase: phase, FilesDone: files, FilesTotal: filesTotal, BytesDone: bytes, BytesTotal: bytesTotal}
	}
	tests := []struct {
		name     string
		terminal bool
		events   []wire.Event
		complete bool
		want     string
	}{
		{"bytes all copied, changes left: not 100%", false,
			[]wire.Event{ev("copy", 1261, 2011, 1<<20, 1<<20)}, false, "      62%\n"},
		{"everything counted waits for the end", false,
			[]wire.Event{ev("system", 1, 4, 25, 100), ev("system", 2, 4, 50, 100), ev("system", 4, 4, 100, 100)}, true,
			"      25%\n      50%\n      100%\n"},
		{"the final event and Complete: 100% once", false,
			[]wire.Event{ev("copy", 3, 3, 30, 30), ev("done", 3, 3, 30, 30), ev("done", 3, 3, 30, 30)}, true, "      100%\n"},
		{"the scan is not shown", false, []wire.Event{ev("scan", 0, 3, 0, 30)}, true, ""},
		{"everything counted at once: 100% at the end", false, []wire.Event{ev("scan", 0, 3, 0, 30), ev("copy", 3, 3, 30, 30)}, true, "      100%\n"},
		{"terminal: 99% until the end, then 100% once", true,
			[]wire.Event{ev("copy", 1, 2, 10, 10), ev("copy", 2, 2, 10, 10), ev("done", 2, 2, 10, 10)}, true,
			"\r\033[K      50%\r\033[K      99%\r\033[K      100%\n"},
		{"terminal: an operation that failed ends its line below 100%", true,
			[]wire.Event{ev("copy", 1, 2, 10, 10)}, false, "\r\033[K      50%\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &createProgress{w: &out, terminal: tt.terminal, pct: -1}
			for _, e := range tt.events {
				p.Event(e)
			}
			if tt.complete {
				p.Complete()
			}
			p.Finish()
			if got := out.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
