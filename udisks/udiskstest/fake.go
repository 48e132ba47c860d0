package udiskstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// D-Bus names the fake serves (udisks2 2.9.4).
const (
	BusName     = "org.freedesktop.UDisks2"
	RootPath    = dbus.ObjectPath("/org/freedesktop/UDisks2")
	ManagerPath = dbus.ObjectPath("/org/freedesktop/UDisks2/Manager")
	pre         = "org.freedesktop.UDisks2."
	iManager    = pre + "Manager"
	iDrive      = pre + "Drive"
	iBlock      = pre + "Block"
	iPartition  = pre + "Partition"
	iTable      = pre + "PartitionTable"
	iEncrypted  = pre + "Encrypted"
	iFilesystem = pre + "Filesystem"
	iObjMgr     = "org.freedesktop.DBus.ObjectManager"

	// ErrFailed and the others are udisks' D-Bus error names.
	ErrFailed         = pre + "Error.Failed"
	ErrNotAuthorized  = pre + "Error.NotAuthorized"
	ErrNotAuthCanObt  = pre + "Error.NotAuthorizedCanObtain"
	ErrDeviceBusy     = pre + "Error.DeviceBusy"
	ErrAlreadyMounted = pre + "Error.AlreadyMounted"
	ErrNotMounted     = pre + "Error.NotMounted"
	ErrUnknownObject  = "org.freedesktop.DBus.Error.UnknownObject"

	TailsDataType = "8da63339-0007-60c0-c436-083ac8230908"
	ESPType       = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	MiB           = 1 << 20
)

// Call is one method call the fake received. Args excludes the Unlock passphrase.
type Call struct {
	Path    dbus.ObjectPath
	Method  string // e.g. "Unlock" (interface omitted)
	Args    []any
	Options map[string]dbus.Variant
}

// Hook runs (without the service lock) before the fake's own handling of a call; a
// non-nil error is replied instead. A hook may block (e.g. to simulate a device
// removed in the middle of a call).
type Hook func(c Call) *dbus.Error

// Service is a fake udisks2 on a test bus. Its state is a set of objects with
// interfaces and properties; every change emits the signals udisks emits.
type Service struct {
	t    testing.TB
	addr string

	mu      sync.Mutex
	conn    *dbus.Conn
	objects map[dbus.ObjectPath]map[string]map[string]any
	props   map[dbus.ObjectPath]*prop.Properties
	secrets map[dbus.ObjectPath]string // LUKS object → passphrase
	keys    map[dbus.ObjectPath][]byte // LUKS object → key accepted in keyfile_contents
	hooks   map[string][]Hook
	calls   []Call
	nextDM  int

	wrongText string
	fsDelay   time.Duration
	mountRoot string
}

// SetWrongPassphraseText sets the message of the Error.Failed reply to a wrong
// passphrase; %s is the device. Default: Debian 12's text, "Error unlocking %s:
// Failed to activate device: Incorrect passphrase."
func (s *Service) SetWrongPassphraseText(format string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrongText = format
}

// SetKey makes the LUKS object at p accept key as keyfile_contents in Unlock (a second key
// slot), besides its passphrase; a nil key removes it (the slot was killed).
func (s *Service) SetKey(p dbus.ObjectPath, key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == nil {
		delete(s.keys, p)
		return
	}
	s.keys[p] = slices.Clone(key)
}

// SetFilesystemDelay sets how long after a successful Unlock the cleartext object
// gets its Filesystem interface (udisks' blkid probing lags behind the Block);
// default 200 ms.
func (s *Service) SetFilesystemDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fsDelay = d
}

// SetMountRoot sets the directory mount paths are reported under (default /media/root).
func (s *Service) SetMountRoot(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mountRoot = dir
}

// SetVersion sets the Version of the Manager object (default 2.9.4, Tails 6's udisks2; Tails 7
// has 2.10, whose Mount takes the option as-user).
func (s *Service) SetVersion(v string) { s.Set(ManagerPath, iManager, "Version", v) }

