package udisks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// EventKind tells what an Event reports.
type EventKind int

// Event kinds. InterfacesAdded, InterfacesRemoved and PropertiesChanged mirror the
// D-Bus signals; DaemonVanished and Resync come from NameOwnerChanged.
const (
	InterfacesAdded EventKind = iota + 1
	InterfacesRemoved
	PropertiesChanged
	// DaemonVanished: udisksd left the bus. The last known state is kept.
	DaemonVanished
	// Resync: udisksd (re)appeared; the difference from the last known state was
	// just delivered as ordinary events and Snapshot is the re-read state.
	Resync
)

func (k EventKind) String() string {
	switch k {
	case InterfacesAdded:
		return "InterfacesAdded"
	case InterfacesRemoved:
		return "InterfacesRemoved"
	case PropertiesChanged:
		return "PropertiesChanged"
	case DaemonVanished:
		return "DaemonVanished"
	case Resync:
		return "Resync"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change. Snapshot is the whole state right after it, so a consumer
// never needs to keep its own copy.
type Event struct {
	Kind       EventKind
	Path       dbus.ObjectPath
	Interfaces []string // interfaces added, removed, or whose properties changed
	Properties []string // for PropertiesChanged: the property names that changed
	Old        *Object  // the object before (nil if it did not exist)
	New        *Object  // the object after (nil if it no longer exists)
	Snapshot   *Snapshot
}

// ObjectAdded reports whether the event made a new object appear.
func (e Event) ObjectAdded() bool { return e.Kind == InterfacesAdded && e.Old == nil }

// ObjectRemoved reports whether the event made an object disappear.
func (e Event) ObjectRemoved() bool { return e.Kind == InterfacesRemoved && e.New == nil }

// Watcher follows udisks: it delivers ordered, typed events on Events() until its
// context is cancelled or Close is called, then closes the channel.
type Watcher struct {
	c       *Client
	ctx     context.Context
	cancel  context.CancelFunc
	sig     chan *dbus.Signal
	out     chan Event
	done    chan struct{}
	initial *Snapshot

	// owned by run()
	owner string
	state *Snapshot
	queue []Event
	// read is where the last full read of udisks' objects came among the messages received:
	// the udisks signals received before it are already in state (see stale).
	read dbus.Sequence
	// unread are the objects that udisks signalled before its answer to the last full read
	// but that the answer did not hold: their earlier signals are applied, in order (see
	// stale).
	unread map[dbus.ObjectPath]bool

	mu  sync.Mutex
	err error
}

// signal buffer: godbus spawns a goroutine per signal when the channel is full,
// which loses ordering, so keep it large and drain it all the time.
const signalBuffer = 4096

func watchMatches() [][]dbus.MatchOption {
	return [][]dbus.MatchOption{
		{dbus.WithMatchSender(BusName), dbus.WithMatchObjectPath(RootPath),
			dbus.WithMatchInterface(ifaceObjectManager)},
		{dbus.WithMatchSender(BusName), dbus.WithMatchInterface(ifaceProperties),
			dbus.WithMatchMember("PropertiesChanged"), dbus.WithMatchPathNamespace(RootPath)},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchInterface("org.freedesktop.DBus"),
			dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, BusName)},
	}
}

// Watch subscribes to udisks' signals, reads the initial state (Initial) and starts
// delivering events. Cancel ctx or call Close to stop it; it leaves no goroutine.
func (c *Client) Watch(ctx context.Context) (*Watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{c: c, ctx: ctx, cancel: cancel, sig: make(chan *dbus.Signal, signalBuffer),
		out: make(chan Event), done: make(chan struct{})}
	c.conn.Signal(w.sig)
	added := 0
	fail := func(err error) (*Watcher, error) {
		w.unsubscribe(added)
		cancel()
		return nil, err
	}
	for _, m := range watchMatches() {
		if err := c.conn.AddMatchSignalContext(ctx, m...); err != nil {
			return fail(classify("watch udisks", RootPath, err))
		}
		added++
	}
	objs, read, err := c.managedObjects(ctx)
	if err != nil {
		return fail(err)
	}
	owner, err := c.nameOwner(ctx)
	if err != nil {
		return fail(err)
	}
	w.owner, w.read, w.unread = owner, read, map[dbus.ObjectPath]bool{}
	w.state = newSnapshot(objs)
	w.initial = w.state
	go w.run()
	return w, nil
}

// Initial is the state read when the watch started.
func (w *Watcher) Initial() *Snapshot { return w.initial }

// Events delivers the changes in order; it is closed when the watcher stops.
func (w *Watcher) Events() <-chan Event { return w.out }

// Done is closed once the watcher has stopped and released everything.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err tells why the watcher stopped (after Done): the context's error, or
// ErrUnavailable when the connection closed.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops the watcher and waits until it has released everything.
func (w *Watcher) Close() {
	w.cancel()
	<-w.done
}

