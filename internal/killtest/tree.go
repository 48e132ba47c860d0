//go:build linux

package killtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Shape is the size of a generated tree.
type Shape struct {
	Dirs, FilesPerDir int   // the small files, in Dirs folders
	MaxSmall          int   // a small file holds 0 to MaxSmall bytes
	Large             int   // files of LargeSize bytes (more after the week)
	LargeSize         int64 // several MiB: a kill lands in them
	Groups            int   // hard-link groups of 2 or 3 members, in different folders
	Symlinks          int
	// UID and GID own every entry (amnesia's in a Persistent Storage).
	UID, GID int
}

// Tree is a generated tree: what it holds, so that Week can change it.
type Tree struct {
	Shape
	rng     *rand.Rand
	data    *rand.ChaCha8
	base    time.Time // the old entries' mtimes are before it, the week's after
	dirs    []string
	files   []string // small files alone in their inode
	large   []string
	groups  [][]string
	links   []string
	typeDir string // a folder that becomes a file
}

// Generate writes a tree of shape sh at root (an existing, empty folder), drawn from rng.
func Generate(t testing.TB, root string, rng *rand.Rand, sh Shape) *Tree {
	t.Helper()
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rng.Uint32())
	}
	tr := &Tree{Shape: sh, rng: rng, data: rand.NewChaCha8(seed),
		base: time.Date(2026, 10, 25, 12, 0, 0, 0, time.UTC)}
	g := &gen{t: t, tr: tr, root: root}
	for i := range sh.Dirs {
		d := fmt.Sprintf("d%03d", i)
		if i%7 == 3 {
			d = filepath.Join(fmt.Sprintf("d%03d", i-1), "sub")
		}
		g.mkdir(d, []uint32{0o755, 0o700, 0o750}[i%3])
		tr.dirs = append(tr.dirs, d)
		for j := range sh.FilesPerDir {
			p := filepath.Join(d, fmt.Sprintf("f%04d", j))
			g.file(p, rng.IntN(sh.MaxSmall+1), g.oldTime())
			if rng.IntN(10) == 0 {
				g.xattr(p, "user.tag", "v1")
			}
			tr.files = append(tr.files, p)
		}
	}
	g.mkdir("large", 0o755)
	for i := range sh.Large {
		p := filepath.Join("large", fmt.Sprintf("big%d", i))
		g.file(p, int(sh.LargeSize), g.oldTime())
		tr.large = append(tr.large, p)
	}
	for i := range sh.Groups {
		n := 2 + i%2
		var members []string
		for m := range n {
			members = append(members, filepath.Join(tr.dirs[(i+m*5)%len(tr.dirs)], fmt.Sprintf("g%03d-%d", i, m)))
		}
		g.file(members[0], 1+rng.IntN(8<<10), g.oldTime())
		for _, m := range members[1:] {
			g.link(members[0], m)
		}
		tr.groups = append(tr.groups, members)
	}
	g.mkdir("links", 0o755)
	for i := range sh.Symlinks {
		p := filepath.Join("links", fmt.Sprintf("l%03d", i))
		g.symlink(g.target(), p)
		tr.links = append(tr.links, p)
	}
	tr.typeDir = "becomes-a-file"
	g.mkdir(tr.typeDir, 0o755)
	for i := range 3 {
		g.file(filepath.Join(tr.typeDir, fmt.Sprintf("x%d", i)), 100, g.oldTime())
	}
	return tr
}

