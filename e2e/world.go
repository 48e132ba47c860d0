package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"tails-backup/e2e/proto"
)

// Passphrases of the simulated sticks.
const (
	MainPassphrase   = "correct horse battery staple"
	BackupPassphrase = "backup stick passphrase 42"
)

// Paths in the guest (the simulated Tails).
const (
	guestTool        = "/usr/local/lib/e2e/e2e-guest"
	persistenceMount = "/live/persistence/TailsData_unlocked"
	mediumMount      = "/lib/live/mount/medium"
	pinentryDir      = "/run/e2e/pinentry"
	thunderbirdBin   = "/usr/local/lib/e2e/thunderbird"
)

// Stick is a USB stick image that the driver plugs into the guest.
type Stick struct {
	ID, Serial, File string
	Passphrase       string
	// WriteBps, if not 0, throttles the writes to the stick (bytes per second) while it is
	// plugged, as the flash of a real stick does (see QMP.PlugUSBStick).
	WriteBps int64
	// WriteIOPS, ReadBps, ReadIOPS: the other limits of its throttle group (USBStick).
	WriteIOPS, ReadBps, ReadIOPS int64
	Format                       string // of File: "raw" (the default) or "qcow2"
	plugged                      bool
	pluggedAt                    time.Time
	usb                          USBStick // as plugged
}

// World is a booted guest running a simulated Tails with its desktop session, and the sticks.
type World struct {
	VM  *VM
	G   *Guest
	Dir string
	// Repo is the project's working tree on the host (its po/ catalogs, for scenario 16).
	Repo string
	// BootDisk is the image of the stick this Tails runs from (the guest's virtio disk).
	BootDisk string
	// Say narrates what a person would see; Log records details and timings.
	Say, Log Logger
	Sticks   map[string]*Stick
	// Leg is the Tails release the guest plays (E2E_DEBIAN).
	Leg Leg
	// Boot is the disk the simulated Tails runs from (serial tails-boot).
	Boot *VirtioDisk
	// backupKeySlot: the backup has a key slot that opens it without its passphrase (create
	// adds one); the scenarios that type the passphrase need it off (KeySlotOff).
	backupKeySlot bool
}

// fileLogger writes timestamped lines to a file and passes them on.
type fileLogger struct {
	mu   sync.Mutex
	w    io.Writer
	next Logger
}

func (l *fileLogger) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	fmt.Fprintf(l.w, "%s %s\n", time.Now().Format("15:04:05.0"), msg)
	l.mu.Unlock()
	if l.next != nil {
		l.next.Logf("%s", msg)
	}
}

// TeeLogger returns a Logger writing to w (timestamped) and then to next (if not nil).
func TeeLogger(w io.Writer, next Logger) Logger { return &fileLogger{w: w, next: next} }

// NewRunDir makes a fresh folder for a run's files under .cache/e2e/runs/SUITE, keeping the
// last few of that leg (the legs may run at the same time).
func NewRunDir(repo string, leg Leg) (string, error) {
	runs := filepath.Join(repo, ".cache", "e2e", "runs", leg.Suite)
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return "", err
	}
	if old, _ := filepath.Glob(filepath.Join(runs, "*")); len(old) >= 3 {
		for _, d := range old[:len(old)-2] {
			os.RemoveAll(d)
		}
	}
	return os.MkdirTemp(runs, time.Now().Format("20060102-150405-"))
}

// Setup boots the guest and sets it up as a Tails running from its boot stick, whose
// Persistent Storage holds a realistic user's data, with the desktop session of amnesia. The
// agent is not started yet.
func Setup(ctx context.Context, repo, runDir string, leg Leg, say, log Logger) (*World, error) {
	start := time.Now()
	img, err := EnsureImage(ctx, repo, leg, log)
	if err != nil {
		return nil, err
	}
	log.Logf("timing: image ready in %s", round(time.Since(start)))
	t := time.Now()
	payload, err := BuildPayload(ctx, repo, runDir)
	if err != nil {
		return nil, err
	}
	log.Logf("timing: payload built in %s", round(time.Since(t)))
	boot := filepath.Join(runDir, "tails-boot.img")
	if err := sparseFile(boot, 1536<<20); err != nil {
		return nil, err
	}
	vm, err := StartVM(ctx, VMConfig{Image: img, RunDir: runDir, Payload: payload, BootDisk: boot, Log: log})
	if err != nil {
		return nil, err
	}
	w := &World{VM: vm, G: vm.Guest, Dir: runDir, Repo: repo, BootDisk: boot, Say: say, Log: log, Sticks: map[string]*Stick{}, Leg: leg,
		Boot: &VirtioDisk{ID: BootDiskID, File: boot, Serial: BootSerial}}
	t = time.Now()
	if err := w.makeRunningTails(ctx); err != nil {
		vm.Stop()
		return nil, err
	}
	log.Logf("timing: simulated Tails ready in %s", round(time.Since(t)))
	return w, nil
}

