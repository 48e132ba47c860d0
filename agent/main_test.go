package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"tails-backup/internal/logtest"
	"testing"
	"time"

	"tails-backup/pinentry"
	"tails-backup/pinentry/pinentrytest"
)

// t0 is when the tests start, on their fake clocks.
var t0 = time.Date(2025, 3, 30, 12, 0, 0, 0, time.UTC)

// LUKS UUIDs of the backups of the tests.
const (
	uuidA = "0b6b6e1e-4f4c-4a77-9a39-5c0e8c9f0a11"
	uuidB = "7d3f2a44-1c1b-4f0e-8c2a-9e6b1d2c3b4a"
)

// The fake programs are built at most once per test binary, on first use, into fakesDir
// (created then, so that fuzzing workers, which never need them, leave nothing behind).
var (
	fakesDir   string
	fakesMu    sync.Mutex
	fakesBuilt = map[string]error{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	fakesMu.Lock()
	if fakesDir != "" {
		os.RemoveAll(fakesDir)
	}
	fakesMu.Unlock()
	os.Exit(code)
}

// fakeProgram builds dir/<name> (a Go program) and returns the path of the binary.
func fakeProgram(t *testing.T, dir, name string) string {
	t.Helper()
	fakesMu.Lock()
	defer fakesMu.Unlock()
	if fakesDir == "" {
		d, err := os.MkdirTemp("", "agent-fakes-")
		if err != nil {
			t.Fatal(err)
		}
		fakesDir = d
	}
	bin := filepath.Join(fakesDir, name)
	err, done := fakesBuilt[name]
	if !done {
		goTool, lerr := exec.LookPath("go")
		if lerr != nil {
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-o", bin, "./"+filepath.Join(dir, name))
		out, berr := cmd.CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("build %s: %v\n%s", name, berr, out)
		}
		fakesBuilt[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// fakePinentry returns a Pinentry running the fake pinentry (pinentrytest) with these
// answers, the file where the fake logs the commands it receives, and the agent's log.
func fakePinentry(t *testing.T, answers ...string) (*pinentry.Pinentry, string, *logtest.Buffer) {
	t.Helper()
	bin := fakeProgram(t, "../pinentry/pinentrytest/testdata", "fakepinentry")
	cmdLog := pinentrytest.Script(t, bin, answers...)
	log, buf := logtest.New(t)
	p := pinentry.NewPinentry(log)
	if p.Program != bin {
		t.Fatalf("PINENTRY_PROGRAM not honoured: %s", p.Program)
	}
	return p, cmdLog, buf
}

// readCommands returns the commands the fake pinentry logged in path.
func readCommands(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}
