package sync_test

// Shared harness of the black-box tests of sync.Mirror: real ext4 file systems on loop-mounted
// sparse images, exact tree builders, two independent oracles (rsync in dry-run itemize mode and
// our own lstat/xattr/content comparison) and snapshots of trees to prove that something was not
// touched.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"

	"tails-backup/internal/testtool"
)

// mirrorTimeout bounds every Mirror call of the tests: a hung engine fails the test instead of
// the whole package timing out.
const mirrorTimeout = 2 * time.Minute

const (
	kib = 1 << 10
	mib = 1 << 20
)

var requiredTools = []string{"mkfs.ext4", "mount", "umount", "rsync", "setfacl", "debugfs", "chattr"}

// requireRoot skips the test when it cannot mount file systems; a missing tool fails it under CI.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: these tests mount ext4 images on loop devices and must run as root")
	}
	for _, tool := range requiredTools {
		testtool.Program(t, tool, "rsync, acl, e2fsprogs, mount or util-linux")
	}
}

// testSlots bounds how many mounting tests run at once: loop devices are shared with the rest of
// the machine, and every test mounts two to four images.
var testSlots = make(chan struct{}, 2)

// parallel marks a test parallel and makes it wait for one of the few test slots; it must be the
// first thing a test does so that the slot is released after every unmount.
func parallel(t *testing.T) {
	t.Helper()
	requireRoot(t)
	t.Parallel()
	testSlots <- struct{}{}
	t.Cleanup(func() { <-testSlots })
}

// image is a sparse file holding an ext4 file system.
type image struct {
	Path string

	mu  gosync.Mutex
	dir string // where it is mounted, "" when it is not
	gen int    // counts mounts, so that each cleanup unmounts only its own mount
}

// newImage makes a sparse image of sizeMiB and formats it as ext4 (4 KiB blocks, no reserved
// blocks, errors=continue) plus mkfsArgs; it is not mounted.
func newImage(t testing.TB, sizeMiB int, mkfsArgs ...string) *image {
	t.Helper()
	requireRoot(t)
	return newImageAt(t, filepath.Join(t.TempDir(), "fs.img"), sizeMiB, mkfsArgs...)
}

// newImageAt is newImage at the path p (for example on /dev/shm, for large images).
func newImageAt(t testing.TB, p string, sizeMiB int, mkfsArgs ...string) *image {
	t.Helper()
	requireRoot(t)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMiB) * mib); err != nil {
		t.Fatal(err)
	}
	f.Close()
	args := []string{"-q", "-F", "-b", "4096", "-m", "0", "-e", "continue",
		"-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard"}
	args = append(args, mkfsArgs...)
	args = append(args, p)
	run(t, "mkfs.ext4", args...)
	return &image{Path: p}
}

