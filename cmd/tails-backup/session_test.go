package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"tails-backup/pairing"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/session"
	"tails-backup/tails"
)

// Shared fixtures of the session command tests (pair, reminders, promote, status). These tests
// set environment variables (DBUS_SYSTEM_BUS_ADDRESS, PINENTRY_PROGRAM), so none of them runs
// in parallel.

// testNow is the fixed "now" of the session command tests.
var testNow = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

const (
	backupUUID = "2f1e3c4d-0000-4000-8000-00000000b0b0" // udiskstest's standard backup stick
	otherUUID  = "7a7a7a7a-1111-4111-8111-0000000000aa"
	mainUUID   = "11111111-2222-4333-8444-555555555555"
)

// testSession installs a session system rooted in a temporary folder (no marker, a version
// file) for the test, and returns it with the folder.
func testSession(t *testing.T) (*sessionSystem, string) {
	t.Helper()
	dir := t.TempDir()
	sys := realSessionSystem()
	sys.markerRoot = filepath.Join(dir, "persistence")
	sys.versionFile = filepath.Join(dir, "version")
	sys.medium = filepath.Join(dir, "medium") // none: 'update' leaves the backup's system alone
	sys.now = func() time.Time { return testNow }
	sys.defaultStatePath = func() (string, error) { return filepath.Join(dir, "default-state.json"), nil }
	if err := os.MkdirAll(sys.markerRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sys.versionFile, "6.10 - 20241203\n")
	ptr := &sys
	testSessions.Store(t.Name(), ptr)
	t.Cleanup(func() { testSessions.Delete(t.Name()) })
	return ptr, dir
}

// testSessions maps a test (by name) to the session system testSession made for it, which
// runSession gives to the commands; a subtest uses its parent's unless it made its own.
var testSessions gosync.Map

func sessionFor(t *testing.T) *sessionSystem {
	for name := t.Name(); ; {
		if v, ok := testSessions.Load(name); ok {
			return v.(*sessionSystem)
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeOwnMarker makes the test's Tails a backup of the Tails with source.
func writeOwnMarker(t *testing.T, sys *sessionSystem, source string) {
	t.Helper()
	m := tails.Marker{Format: tails.MarkerFormat, Source: source, State: tails.StateComplete,
		Started: testNow.Add(-48 * time.Hour), Finished: testNow.Add(-47 * time.Hour), TailsVersion: "6.10"}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sys.markerRoot, tails.MarkerName), string(b))
}

// saveState writes st at path.
func saveState(t *testing.T, path string, st pairing.State) {
	t.Helper()
	b, err := pairing.MarshalState(st)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

// loadStateFile reads the state at path; ok is false when there is no file.
func loadStateFile(t *testing.T, path string) (st pairing.State, ok bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return pairing.State{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err = pairing.ParseState(b)
	if err != nil {
		t.Fatalf("state %s: %v", path, err)
	}
	return st, true
}

// pairedState is a state with one backup paired 20 days ago, updated ageDays ago.
func pairedState(ageDays int) pairing.State {
	st := pairing.NewState()
	b := pairing.PairedBackup{UUID: backupUUID, Label: "Kingston DataTraveler", Size: 16 << 30, Added: testNow.Add(-20 * 24 * time.Hour)}
	st.Backups = append(st.Backups, b)
	if ageDays >= 0 {
		st.RecordAttempt(pairing.Attempt{Time: testNow.Add(-time.Duration(ageDays) * 24 * time.Hour), Backup: backupUUID, Result: pairing.ResultSuccess})
	}
	return st
}

// runSession runs a command line with stdin and returns its exit status and outputs.
func runSession(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, session: sessionFor(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, env, args)
	t.Logf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// fakePrograms builds the agent's fake pinentry and fake root helper into a temporary folder.
func fakePrograms(t *testing.T) (pinentry, helperBin string) {
	t.Helper()
	dir := t.TempDir()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-o", dir+"/", "../../pinentry/pinentrytest/testdata/fakepinentry", "../../wire/wiretest/testdata/fakehelper")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the fakes: %v\n%s", err, out)
	}
	return filepath.Join(dir, "fakepinentry"), filepath.Join(dir, "fakehelper")
}

// fakeHelper scripts the fake root helper: mode (done, error...), code for mode error. It
// returns the --helper-command and the file that records its input.
func fakeHelper(t *testing.T, bin, mode, code string) (command, record string) {
	t.Helper()
	record = filepath.Join(t.TempDir(), "helper-input")
	t.Setenv("FAKEHELPER_MODE", mode)
	t.Setenv("FAKEHELPER_CODE", code)
	t.Setenv("FAKEHELPER_REASON", "")
	t.Setenv("FAKEHELPER_ARGS", "")
	t.Setenv("FAKEHELPER_RECORD", record)
	return bin, record
}

// helperRequests returns the requests the fake helper received.
func helperRequests(t *testing.T, record string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("helper input %q: %v", l, err)
		}
		// The key slot that create and pair add, and its secret line, have their own
		// checks (keySlotRequests).
		if _, secret := m["passphrase"]; secret || m["op"] == "add-key-slot" {
			continue
		}
		out = append(out, m)
	}
	return out
}

// keySlotRequests returns the add-key-slot requests the helper got, each with the passphrase
// of the secret line that followed it ("" if none did).
func keySlotRequests(t *testing.T, record string) (reqs []map[string]any, secrets []string) {
	t.Helper()
	b, err := os.ReadFile(record)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["op"] != "add-key-slot" {
			continue
		}
		if strings.Contains(l, "passphrase") {
			t.Errorf("the request line holds a passphrase: %s", l)
		}
		reqs = append(reqs, m)
		secret := ""
		if i+1 < len(lines) {
			var s struct{ Passphrase []byte }
			if json.Unmarshal([]byte(lines[i+1]), &s) == nil {
				secret = string(s.Passphrase)
			}
		}
		secrets = append(secrets, secret)
	}
	return reqs, secrets
}

// fakePinentry scripts the fake pinentry with answers; it returns its command log.
func fakePinentry(t *testing.T, bin string, answers ...string) (log string) {
	t.Helper()
	return pinentrytest.Script(t, bin, answers...)
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func TestSessionCommandsListedInUsage(t *testing.T) {
	code, stdout, _ := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	wantContains(t, "help", stdout, "pair ", "reminders ", "promote ", "status ")
	for _, cmd := range []string{"pair", "reminders", "promote", "status"} {
		code, stdout, _ := runCLI(t, cmd, "-h")
		if code != 0 || !strings.Contains(stdout, "usage: tails-backup "+cmd) {
			t.Errorf("%s -h: exit %d, stdout %q", cmd, code, stdout)
		}
		code, _, stderr := runCLI(t, cmd, "--no-such-flag")
		if code != 2 || !strings.Contains(stderr, "unknown option --no-such-flag") {
			t.Errorf("%s --no-such-flag: exit %d, stderr %q", cmd, code, stderr)
		}
	}
}

func TestTexts(t *testing.T) {
	tests := []struct{ got, want string }{
		{sizeText(nil, 16<<30), "17.2 GB"},
		{sizeText(nil, 15_500_000_000), "15.5 GB"},
		{sizeText(nil, 999), "999 bytes"},
		{session.TimeText(nil, testNow, testNow), "Mon 10 Mar 2025 12:00"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
