package pairing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"tails-backup/internal/logtest"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	uuidA = "0b6b6e1e-4f4c-4a77-9a39-5c0e8c9f0a11"
	uuidB = "7d3f2a44-1c1b-4f0e-8c2a-9e6b1d2c3b4a"
)

// t0 is the time of the tests.
var t0 = time.Date(2025, 3, 30, 12, 0, 0, 0, time.UTC)

// stopped is a clock standing still at t.
func stopped(t time.Time) func() time.Time { return func() time.Time { return t } }

func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	log, _ := logtest.New(t)
	p := filepath.Join(t.TempDir(), "cfg", "tails-backup", "state.json")
	return NewStore(p, stopped(t0), log), p
}

func sampleState() State {
	st := NewState()
	_ = st.Pair(PairedBackup{UUID: uuidA, Label: "SanDisk 32 GB", Size: 32 << 30, Added: t0.Add(-48 * time.Hour)})
	_ = st.Pair(PairedBackup{UUID: uuidB, Label: "Kingston", Size: 16 << 30, Added: t0.Add(-24 * time.Hour)})
	st.RecordAttempt(Attempt{Time: t0.Add(-time.Hour), Backup: uuidA, Result: ResultSuccess})
	st.RecordAttempt(Attempt{Time: t0, Backup: uuidB, Result: ResultFailed, Message: "The backup was unplugged."})
	st.Reminder.PeriodSeconds = 3 * 24 * 3600
	st.Snooze(t0)
	st.ReminderShown(t0.Add(-2 * time.Hour))
	return st
}

func TestStoreMissingFileIsFresh(t *testing.T) {
	s, p := newTestStore(t)
	st, err := s.Load(logtest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, NewState()) {
		t.Errorf("fresh state = %+v", st)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load created the file: %v", err)
	}
	if st.ReminderPeriod() != DefaultReminderPeriod {
		t.Errorf("default period = %v", st.ReminderPeriod())
	}
}

func TestStoreRoundTripAndFileMode(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	want := sampleState()
	if err := s.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := MarshalState(want)
	b, _ := MarshalState(got)
	if string(a) != string(b) {
		t.Errorf("round trip:\n%s\n!=\n%s", a, b)
	}
	if got.Backup(uuidA).LastSuccess.IsZero() || !got.LastSuccess.Equal(t0.Add(-time.Hour)) {
		t.Errorf("last success lost: %+v", got)
	}
	if got.ReminderPeriod() != 72*time.Hour {
		t.Errorf("period = %v", got.ReminderPeriod())
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(p))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("folder mode = %v, want 0700", di.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	for _, e := range ents {
		if e.Name() != "state.json" && e.Name() != "state.json.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestStoreSetsAsideUnusableFiles(t *testing.T) {
	valid, _ := MarshalState(sampleState())
	cases := []struct {
		name    string
		content string
		kind    error
		suffix  string
	}{
		{"not json", "hello", ErrCorruptState, ".corrupt-"},
		{"empty", "", ErrCorruptState, ".corrupt-"},
		{"truncated", string(valid[:len(valid)/2]), ErrCorruptState, ".corrupt-"},
		{"no format", `{"backups":[]}`, ErrCorruptState, ".corrupt-"},
		{"format zero", `{"format":0,"backups":[]}`, ErrCorruptState, ".corrupt-"},
		{"format not a number", `{"format":"1","backups":[]}`, ErrCorruptState, ".corrupt-"},
		{"bad uuid", `{"format":1,"backups":[{"uuid":"../../etc","added":"2025-01-01T00:00:00Z"}]}`, ErrCorruptState, ".corrupt-"},
		{"duplicate", `{"format":1,"backups":[{"uuid":"` + uuidA + `","added":"2025-01-01T00:00:00Z"},{"uuid":"` + uuidA + `","added":"2025-01-01T00:00:00Z"}]}`, ErrCorruptState, ".corrupt-"},
		{"bad result", `{"format":1,"backups":[],"last_attempt":{"time":"2025-01-01T00:00:00Z","result":"great"}}`, ErrCorruptState, ".corrupt-"},
		{"unknown field", `{"format":1,"backups":[],"colour":"red"}`, ErrCorruptState, ".corrupt-"},
		{"trailing data", `{"format":1,"backups":[]} {}`, ErrCorruptState, ".corrupt-"},
		{"negative period", `{"format":1,"backups":[],"reminder":{"period_seconds":-5}}`, ErrCorruptState, ".corrupt-"},
		{"too large", `{"format":1,"backups":[]}` + strings.Repeat(" ", MaxStateSize), ErrCorruptState, ".corrupt-"},
		{"pause holders without end", `{"format":2,"backups":[],"paused_by":["restore 1"]}`, ErrCorruptState, ".corrupt-"},
		{"empty pause holder", `{"format":2,"backups":[],"paused_until":"2025-01-01T00:00:00Z","paused_by":[""]}`, ErrCorruptState, ".corrupt-"},
		{"newer", `{"format":4,"backups":[],"something_new":true}`, ErrNewerState, ".newer-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := logtest.Context(t)
			s, p := newTestStore(t)
			os.MkdirAll(filepath.Dir(p), 0o700)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := s.Load(ctx)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			var se *StateError
			if !errors.As(err, &se) {
				t.Fatalf("err %T is not a *StateError", err)
			}
			if !reflect.DeepEqual(st, NewState()) {
				t.Errorf("state with the error = %+v, want fresh", st)
			}
			wantAside := p + tc.suffix + "20250330T120000Z"
			if se.SetAside != wantAside {
				t.Errorf("set aside as %q, want %q", se.SetAside, wantAside)
			}
			kept, err := os.ReadFile(wantAside)
			if err != nil || string(kept) != tc.content {
				t.Errorf("the set-aside file does not hold the original content (%v)", err)
			}
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the state file is still there: %v", err)
			}
			// Reported once: the next load starts afresh without error.
			if _, err := s.Load(ctx); err != nil {
				t.Errorf("second load: %v", err)
			}
		})
	}
}

