package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"tails-backup/internal/tailbuf"
)

// DefaultHelperCommand is how the agent runs the root helper on Tails: through a sudoers rule
// that allows exactly this command with no arguments.
func DefaultHelperCommand() []string {
	return []string{"sudo", "-n", "/usr/lib/tails-backup/helper"}
}

// HelperRunner runs one helper operation. Implemented by *HelperClient and wiretest.FakeHelper.
type HelperRunner interface {
	// Run sends req and calls progress (if not nil, on the caller's goroutine) for each
	// progress event. It returns the report of a "done" event, or an error: a *HelperError
	// for an "error" event, a *HelperCrashError when the helper ended without a final event,
	// an error wrapping ErrHelperProtocol for output it could not understand. When ctx ends,
	// the helper is cancelled and the error also wraps ctx.Err(); if the helper completed
	// anyway before it saw the cancel, the report is returned with a nil error.
	Run(ctx context.Context, req Request, progress func(Event)) (*Report, error)
}

// Errors matching the helper's error codes: errors.Is(err, ErrHelperNoSpace), and errors.As
// with a *HelperError for the details.
var (
	ErrHelperInvalidRequest  = errors.New("the helper refused the request as malformed")
	ErrHelperNotFound        = errors.New("the helper found no such backup, or no source")
	ErrHelperNotPaired       = errors.New("the backup is not paired with this Tails")
	ErrHelperRefused         = errors.New("the helper refused to write to this device")
	ErrHelperNoSpace         = errors.New("the backup is too small")
	ErrHelperDeviceGone      = errors.New("the backup failed or was unplugged")
	ErrHelperCancelled       = errors.New("the update was cancelled")
	ErrHelperInternal        = errors.New("the helper failed")
	ErrHelperKeyMissing      = errors.New("no key is kept for this backup")
	ErrHelperKeyRefused      = errors.New("the backup refuses the kept key")
	ErrHelperWrongPassphrase = errors.New("the backup refuses the passphrase")
	ErrHelperNoFreeKeySlot   = errors.New("the backup has no free key slot")
	ErrHelperLastKeySlot     = errors.New("the key slot is the backup's last one")
	ErrHelperNoCryptsetup    = errors.New("cryptsetup is not installed")
	// ErrHelperCrashed: the helper ended without saying how (crash, killed, sudo refused).
	ErrHelperCrashed = errors.New("the helper stopped unexpectedly")
	// ErrHelperProtocol: the helper wrote something that is not a valid event.
	ErrHelperProtocol = errors.New("the helper's output could not be understood")
)

// HelperError is an "error" event of the helper.
type HelperError struct {
	Code ErrorCode
	// Reason and Args are what the session words (session.HelperText); Message is the
	// helper's English sentence, for the log only.
	Reason  Reason
	Args    Args
	Message string
	// Needed and Available are the sizes in bytes for CodeNoSpace.
	Needed, Available int64
}

func (e *HelperError) Error() string {
	return fmt.Sprintf("helper error %s: %s", e.Code, e.Message)
}

// Unwrap returns the sentinel error of the code (ErrHelperInternal for an unknown code).
func (e *HelperError) Unwrap() error {
	switch e.Code {
	case CodeInvalidRequest:
		return ErrHelperInvalidRequest
	case CodeNotFound:
		return ErrHelperNotFound
	case CodeNotPaired:
		return ErrHelperNotPaired
	case CodeRefused:
		return ErrHelperRefused
	case CodeNoSpace:
		return ErrHelperNoSpace
	case CodeDeviceGone:
		return ErrHelperDeviceGone
	case CodeCancelled:
		return ErrHelperCancelled
	case CodeKeyMissing:
		return ErrHelperKeyMissing
	case CodeKeyRefused:
		return ErrHelperKeyRefused
	case CodeWrongPassphrase:
		return ErrHelperWrongPassphrase
	case CodeNoFreeKeySlot:
		return ErrHelperNoFreeKeySlot
	case CodeLastKeySlot:
		return ErrHelperLastKeySlot
	case CodeNoCryptsetup:
		return ErrHelperNoCryptsetup
	}
	return ErrHelperInternal
}

// HelperCrashError: the helper exited (or closed its output) without a final event.
type HelperCrashError struct {
	// ExitCode is the exit status, -1 if it was killed by a signal or is unknown.
	ExitCode int
	// Signal is the signal that killed it, "" if none.
	Signal string
	// Stderr is the end of its standard error (bounded).
	Stderr []string
}

func (e *HelperCrashError) Error() string {
	how := fmt.Sprintf("exit status %d", e.ExitCode)
	if e.Signal != "" {
		how = "killed by " + e.Signal
	}
	last := ""
	if n := len(e.Stderr); n > 0 {
		last = ": " + e.Stderr[n-1]
	}
	return fmt.Sprintf("%v (%s)%s", ErrHelperCrashed, how, last)
}

