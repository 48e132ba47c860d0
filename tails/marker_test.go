package tails

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const testUUID = "0b5c1c5e-7a4f-4d69-9f55-3ad1d1f4e7a2"

func validMarker() Marker {
	return Marker{
		Format:       MarkerFormat,
		Source:       testUUID,
		State:        StateComplete,
		Started:      time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		Finished:     time.Date(2026, 11, 1, 10, 5, 0, 0, time.UTC),
		TailsVersion: "6.10",
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	for _, m := range []Marker{validMarker(), {Format: 1, Source: testUUID, State: StateIncomplete, Started: time.Unix(1, 0).UTC()}} {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseMarker(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("parse %s: %v", b, err)
		}
		if got != m {
			t.Errorf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestParseMarkerRejects(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not json", "hello", "not valid JSON"},
		{"trailing data", `{"format":1,"source":"` + testUUID + `","state":"incomplete","started":"2026-01-01T00:00:00Z"} {}`, "after its JSON"},
		{"no format", `{"source":"` + testUUID + `","state":"incomplete","started":"2026-01-01T00:00:00Z"}`, "format 0"},
		{"bad uuid", `{"format":1,"source":"../../etc","state":"incomplete","started":"2026-01-01T00:00:00Z"}`, "not a LUKS UUID"},
		{"upper-case uuid", `{"format":1,"source":"` + strings.ToUpper(testUUID) + `","state":"incomplete","started":"2026-01-01T00:00:00Z"}`, "not a LUKS UUID"},
		{"bad state", `{"format":1,"source":"` + testUUID + `","state":"done","started":"2026-01-01T00:00:00Z"}`, "state"},
		{"no start", `{"format":1,"source":"` + testUUID + `","state":"incomplete"}`, "no start time"},
		{"complete without finish", `{"format":1,"source":"` + testUUID + `","state":"complete","started":"2026-01-01T00:00:00Z"}`, "no finish time"},
		{"huge", strings.Repeat(" ", maxMarkerSize+1), "larger than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMarker(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := ParseMarker(strings.NewReader(`{"format":2,"source":"x"}`))
	if !errors.Is(err, ErrMarkerFormat) {
		t.Errorf("newer format: error %v, want ErrMarkerFormat", err)
	}
}

func FuzzParseMarker(f *testing.F) {
	b, _ := validMarker().Marshal()
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`{"format":1,"source":"` + testUUID + `","state":"incomplete","started":"2026-01-01T00:00:00Z","x":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMarker(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("ParseMarker accepted an invalid marker: %v", err)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("cannot marshal an accepted marker: %v", err)
		}
		again, err := ParseMarker(strings.NewReader(string(out)))
		if err != nil || !again.Started.Equal(m.Started) || again.Source != m.Source || again.State != m.State {
			t.Fatalf("re-encoded marker differs: %+v vs %+v (%v)", again, m, err)
		}
	})
}

func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestWriteFileAtReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	fd := openDir(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "m"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAt(fd, "m", []byte("new content"), 0o640, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFileAt(fd, "m", 100)
	if err != nil || string(got) != "new content" {
		t.Fatalf("ReadFileAt = %q, %v", got, err)
	}
	st, _ := os.Stat(filepath.Join(dir, "m"))
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary left behind: %v", entries)
	}
}

// TestWriteFileMtimeAtKeepsTheTime: a copy written with the time read from its original has
// that time to the nanosecond, with the owner and mode given.
func TestWriteFileMtimeAtKeepsTheTime(t *testing.T) {
	dir := t.TempDir()
	fd := openDir(t, dir)
	orig := filepath.Join(dir, "orig")
	if err := os.WriteFile(orig, []byte("checked bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := unix.Timespec{Sec: 1700000000, Nsec: 123456789}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, orig, []unix.Timespec{mtime, mtime}, 0); err != nil {
		t.Fatal(err)
	}
	data, st, err := ReadFileStatAt(fd, "orig", 100)
	if err != nil || string(data) != "checked bytes" || st.Mtim != mtime || st.Size != 13 {
		t.Fatalf("ReadFileStatAt = %q, mtime %v size %d, %v", data, st.Mtim, st.Size, err)
	}
	if err := WriteFileMtimeAt(fd, "copy", data, 0o600, os.Getuid(), os.Getgid(), st.Mtim); err != nil {
		t.Fatal(err)
	}
	var got unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "copy"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Mtim != mtime || got.Mode != unix.S_IFREG|0o600 || got.Size != 13 {
		t.Errorf("copy: mtime %v mode %o size %d; want %v, 0100600, 13", got.Mtim, got.Mode, got.Size, mtime)
	}
}

func TestWriteFileAtNeverFollowsSymlinks(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "victim")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "m")); err != nil {
		t.Fatal(err)
	}
	fd := openDir(t, dir)
	if _, err := ReadFileAt(fd, "m", 100); err == nil {
		t.Error("ReadFileAt followed a symlink")
	}
	if err := WriteFileAt(fd, "m", []byte("new"), 0o600, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Fatalf("the symlink's target was written: %q", got)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "m")); fi.Mode()&os.ModeSymlink != 0 {
		t.Error("the symlink was not replaced by a regular file")
	}
}

func TestReadFileAtRefusesNonRegularAndLarge(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 200), 0o600); err != nil {
		t.Fatal(err)
	}
	fd := openDir(t, dir)
	if _, err := ReadFileAt(fd, "fifo", 100); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
	if _, err := ReadFileAt(fd, "big", 100); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big: %v", err)
	}
}
