//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestProgramIsNotDumpable runs the real program as amnesia (uid 1000), as the agent waiting
// for the system bus (a socket of the test's that accepts and never answers), and checks that the kernel made its /proc files root's: main marked it
// non-dumpable, so no other process of amnesia can read its memory.
func TestProgramIsNotDumpable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the program as uid 1000")
	}
	dir, err := os.MkdirTemp("", "harden-") // t.TempDir's parent is root's alone
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(dir, "tails-backup")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	bus := filepath.Join(dir, "bus")
	l, err := net.Listen("unix", bus)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(bus, 0o777); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	cmd := exec.Command(bin, "agent", "--state", filepath.Join(dir, "state.json"))
	cmd.Env = []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + bus, "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// main marks the process at its start: until then its /proc files are amnesia's.
	environ := fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid)
	var st syscall.Stat_t
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := syscall.Stat(environ, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid == 0 || time.Now().After(deadline) {
			break
		}
	}
	if st.Uid != 0 {
		t.Errorf("%s of the program run as uid 1000 belongs to uid %d: the program is dumpable, so any process of amnesia can read its memory", environ, st.Uid)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); err != nil {
		t.Fatalf("the agent is no longer running, so the check means nothing: %v", err)
	}
}