func (w *Watcher) unsubscribe(matches int) {
	w.c.conn.RemoveSignal(w.sig)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range watchMatches()[:matches] {
		if err := w.c.conn.RemoveMatchSignalContext(ctx, m...); err != nil && !errors.Is(err, dbus.ErrClosed) {
			w.c.log.WithError(err).Debug("remove udisks signal match")
		}
	}
}

func (w *Watcher) run() {
	defer close(w.done)
	defer close(w.out)
	defer w.unsubscribe(len(watchMatches()))
	for {
		var out chan<- Event
		var next Event
		if len(w.queue) > 0 {
			out, next = w.out, w.queue[0]
		}
		select {
		case <-w.ctx.Done():
			w.setErr(w.ctx.Err())
			return
		case s, ok := <-w.sig:
			if !ok {
				w.setErr(&Error{Op: "watch udisks", Kind: ErrUnavailable, Err: dbus.ErrClosed})
				return
			}
			w.handle(s)
		case out <- next:
			w.queue[0] = Event{}
			w.queue = w.queue[1:]
		}
	}
}

func (w *Watcher) setErr(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

func (w *Watcher) emit(e Event) {
	e.Snapshot = w.state
	w.queue = append(w.queue, e)
}

// stale tells whether s, a signal of udisks, was received before the last full read of its
// objects: udisksd sent it before its answer (a bus keeps the order of one sender's messages
// to one receiver), so the answer already holds the change. Applied after it, it would bring
// back an older state until the later signals are applied again: the agent, started while a
// stick was being plugged in, saw the stick's TailsData partition lose its LUKS header for a
// moment, and refused to pair it.
//
// An object that the answer does not hold although a signal before it added it was added and
// removed before the answer, or was added by a service that answered with a state older than
// its signals (one whose replies and signals leave from different threads, as the fake's do):
// its signals before the answer are applied, in order, so that the removal, if it comes,
// removes it again.
func (w *Watcher) stale(s *dbus.Signal, path dbus.ObjectPath) bool {
	return s.Sequence != dbus.NoSequence && s.Sequence < w.read && !w.unread[path]
}

func (w *Watcher) handle(s *dbus.Signal) {
	switch s.Name {
	case "org.freedesktop.DBus.NameOwnerChanged":
		if s.Sender != "org.freedesktop.DBus" || len(s.Body) != 3 {
			return
		}
		name, _ := s.Body[0].(string)
		newOwner, _ := s.Body[2].(string)
		if name != BusName || newOwner == w.owner {
			return
		}
		w.owner = newOwner
		if newOwner == "" {
			w.c.log.Warn("udisks2 left the bus")
			w.emit(Event{Kind: DaemonVanished})
			return
		}
		w.c.log.WithField("owner", newOwner).Info("udisks2 (re)appeared on the bus; re-reading its objects")
		w.resync()
	case ifaceObjectManager + ".InterfacesAdded":
		if s.Sender != w.owner || s.Path != RootPath || len(s.Body) != 2 {
			return
		}
		path, _ := s.Body[0].(dbus.ObjectPath)
		ifaces, _ := s.Body[1].(map[string]map[string]dbus.Variant)
		if w.stale(s, path) {
			if w.state.objects[path] != nil {
				return
			}
			w.unread[path] = true // the read did not hold it: its earlier signals apply
		}
		if isUDisksObject(path) {
			w.applyAdded(path, ifaces)
		}
	case ifaceObjectManager + ".InterfacesRemoved":
		if s.Sender != w.owner || s.Path != RootPath || len(s.Body) != 2 {
			return
		}
		path, _ := s.Body[0].(dbus.ObjectPath)
		ifaces, _ := s.Body[1].([]string)
		if w.stale(s, path) {
			return
		}
		w.applyRemoved(path, ifaces)
	case ifaceProperties + ".PropertiesChanged":
		if s.Sender != w.owner || !isUDisksObject(s.Path) || len(s.Body) != 3 || w.stale(s, s.Path) {
			return
		}
		iface, _ := s.Body[0].(string)
		changed, _ := s.Body[1].(map[string]dbus.Variant)
		invalidated, _ := s.Body[2].([]string)
		w.applyChanged(s.Path, iface, changed, invalidated)
	}
}

func (w *Watcher) put(path dbus.ObjectPath, props map[string]map[string]dbus.Variant) *Object {
	st := w.state.clone()
	var obj *Object
	if len(props) == 0 {
		delete(st.objects, path)
	} else {
		obj = newObject(path, props)
		st.objects[path] = obj
	}
	w.state = st
	return obj
}

func (w *Watcher) applyAdded(path dbus.ObjectPath, ifaces map[string]map[string]dbus.Variant) {
	old := w.state.objects[path]
	props := map[string]map[string]dbus.Variant{}
	if old != nil {
		props = copyIfaces(old.props)
	}
	var changed []string
	for iface, p := range ifaces {
		if cur, ok := props[iface]; ok && equalProps(cur, p) {
			continue
		}
		props[iface] = copyIfaces(map[string]map[string]dbus.Variant{iface: p})[iface]
		changed = append(changed, iface)
	}
	if len(changed) == 0 {
		return
	}
	sort.Strings(changed)
	obj := w.put(path, props)
	w.emit(Event{Kind: InterfacesAdded, Path: path, Interfaces: changed, Old: old, New: obj})
}

func (w *Watcher) applyRemoved(path dbus.ObjectPath, ifaces []string) {
	old := w.state.objects[path]
	if old == nil {
		return
	}
	props := copyIfaces(old.props)
	var removed []string
	for _, iface := range ifaces {
		if _, ok := props[iface]; ok {
			delete(props, iface)
			removed = append(removed, iface)
		}
	}
	if len(removed) == 0 {
		return
	}
	sort.Strings(removed)
	obj := w.put(path, props)
	w.emit(Event{Kind: InterfacesRemoved, Path: path, Interfaces: removed, Old: old, New: obj})
}

func (w *Watcher) applyChanged(path dbus.ObjectPath, iface string, changed map[string]dbus.Variant, invalidated []string) {
	old := w.state.objects[path]
	if old == nil || !old.Has(iface) {
		w.c.log.WithField("object", path).WithField("interface", iface).Debug("properties changed on an unknown interface; ignored")
		return
	}
	props := copyIfaces(old.props)
	p := props[iface]
	var names []string
	for k, v := range changed {
		if cur, ok := p[k]; ok && equalProps(map[string]dbus.Variant{k: cur}, map[string]dbus.Variant{k: v}) {
			continue
		}
		p[k] = v
		names = append(names, k)
	}
	for _, k := range invalidated {
		if _, ok := p[k]; ok {
			delete(p, k)
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	obj := w.put(path, props)
	w.emit(Event{Kind: PropertiesChanged, Path: path, Interfaces: []string{iface}, Properties: names, Old: old, New: obj})
}

// resync re-reads udisks' objects after it (re)appeared and delivers the difference.
func (w *Watcher) resync() {
	objs, read, err := w.c.managedObjects(w.ctx)
	if err != nil {
		// udisksd may have gone again; its next NameOwnerChanged triggers another try.
		w.c.log.WithError(err).Warn("re-read udisks objects")
		return
	}
	w.read, w.unread = read, map[dbus.ObjectPath]bool{}
	fresh := newSnapshot(objs)
	paths := map[dbus.ObjectPath]bool{}
	for p := range w.state.objects {
		paths[p] = true
	}
	for p := range fresh.objects {
		paths[p] = true
	}
	sorted := make([]dbus.ObjectPath, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, path := range sorted {
		o, n := w.state.objects[path], fresh.objects[path]
		switch {
		case n == nil:
			w.applyRemoved(path, o.Interfaces())
		case o == nil:
			w.applyAdded(path, n.props)
		default:
			var gone []string
			added := map[string]map[string]dbus.Variant{}
			for iface := range o.props {
				if _, ok := n.props[iface]; !ok {
					gone = append(gone, iface)
				}
			}
			for iface, p := range n.props {
				if _, ok := o.props[iface]; !ok {
					added[iface] = p
				}
			}
			w.applyRemoved(path, gone)
			if len(added) > 0 {
				w.applyAdded(path, added)
			}
			for _, iface := range n.Interfaces() {
				cur, ok := o.props[iface]
				if !ok || equalProps(cur, n.props[iface]) {
					continue
				}
				var invalidated []string
				for k := range cur {
					if _, ok := n.props[iface][k]; !ok {
						invalidated = append(invalidated, k)
					}
				}
				w.applyChanged(path, iface, n.props[iface], invalidated)
			}
		}
	}
	w.emit(Event{Kind: Resync})
}

// waitFrom checks cond on from, then on the snapshot of each event, until cond is
// true, returns an error, or ctx ends.
func (w *Watcher) waitFrom(ctx context.Context, from *Snapshot, cond func(*Snapshot) (bool, error)) (*Snapshot, error) {
	if ok, err := cond(from); ok || err != nil {
		return from, err
	}
	for {
		select {
		case <-ctx.Done():
			return from, ctx.Err()
		case ev, ok := <-w.out:
			if !ok {
				if err := ctx.Err(); err != nil {
					return from, err
				}
				return from, w.Err()
			}
			from = ev.Snapshot
			if ok, err := cond(from); ok || err != nil {
				return from, err
			}
		}
	}
}

// WaitFor watches udisks until cond holds (checked on the current state first),
// cond returns an error, or ctx ends.
func (c *Client) WaitFor(ctx context.Context, cond func(*Snapshot) (bool, error)) (*Snapshot, error) {
	w, err := c.Watch(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return w.waitFrom(ctx, w.Initial(), cond)
}
