package pinentry_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
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

// fakeProgram builds the fake pinentry, pinentrytest/testdata/fakepinentry, and returns the
// path of the binary.
func fakeProgram(t *testing.T) string {
	const name = "fakepinentry"
	t.Helper()
	fakesMu.Lock()
	defer fakesMu.Unlock()
	if fakesDir == "" {
		d, err := os.MkdirTemp("", "pinentry-fakes-")
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
		cmd := exec.Command(goTool, "build", "-o", bin, "./pinentrytest/testdata/"+name)
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
