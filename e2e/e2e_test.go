//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tLogger passes lines to the test log.
type tLogger struct {
	t      *testing.T
	prefix string
}

func (l tLogger) Logf(format string, args ...any) {
	l.t.Helper()
	l.t.Logf("%s%s", l.prefix, fmt.Sprintf(format, args...))
}

// TestE2E runs the whole product in a QEMU guest (make e2e): one guest, the scenarios of
// issue 6 in order. Each scenario's timings are in the test log and in .cache/e2e/runs/*/e2e.log.
func TestE2E(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	runDir, err := NewRunDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(runDir, "e2e.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	t.Logf("run folder: %s", runDir)
	log := TeeLogger(logFile, tLogger{t, ""})
	say := TeeLogger(logFile, tLogger{t, "user: "})
	start := time.Now()
	w, err := Setup(ctx, repo, runDir, say, log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	step := func(name string, fn func(context.Context) error) bool {
		return t.Run(name, func(t *testing.T) {
			begin := time.Now()
			w.Log.Logf("=== %s", name)
			if err := fn(ctx); err != nil {
				w.Log.Logf("FAIL %s after %s: %v", name, round(time.Since(begin)), err)
				w.SaveLogs(ctx, name)
				t.Fatal(err)
			}
			w.Log.Logf("timing: %s took %s", name, round(time.Since(begin)))
		})
	}
	if !step("prepare-sticks", w.PrepareSticks) || !step("start-agent", w.StartAgent) ||
		!step("1-create", w.ScenarioCreate) {
		t.FailNow()
	}
	step("2-update", w.ScenarioUpdate)
	step("3-pull-during-update", w.ScenarioPull)
	step("4-wrong-passphrase", w.ScenarioWrongPassphrase)
	step("5-unpaired-stick", w.ScenarioUnpaired)
	step("6-thunderbird", w.ScenarioThunderbird)
	step("7-reminder", w.ScenarioReminder)
	step("pair", w.Pair)
	step("9-system-refresh", w.ScenarioSystemRefresh)
	step("8-backup-tails", w.ScenarioBackupTails)
	w.SaveLogs(ctx, "end")
	w.Log.Logf("timing: whole run %s (guest boot %s, %s)", round(time.Since(start)), round(w.VM.Boot), w.VM.Accel)
}
