package agent

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/testtool"
)

// startSystemBus starts a private dbus-daemon of type system that allows everything, and
// returns its address.
func startSystemBus(t *testing.T) string {
	t.Helper()
	daemon := testtool.Program(t, "dbus-daemon", "dbus")
	dir, err := os.MkdirTemp("", "bus") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + filepath.Join(dir, "socket") + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`
	cf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+cf, "--nofork", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // our own dbus-daemon, by PID
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return a
	case <-time.After(time.Minute):
		t.Fatal("dbus-daemon did not start")
	}
	return ""
}

// fakeLogin1 is org.freedesktop.login1.Manager with only Inhibit: it returns the write end
// of a pipe and keeps the read end, which sees EOF once every copy of the write end is closed.
type fakeLogin1 struct {
	mu       sync.Mutex
	calls    [][4]string
	reads    []*os.File
	writes   []*os.File // the service's own copies, closed by closeOwnCopies
	refuse   *dbus.Error
	block    chan struct{}
	received chan struct{}
}

func (f *fakeLogin1) Inhibit(what, who, why, mode string) (dbus.UnixFD, *dbus.Error) {
	if f.received != nil {
		close(f.received)
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [4]string{what, who, why, mode})
	if f.refuse != nil {
		return -1, f.refuse
	}
	r, w, err := os.Pipe()
	if err != nil {
		return -1, dbus.MakeFailedError(err)
	}
	f.reads, f.writes = append(f.reads, r), append(f.writes, w)
	return dbus.UnixFD(w.Fd()), nil
}

func (f *fakeLogin1) closeOwnCopies() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.writes {
		w.Close()
	}
	f.writes = nil
}

// serveLogin1 exports f as login1 on the bus.
func serveLogin1(t *testing.T, addr string, f *fakeLogin1) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Export(f, login1Path, "org.freedesktop.login1.Manager"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(login1Name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request name: %v %v", reply, err)
	}
}

func clientInhibitor(t *testing.T, addr string) *LogindInhibitor {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	log, _ := testLog(t)
	return NewLogindInhibitor(conn, log)
}

func TestLogindInhibit(t *testing.T) {
	addr := startSystemBus(t)
	f := &fakeLogin1{}
	serveLogin1(t, addr, f)
	inh := clientInhibitor(t, addr)
	release, err := inh.Inhibit(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	f.closeOwnCopies()
	f.mu.Lock()
	calls, r := f.calls, f.reads[0]
	f.mu.Unlock()
	want := [4]string{"sleep:shutdown", "Tails Backup", "Updating your backup Tails", "block"}
	if len(calls) != 1 || calls[0] != want {
		t.Errorf("calls = %q, want %q", calls, want)
	}
	// Held: the read end sees neither data nor EOF.
	r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 1)
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("lock not held: read returned %v", err)
	}
	release()
	release() // idempotent
	r.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := r.Read(buf); err != io.EOF {
		t.Fatalf("lock not released: read returned %v", err)
	}
}

func TestLogindInhibitUnavailable(t *testing.T) {
	addr := startSystemBus(t)
	inh := clientInhibitor(t, addr)
	// No logind on the bus.
	if _, err := inh.Inhibit(testCtx(t), "x"); !errors.Is(err, ErrInhibitUnavailable) {
		t.Fatalf("absent: %v", err)
	}
	// A logind that refuses.
	serveLogin1(t, addr, &fakeLogin1{refuse: &dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied", Body: []any{"no"}}})
	if _, err := inh.Inhibit(testCtx(t), "x"); !errors.Is(err, ErrInhibitUnavailable) {
		t.Fatalf("refused: %v", err)
	}
	// No system bus at all.
	log, _ := testLog(t)
	if _, err := NewLogindInhibitor(nil, log).Inhibit(testCtx(t), "x"); !errors.Is(err, ErrInhibitUnavailable) {
		t.Fatalf("no bus: %v", err)
	}
}

func TestLogindInhibitContext(t *testing.T) {
	addr := startSystemBus(t)
	f := &fakeLogin1{block: make(chan struct{}), received: make(chan struct{})}
	serveLogin1(t, addr, f)
	t.Cleanup(func() { close(f.block) })
	inh := clientInhibitor(t, addr)
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-f.received
		cancel()
	}()
	_, err := inh.Inhibit(ctx, "x")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrInhibitUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestFakeInhibitor(t *testing.T) {
	f := &FakeInhibitor{}
	rel, err := f.Inhibit(testCtx(t), "why")
	if err != nil || f.Active() != 1 {
		t.Fatal(err, f.Active())
	}
	rel()
	rel()
	if f.Active() != 0 || f.Whys()[0] != "why" {
		t.Fatal(f.Active(), f.Whys())
	}
}
