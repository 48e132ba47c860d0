package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// BusyApp is a running application that holds files of an active Persistent Storage feature
// open and should be closed before copying.
type BusyApp struct {
	App     tails.App
	Feature tails.Feature
	// PIDs are its processes, ascending.
	PIDs []int
	// Closable: all its processes belong to the session user, who can ask them to quit. A
	// system app (root's) can only be waited for.
	Closable bool
}

// Quiescer finds the applications to close before copying and closes them, politely.
// Implemented by *ProcQuiescer and FakeQuiescer.
type Quiescer interface {
	// ActiveFeatures returns the Persistent Storage features that are turned on.
	ActiveFeatures(ctx context.Context) ([]tails.Feature, error)
	// BusyApps returns the running applications of these features.
	BusyApps(ctx context.Context, features []tails.Feature) ([]BusyApp, error)
	// CloseApp asks an application to quit and waits up to grace for it; it returns an error
	// wrapping ErrStillRunning if it is still running then. It never kills.
	CloseApp(ctx context.Context, app BusyApp, grace time.Duration) error
}

// ErrStillRunning: the application did not quit in time (it may be asking the user to save
// something). The caller asks the user again; nothing was killed.
var ErrStillRunning = errors.New("the application is still running")

// ErrNoPersistentStorage: the Persistent Storage is not unlocked, so no feature is active.
var ErrNoPersistentStorage = errors.New("the Persistent Storage is not unlocked")

// StillRunningError is returned by CloseApp when some processes outlived the grace period.
type StillRunningError struct {
	App  tails.App
	PIDs []int // the processes still running
}

func (e *StillRunningError) Error() string {
	return fmt.Sprintf("%s is still running (processes %v)", e.App.Name, e.PIDs)
}

// Unwrap returns ErrStillRunning.
func (e *StillRunningError) Unwrap() error { return ErrStillRunning }

// ProcQuiescer is the Quiescer of a running Tails: it reads the mount table and /proc, and
// closes applications with SIGTERM through pidfds (so a recycled PID is never signalled).
type ProcQuiescer struct {
	// ProcRoot is where proc is mounted ("/proc"); tests point it at a fake tree.
	ProcRoot string
	// Mountinfo is the mount table to read ("/proc/self/mountinfo").
	Mountinfo string
	// PersistentStorage is where the Persistent Storage is mounted (tails.PersistentStorageMount).
	PersistentStorage string
	// UID is the session user; only its processes are considered (it cannot signal others).
	UID int
	// Bindings, when not nil, are the parsed persistence.conf, used instead of the mount
	// table (root can read persistence.conf; amnesia cannot).
	Bindings []tails.Binding
	log      *logrus.Entry
}

// NewProcQuiescer returns a ProcQuiescer for the running system and the current user.
func NewProcQuiescer(log *logrus.Entry) *ProcQuiescer {
	return &ProcQuiescer{
		ProcRoot:          "/proc",
		Mountinfo:         "/proc/self/mountinfo",
		PersistentStorage: tails.PersistentStorageMount,
		UID:               os.Getuid(),
		log:               log,
	}
}

