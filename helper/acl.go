//go:build linux

package helper

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// setPersistenceRoot gives the directory open as fd the ownership, mode and ACL Tails expects
// of a Persistent Storage root: root:root, 0770, ACL user:amnesia:--x and no default ACL.
// Everything goes through the fd: no path is resolved.
func setPersistenceRoot(fd int) error {
	if err := unix.Fchown(fd, 0, 0); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, tails.PersistenceRootMode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := unix.Fsetxattr(fd, tails.ACLXattrAccess, tails.EncodeACL(tails.PersistenceRootACL(0)), 0); err != nil {
		return fmt.Errorf("set the ACL: %w", err)
	}
	if err := unix.Fremovexattr(fd, tails.ACLXattrDefault); err != nil && !errors.Is(err, unix.ENODATA) {
		return fmt.Errorf("remove the default ACL: %w", err)
	}
	// The ACL's mask set the group bits; make sure the mode is exactly 0770.
	if err := unix.Fchmod(fd, tails.PersistenceRootMode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return unix.Fsync(fd)
}