func TestStoreSetAsideNeverOverwrites(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	os.MkdirAll(filepath.Dir(p), 0o700)
	for i := 1; i <= 3; i++ {
		os.WriteFile(p, []byte(fmt.Sprintf("garbage %d", i)), 0o600)
		_, err := s.Load(ctx) // the fake clock stands still: same timestamp each time
		var se *StateError
		if !errors.As(err, &se) {
			t.Fatalf("load %d: %v", i, err)
		}
		want := p + ".corrupt-20250330T120000Z"
		if i > 1 {
			want += fmt.Sprintf("-%d", i)
		}
		if se.SetAside != want {
			t.Errorf("load %d set aside as %s, want %s", i, se.SetAside, want)
		}
		if b, _ := os.ReadFile(want); string(b) != fmt.Sprintf("garbage %d", i) {
			t.Errorf("load %d: set-aside content %q", i, b)
		}
	}
}

func TestStoreSymlinkIsSetAside(t *testing.T) {
	s, p := newTestStore(t)
	os.MkdirAll(filepath.Dir(p), 0o700)
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	valid, _ := MarshalState(sampleState())
	os.WriteFile(target, valid, 0o600)
	os.Symlink(target, p)
	_, err := s.Load(logtest.Context(t))
	if !errors.Is(err, ErrCorruptState) {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != string(valid) {
		t.Error("the symlink target was touched")
	}
}

func TestStoreUpdate(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	st, err := s.Update(ctx, func(st *State) error {
		return st.Pair(PairedBackup{UUID: uuidA, Label: "A", Size: 1, Added: t0})
	})
	if err != nil || !st.IsPaired(uuidA) {
		t.Fatalf("update: %v %+v", err, st)
	}
	before, _ := os.ReadFile(p)
	boom := errors.New("boom")
	if _, err := s.Update(ctx, func(st *State) error { st.Unpair(uuidA); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	// An invalid result is refused and the file kept.
	if _, err := s.Update(ctx, func(st *State) error { st.Backups[0].UUID = "nope"; return nil }); err == nil {
		t.Fatal("an invalid state was written")
	}
	after, _ := os.ReadFile(p)
	if string(before) != string(after) {
		t.Error("the file changed after failed updates")
	}
	// A damaged file: reported, fn not called.
	os.WriteFile(p, []byte("{"), 0o600)
	called := false
	_, err = s.Update(ctx, func(*State) error { called = true; return nil })
	if !errors.Is(err, ErrCorruptState) || called {
		t.Fatalf("err = %v, called = %v", err, called)
	}
}

func TestStoreConcurrentUpdates(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	// A second Store on the same path stands for another process (the command line).
	log, _ := logtest.New(t)
	other := NewStore(p, stopped(t0), log)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = other
			}
			_, err := st.Update(ctx, func(st *State) error {
				return st.Pair(PairedBackup{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Added: t0})
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Load(ctx)
	if err != nil || len(st.Backups) != n {
		t.Fatalf("%d backups after %d concurrent updates (%v)", len(st.Backups), n, err)
	}
}

func TestStoreLockHonoursContext(t *testing.T) {
	s, p := newTestStore(t)
	os.MkdirAll(filepath.Dir(p), 0o700)
	f, err := os.OpenFile(p+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Load(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if _, err := s.Load(logtest.Context(t)); err != nil {
		t.Fatal(err)
	}
}

func TestStateRecordAttempt(t *testing.T) {
	st := NewState()
	if err := st.Pair(PairedBackup{UUID: "NOT-A-UUID", Added: t0}); err == nil {
		t.Error("paired an invalid UUID")
	}
	if err := st.Pair(PairedBackup{UUID: uuidA}); err == nil {
		t.Error("paired without a pairing time")
	}
	st.Pair(PairedBackup{UUID: uuidA, Label: "old", Added: t0})
	st.Pair(PairedBackup{UUID: uuidA, Label: "new", Size: 9, Added: t0.Add(time.Hour)})
	if len(st.Backups) != 1 || st.Backups[0].Label != "new" || !st.Backups[0].Added.Equal(t0) {
		t.Errorf("re-pairing: %+v", st.Backups)
	}
	st.Snooze(t0)
	st.RecordAttempt(Attempt{Time: t0, Backup: uuidA, Result: ResultFailed, Message: strings.Repeat("é", 3000)})
	if !st.LastSuccess.IsZero() || st.Reminder.SnoozedUntil.IsZero() {
		t.Errorf("a failure changed the success or the snooze: %+v", st)
	}
	if m := st.LastAttempt.Message; len(m) > maxMessage || !strings.HasPrefix(m, "é") || strings.ContainsRune(m, '\uFFFD') {
		t.Errorf("message not cut cleanly: %d bytes", len(m))
	}
	st.RecordAttempt(Attempt{Time: t0.Add(time.Hour), Backup: uuidA, Result: ResultSuccess})
	if !st.LastSuccess.Equal(t0.Add(time.Hour)) || !st.Backup(uuidA).LastSuccess.Equal(t0.Add(time.Hour)) {
		t.Errorf("success not recorded: %+v", st)
	}
	if !st.Reminder.SnoozedUntil.IsZero() {
		t.Error("a success did not clear the snooze")
	}
	if st.Backup(uuidA).LastAttempt.Result != ResultSuccess {
		t.Error("per-backup attempt not recorded")
	}
	// An older success does not move LastSuccess back.
	st.RecordAttempt(Attempt{Time: t0, Backup: uuidA, Result: ResultSuccess})
	if !st.LastSuccess.Equal(t0.Add(time.Hour)) {
		t.Error("LastSuccess moved back")
	}
	if !st.Unpair(uuidA) || st.Unpair(uuidA) || st.IsPaired(uuidA) {
		t.Error("unpair")
	}
	if err := st.Validate(); err != nil {
		t.Error(err)
	}
}

func FuzzParseState(f *testing.F) {
	valid, _ := MarshalState(sampleState())
	f.Add(valid)
	f.Add([]byte(`{"format":1,"backups":[]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"backups":[{"uuid":"` + uuidA + `","added":"2025-01-01T00:00:00+14:00"}],"reminder":{"period_seconds":86400}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"format":2,"backups":[],"paused_until":"2025-03-30T14:00:00Z","paused_by":["restore 12"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) && !errors.Is(err, ErrNewerState) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Whatever parses can be written, and reads back the same.
		out, err := MarshalState(st)
		if err != nil {
			t.Fatalf("parsed but cannot marshal: %v", err)
		}
		st2, err := ParseState(out)
		if err != nil {
			t.Fatalf("cannot parse what was written: %v\n%s", err, out)
		}
		out2, err := MarshalState(st2)
		if err != nil || string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

func TestStoreNonRegularIsSetAside(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	if err := os.MkdirAll(p, 0o700); err != nil { // a folder where the file should be
		t.Fatal(err)
	}
	if _, err := s.Load(ctx); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("err = %v", err)
	}
	if err := s.Save(ctx, sampleState()); err != nil {
		t.Fatalf("cannot save after setting aside: %v", err)
	}
	// Unreadable is not corrupt: reported, left alone.
	if os.Getuid() != 0 {
		os.Chmod(p, 0)
		if _, err := s.Load(ctx); err == nil || errors.Is(err, ErrCorruptState) {
			t.Fatalf("unreadable: %v", err)
		}
	}
}

// TestStorePauseRoundTrip: the pause is kept by the store; a state without one is written in
// format 1, which older versions read, and a store written before the pause existed loads as
// not paused.
func TestStorePauseRoundTrip(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	want := sampleState()
	want.Pause("restore 12", t0.Add(2*time.Hour), t0)
	if err := s.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	for _, w := range []string{`"format": 2`, `"paused_until": "2025-03-30T14:00:00Z"`, `"paused_by": [`, `"restore 12"`} {
		if !strings.Contains(string(raw), w) {
			t.Errorf("state file lacks %s:\n%s", w, raw)
		}
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.PausedUntil.Equal(want.PausedUntil) || !reflect.DeepEqual(got.PausedBy, []string{"restore 12"}) || !got.Paused(t0) {
		t.Errorf("pause after a round trip: until %v by %q", got.PausedUntil, got.PausedBy)
	}
	if _, err := s.Update(ctx, func(st *State) error { st.Resume("restore 12"); return nil }); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(p)
	if !strings.Contains(string(raw), `"format": 1,`) || strings.Contains(string(raw), "paused") {
		t.Errorf("state without a pause:\n%s", raw)
	}

	// A store of the first format, written before the pause existed.
	old := `{"format":1,"backups":[{"uuid":"` + uuidA + `","size":1,"added":"2025-01-01T00:00:00Z"}],"reminder":{}}`
	if err := os.WriteFile(p, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Paused(t0) || !st.PausedUntil.IsZero() || st.PausedBy != nil || !st.IsPaired(uuidA) {
		t.Errorf("old store: %+v", st)
	}
}

func TestStatePause(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name    string
		ops     func(s *State)
		now     time.Time
		paused  bool
		until   time.Time
		holders []string
	}{
		{"never paused", func(s *State) {}, t0, false, time.Time{}, nil},
		{"paused", func(s *State) { s.Pause("a", at(2*time.Hour), t0) }, at(time.Hour), true, at(2 * time.Hour), []string{"a"}},
		{"expired", func(s *State) { s.Pause("a", at(2*time.Hour), t0) }, at(2 * time.Hour), false, at(2 * time.Hour), []string{"a"}},
		{"resumed", func(s *State) { s.Pause("a", at(2*time.Hour), t0); s.Resume("a") }, t0, false, time.Time{}, nil},
		{"resumed by another holder", func(s *State) { s.Pause("a", at(2*time.Hour), t0); s.Resume("b") }, t0, true, at(2 * time.Hour), []string{"a"}},
		{"two holders, one resumes", func(s *State) {
			s.Pause("a", at(2*time.Hour), t0)
			s.Pause("b", at(3*time.Hour), at(time.Hour))
			s.Resume("b")
		}, at(150 * time.Minute), true, at(3 * time.Hour), []string{"a"}},
		{"two holders, both resume", func(s *State) {
			s.Pause("a", at(2*time.Hour), t0)
			s.Pause("b", at(time.Hour), t0)
			s.Resume("a")
			s.Resume("b")
		}, t0, false, time.Time{}, nil},
		{"a shorter pause does not cut one in force", func(s *State) {
			s.Pause("a", at(2*time.Hour), t0)
			s.Pause("b", at(time.Hour), t0)
		}, at(90 * time.Minute), true, at(2 * time.Hour), []string{"a", "b"}},
		{"an expired pause is replaced with its holders", func(s *State) {
			s.Pause("crashed", at(2*time.Hour), t0)
			s.Pause("b", at(4*time.Hour), at(3*time.Hour))
		}, at(3 * time.Hour), true, at(4 * time.Hour), []string{"b"}},
		{"beyond MaxPause is not in force", func(s *State) { s.Pause("a", at(MaxPause+time.Minute), t0) }, t0, false, at(MaxPause + time.Minute), []string{"a"}},
		{"MaxPause ahead is in force", func(s *State) { s.Pause("a", at(MaxPause), t0) }, t0, true, at(MaxPause), []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewState()
			tt.ops(&st)
			if got := st.Paused(tt.now); got != tt.paused {
				t.Errorf("Paused = %v, want %v", got, tt.paused)
			}
			if !st.PausedUntil.Equal(tt.until) || !reflect.DeepEqual(st.PausedBy, tt.holders) {
				t.Errorf("until %v by %q, want %v by %q", st.PausedUntil, st.PausedBy, tt.until, tt.holders)
			}
			if err := st.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
	// Holders that never resumed (crashed restores) do not pile up.
	st := NewState()
	for i := range 3 * maxPauseOwners {
		st.Pause(fmt.Sprintf("restore %d", i), at(time.Hour), t0)
	}
	if len(st.PausedBy) != maxPauseOwners || st.PausedBy[maxPauseOwners-1] != fmt.Sprintf("restore %d", 3*maxPauseOwners-1) {
		t.Errorf("%d holders, last %q", len(st.PausedBy), st.PausedBy[len(st.PausedBy)-1])
	}
	if err := st.Validate(); err != nil {
		t.Error(err)
	}
}

// TestPausedOnlyByUpdates: the agent words a pause as a restore unless only 'tails-backup
// update' holds it.
func TestPausedOnlyByUpdates(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		owners []string
		until  time.Duration
		want   bool
	}{
		{"no pause", nil, 0, false},
		{"a restore", []string{"restore 12"}, time.Hour, false},
		{"an update", []string{"update 34"}, time.Hour, true},
		{"two updates", []string{"update 34", "update 56"}, time.Hour, true},
		{"an update and a restore", []string{"update 34", "restore 12"}, time.Hour, false},
		{"an update's pause that ended", []string{"update 34"}, -time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s State
			for _, o := range c.owners {
				s.Pause(o, now.Add(c.until), now.Add(-time.Hour))
			}
			if got := s.PausedOnlyByUpdates(now); got != c.want {
				t.Errorf("PausedOnlyByUpdates = %v, want %v (state %+v)", got, c.want, s)
			}
		})
	}
}

// TestStoreKeySlotRoundTrip: a backup's key slot is kept by the store in format 3; once no
// backup has one, the state is written in the older format again.
func TestStoreKeySlotRoundTrip(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	st := sampleState()
	uuid := st.Backups[0].UUID
	if !st.SetKeySlot(uuid, true) {
		t.Fatalf("SetKeySlot(%s) says it is not paired", uuid)
	}
	if st.SetKeySlot("00000000-0000-4000-8000-000000000000", true) {
		t.Error("SetKeySlot of a backup not paired says it is")
	}
	if err := s.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	for _, w := range []string{`"format": 3`, `"key_slot": true`} {
		if !strings.Contains(string(raw), w) {
			t.Errorf("state file lacks %s:\n%s", w, raw)
		}
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := got.Backup(uuid); b == nil || !b.KeySlot {
		t.Fatalf("key slot after a round trip: %+v", got.Backups)
	}
	if _, err := s.Update(ctx, func(st *State) error { st.SetKeySlot(uuid, false); return nil }); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(p)
	if strings.Contains(string(raw), `"format": 3`) || strings.Contains(string(raw), "key_slot") {
		t.Errorf("state without a key slot:\n%s", raw)
	}
}

// TestStoreKeySlotOffer: a backup without a key slot is offered one once; taking the offer is
// recorded (format 3) until the slot is added.
func TestStoreKeySlotOffer(t *testing.T) {
	ctx := logtest.Context(t)
	s, p := newTestStore(t)
	st := sampleState()
	uuid := st.Backups[0].UUID
	if !st.OfferKeySlot(uuid) {
		t.Fatal("a backup without a key slot is not offered one")
	}
	if st.OfferKeySlot(uuid) {
		t.Error("offered twice")
	}
	if st.OfferKeySlot("00000000-0000-4000-8000-000000000000") {
		t.Error("a backup not paired is offered a key slot")
	}
	if !st.WantKeySlot(uuid, true) {
		t.Fatal("WantKeySlot says it is not paired")
	}
	if err := s.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	for _, w := range []string{`"format": 3`, `"key_slot_offered": true`, `"key_slot_wanted": true`} {
		if !strings.Contains(string(raw), w) {
			t.Errorf("state file lacks %s:\n%s", w, raw)
		}
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := got.Backup(uuid); b == nil || !b.KeySlotOffered || !b.KeySlotWanted {
		t.Fatalf("after a round trip: %+v", got.Backups)
	}
	got.SetKeySlot(uuid, true)
	if b := got.Backup(uuid); b.KeySlotWanted || !b.KeySlot {
		t.Errorf("the key slot added: %+v, want it recorded and no longer wanted", b)
	}
	if got.OfferKeySlot(uuid) {
		t.Error("a backup with a key slot is offered one")
	}
	other := sampleState()
	other.SetKeySlot(uuid, true)
	if other.WantKeySlot(uuid, true); other.Backup(uuid).KeySlotWanted {
		t.Error("a backup with a key slot is recorded as wanting one")
	}
}
