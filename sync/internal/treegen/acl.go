package treegen

import (
	"encoding/binary"
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// POSIX ACL tags, as stored by Linux in the system.posix_acl_* xattrs (include/uapi/linux/posix_acl.h).
const (
	ACLUserObj  uint16 = 0x01
	ACLUser     uint16 = 0x02
	ACLGroupObj uint16 = 0x04
	ACLGroup    uint16 = 0x08
	ACLMask     uint16 = 0x10
	ACLOther    uint16 = 0x20
)

// Xattr names of the access and default ACLs.
const (
	XattrACLAccess  = "system.posix_acl_access"
	XattrACLDefault = "system.posix_acl_default"
)

// aclVersion is the only header version the kernel accepts.
const aclVersion = 2

// aclUndefinedID is the id stored for entries that name no user or group.
const aclUndefinedID = 0xFFFFFFFF

// ACLEntry is one entry of a POSIX ACL. ID is only meaningful for ACLUser and ACLGroup.
type ACLEntry struct {
	Tag  uint16
	Perm uint16 // 4 read, 2 write, 1 execute
	ID   uint32
}

// EncodeACL returns the binary xattr form of an ACL: a little-endian u32 version 2 header followed
// by {tag u16, perm u16, id u32} entries. Entries are sorted by tag then id, as the kernel demands.
func EncodeACL(entries []ACLEntry) []byte {
	sorted := append([]ACLEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Tag != sorted[j].Tag {
			return sorted[i].Tag < sorted[j].Tag
		}
		return sorted[i].ID < sorted[j].ID
	})
	buf := make([]byte, 4+8*len(sorted))
	binary.LittleEndian.PutUint32(buf, aclVersion)
	for i, e := range sorted {
		id := e.ID
		if e.Tag != ACLUser && e.Tag != ACLGroup {
			id = aclUndefinedID
		}
		off := 4 + 8*i
		binary.LittleEndian.PutUint16(buf[off:], e.Tag)
		binary.LittleEndian.PutUint16(buf[off+2:], e.Perm)
		binary.LittleEndian.PutUint32(buf[off+4:], id)
	}
	return buf
}

// DecodeACL parses the binary xattr form of an ACL.
func DecodeACL(b []byte) ([]ACLEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("acl xattr of %d bytes: not a header plus whole entries", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != aclVersion {
		return nil, fmt.Errorf("acl xattr version %d, want %d", v, aclVersion)
	}
	var out []ACLEntry
	for off := 4; off < len(b); off += 8 {
		e := ACLEntry{
			Tag:  binary.LittleEndian.Uint16(b[off:]),
			Perm: binary.LittleEndian.Uint16(b[off+2:]),
			ID:   binary.LittleEndian.Uint32(b[off+4:]),
		}
		if e.Tag != ACLUser && e.Tag != ACLGroup {
			e.ID = 0
		}
		out = append(out, e)
	}
	return out, nil
}

// aclWithMask completes the minimal entries of an ACL with a mask that is the union of the group
// class (named users, owning group, named groups), which is what setfacl computes by default.
func aclWithMask(owner, group, other uint16, named ...ACLEntry) []ACLEntry {
	mask := group
	for _, n := range named {
		mask |= n.Perm
	}
	acl := []ACLEntry{{Tag: ACLUserObj, Perm: owner}, {Tag: ACLGroupObj, Perm: group}, {Tag: ACLOther, Perm: other}}
	acl = append(acl, named...)
	if len(named) > 0 {
		acl = append(acl, ACLEntry{Tag: ACLMask, Perm: mask})
	}
	return acl
}

// modeForACL returns perm with its group bits replaced by the ACL's mask (or owning group when the
// ACL has no mask), so that a chmod after setting the ACL does not change the ACL.
func modeForACL(perm uint32, acl []ACLEntry) uint32 {
	var group uint16
	for _, e := range acl {
		if e.Tag == ACLGroupObj {
			group = e.Perm
		}
	}
	for _, e := range acl {
		if e.Tag == ACLMask {
			group = e.Perm
		}
	}
	return perm&^0o070 | uint32(group)<<3
}

// setACL writes an ACL xattr on path without following a final symlink.
func setACL(path, name string, acl []ACLEntry) error {
	if err := unix.Lsetxattr(path, name, EncodeACL(acl), 0); err != nil {
		return fmt.Errorf("set %s on %s: %w", name, path, err)
	}
	return nil
}