// Close powers the guest off.
func (w *World) Close() { w.VM.Stop() }

// makeRunningTails makes the boot stick a Tails stick with the user's data, "boots" it and
// waits for the desktop session.
func (w *World) makeRunningTails(ctx context.Context) error {
	dev := "/dev/disk/by-id/virtio-" + BootSerial
	argv := []string{guestTool, "make-tails", "--data", "user", "--version", w.Leg.Version}
	if w.Leg.Tails >= 7 {
		// Its LUKS header backup and Welcome Screen settings: never to be copied to a backup.
		argv = append(argv, "--stick-files", "ar_EG")
	}
	if _, err := w.G.Run(ctx, Cmd{Argv: append(argv, dev), Stdin: MainPassphrase}); err != nil {
		return err
	}
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "boot-tails", dev}, Stdin: MainPassphrase}); err != nil {
		return err
	}
	// The thunderbird stand-in: a program named thunderbird that runs until asked to quit.
	if _, err := w.G.Root(ctx, "cp", "/bin/sleep", thunderbirdBin); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The session (logind, user manager, session bus) comes up after the autologin; no event
	// reaches the driver for it: short polls with a deadline.
	if err := w.G.WaitUntil(wctx, 500*time.Millisecond, Cmd{User: "amnesia", Argv: []string{"systemctl", "--user", "is-active", "e2e-notifyd.service"}}); err != nil {
		return fmt.Errorf("the desktop session of amnesia did not start: %w", err)
	}
	out, err := w.G.Root(ctx, "loginctl", "show-user", "amnesia", "-p", "Display", "-p", "State")
	if err != nil {
		return err
	}
	w.Log.Logf("session of amnesia: %s", strings.Join(strings.Fields(out), " "))
	// What the guest really runs, for the timings and any failure.
	vers, err := w.G.Root(ctx, "sh", "-c", `echo "Linux $(uname -r)"; dpkg-query -W -f '${Package} ${Version}\n' `+
		`udisks2 'libblockdev-crypto*' cryptsetup-bin systemd polkitd tails-backup 2>/dev/null || true`)
	if err != nil {
		return err
	}
	w.Log.Logf("guest (Debian %s, Tails %d): %s", w.Leg.Suite, w.Leg.Tails, strings.Join(strings.Split(strings.TrimSpace(vers), "\n"), ", "))
	return nil
}

// NewStick makes a blank stick image of size bytes.
func (w *World) NewStick(id, serial string, size int64) (*Stick, error) {
	st := &Stick{ID: id, Serial: serial, File: filepath.Join(w.Dir, id+".img")}
	if err := sparseFile(st.File, size); err != nil {
		return nil, err
	}
	w.Sticks[id] = st
	return st, nil
}

// Plug hot-plugs st.
func (w *World) Plug(ctx context.Context, st *Stick) error {
	usb := USBStick{ID: st.ID, File: st.File, Serial: st.Serial, Format: st.Format, WriteBps: st.WriteBps,
		WriteIOPS: st.WriteIOPS, ReadBps: st.ReadBps, ReadIOPS: st.ReadIOPS}
	if err := w.VM.QMP.PlugUSBStick(ctx, usb); err != nil {
		return err
	}
	st.plugged, st.pluggedAt, st.usb = true, time.Now(), usb
	return nil
}

