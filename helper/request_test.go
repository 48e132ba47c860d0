//go:build linux

package helper

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/tails"
)

// checkValidRequest is the property every accepted request has.
func checkValidRequest(t *testing.T, r Request) {
	t.Helper()
	if r.Version != ProtocolVersion {
		t.Fatalf("accepted version %d", r.Version)
	}
	switch r.Op {
	case OpUpdate, OpMark, OpCreatePersistence, OpVerify, OpRefreshSystem, OpInstallBootloader:
		if !tails.ValidUUID(r.Backup) {
			t.Fatalf("accepted %s with backup %q", r.Op, r.Backup)
		}
	case OpRestore:
		if !tails.ValidUUID(r.Backup) || !tails.ValidUUID(r.Source) {
			t.Fatalf("accepted restore with backup %q and source %q", r.Backup, r.Source)
		}
	case OpPromote:
		if r.Backup != "" {
			t.Fatalf("accepted promote with backup %q", r.Backup)
		}
	default:
		t.Fatalf("accepted op %q", r.Op)
	}
	if r.Source != "" && r.Op != OpRestore {
		t.Fatalf("accepted source with %s", r.Op)
	}
	if len(r.Skip) > 0 && r.Op != OpUpdate && r.Op != OpVerify && r.Op != OpRestore {
		t.Fatalf("accepted skip with %s", r.Op)
	}
	if r.Checksum && r.Op != OpVerify {
		t.Fatalf("accepted checksum with %s", r.Op)
	}
	for _, f := range r.Skip {
		// What Mirror gets as an exclude must be one component inside the root, never the marker.
		if f == "" || f == "." || f == ".." || strings.ContainsAny(f, "/\x00") || f == tails.MarkerName {
			t.Fatalf("accepted skip %q", f)
		}
	}
	// What is accepted survives a round trip.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseRequest(b)
	if err != nil || !sameRequest(again, r) {
		t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
	}
}

// sameRequest compares requests, a nil and an empty Skip being the same.
func sameRequest(a, b Request) bool {
	return a.Version == b.Version && a.Op == b.Op && a.Backup == b.Backup && a.Source == b.Source && slices.Equal(a.Skip, b.Skip)
}

func requestSeeds() []string {
	return []string{
		`{"version":1,"op":"update","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"promote"}`,
		`{"version":1,"op":"mark","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"create-persistence","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"refresh-system","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"install-bootloader","backup":"` + dstUUID + `","skip":["x"]}`,
		`{"op":"cancel"}`,
		`{"version":1,"op":"verify","backup":"` + dstUUID + `","checksum":true,"skip":["thunderbird"]}`,
		`{"version":1,"op":"update","backup":"` + dstUUID + `","checksum":true}`,
		`{"version":1,"op":"update","backup":"` + dstUUID + `","skip":["thunderbird","gnupg"]}`,
		`{"version":1,"op":"update","backup":"` + dstUUID + `","skip":[".."]}`,
		`{"version":1,"op":"update","backup":"../../x"}`,
		`{"version":1,"op":"restore","backup":"` + dstUUID + `","source":"` + otherUUID + `","skip":["thunderbird"]}`,
		`{"version":1,"op":"restore","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"mark","backup":"` + dstUUID + `","source":"` + otherUUID + `"}`,
		`{"version":1,"op":"update","backup":"` + dstUUID + `","x":1}`,
		`{"version":1,"op":"update","backup":"` + dstUUID + `"}{}`,
		"\xff\xfe",
		`[]`,
		`null`,
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRequest(line)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			if !sameRequest(r, Request{}) {
				t.Fatalf("error %v with a non-zero request %+v", err, r)
			}
			return
		}
		if len(line) > MaxRequestSize {
			t.Fatalf("accepted %d bytes", len(line))
		}
		checkValidRequest(t, r)
	})
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add([]byte(s + "\n" + `{"op":"cancel"}` + "\n"))
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Repeat(" ", MaxRequestSize) + "\n"))
	f.Fuzz(func(t *testing.T, input []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(input), MaxRequestSize+1)
		r, err := ReadRequest(br)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		checkValidRequest(t, r)
		// Only the first line was used: it parses alone to the same request.
		first, _, _ := bytes.Cut(input, []byte("\n"))
		if again, err := ParseRequest(bytes.TrimSpace(first)); err != nil || !sameRequest(again, r) {
			t.Fatalf("first line parses to %+v, %v; ReadRequest gave %+v", again, err, r)
		}
	})
}

