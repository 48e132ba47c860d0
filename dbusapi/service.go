package dbusapi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/sirupsen/logrus"
)

// The names of the API (docs/dbus-api.md).
const (
	BusName     = "org.boum.tails.Backup1"
	ObjectPath  = dbus.ObjectPath("/org/boum/tails/Backup1")
	Interface   = "org.boum.tails.Backup1"
	ErrorPrefix = Interface + ".Error."
)

// Signal names, without the interface.
const (
	SignalStateChanged = "StateChanged"
	SignalProgress     = "Progress"
	SignalMessage      = "Message"
	SignalQuestion     = "Question"
	SignalJobFinished  = "JobFinished"
)

// IntrospectXML is the introspection data of the object, the API's machine-readable form.
//
//go:embed org.boum.tails.Backup1.xml
var IntrospectXML string

// callTimeout bounds each Backend call a method makes (the app's own calls wait 25 s).
const callTimeout = 20 * time.Second

// Service serves a Backend on a bus and emits its Events as signals.
type Service struct {
	conn    *dbus.Conn
	backend Backend
	log     *logrus.Entry
	ctx     context.Context // ends with Serve's context or Close
	cancel  context.CancelFunc

	mu   sync.Mutex
	last map[string]Progress // each running job's last Progress
	once sync.Once
}