// PlugAnswering plugs st in with the passphrase dialogs it will bring scripted to answer
// answers, in order (with none, a dialog fails), and returns the sequence number of the
// latest notification before the plug, after which WaitNote finds what the plug brings.
func (w *World) PlugAnswering(ctx context.Context, st *Stick, answers ...string) (int, error) {
	seq, err := w.LastSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the notifications before plugging %s: %w", st.ID, err)
	}
	if err := w.SetPinentry(ctx, answers...); err != nil {
		return 0, fmt.Errorf("script the passphrase dialog before plugging %s: %w", st.ID, err)
	}
	if err := w.Plug(ctx, st); err != nil {
		return 0, fmt.Errorf("plug %s: %w", st.ID, err)
	}
	return seq, nil
}

// Unplug pulls st out.
func (w *World) Unplug(ctx context.Context, st *Stick) error {
	if !st.plugged {
		return nil
	}
	if err := w.VM.QMP.UnplugUSBStick(ctx, st.usb); err != nil {
		return err
	}
	st.plugged = false
	return nil
}

// UnplugAll pulls out the sticks still plugged in, after a scenario that failed with one in:
// the next scenario plugs them itself.
func (w *World) UnplugAll(ctx context.Context) {
	for _, st := range w.Sticks {
		if err := w.Unplug(ctx, st); err != nil {
			w.Log.Logf("cannot unplug %s: %v", st.ID, err)
		}
	}
}

// DriveState is how udisks in the guest sees a stick.
type DriveState struct {
	Present   bool   `json:"present"`
	Device    string `json:"device"`
	Tails     bool   `json:"tails"`
	LUKSUUID  string `json:"luks_uuid"`
	Unlocked  bool   `json:"unlocked"`
	MountedAt string `json:"mounted_at"`
	Removable bool   `json:"removable"`
}

// WaitDrive waits (on udisks' D-Bus signals, in the guest) until st is in state: present,
// absent, locked, unlocked, mounted, or any (at once).
func (w *World) WaitDrive(ctx context.Context, st *Stick, state string, timeout time.Duration) (DriveState, error) {
	out, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "wait-drive", "--timeout", timeout.String(), "--serial", st.Serial, state}, Timeout: timeout + 30*time.Second})
	var ds DriveState
	json.Unmarshal([]byte(out), &ds)
	return ds, err
}

// PlugAndWait plugs st and waits until udisks shows it.
func (w *World) PlugAndWait(ctx context.Context, st *Stick) (DriveState, error) {
	if err := w.Plug(ctx, st); err != nil {
		return DriveState{}, err
	}
	return w.WaitDrive(ctx, st, "present", time.Minute)
}

// Terminal runs argv as amnesia in a terminal of the desktop session: GNOME's terminal runs
// its shells under the session's user manager (systemd-run --user), where polkit judges them
// by the user's session; the command's output and exit status come back.
func (w *World) Terminal(ctx context.Context, argv ...string) (string, error) {
	return w.TerminalInput(ctx, "", argv...)
}

// TerminalInput is Terminal with what the user types (input) on the command's standard input.
func (w *World) TerminalInput(ctx context.Context, input string, argv ...string) (string, error) {
	full := append([]string{"systemd-run", "--user", "--pipe", "--wait", "--quiet", "--collect", "--"}, argv...)
	r, err := w.G.Exec(ctx, proto.Request{User: "amnesia", Argv: full, Stdin: []byte(input)})
	if err != nil {
		return "", err
	}
	if len(r.Stderr) > 0 {
		w.Log.Logf("%s said on its standard error:\n%s", argv[0], r.Stderr)
	}
	if r.Exit != 0 || r.Error != "" {
		return string(r.Stdout), &CommandError{Argv: argv, Exit: r.Exit, Stderr: string(r.Stderr), Err: r.Error}
	}
	return string(r.Stdout), nil
}

// Notes returns the notifications received after seq.
func (w *World) Notes(ctx context.Context, after int) ([]proto.Notification, error) {
	out, err := w.G.User(ctx, guestTool, "notifications", "list", "--after", strconv.Itoa(after))
	if err != nil {
		return nil, err
	}
	var ns []proto.Notification
	return ns, json.Unmarshal([]byte(out), &ns)
}

// LastSeq is the sequence number of the latest notification.
func (w *World) LastSeq(ctx context.Context) (int, error) {
	ns, err := w.Notes(ctx, 0)
	if err != nil || len(ns) == 0 {
		return 0, err
	}
	return ns[len(ns)-1].Seq, nil
}

