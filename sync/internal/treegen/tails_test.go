package treegen

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// wantEntry checks the type, owner and full mode of one entry.
func wantEntry(t *testing.T, root, rel string, typ uint32, uid, gid int, mode uint32) {
	t.Helper()
	st := lstat(t, filepath.Join(root, rel))
	if st.Mode&unix.S_IFMT != typ || int(st.Uid) != uid || int(st.Gid) != gid || st.Mode&0o7777 != mode {
		t.Errorf("%s: type %o %d:%d mode %04o, want type %o %d:%d mode %04o", rel,
			st.Mode&unix.S_IFMT, st.Uid, st.Gid, st.Mode&0o7777, typ, uid, gid, mode)
	}
}

func hasXattr(t *testing.T, p, name string) bool {
	t.Helper()
	names, err := listXattrs(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func TestTailsSampleFacts(t *testing.T) {
	root := requireRootXattrs(t)
	if err := TailsSample(root); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, root, ".", unix.S_IFDIR, 0, 0, 0o770)
	raw, err := getXattr(root, XattrACLAccess)
	if err != nil {
		t.Fatal(err)
	}
	acl, err := DecodeACL(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []ACLEntry{{ACLUserObj, 7, 0}, {ACLUser, 1, 1000}, {ACLGroupObj, 7, 0}, {ACLMask, 7, 0}, {ACLOther, 0, 0}}
	if !reflect.DeepEqual(acl, want) {
		t.Errorf("root ACL %+v, want %+v", acl, want)
	}
	if hasXattr(t, root, XattrACLDefault) {
		t.Error("root has a default ACL; TAILS-FACTS says no other ACL")
	}

	for _, f := range []string{"persistence.conf", "persistence.conf.bak"} {
		wantEntry(t, root, f, unix.S_IFREG, 115, 122, 0o600)
		if hasXattr(t, filepath.Join(root, f), XattrACLAccess) {
			t.Errorf("%s has an ACL", f)
		}
	}
	wantEntry(t, root, "live-additional-software.conf", unix.S_IFREG, 115, 122, 0o644)
	conf, err := os.ReadFile(filepath.Join(root, "persistence.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"/home/amnesia/Persistent\tsource=Persistent\n", "/home/amnesia\tsource=dotfiles,link\n"} {
		if !strings.Contains(string(conf), line) {
			t.Errorf("persistence.conf lacks %q:\n%s", line, conf)
		}
	}
	for _, b := range TailsBindings() {
		if st := lstat(t, filepath.Join(root, b.Source)); st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("feature folder %s is not a directory", b.Source)
		}
	}

	checkAmnesiaPrivate(t, root)
	wantEntry(t, root, "nm-system-connections", unix.S_IFDIR, 0, 0, 0o700)
	wantEntry(t, root, "nm-system-connections/Home WiFi.nmconnection", unix.S_IFREG, 0, 0, 0o600)
	wantEntry(t, root, "gnupg", unix.S_IFDIR, 1000, 1000, 0o700)
	wantEntry(t, root, "gnupg/private-keys-v1.d", unix.S_IFDIR, 1000, 1000, 0o700)
	wantEntry(t, root, "openssh-client/id_ed25519", unix.S_IFREG, 1000, 1000, 0o600)
	wantEntry(t, root, "dotfiles/.vimrc", unix.S_IFLNK, 1000, 1000, 0o777)

	if st := lstat(t, filepath.Join(root, "Persistent/Archive/report-2023-final.pdf")); st.Nlink != 2 {
		t.Errorf("the hard link has %d links, want 2", st.Nlink)
	}
	if st := lstat(t, filepath.Join(root, "Persistent/VMs/debian-12.img")); st.Blocks*512 >= st.Size {
		t.Errorf("the VM image is not sparse: %d bytes in %d blocks", st.Size, st.Blocks)
	}
	if v, err := getXattr(filepath.Join(root, "Persistent/Downloads/tails-signing.key"), "user.xdg.origin.url"); err != nil || !strings.HasPrefix(string(v), "https://") {
		t.Errorf("user.xdg.origin.url of the download: %q, %v", v, err)
	}
	if used := diskUsage(t, root); used < 30*mib || used > 70*mib {
		t.Errorf("sample uses %d MiB, want about 50", used/mib)
	}
}

// checkAmnesiaPrivate checks that amnesia's feature folders hold only amnesia's entries with no
// group or other permission bits.
func checkAmnesiaPrivate(t *testing.T, root string) {
	t.Helper()
	for _, f := range []string{"Persistent", "thunderbird", "gnupg", "dotfiles", "electrum", "openssh-client", "bookmarks"} {
		err := filepath.Walk(filepath.Join(root, f), func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			st := lstat(t, p)
			isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
			if st.Uid != 1000 || st.Gid != 1000 || (!isLink && st.Mode&0o077 != 0) {
				t.Errorf("%s: %d:%d %04o, want 1000:1000 with no group/other bits", p, st.Uid, st.Gid, st.Mode&0o7777)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func diskUsage(t *testing.T, root string) int64 {
	t.Helper()
	var total int64
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			total += lstat(t, p).Blocks * 512
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func TestTailsSampleDeterministicAndWeek(t *testing.T) {
	base := requireRootXattrs(t)
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := TailsSample(d); err != nil {
			t.Fatal(err)
		}
	}
	ma, mb := manifestByPath(t, a), manifestByPath(t, b)
	if !reflect.DeepEqual(ma, mb) {
		t.Fatal("two TailsSample trees differ")
	}
	changes, err := TailsWeekOfUse(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	after := manifestByPath(t, b)
	for _, c := range changes {
		key := `"` + c.Path + `"`
		if ma[key] == after[key] {
			t.Errorf("%s (%s): no visible change", c.Path, c.What)
		}
	}
	wantEntry(t, b, "nm-system-connections/Library.nmconnection", unix.S_IFREG, 0, 0, 0o600)
}
