package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"tails-backup/sync/internal/treegen"
)

// check is one fact to verify on the backup, read from the file system with no help from rsync.
type check struct {
	what string
	test func(backup, main string) (string, bool) // what was found, and whether it holds
}

func (d *demo) spotChecks(checks []check) {
	d.printf("\nSpot checks on the backup stick:\n")
	for _, c := range checks {
		got, ok := c.test(d.backup.MountPoint, d.main.MountPoint)
		mark := "✓"
		if !ok {
			mark = "✗"
			d.failures++
		}
		d.printf("  %s %-58s %s\n", mark, c.what, got)
	}
}

func (d *demo) fullBackupChecks() []check {
	return []check{
		{"root: 0770 root:root, ACL user:1000:--x", func(b, _ string) (string, bool) {
			got := describe(b) + " " + aclText(b, treegen.XattrACLAccess)
			return got, got == "dir 0770 0:0 user::rwx,user:1000:--x,group::rwx,mask::rwx,other::---"
		}},
		{"persistence.conf: 0600 115:122, no ACL", func(b, _ string) (string, bool) {
			p := filepath.Join(b, "persistence.conf")
			got := describe(p) + " " + aclText(p, treegen.XattrACLAccess)
			return got, got == "file 0600 115:122 no ACL"
		}},
		{"live-additional-software.conf: 0644 115:122", wantMeta("live-additional-software.conf", "file 0644 115:122")},
		{"gnupg/private-keys-v1.d: 0700 amnesia", wantMeta("gnupg/private-keys-v1.d", "dir 0700 1000:1000")},
		{"Wi-Fi password file: 0600 root", wantMeta("nm-system-connections/Home WiFi.nmconnection", "file 0600 0:0")},
		{"dotfiles/.vimrc: symlink kept as a symlink", func(b, _ string) (string, bool) {
			t, err := os.Readlink(filepath.Join(b, "dotfiles/.vimrc"))
			return "-> " + t, err == nil && t == ".config/vim/vimrc"
		}},
		{"report-2023.pdf and its archived copy: one inode", func(b, _ string) (string, bool) {
			a, c := stat(filepath.Join(b, "Persistent/Documents/report-2023.pdf")), stat(filepath.Join(b, "Persistent/Archive/report-2023-final.pdf"))
			return fmt.Sprintf("links %d, same inode %v", a.Nlink, a.Ino == c.Ino), a.Nlink == 2 && a.Ino == c.Ino
		}},
		{"VM disk image: still sparse", func(b, _ string) (string, bool) {
			st := stat(filepath.Join(b, "Persistent/VMs/debian-12.img"))
			return fmt.Sprintf("%d MiB apparent, %d MiB on disk", st.Size>>20, st.Blocks*512>>20), st.Blocks*512 < st.Size/10
		}},
		{"download keeps its user.xdg.origin.url xattr", func(b, _ string) (string, bool) {
			v := xattr(filepath.Join(b, "Persistent/Downloads/tails-signing.key"), "user.xdg.origin.url")
			return v, v == "https://tails.net/tails-signing.key"
		}},
	}
}

func (d *demo) updateChecks() []check {
	return []check{
		{"edited notes.txt has the new content", sameContent("Persistent/Documents/notes.txt")},
		{"the new mail is in the INBOX", sameContent("thunderbird/profile.default/ImapMail/imap.riseup.net/INBOX")},
		{"new Wi-Fi connection: 0600 root", wantMeta("nm-system-connections/Library.nmconnection", "file 0600 0:0")},
		{"deleted invoice is gone", func(b, _ string) (string, bool) {
			_, err := os.Lstat(filepath.Join(b, "Persistent/Downloads/old-invoice.pdf"))
			if os.IsNotExist(err) {
				return "no such file", true
			}
			return fmt.Sprintf("still there (%v)", err), false
		}},
		{"SSH key now read-only: 0400", wantMeta("openssh-client/id_ed25519", "file 0400 1000:1000")},
		{"root still 0770 with its ACL", func(b, _ string) (string, bool) {
			got := describe(b) + " " + aclText(b, treegen.XattrACLAccess)
			return got, got == "dir 0770 0:0 user::rwx,user:1000:--x,group::rwx,mask::rwx,other::---"
		}},
	}
}

func wantMeta(rel, want string) func(b, _ string) (string, bool) {
	return func(b, _ string) (string, bool) {
		got := describe(filepath.Join(b, rel))
		return got, got == want
	}
}

func sameContent(rel string) func(b, m string) (string, bool) {
	return func(b, m string) (string, bool) {
		x, err1 := os.ReadFile(filepath.Join(b, rel))
		y, err2 := os.ReadFile(filepath.Join(m, rel))
		ok := err1 == nil && err2 == nil && bytes.Equal(x, y)
		return fmt.Sprintf("%d bytes, equal to the main Tails: %v", len(x), ok), ok
	}
}

func stat(p string) unix.Stat_t {
	var st unix.Stat_t
	_ = unix.Lstat(p, &st) // a missing file shows as zeros, which every check rejects
	return st
}

// describe is "TYPE MODE UID:GID" of p, not following a symlink.
func describe(p string) string {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "missing"
	}
	typ := map[uint32]string{unix.S_IFDIR: "dir", unix.S_IFREG: "file", unix.S_IFLNK: "symlink"}[st.Mode&unix.S_IFMT]
	return fmt.Sprintf("%s %04o %d:%d", typ, st.Mode&0o7777, st.Uid, st.Gid)
}

func xattr(p, name string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "(none)"
	}
	return string(buf[:n])
}

// aclText renders an ACL xattr the way getfacl -c does, on one line; "no ACL" when absent.
func aclText(p, name string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "no ACL"
	}
	acl, err := treegen.DecodeACL(buf[:n])
	if err != nil {
		return "bad ACL: " + err.Error()
	}
	tags := map[uint16]string{treegen.ACLUserObj: "user:", treegen.ACLUser: "user:", treegen.ACLGroupObj: "group:",
		treegen.ACLGroup: "group:", treegen.ACLMask: "mask:", treegen.ACLOther: "other:"}
	var parts []string
	for _, e := range acl {
		id := ""
		if e.Tag == treegen.ACLUser || e.Tag == treegen.ACLGroup {
			id = fmt.Sprint(e.ID)
		}
		parts = append(parts, tags[e.Tag]+id+":"+permText(e.Perm))
	}
	return strings.Join(parts, ",")
}

func permText(p uint16) string {
	b := []byte("---")
	for i, c := range "rwx" {
		if p&(4>>i) != 0 {
			b[i] = byte(c)
		}
	}
	return string(b)
}

// listTop prints the top level of a Persistent Storage like ls -l, with numeric owners.
func listTop(w io.Writer, root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	names := []string{"."}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names[1:])
	for _, n := range names {
		p := filepath.Join(root, n)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := stat(p)
		acl := ""
		if a := aclText(p, treegen.XattrACLAccess); a != "no ACL" {
			acl = "  ACL " + a
		}
		fmt.Fprintf(w, "  %-11s %9s %-24s%s\n", info.Mode().String(), fmt.Sprintf("%d:%d", st.Uid, st.Gid), n, acl)
	}
	return nil
}