// mountAt mounts the image on dir (created if needed) and unmounts it when the test ends.
func (img *image) mountAt(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-o", "loop,acl,user_xattr", img.Path, dir)
	img.mu.Lock()
	img.dir = dir
	img.gen++
	gen := img.gen
	img.mu.Unlock()
	t.Cleanup(func() {
		img.mu.Lock()
		mine := img.gen == gen && img.dir != ""
		if mine {
			img.dir = ""
		}
		img.mu.Unlock()
		if mine {
			if err := unmount(dir); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return dir
}

// unmount unmounts the image (for example to corrupt it with debugfs); mountAt mounts it again.
func (img *image) unmount(t testing.TB) {
	t.Helper()
	img.mu.Lock()
	d := img.dir
	img.dir = ""
	img.mu.Unlock()
	if err := unmount(d); err != nil {
		t.Fatal(err)
	}
}

// newExt4 makes, formats and mounts an ext4 image of sizeMiB and returns its mount point.
func newExt4(t testing.TB, sizeMiB int, mkfsArgs ...string) string {
	t.Helper()
	img := newImage(t, sizeMiB, mkfsArgs...)
	return img.mountAt(t, filepath.Join(filepath.Dir(img.Path), "mnt"))
}

// bindMount mounts directory from on to (a mount point of another file system than to's parent
// when from lives elsewhere) and unmounts it when the test ends.
func bindMount(t testing.TB, from, to string) {
	t.Helper()
	run(t, "mount", "--bind", from, to)
	t.Cleanup(func() {
		if err := unmount(to); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// unmount retries while the file system is busy (a test's goroutine or the kernel may still hold
// it for a moment).
func unmount(dir string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command("umount", dir).CombinedOutput()
		if err == nil {
			return nil
		}
		if !bytes.Contains(out, []byte("busy")) || time.Now().After(deadline) {
			exec.Command("umount", "-l", dir).Run()
			return fmt.Errorf("umount %s: %v: %s", dir, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a command and fails the test with its output if it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ---------------------------------------------------------------------------------------------
// Running the engine

func runMirror(t testing.TB, src, dst string, opts sync.Options) (sync.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	defer cancel()
	rep, err := sync.Mirror(ctx, src, dst, opts)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("Mirror(%s, %s) did not finish within %v", src, dst, mirrorTimeout)
	}
	return rep, err
}

// checks tunes what mirrorWith verifies after a run.
type checks struct {
	rsyncArgs   []string // extra rsync arguments for the oracle (for example -x)
	noSecondRun bool
}

// mirror runs Mirror, requires success without per-file errors, then requires that rsync and our
// own comparison agree that dst is an exact copy of src and that a second run changes nothing.
func mirror(t testing.TB, src, dst string, opts sync.Options) sync.Report {
	t.Helper()
	return mirrorWith(t, src, dst, opts, checks{})
}

func mirrorWith(t testing.TB, src, dst string, opts sync.Options, c checks) sync.Report {
	t.Helper()
	rep, err := runMirror(t, src, dst, opts)
	if err != nil {
		t.Fatalf("Mirror: %v\n%s", err, fmtReport(rep))
	}
	requireNoFileErrors(t, rep)
	if opts.DryRun {
		return rep
	}
	assertRsyncAgreesArgs(t, src, dst, c.rsyncArgs, opts.Exclude...)
	assertSameTree(t, src, dst, opts.Exclude...)
	if !c.noSecondRun {
		assertSecondRunNoChange(t, src, dst, opts)
	}
	return rep
}

// assertSecondRunNoChange runs Mirror again and requires that it changes nothing.
func assertSecondRunNoChange(t testing.TB, src, dst string, opts sync.Options) {
	t.Helper()
	opts.Progress = nil
	opts.DryRun = false
	rep, err := runMirror(t, src, dst, opts)
	if err != nil {
		t.Fatalf("second Mirror: %v\n%s", err, fmtReport(rep))
	}
	requireNoFileErrors(t, rep)
	if rep.Changes() != 0 || rep.BytesCopied != 0 {
		t.Errorf("second Mirror over an up-to-date destination changed something: %s", fmtReport(rep))
	}
}

func requireNoFileErrors(t testing.TB, rep sync.Report) {
	t.Helper()
	if rep.ErrorCount != 0 || len(rep.Errors) != 0 {
		t.Fatalf("Mirror reported per-file errors: %s", fmtReport(rep))
	}
}

func fmtReport(rep sync.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "report{created=%d updated=%d metadataOnly=%d deleted=%d bytesCopied=%d scanned=%d errorCount=%d duration=%v}",
		rep.Created, rep.Updated, rep.MetadataOnly, rep.Deleted, rep.BytesCopied, rep.Scanned, rep.ErrorCount, rep.Duration)
	for i, e := range rep.Errors {
		if i == 20 {
			fmt.Fprintf(&b, "\n  ... %d more", len(rep.Errors)-i)
			break
		}
		fmt.Fprintf(&b, "\n  error: op=%q path=%q err=%v", e.Op, e.Path, e.Err)
	}
	return b.String()
}

// fileErrors returns the reported per-file errors for path.
func fileErrors(rep sync.Report, path string) []sync.FileError {
	var out []sync.FileError
	for _, e := range rep.Errors {
		if e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// Oracles

// assertRsyncAgrees fails when rsync -aHAXS --numeric-ids --delete --checksum in dry-run itemize
// mode would change anything in dst: rsync agrees that the trees are identical.
func assertRsyncAgrees(t testing.TB, src, dst string, excludes ...string) {
	t.Helper()
	assertRsyncAgreesArgs(t, src, dst, nil, excludes...)
}

func assertRsyncAgreesArgs(t testing.TB, src, dst string, extra []string, excludes ...string) {
	t.Helper()
	if out := rsyncDiff(t, src, dst, extra, excludes...); out != "" {
		t.Errorf("rsync says the destination differs from the source (itemized changes it would make):\n%s", out)
	}
}

func rsyncDiff(t testing.TB, src, dst string, extra []string, excludes ...string) string {
	t.Helper()
	// --modify-window=-1: compare mtimes to the nanosecond (rsync otherwise ignores nanoseconds).
	args := []string{"-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum", "--modify-window=-1"}
	args = append(args, extra...)
	for _, e := range excludes {
		args = append(args, "--exclude=/"+e)
	}
	args = append(args, src+"/", dst+"/")
	out, err := exec.Command("rsync", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rsync %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// entry is what the tests compare of one file system object.
type entry struct {
	Type   uint32 // S_IFMT bits
	Mode   uint32 // full st_mode
	Uid    uint32
	Gid    uint32
	Size   int64 // regular files and symlinks
	Mtime  int64 // nanoseconds
	Rdev   uint64
	Target string // symlink target
	Hash   string // regular file content
	Xattrs string // every xattr, sorted, name=hex(value)
	Group  string // first path (sorted) of its hard-link group inside the tree; "" if alone
	Ino    uint64
	Dev    uint64
	Blocks int64
	Nlink  uint64
}

// snapshot walks root (lstat, never following symlinks, not descending into other file systems)
// and records every entry except the excluded paths; the root itself is ".".
func snapshot(t testing.TB, root string, excludes ...string) map[string]entry {
	t.Helper()
	var rootSt unix.Stat_t
	if err := unix.Lstat(root, &rootSt); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	ex := map[string]bool{}
	for _, e := range excludes {
		ex[strings.Trim(e, "/")] = true
	}
	out := map[string]entry{}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		e := entry{Type: st.Mode & unix.S_IFMT, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid,
			Mtime: st.Mtim.Nano(), Ino: st.Ino, Dev: st.Dev, Blocks: st.Blocks, Nlink: uint64(st.Nlink)}
		e.Xattrs = xattrString(t, p)
		switch e.Type {
		case unix.S_IFREG:
			e.Size = st.Size
			e.Hash = hashFile(t, p)
		case unix.S_IFLNK:
			e.Size = st.Size
			tg, err := os.Readlink(p)
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			e.Target = tg
		case unix.S_IFCHR, unix.S_IFBLK:
			e.Rdev = st.Rdev
		}
		out[rel] = e
		if e.Type == unix.S_IFDIR && st.Dev == rootSt.Dev {
			ents, err := os.ReadDir(p)
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			for _, d := range ents {
				r := filepath.Join(rel, d.Name())
				if ex[r] {
					continue
				}
				walk(r)
			}
		}
	}
	walk(".")
	// Hard-link groups, by the smallest path of each inode inside the tree.
	byIno := map[uint64][]string{}
	for p, e := range out {
		if e.Type != unix.S_IFDIR && e.Nlink > 1 {
			byIno[e.Ino] = append(byIno[e.Ino], p)
		}
	}
	for _, ps := range byIno {
		if len(ps) < 2 {
			continue
		}
		sort.Strings(ps)
		for _, p := range ps {
			e := out[p]
			e.Group = ps[0]
			out[p] = e
		}
	}
	return out
}

func xattrString(t testing.TB, p string) string {
	t.Helper()
	names := listXattrs(t, p)
	var parts []string
	for _, n := range names {
		parts = append(parts, n+"="+hex.EncodeToString(getXattr(t, p, n)))
	}
	return strings.Join(parts, " ")
}

func listXattrs(t testing.TB, p string) []string {
	t.Helper()
	buf := make([]byte, 64*kib)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", p, err)
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	return names
}

func getXattr(t testing.TB, p, name string) []byte {
	t.Helper()
	buf := make([]byte, 64*kib)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		t.Fatalf("lgetxattr %s %s: %v", p, name, err)
	}
	return append([]byte(nil), buf[:n]...)
}

func hashFile(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := f.WriteTo(h); err != nil {
		t.Fatalf("hash %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cmpOpts selects what diffSnapshots compares beyond type, mode, owner, size, content, target,
// rdev, xattrs (so ACLs), nanosecond mtimes and hard-link groups.
type cmpOpts struct {
	inodes       bool // same inode numbers (nothing was replaced)
	noDirMtimes  bool // ignore directory mtimes
	noRootMtime  bool // ignore the mtime of the root
	ignoreBlocks bool
}

// diffSnapshots lists the differences between two snapshots, at most 50.
func diffSnapshots(a, b map[string]entry, o cmpOpts) []string {
	var diffs []string
	add := func(f string, args ...any) {
		if len(diffs) < 50 {
			diffs = append(diffs, fmt.Sprintf(f, args...))
		}
	}
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		x, okx := a[p]
		y, oky := b[p]
		switch {
		case !okx:
			add("%q: only in the second tree (%s)", p, typeName(y.Type))
			continue
		case !oky:
			add("%q: missing from the second tree (%s)", p, typeName(x.Type))
			continue
		}
		if x.Type != y.Type {
			add("%q: type %s != %s", p, typeName(x.Type), typeName(y.Type))
			continue
		}
		if x.Mode != y.Mode {
			add("%q: mode %#o != %#o", p, x.Mode, y.Mode)
		}
		if x.Uid != y.Uid || x.Gid != y.Gid {
			add("%q: owner %d:%d != %d:%d", p, x.Uid, x.Gid, y.Uid, y.Gid)
		}
		if x.Size != y.Size && x.Type != unix.S_IFDIR {
			add("%q: size %d != %d", p, x.Size, y.Size)
		}
		if x.Hash != y.Hash {
			add("%q: content differs", p)
		}
		if x.Target != y.Target {
			add("%q: symlink target %q != %q", p, x.Target, y.Target)
		}
		if x.Rdev != y.Rdev {
			add("%q: rdev %d:%d != %d:%d", p, unix.Major(x.Rdev), unix.Minor(x.Rdev), unix.Major(y.Rdev), unix.Minor(y.Rdev))
		}
		if x.Xattrs != y.Xattrs {
			add("%q: xattrs differ:\n    %s\n    %s", p, x.Xattrs, y.Xattrs)
		}
		skipMtime := (o.noDirMtimes && x.Type == unix.S_IFDIR) || (o.noRootMtime && p == ".")
		if x.Mtime != y.Mtime && !skipMtime {
			add("%q: mtime %s != %s", p, time.Unix(0, x.Mtime).UTC().Format(time.RFC3339Nano), time.Unix(0, y.Mtime).UTC().Format(time.RFC3339Nano))
		}
		if x.Group != y.Group {
			add("%q: hard-link group %q != %q", p, x.Group, y.Group)
		}
		if o.inodes && x.Ino != y.Ino {
			add("%q: inode %d != %d (the entry was replaced)", p, x.Ino, y.Ino)
		}
		if o.inodes && !o.ignoreBlocks && x.Blocks != y.Blocks && x.Type == unix.S_IFREG {
			add("%q: blocks %d != %d", p, x.Blocks, y.Blocks)
		}
	}
	return diffs
}

// assertSameTree is the second oracle: every entry of src is in dst with the same type, full
// mode, numeric owner, content, symlink target, rdev, xattrs (so ACLs), nanosecond mtime and
// hard-link group, and dst has nothing else (excluded paths aside).
func assertSameTree(t testing.TB, src, dst string, excludes ...string) {
	t.Helper()
	if d := diffSnapshots(snapshot(t, src, excludes...), snapshot(t, dst, excludes...), cmpOpts{}); len(d) > 0 {
		t.Errorf("destination differs from the source (first: source, second: destination):\n  %s", strings.Join(d, "\n  "))
	}
}

// assertUnchanged compares a snapshot taken before with the tree now.
func assertUnchanged(t testing.TB, what string, before map[string]entry, root string, o cmpOpts, excludes ...string) {
	t.Helper()
	if d := diffSnapshots(before, snapshot(t, root, excludes...), o); len(d) > 0 {
		t.Errorf("%s changed (first: before, second: after):\n  %s", what, strings.Join(d, "\n  "))
	}
}

func typeName(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "char device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("type %#o", m&unix.S_IFMT)
}

// ---------------------------------------------------------------------------------------------
// Tree builder

// node describes one entry to create. Type is one of: 'f' regular file, 'd' directory, 'l'
// symlink, 'h' hard link to Target (a path in the same tree), 'c' char device, 'b' block device,
// 'p' fifo, 's' socket. Path "." is the root itself (only its metadata is applied).
type node struct {
	Path   string
	Type   byte
	Data   string  // file content
	Chunks []chunk // sparse file: data written at offsets...
	Size   int64   // ...then truncated to Size
	Target string
	Rdev   uint64
	Mode   *uint32 // permission and setuid/setgid/sticky bits; nil: 0644 files, 0755 dirs
	Uid    int
	Gid    int
	Xattrs map[string]string
	ACL    string    // setfacl -m spec of the access ACL
	DefACL string    // setfacl -d -m spec of the default ACL (directories)
	Mtime  time.Time // zero: left as created
}

type chunk struct {
	Off  int64
	Data []byte
}

func mode(m uint32) *uint32 { return &m }

// build creates the nodes under root in order, then applies owners, ACLs, modes, xattrs (after
// the owner: chown clears security.capability and setuid) and at last the mtimes, so that
// directory mtimes are not disturbed by their children. An existing path is replaced unless both
// are directories.
func build(t testing.TB, root string, nodes ...node) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(root, n.Path)
		if n.Path == "." {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(p); err == nil {
			if !(fi.IsDir() && n.Type == 'd') {
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
			}
		}
		var err error
		switch n.Type {
		case 'f':
			err = writeNode(p, n)
		case 'd':
			err = os.MkdirAll(p, 0o755)
		case 'l':
			err = os.Symlink(n.Target, p)
		case 'h':
			err = os.Link(filepath.Join(root, n.Target), p)
		case 'c':
			err = unix.Mknod(p, unix.S_IFCHR|0o644, int(n.Rdev))
		case 'b':
			err = unix.Mknod(p, unix.S_IFBLK|0o644, int(n.Rdev))
		case 'p':
			err = unix.Mkfifo(p, 0o644)
		case 's':
			err = unix.Mknod(p, unix.S_IFSOCK|0o755, 0)
		default:
			t.Fatalf("build: unknown type %q", n.Type)
		}
		if err != nil {
			t.Fatalf("build %s: %v", n.Path, err)
		}
	}
	for _, n := range nodes {
		if n.Type == 'h' {
			continue
		}
		p := filepath.Join(root, n.Path)
		if err := unix.Lchown(p, n.Uid, n.Gid); err != nil {
			t.Fatalf("build: lchown %s: %v", n.Path, err)
		}
		if n.ACL != "" {
			run(t, "setfacl", "-m", n.ACL, p)
		}
		if n.DefACL != "" {
			run(t, "setfacl", "-d", "-m", n.DefACL, p)
		}
		if n.Mode != nil {
			if err := unix.Chmod(p, *n.Mode); err != nil {
				t.Fatalf("build: chmod %s: %v", n.Path, err)
			}
		}
		keys := make([]string, 0, len(n.Xattrs))
		for k := range n.Xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := unix.Lsetxattr(p, k, []byte(n.Xattrs[k]), 0); err != nil {
				t.Fatalf("build: lsetxattr %s %s: %v", n.Path, k, err)
			}
		}
	}
	for _, n := range nodes {
		if !n.Mtime.IsZero() {
			setMtime(t, filepath.Join(root, n.Path), n.Mtime)
		}
	}
}

func writeNode(p string, n node) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(n.Data); err != nil {
		f.Close()
		return err
	}
	for _, c := range n.Chunks {
		if _, err := f.WriteAt(c.Data, c.Off); err != nil {
			f.Close()
			return err
		}
	}
	if n.Size > 0 {
		if err := f.Truncate(n.Size); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// setMtime sets the mtime (and atime) of p to tm with nanoseconds, without following a symlink.
func setMtime(t testing.TB, p string, tm time.Time) {
	t.Helper()
	ts := unix.NsecToTimespec(tm.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatalf("utimensat %s: %v", p, err)
	}
}

// pattern returns n deterministic, non-zero bytes that depend on seed (so never sparse-able and
// different for different seeds). Up to patternBaseSize bytes, it shares its memory with other
// calls: do not modify it (appending is fine).
func pattern(n int, seed byte) []byte {
	base := patternBase(seed)
	if n <= len(base) {
		return base[:n:n]
	}
	b := make([]byte, n)
	for i := 0; i < n; {
		i += copy(b[i:], base)
	}
	return b
}

// patternBaseSize is odd so that repetitions do not align on blocks.
const patternBaseSize = 64*kib + 7

var (
	patternMu    gosync.Mutex
	patternCache = map[byte][]byte{}
)

// patternBase is patternBaseSize bytes of numbered text lines for seed.
func patternBase(seed byte) []byte {
	patternMu.Lock()
	defer patternMu.Unlock()
	if b, ok := patternCache[seed]; ok {
		return b
	}
	b := make([]byte, 0, patternBaseSize+64)
	for i := 0; len(b) < patternBaseSize; i++ {
		b = append(b, "tails-backup test data, seed "...)
		b = strconv.AppendInt(b, int64(seed), 10)
		b = append(b, ", line "...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\n')
	}
	b = b[:patternBaseSize:patternBaseSize]
	patternCache[seed] = b
	return b
}

// writeFile writes data to p (replacing it: a new inode) and sets the mtime when given.
func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeBig writes size bytes of pattern(seed) to p in 1 MiB chunks.
func writeBig(t testing.TB, p string, size int64, seed byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := pattern(mib, seed)
	for off := int64(0); off < size; off += mib {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return st
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// freeBytes is what root may still write on the file system holding p.
func freeBytes(t testing.TB, p string) int64 {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(p, &s); err != nil {
		t.Fatal(err)
	}
	return int64(s.Bfree) * s.Bsize
}

// relPaths lists every path under root (excluding root), sorted.
func relPaths(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			r, _ := filepath.Rel(root, p)
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// isVanished says whether a per-file error is classified as a vanished source entry.
func isVanished(e sync.FileError) bool {
	return e.Op == "vanished" || errors.Is(e.Err, sync.ErrVanished)
}

// eventLog records Progress events, runs an optional hook on each, and detects concurrent calls.
type eventLog struct {
	hook       func(sync.Progress)
	inFlight   atomic.Int32
	concurrent atomic.Bool

	mu     gosync.Mutex
	events []sync.Progress
}

func (l *eventLog) record(p sync.Progress) {
	if l.inFlight.Add(1) > 1 {
		l.concurrent.Store(true)
	}
	defer l.inFlight.Add(-1)
	l.mu.Lock()
	l.events = append(l.events, p)
	l.mu.Unlock()
	if l.hook != nil {
		l.hook(p)
	}
}

func (l *eventLog) list() []sync.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sync.Progress(nil), l.events...)
}
