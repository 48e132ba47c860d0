package helper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	gosync "sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"tails-backup/wire"
)

// errSessionGone is the cancellation cause when the session closed the helper's standard input
// or output.
var errSessionGone = errors.New("the session closed the connection")

// errNoInput is an empty standard input: no request at all.
var errNoInput = errors.New("standard input ended before any request")

// errCancelRequested is the cancellation cause of a cancel line.
var errCancelRequested = errors.New("cancelled by the session")

// Run serves one request: it reads the request line from stdin, validates everything against
// the system, does the operation and writes Event lines on stdout, ending with exactly one
// "done" or "error" event. It returns nil after "done" and the *Failure reported otherwise.
//
// After the request, a {"op":"cancel"} line or the end of stdin cancels the operation, as does
// the end of ctx (SIGTERM, SIGINT). Run does not wait for stdin to end before returning.
func Run(ctx context.Context, stdin io.Reader, stdout io.Writer, sys System, log *logrus.Entry) error {
	sys = sys.withDefaults()
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := &eventWriter{w: stdout, broken: func() { cancel(errSessionGone) }}

	finish := func(f *Failure) error {
		ev := f.event()
		l := log.WithField("code", f.Code)
		if f.Err != nil {
			l = l.WithError(f.Err)
		}
		if f.Code == wire.CodeCancelled {
			l.Warn(f.Message)
		} else {
			l.Error(f.Message)
		}
		out.write(ev)
		return f
	}

	if euid := sys.Euid(); euid != 0 {
		return finish(failf(wire.CodeRefused, wire.ReasonNotRoot, wire.Args{}, nil, "The tails-backup helper must run as root (it runs as user %d); run it through its sudo rule.", euid))
	}
	if sys.UDisks == nil {
		return finish(failf(wire.CodeInternal, wire.ReasonNoUDisks, wire.Args{}, nil, "The tails-backup helper has no connection to udisks; reinstall tails-backup."))
	}

	in := bufio.NewReaderSize(stdin, wire.MaxRequestSize+1)
	req, f := readRequest(ctx, in, sys)
	if f != nil {
		return finish(f)
	}
	log = log.WithFields(logrus.Fields{"op": req.Op, "backup": req.Backup})
	log.WithField("skipped_folders", len(req.Skip)).Info("request received")
	var secret *wire.Secret
	if wire.NeedsSecret(req.Op) {
		s, f := readSecret(ctx, in, sys)
		if f != nil {
			return finish(f)
		}
		secret = &s
		defer secret.Wipe()
	}
	go watchInput(in, cancel, log)

	ops := &operation{ctx: ctx, sys: sys, req: req, log: log, out: out, secret: secret}
	rep, f := ops.run()
	if f != nil {
		return finish(f)
	}
	log.Info("done")
	out.write(wire.Event{Event: wire.EventDone, Report: rep})
	return nil
}

// readRequest reads the request line, giving up at the end of ctx or after sys.RequestTimeout.
func readRequest(ctx context.Context, in *bufio.Reader, sys System) (wire.Request, *Failure) {
	type result struct {
		req wire.Request
		err error
	}
	ch := make(chan result, 1)
	go func() {
		if _, err := in.Peek(1); errors.Is(err, io.EOF) {
			ch <- result{err: errNoInput}
			return
		}
		req, err := wire.ReadRequest(in)
		ch <- result{req, err}
	}()
	timer := time.NewTimer(sys.RequestTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if errors.Is(r.err, errNoInput) {
			// Nothing at all: not the agent nor a command, which always send a request.
			return wire.Request{}, failf(wire.CodeInvalidRequest, wire.ReasonNoRequest, wire.Args{}, r.err, "The tails-backup helper got no request on its standard input: it is not meant to be run by hand (the session agent and the tails-backup commands run it through sudo).")
		}
		if r.err != nil {
			// The error may quote the request: only a bounded, one-line excerpt goes to the log.
			msg := shorten(r.err.Error())
			return wire.Request{}, failf(wire.CodeInvalidRequest, wire.ReasonBadRequest, wire.Args{}, errors.New(msg), "The request to the tails-backup helper is invalid (%s); update tails-backup, or report the bug if it is up to date.", msg)
		}
		return r.req, nil
	case <-ctx.Done():
		return wire.Request{}, cancelled(ctx)
	case <-timer.C:
		return wire.Request{}, failf(wire.CodeInvalidRequest, wire.ReasonRequestTimeout, wire.Args{}, nil, "No request came to the tails-backup helper within %s; start the operation again.", sys.RequestTimeout)
	}
}

