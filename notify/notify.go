// Package notify shows desktop notifications with actions over org.freedesktop.Notifications on the session bus and reports clicks, closings and notification-server restarts.
package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	fdo "github.com/esiqveland/notify"
	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
)

// Well-known names of the notification service (see the Desktop Notifications Specification).
const (
	ServiceName   = "org.freedesktop.Notifications"
	ObjectPath    = dbus.ObjectPath("/org/freedesktop/Notifications")
	InterfaceName = "org.freedesktop.Notifications"
)

// DefaultAppName is the app_name sent when Config.AppName is empty.
const DefaultAppName = "Tails Backup"

const (
	defaultCallTimeout    = 10 * time.Second
	defaultReconnectDelay = time.Second
	maxReconnectDelay     = 30 * time.Second
	maxQueuedEvents       = 256
)

// ErrNoServer reports that no notification server owns org.freedesktop.Notifications
// (or that the session bus connection is currently lost). The Notifier keeps watching
// and sends a ServerChanged event when a server appears.
var ErrNoServer = errors.New("no notification server on the session bus")

// MaxButtons is the most buttons a notification has: GNOME Shell (43 and 48) shows the first
// three actions of a notification as buttons and drops the others without a word.
const MaxButtons = 3

// ErrTooManyActions is returned by Show for a notification with more than MaxButtons actions
// besides the default action: the shell would not show the others.
var ErrTooManyActions = errors.New("notify: more actions than the notification server shows as buttons")

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("notifier closed")

// Urgency is the urgency level of a notification. The zero value sends no urgency
// hint, which servers treat as normal.
type Urgency uint8

// Urgency levels.
const (
	UrgencyDefault Urgency = iota
	UrgencyLow
	UrgencyNormal
	UrgencyCritical
)

// Reason is why a notification was closed (the spec's NotificationClosed reason).
type Reason = fdo.Reason

// Closing reasons.
const (
	ReasonExpired         = fdo.ReasonExpired
	ReasonDismissedByUser = fdo.ReasonDismissedByUser
	ReasonClosedByCall    = fdo.ReasonClosedByCall
	ReasonUnknown         = fdo.ReasonUnknown
)

// ServerInfo is the server's answer to GetServerInformation.
type ServerInfo = fdo.ServerInformation

// TimeoutNever, used as Notification.Timeout, asks the server never to expire the notification.
// Any negative Timeout means the same.
const TimeoutNever time.Duration = -1

// DefaultActionKey is the key of the action invoked by clicking the notification itself
// (servers do not show it as a button).
const DefaultActionKey = "default"

// Action is a button on a notification.
type Action struct {
	// Key is returned in ActionInvoked; it must not be empty.
	Key string
	// Label is the button text shown to the user.
	Label string
	// Command is shown instead of the button when the server does not support actions,
	// as its own line appended to the body, verbatim (e.g. "To update now, run: tails-backup update").
	// Empty means the action is simply dropped on such servers.
	Command string
}

// Notification is what Show sends. The zero value of every field is a sensible default.
type Notification struct {
	// ReplacesID, when not 0, asks the server to replace that notification in place
	// (used to update progress). The server may return a different ID if it is gone.
	ReplacesID uint32
	// Icon is an icon name or file:// URI; empty means Config.Icon.
	Icon    string
	Summary string
	// Body is plain text: it is escaped when the server interprets markup, unless BodyIsMarkup.
	Body         string
	BodyIsMarkup bool
	// Actions are shown as buttons in this order (see Action.Command for servers without actions);
	// at most MaxButtons of them, besides the default action (a click on the notification).
	Actions []Action
	Urgency Urgency
	// Timeout is 0 for the server's default, TimeoutNever (any negative value) to
	// never expire, or the display duration (rounded to milliseconds).
	Timeout time.Duration
	// Resident keeps the notification after an action is invoked (hint "resident").
	Resident bool
	// Transient bypasses the server's persistence, e.g. the message tray (hint "transient").
	Transient bool
	// Category is the spec's category hint (e.g. "transfer", "device"); empty sends none.
	Category string
	// HasProgress sends Progress (clamped to 0..100) as the int32 hint "value".
	// GNOME Shell ignores it; put the percentage in the body too.
	HasProgress bool
	Progress    int
	// Hints are extra hints; they override the ones derived from the fields above.
	Hints map[string]dbus.Variant
}

// Capabilities are what the server announced in GetCapabilities.
type Capabilities struct {
	Actions     bool // "actions": buttons are shown and ActionInvoked is emitted
	Body        bool // "body": the body text is shown
	BodyMarkup  bool // "body-markup": the body is parsed as markup
	Persistence bool // "persistence": notifications stay in a tray until dismissed
	// All is the raw list, in the server's order.
	All []string
}

