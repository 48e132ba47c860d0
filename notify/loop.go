package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
)

const (
	busName               = "org.freedesktop.DBus"
	busPath               = dbus.ObjectPath("/org/freedesktop/DBus")
	signalNameOwner       = busName + ".NameOwnerChanged"
	signalActionInvoked   = InterfaceName + ".ActionInvoked"
	signalNotifClosed     = InterfaceName + ".NotificationClosed"
	errNameHasNoOwner     = "org.freedesktop.DBus.Error.NameHasNoOwner"
	callGetCapabilities   = InterfaceName + ".GetCapabilities"
	callGetServerInfo     = InterfaceName + ".GetServerInformation"
	callGetNameOwner      = busName + ".GetNameOwner"
	matchRuleDescriptions = "Notifications signals and NameOwnerChanged"
)

// maxParked bounds the signals kept for IDs that are not ours (yet).
const maxParked = 32

// signalMsg is a signal tagged with the generation of the connection it came on.
type signalMsg struct {
	gen uint64
	sig *dbus.Signal
}

// parked is a signal for an ID that was not ours when it was handled.
type parked struct {
	gen uint64
	seq dbus.Sequence
	id  uint32
	ev  Event
}

// inbox is an unbounded, ordered queue of signals. godbus calls DeliverSignal from
// its reader goroutine; queueing there (instead of godbus' default channel handler,
// which spawns a goroutine per signal when the channel is full and so loses order)
// keeps ActionInvoked before NotificationClosed and never blocks the reader.
type inbox struct {
	mu    sync.Mutex
	q     []signalMsg
	ready chan struct{} // holds a token while q is not empty
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

func (in *inbox) push(m signalMsg) {
	in.mu.Lock()
	in.q = append(in.q, m)
	in.mu.Unlock()
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

func (in *inbox) drain() []signalMsg {
	in.mu.Lock()
	defer in.mu.Unlock()
	q := in.q
	in.q = nil
	return q
}

// connHandler is the dbus.SignalHandler of one connection.
type connHandler struct {
	in  *inbox
	gen uint64
}

func (h connHandler) DeliverSignal(_, _ string, sig *dbus.Signal) {
	h.in.push(signalMsg{gen: h.gen, sig: sig})
}

func matchRules() [][]dbus.MatchOption {
	return [][]dbus.MatchOption{
		{
			// dbus-daemon matches a well-known sender against its current owner.
			dbus.WithMatchSender(ServiceName),
			dbus.WithMatchObjectPath(ObjectPath),
			dbus.WithMatchInterface(InterfaceName),
		},
		{
			dbus.WithMatchSender(busName),
			dbus.WithMatchObjectPath(busPath),
			dbus.WithMatchInterface(busName),
			dbus.WithMatchMember("NameOwnerChanged"),
			dbus.WithMatchArg(0, ServiceName),
		},
	}
}

// connect opens a private bus connection tagged gen, subscribes, reads the server
// state and makes it current. Every step is bounded by ctx.
func (n *Notifier) connect(ctx context.Context, gen uint64) error {
	conn, err := dbus.Dial(n.address, dbus.WithSignalHandler(connHandler{n.inbox, gen}))
	if err != nil {
		return fmt.Errorf("notify: connect to session bus %s: %w", n.address, err)
	}
	// Auth and Hello take no context: close the connection if ctx ends first.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	err = conn.Auth(nil)
	if err == nil {
		err = conn.Hello()
	}
	if !stop() {
		_ = conn.Close()
		return fmt.Errorf("notify: connect to session bus %s: %w", n.address, ctx.Err())
	}
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("notify: connect to session bus %s: %w", n.address, err)
	}
	for _, rule := range matchRules() {
		if err := conn.AddMatchSignalContext(ctx, rule...); err != nil {
			_ = conn.Close()
			return fmt.Errorf("notify: subscribe to %s: %w", matchRuleDescriptions, err)
		}
	}
	owner, err := nameOwner(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return err
	}
	var (
		caps      Capabilities
		info      ServerInfo
		capsKnown bool
	)
	if owner != "" {
		caps, info, err = n.readServer(ctx, conn)
		if err != nil {
			// Not fatal: Show reads the capabilities again when it needs them.
			n.log.WithError(err).Warn("notification server present but not answering")
		} else {
			capsKnown = true
		}
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		_ = conn.Close()
		return ErrClosed
	}
	n.conn, n.connGen, n.owner = conn, gen, owner
	n.caps, n.capsKnown, n.info = caps, capsKnown, info
	n.forgetIDsLocked()
	n.mu.Unlock()
	n.logServer(owner, caps, info, capsKnown)
	return nil
}

func (n *Notifier) logServer(owner string, caps Capabilities, info ServerInfo, known bool) {
	l := n.log.WithField("owner", owner)
	switch {
	case owner == "":
		l.Info("no notification server; waiting for one")
	case known:
		l.WithFields(logrus.Fields{"server": info.Name, "version": info.Version, "capabilities": caps.All}).Info("notification server found")
	default:
		l.Info("notification server found; capabilities unknown")
	}
}

// nameOwner returns the unique name owning ServiceName, or "" if none.
func nameOwner(ctx context.Context, conn *dbus.Conn) (string, error) {
	var owner string
	err := conn.BusObject().CallWithContext(ctx, callGetNameOwner, 0, ServiceName).Store(&owner)
	var derr dbus.Error
	if errors.As(err, &derr) && derr.Name == errNameHasNoOwner {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("notify: look up owner of %s: %w", ServiceName, err)
	}
	return owner, nil
}

// readServer reads the capabilities and server information.
func (n *Notifier) readServer(ctx context.Context, conn *dbus.Conn) (Capabilities, ServerInfo, error) {
	obj := conn.Object(ServiceName, ObjectPath)
	var raw []string
	if err := obj.CallWithContext(ctx, callGetCapabilities, 0).Store(&raw); err != nil {
		return Capabilities{}, ServerInfo{}, fmt.Errorf("notify: read server capabilities: %w", n.mapError(err))
	}
	var info ServerInfo
	if err := obj.CallWithContext(ctx, callGetServerInfo, 0).Store(&info.Name, &info.Vendor, &info.Version, &info.SpecVersion); err != nil {
		// Informational only.
		n.log.WithError(err).Debug("GetServerInformation failed")
		info = ServerInfo{}
	}
	return parseCapabilities(raw), info, nil
}

// run dispatches signals to events, delivers events and reconnects a lost bus
// connection, until Close.
func (n *Notifier) run() {
	defer close(n.done)
	var (
		retry    <-chan time.Time
		timer    *time.Timer
		delay    time.Duration
		connDone <-chan struct{}
	)
	n.mu.Lock()
	gen := n.connGen
	if n.conn != nil {
		connDone = n.conn.Context().Done()
	}
	n.mu.Unlock()
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var (
			out  chan<- Event
			next Event
		)
		n.mu.Lock()
		head := n.queueHead
		if len(n.queue) > 0 {
			out, next = n.events, n.queue[0]
		}
		n.mu.Unlock()
		select {
		case <-n.ctx.Done():
			return
		case out <- next:
			n.mu.Lock()
			if n.queueHead == head { // else it was dropped meanwhile
				n.popLocked()
			}
			n.mu.Unlock()
		case <-n.queueReady:
		case <-n.inbox.ready:
			for _, m := range n.inbox.drain() {
				n.handle(m)
			}
		case <-connDone:
			connDone = nil
			n.mu.Lock()
			n.conn, n.owner, n.capsKnown = nil, "", false
			n.forgetIDsLocked()
			n.enqueueLocked(ServerChanged{})
			n.mu.Unlock()
			n.log.Warn("session bus connection lost; reconnecting")
			delay = n.cfg.ReconnectDelay
			timer = time.NewTimer(delay)
			retry = timer.C
		case <-retry:
			gen++
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.CallTimeout)
			err := n.connect(ctx, gen)
			cancel()
			if n.ctx.Err() != nil {
				return
			}
			if err != nil {
				delay = min(2*delay, maxReconnectDelay)
				n.log.WithError(err).WithField("retry_in", delay).Debug("reconnect failed")
				timer.Reset(delay)
				continue
			}
			retry = nil
			n.mu.Lock()
			connDone = n.conn.Context().Done()
			n.enqueueLocked(ServerChanged{Available: n.owner != "", Capabilities: n.caps, Info: n.info})
			n.mu.Unlock()
			n.log.Info("session bus connection re-established")
		}
	}
}

