package treegen

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireRootXattrs skips tests that need root and a file system with trusted xattrs and ACLs.
func requireRootXattrs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: sets owners, trusted. xattrs and ACLs")
	}
	dir := t.TempDir()
	err := unix.Lsetxattr(dir, "trusted.treegen.probe", []byte("1"), 0)
	if err == nil {
		err = setACL(dir, XattrACLAccess, aclWithMask(7, 5, 5, ACLEntry{Tag: ACLUser, ID: 1000, Perm: 7}))
	}
	if errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("the temporary directory's file system lacks xattrs or ACLs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return t.TempDir()
}

// smallSpec keeps every kind of entry but few bytes.
func smallSpec(files int, seed uint64) Spec {
	s := BenchSpec(files, seed)
	s.LargeEvery, s.LargeMin, s.LargeMax = 300, 64*kib, 256*kib
	s.SparseEvery, s.SparseSize = 500, 4*mib
	return s
}

func TestEncodeACLMatchesSetfacl(t *testing.T) {
	// What `setfacl -m u:1000:r` on a 0644 file stores, read back with getfattr -e base64.
	const fromSetfacl = "AgAAAAEABgD/////AgAEAOgDAAAEAAQA/////xAABAD/////IAAEAP////8="
	acl := aclWithMask(6, 4, 4, ACLEntry{Tag: ACLUser, ID: 1000, Perm: 4})
	if got := base64.StdEncoding.EncodeToString(EncodeACL(acl)); got != fromSetfacl {
		t.Errorf("EncodeACL = %s, want %s", got, fromSetfacl)
	}
	back, err := DecodeACL(EncodeACL(acl))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 5 || back[1] != (ACLEntry{Tag: ACLUser, ID: 1000, Perm: 4}) || back[3] != (ACLEntry{Tag: ACLMask, Perm: 4}) {
		t.Errorf("DecodeACL = %+v", back)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	base := requireRootXattrs(t)
	manifest := func(name string, seed uint64) []string {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Generate(context.Background(), dir, smallSpec(800, seed)); err != nil {
			t.Fatal(err)
		}
		m, err := Manifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b, c := manifest("a", 1), manifest("b", 1), manifest("c", 2)
	if !reflect.DeepEqual(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("same seed, different trees; first difference:\n%s\n%s", a[i], b[i])
			}
		}
		t.Fatalf("same seed, %d and %d entries", len(a), len(b))
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same tree")
	}
}

// census counts what is on disk under root.
type census struct {
	files, dirs, symlinks, extraNames, sparse, xattrs, acls, defACLs, setgidDirs int
	owners                                                                       map[[2]uint32]int
	maxDepth                                                                     int
}

