package tails

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadMarkerIn(t *testing.T) {
	valid, err := validMarker().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.Replace(string(valid), `"format": 1`, `"format": 99`, 1)
	tests := []struct {
		name        string
		setup       func(t *testing.T, dir string) string // returns the folder to read
		wantPresent bool
		wantErr     string // "" for none
		wantIs      error
	}{
		{"no marker", func(t *testing.T, dir string) string { return dir }, false, "", nil},
		{"no folder", func(t *testing.T, dir string) string { return filepath.Join(dir, "nonexistent") }, false, "no such file", fs.ErrNotExist},
		{"a file, not a folder", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, "file"), "x")
			return filepath.Join(dir, "file")
		}, false, "not a directory", nil},
		{"valid", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, MarkerName), string(valid))
			return dir
		}, true, "", nil},
		{"symlink to a valid marker", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, "real"), string(valid))
			if err := os.Symlink("real", filepath.Join(dir, MarkerName)); err != nil {
				t.Fatal(err)
			}
			return dir
		}, true, "too many levels of symbolic links", nil},
		{"a folder", func(t *testing.T, dir string) string {
			if err := os.Mkdir(filepath.Join(dir, MarkerName), 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}, true, "not a regular file", nil},
		{"a fifo", func(t *testing.T, dir string) string {
			if err := unix.Mkfifo(filepath.Join(dir, MarkerName), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, true, "not a regular file", nil},
		{"larger than 64 KiB", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, MarkerName), string(valid)+strings.Repeat(" ", maxMarkerSize))
			return dir
		}, true, "larger than 65536 bytes", nil},
		{"not JSON", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, MarkerName), "{not json")
			return dir
		}, true, "not valid JSON", nil},
		{"newer format", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, MarkerName), newer)
			return dir
		}, true, "newer tails-backup", ErrMarkerFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t, t.TempDir())
			m, present, err := ReadMarkerIn(dir)
			if present != tt.wantPresent {
				t.Errorf("present %v, want %v", present, tt.wantPresent)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one saying %q", err, tt.wantErr)
			case tt.wantIs != nil && !errors.Is(err, tt.wantIs):
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			want := Marker{}
			if present && err == nil {
				want = validMarker()
			}
			if m != want {
				t.Errorf("marker %+v, want %+v", m, want)
			}
		})
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