// Has reports whether the server announced capability name.
func (c Capabilities) Has(name string) bool { return slices.Contains(c.All, name) }

func parseCapabilities(caps []string) Capabilities {
	c := Capabilities{All: slices.Clone(caps)}
	c.Actions = c.Has("actions")
	c.Body = c.Has("body")
	c.BodyMarkup = c.Has("body-markup")
	c.Persistence = c.Has("persistence")
	return c
}

// Event is one of ActionInvoked, NotificationClosed or ServerChanged.
type Event interface{ isEvent() }

// ActionInvoked reports that the user invoked an action of one of this Notifier's notifications.
type ActionInvoked struct {
	ID        uint32
	ActionKey string
}

// NotificationClosed reports that one of this Notifier's notifications was closed.
// No further events come for ID.
type NotificationClosed struct {
	ID     uint32
	Reason Reason
}

// ServerChanged reports that the notification server went away, appeared or was
// replaced (or that the session bus connection was lost or regained). All IDs
// returned before are invalid: re-show what should still be visible.
type ServerChanged struct {
	Available bool
	// Capabilities and Info of the new server; zero if they could not be read
	// (Show reads them again when it needs them).
	Capabilities Capabilities
	Info         ServerInfo
}

func (ActionInvoked) isEvent()      {}
func (NotificationClosed) isEvent() {}
func (ServerChanged) isEvent()      {}

// Config configures New. The zero value connects to the session bus of the environment.
type Config struct {
	// Log receives the Notifier's logs; nil discards them. Bodies are logged at debug level only.
	Log *logrus.Entry
	// Address is the D-Bus address of the session bus; empty means
	// $DBUS_SESSION_BUS_ADDRESS, or unix:path=$XDG_RUNTIME_DIR/bus.
	Address string
	// AppName is sent as app_name; empty means DefaultAppName.
	AppName string
	// Icon is the default icon (name or file:// URI) for notifications that set none.
	Icon string
	// DesktopEntry, if set, is sent as the "desktop-entry" hint (desktop file name without ".desktop").
	DesktopEntry string
	// CallTimeout bounds each D-Bus call whose context has no earlier deadline,
	// and the Notifier's own background calls; 0 means 10s.
	CallTimeout time.Duration
	// ReconnectDelay is the first delay before reconnecting to a lost session bus
	// (doubling up to 30s); 0 means 1s.
	ReconnectDelay time.Duration
}

// Notifier sends notifications and delivers the events about them. Its methods are
// safe for concurrent use.
type Notifier struct {
	log     *logrus.Entry
	cfg     Config
	address string

	ctx    context.Context // cancelled by Close; bounds background calls
	cancel context.CancelFunc
	events chan Event
	inbox  *inbox
	done   chan struct{} // closed when run returns

	closeOnce sync.Once

	mu         sync.Mutex
	closed     bool
	conn       *dbus.Conn // nil while the bus connection is lost
	connGen    uint64     // generation of conn, tags its signals
	owner      string     // unique name owning ServiceName, "" if none
	caps       Capabilities
	capsKnown  bool
	info       ServerInfo
	ours       map[uint32]struct{} // IDs this Notifier created on the current server
	unclaimed  []parked            // recent signals for IDs not (yet) ours, see claim
	queue      []Event             // events waiting for a reader of Events
	queueHead  uint64              // number of events removed from queue
	queueReady chan struct{}       // holds a token after queue grew
}

// New connects to the session bus, subscribes to the notification signals and to
// changes of the server's name owner, and reads the server's capabilities.
// It fails only if the bus cannot be reached: a missing server is not an error
// (Show then returns ErrNoServer until a server appears, see ServerChanged).
func New(ctx context.Context, cfg Config) (*Notifier, error) {
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = logrus.NewEntry(l)
	}
	if cfg.AppName == "" {
		cfg.AppName = DefaultAppName
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = defaultCallTimeout
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = defaultReconnectDelay
	}
	addr, err := busAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		log:        cfg.Log.WithField("component", "notify"),
		cfg:        cfg,
		address:    addr,
		ctx:        bctx,
		cancel:     cancel,
		events:     make(chan Event),
		inbox:      newInbox(),
		done:       make(chan struct{}),
		ours:       make(map[uint32]struct{}),
		queueReady: make(chan struct{}, 1),
	}
	cctx, ccancel := n.callContext(ctx)
	defer ccancel()
	if err := n.connect(cctx, 1); err != nil {
		cancel()
		return nil, err
	}
	go n.run()
	return n, nil
}

