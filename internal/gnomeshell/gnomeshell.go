// Package gnomeshell starts the real GNOME Shell headless, as an ordinary user on private buses, and drives it as a person would, for tests.
package gnomeshell

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/testtool"
)

// Shell is a GNOME Shell a test runs against.
type Shell int

const (
	// Host43 is the host's own GNOME Shell: 43 on Debian 12, the desktop of Tails 6.
	Host43 Shell = iota
	// Trixie48 is GNOME Shell 48 (Tails 7's) in a Debian 13 root file system built once under
	// the repository's .cache/gnome-trixie.
	Trixie48
)

// Shells are the shells a test runs against, in order.
func Shells() []Shell { return []Shell{Host43, Trixie48} }

func (s Shell) String() string {
	switch s {
	case Host43:
		return "GNOME43"
	case Trixie48:
		return "GNOME48"
	}
	return "Shell(" + strconv.Itoa(int(s)) + ")"
}

// hostUser is the ordinary user who runs the host's sessions, created when absent. Not root:
// GNOME Shell shows root a "Logged in as a privileged user" banner that holds the queue.
const hostUser = "tbtest"

const (
	// startTimeout bounds one start of a session: about 1 s when the machine is idle, 5 s
	// under the load of 'go test -race ./...' on two cores.
	startTimeout = 40 * time.Second
	// startAttempts is how many times a session that does not become ready is started. GNOME
	// Shell 43 hangs at start about once in 50 (seen here, idle or loaded): its main thread
	// reads the pipe of a child it forked to spawn a program, and the child, which holds the
	// pipe's other end, never reaches exec: it waits forever on a lock (futex) that another
	// thread held at the fork. Only a new session gets past that.
	startAttempts = 3
	// stopTimeout is how long the session has to exit on SIGTERM before it is killed.
	stopTimeout = 5 * time.Second
)

//go:embed start.sh
var startScript []byte

//go:embed session.sh
var sessionScript []byte

// busConfig is the configuration of the private buses (type system or session). <allow
// user="*"/> lets any uid connect: the test process runs as root and the bus as the session's
// user, and dbus-daemon otherwise accepts only its own uid. The session bus finds the D-Bus
// activated services (the gjs helper that owns org.freedesktop.Notifications).
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>%s</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  %s
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// Locales are the languages a Trixie48 session can start in (StartIn), as Tails' Welcome Screen
// names them in LANGUAGE: build-trixie.sh generates their locales (lang.UTF-8).
var Locales = []string{"ar_EG", "fr_FR"}

// Session is a running GNOME Shell with its buses. Its methods are safe for concurrent use.
type Session struct {
	shell Shell
	lang  string // the session's language (one of Locales), "" for English
	root  string // the root file system, "" for the host's
	dir   string // the runtime directory (XDG_RUNTIME_DIR) as seen inside root
	cmd   *exec.Cmd
	log   *bytes.Buffer // the session's output
	conn  *dbus.Conn

	mu        sync.Mutex
	shared    int // how many paths Share mounted
	waited    chan struct{}
	closeOnce sync.Once
	release   func()
}

// Start starts shell as an ordinary user on private system and session buses, waits until
// org.freedesktop.Notifications, org.gnome.Shell (Eval) and org.gnome.Shell.Screenshot
// answer, and removes the banners the shell posts by itself. It is stopped in t.Cleanup; what is
// missing skips the test, or fails it on CI (internal/testtool); without root it skips.
func Start(t testing.TB, shell Shell) *Session {
	t.Helper()
	return StartIn(t, shell, "")
}

