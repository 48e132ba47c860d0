// Package notifytest provides a private D-Bus session bus and a fake org.freedesktop.Notifications server for tests.
package notifytest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a dbus-daemon may take to start on a loaded machine.
const startTimeout = 30 * time.Second

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// Bus is a private dbus-daemon of type session, listening on a unix socket in a
// temporary directory. Its address is stable across Restart.
type Bus struct {
	dir    string
	socket string
	config string

	mu     sync.Mutex
	cmd    *exec.Cmd
	waited chan struct{} // closed when cmd has exited
	stderr *bytes.Buffer
}

// StartBus starts a private session bus, stopped and removed in t.Cleanup.
// It skips the test if dbus-daemon is not installed.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon not found in PATH; install the dbus-daemon package")
	}
	// Not t.TempDir(): unix socket paths are limited to 108 bytes and test names are long.
	dir, err := os.MkdirTemp("", "notifytest-bus-")
	if err != nil {
		t.Fatalf("notifytest: create bus directory: %v", err)
	}
	b := &Bus{dir: dir, socket: filepath.Join(dir, "bus"), config: filepath.Join(dir, "session.conf")}
	t.Cleanup(func() {
		b.Stop()
		_ = os.RemoveAll(dir)
	})
	if err := os.WriteFile(b.config, []byte(fmt.Sprintf(busConfig, b.socket)), 0o600); err != nil {
		t.Fatalf("notifytest: write bus config: %v", err)
	}
	b.start(t)
	return b
}

// Address is the bus address to connect to (no guid, so it stays valid after Restart).
func (b *Bus) Address() string { return "unix:path=" + b.socket }

func (b *Bus) start(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		t.Fatalf("notifytest: bus already running")
	}
	_ = os.Remove(b.socket) // a killed daemon leaves its socket behind
	cmd := exec.Command("dbus-daemon", "--config-file="+b.config, "--nofork", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("notifytest: dbus-daemon stdout: %v", err)
	}
	stderr := new(bytes.Buffer)
	cmd.Stderr = &lockedWriter{w: stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("notifytest: start dbus-daemon: %v", err)
	}
	waited := make(chan struct{})
	line := make(chan string, 1)
	go func() {
		// The daemon prints its address once it listens.
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	go func() {
		_ = cmd.Wait()
		close(waited)
	}()
	select {
	case s := <-line:
		if s == "" {
			<-waited
			t.Fatalf("notifytest: dbus-daemon exited before printing its address: %s", stderr)
		}
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-waited
		t.Fatalf("notifytest: dbus-daemon did not start within %v: %s", startTimeout, stderr)
	}
	b.cmd, b.waited, b.stderr = cmd, waited, stderr
}

// Stop kills the daemon and waits for it to exit; every connection to it breaks.
// It is safe to call more than once.
func (b *Bus) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.waited
	b.cmd = nil
}

// Restart stops the daemon and starts a new one at the same address.
func (b *Bus) Restart(t testing.TB) {
	t.Helper()
	b.Stop()
	b.start(t)
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
