package wire

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"tails-backup/internal/logtest"
	"testing"
	"time"
)

// uuidA is the LUKS UUID of the backup of the test request.
const uuidA = "0b6b6e1e-4f4c-4a77-9a39-5c0e8c9f0a11"

var testRequest = Request{Version: ProtocolVersion, Op: OpUpdate, Backup: uuidA}

// fakeHelperClient returns a client running the fake helper in mode, and the file where the
// fake records what it reads on its standard input.
func fakeHelperClient(t *testing.T, mode string, env ...string) (*HelperClient, string) {
	t.Helper()
	bin := fakeProgram(t, "fakehelper")
	record := filepath.Join(t.TempDir(), "stdin")
	t.Setenv("FAKEHELPER_MODE", mode)
	t.Setenv("FAKEHELPER_RECORD", record)
	for i := 0; i+1 < len(env); i += 2 {
		t.Setenv(env[i], env[i+1])
	}
	log, _ := logtest.New(t)
	c := NewHelperClient([]string{bin}, log)
	c.CancelGrace, c.TermGrace = 30*time.Second, 30*time.Second
	return c, record
}

func recorded(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestHelperDone(t *testing.T) {
	for _, mode := range []string{"done", "linger"} { // linger: exits only once its input is closed
		t.Run(mode, func(t *testing.T) {
			c, record := fakeHelperClient(t, mode)
			var got []Event
			rep, err := c.Run(logtest.Context(t), testRequest, func(ev Event) { got = append(got, ev) })
			if err != nil {
				t.Fatal(err)
			}
			if rep == nil || rep.Created != 3 || rep.BytesCopied != 30 || rep.Duration != 1000 {
				t.Errorf("report = %+v", rep)
			}
			if len(got) != 3 || got[0].FilesDone != 1 || got[2].FilesDone != 3 || got[2].Path != "f3" || got[0].Event != EventProgress {
				t.Errorf("progress = %+v", got)
			}
			lines := recorded(t, record)
			var req Request
			if err := json.Unmarshal([]byte(lines[0]), &req); err != nil || !reflect.DeepEqual(req, testRequest) {
				t.Errorf("request line %q: %v", lines[0], err)
			}
			if _, err := ParseRequest([]byte(lines[0])); err != nil {
				t.Errorf("the helper would refuse the request: %v", err)
			}
			if len(lines) != 1 {
				t.Errorf("extra input after success: %q", lines[1:])
			}
		})
	}
}

func TestHelperErrorCodes(t *testing.T) {
	cases := []struct {
		code ErrorCode
		want error
	}{
		{CodeInvalidRequest, ErrHelperInvalidRequest},
		{CodeNotFound, ErrHelperNotFound},
		{CodeNotPaired, ErrHelperNotPaired},
		{CodeRefused, ErrHelperRefused},
		{CodeNoSpace, ErrHelperNoSpace},
		{CodeDeviceGone, ErrHelperDeviceGone},
		{CodeCancelled, ErrHelperCancelled},
		{CodeInternal, ErrHelperInternal},
		{"from-the-future", ErrHelperInternal},
	}
	for _, tc := range cases {
		t.Run(string(tc.code), func(t *testing.T) {
			c, _ := fakeHelperClient(t, "error", "FAKEHELPER_CODE", string(tc.code))
			rep, err := c.Run(logtest.Context(t), testRequest, nil)
			if rep != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", rep, err, tc.want)
			}
			var he *HelperError
			if !errors.As(err, &he) || he.Code != tc.code || he.Message != "it failed" || he.Needed != 2000 || he.Available != 1000 {
				t.Errorf("details = %+v", he)
			}
			if errors.Is(err, ErrHelperCrashed) || errors.Is(err, context.Canceled) {
				t.Errorf("err = %v also matches crashed or cancelled", err)
			}
		})
	}
}

func TestHelperCrashes(t *testing.T) {
	cases := []struct {
		mode   string
		exit   int
		signal string
		stderr string
		events int
	}{
		{mode: "crash", exit: 3, stderr: "panic: boom", events: 1},
		{mode: "signal", exit: -1, signal: "killed", events: 1},
		{mode: "silent", exit: 0},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			c, _ := fakeHelperClient(t, tc.mode)
			events := 0
			_, err := c.Run(logtest.Context(t), testRequest, func(Event) { events++ })
			if !errors.Is(err, ErrHelperCrashed) {
				t.Fatalf("err = %v", err)
			}
			var ce *HelperCrashError
			if !errors.As(err, &ce) || ce.ExitCode != tc.exit || ce.Signal != tc.signal {
				t.Fatalf("crash = %+v", ce)
			}
			if tc.stderr != "" && !strings.Contains(strings.Join(ce.Stderr, "\n"), tc.stderr) {
				t.Errorf("stderr = %q", ce.Stderr)
			}
			if events != tc.events {
				t.Errorf("%d progress events, want %d", events, tc.events)
			}
		})
	}
}

