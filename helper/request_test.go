//go:build linux

package helper

import (
	"strings"
	"testing"
	"time"

	"tails-backup/tails"
	"tails-backup/wire"
)

// TestHostileRequests: malformed and hostile requests, and a helper not run as root, are refused
// with one clear error and nothing is written to either tree.
func TestHostileRequests(t *testing.T) {
	valid := request(wire.OpUpdate, dstUUID)
	tests := []struct {
		name   string
		input  string
		noEOF  bool // keep standard input open after input
		euid   int
		code   wire.ErrorCode
		substr string
	}{
		{name: "not JSON", input: "hello\n", code: wire.CodeInvalidRequest, substr: "invalid"},
		{name: "truncated JSON", input: `{"version":1,"op":"update",` + "\n", code: wire.CodeInvalidRequest},
		{name: "unknown field", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","path":"/etc"}` + "\n", code: wire.CodeInvalidRequest, substr: "unknown field"},
		{name: "source with update", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","source":"` + otherUUID + `"}` + "\n", code: wire.CodeInvalidRequest, substr: "only restore takes source"},
		{name: "restore without source", input: `{"version":1,"op":"restore","backup":"` + dstUUID + `"}` + "\n", code: wire.CodeInvalidRequest, substr: "not a LUKS UUID"},
		{name: "long unknown field", input: `{"version":1,"op":"promote","` + strings.Repeat("a", 3000) + `":1}` + "\n", code: wire.CodeInvalidRequest, substr: "unknown field"},
		{name: "two objects", input: `{"version":1,"op":"promote"}{"version":1,"op":"update","backup":"` + dstUUID + `"}` + "\n", code: wire.CodeInvalidRequest},
		{name: "huge line", input: `{"version":1,"op":"update","backup":"` + strings.Repeat("a", 100000) + `"}` + "\n", code: wire.CodeInvalidRequest, substr: "longer than"},
		{name: "huge line without end", input: strings.Repeat(" ", 2*wire.MaxRequestSize), noEOF: true, code: wire.CodeInvalidRequest, substr: "longer than"},
		{name: "unknown op", input: `{"version":1,"op":"format","backup":"` + dstUUID + `"}` + "\n", code: wire.CodeInvalidRequest, substr: "unknown operation"},
		{name: "cancel as the request", input: `{"op":"cancel"}` + "\n", code: wire.CodeInvalidRequest},
		{name: "path as UUID", input: `{"version":1,"op":"update","backup":"../../x"}` + "\n", code: wire.CodeInvalidRequest, substr: "not a LUKS UUID"},
		{name: "upper-case UUID", input: `{"version":1,"op":"update","backup":"` + strings.ToUpper(dstUUID) + `"}` + "\n", code: wire.CodeInvalidRequest},
		{name: "UUID with NUL", input: `{"version":1,"op":"update","backup":"` + dstUUID + `\u0000"}` + "\n", code: wire.CodeInvalidRequest},
		{name: "update without backup", input: `{"version":1,"op":"update"}` + "\n", code: wire.CodeInvalidRequest},
		{name: "promote with backup", input: `{"version":1,"op":"promote","backup":"` + dstUUID + `"}` + "\n", code: wire.CodeInvalidRequest, substr: "promote takes no backup"},
		{name: "skip outside the root", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","skip":["../etc"]}` + "\n", code: wire.CodeInvalidRequest},
		{name: "skip the marker", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","skip":["` + tails.MarkerName + `"]}` + "\n", code: wire.CodeInvalidRequest},
		{name: "skip dot-dot", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","skip":[".."]}` + "\n", code: wire.CodeInvalidRequest},
		{name: "skip with mark", input: `{"version":1,"op":"mark","backup":"` + dstUUID + `","skip":["gnupg"]}` + "\n", code: wire.CodeInvalidRequest},
		{name: "wrong version", input: `{"version":2,"op":"update","backup":"` + dstUUID + `"}` + "\n", code: wire.CodeInvalidRequest, substr: "version"},
		{name: "no version", input: `{"op":"update","backup":"` + dstUUID + `"}` + "\n", code: wire.CodeInvalidRequest, substr: "version"},
		{name: "empty input", input: "", code: wire.CodeInvalidRequest, substr: "no request"},
		{name: "empty line", input: "\n", code: wire.CodeInvalidRequest},
		{name: "not root", input: valid, euid: 1000, code: wire.CodeRefused, substr: "must run as root"},
	}
	w := newWorld(t, worldOpts{})
	fillSource(t, w.src.mnt, 2, 5, 1000)
	srcBefore, dstBefore := listing(t, w.src.mnt), listing(t, w.dst.mnt)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := w.sys
			if tt.euid != 0 {
				sys.Euid = func() int { return tt.euid }
			}
			s := start(t, sys, "")
			go func() {
				_, _ = s.stdin.Write([]byte(tt.input))
				if !tt.noEOF {
					s.stdin.Close()
				}
			}()
			evs, err := s.finish()
			if len(evs) != 1 {
				t.Fatalf("%d events, want exactly one: %+v", len(evs), evs)
			}
			ev := checkEnd(t, evs, err, wire.EventError)
			t.Logf("%s: %s", ev.Code, ev.Message)
			if ev.Code != tt.code || !strings.Contains(ev.Message, tt.substr) {
				t.Errorf("error %s %q, want %s containing %q", ev.Code, ev.Message, tt.code, tt.substr)
			}
			if len(ev.Message) > 400 {
				t.Errorf("message of %d bytes", len(ev.Message))
			}
			if got := listing(t, w.dst.mnt); got != dstBefore {
				t.Fatalf("the destination changed:\n%s\n%s", dstBefore, got)
			}
			if got := listing(t, w.src.mnt); got != srcBefore {
				t.Fatalf("the source changed")
			}
			if strings.Contains(s.logs.String(), strings.Repeat("a", 300)) {
				t.Error("the log holds the raw request")
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	sys := System{UDisks: nopUDisks{}, RequestTimeout: 100 * time.Millisecond, Euid: func() int { return 0 }}
	s := start(t, sys, "")
	evs, err := s.finish()
	ev := checkEnd(t, evs, err, wire.EventError)
	if ev.Code != wire.CodeInvalidRequest || !strings.Contains(ev.Message, "No request came") {
		t.Errorf("error %s %q", ev.Code, ev.Message)
	}
}

func TestSignalWhileWaitingForTheRequest(t *testing.T) {
	sys := System{UDisks: nopUDisks{}, Euid: func() int { return 0 }}
	s := start(t, sys, "")
	s.cancel()
	evs, err := s.finish()
	if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != wire.CodeCancelled {
		t.Errorf("error %s %q, want cancelled", ev.Code, ev.Message)
	}
}
