package dbusapi

import (
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// ErrorKind is the kind of a failure the app tells apart: the last part of the D-Bus error name.
type ErrorKind string

// The error kinds of docs/dbus-api.md.
const (
	Busy     ErrorKind = "Busy"     // another job runs
	NotFound ErrorKind = "NotFound" // no such stick, backup, job or question
	Refused  ErrorKind = "Refused"  // the rule says no; the text says why
	Failed   ErrorKind = "Failed"   // anything else
)

// Name is the D-Bus error name of the kind, e.g. org.boum.tails.Backup1.Error.Busy.
func (k ErrorKind) Name() string { return ErrorPrefix + string(k) }

// Error is a failure with a sentence for a person; a Backend returns it so that the app gets
// the right error name. Any other error a Backend returns becomes Failed.
type Error struct {
	Kind ErrorKind
	Text string // one sentence for a person
}

func (e *Error) Error() string { return e.Text }

// Errorf makes an *Error of a kind, its text formatted.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Text: fmt.Sprintf(format, args...)}
}

// IsKind tells whether err is an *Error of that kind.
func IsKind(err error, kind ErrorKind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

// ErrNameTaken is returned by Serve when another process owns the API's name: another agent
// runs in this session.
var ErrNameTaken = errors.New("another Tails Backup agent already runs in this session (it owns " + BusName + "); stop it first, or leave it running")

// toDBus turns a Backend's error into the D-Bus error the app gets.
func toDBus(err error) *dbus.Error {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Kind: Failed, Text: fmt.Sprintf(textFailed, err)}
	}
	switch e.Kind {
	case Busy, NotFound, Refused, Failed:
	default:
		e = &Error{Kind: Failed, Text: e.Text}
	}
	return &dbus.Error{Name: e.Kind.Name(), Body: []any{e.Text}}
}

// fromDBus turns an error of a call into an *Error when it is one of the API's errors.
func fromDBus(err error) error {
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &de):
		dep = &de
	case errors.As(err, &dep):
	default:
		return err
	}
	for _, k := range []ErrorKind{Busy, NotFound, Refused, Failed} {
		if dep.Name == k.Name() {
			text := k.Name()
			if len(dep.Body) > 0 {
				if s, ok := dep.Body[0].(string); ok {
					text = s
				}
			}
			return &Error{Kind: k, Text: text}
		}
	}
	return err
}