// TestHostileRequests: malformed and hostile requests, and a helper not run as root, are refused
// with one clear error and nothing is written to either tree.
func TestHostileRequests(t *testing.T) {
	valid := request(OpUpdate, dstUUID)
	tests := []struct {
		name   string
		input  string
		noEOF  bool // keep standard input open after input
		euid   int
		code   ErrorCode
		substr string
	}{
		{name: "not JSON", input: "hello\n", code: CodeInvalidRequest, substr: "invalid"},
		{name: "truncated JSON", input: `{"version":1,"op":"update",` + "\n", code: CodeInvalidRequest},
		{name: "unknown field", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","path":"/etc"}` + "\n", code: CodeInvalidRequest, substr: "unknown field"},
		{name: "source with update", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","source":"` + otherUUID + `"}` + "\n", code: CodeInvalidRequest, substr: "only restore takes source"},
		{name: "restore without source", input: `{"version":1,"op":"restore","backup":"` + dstUUID + `"}` + "\n", code: CodeInvalidRequest, substr: "not a LUKS UUID"},
		{name: "long unknown field", input: `{"version":1,"op":"promote","` + strings.Repeat("a", 3000) + `":1}` + "\n", code: CodeInvalidRequest, substr: "unknown field"},
		{name: "two objects", input: `{"version":1,"op":"promote"}{"version":1,"op":"update","backup":"` + dstUUID + `"}` + "\n", code: CodeInvalidRequest},
		{name: "huge line", input: `{"version":1,"op":"update","backup":"` + strings.Repeat("a", 100000) + `"}` + "\n", code: CodeInvalidRequest, substr: "longer than"},
		{name: "huge line without end", input: strings.Repeat(" ", 2*MaxRequestSize), noEOF: true, code: CodeInvalidRequest, substr: "longer than"},
		{name: "unknown op", input: `{"version":1,"op":"format","backup":"` + dstUUID + `"}` + "\n", code: CodeInvalidRequest, substr: "unknown operation"},
		{name: "cancel as the request", input: `{"op":"cancel"}` + "\n", code: CodeInvalidRequest},
		{name: "path as UUID", input: `{"version":1,"op":"update","backup":"../../x"}` + "\n", code: CodeInvalidRequest, substr: "not a LUKS UUID"},
		{name: "upper-case UUID", input: `{"version":1,"op":"update","backup":"` + strings.ToUpper(dstUUID) + `"}` + "\n", code: CodeInvalidRequest},
		{name: "UUID with NUL", input: `{"version":1,"op":"update","backup":"` + dstUUID + `\u0000"}` + "\n", code: CodeInvalidRequest},
		{name: "update without backup", input: `{"version":1,"op":"update"}` + "\n", code: CodeInvalidRequest},
		{name: "promote with backup", input: `{"version":1,"op":"promote","backup":"` + dstUUID + `"}` + "\n", code: CodeInvalidRequest, substr: "promote takes no backup"},
		{name: "skip outside the root", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","skip":["../etc"]}` + "\n", code: CodeInvalidRequest},
		{name: "skip the marker", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","skip":["` + tails.MarkerName + `"]}` + "\n", code: CodeInvalidRequest},
		{name: "skip dot-dot", input: `{"version":1,"op":"update","backup":"` + dstUUID + `","skip":[".."]}` + "\n", code: CodeInvalidRequest},
		{name: "skip with mark", input: `{"version":1,"op":"mark","backup":"` + dstUUID + `","skip":["gnupg"]}` + "\n", code: CodeInvalidRequest},
		{name: "wrong version", input: `{"version":2,"op":"update","backup":"` + dstUUID + `"}` + "\n", code: CodeInvalidRequest, substr: "version"},
		{name: "no version", input: `{"op":"update","backup":"` + dstUUID + `"}` + "\n", code: CodeInvalidRequest, substr: "version"},
		{name: "empty input", input: "", code: CodeInvalidRequest, substr: "no request"},
		{name: "empty line", input: "\n", code: CodeInvalidRequest},
		{name: "not root", input: valid, euid: 1000, code: CodeRefused, substr: "must run as root"},
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
			ev := checkEnd(t, evs, err, EventError)
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
	ev := checkEnd(t, evs, err, EventError)
	if ev.Code != CodeInvalidRequest || !strings.Contains(ev.Message, "No request came") {
		t.Errorf("error %s %q", ev.Code, ev.Message)
	}
}

func TestSignalWhileWaitingForTheRequest(t *testing.T) {
	sys := System{UDisks: nopUDisks{}, Euid: func() int { return 0 }}
	s := start(t, sys, "")
	s.cancel()
	evs, err := s.finish()
	if ev := checkEnd(t, evs, err, EventError); ev.Code != CodeCancelled {
		t.Errorf("error %s %q, want cancelled", ev.Code, ev.Message)
	}
}
