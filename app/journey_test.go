package app

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/gnomeshell"
)

// screenshotsEnv names the folder where the journey writes its screenshots, relative to the
// repository's root (docs/screenshots renews the project's); without it they go to a temporary
// folder.
const screenshotsEnv = "TAILS_BACKUP_SCREENSHOTS"

// TestJourney drives the Backup app through AT-SPI in the real GNOME Shell 43, against the fake
// agent (tests/fakeagent.py), in the light and the dark style: first run, create, paired,
// update now and Cancel, verify, restore's question (tests/journey.py), then the promote page of a
// backup Tails; after each, the page saying that the agent is not running once it has stopped.
// Each step waits for what the window must show.
func TestJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("starts GNOME Shell")
	}
	requirePython(t, "import gi; gi.require_version('Adw', '1'); from gi.repository import Adw; import pyatspi",
		"python3-gi gir1.2-adw-1 python3-pyatspi at-spi2-core")
	here, err := os.Getwd() // app/
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv(screenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	} else if !filepath.IsAbs(shots) {
		shots = filepath.Join(filepath.Dir(here), shots)
	}
	s := gnomeshell.Start(t, gnomeshell.Host43)
	home := t.TempDir()
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", "GDK_BACKEND=wayland"}
	for k, v := range s.Env() {
		env = append(env, k+"="+v)
	}
	conn, err := dbus.Connect(s.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	for _, scheme := range []struct{ name, suffix string }{{"light", ""}, {"dark", "-dark"}} {
		t.Run(scheme.name, func(t *testing.T) {
			appEnv := slices.Concat(env, []string{"TAILS_BACKUP_APP_COLOR_SCHEME=" + scheme.name})
			for _, j := range []struct{ journey, scenario string }{{"first-run", "first-run"}, {"promote", "backup"}} {
				t.Run(j.journey, func(t *testing.T) {
					fake := startProcess(t, slices.Concat(env, []string{"SCENARIO=" + j.scenario}), python, filepath.Join(here, "tests", "fakeagent.py"))
					waitName(t, conn, "org.boum.tails.Backup1", fake)
					app := startProcess(t, appEnv, python, filepath.Join(here, "tails-backup-app"))
					run := func(journey string) {
						cmd := exec.Command(python, filepath.Join(here, "tests", "journey.py"), journey, shots, scheme.suffix)
						cmd.Env = env
						out, err := cmd.CombinedOutput()
						if err != nil {
							t.Fatalf("journey %s: %v\n%s\napp:\n%s\nfake agent:\n%s", journey, err, out, app.output(), fake.output())
						}
						t.Logf("%s", out)
					}
					run(j.journey)
					// The agent stops: the window says so.
					fake.stop(t)
					run("no-service")
					app.stop(t)
				})
			}
		})
	}
}

// process is a program the test started, in a process group of its own.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startProcess(t *testing.T, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process group (SIGTERM, then SIGKILL after 5 s) and waits for the process.
func (p *process) stop(t *testing.T) {
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

// waitName waits until name has an owner on conn's bus, or fails with the process' output.
func waitName(t *testing.T, conn *dbus.Conn, name string, p *process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		var has bool
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
		if err == nil && has {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s has no owner after 20 s (%v); output:\n%s", name, err, p.output())
		case <-p.done:
			t.Fatalf("the program that should own %s exited; output:\n%s", name, p.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