// NewService connects to the bus at addr, exports the fake at
// /org/freedesktop/UDisks2 and takes the name org.freedesktop.UDisks2.
func NewService(t testing.TB, addr string) *Service {
	t.Helper()
	s := &Service{t: t, addr: addr,
		objects:   map[dbus.ObjectPath]map[string]map[string]any{},
		props:     map[dbus.ObjectPath]*prop.Properties{},
		secrets:   map[dbus.ObjectPath]string{},
		keys:      map[dbus.ObjectPath][]byte{},
		hooks:     map[string][]Hook{},
		wrongText: "Error unlocking %s: Failed to activate device: Incorrect passphrase.",
		fsDelay:   200 * time.Millisecond,
		mountRoot: "/media/root",
	}
	s.objects[ManagerPath] = map[string]map[string]any{iManager: {
		"Version": "2.9.4", "SupportedFilesystems": []string{"ext4", "vfat"},
		"SupportedEncryptionTypes": []string{"luks1", "luks2"}, "DefaultEncryptionType": "luks1"}}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Service) start() error {
	conn, err := dbus.Connect(s.addr)
	if err != nil {
		return fmt.Errorf("fake udisks: connect: %w", err)
	}
	s.mu.Lock()
	s.conn = conn
	err = conn.ExportMethodTable(map[string]any{"GetManagedObjects": s.getManagedObjects}, RootPath, iObjMgr)
	if err == nil {
		for p := range s.objects {
			if err = s.exportLocked(p); err != nil {
				break
			}
		}
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fake udisks: export: %w", err)
	}
	reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("fake udisks: request name: reply %v, %v", reply, err)
	}
	return nil
}

// Stop disconnects the fake from the bus (udisksd exiting).
func (s *Service) Stop() {
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.props = map[dbus.ObjectPath]*prop.Properties{}
	s.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// Restart simulates a udisksd restart: it leaves the bus, runs offline (may be nil)
// to change the state while it is away (no signals), then comes back under a new
// unique name.
func (s *Service) Restart(offline func()) {
	s.t.Helper()
	s.Stop()
	if offline != nil {
		offline()
	}
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// UniqueName is the fake's current unique bus name.
func (s *Service) UniqueName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return ""
	}
	return s.conn.Names()[0]
}

// OnCall adds a hook for method (e.g. "Unlock"); hooks run in order of addition on
// every call until removed by the returned function.
func (s *Service) OnCall(method string, h Hook) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[method] = append(s.hooks[method], h)
	n := len(s.hooks[method]) - 1
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.hooks[method][n] = nil
	}
}

// FailNext makes the next call of method reply err.
func (s *Service) FailNext(method string, err *dbus.Error) {
	var once sync.Once
	s.OnCall(method, func(Call) *dbus.Error {
		var out *dbus.Error
		once.Do(func() { out = err })
		return out
	})
}

