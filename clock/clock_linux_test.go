package clock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// No test here sets CLOCK_REALTIME: it is the shared machine's  The ECANCELED path of the
// loop is driven through scriptedSource; the timerfd itself is checked for how it is armed
// (its /proc fdinfo), for expiry, interruption and for leaving no fd or goroutine behind.

var errInterrupted = errors.New("interrupted")

type waitResult struct {
	set bool
	err error
}

// scriptedSource is a clockSetSource whose waits return what the test sends on results.
type scriptedSource struct {
	results chan waitResult
	waiting chan int // receives the number of arms so far each time a wait starts

	mu      sync.Mutex
	arms    int
	armErrs map[int]error // arm number (1 is the first) -> its error

	stopOnce sync.Once
	stopped  chan struct{}
}

func newScriptedSource(armErrs map[int]error) *scriptedSource {
	return &scriptedSource{results: make(chan waitResult), waiting: make(chan int),
		armErrs: armErrs, stopped: make(chan struct{})}
}

func (s *scriptedSource) arm() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arms++
	return s.armErrs[s.arms]
}

func (s *scriptedSource) wait() (bool, error) {
	s.mu.Lock()
	n := s.arms
	s.mu.Unlock()
	select {
	case s.waiting <- n:
	case <-s.stopped:
		return false, errInterrupted
	}
	select {
	case r := <-s.results:
		return r.set, r.err
	case <-s.stopped:
		return false, errInterrupted
	}
}

func (s *scriptedSource) interrupt() { s.stopOnce.Do(func() { close(s.stopped) }) }

// startWatch runs watchClockSets on src and returns its channel and result.
func startWatch(ctx context.Context, src clockSetSource) (chan struct{}, chan error) {
	ch, done := make(chan struct{}, 1), make(chan error, 1)
	go func() { done <- watchClockSets(ctx, src, ch) }()
	return ch, done
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(wait):
		t.Fatal("watchClockSets did not return")
		return nil
	}
}

func TestWatchClockSetsReportsSetsOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	src := newScriptedSource(nil)
	ch, done := startWatch(ctx, src)
	if n := <-src.waiting; n != 1 {
		t.Fatalf("first wait after %d arms, want 1", n)
	}
	steps := []struct {
		name string
		res  waitResult
		tell bool
	}{
		{"clock set (ECANCELED)", waitResult{set: true}, true},
		{"timer expired", waitResult{}, false},
		{"clock set again", waitResult{set: true}, true},
		{"expired twice", waitResult{}, false},
	}
	for i, st := range steps {
		src.results <- st.res
		// The next wait has started: this result is fully handled.
		if n := <-src.waiting; n != i+2 {
			t.Fatalf("%s: %d arms, want %d (armed again after each wait)", st.name, n, i+2)
		}
		select {
		case <-ch:
			if !st.tell {
				t.Errorf("%s: reported as a clock change", st.name)
			}
		default:
			if st.tell {
				t.Errorf("%s: not reported", st.name)
			}
		}
	}
	// Nobody reads: the changes coalesce into one value and the watch does not block.
	for range 3 {
		src.results <- waitResult{set: true}
		<-src.waiting
	}
	if len(ch) != 1 {
		t.Errorf("%d values pending after three unread changes, want 1", len(ch))
	}
	cancel()
	if err := waitDone(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v, want context.Canceled", err)
	}
	select {
	case <-src.stopped:
	default:
		t.Error("the source was not interrupted")
	}
}

func TestWatchClockSetsFailures(t *testing.T) {
	errArm, errRead := errors.New("arm failed"), errors.New("read failed")
	cases := []struct {
		name    string
		armErrs map[int]error
		results []waitResult // sent in turn, each to a started wait
		want    error
		tell    bool // a value on the channel before it ends
	}{
		{"first arm fails", map[int]error{1: errArm}, nil, errArm, false},
		{"read fails", nil, []waitResult{{err: errRead}}, errRead, false},
		{"re-arm fails after a set: the set is still told", map[int]error{2: errArm}, []waitResult{{set: true}}, errArm, true},
		{"re-arm fails after expiry", map[int]error{2: errArm}, []waitResult{{}}, errArm, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newScriptedSource(tc.armErrs)
			ch, done := startWatch(testCtx(t), src)
			for _, r := range tc.results {
				<-src.waiting
				src.results <- r
			}
			if err := waitDone(t, done); !errors.Is(err, tc.want) {
				t.Errorf("returned %v, want %v", err, tc.want)
			}
			if told := len(ch) == 1; told != tc.tell {
				t.Errorf("told a change: %v, want %v", told, tc.tell)
			}
		})
	}
}

func TestWatchClockSetsContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	src := newScriptedSource(nil)
	_, done := startWatch(ctx, src)
	if err := waitDone(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("returned %v, want context.Canceled", err)
	}
}

// timerfdInfo returns the fields of /proc/self/fdinfo/<fd of s>.
func timerfdInfo(t *testing.T, s *timerfdSource) map[string]string {
	t.Helper()
	var fd int
	if err := s.conn.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	info := make(map[string]string)
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			info[k] = strings.TrimSpace(v)
		}
	}
	return info
}

// remainingSeconds parses the "(sec, nsec)" of an fdinfo it_value.
func remainingSeconds(t *testing.T, v string) int64 {
	t.Helper()
	sec, _, ok := strings.Cut(strings.Trim(v, "()"), ",")
	n, err := strconv.ParseInt(strings.TrimSpace(sec), 10, 64)
	if !ok || err != nil {
		t.Fatalf("it_value %q", v)
	}
	return n
}

func TestTimerfdSourceIsArmedToBeCancelledOnSet(t *testing.T) {
	s, err := openTimerfdSource(clockWatchAhead)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for i := range 2 { // armed, then armed again
		if err := s.arm(); err != nil {
			t.Fatal(err)
		}
		info := timerfdInfo(t, s)
		flags := unix.TFD_TIMER_ABSTIME | unix.TFD_TIMER_CANCEL_ON_SET
		if info["clockid"] != strconv.Itoa(unix.CLOCK_REALTIME) || info["settime flags"] != fmt.Sprintf("%02o", flags) {
			t.Errorf("arm %d: fdinfo %v, want clockid %d (CLOCK_REALTIME) and settime flags %02o (ABSTIME|CANCEL_ON_SET)",
				i+1, info, unix.CLOCK_REALTIME, flags)
		}
		left := remainingSeconds(t, info["it_value"])
		if ahead := int64(clockWatchAhead / time.Second); left > ahead || left < ahead-60 {
			t.Errorf("arm %d: expires in %d s, want about %d s", i+1, left, ahead)
		}
	}
}

func TestTimerfdSourceExpiryIsNotASet(t *testing.T) {
	s, err := openTimerfdSource(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for i := range 2 { // expiry, and again once re-armed
		if err := s.arm(); err != nil {
			t.Fatal(err)
		}
		set, err := s.wait()
		if err != nil || set {
			t.Fatalf("wait %d after expiry: set=%v err=%v, want an expiry", i+1, set, err)
		}
	}
}

// timerfds counts this process' open timerfds: no other code of the test binary makes any.
func timerfds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target == "anon_inode:[timerfd]" {
			n++
		}
	}
	return n
}

func TestRealClockChangesEndsWithContext(t *testing.T) {
	fdsBefore, goroutinesBefore := timerfds(t), runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	ch, err := RealClock{}.ClockChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := timerfds(t); n != fdsBefore+1 {
		t.Fatalf("%d timerfds while watching, %d before: want one more", n, fdsBefore)
	}
	select {
	case _, ok := <-ch:
		t.Fatalf("a value (open: %v) with nobody setting the clock", ok)
	default:
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("a clock change reported on cancel")
		}
	case <-time.After(wait):
		t.Fatal("the channel was not closed after the context ended")
	}
	// The fd is closed before the channel is.
	if n := timerfds(t); n != fdsBefore {
		t.Errorf("%d timerfds after the end, %d before", n, fdsBefore)
	}
	// The goroutine closes the channel last; let it return (the runtime offers nothing to wait on).
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > goroutinesBefore && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > goroutinesBefore {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the end, %d before:\n%s", n, goroutinesBefore, buf[:runtime.Stack(buf, true)])
	}
}

// wait bounds every wait of these tests.
const wait = 20 * time.Second

// testCtx returns a context that ends with the test or after a generous timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
