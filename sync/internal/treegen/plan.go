package treegen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"time"
)

// Spec describes a synthetic tree. BenchSpec gives the benchmark's shape; tests shrink it.
type Spec struct {
	// Files is the number of non-directory names: regular files, extra hard-link names, symlinks.
	Files int
	Seed  uint64
	// EntriesPerDir is the mean number of files per directory; it sets the number of directories.
	EntriesPerDir int
	// SmallMax caps the size of ordinary files, whose sizes are log-normal with a 2 KiB median.
	SmallMax int64
	// LargeEvery makes one file in LargeEvery large, of a size uniform in [LargeMin, LargeMax].
	LargeEvery         int
	LargeMin, LargeMax int64
	// SparseEvery makes one file in SparseEvery sparse: SparseSize apparent, a few data extents.
	SparseEvery int
	SparseSize  int64
}

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

// BenchSpec is the benchmark's tree: at 100,000 files about 1.15 GiB of data (1.4 GiB on disk),
// 2,000 directories 4 to 6 deep, 82 large files, 10 sparse 64 MiB files, 2% symlinks, 1% of names
// in hard-link groups, 5% of entries with xattrs and 2% with ACLs.
func BenchSpec(files int, seed uint64) Spec {
	return Spec{
		Files: files, Seed: seed, EntriesPerDir: 50, SmallMax: 16 * kib,
		LargeEvery: 1200, LargeMin: 1 * mib, LargeMax: 20 * mib,
		SparseEvery: 10000, SparseSize: 64 * mib,
	}
}

type entryKind uint8

const (
	kindDir entryKind = iota
	kindFile
	kindSparse
	kindSymlink
	kindHardlink
)

func (k entryKind) String() string {
	return [...]string{"dir", "file", "sparse", "symlink", "hardlink"}[k]
}

// extent is a data region of a sparse file; everything else is a hole.
type extent struct{ off, len int64 }

type xattr struct {
	name  string
	value []byte
}

// meta is what an inode carries besides its data.
type meta struct {
	uid, gid int
	mode     uint32 // permission bits and setuid/setgid/sticky, as chmod(2) takes them
	mtime    time.Time
	xattrs   []xattr
	acl      []ACLEntry // access ACL, nil for none
	defACL   []ACLEntry // default ACL (directories), nil for none
}

type entry struct {
	path    string // slash-separated, relative to the root; "" is the root
	kind    entryKind
	size    int64
	extents []extent // kindSparse
	target  string   // kindSymlink: the link's target; kindHardlink: path of the linked file
	content uint64   // seed of the file's bytes
	data    []byte   // kindFile: the file's bytes, when set, instead of seeded random ones
	meta
}

// tree is a planned tree: directories in creation order (parents first), then the other entries,
// hard links last so that their targets exist.
type tree struct {
	root  meta
	dirs  []entry
	files []entry
}

// owner is a uid:gid pair found on real Persistent Storage volumes: root, amnesia, the
// tails-persistent-storage service user, and an unknown user whose ids exist nowhere.
type owner struct{ uid, gid int }

var (
	owners       = []owner{{1000, 1000}, {0, 0}, {115, 122}, {4242, 4242}}
	ownerWeights = []float64{55, 25, 12, 8}
	fileModes    = []uint32{0o644, 0o600, 0o755, 0o640, 0o700, 0o444}
	fileModeW    = []float64{40, 30, 10, 10, 5, 5}
	dirModes     = []uint32{0o755, 0o700, 0o2775, 0o750}
	dirModeW     = []float64{50, 25, 15, 10}
	dirWords     = []string{"Documents", "Projects", "photos", "src", "archive", "notes", "mail", "cache",
		"2023", "2024", "backup", "music", "work", "misc", "data", "config", "reports", "drafts", "shared", "old"}
	fileStems = []string{"report", "IMG", "notes", "invoice", "draft", "data", "log", "letter", "scan",
		"track", "index", "readme", "config", "summary", "budget"}
	fileExts = []string{".txt", ".odt", ".jpg", ".pdf", ".png", ".md", ".json", ".ods", ".ogg", ".html", ".conf", ".log", ""}
)

// mtimeBase and mtimeSpan bound the generated mtimes: 2019 to 2025.
var mtimeBase = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)

const mtimeSpan = 6 * 365 * 24 * time.Hour

// planner holds the state of one planning run; it is thrown away afterwards.
type planner struct {
	spec    Spec
	rng     *rand.Rand
	dirs    []entry
	weights []float64 // cumulative weights of dirs[i] (index 0 is the root) for file placement
}