// ActiveFeatures returns the active features: from q.Bindings when set, otherwise from the
// mount table (see ActiveFeaturesFromMountinfo).
func (q *ProcQuiescer) ActiveFeatures(ctx context.Context) ([]tails.Feature, error) {
	if q.Bindings != nil {
		return tails.ActiveFeatures(q.Bindings), nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(q.Mountinfo)
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	defer f.Close()
	return ActiveFeaturesFromMountinfo(f, q.PersistentStorage)
}

// ActiveFeaturesFromMountinfo derives the active features from a mount table in the format of
// /proc/self/mountinfo, which the session user can read, unlike persistence.conf: each feature
// folder of the Persistent Storage mounted at psMount is bind-mounted on its destination, so a
// mount of the same device whose root is "/<folder>" (relative to the root mounted at psMount)
// means the feature whose source is <folder> is active. Features using "link" (dotfiles) make
// symlinks, not mounts, and are not seen; none of them has applications to close. It returns
// ErrNoPersistentStorage if nothing is mounted at psMount.
func ActiveFeaturesFromMountinfo(r io.Reader, psMount string) ([]tails.Feature, error) {
	mounts, err := tails.ParseMountInfo(r)
	if err != nil {
		return nil, err
	}
	var ps *tails.Mount
	for i := range mounts {
		if mounts[i].MountPoint == psMount {
			ps = &mounts[i] // the last one is on top
		}
	}
	if ps == nil {
		return nil, fmt.Errorf("%w: nothing is mounted on %s", ErrNoPersistentStorage, psMount)
	}
	var bindings []tails.Binding
	for _, m := range mounts {
		if m.Major != ps.Major || m.Minor != ps.Minor || m.MountPoint == psMount {
			continue
		}
		rel, ok := relativeTo(ps.Root, m.Root)
		if !ok || rel == "" {
			continue
		}
		bindings = append(bindings, tails.Binding{Destination: m.MountPoint, Source: rel})
	}
	return tails.ActiveFeatures(bindings), nil
}

// relativeTo returns p relative to root, if p is strictly below it.
func relativeTo(root, p string) (string, bool) {
	root, p = path.Clean(root), path.Clean(p)
	if root == "/" {
		return strings.TrimPrefix(p, "/"), p != "/"
	}
	rest, ok := strings.CutPrefix(p, root+"/")
	return rest, ok
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

// commLen is the longest process name the kernel keeps (TASK_COMM_LEN - 1).
const commLen = 15

// BusyApps scans the processes of q.UID and returns, for each application of the features,
// its running processes; applications that do not run are left out.
func (q *ProcQuiescer) BusyApps(ctx context.Context, features []tails.Feature) ([]BusyApp, error) {
	procs, err := q.processes(ctx)
	if err != nil {
		return nil, err
	}
	var out []BusyApp
	for _, f := range features {
		for _, app := range f.Apps {
			var pids []int
			closable := true
			for _, p := range procs {
				mine := p.uid == q.UID
				if !matchProcess(p.comm, app.Processes) || !(mine || app.System && p.uid == 0) {
					continue
				}
				pids = append(pids, p.pid)
				closable = closable && mine
			}
			if len(pids) > 0 {
				slices.Sort(pids)
				out = append(out, BusyApp{App: app, Feature: f, PIDs: pids, Closable: closable})
			}
		}
	}
	return out, nil
}

// matchProcess tells whether comm is one of names, comparing as the kernel truncates.
func matchProcess(comm string, names []string) bool {
	for _, n := range names {
		if len(n) > commLen {
			n = n[:commLen]
		}
		if comm == n {
			return true
		}
	}
	return false
}

type procInfo struct {
	pid  int
	comm string
	uid  int
}

// processes lists the live (not zombie) processes of q.UID and of root (system apps).
func (q *ProcQuiescer) processes(ctx context.Context) ([]procInfo, error) {
	ents, err := os.ReadDir(q.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []procInfo
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		comm, uid, ok, err := q.inspect(pid)
		if err != nil {
			q.log.WithError(err).WithField("pid", pid).Debug("cannot inspect process")
			continue
		}
		if ok {
			out = append(out, procInfo{pid: pid, comm: comm, uid: uid})
		}
	}
	return out, nil
}

// inspect returns the name and user of process pid, and whether it is a live process of
// q.UID or root. A process that vanished is not an error.
func (q *ProcQuiescer) inspect(pid int) (comm string, uid int, ok bool, err error) {
	dir := filepath.Join(q.ProcRoot, strconv.Itoa(pid))
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return "", 0, false, nil
		}
		return "", 0, false, err
	}
	uid, state, err := parseStatus(status)
	if err != nil {
		return "", 0, false, err
	}
	if (uid != q.UID && uid != 0) || state == 'Z' || state == 'X' {
		return "", 0, false, nil
	}
	c, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return "", 0, false, nil
		}
		return "", 0, false, err
	}
	return strings.TrimSuffix(string(c), "\n"), uid, true, nil
}

// parseStatus returns the real uid and the state letter from /proc/PID/status.
func parseStatus(b []byte) (uid int, state byte, err error) {
	uid = -1
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "Uid":
			f := bytes.Fields(v)
			if len(f) == 0 {
				return 0, 0, errors.New("status: empty Uid")
			}
			if uid, err = strconv.Atoi(string(f[0])); err != nil {
				return 0, 0, fmt.Errorf("status: Uid: %w", err)
			}
		case "State":
			if f := bytes.TrimSpace(v); len(f) > 0 {
				state = f[0]
			}
		}
	}
	if uid < 0 {
		return 0, 0, errors.New("status: no Uid")
	}
	return uid, state, nil
}

