package notifytest

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// D-Bus names of the notification service.
const (
	serviceName   = "org.freedesktop.Notifications"
	objectPath    = dbus.ObjectPath("/org/freedesktop/Notifications")
	interfaceName = "org.freedesktop.Notifications"
)

// Closing reasons of NotificationClosed, as in the specification.
const (
	ReasonExpired   uint32 = 1
	ReasonDismissed uint32 = 2
	ReasonClosed    uint32 = 3
	ReasonUndefined uint32 = 4
)

// Method names accepted by Server.Block.
const (
	MethodNotify               = "Notify"
	MethodCloseNotification    = "CloseNotification"
	MethodGetCapabilities      = "GetCapabilities"
	MethodGetServerInformation = "GetServerInformation"
)

// ForeignNotify sends a notification from a new connection standing for another
// application, and returns its ID. The connection is closed in t.Cleanup.
func ForeignNotify(t testing.TB, addr, summary string, actions ...string) uint32 {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("notifytest: connect foreign client: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if actions == nil {
		actions = []string{}
	}
	var id uint32
	err = conn.Object(serviceName, objectPath).Call(interfaceName+".Notify", 0,
		"Other App", uint32(0), "", summary, "", actions, map[string]dbus.Variant{}, int32(-1)).Store(&id)
	if err != nil {
		t.Fatalf("notifytest: foreign Notify: %v", err)
	}
	return id
}

// DefaultCapabilities are the capabilities GNOME Shell announces.
func DefaultCapabilities() []string {
	return []string{"actions", "body", "body-markup", "icon-static", "persistence", "sound"}
}

// Notification is one recorded Notify call.
type Notification struct {
	Seq        int    // 1 for the first Notify call the Server received, then +1
	Instance   int    // 1, then +1 at every Start after a Stop
	Sender     string // unique bus name of the caller
	AppName    string
	ReplacesID uint32
	ID         uint32 // the ID the server returned
	Icon       string
	Summary    string
	Body       string
	Actions    []string // raw (key, label) pairs, as sent
	Hints      map[string]dbus.Variant
	Timeout    int32
}

// ActionKeys returns the keys of the notification's actions, in order.
func (n Notification) ActionKeys() []string {
	var keys []string
	for i := 0; i+1 < len(n.Actions); i += 2 {
		keys = append(keys, n.Actions[i])
	}
	return keys
}

// Hint returns the value of hint name.
func (n Notification) Hint(name string) (any, bool) {
	v, ok := n.Hints[name]
	if !ok {
		return nil, false
	}
	return v.Value(), true
}

// CloseCall is one recorded CloseNotification call.
type CloseCall struct {
	Instance int
	Sender   string
	ID       uint32
	WasOpen  bool
}

// Option configures a Server.
type Option func(*Server)

// WithCapabilities sets the capabilities announced (default DefaultCapabilities).
func WithCapabilities(caps ...string) Option {
	return func(s *Server) { s.caps = slices.Clone(caps) }
}

// WithoutActions announces DefaultCapabilities minus "actions".
func WithoutActions() Option {
	return func(s *Server) {
		s.caps = slices.DeleteFunc(DefaultCapabilities(), func(c string) bool { return c == "actions" })
	}
}

// MaxButtons is how many actions GNOME Shell shows as buttons; it drops the others.
const MaxButtons = 3

// Versions of GNOME Shell the Server answers in GetServerInformation (WithVersion).
const (
	// GNOMEShell43 is Tails 6's: a banner on screen loses its buttons when its notification is
	// replaced in place, and the notification list shows no buttons.
	GNOMEShell43 = "43.9"
	// GNOMEShell48 is Tails 7's, the default: buttons stay through a replacement.
	GNOMEShell48 = "48.7"
)

// WithVersion makes the Server answer version (GNOMEShell43, GNOMEShell48) to
// GetServerInformation and behave as that GNOME Shell does with buttons (see Server).
func WithVersion(version string) Option {
	return func(s *Server) { s.version = version }
}