// plan computes the whole tree in memory; it draws every random number in a fixed order, so that
// equal specs give equal trees.
func plan(spec Spec) *tree {
	p := &planner{spec: spec, rng: rand.New(rand.NewPCG(spec.Seed, 0x74726565))}
	t := &tree{root: meta{uid: 0, gid: 0, mode: 0o755, mtime: p.mtime()}}
	p.planDirs()
	nSym := spec.Files * 2 / 100
	groups := p.groupSizes(spec.Files / 250)
	extra := 0
	for _, g := range groups {
		extra += g - 1
	}
	nReg := max(spec.Files-nSym-extra, len(groups))
	files := p.planRegular(nReg)
	files = append(files, p.planSymlinks(nSym, files)...)
	files = append(files, p.planHardlinks(groups, files[:nReg])...)
	t.dirs, t.files = p.dirs[1:], files
	return t
}

// planDirs builds the directory skeleton breadth first, 2 to 8 subdirectories each, at most 6 deep,
// until there is one directory per EntriesPerDir files.
func (p *planner) planDirs() {
	per := max(p.spec.EntriesPerDir, 1)
	want := max(1, (p.spec.Files+per-1)/per)
	p.dirs = []entry{{path: "", kind: kindDir}}
	depth := []int{0}
	for i := 0; i < len(p.dirs) && len(p.dirs) < want; i++ {
		if depth[i] >= 6 {
			continue
		}
		for n := 2 + p.rng.IntN(7); n > 0 && len(p.dirs) < want; n-- {
			name := fmt.Sprintf("%s-%d", dirWords[p.rng.IntN(len(dirWords))], len(p.dirs))
			d := entry{path: path.Join(p.dirs[i].path, name), kind: kindDir}
			d.meta = p.dirMeta()
			p.dirs = append(p.dirs, d)
			depth = append(depth, depth[i]+1)
		}
	}
	// Directory sizes are log-uniform in [10, 200] entries, like real trees: many small, few big.
	sum := 0.0
	for range p.dirs {
		sum += math.Exp(math.Log(10) + p.rng.Float64()*(math.Log(200)-math.Log(10)))
		p.weights = append(p.weights, sum)
	}
}

// pickDir returns the path of a directory chosen with the directory weights.
func (p *planner) pickDir() string {
	x := p.rng.Float64() * p.weights[len(p.weights)-1]
	i := sort.SearchFloat64s(p.weights, x)
	return p.dirs[min(i, len(p.dirs)-1)].path
}

func (p *planner) groupSizes(n int) []int {
	g := make([]int, n)
	for i := range g {
		g[i] = 2 + p.rng.IntN(2)
	}
	return g
}

// planRegular plans n regular files, a few of them large or sparse.
func (p *planner) planRegular(n int) []entry {
	files := make([]entry, n)
	for i := range files {
		files[i] = entry{path: path.Join(p.pickDir(), p.fileName(i)), kind: kindFile,
			size: p.smallSize(), content: p.rng.Uint64()}
		files[i].meta = p.fileMeta()
	}
	nLarge, nSparse := ceilDiv(n, p.spec.LargeEvery), ceilDiv(n, p.spec.SparseEvery)
	order := p.rng.Perm(n)
	for _, i := range order[:min(nLarge, n)] {
		files[i].size = p.spec.LargeMin + p.rng.Int64N(p.spec.LargeMax-p.spec.LargeMin+1)
	}
	for _, i := range order[min(nLarge, n):min(nLarge+nSparse, n)] {
		files[i].kind = kindSparse
		files[i].size = p.spec.SparseSize
		files[i].extents = p.sparseExtents(p.spec.SparseSize)
	}
	return files
}

func ceilDiv(n, d int) int {
	if d <= 0 || n <= 0 {
		return 0
	}
	return (n + d - 1) / d
}

// smallSize draws a log-normal size with a 2 KiB median, capped at SmallMax; 3% of files are empty.
func (p *planner) smallSize() int64 {
	if p.rng.IntN(100) < 3 {
		return 0
	}
	s := int64(math.Exp(math.Log(2048) + 1.5*p.rng.NormFloat64()))
	return min(max(s, 1), p.spec.SmallMax)
}

// sparseExtents places 2 to 5 data extents of 4 KiB to 1 MiB, 4 KiB aligned, in a file of size; the
// file ends with a hole half of the time, like a VM image.
func (p *planner) sparseExtents(size int64) []extent {
	const block = 4 * kib
	blocks := size / block
	n := 2 + p.rng.Int64N(4)
	slot := max(blocks/n, 1) // one extent per slot, so that they never overlap
	var ext []extent
	for i := int64(0); i < n && i*slot < blocks; i++ {
		l := min(1+p.rng.Int64N(256), slot)
		off := i*slot + p.rng.Int64N(slot-l+1)
		ext = append(ext, extent{off: off * block, len: l * block})
	}
	if p.rng.IntN(2) == 0 {
		last := &ext[len(ext)-1]
		last.len = min(slot*block, mib)
		last.off = size - last.len
	}
	return ext
}

// fileName is unique through the index; some names have spaces or non-ASCII letters, as users' do.
func (p *planner) fileName(i int) string {
	stem, ext := fileStems[p.rng.IntN(len(fileStems))], fileExts[p.rng.IntN(len(fileExts))]
	switch r := p.rng.IntN(100); {
	case r < 5:
		return fmt.Sprintf("%s copy %d%s", stem, i, ext)
	case r < 7:
		return fmt.Sprintf("résumé-%s-%d%s", stem, i, ext)
	default:
		return fmt.Sprintf("%s-%d%s", stem, i, ext)
	}
}

