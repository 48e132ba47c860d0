package sync_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// TestMirrorFileTypes proves that every file type is reproduced exactly: regular files (empty,
// small, several MiB), directories, symlinks with exact target bytes (relative, absolute,
// dangling, odd bytes, 4000 bytes long), hard-link groups (same inode in the destination), char
// and block devices with their exact rdev, FIFOs and sockets, and names with odd bytes.
func TestMirrorFileTypes(t *testing.T) {
	parallel(t)
	src := newExt4(t, 32)
	dst := newExt4(t, 32)
	longTarget := strings.Repeat("a/", 2000) + "z"
	oddTarget := "\x01\x7f\xff odd\n\ttarget/../..//x"
	cases := []struct {
		name  string
		nodes []node
	}{
		{"basic", []node{
			{Path: "empty", Type: 'f'},
			{Path: "small", Type: 'f', Data: "hello\n"},
			{Path: "big", Type: 'f', Data: string(pattern(3*mib+17, 1))},
			{Path: "dir/sub/deep", Type: 'd'},
			{Path: "dir/sub/file", Type: 'f', Data: "x"},
			{Path: "emptydir", Type: 'd'},
			{Path: "name with spaces\tand\nnewline", Type: 'f', Data: "odd name"},
			{Path: "\xff\xfe-not-utf8-\xe9", Type: 'f', Data: "not utf-8"},
			{Path: "-leading-dash", Type: 'f', Data: "dash"},
			{Path: strings.Repeat("n", 255), Type: 'f', Data: "longest name"},
			{Path: "dir/" + strings.Repeat("\xe9", 255), Type: 'd'},
			{Path: "link-rel", Type: 'l', Target: "dir/sub/file"},
			{Path: "link-abs", Type: 'l', Target: "/etc/passwd"},
			{Path: "link-dangling", Type: 'l', Target: "does/not/exist"},
			{Path: "link-odd", Type: 'l', Target: oddTarget},
			{Path: "link-dir", Type: 'l', Target: "dir"},
			{Path: "link-long", Type: 'l', Target: longTarget},
			{Path: "link-self", Type: 'l', Target: "link-self"},
			{Path: "dir/link-up", Type: 'l', Target: "../small"},
			{Path: "chr", Type: 'c', Rdev: unix.Mkdev(1, 3)},
			{Path: "blk", Type: 'b', Rdev: unix.Mkdev(8, 17)},
			{Path: "chr-big-numbers", Type: 'c', Rdev: unix.Mkdev(4000, 1000000)},
			{Path: "fifo", Type: 'p'},
			{Path: "sock", Type: 's'},
		}},
		{"hard links", []node{
			{Path: "hl/a", Type: 'f', Data: "group one"},
			{Path: "hl/b", Type: 'h', Target: "hl/a"},
			{Path: "other/c", Type: 'h', Target: "hl/a"},
			{Path: "hl/x", Type: 'f', Data: "group two"},
			{Path: "hl/y", Type: 'h', Target: "hl/x"},
			{Path: "hl/empty1", Type: 'f'},
			{Path: "hl/empty2", Type: 'h', Target: "hl/empty1"},
			{Path: "hl/alone", Type: 'f', Data: "group two"},
		}},
		{"hard-linked special files", []node{
			{Path: "fifo1", Type: 'p'},
			{Path: "fifo2", Type: 'h', Target: "fifo1"},
			{Path: "sym1", Type: 'l', Target: "somewhere"},
			{Path: "sub/sym2", Type: 'h', Target: "sym1"},
			{Path: "dev1", Type: 'c', Rdev: unix.Mkdev(1, 5)}, // like /dev/zero: endless if read
			{Path: "dev2", Type: 'h', Target: "dev1"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := filepath.Join(src, c.name), filepath.Join(dst, c.name)
			mkdirs(t, s, d)
			build(t, s, c.nodes...)
			mirror(t, s, d, sync.Options{})
			// Checksum compares contents: only of regular files (a FIFO would block, a device
			// such as 1:5 never ends).
			assertSecondRunNoChange(t, s, d, sync.Options{Checksum: true})
			// Explicit checks on top of the two oracles, for clear messages.
			for _, n := range c.nodes {
				sp, dp := filepath.Join(s, n.Path), filepath.Join(d, n.Path)
				sst, dstSt := lstat(t, sp), lstat(t, dp)
				if sst.Mode&unix.S_IFMT != dstSt.Mode&unix.S_IFMT {
					t.Errorf("%q: type %s, want %s", n.Path, typeName(dstSt.Mode), typeName(sst.Mode))
					continue
				}
				switch n.Type {
				case 'l':
					got, err := os.Readlink(dp)
					if err != nil || got != n.Target {
						t.Errorf("%q: symlink target %q (%v), want %q", n.Path, got, err, n.Target)
					}
				case 'c', 'b':
					if dstSt.Rdev != n.Rdev {
						t.Errorf("%q: rdev %d:%d, want %d:%d", n.Path, unix.Major(dstSt.Rdev), unix.Minor(dstSt.Rdev), unix.Major(n.Rdev), unix.Minor(n.Rdev))
					}
				case 'h':
					tst := lstat(t, filepath.Join(d, n.Target))
					if tst.Ino != dstSt.Ino {
						t.Errorf("%q: not a hard link of %q in the destination (inodes %d and %d)", n.Path, n.Target, dstSt.Ino, tst.Ino)
					}
				}
			}
		})
	}
}

// TestMirrorHardLinkGroupChanges proves that hard-link groups that change between runs are
// re-linked correctly: a member unlinked and replaced by a separate file with the same content
// and mtime, a link added, two groups merged, a single file that gains a link, a separate file
// that joins a group, a group dissolved, a member renamed. In the "same size and mtime" case all
// the files look alike to a size+mtime quick check, so only Checksum can tell them apart: the
// groups must still end up with the right content.
func TestMirrorHardLinkGroupChanges(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	for _, c := range []struct {
		name     string
		opts     sync.Options
		sameSize bool
	}{
		{"distinct contents", sync.Options{}, false},
		{"same size and mtime with Checksum", sync.Options{Checksum: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, d := filepath.Join(src, c.name), filepath.Join(dst, c.name)
			mkdirs(t, s, d)
			tm := time.Date(2020, 1, 2, 3, 4, 5, 600000001, time.UTC)
			f := func(p, data string) node {
				if !c.sameSize {
					data = strings.Repeat(data, len(p)+int(data[0]-'A'))
				}
				return node{Path: p, Type: 'f', Data: data, Mtime: tm}
			}
			h := func(p, target string) node { return node{Path: p, Type: 'h', Target: target} }
			build(t, s,
				f("a1", "A"), h("a2", "a1"), h("a3", "a1"),
				f("b1", "B"), h("b2", "b1"),
				f("c1", "C"), h("sub/c2", "c1"),
				f("d1", "D"),
				f("e1", "E"), h("e2", "e1"),
				f("f1", "F"), h("f2", "f1"),
				f("g1", "G"),
			)
			mirror(t, s, d, c.opts)
			assertLinkGroups(t, d, [][]string{{"a1", "a2", "a3"}, {"b1", "b2"}, {"c1", "sub/c2"}, {"d1"}, {"e1", "e2"}, {"f1", "f2"}, {"g1"}})

			// a2 leaves its group for a separate file that looks the same (size, content, mtime).
			rm(t, s, "a2")
			build(t, s, f("a2", "A"), h("a4", "a1"))
			// c1 and c2 join b's group.
			rm(t, s, "c1", "sub/c2")
			build(t, s, h("c1", "b1"), h("sub/c2", "b1"))
			// d1 gains a link; g1, a separate file, joins b's group.
			rm(t, s, "g1")
			build(t, s, h("d2", "d1"), h("g1", "b1"))
			// e's group is dissolved into two separate files.
			rm(t, s, "e2")
			build(t, s, f("e2", "E"))
			// f1 is renamed f3.
			if err := os.Rename(filepath.Join(s, "f1"), filepath.Join(s, "f3")); err != nil {
				t.Fatal(err)
			}
			want := [][]string{{"a1", "a3", "a4"}, {"a2"}, {"b1", "b2", "c1", "sub/c2", "g1"}, {"d1", "d2"}, {"e1"}, {"e2"}, {"f2", "f3"}}
			assertLinkGroups(t, s, want) // the test's own premise
			mirror(t, s, d, c.opts)
			assertLinkGroups(t, d, want)
		})
	}
}

// TestMirrorHardLinkedFileChanges proves that a change to a hard-linked file that stays
// hard-linked (its mode, owner, mtime, xattrs, or its content rewritten in place) reaches the
// destination, for every member of the group.
func TestMirrorHardLinkedFileChanges(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	cases := []struct {
		name   string
		change func(t *testing.T, p string)
	}{
		{"chmod", func(t *testing.T, p string) { must(t, unix.Chmod(p, 0o600)) }},
		{"chown", func(t *testing.T, p string) { must(t, unix.Lchown(p, 4242, 4242)) }},
		{"mtime", func(t *testing.T, p string) { setMtime(t, p, t2) }},
		{"xattr", func(t *testing.T, p string) { must(t, unix.Lsetxattr(p, "user.new", []byte("v"), 0)) }},
		{"content rewritten in place", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte("new content, longer than the old one"), 0o644))
			setMtime(t, p, t2)
		}},
		{"content same size in place", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte("OLD"), 0o644))
			setMtime(t, p, t2)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := filepath.Join(src, c.name), filepath.Join(dst, c.name)
			mkdirs(t, s, d)
			build(t, s, node{Path: "y", Type: 'f', Data: "old", Mtime: t1}, node{Path: "x", Type: 'h', Target: "y"},
				node{Path: "sub/z", Type: 'h', Target: "y"}, node{Path: "sub", Type: 'd', Mtime: t1}, node{Path: ".", Type: 'd', Mtime: t1})
			mirror(t, s, d, sync.Options{})
			c.change(t, filepath.Join(s, "x"))
			rep := mirror(t, s, d, sync.Options{})
			if rep.Changes() == 0 {
				t.Errorf("the change of a hard-linked file was not seen: %s", fmtReport(rep))
			}
			assertLinkGroups(t, d, [][]string{{"x", "y", "sub/z"}})
		})
	}
}