// Calls returns the calls received so far.
func (s *Service) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsOf returns the calls of method.
func (s *Service) CallsOf(method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Failed returns a udisks Error.Failed with message.
func Failed(msg string) *dbus.Error { return dbus.NewError(ErrFailed, []any{msg}) }

// NewError returns a D-Bus error reply.
func NewError(name, msg string) *dbus.Error { return dbus.NewError(name, []any{msg}) }

// ---- state helpers (s.mu held) ----

func (s *Service) exportLocked(p dbus.ObjectPath) error {
	if s.conn == nil {
		return nil
	}
	ifaces := s.objects[p]
	pm := prop.Map{}
	node := &introspect.Node{Name: string(p)}
	for iface, props := range ifaces {
		m := map[string]*prop.Prop{}
		for name, v := range props {
			m[name] = &prop.Prop{Value: v, Emit: prop.EmitTrue}
		}
		pm[iface] = m
	}
	pp, err := prop.Export(s.conn, p, pm)
	if err != nil {
		return err
	}
	s.props[p] = pp
	names := make([]string, 0, len(ifaces))
	for iface := range ifaces {
		names = append(names, iface)
	}
	sort.Strings(names)
	for _, iface := range names {
		node.Interfaces = append(node.Interfaces, introspect.Interface{Name: iface, Properties: pp.Introspection(iface)})
		if mt := s.methods(p, iface); mt != nil {
			if err := s.conn.ExportMethodTable(mt, p, iface); err != nil {
				return err
			}
		}
	}
	node.Interfaces = append(node.Interfaces, prop.IntrospectData)
	return s.conn.Export(introspect.NewIntrospectable(node), p, "org.freedesktop.DBus.Introspectable")
}

func (s *Service) unexportLocked(p dbus.ObjectPath, ifaces []string) {
	if s.conn == nil {
		return
	}
	for _, iface := range ifaces {
		_ = s.conn.Export(nil, p, iface)
	}
	if len(s.objects[p]) == 0 {
		_ = s.conn.Export(nil, p, "org.freedesktop.DBus.Properties")
		_ = s.conn.Export(nil, p, "org.freedesktop.DBus.Introspectable")
		delete(s.props, p)
	}
}

func variants(ifaces map[string]map[string]any) map[string]map[string]dbus.Variant {
	out := map[string]map[string]dbus.Variant{}
	for iface, props := range ifaces {
		m := map[string]dbus.Variant{}
		for k, v := range props {
			m[k] = dbus.MakeVariant(v)
		}
		out[iface] = m
	}
	return out
}

func (s *Service) emit(name string, args ...any) {
	if s.conn == nil {
		return
	}
	if err := s.conn.Emit(RootPath, iObjMgr+"."+name, args...); err != nil {
		s.t.Logf("fake udisks: emit %s: %v", name, err)
	}
}

// addLocked adds interfaces (with properties) to the object at p, creating it.
func (s *Service) addLocked(p dbus.ObjectPath, ifaces map[string]map[string]any) {
	obj := s.objects[p]
	if obj == nil {
		obj = map[string]map[string]any{}
		s.objects[p] = obj
	}
	for iface, props := range ifaces {
		m := map[string]any{}
		for k, v := range props {
			m[k] = v
		}
		obj[iface] = m
	}
	if err := s.exportLocked(p); err != nil {
		s.t.Errorf("fake udisks: export %s: %v", p, err)
	}
	s.emit("InterfacesAdded", p, variants(ifaces))
}

// removeLocked removes interfaces (all if none given) from the object at p.
func (s *Service) removeLocked(p dbus.ObjectPath, ifaces ...string) {
	obj := s.objects[p]
	if obj == nil {
		return
	}
	if len(ifaces) == 0 {
		for iface := range obj {
			ifaces = append(ifaces, iface)
		}
		sort.Strings(ifaces)
	}
	for _, iface := range ifaces {
		delete(obj, iface)
	}
	if len(obj) == 0 {
		delete(s.objects, p)
		delete(s.secrets, p)
	}
	s.unexportLocked(p, ifaces)
	if len(obj) > 0 {
		if err := s.exportLocked(p); err != nil {
			s.t.Errorf("fake udisks: export %s: %v", p, err)
		}
	}
	s.emit("InterfacesRemoved", p, ifaces)
}

// setLocked changes one property and emits PropertiesChanged.
func (s *Service) setLocked(p dbus.ObjectPath, iface, name string, v any) {
	obj := s.objects[p]
	if obj == nil || obj[iface] == nil {
		s.t.Errorf("fake udisks: set %s on %s: no such interface", name, p)
		return
	}
	_, existed := obj[iface][name]
	obj[iface][name] = v
	pp := s.props[p]
	if pp == nil {
		return
	}
	if !existed {
		// prop cannot add a property: re-export and emit by hand.
		_ = s.exportLocked(p)
		_ = s.conn.Emit(p, "org.freedesktop.DBus.Properties.PropertiesChanged", iface,
			map[string]dbus.Variant{name: dbus.MakeVariant(v)}, []string{})
		return
	}
	pp.SetMust(iface, name, v)
}

func (s *Service) get(p dbus.ObjectPath, iface, name string) any {
	return s.objects[p][iface][name]
}

// ---- public state manipulation ----

// Flush returns once the bus has routed every signal the service sent so far: the bus handles
// one connection's messages in order, so the answer to a call made after them comes after
// them. A client that subscribes afterwards sees none of them. (A udisks.Watcher needs no
// Flush: it skips the signals that reach it before its first full read.)
func (s *Service) Flush() {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetId", 0).Err; err != nil {
		s.t.Fatalf("udiskstest: flush: %v", err)
	}
}

