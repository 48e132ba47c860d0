package sync_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// ext4's shutdown ioctl, EXT4_IOC_SHUTDOWN = _IOR('X', 125, __u32), with
// EXT4_GOING_FLAGS_NOLOGFLUSH: the file system stops at once, without writing back dirty pages
// nor committing the running journal transaction. What the device holds then is what it would
// hold if the stick were pulled at that instant: the committed transactions and the data blocks
// written so far, nothing of the page cache.
const (
	ext4IocShutdown          = 0x8004587D
	ext4GoingFlagsNoLogFlush = 2
)

// crashTree describes the files of the crash test: path → content, for the old and the new
// version of each file.
type crashTree map[string][]byte

// makeCrashTrees returns an old and a new version of files files spread over folders, of sizes
// from a few bytes to 2 MiB (a mix like a Persistent Storage's: many small files, some large),
// every new version different from the old one in size and content; one file in eight is new
// (absent from the old tree), and eight pairs of files are hard links.
func makeCrashTrees(files int, seed uint64) (old, new crashTree) {
	rng := rand.New(rand.NewPCG(seed, 1))
	size := func() int {
		if rng.IntN(4) == 0 {
			return 256*kib + rng.IntN(1792*kib)
		}
		return 1 + rng.IntN(64*kib)
	}
	content := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32()) | 1 // never a block of zeros: no holes
		}
		return b
	}
	old, new = crashTree{}, crashTree{}
	for i := 0; i < files; i++ {
		rel := fmt.Sprintf("d%02d/f%04d", i%8, i)
		if i%8 == 7 {
			new[rel] = content(size()) // created by the update: its old version is no file
			continue
		}
		o := size()
		n := size()
		for n == o {
			n = size()
		}
		old[rel], new[rel] = content(o), content(n)
	}
	// Hard-link groups: "-b" is a link to "-a" (see writeCrashTree). Both members wait
	// behind the barrier, the second linked to the first's temporary.
	for g := 0; g < 8; g++ {
		o, n := content(size()), content(size())
		for _, m := range []string{"a", "b"} {
			rel := fmt.Sprintf("links/g%d-%s", g, m)
			old[rel], new[rel] = o, n
		}
	}
	return old, new
}