// enqueueLocked queues ev for Events, dropping the oldest event if the queue is full.
func (n *Notifier) enqueueLocked(ev Event) {
	if len(n.queue) >= maxQueuedEvents {
		n.log.WithField("dropped", fmt.Sprintf("%T", n.queue[0])).Warn("event queue full, dropping oldest event")
		n.popLocked()
	}
	n.queue = append(n.queue, ev)
	select {
	case n.queueReady <- struct{}{}:
	default:
	}
}

func (n *Notifier) popLocked() {
	n.queue[0] = nil
	n.queue = n.queue[1:]
	n.queueHead++
}

// forgetIDsLocked forgets our IDs: they died with the server or the connection.
func (n *Notifier) forgetIDsLocked() {
	clear(n.ours)
	n.unclaimed = nil
}

// handle turns one signal into an event if it is for us.
func (n *Notifier) handle(m signalMsg) {
	sig := m.sig
	n.mu.Lock()
	current := n.conn != nil && m.gen == n.connGen
	owner := n.owner
	n.mu.Unlock()
	if !current || sig == nil {
		return
	}
	switch sig.Name {
	case signalNameOwner:
		if sig.Sender != busName || len(sig.Body) != 3 {
			return
		}
		name, _ := sig.Body[0].(string)
		newOwner, ok := sig.Body[2].(string)
		if name != ServiceName || !ok {
			return
		}
		n.ownerChanged(m.gen, newOwner)
	case signalActionInvoked:
		if sig.Sender != owner || owner == "" || len(sig.Body) != 2 {
			return
		}
		id, ok1 := sig.Body[0].(uint32)
		key, ok2 := sig.Body[1].(string)
		if ok1 && ok2 {
			n.deliver(m.gen, sig.Sequence, ActionInvoked{ID: id, ActionKey: key})
		}
	case signalNotifClosed:
		if sig.Sender != owner || owner == "" || len(sig.Body) != 2 {
			return
		}
		id, ok1 := sig.Body[0].(uint32)
		reason, ok2 := sig.Body[1].(uint32)
		if ok1 && ok2 {
			n.deliver(m.gen, sig.Sequence, NotificationClosed{ID: id, Reason: Reason(reason)})
		}
	}
}