// Add adds interfaces to an object (creating it), emitting InterfacesAdded.
func (s *Service) Add(p dbus.ObjectPath, ifaces map[string]map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(p, ifaces)
}

// Remove removes interfaces (all if none given), emitting InterfacesRemoved.
func (s *Service) Remove(p dbus.ObjectPath, ifaces ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(p, ifaces...)
}

// Set changes a property, emitting PropertiesChanged.
func (s *Service) Set(p dbus.ObjectPath, iface, name string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(p, iface, name, v)
}

// Get returns a property value (nil if absent).
func (s *Service) Get(p dbus.ObjectPath, iface, name string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(p, iface, name)
}

// Has reports whether the object at p implements iface.
func (s *Service) Has(p dbus.ObjectPath, iface string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objects[p][iface]
	return ok
}

// Exists reports whether the object at p exists.
func (s *Service) Exists(p dbus.ObjectPath) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[p] != nil
}

// SetOffline changes the state without emitting anything (use inside Restart).
func (s *Service) SetOffline(f func(objects map[dbus.ObjectPath]map[string]map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.objects)
}

// Unplug removes a drive and every block on it (cleartext devices first), as when
// the stick is pulled out.
func (s *Service) Unplug(drive dbus.ObjectPath) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unplugLocked(drive)
}

func (s *Service) unplugLocked(drive dbus.ObjectPath) {
	var blocks, clear []dbus.ObjectPath
	for p, obj := range s.objects {
		b := obj[iBlock]
		if b == nil {
			continue
		}
		if b["Drive"] == drive {
			blocks = append(blocks, p)
		}
	}
	for p, obj := range s.objects {
		if b := obj[iBlock]; b != nil {
			for _, back := range blocks {
				if b["CryptoBackingDevice"] == back {
					clear = append(clear, p)
				}
			}
		}
	}
	sortPaths(blocks)
	sortPaths(clear)
	for _, p := range clear {
		s.removeLocked(p)
	}
	for i := len(blocks) - 1; i >= 0; i-- { // partitions before their disk
		s.removeLocked(blocks[i])
	}
	s.removeLocked(drive)
}

func sortPaths(ps []dbus.ObjectPath) { sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] }) }

func ay(s string) []byte { return append([]byte(s), 0) }

func aay(ss ...string) [][]byte {
	out := [][]byte{}
	for _, s := range ss {
		out = append(out, ay(s))
	}
	return out
}

func str(b any) string {
	v, _ := b.([]byte)
	return strings.TrimRight(string(v), "\x00")
}

// NewUUID returns a random UUID string.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BlockPath is the object path of a block device name such as "sdb2" or "dm-0".
func BlockPath(name string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/UDisks2/block_devices/" + strings.ReplaceAll(name, "-", "_2d"))
}

func blockProps(dev string, drive dbus.ObjectPath, size uint64) map[string]any {
	return map[string]any{
		"Device": ay(dev), "PreferredDevice": ay(dev), "Symlinks": aay(), "DeviceNumber": uint64(0),
		"Id": "", "Size": size, "ReadOnly": false, "Drive": drive,
		"MDRaid": dbus.ObjectPath("/"), "MDRaidMember": dbus.ObjectPath("/"),
		"IdUsage": "", "IdType": "", "IdVersion": "", "IdLabel": "", "IdUUID": "",
		"Configuration": []struct {
			A string
			B map[string]dbus.Variant
		}{},
		"CryptoBackingDevice": dbus.ObjectPath("/"), "HintPartitionable": true,
		"HintSystem": false, "HintIgnore": false, "HintAuto": true, "HintName": "",
		"HintIconName": "", "HintSymbolicIconName": "", "UserspaceMountOptions": []string{},
	}
}

func mountPath(root, label, uuid string) string {
	if label == "" {
		label = uuid
	}
	return path.Join(root, label)
}