// WaitNote waits for a notification after seq whose summary contains summary (or one of its
// alternatives separated by "|") and body contains body, and returns the first.
func (w *World) WaitNote(ctx context.Context, after int, summary, body string, timeout time.Duration) (proto.Notification, error) {
	out, err := w.G.Run(ctx, Cmd{User: "amnesia", Argv: []string{guestTool, "notifications", "wait", "--after", strconv.Itoa(after),
		"--body", body, "--timeout", timeout.String(), summary}, Timeout: timeout + 30*time.Second})
	if err != nil {
		return proto.Notification{}, fmt.Errorf("no notification %q (%q) within %v: %w", summary, body, timeout, err)
	}
	var ns []proto.Notification
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		return proto.Notification{}, err
	}
	for _, n := range ns {
		if n.Seq > after && summaryMatches(n.Summary, summary) && strings.Contains(n.Body, body) {
			return n, nil
		}
	}
	return proto.Notification{}, errors.New("notification server answered without the notification")
}

// Click invokes an action of an open notification, as the user clicking its button.
func (w *World) Click(ctx context.Context, n proto.Notification, key string) error {
	_, err := w.G.User(ctx, guestTool, "notifications", "click", strconv.FormatUint(uint64(n.ID), 10), key)
	return err
}

// SetPinentry scripts the passphrase dialog: the answers of its next invocations, in order.
func (w *World) SetPinentry(ctx context.Context, answers ...string) error {
	b, _ := json.Marshal(answers)
	_, err := w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", "cat >" + pinentryDir + "/answers && : >" + pinentryDir + "/counter && : >" + pinentryDir + "/log && chown amnesia: " + pinentryDir + "/counter " + pinentryDir + "/log"}, Stdin: string(b)})
	return err
}

// PinentryLog returns what the passphrase dialogs were told since SetPinentry, and how many
// were shown.
func (w *World) PinentryLog(ctx context.Context) (string, int, error) {
	log, err := w.G.Root(ctx, "cat", pinentryDir+"/log")
	if err != nil {
		return "", 0, err
	}
	counter, err := w.G.Root(ctx, "cat", pinentryDir+"/counter")
	return log, len(counter), err
}

// StartAgent starts the agent's systemd user unit in the session and waits until it runs.
func (w *World) StartAgent(ctx context.Context) error {
	if _, err := w.G.User(ctx, "systemctl", "--user", "start", "tails-backup-agent.service"); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return w.G.WaitUntil(wctx, 300*time.Millisecond, Cmd{Argv: []string{"sh", "-c",
		"journalctl -q -o cat _SYSTEMD_USER_UNIT=tails-backup-agent.service _PID=$(systemctl --user -M amnesia@ show -p MainPID --value tails-backup-agent.service) | grep -q 'agent started'"}})
}

// StopAgent stops the agent.
func (w *World) StopAgent(ctx context.Context) error {
	_, err := w.G.User(ctx, "systemctl", "--user", "stop", "tails-backup-agent.service")
	return err
}

// AgentLog returns the agent's journal.
func (w *World) AgentLog(ctx context.Context) string {
	out, _ := w.G.Root(ctx, "journalctl", "-q", "-o", "short-monotonic", "_SYSTEMD_USER_UNIT=tails-backup-agent.service")
	return out
}

// Sha256 hashes a stick image on the host.
func Sha256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SaveLogs writes the guest's journal (agent, helper, udisks, polkit...) to the run folder,
// as journal-<name>.log.
func (w *World) SaveLogs(ctx context.Context, name string) {
	out, err := w.G.Root(ctx, "journalctl", "-q", "-o", "short-monotonic", "-b")
	if err != nil {
		w.Log.Logf("cannot read the guest's journal: %v", err)
		return
	}
	p := filepath.Join(w.Dir, "journal-"+name+".log")
	if err := os.WriteFile(p, []byte(out), 0o644); err == nil {
		w.Log.Logf("guest journal: %s", p)
	}
}

// summaryMatches tells whether summary contains one of the alternatives of want, separated by
// "|", as the guest's notification server matches them.
func summaryMatches(summary, want string) bool {
	for _, w := range strings.Split(want, "|") {
		if strings.Contains(summary, w) {
			return true
		}
	}
	return false
}