// deliver queues ev if it is about one of our notifications, and otherwise parks
// it for claim.
func (n *Notifier) deliver(gen uint64, seq dbus.Sequence, ev Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id := eventID(ev)
	if _, ok := n.ours[id]; !ok {
		if len(n.unclaimed) >= maxParked {
			n.unclaimed = n.unclaimed[1:]
		}
		n.unclaimed = append(n.unclaimed, parked{gen: gen, seq: seq, id: id, ev: ev})
		return
	}
	n.deliverLocked(ev)
}

func (n *Notifier) deliverLocked(ev Event) {
	switch ev := ev.(type) {
	case ActionInvoked:
		n.log.WithFields(logrus.Fields{"id": ev.ID, "action": ev.ActionKey}).Debug("action invoked")
	case NotificationClosed:
		delete(n.ours, ev.ID)
		n.log.WithFields(logrus.Fields{"id": ev.ID, "reason": ev.Reason.String()}).Debug("notification closed")
	}
	n.enqueueLocked(ev)
}

func eventID(ev Event) uint32 {
	switch ev := ev.(type) {
	case ActionInvoked:
		return ev.ID
	case NotificationClosed:
		return ev.ID
	}
	return 0
}

// claim records id, returned by a Notify call over conn whose reply had sequence
// replySeq, as ours. The server may emit signals for id right after its reply and
// the loop may handle them before claim runs: those (later than the reply on the
// same connection) were parked, and are delivered now, in order, under the same
// lock that deliver takes, so no later signal can overtake them. For a fresh
// notification (fresh: no replaces_id), whose ID the server never gave before, a
// parked signal for that ID is about it even if it came before the reply (a server,
// or a fake, may emit it first); for a replacement, which keeps an ID, a signal from
// before the reply is about the notification it replaced.
func (n *Notifier) claim(conn *dbus.Conn, id uint32, replySeq dbus.Sequence, fresh bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn != conn {
		// The connection was lost meanwhile: the ID is already invalid.
		return
	}
	n.ours[id] = struct{}{}
	gen := n.connGen
	var replay []Event
	n.unclaimed = slices.DeleteFunc(n.unclaimed, func(p parked) bool {
		if p.gen == gen && p.id == id && (fresh || p.seq > replySeq) {
			replay = append(replay, p.ev)
			return true
		}
		return false
	})
	for _, ev := range replay {
		if _, ok := n.ours[id]; ok {
			n.deliverLocked(ev)
		}
	}
}

// ownerChanged records a new owner of ServiceName (old IDs die with the old server)
// and reads the new server's capabilities.
func (n *Notifier) ownerChanged(gen uint64, newOwner string) {
	n.mu.Lock()
	if newOwner == n.owner || gen != n.connGen || n.conn == nil {
		n.mu.Unlock()
		return
	}
	conn := n.conn
	n.owner = newOwner
	n.caps, n.capsKnown, n.info = Capabilities{}, false, ServerInfo{}
	n.forgetIDsLocked()
	if newOwner == "" {
		n.enqueueLocked(ServerChanged{})
		n.mu.Unlock()
		n.log.Info("notification server gone")
		return
	}
	n.mu.Unlock()

	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.CallTimeout)
	caps, info, err := n.readServer(ctx, conn)
	cancel()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.owner != newOwner || n.conn != conn {
		return // changed again meanwhile; that change reports itself
	}
	if err != nil {
		n.log.WithError(err).Warn("notification server changed but does not answer")
		n.enqueueLocked(ServerChanged{Available: true})
		return
	}
	n.caps, n.capsKnown, n.info = caps, true, info
	n.enqueueLocked(ServerChanged{Available: true, Capabilities: caps, Info: info})
	n.logServer(newOwner, caps, info, true)
}
