package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"tails-backup/helper"
	"tails-backup/udisks/udiskstest"
)

// runHelperCLI runs `tails-backup helper ARGS...` with input on standard input, kept open until
// the helper ends, and returns its exit status, its single event and its standard error.
func runHelperCLI(t *testing.T, input string, args ...string) (int, helper.Event, string) {
	t.Helper()
	inR, inW := io.Pipe()
	defer inW.Close()
	go func() { _, _ = io.WriteString(inW, input) }()
	var out, errb bytes.Buffer
	env := &environment{stdin: inR, stdout: &out, stderr: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, env, append([]string{"helper"}, args...))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want one event: %q", len(lines), out.String())
	}
	var ev helper.Event
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %q: %v", lines[0], err)
	}
	return code, ev, errb.String()
}

func TestHelperRefusesArguments(t *testing.T) {
	for _, args := range [][]string{{"update"}, {""}, {"--backup", "x"}, {"-h"}} {
		code, ev, stderr := runHelperCLI(t, "", args...)
		if code != 1 {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
		if ev.Event != helper.EventError || ev.Code != helper.CodeInvalidRequest || !strings.Contains(ev.Message, "takes no arguments") {
			t.Errorf("%q: event %+v", args, ev)
		}
		if !strings.Contains(stderr, "tails-backup helper: the helper takes no arguments") {
			t.Errorf("%q: stderr %q", args, stderr)
		}
	}
}

func TestHelperListedInUsage(t *testing.T) {
	code, stdout, _ := runCLI(t, "help")
	if code != 0 || !strings.Contains(stdout, "helper") || !strings.Contains(stdout, "root helper") {
		t.Errorf("help: exit %d, %q", code, stdout)
	}
}

// TestHelperUsesTheSystemBus: the helper reaches udisks on DBUS_SYSTEM_BUS_ADDRESS. With no
// udisks there it says udisks does not answer; with the fake it gets further and finds no
// Persistent Storage at /live/persistence/TailsData_unlocked (this machine is not Tails).
func TestHelperUsesTheSystemBus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the helper refuses to run unless root")
	}
	req := `{"version":1,"op":"update","backup":"2f1e3c4d-0000-4000-8000-00000000b0b0"}` + "\n"

	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	code, ev, stderr := runHelperCLI(t, req)
	if code != 1 || ev.Code != helper.CodeInternal || !strings.Contains(ev.Message, "udisks does not answer") {
		t.Errorf("without udisks: exit %d, event %+v, stderr %q", code, ev, stderr)
	}

	addr := udiskstest.StartBus(t)
	fake := udiskstest.NewService(t, addr)
	fake.AddStandard()
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	code, ev, stderr = runHelperCLI(t, req)
	if _, err := os.Stat("/live/persistence/TailsData_unlocked"); err == nil {
		t.Skip("this machine has a Tails Persistent Storage mounted")
	}
	if code != 1 || ev.Code != helper.CodeNotFound || !strings.Contains(ev.Message, "not unlocked") {
		t.Errorf("with the fake udisks: exit %d, event %+v, stderr %q", code, ev, stderr)
	}
	if !strings.Contains(stderr, "op=update") || !strings.Contains(stderr, "backup=2f1e3c4d") {
		t.Errorf("the log lacks the op and backup fields: %q", stderr)
	}
}