// Server is a fake org.freedesktop.Notifications server. It behaves like GNOME
// Shell (43 and 48, seen in internal/gnomeshell's sessions; docs/gnome-shell.md): IDs start
// at 1 per instance, a replaces_id of an open notification keeps its ID, clicking an action
// emits ActionInvoked then NotificationClosed(2), only the first MaxButtons actions besides
// "default" can be clicked, and every signal about a notification goes out twice: broadcast
// from a second connection (the shell's own, which does not own the name) and sent to the
// notification's sender from the connection that owns the name (the shell's gjs helper).
//
// Banners: a notification without low urgency shows as a banner when it comes, and again when
// it is replaced while its banner is gone (HideBanner makes it go: a transient one then closes,
// reason 1); a low-urgency one goes to the notification list only. As GNOME Shell 43
// (WithVersion(GNOMEShell43)), buttons can be clicked only on a banner on screen, and a
// banner replaced in place while on screen loses them (docs/gnome-shell.md): Click fails the
// test where a person sees no button, and Buttons says what a person can click. As GNOME
// Shell 48, buttons stay. All methods are safe for concurrent use.
type Server struct {
	addr string

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every recorded change
	conn     *dbus.Conn
	shell    *dbus.Conn // broadcasts the signals, like GNOME Shell's own connection
	instance int
	nextID   uint32
	open     map[uint32]Notification // open notifications of the current instance
	notifs   []Notification
	closes   []CloseCall
	caps     []string
	version  string
	screen   map[uint32]banner // how the open notifications of the current instance show
	blocked  map[string]bool
	hanging  map[string]int // calls currently blocked, by method
	unblock  chan struct{}  // closed to release blocked calls
}

// banner is how an open notification shows.
type banner struct {
	onScreen bool // its banner is on screen
	buttons  bool // its banner shows its buttons
}

// NewServer starts a fake server on the bus at addr; it is stopped in t.Cleanup.
func NewServer(t testing.TB, addr string, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		addr:    addr,
		changed: make(chan struct{}),
		caps:    DefaultCapabilities(),
		version: GNOMEShell48,
		blocked: map[string]bool{},
		hanging: map[string]int{},
		unblock: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	t.Cleanup(s.Stop)
	s.Start(t)
	return s
}

// Start connects to the bus and takes the name; after a Stop it is a new server
// instance (IDs restart at 1, like a restarted GNOME Shell).
func (s *Server) Start(t testing.TB) {
	t.Helper()
	conn, err := dbus.Connect(s.addr)
	if err != nil {
		t.Fatalf("notifytest: connect fake server to %s: %v", s.addr, err)
	}
	shell, err := dbus.Connect(s.addr)
	if err != nil {
		_ = conn.Close()
		t.Fatalf("notifytest: connect the fake shell to %s: %v", s.addr, err)
	}
	s.mu.Lock()
	if s.conn != nil {
		s.mu.Unlock()
		_ = conn.Close()
		_ = shell.Close()
		t.Fatalf("notifytest: fake server already started")
	}
	s.conn, s.shell = conn, shell
	s.instance++
	if err := conn.Export(&methods{s: s, instance: s.instance}, objectPath, interfaceName); err != nil {
		s.conn = nil
		s.mu.Unlock()
		_ = conn.Close()
		t.Fatalf("notifytest: export fake server: %v", err)
	}
	s.nextID = 1
	s.open = map[uint32]Notification{}
	s.screen = map[uint32]banner{}
	s.mu.Unlock()
	reply, err := conn.RequestName(serviceName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("notifytest: request %s: reply %v, %v", serviceName, reply, err)
	}
	s.broadcast()
}

// Stop releases the name and disconnects, releasing blocked calls. It is safe to
// call more than once and to Start again afterwards.
func (s *Server) Stop() {
	s.mu.Lock()
	conn, shell := s.conn, s.shell
	s.conn, s.shell = nil, nil
	close(s.unblock)
	s.unblock = make(chan struct{})
	s.mu.Unlock()
	if conn == nil {
		return
	}
	_ = conn.Close()
	_ = shell.Close()
	s.broadcast()
}

// Restart is Stop then Start: the name owner changes and old IDs are forgotten.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.Start(t)
}

// Owner is the unique bus name of the server's connection ("" when stopped).
func (s *Server) Owner() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return ""
	}
	return s.conn.Names()[0]
}

// SetCapabilities changes the capabilities announced from now on.
func (s *Server) SetCapabilities(caps ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caps = slices.Clone(caps)
}