// Unwrap returns ErrHelperCrashed.
func (e *HelperCrashError) Unwrap() error { return ErrHelperCrashed }

const (
	// MaxHelperLine bounds a line of the helper's output.
	MaxHelperLine = 1 << 20
	// helperStderrLines and helperStderrLen bound what is kept of its standard error.
	helperStderrLines = 20
	helperStderrLen   = 512
	// helperWriteTimeout bounds a write to the helper's standard input.
	helperWriteTimeout = 5 * time.Second
	// helperDrainTimeout is how long to keep reading the output after the helper exited (a
	// child of it may hold it open).
	helperDrainTimeout = 2 * time.Second
)

// HelperClient runs the root helper as a child process and speaks its JSON-lines protocol.
type HelperClient struct {
	// Command runs the helper; DefaultHelperCommand in production.
	Command []string
	// CancelGrace is how long the helper has to exit after it was told to stop (cancel line,
	// standard input closed) or after its final event; then it gets SIGTERM (sudo relays it).
	// 0 means 10 s.
	CancelGrace time.Duration
	// TermGrace is how long it has after SIGTERM; then the direct child (sudo) gets SIGKILL,
	// and the helper, its standard input closed, stops by itself. 0 means 5 s.
	TermGrace time.Duration
	log       *logrus.Entry
}

var _ HelperRunner = (*HelperClient)(nil)

// NewHelperClient returns a client running command (nil means DefaultHelperCommand).
func NewHelperClient(command []string, log *logrus.Entry) *HelperClient {
	if command == nil {
		command = DefaultHelperCommand()
	}
	return &HelperClient{Command: command, log: log}
}

// EventLine is one line of the helper's output as ReadEvents read it: an event, or the error
// that ends the reading.
type EventLine struct {
	Event Event
	Err   error
}

