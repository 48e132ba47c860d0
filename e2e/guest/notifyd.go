package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/e2e/proto"
)

// The notification server of the desktop session. It behaves like GNOME Shell as far as the
// agent can tell (capabilities, IDs, replaces_id, ActionInvoked then NotificationClosed on a
// click) and records every notification; the driver reads and clicks them through a control
// interface on the same connection, since the clients match signals on the server's name.
const (
	notifName  = "org.freedesktop.Notifications"
	notifPath  = dbus.ObjectPath("/org/freedesktop/Notifications")
	notifIface = "org.freedesktop.Notifications"
	ctlPath    = dbus.ObjectPath("/org/tailsbackup/E2E")
	ctlIface   = "org.tailsbackup.E2E.Notifications"
)

type server struct {
	conn *dbus.Conn

	mu      sync.Mutex
	changed chan struct{}
	nextID  uint32
	all     []proto.Notification
	open    map[uint32]int // ID -> index in all of its latest version
}

func notifyd(ctx context.Context, args []string) error {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return fmt.Errorf("connect to the session bus: %w", err)
	}
	defer conn.Close()
	s := &server{conn: conn, changed: make(chan struct{}), nextID: 1, open: map[uint32]int{}}
	if err := conn.Export(notifMethods{s}, notifPath, notifIface); err != nil {
		return err
	}
	if err := conn.Export(ctlMethods{s}, ctlPath, ctlIface); err != nil {
		return err
	}
	reply, err := conn.RequestName(notifName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("own %s: reply %v, %v", notifName, reply, err)
	}
	<-ctx.Done()
	return nil
}

func (s *server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

type notifMethods struct{ s *server }

func (m notifMethods) Notify(app string, replaces uint32, icon, summary, body string, actions []string,
	hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	id := replaces
	if _, ok := s.open[id]; id == 0 || !ok {
		id = s.nextID
		s.nextID++
	}
	h := map[string]string{}
	for k, v := range hints {
		h[k] = fmt.Sprint(v.Value())
	}
	if i, ok := s.open[id]; ok {
		s.all[i].Open = false // replaced
	}
	s.all = append(s.all, proto.Notification{Seq: len(s.all) + 1, ID: id, Replaces: replaces, App: app,
		Summary: summary, Body: body, Actions: slices.Clone(actions), Hints: h, Time: time.Now(), Open: true})
	s.open[id] = len(s.all) - 1
	s.broadcastLocked()
	return id, nil
}

func (m notifMethods) CloseNotification(id uint32) *dbus.Error {
	s := m.s
	s.mu.Lock()
	i, ok := s.open[id]
	if ok {
		s.all[i].Open = false
		delete(s.open, id)
		s.broadcastLocked()
	}
	s.mu.Unlock()
	if ok {
		s.conn.Emit(notifPath, notifIface+".NotificationClosed", id, uint32(3))
	}
	return nil
}

func (m notifMethods) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"actions", "body", "body-markup", "icon-static", "persistence", "sound"}, nil
}

func (m notifMethods) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "e2e-notifyd", "tails-backup", "1.0", "1.2", nil
}

type ctlMethods struct{ s *server }

// List returns, as JSON, the notifications received after seq.
func (m ctlMethods) List(after int32) (string, *dbus.Error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.s.listLocked(after), nil
}

func (s *server) listLocked(after int32) string {
	var out []proto.Notification
	for _, n := range s.all {
		if n.Seq > int(after) {
			out = append(out, n)
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// Wait blocks until a notification after seq has a summary containing summary (or one of its
// alternatives separated by "|") and a body containing body, up to timeoutMs, and returns the
// notifications after seq as JSON.
func (m ctlMethods) Wait(after int32, summary, body string, timeoutMs int32) (string, *dbus.Error) {
	s := m.s
	timer := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
	defer timer.Stop()
	for {
		s.mu.Lock()
		for _, n := range s.all {
			if n.Seq > int(after) && summaryMatches(n.Summary, summary) && strings.Contains(n.Body, body) {
				out := s.listLocked(after)
				s.mu.Unlock()
				return out, nil
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			out := s.listLocked(after)
			s.mu.Unlock()
			return "", dbus.NewError("org.tailsbackup.E2E.Timeout", []any{"no notification " + summary + ": " + out})
		}
	}
}

// summaryMatches tells whether summary contains one of the alternatives of want, separated
// by "|" (no text of ours has one): after a pull, the agent may say either that the stick
// was unplugged or that the update failed, depending on who saw the device go first.
func summaryMatches(summary, want string) bool {
	for _, w := range strings.Split(want, "|") {
		if strings.Contains(summary, w) {
			return true
		}
	}
	return false
}

// Click invokes action key of the open notification id, as GNOME Shell does when the user
// clicks a button: ActionInvoked, then NotificationClosed (dismissed) unless it is resident.
func (m ctlMethods) Click(id uint32, key string) *dbus.Error {
	s := m.s
	s.mu.Lock()
	i, ok := s.open[id]
	if !ok {
		s.mu.Unlock()
		return dbus.NewError("org.tailsbackup.E2E.NotOpen", []any{fmt.Sprintf("notification %d is not open", id)})
	}
	n := s.all[i]
	if !slices.Contains(n.ActionKeys(), key) {
		s.mu.Unlock()
		return dbus.NewError("org.tailsbackup.E2E.NoAction", []any{fmt.Sprintf("notification %d has actions %q", id, n.ActionKeys())})
	}
	resident := n.Hints["resident"] == "true"
	if !resident {
		s.all[i].Open = false
		delete(s.open, id)
		s.broadcastLocked()
	}
	s.mu.Unlock()
	s.conn.Emit(notifPath, notifIface+".ActivationToken", id, "e2e-token")
	s.conn.Emit(notifPath, notifIface+".ActionInvoked", id, key)
	if !resident {
		s.conn.Emit(notifPath, notifIface+".NotificationClosed", id, uint32(2))
	}
	return nil
}

// notifications is the driver's client of the control interface, run as the session user:
//
//	notifications list [--after N]
//	notifications wait [--after N] [--body TEXT] [--timeout D] SUMMARY
//	notifications click ID KEY
func notifications(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: notifications list|wait|click ...")
	}
	fs := flag.NewFlagSet("notifications", flag.ContinueOnError)
	after := fs.Int("after", 0, "only notifications after this sequence number")
	body := fs.String("body", "", "wait: the body must contain this")
	timeout := fs.Duration("timeout", time.Minute, "wait: how long")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return err
	}
	defer conn.Close()
	obj := conn.Object(notifName, ctlPath)
	var out string
	switch args[0] {
	case "list":
		err = obj.CallWithContext(ctx, ctlIface+".List", 0, int32(*after)).Store(&out)
	case "wait":
		if fs.NArg() != 1 {
			return errors.New("usage: notifications wait [flags] SUMMARY")
		}
		cctx, cancel := context.WithTimeout(ctx, *timeout+10*time.Second)
		defer cancel()
		err = obj.CallWithContext(cctx, ctlIface+".Wait", 0, int32(*after), fs.Arg(0), *body, int32(timeout.Milliseconds())).Store(&out)
	case "click":
		var id uint32
		if fs.NArg() != 2 {
			return errors.New("usage: notifications click ID KEY")
		}
		if _, err := fmt.Sscan(fs.Arg(0), &id); err != nil {
			return err
		}
		err = obj.CallWithContext(ctx, ctlIface+".Click", 0, id, fs.Arg(1)).Err
	default:
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}