// StartIn is Start with the session in the language lang (one of Locales; "" for English), as
// Tails sets it: LANG=lang.UTF-8 and LANGUAGE=lang for the shell and for the programs run through
// Command. The shell, GTK and libadwaita then speak that language from their own catalogs and,
// for a language written right to left, mirror their layout by themselves. Only the Debian 13
// root has the locales generated (and the fonts of Arabic): another shell fails the test.
func StartIn(t testing.TB, shell Shell, lang string) *Session {
	t.Helper()
	if lang != "" && (shell != Trixie48 || !slices.Contains(Locales, lang)) {
		t.Fatalf("gnomeshell: no locale %q in %s (the Debian 13 root has %q)", lang, shell, Locales)
	}
	if os.Geteuid() != 0 {
		// It creates a user, switches to it and, for 48, mounts in its root file system.
		t.Skip("gnomeshell: needs root to start a GNOME Shell session as its test user")
	}
	s := &Session{shell: shell, lang: lang, log: new(bytes.Buffer), waited: make(chan struct{}), release: func() {}}
	var uid, gid int
	switch shell {
	case Host43:
		testtool.Program(t, "gnome-shell", "gnome-shell")
		testtool.Program(t, "gjs", "gjs")
		testtool.Program(t, "dbus-daemon", "dbus-daemon")
		var err error
		if uid, gid, err = ensureHostUser(); err != nil {
			t.Fatalf("gnomeshell: %v", err)
		}
	case Trixie48:
		s.root, s.release = trixieRoot(t)
		uid, gid = trixieUID, trixieUID
	default:
		t.Fatalf("gnomeshell: unknown shell %d", shell)
	}
	// One session at a time on the machine: 'go test ./...' runs packages side by side, and
	// two shells rendering in software on two cores starve each other until a banner misses
	// the pointer (seen under CI: a click on the body of GNOME 48's banner came to nothing).
	unlockSession, err := lockSession()
	if err != nil {
		s.release()
		t.Fatalf("gnomeshell: %v", err)
	}
	release := s.release
	s.release = func() { release(); unlockSession() }
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("gnomeshell: %v", err)
		}
		if t.Failed() {
			t.Logf("%s session output (tail):\n%s", shell, tail(s.Output(), 40))
		}
	})
	for attempt := 1; ; attempt++ {
		err := s.start(uid, gid)
		if err == nil {
			break
		}
		if attempt == startAttempts || !errors.Is(err, errNotReady) {
			t.Fatalf("gnomeshell: start %s: %v\n%s", shell, err, tail(s.Output(), 40))
		}
		t.Logf("gnomeshell: start %s: %v\n%s\ngnomeshell: starting it again (attempt %d of %d)",
			shell, err, tail(s.Output(), 40), attempt+1, startAttempts)
		if err := s.stop(); err != nil {
			t.Fatalf("gnomeshell: stop %s: %v", shell, err)
		}
	}
	return s
}

// lockSession waits for the machine-wide lock of the GNOME Shell test sessions and returns
// its release.
func lockSession() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "tails-backup-gnomeshell.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the session lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { _ = f.Close() }, nil // closing the file releases the lock
}

