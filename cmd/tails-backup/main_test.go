package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tbsync "tails-backup/sync"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestRunDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no arguments", nil, 2, "usage: tails-backup", ""},
		{"help", []string{"help"}, 0, "sync", ""},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"sync without directories", []string{"sync"}, 2, "", "give exactly two directories"},
		{"sync with one directory", []string{"sync", "/tmp"}, 2, "", "give exactly two directories"},
		{"sync bad flag", []string{"sync", "--nope", "a", "b"}, 2, "", "tails-backup sync: unknown option --nope\nrun 'tails-backup sync --help' to see how to use it\n"},
		{"sync missing source", []string{"sync", "/nonexistent/src", "/tmp"}, 1, "", "tails-backup sync: the source /nonexistent/src does not exist: give the folder to copy\n"},
		{"help sync", []string{"help", "sync"}, 0, "usage: tails-backup sync [--dry-run]", ""},
		{"help unknown", []string{"help", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"sync onto itself", []string{"sync", "/tmp", "/tmp"}, 1, "", "same directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestSyncCommandMirrorsAndReports(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	for _, d := range []string{filepath.Join(src, "sub"), dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "sub", "f"), []byte("hello"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "stale"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "keep"), []byte("marker"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "sync", "--dry-run", "--exclude", "keep", src, dst)
	if code != 0 || !strings.Contains(stdout, "would mirror (dry run): 2 created") || !strings.Contains(stdout, "1 deleted") {
		t.Fatalf("dry run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dst, "sub")); !os.IsNotExist(err) {
		t.Fatal("the dry run wrote to the destination")
	}

	code, stdout, stderr = runCLI(t, "sync", "--progress", "--exclude", "keep", src, dst)
	if code != 0 || !strings.HasPrefix(stdout, "mirrored: 2 created") {
		t.Fatalf("sync: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "100%") {
		t.Errorf("--progress printed %q, want a final 100%% line", stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "sub", "f")); string(got) != "hello" {
		t.Errorf("dst/sub/f = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dst, "stale")); !os.IsNotExist(err) {
		t.Error("stale file not deleted")
	}
	if _, err := os.Stat(filepath.Join(dst, "keep")); err != nil {
		t.Error("excluded file deleted")
	}
}

func TestProgressBar(t *testing.T) {
	var out bytes.Buffer
	b := &progressBar{w: &out, terminal: true}
	b.update(tbsync.Progress{Phase: tbsync.PhaseScan, FilesTotal: 3, BytesTotal: 2048})
	b.update(tbsync.Progress{Phase: tbsync.PhaseCopy, FilesDone: 1, FilesTotal: 4, BytesDone: 512, BytesTotal: 2048, Path: "a/b"})
	b.update(tbsync.Progress{Phase: tbsync.PhaseDone, FilesDone: 4, FilesTotal: 4, BytesDone: 2048, BytesTotal: 2048})
	got := out.String()
	for _, want := range []string{"comparing: 3 changes found so far, 2.0 kB to copy", "512 bytes/2.0 kB", " 25% 1/4 changes", "a/b", "100% 4/4 changes", "\r\033[K"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress output %q lacks %q", got, want)
		}
	}
	if !strings.HasSuffix(got, "\n") {
		t.Error("the final progress line does not end the terminal line")
	}

	out.Reset()
	b = &progressBar{w: &out, terminal: false, last: time.Now()}
	b.update(tbsync.Progress{Phase: tbsync.PhaseCopy, FilesDone: 1, FilesTotal: 4})
	if out.Len() != 0 {
		t.Errorf("not a terminal: printed %q within 5 s of the last line", out.String())
	}
	b.update(tbsync.Progress{Phase: tbsync.PhaseDone, FilesDone: 4, FilesTotal: 4})
	if !strings.Contains(out.String(), "100%") || strings.Contains(out.String(), "\r") {
		t.Errorf("not a terminal: final line %q", out.String())
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := tbsync.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