func writeCrashTree(t *testing.T, root string, tree crashTree) {
	t.Helper()
	for rel, data := range tree {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for rel := range tree {
		if a, ok := strings.CutSuffix(rel, "-b"); ok {
			p := filepath.Join(root, rel)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(filepath.Join(root, a+"-a"), p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCrashKeepsOldOrNewVersions cuts the power of an ext4 destination (default mount options:
// data=ordered, delalloc, auto_da_alloc, 5 s journal commits) in the middle of an update that
// replaces every file, after a chosen number of renames of new versions over old ones, and then
// checks, after the journal is replayed, that every file is exactly its old or its new version:
// none torn, none empty. The next run must then finish the update.
func TestCrashKeepsOldOrNewVersions(t *testing.T) {
	parallel(t)
	const files = 320
	old, new := makeCrashTrees(files, 10)
	src, base := crashUpdate(t, old, new, 1024)

	for _, point := range []int{1, 40, 150, 290} {
		t.Run(fmt.Sprintf("after %d renames", point), func(t *testing.T) {
			img, dst, root := cutCopy(t, base, fmt.Sprintf("cut-%d", point))
			var renames, atCut atomic.Int64
			cut := make(chan error, 1)
			opts := sync.WithAfterRename(sync.Options{}, func(rel string) {
				if renames.Add(1) != int64(point) {
					return
				}
				err := commitAndCut(dst, filepath.Dir(rel), root)
				atCut.Store(renames.Load()) // other goroutines may rename while this one cuts
				cut <- err
			})
			_, runErr := runMirror(t, src, dst, opts)
			unix.Close(root) // once: other tests of the package run in parallel and reuse numbers
			select {
			case err := <-cut:
				if err != nil {
					t.Fatalf("EXT4_IOC_SHUTDOWN: %v", err)
				}
			default:
				t.Fatalf("the run made %d renames, never reaching %d (error: %v)", renames.Load(), point, runErr)
			}
			if runErr == nil {
				t.Errorf("the run went on after the file system was shut down")
			}
			img.unmount(t)
			dst = img.mountAt(t, dst) // replays the journal, as Tails' next mount would
			nOld, nNew, torn := oldOrNew(dst, old, new)
			t.Logf("cut after %d renames (%d at the shutdown): %d files old, %d new, %d torn", point, atCut.Load(), nOld, nNew, len(torn))
			if len(torn) > 0 {
				t.Errorf("%d of %d files are neither their old nor their new version after the cut, for example:\n%s",
					len(torn), len(new), strings.Join(torn[:min(len(torn), 10)], "\n"))
			}
			// The next run finishes the update and leaves no temporary.
			mirror(t, src, dst, sync.Options{})
			img.unmount(t)
			run(t, "e2fsck", "-fn", img.Path)
		})
	}
}

// TestMirrorRenameBatches runs updates that change every kind of entry (data, type, hard-link
// groups, folders replaced by files and back, folder metadata) with the rename barrier
// committing tiny batches: one entry, two, one byte of data, one folder held, or a batch per
// millisecond. Each must leave an exact copy, folder mtimes included (a folder's metadata set
// before a rename into it would be changed again), and a second run with nothing to do.
func TestMirrorRenameBatches(t *testing.T) {
	before := []node{
		{Path: "a/f1", Type: 'f', Data: "one"}, {Path: "a/f2", Type: 'f', Data: "two"},
		{Path: "a/sub/f3", Type: 'f', Data: string(pattern(300*kib, 1))},
		{Path: "a/sub/deeper/f4", Type: 'f', Data: "four"},
		{Path: "todir", Type: 'f', Data: "file, then a folder"},
		{Path: "tofile/x/y", Type: 'f', Data: "a folder, then a file"},
		{Path: "hl/a", Type: 'f', Data: "group"}, {Path: "hl/b", Type: 'h', Target: "hl/a"},
		{Path: "sym", Type: 'l', Target: "old"},
		{Path: "gone/g", Type: 'f', Data: "deleted"},
		{Path: "a", Type: 'd', Mtime: t1}, {Path: "a/sub", Type: 'd', Mtime: t1},
	}
	after := []node{
		{Path: "a/f1", Type: 'f', Data: "one, longer"}, {Path: "a/f2", Type: 'f', Data: "2"},
		{Path: "a/new", Type: 'f', Data: "created"},
		{Path: "a/sub/f3", Type: 'f', Data: string(pattern(200*kib, 2))},
		{Path: "a/sub/deeper/f4", Type: 'f', Data: "four!"},
		{Path: "a/sub/newdir/f5", Type: 'f', Data: "in a new folder"},
		{Path: "todir/in", Type: 'f', Data: "in"},
		{Path: "tofile", Type: 'f', Data: "now a file"},
		{Path: "hl/a", Type: 'f', Data: "group, changed"}, {Path: "hl/b", Type: 'h', Target: "hl/a"},
		{Path: "hl/c", Type: 'h', Target: "hl/a"},
		{Path: "sym", Type: 'l', Target: "new target"},
		{Path: "a/sub/deeper", Type: 'd', Mode: mode(0o750), Mtime: t2},
		{Path: "a/sub/newdir", Type: 'd', Mtime: t1},
		{Path: "a/sub", Type: 'd', Mtime: t2}, {Path: "a", Type: 'd', Mtime: t2},
		{Path: "todir", Type: 'd', Mtime: t1},
		{Path: ".", Type: 'd', Mtime: t1},
	}
	cases := []struct {
		name  string
		ops   int
		bytes int64
		dirs  int
		age   time.Duration
	}{
		{name: "one entry a batch", ops: 1},
		{name: "two entries a batch", ops: 2},
		{name: "one byte a batch", bytes: 1},
		{name: "one folder held", dirs: 1},
		{name: "a batch a millisecond", age: time.Millisecond},
		{name: "defaults"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parallel(t)
			src := newExt4(t, 32)
			dst := newExt4(t, 32)
			build(t, src, before...)
			mirror(t, src, dst, sync.Options{})
			rm(t, src, "a/f1", "todir", "tofile", "hl", "gone", "sym")
			build(t, src, after...)
			var renames atomic.Int64
			opts := sync.WithAfterRename(sync.WithBatches(sync.Options{}, c.ops, c.bytes, c.dirs, c.age),
				func(string) { renames.Add(1) })
			mirror(t, src, dst, opts)
			if renames.Load() == 0 {
				t.Errorf("no rename went through the barrier")
			}
		})
	}
}

// crashUpdate writes the tree old in a folder of /dev/shm (skipping the test without one),
// mirrors it onto a new ext4 image of sizeMiB, unmounted afterwards, and then makes the source
// the tree new: the update that a test cuts in the middle, on copies of that image (cutCopy).
func crashUpdate(t *testing.T, old, new crashTree, sizeMiB int) (src string, base *image) {
	t.Helper()
	shm, err := os.MkdirTemp("/dev/shm", "tails-backup-crash-")
	if err != nil {
		t.Skipf("no /dev/shm for the images: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	src = filepath.Join(shm, "src")
	writeCrashTree(t, src, old)
	base = newImageAt(t, filepath.Join(shm, "base.img"), sizeMiB)
	dst := base.mountAt(t, filepath.Join(shm, "dst"))
	if _, err := runMirror(t, src, dst, sync.Options{}); err != nil {
		t.Fatalf("first copy: %v", err)
	}
	base.unmount(t)
	writeCrashTree(t, src, new)
	return src, base
}

// cutCopy copies the image base to name.img beside it and mounts the copy at name: a
// destination to cut in the middle of a run. root is its root, open for commitAndCut; the
// caller closes it once the run has returned.
func cutCopy(t *testing.T, base *image, name string) (img *image, dst string, root int) {
	t.Helper()
	dir := filepath.Dir(base.Path)
	img = &image{Path: filepath.Join(dir, name+".img")}
	run(t, "cp", "--sparse=always", base.Path, img.Path)
	t.Cleanup(func() { os.Remove(img.Path) })
	dst = img.mountAt(t, filepath.Join(dir, name))
	root, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return img, dst, root
}

// commitAndCut pulls the destination dst, whose root is open as root, as a power cut would
// after a journal commit. The journal commits every 5 s whatever the engine does (or when any
// process calls fsync): it is committed now, as its timer could have, by an fsync of the folder
// dir of dst, which commits the running transaction and so the renames made so far, but
// writes no delayed-allocation data. Then the file system is shut down without flushing its
// log.
func commitAndCut(dst, dir string, root int) error {
	if d, err := os.Open(filepath.Join(dst, dir)); err == nil {
		d.Sync()
		d.Close()
	}
	return unix.IoctlSetPointerInt(root, ext4IocShutdown, ext4GoingFlagsNoLogFlush)
}

// oldOrNew reads each file of new under dst: nOld hold their old version (or are absent, as
// they were), nNew their new one; torn, sorted, describes the others.
func oldOrNew(dst string, old, new crashTree) (nOld, nNew int, torn []string) {
	for rel, want := range new {
		was, existed := old[rel]
		got, err := os.ReadFile(filepath.Join(dst, rel))
		switch {
		case os.IsNotExist(err) && !existed:
			nOld++
		case err != nil:
			torn = append(torn, fmt.Sprintf("%s: %v", rel, err))
		case existed && string(got) == string(was):
			nOld++
		case string(got) == string(want):
			nNew++
		default:
			torn = append(torn, fmt.Sprintf("%s: %d bytes (old %d, new %d)", rel, len(got), len(was), len(want)))
		}
	}
	sort.Strings(torn)
	return nOld, nNew, torn
}