// ensureHostUser returns the uid and gid of hostUser, creating the system user when absent.
func ensureHostUser() (int, int, error) {
	u, err := user.Lookup(hostUser)
	if err != nil {
		out, aerr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", hostUser).CombinedOutput()
		// Another test process may have created it meanwhile: look again either way.
		if u, err = user.Lookup(hostUser); err != nil {
			return 0, 0, fmt.Errorf("create the test user %s: %v: %s", hostUser, aerr, out)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", hostUser, err)
	}
	return uid, gid, nil
}

// host is the path of p (a path inside the session's root) on the host.
func (s *Session) host(p string) string { return filepath.Join(s.root, p) }

// start starts the session (again after stop): its buses, the shell, and waits until it is
// ready.
func (s *Session) start(uid, gid int) error {
	s.mu.Lock()
	s.log.Reset()
	s.mu.Unlock()
	s.waited = make(chan struct{})
	s.conn, s.cmd = nil, nil
	// Not t.TempDir(): unix socket paths are limited to 108 bytes.
	hostTmp, err := os.MkdirTemp(s.host("/tmp"), "gs-")
	if err != nil {
		return err
	}
	s.dir = "/tmp/" + filepath.Base(hostTmp)
	// GNOME Shell posts "Screen Lock disabled" on a user's first session and, with no input, the
	// banner holds the queue: this file says it was shown.
	files := map[string][]byte{
		"system.conf":  fmt.Appendf(nil, busConfig, "system", s.dir+"/system", ""),
		"session.conf": fmt.Appendf(nil, busConfig, "session", s.dir+"/bus", "<standard_session_servicedirs/>"),
		"session.sh":   sessionScript,
		"home/.local/share/gnome-shell/lock-warning-shown": nil,
	}
	for name, data := range files {
		p := filepath.Join(hostTmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
	}
	if err := filepath.Walk(hostTmp, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		return err
	}
	if err := os.Chmod(hostTmp, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(hostTmp, rootHome), 0o700); err != nil {
		return err
	}
	// start.sh stays outside the session's directory: root runs it.
	script := hostTmp + ".start.sh"
	if err := os.WriteFile(script, startScript, 0o700); err != nil {
		return err
	}
	args := []string{"/bin/sh", script, s.root, strconv.Itoa(uid), strconv.Itoa(gid), s.dir}
	if s.root != "" {
		// A mount namespace of its own: the mounts in the root vanish with the session, even
		// when the test process is killed.
		args = append([]string{"unshare", "--mount", "--propagation", "private", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"HOME=" + s.dir + "/home",
		"XDG_RUNTIME_DIR=" + s.dir,
		"XDG_SESSION_TYPE=wayland",
		"LIBGL_ALWAYS_SOFTWARE=1",
		"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + s.dir + "/system",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + s.dir + "/bus",
	}
	cmd.Env = append(cmd.Env, s.langEnv()...)
	w := &lockedWriter{mu: &s.mu, w: s.log}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.waited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	if err := s.addInputDevices(ctx); err != nil {
		return err
	}
	return s.dismissAll(ctx)
}

// errNotReady is a session that started but whose services did not answer in time.
var errNotReady = errors.New("not ready")

// waitReady connects to the session bus and waits until the shell's services answer.
func (s *Session) waitReady(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w (last: %v)%s", errNotReady, ctx.Err(), last, s.diagnose())
		case <-s.waited:
			return fmt.Errorf("the session exited: %v", s.cmd.ProcessState)
		case <-tick.C:
		}
		if s.conn == nil {
			conn, err := dbus.Connect(s.Address())
			if err != nil {
				last = err
				continue
			}
			s.conn = conn
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = s.ready(cctx)
		cancel()
		if last == nil {
			return nil
		}
	}
}

// diagnose says, for a session that did not become ready, what each process of the session
// is doing: its state, the system call it waits in and its command line. A shell blocked in
// read(2) on a pipe whose writer is a child of its own stuck in futex(2) is GLib's spawn caught
// by a lock taken in another thread before the fork.
func (s *Session) diagnose() string {
	if s.cmd == nil || s.cmd.Process == nil {
		return ""
	}
	pgid := s.cmd.Process.Pid
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nthe session's processes (pid ppid state; system call number and first argument; command line):")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command's name, which is in parentheses and may hold spaces:
		// state, ppid, pgrp.
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		sc, _ := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
		sf := strings.Fields(string(sc))
		if len(sf) > 2 {
			sf = sf[:2]
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		fmt.Fprintf(&b, "\n  %d %s %s; %s; %s", pid, f[1], f[0], strings.Join(sf, " "),
			strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return b.String()
}

func (s *Session) ready(ctx context.Context) error {
	var name, vendor, version, spec string
	if err := s.conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications").CallWithContext(ctx,
		"org.freedesktop.Notifications.GetServerInformation", 0).Store(&name, &vendor, &version, &spec); err != nil {
		return fmt.Errorf("org.freedesktop.Notifications: %w", err)
	}
	if _, err := s.Eval(ctx, "1"); err != nil {
		return fmt.Errorf("org.gnome.Shell: %w", err)
	}
	var has bool
	if err := s.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0,
		"org.gnome.Shell.Screenshot").Store(&has); err != nil {
		return fmt.Errorf("the session bus: %w", err)
	}
	if !has {
		return errors.New("org.gnome.Shell.Screenshot has no owner yet")
	}
	return nil
}

// langEnv is the language of the session's programs, as Tails sets it: C.UTF-8 in English.
func (s *Session) langEnv() []string {
	if s.lang == "" {
		return []string{"LANG=C.UTF-8"}
	}
	return []string{"LANG=" + s.lang + ".UTF-8", "LANGUAGE=" + s.lang}
}

// Lang is the session's language (one of Locales), "" for English.
func (s *Session) Lang() string { return s.lang }

// Shell is the shell the session runs.
func (s *Session) Shell() Shell { return s.shell }

// Address is the session bus address for a client in the test process (which runs as root: the
// bus lets any uid connect).
func (s *Session) Address() string { return "unix:path=" + s.host(s.dir) + "/bus" }

// Env is the environment of a program run in the session through Argv: its session bus, its
// Wayland display and runtime directory (pinentry-gnome3 wants a display before it asks the
// shell's prompter over D-Bus).
func (s *Session) Env() map[string]string {
	return map[string]string{
		"DBUS_SESSION_BUS_ADDRESS": "unix:path=" + s.dir + "/bus",
		"WAYLAND_DISPLAY":          "wayland-0",
		"XDG_RUNTIME_DIR":          s.dir,
	}
}

// Argv is the command line that runs program (a path inside the session's root file system)
// with args in the session's file system: on the host as is, in the Debian 13 root through
// nsenter into the session's mount namespace, root and working directory (its runtime directory).
func (s *Session) Argv(program string, args ...string) []string {
	if s.root == "" {
		return append([]string{program}, args...)
	}
	return append([]string{"nsenter", "--target", strconv.Itoa(s.cmd.Process.Pid), "--mount", "--root", "--wd", "--", program}, args...)
}

// rootHome is the home directory, inside the session's directory, of the programs that Command
// runs (as root): not the session user's own home, where they would leave files root owns.
const rootHome = "root-home"

// Command is an exec.Cmd that runs program (a path inside the session's file system: see Share)
// with args in the session, as root (the test's user): its environment is Env plus PATH, LANG
// and HOME, then env (NAME=value each, which may replace them).
func (s *Session) Command(program string, args []string, env ...string) *exec.Cmd {
	argv := s.Argv(program, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + s.dir + "/" + rootHome}, s.langEnv()...)
	for k, v := range s.Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// Share makes the file or directory hostPath visible in the session's file system, for writing
// too, and returns its path there: on the host, hostPath itself; in the Debian 13 root, a bind
// mount under the session's directory, made in the session's own mount namespace (it goes with
// the session and is never seen by the host).
func (s *Session) Share(hostPath string) (string, error) {
	hostPath, err := filepath.Abs(hostPath)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(hostPath)
	if err != nil {
		return "", fmt.Errorf("share: %w", err)
	}
	if s.root == "" {
		return hostPath, nil
	}
	s.mu.Lock()
	s.shared++
	inside := fmt.Sprintf("%s/shared/%d-%s", s.dir, s.shared, filepath.Base(hostPath))
	s.mu.Unlock()
	target := s.host(inside)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", fmt.Errorf("share %s: %w", hostPath, err)
	}
	if fi.IsDir() {
		err = os.Mkdir(target, 0o755)
	} else {
		err = os.WriteFile(target, nil, 0o644)
	}
	if err != nil {
		return "", fmt.Errorf("share %s: %w", hostPath, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "nsenter", "--target", strconv.Itoa(s.cmd.Process.Pid), "--mount", "--",
		"mount", "--bind", hostPath, target).CombinedOutput(); err != nil {
		return "", fmt.Errorf("share %s: mount --bind in the session: %w: %s", hostPath, err, out)
	}
	return inside, nil
}

// Output is what the session printed so far.
func (s *Session) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Eval runs the JavaScript code js in the shell (org.gnome.Shell.Eval) and returns the JSON of
// its value; a failure of js is an error with its message.
func (s *Session) Eval(ctx context.Context, js string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		ok  bool
		res string
	)
	if err := s.conn.Object("org.gnome.Shell", "/org/gnome/Shell").CallWithContext(ctx,
		"org.gnome.Shell.Eval", 0, js).Store(&ok, &res); err != nil {
		return "", fmt.Errorf("eval: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("eval: %s", res)
	}
	return res, nil
}

// evalJSON runs js and decodes the JSON of its value into v.
func (s *Session) evalJSON(ctx context.Context, js string, v any) error {
	res, err := s.Eval(ctx, js)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(res), v); err != nil {
		return fmt.Errorf("eval: decode %q: %w", res, err)
	}
	return nil
}

// Screenshot saves a PNG of the whole screen to file (on the host).
func (s *Session) Screenshot(ctx context.Context, file string) error {
	return s.screenshot(ctx, file, "Screenshot", false, false)
}

// screenshot calls the method of org.gnome.Shell.Screenshot with args and the file name, and
// copies the picture to file (on the host).
func (s *Session) screenshot(ctx context.Context, file, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The shell writes as the session's user, into its own directory.
	inside := s.dir + "/screenshot.png"
	var (
		ok   bool
		used string
	)
	if err := s.conn.Object("org.gnome.Shell.Screenshot", "/org/gnome/Shell/Screenshot").CallWithContext(ctx,
		"org.gnome.Shell.Screenshot."+method, 0, append(args, inside)...).Store(&ok, &used); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if !ok {
		return errors.New("screenshot: the shell did not take it")
	}
	data, err := os.ReadFile(s.host(used))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	_ = os.Remove(s.host(used))
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return nil
}

// Close stops the session (SIGTERM to its process group, then SIGKILL), which for the Debian 13
// root also ends its mount namespace and so its mounts, and removes its directory. It is safe to
// call more than once.
func (s *Session) Close() error {
	var err error
	s.closeOnce.Do(func() {
		defer s.release()
		err = s.stop()
	})
	return err
}

// stop ends the session's processes and removes its directory.
func (s *Session) stop() error {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if s.cmd == nil || s.cmd.Process == nil {
		if s.dir == "" {
			return nil
		}
		hostDir := s.host(s.dir)
		return errors.Join(os.RemoveAll(hostDir), ignoreNotExist(os.Remove(hostDir+".start.sh")))
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.waited:
	case <-time.After(stopTimeout):
	}
	// What is left of the group (the buses, the services they started) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.waited
	hostDir := s.host(s.dir)
	return errors.Join(os.RemoveAll(hostDir), os.Remove(hostDir+".start.sh"))
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