func busAddress(addr string) (string, error) {
	if addr != "" {
		return addr, nil
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return "unix:path=" + dir + "/bus", nil
	}
	return "", errors.New("notify: no session bus address: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset")
}

// Events returns the channel of events about this Notifier's notifications and about
// the server. It is closed by Close. Events are queued while nobody reads (up to 256,
// then the oldest are dropped), so reading is not urgent but should not stop.
func (n *Notifier) Events() <-chan Event { return n.events }

// Capabilities returns the current server's capabilities, reading them if unknown.
// It returns an error wrapping ErrNoServer if there is no server.
func (n *Notifier) Capabilities(ctx context.Context) (Capabilities, error) {
	conn, caps, known, err := n.snapshot()
	if err != nil {
		return Capabilities{}, err
	}
	if known {
		caps.All = slices.Clone(caps.All)
		return caps, nil
	}
	ctx, cancel := n.callContext(ctx)
	defer cancel()
	return n.refreshCapabilities(ctx, conn)
}

// Available reports whether a notification server currently owns the name.
// (Show may still succeed when it does not, if the bus can activate one.)
func (n *Notifier) Available() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conn != nil && n.owner != ""
}

// Show sends n and returns the notification's ID. Events about the ID are delivered
// on Events. Without a server it returns an error wrapping ErrNoServer; when ctx
// expires, one wrapping ctx.Err().
func (n *Notifier) Show(ctx context.Context, note Notification) (uint32, error) {
	buttons := 0
	for _, a := range note.Actions {
		if a.Key == "" {
			return 0, fmt.Errorf("notify: action %q has an empty key", a.Label)
		}
		if a.Key != DefaultActionKey {
			buttons++
		}
	}
	if buttons > MaxButtons {
		return 0, fmt.Errorf("%w: %d buttons, at most %d", ErrTooManyActions, buttons, MaxButtons)
	}
	ctx, cancel := n.callContext(ctx)
	defer cancel()

	conn, caps, known, err := n.snapshot()
	if err != nil {
		return 0, err
	}
	if !known {
		if caps, err = n.refreshCapabilities(ctx, conn); err != nil {
			return 0, fmt.Errorf("notify: show notification: %w", err)
		}
	}
	args := n.build(note, caps)

	var id uint32
	call := conn.Object(ServiceName, ObjectPath).CallWithContext(ctx, InterfaceName+".Notify", 0,
		args.appName, note.ReplacesID, args.icon, args.summary, args.body, args.actions, args.hints, args.timeout)
	if err := call.Store(&id); err != nil {
		return 0, fmt.Errorf("notify: show notification (replaces %d): %w", note.ReplacesID, n.mapError(err))
	}
	if id == 0 {
		return 0, errors.New("notify: show notification: server returned ID 0")
	}
	n.claim(conn, id, call.ResponseSequence, note.ReplacesID == 0)
	n.log.WithFields(logrus.Fields{"id": id, "replaces": note.ReplacesID, "actions": len(args.actions) / 2}).Info("notification shown")
	n.log.WithFields(logrus.Fields{"id": id, "summary": note.Summary, "body": args.body}).Debug("notification content")
	return id, nil
}

// Replace shows note in place of the notification id (see Notification.ReplacesID)
// and returns the ID to use from now on.
func (n *Notifier) Replace(ctx context.Context, id uint32, note Notification) (uint32, error) {
	note.ReplacesID = id
	return n.Show(ctx, note)
}

// CloseNotification asks the server to close notification id; a NotificationClosed
// event with ReasonClosedByCall follows.
func (n *Notifier) CloseNotification(ctx context.Context, id uint32) error {
	ctx, cancel := n.callContext(ctx)
	defer cancel()
	conn, _, _, err := n.snapshot()
	if err != nil {
		return err
	}
	call := conn.Object(ServiceName, ObjectPath).CallWithContext(ctx, InterfaceName+".CloseNotification", 0, id)
	if call.Err != nil {
		return fmt.Errorf("notify: close notification %d: %w", id, n.mapError(call.Err))
	}
	n.log.WithField("id", id).Debug("notification closed by call")
	return nil
}

// Close unsubscribes, stops the Notifier's goroutine, closes its bus connection and
// the Events channel. It is safe to call more than once.
func (n *Notifier) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		conn := n.conn
		n.conn = nil
		n.mu.Unlock()
		n.cancel()
		<-n.done
		if conn != nil {
			// Closing the private connection drops its match rules on the bus.
			err = conn.Close()
		}
		close(n.events)
	})
	if err != nil {
		return fmt.Errorf("notify: close bus connection: %w", err)
	}
	return nil
}

