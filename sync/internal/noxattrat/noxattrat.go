//go:build linux

// Package noxattrat makes the *xattrat system calls of Linux 6.13 fail with ENOSYS in the calling
// process, by a seccomp filter, so that tests and benchmarks take the path of older kernels (Tails
// 7 runs Linux 6.12) on any kernel.
package noxattrat

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The numbers of the system calls the filter refuses (Linux 6.13), the same on x86-64 and in the
// generic table of arm64.
const (
	Setxattrat    = 463
	Getxattrat    = 464
	Listxattrat   = 465
	Removexattrat = 466
)

// auditArch is the AUDIT_ARCH_* value of the architecture this binary was built for, which the
// filter checks so that a system call number is read in the table it belongs to.
func auditArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	}
	return 0, fmt.Errorf("no seccomp filter for %s: the *xattrat numbers are only known for amd64 and arm64", runtime.GOARCH)
}

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// program returns the BPF program: on this architecture, each of the *xattrat calls returns ENOSYS, and
// everything else is allowed. A foreign architecture's calls (x32, say) are allowed too: the
// filter only changes the calls this binary makes.
func program(arch uint32) []unix.SockFilter {
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	refused := []uint32{Setxattrat, Getxattrat, Listxattrat, Removexattrat}
	n := uint8(len(refused))
	p := []unix.SockFilter{
		stmt(ld, offArch),
		jump(jeq, arch, 0, n+1), // another architecture: to the ALLOW at the end
		stmt(ld, offNr),
	}
	for i, nr := range refused {
		// Matched: skip the remaining comparisons and the ALLOW, to the ERRNO.
		p = append(p, jump(jeq, nr, n-uint8(i), 0))
	}
	return append(p,
		stmt(ret, unix.SECCOMP_RET_ALLOW),
		stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)),
	)
}

// Install puts the filter on every thread of the calling process (SECCOMP_FILTER_FLAG_TSYNC) and
// on every process it starts or executes from now on; it cannot be removed. It sets no_new_privs,
// which an unprivileged process needs to install a filter, and which also keeps setuid programs
// it executes from gaining privileges.
func Install() error {
	arch, err := auditArch()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
	}
	prog := program(arch)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp SECCOMP_SET_MODE_FILTER: %w", errno)
	}
	return nil
}
