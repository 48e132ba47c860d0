package testtool

import (
	"runtime"
	"testing"
)

// recorder is a testing.TB that records how the test would end instead of ending it.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatalf(string, ...any)        { r.failed = true; runtime.Goexit() }
func (r *recorder) Skipf(string, ...any)         { r.skipped = true; runtime.Goexit() }
func (r *recorder) Logf(format string, a ...any) {}

func end(ci string, t *testing.T, name string) *recorder {
	t.Setenv("CI", ci)
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Program(r, name, "nothing")
	}()
	<-done
	return r
}

func TestProgramMissing(t *testing.T) {
	if r := end("", t, "no-such-program-here"); !r.skipped || r.failed {
		t.Errorf("CI unset: skipped %v, failed %v; want a skip", r.skipped, r.failed)
	}
	if r := end("true", t, "no-such-program-here"); !r.failed || r.skipped {
		t.Errorf("CI set: skipped %v, failed %v; want a failure", r.skipped, r.failed)
	}
	if r := end("true", t, "sh"); r.failed || r.skipped {
		t.Errorf("a program that is there: skipped %v, failed %v", r.skipped, r.failed)
	}
}
