package app

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/gnomeshell"
	"tails-backup/internal/testtool"
)

// screenshotsEnv names the folder where the journey writes its screenshots, relative to the
// repository's root (docs/screenshots renews the project's); they come from GNOME Shell 48, the
// desktop of Tails 7 (43's go to a temporary folder). Without it they all go to temporary
// folders.
const screenshotsEnv = "TAILS_BACKUP_SCREENSHOTS"

// fakeStep is how long each step of the fake agent's jobs takes: long enough for the journey to
// see the progress bar move and press Cancel before the job is over, on a busy machine too.
const fakeStep = "1500ms"

// TestJourney drives the Backup app through AT-SPI in the real GNOME Shell, 43 (Tails 6) and 48
// (Tails 7, in its Debian 13 root), against fakebackupd (the fake agent of dbusapi/dbusapitest,
// the one the dbusapi tests check against the API), in the light and the dark style
// (tests/journey.py): first run, create, paired, update now with the open application's
// question and Cancel, verify, restore's question; first run, pair a Tails stick, then a second
// start of the app with --page verify switching the window; a verify started with the backup not
// plugged in, which waits for it and goes on once it is; the promote page of a backup Tails,
// promoted. After each, the page saying that the agent is not running once it has stopped. Each
// step waits for what the window must show.
func TestJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("starts GNOME Shell")
	}
	here, err := os.Getwd() // app/
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv(screenshotsEnv)
	if shots != "" && !filepath.IsAbs(shots) {
		shots = filepath.Join(filepath.Dir(here), shots)
	}
	fake := buildFake(t, filepath.Dir(here))
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			if shell == gnomeshell.Host43 {
				// The Debian 13 root has them by its package list (gnomeshell.Packages).
				requirePython(t, "import gi; gi.require_version('Adw', '1'); from gi.repository import Adw; import pyatspi",
					"python3-gi gir1.2-adw-1 python3-pyatspi at-spi2-core")
			}
			dir := shots
			if dir == "" || shell != gnomeshell.Trixie48 {
				dir = t.TempDir()
			}
			journey(t, gnomeshell.Start(t, shell), here, fake, dir)
		})
	}
}

// buildFake builds fakebackupd without cgo (a static program that runs in the Debian 13 root
// as well as on the host) and returns its path.
func buildFake(t *testing.T, repo string) string {
	t.Helper()
	goPath := testtool.Program(t, "go", "golang-go, or Go from go.dev")
	bin := filepath.Join(t.TempDir(), "fakebackupd")
	cmd := exec.Command(goPath, "build", "-o", bin, "./dbusapi/dbusapitest/cmd/fakebackupd")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build fakebackupd: %v\n%s", err, out)
	}
	return bin
}

// journey runs the journeys in session s, with the app of the folder app, the fake agent fake
// and the screenshots written to shots (host paths, shared with the session).
func journey(t *testing.T, s *gnomeshell.Session, app, fake, shots string) {
	var paths [3]string
	for i, p := range []string{app, fake, shots} {
		var err error
		if paths[i], err = s.Share(p); err != nil {
			t.Fatal(err)
		}
	}
	app, fake, shots = paths[0], paths[1], paths[2]
	conn, err := dbus.Connect(s.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	env := []string{"GDK_BACKEND=wayland", "PYTHONDONTWRITEBYTECODE=1"}
	for _, scheme := range []struct{ name, suffix string }{{"light", ""}, {"dark", "-dark"}} {
		t.Run(scheme.name, func(t *testing.T) {
			appEnv := slices.Concat(env, []string{"TAILS_BACKUP_APP_COLOR_SCHEME=" + scheme.name})
			for _, j := range []struct {
				scenario string
				args     []string // more arguments of fakebackupd
				journeys []string
			}{
				{"first-run", nil, []string{"first-run"}},
				{"first-run", nil, []string{"pair", "--page verify", "page-verify"}},
				{"plugged", []string{"-plug-after", "5s"}, []string{"verify-waiting"}},
				{"backup", nil, []string{"promote"}},
			} {
				t.Run(j.journeys[0], func(t *testing.T) {
					args := slices.Concat([]string{"-scenario", j.scenario, "-step", fakeStep}, j.args)
					agent := startProcess(t, s.Command(fake, args, env...))
					waitName(t, conn, "org.boum.tails.Backup1", agent)
					window := startProcess(t, s.Command(python, []string{app + "/tails-backup-app"}, appEnv...))
					run := func(journey string) {
						t.Helper()
						if page, ok := strings.CutPrefix(journey, "--page "); ok {
							// A second start: it hands its command line to the app running and exits.
							cmd := s.Command(python, []string{app + "/tails-backup-app", "--page", page}, appEnv...)
							if out, err := runTimeout(cmd, 30*time.Second); err != nil {
								t.Fatalf("tails-backup-app --page %s: %v\n%s", page, err, out)
							}
							return
						}
						out, err := runTimeout(s.Command(python, []string{app + "/tests/journey.py", journey, shots, scheme.suffix}, env...), 5*time.Minute)
						if err != nil {
							t.Fatalf("journey %s: %v\n%s\napp:\n%s\nfake agent:\n%s", journey, err, out, window.output(), agent.output())
						}
						t.Logf("%s", out)
					}
					for _, journey := range j.journeys {
						run(journey)
					}
					// The agent stops: the window says so.
					agent.stop(t)
					run("no-service")
					window.stop(t)
				})
			}
		})
	}
}

// runTimeout runs cmd and returns its combined output, killing it after timeout.
func runTimeout(cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
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

// startProcess starts cmd in a process group of its own; it is stopped in t.Cleanup.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
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
