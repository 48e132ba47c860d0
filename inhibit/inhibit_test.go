package inhibit_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/sirupsen/logrus"

	"tails-backup/inhibit"
	"tails-backup/inhibit/inhibittest"
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

func clientInhibitor(t *testing.T, addr string) *inhibit.LogindInhibitor {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	log, _ := testLog(t)
	return inhibit.NewLogindInhibitor(conn, log)
}

func TestLogindInhibit(t *testing.T) {
	addr := startSystemBus(t)
	f := &inhibittest.Login1{}
	f.Serve(t, addr)
	inh := clientInhibitor(t, addr)
	release, err := inh.Inhibit(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	f.CloseOwnCopies()
	calls, r := f.Calls(), f.Reads()[0]
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
	if _, err := inh.Inhibit(testCtx(t), "x"); !errors.Is(err, inhibit.ErrInhibitUnavailable) {
		t.Fatalf("absent: %v", err)
	}
	// A logind that refuses.
	(&inhibittest.Login1{Refuse: &dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied", Body: []any{"no"}}}).Serve(t, addr)
	if _, err := inh.Inhibit(testCtx(t), "x"); !errors.Is(err, inhibit.ErrInhibitUnavailable) {
		t.Fatalf("refused: %v", err)
	}
	// No system bus at all.
	log, _ := testLog(t)
	if _, err := inhibit.NewLogindInhibitor(nil, log).Inhibit(testCtx(t), "x"); !errors.Is(err, inhibit.ErrInhibitUnavailable) {
		t.Fatalf("no bus: %v", err)
	}
}

func TestLogindInhibitContext(t *testing.T) {
	addr := startSystemBus(t)
	f := &inhibittest.Login1{Block: make(chan struct{}), Received: make(chan struct{})}
	f.Serve(t, addr)
	t.Cleanup(func() { close(f.Block) })
	inh := clientInhibitor(t, addr)
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-f.Received
		cancel()
	}()
	_, err := inh.Inhibit(ctx, "x")
	if !errors.Is(err, context.Canceled) || errors.Is(err, inhibit.ErrInhibitUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestFakeInhibitor(t *testing.T) {
	f := &inhibittest.FakeInhibitor{}
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

// testLog returns a debug-level logger writing to the test's log.
func testLog(t *testing.T) (*logrus.Entry, *strings.Builder) {
	t.Helper()
	buf := &strings.Builder{}
	l := logrus.New()
	l.Out = buf
	l.Level = logrus.DebugLevel
	l.Formatter = &logrus.TextFormatter{DisableColors: true}
	return logrus.NewEntry(l).WithField("test", t.Name()), buf
}

// testCtx returns a context that ends with the test or after a generous timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
