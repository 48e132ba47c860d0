package tails

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The POSIX ACL xattr format (linux/posix_acl_xattr.h): the names of the xattrs, the tags of
// the entries and the ID of the entries that have none.
const (
	ACLXattrAccess  = "system.posix_acl_access"
	ACLXattrDefault = "system.posix_acl_default"
	aclVersion      = 2
	ACLUserObj      = 0x01
	ACLUser         = 0x02
	ACLGroupObj     = 0x04
	ACLGroup        = 0x08
	ACLMask         = 0x10
	ACLOther        = 0x20
	ACLUndefinedID  = 0xffffffff
)

// ACLEntry is one entry of a POSIX ACL: a tag, permissions (r=4 w=2 x=1) and, for ACLUser and
// ACLGroup, an ID.
type ACLEntry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// PersistenceRootACL is the access ACL Tails gives a Persistent Storage root: owner and group
// rwx, amnesia --x (so it can reach the feature folders it owns), others other (nothing; old
// volumes without this ACL gave others r-x through the mode).
func PersistenceRootACL(other uint16) []ACLEntry {
	return []ACLEntry{
		{ACLUserObj, 7, ACLUndefinedID},
		{ACLUser, 1, AmnesiaUID},
		{ACLGroupObj, 7, ACLUndefinedID},
		{ACLMask, 7, ACLUndefinedID},
		{ACLOther, other, ACLUndefinedID},
	}
}

// MountedRootACL is PersistenceRootACL as Tails 7 leaves it on the Persistent Storage of another
// stick (a backup) that amnesia mounted: a service bound to the mount /media/amnesia/TailsData
// runs `setfacl -m user:amnesia:rx` on its root as soon as it is mounted, so that amnesia can
// list it. Tails makes this change itself, at every such mount, and boots such a stick: it is no
// fault of the backup.
func MountedRootACL(other uint16) []ACLEntry {
	acl := PersistenceRootACL(other)
	acl[1].Perm = 5
	return acl
}

// EncodeACL encodes entries, which must be in the kernel's order (by tag, then by ID), as the
// value of a system.posix_acl_* xattr: a little-endian u32 version 2, then each entry as u16
// tag, u16 permissions, u32 ID.
func EncodeACL(entries []ACLEntry) []byte {
	b := make([]byte, 4, 4+8*len(entries))
	binary.LittleEndian.PutUint32(b, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.Tag)
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, e.ID)
	}
	return b
}

// DecodeACL decodes the value of a system.posix_acl_* xattr.
func DecodeACL(b []byte) ([]ACLEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("%d bytes is not a POSIX ACL", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != aclVersion {
		return nil, fmt.Errorf("POSIX ACL version %d, want %d", v, aclVersion)
	}
	var out []ACLEntry
	for i := 4; i < len(b); i += 8 {
		out = append(out, ACLEntry{binary.LittleEndian.Uint16(b[i:]), binary.LittleEndian.Uint16(b[i+2:]), binary.LittleEndian.Uint32(b[i+4:])})
	}
	return out, nil
}

// FormatACL writes an ACL the way getfacl does, on one line: "user::rwx user:1000:--x ...".
func FormatACL(es []ACLEntry) string {
	var parts []string
	for _, e := range es {
		tag := map[uint16]string{ACLUserObj: "user", ACLUser: "user", ACLGroupObj: "group", ACLGroup: "group", ACLMask: "mask", ACLOther: "other"}[e.Tag]
		if tag == "" {
			tag = fmt.Sprintf("tag%#x", e.Tag)
		}
		id := ""
		if e.Tag == ACLUser || e.Tag == ACLGroup {
			id = fmt.Sprint(e.ID)
		}
		perm := []byte("---")
		for i, c := range "rwx" {
			if e.Perm&(4>>i) != 0 {
				perm[i] = byte(c)
			}
		}
		parts = append(parts, tag+":"+id+":"+string(perm))
	}
	return strings.Join(parts, " ")
}
