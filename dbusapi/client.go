package dbusapi

import (
	"context"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"
)

// DefaultCallTimeout bounds each call of a Client whose context has no earlier deadline.
const DefaultCallTimeout = 25 * time.Second

// Client calls the API, for the tests and the command line.
type Client struct {
	conn    *dbus.Conn
	obj     dbus.BusObject
	timeout time.Duration
}

// NewClient returns a client of the agent on conn; each call lasts at most timeout
// (DefaultCallTimeout when 0).
func NewClient(conn *dbus.Conn, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	return &Client{conn: conn, obj: conn.Object(BusName, ObjectPath), timeout: timeout}
}

func (c *Client) call(ctx context.Context, method string, out []any, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	call := c.obj.CallWithContext(ctx, Interface+"."+method, 0, args...)
	if call.Err != nil {
		return fmt.Errorf("%s: %w", method, fromDBus(call.Err))
	}
	if len(out) > 0 {
		if err := call.Store(out...); err != nil {
			return fmt.Errorf("%s: read the answer: %w", method, err)
		}
	}
	return nil
}

func (c *Client) job(ctx context.Context, method string, args ...any) (string, error) {
	var id string
	err := c.call(ctx, method, []any{&id}, args...)
	return id, err
}

// Status calls GetStatus.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var d dict
	if err := c.call(ctx, "GetStatus", []any{&d}); err != nil {
		return Status{}, err
	}
	return decodeStatus(d), nil
}

// ListSticks calls ListSticks.
func (c *Client) ListSticks(ctx context.Context, purpose string) ([]StickInfo, error) {
	var ds []dict
	if err := c.call(ctx, "ListSticks", []any{&ds}, purpose); err != nil {
		return nil, err
	}
	return decodeSticks(ds), nil
}

// UpdateNow calls UpdateNow.
func (c *Client) UpdateNow(ctx context.Context, backup string) (string, error) {
	return c.job(ctx, "UpdateNow", backup)
}

// Create calls Create.
func (c *Client) Create(ctx context.Context, device, confirm string) (string, error) {
	return c.job(ctx, "Create", device, confirm)
}

// Pair calls Pair.
func (c *Client) Pair(ctx context.Context, device string) (string, error) {
	return c.job(ctx, "Pair", device)
}

// Restore calls Restore.
func (c *Client) Restore(ctx context.Context, device string) (string, error) {
	return c.job(ctx, "Restore", device)
}

// Verify calls Verify.
func (c *Client) Verify(ctx context.Context, device string) (string, error) {
	return c.job(ctx, "Verify", device)
}

// Promote calls Promote.
func (c *Client) Promote(ctx context.Context) (string, error) { return c.job(ctx, "Promote") }

// Forget calls Forget.
func (c *Client) Forget(ctx context.Context, backup string) (string, error) {
	return c.job(ctx, "Forget", backup)
}

// SetPassphraseFree calls SetPassphraseFree.
func (c *Client) SetPassphraseFree(ctx context.Context, backup string, enabled bool) (string, error) {
	return c.job(ctx, "SetPassphraseFree", backup, enabled)
}

// Cancel calls Cancel.
func (c *Client) Cancel(ctx context.Context, job string) error {
	return c.call(ctx, "Cancel", nil, job)
}

// Answer calls Answer.
func (c *Client) Answer(ctx context.Context, job, question, choice string) error {
	return c.call(ctx, "Answer", nil, job, question, choice)
}

// SetReminders calls SetReminders.
func (c *Client) SetReminders(ctx context.Context, enabled bool, periodDays uint32) error {
	return c.call(ctx, "SetReminders", nil, enabled, periodDays)
}

// Snooze calls Snooze.
func (c *Client) Snooze(ctx context.Context) error { return c.call(ctx, "Snooze", nil) }

// Introspect returns the object's introspection data.
func (c *Client) Introspect(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var xml string
	if err := c.obj.CallWithContext(ctx, "org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&xml); err != nil {
		return "", fmt.Errorf("introspect %s: %w", BusName, err)
	}
	return xml, nil
}

// Signal is one signal of the API, decoded: Name says which fields are set.
type Signal struct {
	Name     string // one of the Signal constants
	Job      string
	Progress Progress // Progress
	Level    string   // Message
	Text     string   // Message
	Question Question // Question
	Result   Result   // JobFinished
}

// Signals subscribes to the API's signals until ctx ends; the channel is closed then. A signal
// whose arguments are not those of the API is dropped.
func (c *Client) Signals(ctx context.Context) (<-chan Signal, error) {
	mctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	opts := []dbus.MatchOption{dbus.WithMatchInterface(Interface), dbus.WithMatchObjectPath(ObjectPath)}
	if err := c.conn.AddMatchSignalContext(mctx, opts...); err != nil {
		return nil, fmt.Errorf("subscribe to the signals of %s: %w", BusName, err)
	}
	raw := make(chan *dbus.Signal, 64)
	c.conn.Signal(raw)
	out := make(chan Signal, 64)
	go func() {
		defer close(out)
		defer func() {
			c.conn.RemoveSignal(raw)
			rctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			defer cancel()
			_ = c.conn.RemoveMatchSignalContext(rctx, opts...)
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case s, ok := <-raw:
				if !ok {
					return
				}
				if s.Path != ObjectPath {
					continue
				}
				d, ok := decodeSignal(s)
				if !ok {
					continue
				}
				select {
				case out <- d:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func decodeSignal(s *dbus.Signal) (Signal, bool) {
	var out Signal
	var err error
	switch s.Name {
	case Interface + "." + SignalStateChanged:
		out.Name = SignalStateChanged
	case Interface + "." + SignalProgress:
		var d dict
		err = dbus.Store(s.Body, &out.Job, &d)
		out.Name, out.Progress = SignalProgress, decodeProgress(d)
	case Interface + "." + SignalMessage:
		err = dbus.Store(s.Body, &out.Job, &out.Level, &out.Text)
		out.Name = SignalMessage
	case Interface + "." + SignalQuestion:
		var id string
		var d dict
		err = dbus.Store(s.Body, &out.Job, &id, &d)
		out.Name, out.Question = SignalQuestion, decodeQuestion(id, d)
	case Interface + "." + SignalJobFinished:
		var result, text string
		var d dict
		err = dbus.Store(s.Body, &out.Job, &result, &text, &d)
		out.Name, out.Result = SignalJobFinished, decodeResult(result, text, d)
	default:
		return out, false
	}
	return out, err == nil
}