// callContext bounds ctx by CallTimeout and by Close.
func (n *Notifier) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (n *Notifier) snapshot() (*dbus.Conn, Capabilities, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return nil, Capabilities{}, false, ErrClosed
	case n.conn == nil:
		return nil, Capabilities{}, false, fmt.Errorf("%w (session bus connection lost, reconnecting)", ErrNoServer)
	}
	return n.conn, n.caps, n.capsKnown, nil
}

// mapError turns "nobody owns the name" errors into ErrNoServer and reports ErrClosed after Close.
func (n *Notifier) mapError(err error) error {
	var derr dbus.Error
	if errors.As(err, &derr) {
		switch derr.Name {
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
			return fmt.Errorf("%w: %v", ErrNoServer, err)
		}
	}
	if n.ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// refreshCapabilities reads the capabilities over conn and caches them if conn is
// still the current connection.
func (n *Notifier) refreshCapabilities(ctx context.Context, conn *dbus.Conn) (Capabilities, error) {
	var raw []string
	call := conn.Object(ServiceName, ObjectPath).CallWithContext(ctx, InterfaceName+".GetCapabilities", 0)
	if err := call.Store(&raw); err != nil {
		return Capabilities{}, fmt.Errorf("read server capabilities: %w", n.mapError(err))
	}
	caps := parseCapabilities(raw)
	n.mu.Lock()
	if n.conn == conn {
		n.caps, n.capsKnown = caps, true
	}
	n.mu.Unlock()
	return caps, nil
}

type notifyArgs struct {
	appName, icon, summary, body string
	actions                      []string
	hints                        map[string]dbus.Variant
	timeout                      int32
}

// build turns a Notification into Notify's arguments for a server with caps.
func (n *Notifier) build(note Notification, caps Capabilities) notifyArgs {
	a := notifyArgs{appName: n.cfg.AppName, icon: note.Icon, actions: []string{}, hints: map[string]dbus.Variant{}}
	if a.icon == "" {
		a.icon = n.cfg.Icon
	}

	body := note.Body
	if caps.BodyMarkup && !note.BodyIsMarkup {
		body = escapeMarkup(body)
	}
	var fallback []string
	for _, act := range note.Actions {
		if caps.Actions {
			a.actions = append(a.actions, act.Key, act.Label)
		} else if act.Command != "" {
			cmd := act.Command
			if caps.BodyMarkup {
				cmd = escapeMarkup(cmd)
			}
			fallback = append(fallback, cmd)
		}
	}
	a.summary = note.Summary
	if len(fallback) > 0 {
		if !caps.Body {
			// A server without body support would drop the commands: keep them visible.
			a.summary = strings.Join(append([]string{a.summary}, fallback...), " — ")
		}
		body = strings.Join(append(nonEmpty(body), fallback...), "\n")
	}
	a.body = body

	switch {
	case note.Timeout == 0:
		a.timeout = int32(fdo.ExpireTimeoutSetByNotificationServer.Milliseconds())
	case note.Timeout < 0:
		a.timeout = int32(fdo.ExpireTimeoutNever.Milliseconds())
	case note.Timeout < time.Millisecond:
		a.timeout = 1
	case note.Timeout.Milliseconds() > math.MaxInt32:
		a.timeout = math.MaxInt32
	default:
		a.timeout = int32(note.Timeout.Milliseconds())
	}

	addHint := func(h fdo.Hint) { a.hints[h.ID] = h.Variant }
	switch note.Urgency {
	case UrgencyLow:
		addHint(fdo.HintUrgency(fdo.UrgencyLow))
	case UrgencyNormal:
		addHint(fdo.HintUrgency(fdo.UrgencyNormal))
	case UrgencyCritical:
		addHint(fdo.HintUrgency(fdo.UrgencyCritical))
	}
	if note.Resident {
		a.hints["resident"] = dbus.MakeVariant(true)
	}
	if note.Transient {
		a.hints["transient"] = dbus.MakeVariant(true)
	}
	if note.Category != "" {
		a.hints["category"] = dbus.MakeVariant(note.Category)
	}
	if n.cfg.DesktopEntry != "" {
		a.hints["desktop-entry"] = dbus.MakeVariant(n.cfg.DesktopEntry)
	}
	if note.HasProgress {
		a.hints["value"] = dbus.MakeVariant(int32(min(max(note.Progress, 0), 100)))
	}
	for k, v := range note.Hints {
		a.hints[k] = v
	}
	return a
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// escapeMarkup escapes the characters that notification markup (a small XML subset) interprets.
func escapeMarkup(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