// planSymlinks plans n symlinks: 60% relative links to a planned file, 20% absolute, 20% dangling.
func (p *planner) planSymlinks(n int, files []entry) []entry {
	out := make([]entry, n)
	for i := range out {
		dir := p.pickDir()
		var target string
		switch r := p.rng.IntN(10); {
		case r < 6 && len(files) > 0:
			target = relPath(dir, files[p.rng.IntN(len(files))].path)
		case r < 8:
			target = fmt.Sprintf("/usr/share/doc/package-%d/README", p.rng.IntN(1000))
		default:
			target = fmt.Sprintf("missing-%d", i)
		}
		out[i] = entry{path: path.Join(dir, fmt.Sprintf("link-%d", i)), kind: kindSymlink, target: target}
		o := p.owner()
		out[i].meta = meta{uid: o.uid, gid: o.gid, mode: 0o777, mtime: p.mtime()}
	}
	return out
}

// planHardlinks gives each group a small regular file and size-1 more names for it, half of them in
// another directory.
func (p *planner) planHardlinks(groups []int, regular []entry) []entry {
	var out []entry
	used := map[int]bool{}
	for gi, size := range groups {
		i := p.rng.IntN(len(regular))
		for tries := 0; (used[i] || regular[i].kind != kindFile) && tries < 100; tries++ {
			i = p.rng.IntN(len(regular))
		}
		used[i] = true
		for k := 1; k < size; k++ {
			dir := path.Dir(regular[i].path)
			if dir == "." {
				dir = ""
			}
			if p.rng.IntN(2) == 0 {
				dir = p.pickDir()
			}
			name := fmt.Sprintf("hardlink-%d-%d", gi, k)
			out = append(out, entry{path: path.Join(dir, name), kind: kindHardlink, target: regular[i].path})
		}
	}
	return out
}

// relPath is the relative symlink target from directory dir to target (both root-relative).
func relPath(dir, target string) string {
	if dir == "" {
		return target
	}
	return strings.Repeat("../", strings.Count(dir, "/")+1) + target
}

func (p *planner) owner() owner { return owners[p.weighted(ownerWeights)] }

func (p *planner) weighted(w []float64) int {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	x := p.rng.Float64() * sum
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

func (p *planner) mtime() time.Time {
	return mtimeBase.Add(time.Duration(p.rng.Int64N(int64(mtimeSpan))))
}

func (p *planner) fileMeta() meta {
	o := p.owner()
	m := meta{uid: o.uid, gid: o.gid, mode: fileModes[p.weighted(fileModeW)], mtime: p.mtime()}
	p.addXattrsAndACL(&m, false)
	return m
}

func (p *planner) dirMeta() meta {
	o := p.owner()
	m := meta{uid: o.uid, gid: o.gid, mode: dirModes[p.weighted(dirModeW)], mtime: p.mtime()}
	p.addXattrsAndACL(&m, true)
	return m
}

// addXattrsAndACL gives 5% of entries 1 to 3 user./trusted. xattrs and 2% an access ACL (half of
// the directories among them a default ACL too).
func (p *planner) addXattrsAndACL(m *meta, dir bool) {
	if p.rng.IntN(100) < 5 {
		for n := 1 + p.rng.IntN(3); n > 0; n-- {
			m.xattrs = append(m.xattrs, p.xattr(n))
		}
	}
	if p.rng.IntN(100) < 2 {
		named := ACLEntry{Tag: ACLUser, ID: 1000, Perm: uint16(p.rng.IntN(8))}
		if p.rng.IntN(2) == 0 {
			named = ACLEntry{Tag: ACLGroup, ID: 122, Perm: uint16(p.rng.IntN(8))}
		}
		m.acl = aclWithMask(uint16(m.mode>>6&7), uint16(m.mode>>3&7), uint16(m.mode&7), named)
		m.mode = modeForACL(m.mode, m.acl)
		if dir && p.rng.IntN(2) == 0 {
			m.defACL = aclWithMask(7, 5, 0, ACLEntry{Tag: ACLUser, ID: 1000, Perm: 7})
		}
	}
}

// xattr returns the n-th (1-based, distinct names) xattr of an entry: text or binary values.
func (p *planner) xattr(n int) xattr {
	ns := "user."
	if p.rng.IntN(10) < 3 {
		ns = "trusted."
	}
	names := []string{"", "xdg.origin.url", "comment", "checksum.sha256"}
	v := make([]byte, 1+p.rng.IntN(200))
	for i := range v {
		v[i] = byte(p.rng.IntN(256))
	}
	if p.rng.IntN(2) == 0 {
		for i := range v {
			v[i] = 'a' + v[i]%26
		}
	}
	return xattr{name: ns + names[n], value: v}
}