func TestHelperProtocolErrors(t *testing.T) {
	for _, mode := range []string{"garbage", "longline", "done-no-report"} {
		t.Run(mode, func(t *testing.T) {
			c, _ := fakeHelperClient(t, mode)
			start := time.Now()
			_, err := c.Run(logtest.Context(t), testRequest, nil)
			if !errors.Is(err, ErrHelperProtocol) {
				t.Fatalf("err = %v", err)
			}
			// The helper waits for its input to end: it must have been told to stop.
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v: the helper was not stopped", d)
			}
		})
	}
}

func TestHelperCancel(t *testing.T) {
	cases := []struct {
		mode       string
		crashed    bool
		cancelLine bool
	}{
		{mode: "hang", cancelLine: true}, // answers the cancel line
		{mode: "term", cancelLine: true}, // ignores it, answers SIGTERM
		{mode: "stubborn", crashed: true, cancelLine: true},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			c, record := fakeHelperClient(t, tc.mode)
			c.CancelGrace, c.TermGrace = 200*time.Millisecond, 200*time.Millisecond
			if tc.mode == "hang" {
				c.CancelGrace = time.Minute // it must not need SIGTERM
			}
			ctx, cancel := context.WithCancel(logtest.Context(t))
			defer cancel()
			_, err := c.Run(ctx, testRequest, func(Event) { cancel() })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want it to wrap context.Canceled", err)
			}
			if tc.crashed {
				var ce *HelperCrashError
				if !errors.As(err, &ce) || ce.Signal != "killed" {
					t.Fatalf("err = %v, want killed", err)
				}
			} else if !errors.Is(err, ErrHelperCancelled) {
				t.Fatalf("err = %v, want ErrHelperCancelled", err)
			}
			lines := recorded(t, record)
			if tc.cancelLine && (len(lines) != 2 || lines[1] != `{"version":1,"op":"cancel"}`) {
				t.Errorf("stdin = %q, want the request then the cancel line", lines)
			}
		})
	}
}

func TestHelperCommandProblems(t *testing.T) {
	log, _ := logtest.New(t)
	if _, err := NewHelperClient([]string{}, log).Run(logtest.Context(t), testRequest, nil); err == nil {
		t.Error("empty command: no error")
	}
	_, err := NewHelperClient([]string{filepath.Join(t.TempDir(), "missing")}, log).Run(logtest.Context(t), testRequest, nil)
	if err == nil || errors.Is(err, ErrHelperCrashed) {
		t.Errorf("missing program: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewHelperClient([]string{"true"}, log).Run(ctx, testRequest, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before start: %v", err)
	}
	if got := DefaultHelperCommand(); strings.Join(got, " ") != "sudo -n /usr/lib/tails-backup/helper" {
		t.Errorf("default command %q", got)
	}
}

func TestParseHelperEvent(t *testing.T) {
	cases := []struct {
		line string
		ok   bool
	}{
		{`{"event":"progress","files_done":1}`, true},
		{`{"event":"done","report":{"created":1,"duration_ns":5}}`, true},
		{`{"event":"error","code":"no-space","needed":5}`, true},
		{`{"event":"error"}`, false},
		{`{"event":"party"}`, false},
		{`{"event":"progress"} {"event":"progress"}`, false},
		{`{"event":"progress"}}`, false},
		{`[]`, false},
		{`not json`, false},
		{`{"event":"progress","files_done":"many"}`, false},
	}
	for _, tc := range cases {
		_, err := parseHelperEvent([]byte(tc.line))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrHelperProtocol)) {
			t.Errorf("%s: err = %v", tc.line, err)
		}
	}
}

func FuzzParseHelperEvent(f *testing.F) {
	f.Add([]byte(`{"event":"progress","phase":"copy","files_done":1,"files_total":3,"bytes_done":10,"bytes_total":30,"path":"a"}`))
	f.Add([]byte(`{"event":"done","report":{"created":1,"errors":[{"path":"x","op":"copy","error":"EIO"}],"duration_ns":5,"finished":"2025-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"event":"error","code":"no-space","message":"m","needed":5,"available":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := parseHelperEvent(line)
		if err != nil {
			if !errors.Is(err, ErrHelperProtocol) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		switch ev.Event {
		case EventProgress, EventDone, EventError:
		default:
			t.Fatalf("accepted event %q", ev.Event)
		}
		if ev.Event == EventError && ev.Code == "" {
			t.Fatal("accepted an error without code")
		}
	})
}

func TestHelperRefusesInvalidRequestLocally(t *testing.T) {
	c, record := fakeHelperClient(t, "done")
	_, err := c.Run(logtest.Context(t), Request{Version: ProtocolVersion, Op: OpUpdate, Backup: "../sda"}, nil)
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Error("the helper was started for an invalid request")
	}
}
