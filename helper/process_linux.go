//go:build linux

package helper

import (
	"errors"
	"fmt"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// The process the helper runs in comes from its caller: sudo hands the command the resource
// limits of the process that ran sudo (Tails' sudoers set no rlimit_*), and relays to it the
// signals that process sends to sudo, SIGTSTP among them. Any process of amnesia may run the
// helper, so the caller may be hostile and choose them to make the root helper fail or stop in
// the middle of an operation. ResetProcess undoes all of it before the helper reads its request.

// The values ResetProcess sets.
const (
	// helperNoFile is the open-file limit: the mirror holds a few descriptors per worker and per
	// directory level, far below it.
	helperNoFile = 1 << 16
	// leastNoFile is the open-file limit the helper still runs with when it cannot raise the
	// hard limit (no CAP_SYS_RESOURCE, in a container).
	leastNoFile = 4096
	// helperStack is Linux's default stack limit: the main thread's stack grows within it.
	helperStack = 8 << 20
)

// processLimit is one resource limit ResetProcess sets.
type processLimit struct {
	resource   int
	name       string
	soft, hard uint64
	// least is the lowest soft limit the helper accepts to run with when the hard limit is below
	// hard and cannot be raised.
	least uint64
}

// processLimits are the limits the helper runs with, whatever its caller's:
//   - RLIMIT_CPU: at the hard limit the kernel sends SIGKILL, at a time the caller chose.
//   - RLIMIT_FSIZE: a write beyond it fails with EFBIG (Go ignores SIGXFSZ), so the caller could
//     make any file, the marker among them, fail to be written.
//   - RLIMIT_AS, RLIMIT_DATA: an allocation beyond them kills a Go program (out of memory).
//   - RLIMIT_NOFILE: opens beyond it fail with EMFILE. Go raises the soft limit to the hard one
//     at start (package syscall's init), but a caller can lower the hard limit too.
//   - RLIMIT_STACK: a tiny limit would crash the main thread when its stack grows; an unlimited
//     one changes the memory layout of the programs the helper runs.
//   - RLIMIT_CORE: 0, so that no core dump of a root process that handles the Persistent
//     Storage's data is ever written (with PR_SET_DUMPABLE below, which also stops the dumps
//     that a core_pattern pipe would take whatever this limit says).
//
// Left alone: RLIMIT_NPROC (not enforced for root), RLIMIT_MEMLOCK (root has CAP_IPC_LOCK and
// the helper locks nothing), and the limits of features the helper does not use (message
// queues, real-time scheduling, pending signals, file locks).
func processLimits() []processLimit {
	const inf = unix.RLIM_INFINITY
	return []processLimit{
		{unix.RLIMIT_CPU, "RLIMIT_CPU", inf, inf, inf},
		{unix.RLIMIT_FSIZE, "RLIMIT_FSIZE", inf, inf, inf},
		{unix.RLIMIT_AS, "RLIMIT_AS", inf, inf, inf},
		{unix.RLIMIT_DATA, "RLIMIT_DATA", inf, inf, inf},
		{unix.RLIMIT_NOFILE, "RLIMIT_NOFILE", helperNoFile, helperNoFile, leastNoFile},
		{unix.RLIMIT_STACK, "RLIMIT_STACK", helperStack, inf, helperStack},
		{unix.RLIMIT_CORE, "RLIMIT_CORE", 0, 0, 0},
	}
}

// ErrLimit is wrapped by ResetProcess's error when a limit set by the caller is too low and
// cannot be raised (the process lacks CAP_SYS_RESOURCE): the helper must not start an
// operation it could not finish.
var ErrLimit = errors.New("resource limit too low")

// ResetProcess gives the process the helper's own resource limits (processLimits), makes it
// not dumpable, and makes it ignore the stop signals. `tails-backup helper` calls it first,
// before it reads the request; it changes the whole process, which is why Run does not.
func ResetProcess() error {
	for _, l := range processLimits() {
		if err := l.set(); err != nil {
			return err
		}
	}
	// Not dumpable: no core dump at all (the kernel checks this before any core_pattern), and
	// no ptrace or /proc/PID access but by root.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_DUMPABLE: %w", err)
	}
	// sudo relays SIGTSTP to the command (and a caller may send SIGTTIN or SIGTTOU): stopped,
	// the helper would hold the backup's lock, and leave the copy half-done, for as long as the
	// caller likes. Ignored, they do nothing; the programs the helper runs inherit that. A
	// cancel is a cancel line or SIGTERM, SIGINT, SIGHUP, which end the operation cleanly.
	signal.Ignore(syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)
	return nil
}

// set sets the limit. Raising a hard limit needs CAP_SYS_RESOURCE, which root has on Tails; in
// a container without it, the soft limit goes as high as the hard one allows, if that is
// enough.
func (l processLimit) set() error {
	want := unix.Rlimit{Cur: l.soft, Max: l.hard}
	// unix.Prlimit goes through package syscall, which then no longer lowers the open-file
	// limit of the programs the helper runs back to the caller's.
	err := unix.Prlimit(0, l.resource, &want, nil)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("set %s: %w", l.name, err)
	}
	var cur unix.Rlimit
	if err := unix.Prlimit(0, l.resource, nil, &cur); err != nil {
		return fmt.Errorf("get %s: %w", l.name, err)
	}
	if cur.Max < l.least {
		return fmt.Errorf("%s is %s and cannot be raised without CAP_SYS_RESOURCE: %w", l.name, formatLimit(cur.Max), ErrLimit)
	}
	want = unix.Rlimit{Cur: min(l.soft, cur.Max), Max: min(l.hard, cur.Max)}
	if err := unix.Prlimit(0, l.resource, &want, nil); err != nil {
		return fmt.Errorf("set %s: %w", l.name, err)
	}
	return nil
}

func formatLimit(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return fmt.Sprint(v)
}