// Week makes of the tree at root (a copy of the generated one) what a week of use makes of it:
// files written (in place, at their size or not), created, deleted and renamed, a folder
// renamed, modes and xattrs changed, the large files rewritten, grown and added, hard-link
// groups rewritten in place, replaced by a new inode, gaining, losing and dropping members,
// symlinks retargeted, and entries that change type.
func (tr *Tree) Week(t testing.TB, root string) {
	t.Helper()
	g := &gen{t: t, tr: tr, root: root}
	rng := tr.rng
	files := append([]string{}, tr.files...)
	rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	take := func(frac float64) []string {
		n := max(1, int(float64(len(tr.files))*frac))
		n = min(n, len(files))
		out := files[:n]
		files = files[n:]
		return out
	}
	for _, p := range take(0.08) { // written
		size := rng.IntN(tr.MaxSmall + 1)
		if rng.IntN(3) == 0 {
			size = g.size(p) // same size, other content
		}
		g.rewrite(p, size)
	}
	for _, p := range take(0.04) {
		g.remove(p)
	}
	for _, p := range take(0.03) { // moved to another folder, under another name
		to := filepath.Join(tr.dirs[rng.IntN(len(tr.dirs))], "moved-"+strings.ReplaceAll(p, "/", "-"))
		g.rename(p, to)
	}
	for _, p := range take(0.03) {
		g.chmod(p, 0o600)
	}
	for _, p := range take(0.03) {
		g.xattr(p, "user.tag", "v2")
	}
	for i := range max(1, len(tr.files)/20) { // created
		d := tr.dirs[rng.IntN(len(tr.dirs))]
		if i%10 == 0 {
			d = filepath.Join("new", fmt.Sprintf("n%02d", i/10))
			g.mkdirAll(d)
		}
		g.file(filepath.Join(d, fmt.Sprintf("new%04d", i)), rng.IntN(tr.MaxSmall+1), g.newTime())
	}
	for _, p := range take(0.005) { // a file becomes a symlink
		g.remove(p)
		g.symlink(g.target(), p)
	}
	for _, p := range take(0.005) { // a file becomes a folder
		g.remove(p)
		g.mkdir(p, 0o755)
		g.file(filepath.Join(p, "inside"), 10, g.newTime())
	}
	for i, p := range tr.large {
		switch i % 3 {
		case 0:
			g.rewrite(p, int(tr.LargeSize)) // same size
		case 1:
			g.rewrite(p, int(tr.LargeSize)+1<<20+rng.IntN(4096))
		}
	}
	g.file(filepath.Join("large", "big-new"), int(tr.LargeSize), g.newTime())

	for i, m := range tr.groups {
		switch i % 5 {
		case 0: // rewritten in place: every member changes
			g.rewrite(m[0], 1+rng.IntN(8<<10))
		case 1: // a new member
			g.link(m[0], m[0]+"-more")
		case 2: // a member deleted: the others keep the inode
			g.remove(m[len(m)-1])
		case 3: // a member leaves the group for a copy of its own
			g.remove(m[1])
			g.file(m[1], 1+rng.IntN(8<<10), g.newTime())
		case 4: // saved by an editor: a new inode, linked again
			for _, p := range m {
				g.remove(p)
			}
			g.file(m[0], 1+rng.IntN(8<<10), g.newTime())
			for _, p := range m[1:] {
				g.link(m[0], p)
			}
		}
	}
	for i, p := range tr.links {
		switch i % 5 {
		case 0:
			g.remove(p)
			g.symlink(g.target(), p)
		case 1:
			g.remove(p) // a symlink becomes a file
			g.file(p, 50, g.newTime())
		}
	}
	g.removeAll(tr.typeDir) // a folder becomes a file
	g.file(tr.typeDir, 200, g.newTime())
	// A folder renamed, with what it holds (last: the changes above use the old paths);
	// another's mode changed.
	last := tr.dirs[len(tr.dirs)-1]
	g.rename(last, last+"-renamed")
	g.chmod(tr.dirs[0], 0o711)
}

// gen writes into one tree.
type gen struct {
	t    testing.TB
	tr   *Tree
	root string
}

func (g *gen) p(rel string) string { return filepath.Join(g.root, rel) }

func (g *gen) must(err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatal(err)
	}
}

func (g *gen) oldTime() time.Time {
	return g.tr.base.Add(-time.Duration(g.tr.rng.Int64N(int64(30 * 24 * time.Hour))))
}