// fallbackPoll is how often CloseApp checks processes without pidfds (kernels before 5.3).
const fallbackPoll = 50 * time.Millisecond

// CloseApp sends SIGTERM to the processes of app that still are what BusyApps found (same
// name, same user; a PID reused meanwhile is left alone) and waits until they are gone, up to
// grace. It returns nil when all are gone, an error wrapping ErrStillRunning (a
// *StillRunningError) when some remain, ctx.Err() wrapped when ctx ends first. It never sends
// SIGKILL: an application may be asking the user about unsaved work.
func (q *ProcQuiescer) CloseApp(ctx context.Context, app BusyApp, grace time.Duration) error {
	log := q.log.WithField("app", app.App.Name)
	var waits []pidWait
	defer func() {
		for _, w := range waits {
			if w.fd >= 0 {
				unix.Close(w.fd)
			}
		}
	}()
	for _, pid := range app.PIDs {
		w, err := q.terminate(pid, app.App)
		if err != nil {
			return fmt.Errorf("close %s: %w", app.App.Name, err)
		}
		if w != nil {
			waits = append(waits, *w)
		}
	}
	log.WithField("pids", app.PIDs).Info("asked the application to quit")
	left, err := q.waitGone(ctx, waits, grace)
	if err != nil {
		return fmt.Errorf("close %s: %w", app.App.Name, err)
	}
	if len(left) > 0 {
		log.WithField("pids", left).Info("the application is still running")
		return &StillRunningError{App: app.App, PIDs: left}
	}
	return nil
}

// pidWait is a process to wait for: by pidfd when fd >= 0, by polling /proc otherwise.
type pidWait struct {
	pid int
	fd  int
}

// terminate sends SIGTERM to pid if it still is a process of app; it returns nil if the
// process is gone or is not app's any more.
func (q *ProcQuiescer) terminate(pid int, app tails.App) (*pidWait, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil, nil
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
		fd = -1 // no pidfd: check, then kill(2), accepting the tiny PID reuse race
	case err != nil:
		return nil, fmt.Errorf("open process %d: %w", pid, err)
	}
	// With the pidfd open, the identity check below is about the very process signalled.
	// Only the session user's own processes are ever signalled.
	comm, uid, ok, err := q.inspect(pid)
	if err != nil || !ok || uid != q.UID || !matchProcess(comm, app.Processes) {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	if fd >= 0 {
		err = unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
	} else {
		err = unix.Kill(pid, unix.SIGTERM)
	}
	if errors.Is(err, unix.ESRCH) {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, nil
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("signal process %d: %w", pid, err)
	}
	return &pidWait{pid: pid, fd: fd}, nil
}

// waitGone waits until the processes have exited, up to grace, and returns those left.
func (q *ProcQuiescer) waitGone(ctx context.Context, waits []pidWait, grace time.Duration) ([]int, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	defer unix.Close(efd)
	stop := context.AfterFunc(ctx, func() {
		unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	})
	defer stop()
	deadline := time.Now().Add(grace)
	gone := make([]bool, len(waits))
	for {
		var fds []unix.PollFd
		var idx []int
		polling := false
		for i, w := range waits {
			if gone[i] {
				continue
			}
			if w.fd < 0 {
				comm, _, ok, _ := q.inspect(w.pid)
				if !ok || comm == "" {
					gone[i] = true
					continue
				}
				polling = true
				continue
			}
			fds = append(fds, unix.PollFd{Fd: int32(w.fd), Events: unix.POLLIN})
			idx = append(idx, i)
		}
		var left []int
		for i, w := range waits {
			if !gone[i] {
				left = append(left, w.pid)
			}
		}
		if len(left) == 0 {
			return nil, nil
		}
		if err := ctx.Err(); err != nil {
			return left, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return left, nil
		}
		if polling {
			remaining = min(remaining, fallbackPoll)
		}
		fds = append(fds, unix.PollFd{Fd: int32(efd), Events: unix.POLLIN})
		ms := int((remaining + time.Millisecond - 1) / time.Millisecond)
		_, err := unix.Poll(fds, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return left, fmt.Errorf("wait for processes: %w", err)
		}
		for j, i := range idx {
			if fds[j].Revents != 0 {
				gone[i] = true
			}
		}
	}
}