// Run implements HelperRunner.
func (c *HelperClient) Run(ctx context.Context, req Request, progress func(Event)) (*Report, error) {
	if len(c.Command) == 0 {
		return nil, errors.New("run the helper: no command configured")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run the helper: %w", err)
	}
	reqLine, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("run the helper: encode the request: %w", err)
	}
	if _, err := ParseRequest(reqLine); err != nil {
		return nil, fmt.Errorf("run the helper: %w", err) // wraps helper.ErrInvalidRequest
	}
	var secretLine []byte
	if NeedsSecret(req.Op) {
		if req.Secret == nil {
			return nil, fmt.Errorf("run the helper: %w: %s needs a secret", ErrInvalidRequest, req.Op)
		}
		secretLine, err = json.Marshal(req.Secret)
		if err != nil {
			return nil, fmt.Errorf("run the helper: encode the secret: %w", err)
		}
		if _, err := ParseSecret(secretLine); err != nil {
			clear(secretLine)
			return nil, fmt.Errorf("run the helper: %w", err)
		}
		defer clear(secretLine)
	} else if req.Secret != nil {
		return nil, fmt.Errorf("run the helper: %w: only add-key-slot takes a secret", ErrInvalidRequest)
	}
	cancelGrace, termGrace := c.CancelGrace, c.TermGrace
	if cancelGrace <= 0 {
		cancelGrace = 10 * time.Second
	}
	if termGrace <= 0 {
		termGrace = 5 * time.Second
	}
	log := c.log.WithField("op", req.Op)

	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("run the helper: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("run the helper: %w", err)
	}
	defer inW.Close()
	defer outR.Close()
	stderr := tailbuf.New(helperStderrLines, helperStderrLen)
	stderr.OnLine = func(l string) { log.WithField("helper_stderr", l).Debug("helper") }
	cmd := exec.Command(c.Command[0], c.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	cmd.WaitDelay = helperDrainTimeout
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		return nil, fmt.Errorf("run the helper %s: %w", c.Command[0], err)
	}
	log.WithField("pid", cmd.Process.Pid).Info("helper started")

	write := func(b []byte) error {
		_ = inW.SetWriteDeadline(time.Now().Add(helperWriteTimeout))
		_, err := inW.Write(append(b, '\n'))
		return err
	}
	if err := write(reqLine); err != nil {
		// It may have exited already: its output says why.
		log.WithError(err).Warn("could not send the request to the helper")
	} else if secretLine != nil {
		// The secret goes only down this pipe, on its own line: never in argv, the
		// environment, a file or a log.
		line := append(secretLine, '\n')
		_ = inW.SetWriteDeadline(time.Now().Add(helperWriteTimeout))
		_, err := inW.Write(line)
		clear(line)
		if err != nil {
			log.WithError(err).Warn("could not send the secret to the helper")
		}
	}

	quit := make(chan struct{})
	defer close(quit)
	lines := make(chan EventLine)
	go ReadEvents(outR, lines, quit)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var (
		final                *Event
		protoErr             error
		cancelled, stopping  bool
		linesDone, exitDone  bool
		exitErr              error
		stage                int
		escalate, drainTimer <-chan time.Time
	)
	ctxDone := ctx.Done()
	stop := func(sendCancel bool) {
		if stopping {
			return
		}
		stopping = true
		if sendCancel {
			cl, _ := json.Marshal(Request{Version: ProtocolVersion, Op: OpCancel})
			if err := write(cl); err != nil {
				log.WithError(err).Debug("could not send cancel to the helper")
			}
		}
		inW.Close()
		escalate = time.After(cancelGrace)
	}
	for !linesDone || !exitDone {
		select {
		case l, ok := <-lines:
			if !ok {
				linesDone, lines = true, nil
				stop(final == nil)
				continue
			}
			if l.Err != nil {
				protoErr = l.Err
				log.WithError(l.Err).Warn("helper protocol error")
				stop(true)
				continue
			}
			switch {
			case final != nil:
				log.WithField("event", l.Event.Event).Warn("helper event after its final event, ignored")
			case l.Event.Event == EventProgress:
				if progress != nil {
					progress(l.Event)
				}
			default:
				ev := l.Event
				final = &ev
				stop(false)
			}
		case exitErr = <-exited:
			exitDone, exited = true, nil
			escalate = nil
			if !linesDone {
				drainTimer = time.After(helperDrainTimeout)
			}
		case <-drainTimer:
			drainTimer = nil
			outR.Close() // unblocks the reader
		case <-ctxDone:
			ctxDone, cancelled = nil, true
			log.Info("cancelling the helper")
			stop(true)
		case <-escalate:
			stage++
			if stage == 1 {
				log.Warn("the helper does not exit: sending SIGTERM")
				_ = cmd.Process.Signal(syscall.SIGTERM)
				escalate = time.After(termGrace)
			} else {
				log.Warn("the helper does not exit: sending SIGKILL to its runner")
				_ = cmd.Process.Kill()
				escalate = nil
			}
		}
	}

	crash := &HelperCrashError{ExitCode: -1, Stderr: stderr.Lines()}
	if ps := cmd.ProcessState; ps != nil {
		crash.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			crash.Signal = ws.Signal().String()
		}
	}
	withCtx := func(err error) error {
		if cancelled {
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return err
	}
	switch {
	case final != nil && final.Event == EventDone:
		if final.Report == nil {
			// Only an update reports what it did; mark, promote and create-persistence
			// just say they are done.
			if req.Op == OpUpdate {
				return nil, withCtx(fmt.Errorf("%w: done without a report", ErrHelperProtocol))
			}
			final.Report = &Report{}
		}
		if exitErr != nil {
			log.WithError(exitErr).Warn("the helper reported success but exited with an error")
		}
		log.Info("helper done")
		return final.Report, nil
	case final != nil:
		herr := &HelperError{Code: final.Code, Reason: final.Reason, Message: final.Message, Needed: final.Needed, Available: final.Available}
		if final.Args != nil {
			herr.Args = *final.Args
		}
		log.WithField("code", herr.Code).WithField("reason", herr.Reason).WithField("message", herr.Message).Info("helper failed")
		return nil, withCtx(herr)
	case protoErr != nil:
		return nil, withCtx(fmt.Errorf("%w (%v)", protoErr, crash))
	}
	log.WithField("exit", crash.Error()).Warn("helper ended without a final event")
	return nil, withCtx(crash)
}

// ReadEvents sends each event line of r on out; after the first bad line it sends the
// error and discards the rest of r. It closes out at the end of r, and gives up when quit is
// closed.
func ReadEvents(r *os.File, out chan<- EventLine, quit <-chan struct{}) {
	defer close(out)
	send := func(l EventLine) bool {
		select {
		case out <- l:
			return true
		case <-quit:
			return false
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxHelperLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := parseHelperEvent(line)
		if err != nil {
			if send(EventLine{Err: fmt.Errorf("line %d: %w", n, err)}) {
				_, _ = io.Copy(io.Discard, r) // a helper blocked writing would never exit
			}
			return
		}
		if !send(EventLine{Event: ev}) {
			return
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		if send(EventLine{Err: fmt.Errorf("%w: %v", ErrHelperProtocol, err)}) {
			_, _ = io.Copy(io.Discard, r)
		}
	}
}

// parseHelperEvent decodes and checks one event line.
func parseHelperEvent(line []byte) (Event, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrHelperProtocol, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, fmt.Errorf("%w: data after the JSON object", ErrHelperProtocol)
	}
	switch ev.Event {
	case EventProgress, EventDone:
	case EventError:
		if ev.Code == "" {
			return Event{}, fmt.Errorf("%w: error event without a code", ErrHelperProtocol)
		}
	default:
		return Event{}, fmt.Errorf("%w: unknown event %q", ErrHelperProtocol, ev.Event)
	}
	return ev, nil
}
