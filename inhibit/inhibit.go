// Package inhibit keeps the computer from sleeping or shutting down while an update runs,
// through logind's sleep inhibitor locks.
package inhibit

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Inhibitor keeps the computer from sleeping or shutting down while an update runs.
// Implemented by *LogindInhibitor and inhibittest.FakeInhibitor.
type Inhibitor interface {
	// Inhibit takes the lock, explaining why; release gives it back (idempotent). An error
	// wrapping ErrInhibitUnavailable means there is no login manager to ask: warn and go on.
	Inhibit(ctx context.Context, why string) (release func(), err error)
}

// ErrInhibitUnavailable: logind is not there (or refuses), so sleep cannot be inhibited. The
// update must still run.
var ErrInhibitUnavailable = errors.New("cannot prevent the computer from sleeping")

const (
	login1Name    = "org.freedesktop.login1"
	login1Path    = dbus.ObjectPath("/org/freedesktop/login1")
	login1Inhibit = "org.freedesktop.login1.Manager.Inhibit"
	inhibitWhat   = "sleep:shutdown"
	inhibitWho    = "Tails Backup"
	inhibitMode   = "block"
	// DefaultInhibitWhy is the reason shown by the desktop when the user tries to suspend.
	DefaultInhibitWhy = "Updating your backup Tails"
)

// LogindInhibitor takes a "block" inhibitor lock of systemd-logind (Manager.Inhibit on the
// system bus): the lock lasts as long as the file descriptor it returns is open.
type LogindInhibitor struct {
	conn *dbus.Conn
	log  *logrus.Entry
}

// NewLogindInhibitor uses conn, a connection to the system bus (it must pass file
// descriptors: a unix socket). A nil conn makes every Inhibit fail with ErrInhibitUnavailable.
func NewLogindInhibitor(conn *dbus.Conn, log *logrus.Entry) *LogindInhibitor {
	return &LogindInhibitor{conn: conn, log: log}
}

// Inhibit blocks sleep and shutdown until release is called. why "" means DefaultInhibitWhy.
func (l *LogindInhibitor) Inhibit(ctx context.Context, why string) (func(), error) {
	if why == "" {
		why = DefaultInhibitWhy
	}
	if l.conn == nil {
		return nil, fmt.Errorf("%w: no system bus", ErrInhibitUnavailable)
	}
	if !l.conn.SupportsUnixFDs() {
		return nil, fmt.Errorf("%w: the system bus connection cannot pass file descriptors", ErrInhibitUnavailable)
	}
	var fd dbus.UnixFD
	call := l.conn.Object(login1Name, login1Path).CallWithContext(ctx, login1Inhibit, 0,
		inhibitWhat, inhibitWho, why, inhibitMode)
	if err := call.Store(&fd); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("inhibit sleep: %w", ctx.Err())
		}
		var derr dbus.Error
		if errors.As(err, &derr) {
			// No logind, or one that refuses us (policy): the caller warns and goes on.
			return nil, fmt.Errorf("%w: %s: %v", ErrInhibitUnavailable, derr.Name, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrInhibitUnavailable, err)
	}
	if fd < 0 {
		return nil, fmt.Errorf("%w: logind returned no file descriptor", ErrInhibitUnavailable)
	}
	unix.CloseOnExec(int(fd)) // children (the helper) must not keep the lock alive
	l.log.WithField("why", why).Debug("sleep and shutdown inhibited")
	var once sync.Once
	return func() {
		once.Do(func() {
			unix.Close(int(fd))
			l.log.Debug("sleep and shutdown allowed again")
		})
	}, nil
}

var _ Inhibitor = (*LogindInhibitor)(nil)
