// Package apptest runs the Backup app's AT-SPI journeys (app/tests/journey.py) in a GNOME Shell
// session of internal/gnomeshell: the programs a journey test starts, in process groups of
// their own, and the waits around them; shared by the app's tests and the agent's.
package apptest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/testtool"
)

// Python is the Python that has PyGObject (Debian's: another python3 on PATH may lack gi).
const Python = "/usr/bin/python3"

// RequirePython skips the test, or fails it on CI, when Python cannot import what modules
// names (Python import statements); pkgs are the Debian packages that have them.
func RequirePython(t *testing.T, modules, pkgs string) {
	t.Helper()
	testtool.Program(t, "python3", "python3", Python)
	if out, err := exec.Command(Python, "-c", modules).CombinedOutput(); err != nil {
		testtool.Missing(t, "%s cannot run %q: %v: %s (Debian packages %s)", Python, modules, err, out, pkgs)
	}
}

// BuildStatic builds the Go program of package pkg (relative to the repository's root repo)
// without cgo, a static program that runs in the Debian 13 root as well as on the host, and
// returns its path.
func BuildStatic(t *testing.T, repo, pkg string) string {
	t.Helper()
	goPath := testtool.Program(t, "go", "golang-go, or Go from go.dev")
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(goPath, "build", "-o", bin, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// RunTimeout runs cmd and returns its combined output, killing it after timeout.
func RunTimeout(cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.Bytes(), err
}

// Process is a program the test started, in a process group of its own.
type Process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error // of Wait, once done is closed
}

func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output is what the process wrote so far, its standard output and error together.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Done is closed once the process exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Start starts cmd in a process group of its own; it is stopped in t.Cleanup.
func Start(t *testing.T, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Err is how the process exited (nil: with status 0), once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// WaitOutput waits until the process wrote s, and tells whether it did before it exited or
// timeout passed.
func (p *Process) WaitOutput(s string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		if strings.Contains(p.Output(), s) {
			return true
		}
		select {
		case <-p.done:
			return strings.Contains(p.Output(), s)
		case <-deadline:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the process group (SIGTERM, then SIGKILL after 5 s) and waits for the process.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// WaitName waits until name has an owner on conn's bus, or fails with the output of p, the
// program that should own it (nil: the test process itself).
func WaitName(t *testing.T, conn *dbus.Conn, name string, p *Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var done <-chan struct{}
	output := func() string { return "" }
	if p != nil {
		done, output = p.done, p.Output
	}
	for {
		var has bool
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
		if err == nil && has {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s has no owner after 20 s (%v); output:\n%s", name, err, output())
		case <-done:
			t.Fatalf("the program that should own %s exited; output:\n%s", name, output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
