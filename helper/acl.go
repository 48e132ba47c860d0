//go:build linux

package helper

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// POSIX ACL tags and permissions of the Linux xattr format (linux/posix_acl_xattr.h).
const (
	aclXattrVersion = 2
	aclUserObj      = 0x01
	aclUser         = 0x02
	aclGroupObj     = 0x04
	aclGroup        = 0x08
	aclMask         = 0x10
	aclOther        = 0x20
	aclUndefinedID  = 0xffffffff

	aclRead  = 4
	aclWrite = 2
	aclExec  = 1

	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
)

// ACLEntry is one entry of a POSIX ACL.
type ACLEntry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// EncodeACL encodes entries, which must be in the kernel's order (by tag, then by ID), in the
// format of the system.posix_acl_access xattr: a little-endian u32 version 2, then each entry
// as u16 tag, u16 permissions, u32 ID.
func EncodeACL(entries []ACLEntry) []byte {
	b := make([]byte, 4, 4+8*len(entries))
	binary.LittleEndian.PutUint32(b, aclXattrVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.Tag)
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, e.ID)
	}
	return b
}

// PersistenceRootACL is the access ACL of a Tails Persistent Storage root: owner and group rwx,
// amnesia --x (so it can reach the feature folders it owns), others nothing.
func PersistenceRootACL() []byte {
	const rwx = aclRead | aclWrite | aclExec
	return EncodeACL([]ACLEntry{
		{aclUserObj, rwx, aclUndefinedID},
		{aclUser, aclExec, tails.AmnesiaUID},
		{aclGroupObj, rwx, aclUndefinedID},
		{aclMask, rwx, aclUndefinedID},
		{aclOther, 0, aclUndefinedID},
	})
}

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
	if err := unix.Fsetxattr(fd, xattrACLAccess, PersistenceRootACL(), 0); err != nil {
		return fmt.Errorf("set the ACL: %w", err)
	}
	if err := unix.Fremovexattr(fd, xattrACLDefault); err != nil && !errors.Is(err, unix.ENODATA) {
		return fmt.Errorf("remove the default ACL: %w", err)
	}
	// The ACL's mask set the group bits; make sure the mode is exactly 0770.
	if err := unix.Fchmod(fd, tails.PersistenceRootMode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return unix.Fsync(fd)
}