// Block makes calls of the given methods (MethodNotify, ...) hang without an
// answer until Unblock or Stop.
func (s *Server) Block(methods ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range methods {
		s.blocked[m] = true
	}
}

// Unblock answers the blocked calls and stops blocking.
func (s *Server) Unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.blocked)
	close(s.unblock)
	s.unblock = make(chan struct{})
}

// Notifications returns every Notify call received, in order.
func (s *Server) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.notifs)
}

// Open returns the current content of the open notification id.
func (s *Server) Open(id uint32) (Notification, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.open[id]
	return n, ok
}

// CloseCalls returns every CloseNotification call received, in order.
func (s *Server) CloseCalls() []CloseCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.closes)
}

// WaitFor waits until a received Notify call satisfies match and returns the first
// one that does; it fails the test after timeout.
func (s *Server) WaitFor(t testing.TB, match func(Notification) bool, timeout time.Duration) Notification {
	t.Helper()
	var found Notification
	s.wait(t, timeout, "a matching Notify call", func() bool {
		for _, n := range s.notifs {
			if match(n) {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

// WaitForClose waits until CloseNotification(id) is received; it fails the test after timeout.
func (s *Server) WaitForClose(t testing.TB, id uint32, timeout time.Duration) CloseCall {
	t.Helper()
	var found CloseCall
	s.wait(t, timeout, fmt.Sprintf("CloseNotification(%d)", id), func() bool {
		for _, c := range s.closes {
			if c.ID == id {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// WaitBlocked waits until a call of method is hanging in Block; it fails the test after timeout.
func (s *Server) WaitBlocked(t testing.TB, method string, timeout time.Duration) {
	t.Helper()
	s.wait(t, timeout, "a blocked "+method+" call", func() bool { return s.hanging[method] > 0 })
}

// wait runs cond under s.mu after every change until it is true.
func (s *Server) wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("notifytest: timed out after %v waiting for %s", timeout, what)
		}
	}
}

// broadcast wakes the waiters.
func (s *Server) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broadcastLocked()
}

func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Click invokes action key of the open notification id, as a user would:
// ActivationToken, ActionInvoked, then NotificationClosed with reason 2 (GNOME
// Shell closes non-resident notifications on click), each twice (see Server). It fails the
// test if id is not open or shows no such button ("default" is a click on the notification,
// on its banner or in the list): see Buttons.
func (s *Server) Click(t testing.TB, id uint32, key string) {
	t.Helper()
	s.mu.Lock()
	n, ok := s.open[id]
	conn, shell := s.conn, s.shell
	resident := false
	if v, has := n.Hint("resident"); has {
		resident, _ = v.(bool)
	}
	shown := slices.Contains(n.shownKeys(), key)
	if key != "default" && !s.buttonsLocked(id) {
		shown = false
	}
	if ok && shown && !resident {
		delete(s.open, id)
		delete(s.screen, id)
	}
	s.mu.Unlock()
	if !ok {
		t.Fatalf("notifytest: click %q: notification %d is not open", key, id)
	}
	if !shown {
		t.Fatalf("notifytest: click %q: notification %d shows the buttons %q (of the actions %q: GNOME Shell shows %d buttons; GNOME Shell 43 shows them on a banner on screen only, and drops them from a banner replaced in place)",
			key, id, s.Buttons(id), n.ActionKeys(), MaxButtons)
	}
	s.signal(t, conn, shell, n.Sender, "ActivationToken", id, "notifytest-token")
	s.signal(t, conn, shell, n.Sender, "ActionInvoked", id, key)
	if !resident {
		s.signal(t, conn, shell, n.Sender, "NotificationClosed", id, ReasonDismissed)
	}
}

// Buttons are the keys of the buttons of the open notification id that a person can click
// now (not "default"): none as GNOME Shell 43 when it is not on screen as a banner, or its
// banner was replaced in place while on screen.
func (s *Server) Buttons(id uint32) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.open[id]
	if !ok || !s.buttonsLocked(id) {
		return nil
	}
	return slices.DeleteFunc(n.shownKeys(), func(k string) bool { return k == "default" })
}

// OnScreen tells whether the open notification id shows as a banner now.
func (s *Server) OnScreen(id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.open[id]
	return ok && s.screen[id].onScreen
}

// buttonsLocked tells whether the buttons of notification id can be clicked; s.mu is held.
func (s *Server) buttonsLocked(id uint32) bool {
	if !s.drops() {
		return true
	}
	b := s.screen[id]
	return b.onScreen && b.buttons
}

// drops tells whether the Server behaves as a GNOME Shell before 46 (43): buttons only on a
// banner on screen, dropped by a replacement in place.
func (s *Server) drops() bool {
	major, _, _ := strings.Cut(s.version, ".")
	v, err := strconv.Atoi(major)
	return err == nil && v < 46
}

// HideBanner makes the banner of the open notification id leave the screen, as the shell does
// a few seconds after the person touches the machine: a transient notification closes (reason
// 1, expired), another one stays in the notification list.
func (s *Server) HideBanner(t testing.TB, id uint32) {
	t.Helper()
	s.mu.Lock()
	n, ok := s.open[id]
	if !ok || !s.screen[id].onScreen {
		s.mu.Unlock()
		t.Fatalf("notifytest: hide the banner of notification %d: it is not on screen", id)
	}
	transient := false
	if v, has := n.Hint("transient"); has {
		transient, _ = v.(bool)
	}
	s.screen[id] = banner{}
	if transient {
		delete(s.open, id)
		delete(s.screen, id)
	}
	conn, shell := s.conn, s.shell
	s.broadcastLocked()
	s.mu.Unlock()
	if transient {
		s.signal(t, conn, shell, n.Sender, "NotificationClosed", id, ReasonExpired)
	}
}

// shownKeys are the keys of the actions GNOME Shell lets a person invoke: "default" and the
// first MaxButtons others.
func (n Notification) shownKeys() []string {
	var keys []string
	buttons := 0
	for _, k := range n.ActionKeys() {
		if k == "default" {
			keys = append(keys, k)
		} else if buttons < MaxButtons {
			keys = append(keys, k)
			buttons++
		}
	}
	return keys
}

// signal sends the signal member about a notification of sender as GNOME Shell does: broadcast
// from the shell's own connection, then to sender from the name's owner.
func (s *Server) signal(t testing.TB, conn, shell *dbus.Conn, sender, member string, body ...any) {
	t.Helper()
	if conn == nil {
		t.Fatalf("notifytest: emit %s: server stopped", member)
	}
	if err := shell.Emit(objectPath, interfaceName+"."+member, body...); err != nil {
		t.Fatalf("notifytest: broadcast %s: %v", member, err)
	}
	if err := sendSignal(conn, sender, member, body...); err != nil {
		t.Fatalf("notifytest: send %s to %s: %v", member, sender, err)
	}
}

// sendSignal sends the signal member to dest only (a unicast signal).
func sendSignal(conn *dbus.Conn, dest, member string, body ...any) error {
	msg := &dbus.Message{
		Type: dbus.TypeSignal,
		Headers: map[dbus.HeaderField]dbus.Variant{
			dbus.FieldPath:        dbus.MakeVariant(objectPath),
			dbus.FieldInterface:   dbus.MakeVariant(interfaceName),
			dbus.FieldMember:      dbus.MakeVariant(member),
			dbus.FieldDestination: dbus.MakeVariant(dest),
			dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf(body...)),
		},
		Body: body,
	}
	return conn.Send(msg, nil).Err
}

// Dismiss closes the open notification id as the user would (reason 2).
func (s *Server) Dismiss(t testing.TB, id uint32) { t.Helper(); s.closeOpen(t, id, ReasonDismissed) }

// Expire closes the open notification id as if its timeout ran out (reason 1).
func (s *Server) Expire(t testing.TB, id uint32) { t.Helper(); s.closeOpen(t, id, ReasonExpired) }

func (s *Server) closeOpen(t testing.TB, id, reason uint32) {
	t.Helper()
	s.mu.Lock()
	n, ok := s.open[id]
	delete(s.open, id)
	delete(s.screen, id)
	conn, shell := s.conn, s.shell
	s.mu.Unlock()
	if !ok {
		t.Fatalf("notifytest: close with reason %d: notification %d is not open", reason, id)
	}
	s.signal(t, conn, shell, n.Sender, "NotificationClosed", id, reason)
}

// EmitRaw emits signal member of the Notifications interface with any body, for
// testing a client's robustness against odd servers.
func (s *Server) EmitRaw(t testing.TB, member string, body ...any) {
	t.Helper()
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	s.emit(t, conn, member, body...)
}

func (s *Server) emit(t testing.TB, conn *dbus.Conn, member string, body ...any) {
	t.Helper()
	if conn == nil {
		t.Fatalf("notifytest: emit %s: server stopped", member)
	}
	if err := conn.Emit(objectPath, interfaceName+"."+member, body...); err != nil {
		t.Fatalf("notifytest: emit %s: %v", member, err)
	}
}

// block hangs while method is blocked.
func (s *Server) block(method string) {
	s.mu.Lock()
	if !s.blocked[method] {
		s.mu.Unlock()
		return
	}
	ch := s.unblock
	s.hanging[method]++
	s.broadcastLocked()
	s.mu.Unlock()
	<-ch
	s.mu.Lock()
	s.hanging[method]--
	s.mu.Unlock()
}

// methods is the exported D-Bus object of one server instance; only the spec's
// methods are exported.
type methods struct {
	s        *Server
	instance int
}

func errStopped() *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.Failed", []any{"notifytest: server instance stopped"})
}

// current reports whether m's instance is still running; s.mu must be held.
func (m *methods) current() bool { return m.s.conn != nil && m.s.instance == m.instance }

func (m *methods) Notify(sender dbus.Sender, app string, replacesID uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s := m.s
	s.block(MethodNotify)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !m.current() {
		return 0, errStopped()
	}
	id := replacesID
	_, replaced := s.open[id]
	if id == 0 || !replaced {
		id, replaced = s.nextID, false
		s.nextID++
	}
	n := Notification{
		Seq: len(s.notifs) + 1, Instance: s.instance, Sender: string(sender),
		AppName: app, ReplacesID: replacesID, ID: id, Icon: icon, Summary: summary, Body: body,
		Actions: slices.Clone(actions), Hints: maps.Clone(hints), Timeout: timeout,
	}
	s.open[id] = n
	s.screen[id] = s.shows(n, s.screen[id], replaced)
	s.notifs = append(s.notifs, n)
	s.broadcastLocked()
	return id, nil
}

// shows is how notification n shows after a Notify call, given how it showed before (was) and
// whether the call replaced it in place; s.mu is held.
func (s *Server) shows(n Notification, was banner, replaced bool) banner {
	low := false
	if v, ok := n.Hint("urgency"); ok {
		u, _ := v.(byte)
		low = u == 0
	}
	switch {
	case replaced && was.onScreen:
		// GNOME Shell 43: update(clear) empties the banner's buttons, addAction adds none back.
		return banner{onScreen: true, buttons: was.buttons && !s.drops()}
	case low:
		// Low urgency: the notification list only, never a banner.
		return banner{}
	default:
		// A new banner: new, or replaced while its banner was gone.
		return banner{onScreen: true, buttons: true}
	}
}

func (m *methods) CloseNotification(sender dbus.Sender, id uint32) *dbus.Error {
	s := m.s
	s.block(MethodCloseNotification)
	s.mu.Lock()
	if !m.current() {
		s.mu.Unlock()
		return errStopped()
	}
	n, open := s.open[id]
	delete(s.open, id)
	delete(s.screen, id)
	s.closes = append(s.closes, CloseCall{Instance: s.instance, Sender: string(sender), ID: id, WasOpen: open})
	conn, shell := s.conn, s.shell
	s.broadcastLocked()
	s.mu.Unlock()
	if open && conn != nil {
		// Like GNOME Shell: the signal goes out (twice, see Server), the call succeeds even for
		// unknown IDs.
		_ = shell.Emit(objectPath, interfaceName+".NotificationClosed", id, ReasonClosed)
		_ = sendSignal(conn, n.Sender, "NotificationClosed", id, ReasonClosed)
	}
	return nil
}

func (m *methods) GetCapabilities() ([]string, *dbus.Error) {
	m.s.block(MethodGetCapabilities)
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return slices.Clone(m.s.caps), nil
}

func (m *methods) GetServerInformation() (string, string, string, string, *dbus.Error) {
	m.s.block(MethodGetServerInformation)
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	// What GNOME Shell answers: gnome-shell, GNOME, 48.7 (Tails 7) or 43.9 (Tails 6), 1.2.
	return "gnome-shell", "GNOME", m.s.version, "1.2", nil
}
