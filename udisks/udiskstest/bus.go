// Package udiskstest provides a private D-Bus daemon and a fake udisks2 service for tests.
package udiskstest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// OnCI reports whether the tests run in CI (the variable CI set), where a missing program is a
// failure rather than a reason to skip.
func OnCI() bool { return os.Getenv("CI") != "" }

// SkipOrFail skips the test with reason, or fails it on CI when missingProgram is
// true (a program or package the CI machine must install is missing).
func SkipOrFail(t testing.TB, missingProgram bool, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if missingProgram && OnCI() {
		t.Fatalf("%s (CI=true: install it in .ci/deps)", msg)
	}
	t.Skip(msg)
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus starts a private dbus-daemon with a system-bus configuration (allow-all
// policy, unix socket in a temporary directory) and returns its address. The daemon
// is stopped when the test ends.
func StartBus(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		SkipOrFail(t, true, "dbus-daemon not found (Debian package dbus-daemon): %v", err)
	}
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "udbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr // read only after Wait
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("dbus-daemon stderr:\n%s", stderr.String())
		}
	})
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		ch <- res{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read dbus-daemon address: %v", r.err)
		}
		return strings.TrimSpace(r.line)
	case <-time.After(60 * time.Second):
		t.Fatal("dbus-daemon did not print its address within 60 s")
	}
	return ""
}