// assertLinkGroups requires that the paths of each group share one inode and that different
// groups have different inodes.
func assertLinkGroups(t *testing.T, root string, groups [][]string) {
	t.Helper()
	seen := map[uint64]int{}
	for gi, g := range groups {
		first := lstat(t, filepath.Join(root, g[0])).Ino
		for _, p := range g[1:] {
			if ino := lstat(t, filepath.Join(root, p)).Ino; ino != first {
				t.Errorf("%s: %q and %q should be hard links (inodes %d and %d)", root, g[0], p, first, ino)
			}
		}
		if other, ok := seen[first]; ok {
			t.Errorf("%s: %q and %q should not be hard links of each other", root, g[0], groups[other][0])
		}
		seen[first] = gi
		if n := lstat(t, filepath.Join(root, g[0])).Nlink; int(n) != len(g) {
			t.Errorf("%s: %q has %d links, want %d", root, g[0], n, len(g))
		}
	}
}

// TestMirrorTypeChanges proves that a path whose type changed between runs is replaced, whatever
// the old and new types (a directory with contents included), and that the new entry is exact.
func TestMirrorTypeChanges(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	dirWithContents := []node{
		{Path: "x", Type: 'd'}, {Path: "x/a", Type: 'f', Data: "a"}, {Path: "x/sub/b", Type: 'f', Data: "b"},
		{Path: "x/sub/l", Type: 'l', Target: "../../../"}, {Path: "x/fifo", Type: 'p'},
	}
	cases := []struct {
		name          string
		before, after []node
	}{
		{"file to dir", []node{{Path: "x", Type: 'f', Data: "file"}}, []node{{Path: "x/in", Type: 'f', Data: "in"}}},
		{"dir to file", dirWithContents, []node{{Path: "x", Type: 'f', Data: "now a file"}}},
		{"empty dir to file", []node{{Path: "x", Type: 'd'}}, []node{{Path: "x", Type: 'f', Data: "f"}}},
		{"file to symlink", []node{{Path: "x", Type: 'f', Data: "file"}}, []node{{Path: "x", Type: 'l', Target: "file"}}},
		{"symlink to file", []node{{Path: "x", Type: 'l', Target: "t"}}, []node{{Path: "x", Type: 'f', Data: "t"}}},
		{"symlink to dir", []node{{Path: "x", Type: 'l', Target: "elsewhere"}}, []node{{Path: "x/f", Type: 'f', Data: "in dir"}}},
		{"dir with contents to fifo", dirWithContents, []node{{Path: "x", Type: 'p'}}},
		{"dir with contents to symlink", dirWithContents, []node{{Path: "x", Type: 'l', Target: "x"}}},
		{"dir to socket", dirWithContents, []node{{Path: "x", Type: 's'}}},
		{"fifo to socket", []node{{Path: "x", Type: 'p'}}, []node{{Path: "x", Type: 's'}}},
		{"socket to file", []node{{Path: "x", Type: 's'}}, []node{{Path: "x", Type: 'f', Data: "f"}}},
		{"char to block device", []node{{Path: "x", Type: 'c', Rdev: unix.Mkdev(1, 3)}}, []node{{Path: "x", Type: 'b', Rdev: unix.Mkdev(1, 3)}}},
		{"device rdev changed", []node{{Path: "x", Type: 'c', Rdev: unix.Mkdev(1, 3)}}, []node{{Path: "x", Type: 'c', Rdev: unix.Mkdev(1, 5)}}},
		{"symlink target changed", []node{{Path: "x", Type: 'l', Target: "old"}}, []node{{Path: "x", Type: 'l', Target: "new-and-longer"}}},
		{"symlink target same length", []node{{Path: "x", Type: 'l', Target: "old", Mtime: t1}}, []node{{Path: "x", Type: 'l', Target: "new", Mtime: t1}}},
		{"hard-linked file to symlink", []node{{Path: "y", Type: 'f', Data: "y"}, {Path: "x", Type: 'h', Target: "y"}}, []node{{Path: "y", Type: 'f', Data: "y"}, {Path: "x", Type: 'l', Target: "y"}}},
		{"file to hard link", []node{{Path: "y", Type: 'f', Data: "y"}, {Path: "x", Type: 'f', Data: "x"}}, []node{{Path: "y", Type: 'f', Data: "y"}, {Path: "x", Type: 'h', Target: "y"}}},
		{"fifo to dir", []node{{Path: "x", Type: 'p'}}, []node{{Path: "x/deep/er", Type: 'f', Data: "deep"}}},
	}
	for _, c := range cases {
		mkdirs(t, filepath.Join(src, c.name), filepath.Join(dst, c.name))
		build(t, filepath.Join(src, c.name), c.before...)
	}
	mirror(t, src, dst, sync.Options{})
	for _, c := range cases {
		s := filepath.Join(src, c.name)
		if err := os.RemoveAll(s); err != nil {
			t.Fatal(err)
		}
		mkdirs(t, s)
		build(t, s, c.after...)
	}
	rep := mirror(t, src, dst, sync.Options{})
	for _, c := range cases {
		sp, dp := filepath.Join(src, c.name, "x"), filepath.Join(dst, c.name, "x")
		if s, d := lstat(t, sp), lstat(t, dp); s.Mode&unix.S_IFMT != d.Mode&unix.S_IFMT {
			t.Errorf("%s: destination is a %s, want a %s", c.name, typeName(d.Mode), typeName(s.Mode))
		}
	}
	if rep.Updated+rep.Created == 0 {
		t.Errorf("type changes were not counted as updated or created: %s", fmtReport(rep))
	}
}

func mkdirs(t testing.TB, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func rm(t testing.TB, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
}
