package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"tails-backup/tails"
)

// LUKS UUIDs of the seeds.
const (
	dstUUID   = "2f1e3c4d-0000-4000-8000-00000000b0b0"
	otherUUID = "0ddba11a-0000-4000-8000-000000000000"
)

// checkValidRequest is the property every accepted request has.
func checkValidRequest(t *testing.T, r Request) {
	t.Helper()
	if r.Version != ProtocolVersion {
		t.Fatalf("accepted version %d", r.Version)
	}
	switch r.Op {
	case OpUpdate, OpMark, OpCreatePersistence, OpVerify, OpRefreshSystem, OpInstallBootloader,
		OpAddKeySlot, OpUnlockWithKey, OpLockBackup, OpRemoveKeySlot, OpForgetKey:
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
		`{"version":1,"op":"add-key-slot","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"unlock-with-key","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"remove-key-slot","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"forget-key","backup":"` + dstUUID + `"}`,
		`{"version":1,"op":"add-key-slot","backup":"` + dstUUID + `","passphrase":"c2VjcmV0"}`,
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

// TestFindingsAreReasons: every problem code of package tails is a Reason the session words.
func TestFindingsAreReasons(t *testing.T) {
	for _, f := range tails.Findings {
		if !slices.Contains(Reasons, Reason(f)) {
			t.Errorf("tails finding %q is not in wire.Reasons", f)
		}
	}
	ev := ProblemEvent(tails.Problem{Path: "persistence.conf", Code: tails.FindingConfMode, Args: tails.ProblemArgs{Mode: "0644"}, What: "English."})
	if ev.Reason != ReasonFindingConfMode || ev.Args == nil || ev.Args.Mode != "0644" || ev.Problem != "English." || ev.Phase != PhaseProblem {
		t.Errorf("problem event %+v", ev)
	}
}