// Serve exports the API for backend on conn and takes the name BusName; ErrNameTaken when
// another process has it. The service stops when ctx ends or at Close. The backend's events
// reach the bus once it sends them to the returned Service (for example through a Relay).
func Serve(ctx context.Context, conn *dbus.Conn, backend Backend, log *logrus.Entry) (*Service, error) {
	sctx, cancel := context.WithCancel(ctx)
	s := &Service{conn: conn, backend: backend, log: log, ctx: sctx, cancel: cancel, last: make(map[string]Progress)}
	methods := map[string]any{
		"GetStatus":         s.getStatus,
		"ListSticks":        s.listSticks,
		"UpdateNow":         s.updateNow,
		"Create":            s.create,
		"Pair":              s.pair,
		"Restore":           s.restore,
		"Verify":            s.verify,
		"Promote":           s.promote,
		"Forget":            s.forget,
		"SetPassphraseFree": s.setPassphraseFree,
		"Cancel":            s.cancelJob,
		"Answer":            s.answer,
		"SetReminders":      s.setReminders,
		"Snooze":            s.snooze,
	}
	if err := conn.ExportMethodTable(methods, ObjectPath, Interface); err != nil {
		cancel()
		return nil, fmt.Errorf("export %s: %w", Interface, err)
	}
	if err := conn.Export(introspect.Introspectable(IntrospectXML), ObjectPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		s.unexport()
		cancel()
		return nil, fmt.Errorf("export introspection: %w", err)
	}
	reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		s.unexport()
		cancel()
		return nil, fmt.Errorf("request the name %s: %w", BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner && reply != dbus.RequestNameReplyAlreadyOwner {
		s.unexport()
		cancel()
		return nil, ErrNameTaken
	}
	go func() {
		<-sctx.Done()
		s.stop()
	}()
	log.WithField("name", BusName).Info("serving the Backup API on the session bus")
	return s, nil
}

// Close stops serving: the name is released and the object removed.
func (s *Service) Close() {
	s.cancel()
	s.stop()
}

func (s *Service) stop() {
	s.once.Do(func() {
		if _, err := s.conn.ReleaseName(BusName); err != nil {
			s.log.WithError(err).Debug("release the bus name")
		}
		s.unexport()
	})
}

func (s *Service) unexport() {
	_ = s.conn.Export(nil, ObjectPath, Interface)
	_ = s.conn.Export(nil, ObjectPath, "org.freedesktop.DBus.Introspectable")
}

// call runs a Backend method with a bounded context and turns its error into the API's.
func call[T any](s *Service, method string, f func(ctx context.Context) (T, error)) (T, *dbus.Error) {
	ctx, cancel := context.WithTimeout(s.ctx, callTimeout)
	defer cancel()
	out, err := f(ctx)
	if err != nil {
		l := s.log.WithField("method", method).WithError(err)
		var e *Error
		if errors.As(err, &e) && e.Kind != Failed {
			l.Debug("API call refused")
		} else {
			l.Warn("API call failed")
		}
		var zero T
		return zero, toDBus(err)
	}
	return out, nil
}

func call0(s *Service, method string, f func(ctx context.Context) error) *dbus.Error {
	_, err := call(s, method, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

func (s *Service) getStatus() (dict, *dbus.Error) {
	st, err := call(s, "GetStatus", s.backend.Status)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return encodeStatus(st, s.last), nil
}

func (s *Service) listSticks(purpose string) ([]dict, *dbus.Error) {
	sticks, err := call(s, "ListSticks", func(ctx context.Context) ([]StickInfo, error) {
		switch purpose {
		case PurposeCreate, PurposePair, PurposeRestore, PurposeVerify:
		default:
			return nil, Errorf(Refused, textUnknownPurpose, purpose)
		}
		return s.backend.ListSticks(ctx, purpose)
	})
	if err != nil {
		return nil, err
	}
	return encodeSticks(sticks), nil
}

func (s *Service) updateNow(backup string) (string, *dbus.Error) {
	return call(s, "UpdateNow", func(ctx context.Context) (string, error) { return s.backend.UpdateNow(ctx, backup) })
}

func (s *Service) create(device, confirm string) (string, *dbus.Error) {
	return call(s, "Create", func(ctx context.Context) (string, error) { return s.backend.Create(ctx, device, confirm) })
}

func (s *Service) pair(device string) (string, *dbus.Error) {
	return call(s, "Pair", func(ctx context.Context) (string, error) { return s.backend.Pair(ctx, device) })
}

func (s *Service) restore(device string) (string, *dbus.Error) {
	return call(s, "Restore", func(ctx context.Context) (string, error) { return s.backend.Restore(ctx, device) })
}

func (s *Service) verify(device string) (string, *dbus.Error) {
	return call(s, "Verify", func(ctx context.Context) (string, error) { return s.backend.Verify(ctx, device) })
}

func (s *Service) promote() (string, *dbus.Error) {
	return call(s, "Promote", s.backend.Promote)
}

func (s *Service) forget(backup string) (string, *dbus.Error) {
	return call(s, "Forget", func(ctx context.Context) (string, error) {
		if backup == "" {
			return "", &Error{Kind: Refused, Text: textNoBackup}
		}
		return s.backend.Forget(ctx, backup)
	})
}

func (s *Service) setPassphraseFree(backup string, enabled bool) (string, *dbus.Error) {
	return call(s, "SetPassphraseFree", func(ctx context.Context) (string, error) {
		if backup == "" {
			return "", &Error{Kind: Refused, Text: textNoBackup}
		}
		return s.backend.SetPassphraseFree(ctx, backup, enabled)
	})
}

func (s *Service) cancelJob(job string) *dbus.Error {
	return call0(s, "Cancel", func(ctx context.Context) error { return s.backend.Cancel(ctx, job) })
}

func (s *Service) answer(job, question, choice string) *dbus.Error {
	return call0(s, "Answer", func(ctx context.Context) error { return s.backend.Answer(ctx, job, question, choice) })
}

func (s *Service) setReminders(enabled bool, days uint32) *dbus.Error {
	return call0(s, "SetReminders", func(ctx context.Context) error {
		if days > 90 {
			return &Error{Kind: Refused, Text: textPeriod}
		}
		return s.backend.SetReminders(ctx, enabled, days)
	})
}

func (s *Service) snooze() *dbus.Error {
	return call0(s, "Snooze", s.backend.Snooze)
}

// emit sends a signal; a failure (the bus gone) is logged, the agent carries on.
func (s *Service) emit(name string, args ...any) {
	if s.ctx.Err() != nil {
		return
	}
	if err := s.conn.Emit(ObjectPath, Interface+"."+name, args...); err != nil {
		s.log.WithError(err).WithField("signal", name).Warn("emit a signal of the Backup API")
	}
}

// Changed implements Events: StateChanged.
func (s *Service) Changed() { s.emit(SignalStateChanged) }

// Progress implements Events: the Progress signal, remembered for GetStatus.
func (s *Service) Progress(job string, p Progress) {
	s.mu.Lock()
	s.last[job] = p
	s.mu.Unlock()
	s.emit(SignalProgress, job, encodeProgress(p))
}

// Message implements Events.
func (s *Service) Message(job, level, text string) { s.emit(SignalMessage, job, level, text) }

// Question implements Events.
func (s *Service) Question(job string, q Question) {
	s.emit(SignalQuestion, job, q.ID, encodeQuestion(q))
}

// Finished implements Events: JobFinished.
func (s *Service) Finished(job string, r Result) {
	s.mu.Lock()
	delete(s.last, job)
	s.mu.Unlock()
	s.emit(SignalJobFinished, job, r.Result, r.Text, encodeResult(r))
}
