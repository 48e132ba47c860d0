package inhibittest

import (
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"
)

// Login1 is org.freedesktop.login1.Manager with only Inhibit: it returns the write end of a
// pipe and keeps the read end, which sees EOF once every copy of the write end is closed.
// Refuse makes Inhibit fail with that error; Block, if not nil, holds every Inhibit until it is
// closed; Received, if not nil, is closed at the first Inhibit call. Set them before serving.
type Login1 struct {
	Refuse   *dbus.Error
	Block    chan struct{}
	Received chan struct{}

	mu     sync.Mutex
	calls  [][4]string
	reads  []*os.File
	writes []*os.File // the service's own copies, closed by CloseOwnCopies
}

// Inhibit is the D-Bus method: it records the call and returns a lock.
func (f *Login1) Inhibit(what, who, why, mode string) (dbus.UnixFD, *dbus.Error) {
	if f.Received != nil {
		close(f.Received)
	}
	if f.Block != nil {
		<-f.Block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [4]string{what, who, why, mode})
	if f.Refuse != nil {
		return -1, f.Refuse
	}
	r, w, err := os.Pipe()
	if err != nil {
		return -1, dbus.MakeFailedError(err)
	}
	f.reads, f.writes = append(f.reads, r), append(f.writes, w)
	return dbus.UnixFD(w.Fd()), nil
}

// CloseOwnCopies closes the service's copies of the locks it gave, so that a read end sees EOF
// once the client released its lock.
func (f *Login1) CloseOwnCopies() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.writes {
		w.Close()
	}
	f.writes = nil
}

// Calls returns the arguments of each Inhibit call: what, who, why, mode.
func (f *Login1) Calls() [][4]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Reads returns the read ends of the locks given, in order.
func (f *Login1) Reads() []*os.File {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reads)
}

// Serve exports f as logind on the bus at addr, until the end of the test.
func (f *Login1) Serve(t testing.TB, addr string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Export(f, dbus.ObjectPath("/org/freedesktop/login1"), "org.freedesktop.login1.Manager"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.login1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request name: %v %v", reply, err)
	}
}
