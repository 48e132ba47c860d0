// Package secmem keeps secrets (passphrases) out of other processes' reach, core dumps and swap,
// as far as a Go program can.
//
// What it cannot do: Go strings cannot be wiped, and a secret converted to one (as godbus needs
// for udisks2's Unlock) stays in the heap until the memory is reused. On Tails the RAM is wiped
// at shutdown and there is no swap, so the locks here matter most on other systems; the
// non-dumpable flag matters everywhere.
package secmem

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Harden makes this process non-dumpable (prctl PR_SET_DUMPABLE 0). The kernel then writes no
// core dump of it, and /proc/PID/mem, environ, maps and the like become root's: another
// process of the same user (any program of amnesia) can no longer read the memory that held a
// passphrase, nor ptrace it, even where Yama's ptrace_scope is 0. The flag is reset by execve
// of a set-uid program or a change of credentials, never by the process's own work.
func Harden() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("make the process non-dumpable: %w", err)
	}
	return nil
}

// Dumpable tells whether the process is dumpable (PR_GET_DUMPABLE). Note that a Go process
// that starts a child with other credentials (SysProcAttr.Credential) becomes non-dumpable
// itself: Go forks with CLONE_VM, the flag belongs to the shared address space, and the
// child's setuid sets it to fs.suid_dumpable (0) before its execve.
func Dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return false, fmt.Errorf("read the dumpable flag: %w", err)
	}
	return v != 0, nil
}

// Size is the size of every buffer New returns: one page. Go puts 4096-byte objects in spans
// of their own size class, two to an 8 KiB span, so each starts on a page boundary and shares
// its page with no other object: locking and unlocking it never touches another buffer's page.
const Size = 4096

// New returns a zeroed buffer of Size bytes, with length n (at most Size), locked in RAM when
// the process may lock it (mlock fails past RLIMIT_MEMLOCK, 8 MiB by default: the buffer is
// then simply not locked, which costs nothing on a system without swap). Its contents must be
// cleared with Wipe, which also unlocks it. Go's heap does not move objects, so the lock holds
// for the buffer's life.
func New(n int) []byte {
	if n < 0 || n > Size {
		panic(fmt.Sprintf("secmem.New(%d): a secret buffer holds at most %d bytes", n, Size))
	}
	b := make([]byte, Size)
	_ = unix.Mlock(b) // best effort, see above
	return b[:n:Size]
}

// Wipe clears the whole of b's array (to its capacity) and unlocks its pages. It is safe on any
// slice, locked or not (munlock of unlocked pages does nothing), and on nil.
func Wipe(b []byte) {
	if cap(b) == 0 {
		return
	}
	full := b[:cap(b)]
	clear(full)
	if cap(b) == Size && uintptr(unsafe.Pointer(&full[0]))%Size == 0 {
		_ = unix.Munlock(full)
	}
}

// LockedBytes is how much memory of this process is locked in RAM (VmLck of
// /proc/self/status), for tests and diagnostics.
func LockedBytes() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmLck:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read VmLck: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read VmLck: not in /proc/self/status")
}