// readSecret reads the Secret line that follows the request, giving up as readRequest does.
// Neither the line nor an excerpt of it ever reaches an error or the log.
func readSecret(ctx context.Context, in *bufio.Reader, sys System) (wire.Secret, *Failure) {
	type result struct {
		s   wire.Secret
		err error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := in.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			ch <- result{err: fmt.Errorf("%w: longer than %d bytes", wire.ErrInvalidSecret, in.Size())}
		case err != nil && !(errors.Is(err, io.EOF) && len(line) > 0):
			ch <- result{err: fmt.Errorf("%w: no secret line after the request", wire.ErrInvalidSecret)}
		default:
			s, err := wire.ParseSecret(bytes.TrimSpace(line))
			// The line sits in the reader's buffer: overwrite it.
			clear(line)
			ch <- result{s, err}
		}
	}()
	timer := time.NewTimer(sys.RequestTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return wire.Secret{}, failf(wire.CodeInvalidRequest, wire.ReasonBadSecret, wire.Args{}, r.err, "The passphrase did not reach the tails-backup helper as it should (%s); update tails-backup, or report the bug if it is up to date.", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		return wire.Secret{}, cancelled(ctx)
	case <-timer.C:
		return wire.Secret{}, failf(wire.CodeInvalidRequest, wire.ReasonSecretTimeout, wire.Args{}, nil, "No passphrase came to the tails-backup helper within %s; start the operation again.", sys.RequestTimeout)
	}
}

// shorten bounds a message taken from the request (a JSON error may quote it) and keeps it
// valid UTF-8 on one line.
func shorten(s string) string {
	s = string(bytes.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, []byte(s)))
	const max = 200
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// watchInput reads the lines after the request: a cancel line or the end of input cancels.
func watchInput(in *bufio.Reader, cancel context.CancelCauseFunc, log *logrus.Entry) {
	for {
		line, err := in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An overlong line is not a cancel line: skip it up to its end.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = in.ReadSlice('\n')
			}
			log.Warn("ignored an overlong line after the request")
			if err != nil {
				cancel(errSessionGone)
				return
			}
			continue
		}
		if len(bytes.TrimSpace(line)) > 0 {
			var msg struct {
				Op wire.Op `json:"op"`
			}
			if json.Unmarshal(bytes.TrimSpace(line), &msg) == nil && msg.Op == wire.OpCancel {
				log.Info("cancel requested")
				cancel(errCancelRequested)
				return
			}
			log.Warn("ignored a line after the request that is not a cancel")
		}
		if err != nil {
			log.Info("standard input closed: cancelling")
			cancel(errSessionGone)
			return
		}
	}
}

// cancelled is the Failure for a cancellation, saying by what.
func cancelled(ctx context.Context) *Failure {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errCancelRequested):
		return failf(wire.CodeCancelled, wire.ReasonCancelled, wire.Args{}, cause, "The operation was cancelled; nothing is lost, and running it again finishes the job.")
	case errors.Is(cause, errSessionGone):
		return failf(wire.CodeCancelled, wire.ReasonCancelled, wire.Args{}, cause, "The operation was cancelled because tails-backup stopped; nothing is lost, and running it again finishes the job.")
	default:
		return failf(wire.CodeCancelled, wire.ReasonCancelled, wire.Args{}, cause, "The operation was stopped before its end; nothing is lost, and running it again finishes the job.")
	}
}

// eventWriter writes Event lines, one Write each, from any goroutine. When the output breaks
// (the session is gone), it calls broken once and drops the following events.
type eventWriter struct {
	mu     gosync.Mutex
	w      io.Writer
	broken func()
	failed bool
}

func (e *eventWriter) write(ev wire.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("helper: encode event: %v", err)) // only plain types: cannot happen
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed {
		return
	}
	if _, err := e.w.Write(b); err != nil {
		e.failed = true
		if e.broken != nil {
			e.broken()
		}
	}
}
