package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncFailurePrintsOnlyTheError: a sync that fails prints no summary (it read as a normal
// run: "mirrored: 0 created, ... in 0s"), only the error, naming the path once in words.
func TestSyncFailurePrintsOnlyTheError(t *testing.T) {
	dst := t.TempDir()
	code, stdout, stderr := runCLI(t, "sync", "/nonexistent", dst)
	want := "tails-backup sync: the source /nonexistent does not exist: give the folder to copy\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, nothing on stdout and %q", code, stdout, stderr, want)
	}
	code, stdout, stderr = runCLI(t, "sync", dst, filepath.Join(dst, "missing", "x"))
	if code != 1 || stdout != "" || !strings.Contains(stderr, "the destination "+filepath.Join(dst, "missing", "x")+" does not exist: give the folder to copy into") || strings.Contains(stderr, "lstat") {
		t.Errorf("missing destination: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestSyncDryRunListsTheChanges: --dry-run says which entries would change, as rsync -n -i
// does, and --itemize does the same in a real run.
func TestSyncDryRunListsTheChanges(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	for _, d := range []string{filepath.Join(src, "dir"), dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "dir", "new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--dry-run"}, {"--itemize"}} {
		code, stdout, stderr := runCLI(t, append(append([]string{"sync"}, args...), src, dst)...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, stderr)
		}
		for _, want := range []string{"cd+++++++++ dir/\n", ">f+++++++++ dir/new\n", "*deleting   old\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%q: stdout %q lacks %q", args, stdout, want)
			}
		}
	}
	code, stdout, _ := runCLI(t, "sync", src, dst)
	if code != 0 || strings.Contains(stdout, "+++") {
		t.Errorf("without --itemize nor --dry-run: exit %d, stdout %q lists changes", code, stdout)
	}
}
