package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// runHelperCLI runs `tails-backup helper ARGS...` with input on standard input, kept open until
// the helper ends, and returns its exit status, its single event and its standard error.
func runHelperCLI(t *testing.T, input string, args ...string) (int, wire.Event, string) {
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
	var ev wire.Event
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
		if ev.Event != wire.EventError || ev.Code != wire.CodeInvalidRequest || !strings.Contains(ev.Message, "takes no arguments") {
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
// Persistent Storage at /live/persistence/TailsData_unlocked (this machine is not Tails). It
// runs in a process of its own: it changes its process (helper.ResetProcess).
func TestHelperUsesTheSystemBus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the helper refuses to run unless root")
	}
	req := `{"version":1,"op":"update","backup":"2f1e3c4d-0000-4000-8000-00000000b0b0"}` + "\n"

	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	code, ev, _, stderr := runHelperProcess(t, req)
	if code != 1 || ev.Code != wire.CodeInternal || !strings.Contains(ev.Message, "udisks does not answer") {
		t.Errorf("without udisks: exit %d, event %+v, stderr %q", code, ev, stderr)
	}

	addr := udiskstest.StartBus(t)
	fake := udiskstest.NewService(t, addr)
	fake.AddStandard()
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	code, ev, _, stderr = runHelperProcess(t, req)
	if _, err := os.Stat("/live/persistence/TailsData_unlocked"); err == nil {
		t.Skip("this machine has a Tails Persistent Storage mounted")
	}
	if code != 1 || ev.Code != wire.CodeNotFound || !strings.Contains(ev.Message, "not unlocked") {
		t.Errorf("with the fake udisks: exit %d, event %+v, stderr %q", code, ev, stderr)
	}
	if !strings.Contains(stderr, "op=update") || !strings.Contains(stderr, "backup=2f1e3c4d") {
		t.Errorf("the log lacks the op and backup fields: %q", stderr)
	}
}

// The helper as a process of its own, as sudo runs it: the test binary started again, running
// `tails-backup helper`, so that it can get other resource limits than the tests.

const (
	helperChildEnv   = "TB_HELPER_CLI_CHILD"
	helperAttrPrefix = "helper-process: "
)

// helperProcessAttrs is what the child reports of its process after the helper has run.
type helperProcessAttrs struct {
	Limits   map[string][2]uint64 // name → soft, hard
	Dumpable int
	Ignored  []string // the stop signals ignored
}

// TestHelperChildCLI is not a test: it is the helper process that the tests below start.
func TestHelperChildCLI(t *testing.T) {
	if os.Getenv(helperChildEnv) != "1" {
		return
	}
	code := run(context.Background(), &environment{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, []string{"helper"})
	a := helperProcessAttrs{Limits: map[string][2]uint64{}}
	for name, res := range map[string]int{"cpu": unix.RLIMIT_CPU, "fsize": unix.RLIMIT_FSIZE, "core": unix.RLIMIT_CORE, "as": unix.RLIMIT_AS, "stack": unix.RLIMIT_STACK} {
		var lim unix.Rlimit
		if unix.Getrlimit(res, &lim) == nil {
			a.Limits[name] = [2]uint64{lim.Cur, lim.Max}
		}
	}
	a.Dumpable, _ = unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	for _, sig := range []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU} {
		if signal.Ignored(sig) {
			a.Ignored = append(a.Ignored, unix.SignalName(sig))
		}
	}
	b, _ := json.Marshal(a)
	fmt.Fprintf(os.Stderr, "%s%s\n", helperAttrPrefix, b)
	os.Exit(code)
}

