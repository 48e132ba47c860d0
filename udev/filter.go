package udev

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Match selects events by subsystem and, when DevType is not empty, by device type.
type Match struct {
	Subsystem string // e.g. "block"
	DevType   string // e.g. "disk" or "partition"; "" matches any
}

// matchAny reports whether d passes one of matches; no matches pass everything.
func matchAny(matches []Match, d *Device) bool {
	if len(matches) == 0 {
		return true
	}
	for _, m := range matches {
		if m.Subsystem == d.Subsystem && (m.DevType == "" || m.DevType == d.DevType) {
			return true
		}
	}
	return false
}

// maxFilterMatches keeps the BPF program well under the kernel's 4096 instructions.
const maxFilterMatches = 64

// socketFilter builds the classic BPF program libudev attaches (sd_device_monitor_filter_update):
// packets with udevd's magic must carry the hash of a wanted subsystem (and devtype);
// other packets (kernel format) pass, and the in-process check judges them. The kernel
// then wakes us only for wanted udevd events. Hash collisions pass, so the in-process
// check stays mandatory.
func socketFilter(matches []Match) ([]unix.SockFilter, error) {
	if len(matches) == 0 {
		return nil, nil
	}
	if len(matches) > maxFilterMatches {
		return nil, fmt.Errorf("socket filter: %d matches, at most %d", len(matches), maxFilterMatches)
	}
	const (
		ldAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		retK   = unix.BPF_RET | unix.BPF_K
		pass   = 0xffffffff
		drop   = 0
	)
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: jeqK, Jt: jt, Jf: jf, K: k}
	}
	prog := []unix.SockFilter{
		stmt(ldAbsW, offMagic),
		jump(libudevMagic, 1, 0),
		stmt(retK, pass), // not from udevd: let the process decide
	}
	for _, m := range matches {
		prog = append(prog, stmt(ldAbsW, offSubsystemHash))
		if m.DevType == "" {
			prog = append(prog, jump(murmurHash2(m.Subsystem), 0, 1))
		} else {
			prog = append(prog,
				jump(murmurHash2(m.Subsystem), 0, 3),
				stmt(ldAbsW, offDevTypeHash),
				jump(murmurHash2(m.DevType), 0, 1))
		}
		prog = append(prog, stmt(retK, pass))
	}
	return append(prog, stmt(retK, drop)), nil
}

// attachFilter installs prog on the socket fd; an empty prog installs nothing.
func attachFilter(fd int, prog []unix.SockFilter) error {
	if len(prog) == 0 {
		return nil
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach socket filter: %w", err)
	}
	return nil
}