func takeCensus(t *testing.T, root string) census {
	t.Helper()
	c := census{owners: map[[2]uint32]int{}}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		c.maxDepth = max(c.maxDepth, strings.Count(rel, "/")+1)
		c.owners[[2]uint32{st.Uid, st.Gid}]++
		names, err := listXattrs(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, "user.") || strings.HasPrefix(n, "trusted.") {
				c.xattrs++
				break
			}
		}
		for _, n := range names {
			if n == XattrACLAccess {
				c.acls++
			}
			if n == XattrACLDefault {
				c.defACLs++
			}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			c.dirs++
			if st.Mode&unix.S_ISGID != 0 {
				c.setgidDirs++
			}
		case unix.S_IFLNK:
			c.symlinks++
		case unix.S_IFREG:
			c.files++
			if st.Blocks*512 < st.Size {
				c.sparse++
			}
			if st.Nlink > 1 {
				c.extraNames++ // counted per name; fixed up below
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerateProportions(t *testing.T) {
	dir := requireRootXattrs(t)
	const n = 5000
	st, err := Generate(context.Background(), dir, smallSpec(n, 7))
	if err != nil {
		t.Fatal(err)
	}
	c := takeCensus(t, dir)
	if got := c.files + c.symlinks; got != n {
		t.Errorf("%d regular file names and symlinks, want %d", got, n)
	}
	if c.symlinks != n*2/100 || st.Symlinks != c.symlinks {
		t.Errorf("%d symlinks (stats %d), want %d", c.symlinks, st.Symlinks, n*2/100)
	}
	within := func(what string, got int, lo, hi float64) {
		t.Helper()
		if f := float64(got) / n; f < lo || f > hi {
			t.Errorf("%s: %d of %d (%.2f%%), want %.1f%%–%.1f%%", what, got, n, 100*f, 100*lo, 100*hi)
		}
	}
	within("names in hard-link groups", c.extraNames, 0.007, 0.014)
	within("entries with user./trusted. xattrs", c.xattrs, 0.035, 0.07)
	within("entries with an ACL", c.acls, 0.01, 0.03)
	if c.defACLs == 0 || c.setgidDirs == 0 || c.sparse != st.Sparse || st.Sparse == 0 {
		t.Errorf("default ACLs %d, setgid dirs %d, sparse files %d (stats %d): want some of each",
			c.defACLs, c.setgidDirs, c.sparse, st.Sparse)
	}
	for _, o := range owners {
		if c.owners[[2]uint32{uint32(o.uid), uint32(o.gid)}] == 0 {
			t.Errorf("no entry owned by %d:%d", o.uid, o.gid)
		}
	}
	if c.dirs != st.Dirs || c.files != st.Files+st.HardLinks {
		t.Errorf("on disk %d dirs %d file names, stats say %d and %d+%d", c.dirs, c.files, st.Dirs, st.Files, st.HardLinks)
	}
}

func TestBenchSpecShape(t *testing.T) {
	tr := plan(BenchSpec(100000, 1))
	st := tr.stats()
	if st.Dirs < 1500 || st.Dirs > 2500 {
		t.Errorf("%d directories for 100k files, want about 2000", st.Dirs)
	}
	if gib := float64(st.DataBytes) / float64(1<<30); gib < 0.9 || gib > 1.6 {
		t.Errorf("%.2f GiB of data at 100k files, want 1–1.5", gib)
	}
	if st.Large < 30 || st.Sparse != 10 {
		t.Errorf("%d large and %d sparse files, want some 60 and 10", st.Large, st.Sparse)
	}
	depth := 0
	for _, d := range tr.dirs {
		depth = max(depth, strings.Count(d.path, "/")+1)
	}
	if depth < 4 || depth > 6 {
		t.Errorf("directory depth %d, want 4–6", depth)
	}
}

func TestChangeData(t *testing.T) {
	dir := requireRootXattrs(t)
	if _, err := Generate(context.Background(), dir, smallSpec(1000, 3)); err != nil {
		t.Fatal(err)
	}
	before := manifestByPath(t, dir)
	n, err := ChangeData(dir, 0.05, 9)
	if err != nil {
		t.Fatal(err)
	}
	after := manifestByPath(t, dir)
	changed := 0
	for p, line := range after {
		if line != before[p] {
			changed++
			if !strings.Contains(line, " file ") {
				t.Errorf("ChangeData changed a non-file: %s", line)
			}
		}
	}
	// Hard-linked files show under one name with content; the others only point at it.
	if n < 40 || n > 60 || changed != n {
		t.Errorf("ChangeData said %d, %d manifest lines changed; want about 5%% of ~980 files, equal", n, changed)
	}
}

func TestChangeMetadataKeepsData(t *testing.T) {
	dir := requireRootXattrs(t)
	if _, err := Generate(context.Background(), dir, smallSpec(1000, 4)); err != nil {
		t.Fatal(err)
	}
	before := manifestByPath(t, dir)
	n, err := ChangeMetadata(dir, 0.05, 9)
	if err != nil {
		t.Fatal(err)
	}
	after := manifestByPath(t, dir)
	changed := 0
	for p, line := range after {
		if line == before[p] {
			continue
		}
		changed++
		if digest(line) != digest(before[p]) {
			t.Errorf("content changed:\n%s\n%s", before[p], line)
		}
	}
	if n < 40 || n > 70 || changed < n*9/10 || changed > n {
		t.Errorf("ChangeMetadata said %d, %d entries changed", n, changed)
	}
}

func digest(line string) string {
	if i := strings.Index(line, "sha256="); i >= 0 {
		return line[i:]
	}
	return ""
}

func manifestByPath(t *testing.T, dir string) map[string]string {
	t.Helper()
	lines, err := Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range lines {
		m[l[:strings.Index(l[1:], `"`)+2]] = l
	}
	return m
}