func (g *gen) newTime() time.Time {
	return g.tr.base.Add(7*24*time.Hour + time.Duration(g.tr.rng.Int64N(int64(24*time.Hour))))
}

func (g *gen) own(rel string) {
	g.t.Helper()
	g.must(os.Lchown(g.p(rel), g.tr.UID, g.tr.GID))
}

func (g *gen) mkdir(rel string, mode uint32) {
	g.t.Helper()
	g.must(os.Mkdir(g.p(rel), 0o700))
	g.own(rel)
	g.must(os.Chmod(g.p(rel), os.FileMode(mode)))
}

func (g *gen) mkdirAll(rel string) {
	g.t.Helper()
	if _, err := os.Lstat(g.p(rel)); err == nil {
		return
	}
	if d := filepath.Dir(rel); d != "." {
		g.mkdirAll(d)
	}
	g.mkdir(rel, 0o755)
}

// file writes a new file of size random bytes, with mtime tm.
func (g *gen) file(rel string, size int, tm time.Time) {
	g.t.Helper()
	g.write(rel, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, size, tm)
	g.own(rel)
	g.must(os.Chmod(g.p(rel), 0o644))
}

// rewrite writes size new random bytes into the existing file, in place (the inode stays).
func (g *gen) rewrite(rel string, size int) {
	g.t.Helper()
	g.write(rel, unix.O_WRONLY|unix.O_TRUNC, size, g.newTime())
}

func (g *gen) write(rel string, flags, size int, tm time.Time) {
	g.t.Helper()
	// pwrite(2) from x/sys/unix: the race detector does not check each byte it writes, as it
	// does for os.File.Write.
	fd, err := unix.Open(g.p(rel), flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	g.must(err)
	buf := make([]byte, min(size, 1<<20))
	for off := 0; off < size; {
		n := min(size-off, len(buf))
		_, _ = g.tr.data.Read(buf[:n])
		for w := 0; w < n; {
			m, err := unix.Pwrite(fd, buf[w:n], int64(off+w))
			g.must(err)
			w += m
		}
		off += n
	}
	g.must(unix.Close(fd))
	g.must(os.Chtimes(g.p(rel), tm, tm))
}

func (g *gen) size(rel string) int {
	g.t.Helper()
	st, err := os.Lstat(g.p(rel))
	g.must(err)
	return int(st.Size())
}

func (g *gen) link(from, to string) {
	g.t.Helper()
	g.must(os.Link(g.p(from), g.p(to)))
}

func (g *gen) symlink(target, rel string) {
	g.t.Helper()
	g.must(os.Symlink(target, g.p(rel)))
	g.own(rel)
}

// target is a symlink target: relative, absolute, dangling, long.
func (g *gen) target() string {
	switch g.tr.rng.IntN(4) {
	case 0:
		return "../" + g.tr.files[g.tr.rng.IntN(len(g.tr.files))]
	case 1:
		return fmt.Sprintf("/home/amnesia/Persistent/doc%d.odt", g.tr.rng.IntN(1000))
	case 2:
		return fmt.Sprintf("dangling-%d", g.tr.rng.IntN(1000))
	}
	return fmt.Sprintf("%0200d", g.tr.rng.IntN(1000))
}

func (g *gen) remove(rel string) {
	g.t.Helper()
	g.must(os.Remove(g.p(rel)))
}

func (g *gen) removeAll(rel string) {
	g.t.Helper()
	g.must(os.RemoveAll(g.p(rel)))
}

func (g *gen) rename(from, to string) {
	g.t.Helper()
	g.must(os.Rename(g.p(from), g.p(to)))
}

func (g *gen) chmod(rel string, mode uint32) {
	g.t.Helper()
	g.must(os.Chmod(g.p(rel), os.FileMode(mode)))
}

func (g *gen) xattr(rel, name, value string) {
	g.t.Helper()
	g.must(unix.Lsetxattr(g.p(rel), name, []byte(value), 0))
}
