package pinentry_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
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

// syncBuffer is a bytes.Buffer safe for concurrent use, to capture logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLog returns a debug-level logger writing to the returned buffer.
func testLog(t *testing.T) (*logrus.Entry, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	l := logrus.New()
	l.Out = buf
	l.Level = logrus.DebugLevel
	l.Formatter = &logrus.TextFormatter{DisableColors: true}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return logrus.NewEntry(l).WithField("test", t.Name()), buf
}

// testCtx returns a context that ends with the test or after a generous timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