// runHelperProcess runs `tails-backup helper` in a child process started through wrap, with
// the request req, and returns its exit status, its single event, what it reported of its
// process and its standard error.
func runHelperProcess(t *testing.T, req string, wrap ...string) (int, wire.Event, helperProcessAttrs, string) {
	t.Helper()
	argv := append(append([]string{}, wrap...), os.Args[0], "-test.run=^TestHelperChildCLI$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperChildEnv+"=1")
	// Standard input stays open until the helper ends: its end would cancel the operation.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	cmd.Stdin = inR
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Start()
	inR.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(inW, req); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	var ev wire.Event
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &ev); err != nil {
		t.Fatalf("helper output %q: %v; stderr:\n%s", out.String(), err, errb.String())
	}
	var a helperProcessAttrs
	for _, line := range strings.Split(errb.String(), "\n") {
		if v, ok := strings.CutPrefix(line, helperAttrPrefix); ok {
			if err := json.Unmarshal([]byte(v), &a); err != nil {
				t.Fatal(err)
			}
		}
	}
	return code, ev, a, errb.String()
}

// TestHelperResetsItsProcess: whatever resource limits, core dump setting and stop signal
// dispositions the caller hands over through sudo, `tails-backup helper` runs with its own
// (helper.ResetProcess, tested in depth in package helper), before it reads the request.
func TestHelperResetsItsProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the helper refuses to run unless root")
	}
	if _, err := os.Stat("/live/persistence/TailsData_unlocked"); err == nil {
		t.Skip("this machine has a Tails Persistent Storage mounted")
	}
	addr := udiskstest.StartBus(t)
	udiskstest.NewService(t, addr).AddStandard()
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	req := `{"version":1,"op":"update","backup":"2f1e3c4d-0000-4000-8000-00000000b0b0"}` + "\n"
	// Soft limits only: raising a lowered hard limit needs CAP_SYS_RESOURCE, which a container
	// may lack. SIGTSTP ignored by the caller would be inherited: the caller leaves it default.
	wrap := []string{"prlimit", "--fsize=1:", "--cpu=1:", "--core=unlimited:", "--stack=unlimited"}
	if !raceEnabled {
		wrap = append(wrap, "--as=1000000000:")
	}
	_, ev, a, stderr := runHelperProcess(t, req, append(wrap, "--")...)
	if ev.Code != wire.CodeNotFound || !strings.Contains(ev.Message, "not unlocked") {
		t.Errorf("event %+v, want the helper to get as far as looking for the Persistent Storage; stderr:\n%s", ev, stderr)
	}
	const inf = unix.RLIM_INFINITY
	want := map[string][2]uint64{"cpu": {inf, inf}, "fsize": {inf, inf}, "core": {0, 0}, "as": {inf, inf}, "stack": {8 << 20, inf}}
	for name, w := range want {
		if got := a.Limits[name]; got != w {
			t.Errorf("the helper ran with RLIMIT_%s %v (soft, hard), want %v", strings.ToUpper(name), got, w)
		}
	}
	if a.Dumpable != 0 {
		t.Errorf("the helper ran dumpable (%d)", a.Dumpable)
	}
	if strings.Join(a.Ignored, ",") != "SIGTSTP,SIGTTIN,SIGTTOU" {
		t.Errorf("the helper ignored %q, want SIGTSTP, SIGTTIN and SIGTTOU", a.Ignored)
	}
}

// TestHelperRefusesALimitItCannotLift: a hard limit lowered by the caller that the helper cannot
// raise (here CAP_SYS_RESOURCE is dropped, as a container may lack it; root on Tails has it)
// makes the helper refuse before it reads the request, rather than fail in the middle.
func TestHelperRefusesALimitItCannotLift(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop a capability from the bounding set")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not found")
	}
	req := `{"version":1,"op":"update","backup":"2f1e3c4d-0000-4000-8000-00000000b0b0"}` + "\n"
	code, ev, _, stderr := runHelperProcess(t, req, "prlimit", "--fsize=1:1", "--", "setpriv", "--bounding-set=-sys_resource", "--")
	if code != 1 || ev.Event != wire.EventError || ev.Code != wire.CodeRefused || !strings.Contains(ev.Message, "RLIMIT_FSIZE") ||
		!strings.HasSuffix(ev.Message, "run it through its sudo rule, as root.") {
		t.Errorf("event %+v, want a refusal naming RLIMIT_FSIZE; stderr:\n%s", ev, stderr)
	}
	t.Log(ev.Message)
}
