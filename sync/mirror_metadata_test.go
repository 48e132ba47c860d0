package sync_test

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// capNetRaw is a security.capability value (VFS_CAP_REVISION_2, effective) granting
// CAP_NET_RAW, as `setcap cap_net_raw+ep` writes it.
func capNetRaw() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	return string(b)
}

var (
	t1 = time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	t2 = time.Date(2010, 7, 8, 9, 10, 11, 987654321, time.UTC)
	t3 = time.Date(2019, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// metadataTree has every kind of metadata the engine must reproduce.
func metadataTree() []node {
	return []node{
		{Path: ".", Type: 'd', Mode: mode(0o750), Uid: 1000, Gid: 122, Xattrs: map[string]string{"user.root": "r"}, ACL: "u:4242:r-x", Mtime: t3},
		// Numeric owners that exist nowhere.
		{Path: "owners/u1000", Type: 'f', Data: "1000", Uid: 1000, Gid: 1000},
		{Path: "owners/u115g122", Type: 'f', Data: "conf", Uid: 115, Gid: 122, Mode: mode(0o600)},
		{Path: "owners/u4242", Type: 'f', Data: "4242", Uid: 4242, Gid: 4242},
		{Path: "owners/root-g4242", Type: 'f', Data: "g", Uid: 0, Gid: 4242},
		{Path: "owners/dir4242", Type: 'd', Uid: 4242, Gid: 4242, Mode: mode(0o750)},
		{Path: "owners/link", Type: 'l', Target: "u1000", Uid: 4242, Gid: 122},
		{Path: "owners/fifo", Type: 'p', Uid: 1000, Gid: 1000, Mode: mode(0o620)},
		{Path: "owners/dev", Type: 'c', Rdev: unix.Mkdev(10, 200), Uid: 0, Gid: 122, Mode: mode(0o660)},
		// Full modes; setuid/setgid on files owned by someone else (chown clears them).
		{Path: "modes/suid", Type: 'f', Data: "#!/bin/true\n", Uid: 1000, Mode: mode(0o4755)},
		{Path: "modes/sgid", Type: 'f', Data: "sgid", Gid: 122, Mode: mode(0o2755)},
		{Path: "modes/suid-sgid", Type: 'f', Data: "both", Uid: 1000, Gid: 122, Mode: mode(0o6711)},
		{Path: "modes/sgid-noexec", Type: 'f', Data: "mandatory-locking style", Uid: 1000, Gid: 122, Mode: mode(0o2644)},
		{Path: "modes/sticky-file", Type: 'f', Data: "sticky", Mode: mode(0o1644)},
		{Path: "modes/none", Type: 'f', Data: "no bits", Mode: mode(0o000)},
		{Path: "modes/all", Type: 'f', Data: "all bits", Mode: mode(0o7777)},
		{Path: "modes/sgid-dir", Type: 'd', Gid: 122, Mode: mode(0o2775)},
		{Path: "modes/sticky-dir", Type: 'd', Mode: mode(0o1777)},
		{Path: "modes/all-dir", Type: 'd', Uid: 1000, Gid: 1000, Mode: mode(0o7755)},
		{Path: "modes/ro-dir/inside", Type: 'f', Data: "in a read-only dir"},
		{Path: "modes/ro-dir", Type: 'd', Mode: mode(0o500)},
		{Path: "modes/no-dir/inside", Type: 'f', Data: "in a mode 000 dir", Uid: 4242},
		{Path: "modes/no-dir", Type: 'd', Mode: mode(0o000)},
		// Xattrs of every namespace, including on symlinks, fifos and devices (trusted.).
		{Path: "xattr/user", Type: 'f', Data: "u", Xattrs: map[string]string{
			"user.a": "1", "user.empty": "", "user.bin": "\x00\x01\xff\n", "user.long": strings.Repeat("L", 2000)}},
		{Path: "xattr/trusted", Type: 'f', Data: "t", Xattrs: map[string]string{"trusted.t": "t", "trusted.overlay.opaque": "y"}},
		{Path: "xattr/caps", Type: 'f', Data: "#!/bin/true\n", Uid: 1000, Gid: 1000, Mode: mode(0o755),
			Xattrs: map[string]string{"security.capability": capNetRaw()}},
		{Path: "xattr/caps-root", Type: 'f', Data: "#!/bin/true\n", Mode: mode(0o4755),
			Xattrs: map[string]string{"security.capability": capNetRaw(), "security.tails": "s"}},
		{Path: "xattr/dir", Type: 'd', Xattrs: map[string]string{"user.d": "dir", "trusted.d": "dir"}},
		{Path: "xattr/symlink", Type: 'l', Target: "user", Xattrs: map[string]string{"trusted.sl": "on a symlink"}},
		{Path: "xattr/fifo", Type: 'p', Xattrs: map[string]string{"trusted.fifo": "f"}},
		{Path: "xattr/dev", Type: 'b', Rdev: unix.Mkdev(7, 0), Xattrs: map[string]string{"trusted.dev": "d"}},
		// POSIX ACLs, access and default.
		{Path: "acl/file", Type: 'f', Data: "acl", ACL: "u:1000:rw-,u:4242:r--,g:122:rw-,m::rw-"},
		{Path: "acl/masked", Type: 'f', Data: "masked", ACL: "u:1000:rwx", Mode: mode(0o640)},
		{Path: "acl/dir", Type: 'd', ACL: "u:1000:rwx,g:122:r-x", DefACL: "u:1000:rwx,g:122:r-x,o::---"},
		{Path: "acl/default-only", Type: 'd', DefACL: "u:4242:r-x"},
		// Nanosecond mtimes on files, directories (set after their children) and symlinks.
		{Path: "mtimes/dir/child", Type: 'f', Data: "c", Mtime: t2},
		{Path: "mtimes/dir", Type: 'd', Mtime: t1},
		{Path: "mtimes/file", Type: 'f', Data: "f", Mtime: t2},
		{Path: "mtimes/symlink", Type: 'l', Target: "file", Mtime: t3},
		{Path: "mtimes/fifo", Type: 'p', Mtime: t1},
		{Path: "mtimes/whole-second", Type: 'f', Data: "s", Mtime: time.Unix(1234567890, 0)},
		{Path: "mtimes/before-1970", Type: 'f', Data: "old", Mtime: time.Unix(-14182940, 500000000)},
		{Path: "mtimes/after-2038", Type: 'f', Data: "future", Mtime: time.Date(2200, 1, 1, 0, 0, 0, 1, time.UTC)},
		{Path: "mtimes", Type: 'd', Mtime: t3},
	}
}

// TestMirrorMetadata proves that numeric owners, full modes (setuid/setgid/sticky on files and
// directories, also when chown would clear them), xattrs of the user., trusted. and security.
// namespaces (security.capability, which chown clears), access and default ACLs and nanosecond
// mtimes (files, directories after their children, symlinks, before 1970, after 2038) are
// reproduced, on the root too. Then it adds xattrs, ACLs and wrong owners/modes/mtimes to the
// destination and proves that one run removes them all as metadata-only changes.
func TestMirrorMetadata(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	build(t, src, metadataTree()...)
	// A file created in a directory with a default ACL inherits it.
	build(t, src, node{Path: "acl/dir/inherited", Type: 'f', Data: "i"})
	setMtime(t, filepath.Join(src, "acl/dir"), t1)
	if !strings.Contains(xattrString(t, filepath.Join(src, "acl/dir/inherited")), "system.posix_acl_access") {
		t.Fatal("premise: acl/dir/inherited did not inherit the default ACL")
	}

	mirror(t, src, dst, sync.Options{})

	for _, c := range []struct {
		path string
		mode uint32
	}{{"modes/suid", 0o4755}, {"modes/suid-sgid", 0o6711}, {"modes/sgid-noexec", 0o2644}, {"modes/all", 0o7777}, {"modes/all-dir", 0o7755}, {"xattr/caps-root", 0o4755}} {
		if got := lstat(t, filepath.Join(dst, c.path)).Mode & 0o7777; got != c.mode {
			t.Errorf("%s: mode %#o, want %#o", c.path, got, c.mode)
		}
	}
	for _, p := range []string{"xattr/caps", "xattr/caps-root"} {
		if got := string(getXattrOrNil(filepath.Join(dst, p), "security.capability")); got != capNetRaw() {
			t.Errorf("%s: security.capability %x, want %x (set before the chown that clears it?)", p, got, capNetRaw())
		}
	}

	// New entries without ACLs in a directory whose destination copy has a default ACL: the
	// ACLs they inherit when created in the destination must go.
	build(t, src,
		node{Path: "acl/dir/no-acl", Type: 'f', Data: "n"},
		node{Path: "acl/dir/no-acl-dir/f", Type: 'f', Data: "f"},
		node{Path: "acl/dir/no-acl-link", Type: 'l', Target: "no-acl"},
		node{Path: "acl/dir/no-acl-fifo", Type: 'p'},
	)
	for _, p := range []string{"acl/dir/no-acl", "acl/dir/no-acl-dir", "acl/dir/no-acl-dir/f", "acl/dir/no-acl-fifo"} {
		run(t, "setfacl", "-b", "-k", filepath.Join(src, p))
	}
	setMtime(t, filepath.Join(src, "acl/dir"), t1)
	mirror(t, src, dst, sync.Options{})

	// Hostile extras on the destination: extra xattrs and ACLs, wrong owner, mode and mtime.
	before := snapshot(t, dst)
	d := func(p string) string { return filepath.Join(dst, p) }
	must(t, unix.Lsetxattr(d("xattr/user"), "user.extra", []byte("x"), 0))
	must(t, unix.Lsetxattr(d("xattr/dir"), "trusted.extra", []byte("x"), 0))
	must(t, unix.Lsetxattr(d("modes/suid"), "security.extra", []byte("x"), 0))
	must(t, unix.Lsetxattr(d("xattr/symlink"), "trusted.extra", []byte("x"), 0))
	run(t, "setfacl", "-m", "u:4242:rwx", d("owners/u4242"))
	run(t, "setfacl", "-d", "-m", "u:4242:rwx", d("owners/dir4242"))
	run(t, "setfacl", "-b", d("acl/file"))
	must(t, unix.Lchown(d("owners/u1000"), 0, 0))
	must(t, unix.Chmod(d("modes/sticky-dir"), 0o755))
	setMtime(t, d("mtimes/file"), t1)
	setMtime(t, d("mtimes/symlink"), t1)
	const touched = 11
	rep := mirror(t, src, dst, sync.Options{})
	if rep.MetadataOnly != touched || rep.Created != 0 || rep.Updated != 0 || rep.Deleted != 0 || rep.BytesCopied != 0 {
		t.Errorf("repairing metadata of %d entries: got %s, want metadataOnly=%d and nothing else", touched, fmtReport(rep), touched)
	}
	assertUnchanged(t, "destination (after repairing its metadata, compared with before it was tampered with)", before, dst, cmpOpts{inodes: true})
}

// TestMirrorMetadataOnlyChange proves that a change of metadata alone in the source is applied
// without copying data: the destination keeps its inode, BytesCopied is 0 and the run counts
// exactly one metadata-only change.
func TestMirrorMetadataOnlyChange(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	data := string(pattern(64*kib, 7))
	cases := []struct {
		name   string
		node   node
		change func(t *testing.T, p string)
	}{
		{"chmod", node{Type: 'f', Data: data}, func(t *testing.T, p string) { must(t, unix.Chmod(p, 0o600)) }},
		{"chmod setuid", node{Type: 'f', Data: data, Uid: 1000, Mode: mode(0o755)}, func(t *testing.T, p string) { must(t, unix.Chmod(p, 0o4755)) }},
		{"chown", node{Type: 'f', Data: data}, func(t *testing.T, p string) { must(t, unix.Lchown(p, 4242, 122)) }},
		// The destination's mode is already right, but its chown clears the setuid bit.
		{"chown setuid", node{Type: 'f', Data: data, Uid: 1000, Mode: mode(0o4755)}, func(t *testing.T, p string) {
			must(t, unix.Lchown(p, 4242, 122))
			must(t, unix.Chmod(p, 0o4755))
		}},
		{"touch -d", node{Type: 'f', Data: data, Mtime: t1}, func(t *testing.T, p string) { setMtime(t, p, t2) }},
		{"touch nanoseconds only", node{Type: 'f', Data: data, Mtime: t1}, func(t *testing.T, p string) { setMtime(t, p, t1.Add(1)) }},
		{"setfattr add", node{Type: 'f', Data: data}, func(t *testing.T, p string) { must(t, unix.Lsetxattr(p, "user.new", []byte("v"), 0)) }},
		{"setfattr change", node{Type: 'f', Data: data, Xattrs: map[string]string{"user.k": "old"}}, func(t *testing.T, p string) {
			must(t, unix.Lsetxattr(p, "user.k", []byte("new"), 0))
		}},
		{"setfattr remove", node{Type: 'f', Data: data, Xattrs: map[string]string{"trusted.k": "v"}}, func(t *testing.T, p string) { must(t, unix.Lremovexattr(p, "trusted.k")) }},
		{"setcap", node{Type: 'f', Data: data, Uid: 1000, Mode: mode(0o755)}, func(t *testing.T, p string) {
			must(t, unix.Lsetxattr(p, "security.capability", []byte(capNetRaw()), 0))
		}},
		{"setfacl", node{Type: 'f', Data: data}, func(t *testing.T, p string) { run(t, "setfacl", "-m", "u:1000:rw", p) }},
		{"setfacl -b", node{Type: 'f', Data: data, ACL: "u:1000:rw"}, func(t *testing.T, p string) { run(t, "setfacl", "-b", p) }},
		{"dir chmod", node{Type: 'd'}, func(t *testing.T, p string) { must(t, unix.Chmod(p, 0o1777)) }},
		{"dir default acl", node{Type: 'd'}, func(t *testing.T, p string) { run(t, "setfacl", "-d", "-m", "u:1000:rwx", p) }},
		{"symlink lchown", node{Type: 'l', Target: "t"}, func(t *testing.T, p string) { must(t, unix.Lchown(p, 1000, 1000)) }},
		{"symlink mtime", node{Type: 'l', Target: "t", Mtime: t1}, func(t *testing.T, p string) { setMtime(t, p, t2) }},
		{"fifo chmod", node{Type: 'p'}, func(t *testing.T, p string) { must(t, unix.Chmod(p, 0o600)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := filepath.Join(src, c.name), filepath.Join(dst, c.name)
			mkdirs(t, s, d)
			n := c.node
			n.Path = "x"
			build(t, s, n, node{Path: ".", Type: 'd', Mtime: t1})
			mirror(t, s, d, sync.Options{})
			ino := lstat(t, filepath.Join(d, "x")).Ino
			c.change(t, filepath.Join(s, "x"))
			rep := mirror(t, s, d, sync.Options{})
			if rep.MetadataOnly != 1 || rep.Created != 0 || rep.Updated != 0 || rep.Deleted != 0 || rep.BytesCopied != 0 {
				t.Errorf("got %s, want metadataOnly=1, bytesCopied=0 and nothing else", fmtReport(rep))
			}
			if got := lstat(t, filepath.Join(d, "x")).Ino; got != ino {
				t.Errorf("the destination entry was replaced (inode %d, was %d): a metadata change must not copy data", got, ino)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func getXattrOrNil(p, name string) []byte {
	buf := make([]byte, 64*kib)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
