package session

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"tails-backup/tails"
)

func TestReadOwnMarker(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "persistence")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "version")
	if err := os.WriteFile(other, []byte("6.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := (tails.Marker{Format: tails.MarkerFormat, Source: bootUUID, State: tails.StateComplete, Started: time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC), Finished: time.Date(2025, 3, 8, 13, 0, 0, 0, time.UTC)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(root, tails.MarkerName)
	tests := []struct {
		name             string
		root             string
		make             func() error
		present, invalid bool
	}{
		{"no marker", root, func() error { return nil }, false, false},
		{"no Persistent Storage", filepath.Join(dir, "nonexistent"), func() error { return nil }, false, false},
		{"damaged marker", root, func() error { return os.WriteFile(marker, []byte("{not json"), 0o644) }, true, true},
		{"symlink marker", root, func() error { return os.Symlink(other, marker) }, true, true},
		{"valid marker", root, func() error { return os.WriteFile(marker, good, 0o644) }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(marker)
			if err := tt.make(); err != nil {
				t.Fatal(err)
			}
			m := ReadOwnMarker(tt.root)
			if m.Present != tt.present || (m.Err != nil) != tt.invalid || m.IsBackup() != (tt.present && !tt.invalid) {
				t.Errorf("%+v", m)
			}
			if m.IsBackup() && m.Marker.Source != bootUUID {
				t.Errorf("source %q", m.Marker.Source)
			}
		})
	}
}

func TestCommandTexts(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct{ got, want string }{
		{TimeText(nil, now, now), "Mon 10 Mar 2025 12:00"},
		{NotLockedText(nil, "sdb", &os.PathError{Op: "open", Path: "/x", Err: os.ErrPermission}), "sdb could not be locked again (permission denied); eject it in the Files browser before you unplug it."},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
