package treegen

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Stats describes a generated tree.
type Stats struct {
	Dirs      int // directories, the root excluded
	Files     int // regular files (inodes), sparse ones included
	HardLinks int // names beyond the first of hard-linked files
	Symlinks  int
	Large     int // regular files over 1 MiB that are not sparse
	Sparse    int
	Xattrs    int // entries with at least one user. or trusted. xattr
	ACLs      int // entries with an access or a default ACL
	// ApparentBytes is the sum of the sizes of the regular files; DataBytes leaves out holes.
	ApparentBytes int64
	DataBytes     int64
	// DiskBytes estimates the space the tree takes on ext4 (4 KiB blocks), for sizing images.
	DiskBytes int64
}

// Entries is the number of names in the tree, the root excluded.
func (s Stats) Entries() int { return s.Dirs + s.Files + s.HardLinks + s.Symlinks }

// Bench fills the existing directory dir (normally the root of a fresh file system) with the
// benchmark tree of BenchSpec(files, seed).
func Bench(ctx context.Context, dir string, files int, seed uint64) (Stats, error) {
	return Generate(ctx, dir, BenchSpec(files, seed))
}

// Estimate returns the Stats of the tree that Generate would write for spec, without writing it.
func Estimate(spec Spec) Stats { return plan(spec).stats() }

// Generate fills the existing directory dir with the tree of spec. dir's own owner, mode and mtime
// are set too. It stops early, with ctx's error, when ctx is cancelled.
func Generate(ctx context.Context, dir string, spec Spec) (Stats, error) {
	t := plan(spec)
	if err := t.write(ctx, dir); err != nil {
		return Stats{}, err
	}
	return t.stats(), nil
}

// write creates the planned tree under dir, whose own metadata it sets too.
func (t *tree) write(ctx context.Context, dir string) error {
	w := &writer{root: dir, buf: make([]byte, mib)}
	if err := w.applyPath(dir, t.root, false); err != nil {
		return err
	}
	for i := range t.dirs {
		if err := w.mkdir(&t.dirs[i]); err != nil {
			return err
		}
	}
	for i := range t.files {
		if i%512 == 0 && ctx.Err() != nil {
			return fmt.Errorf("generate tree in %s: %w", dir, ctx.Err())
		}
		if err := w.create(&t.files[i]); err != nil {
			return err
		}
	}
	// Directory mtimes and default ACLs go last: creating children changes the first, and the
	// second would give the children inherited ACLs that the plan does not have.
	for i := len(t.dirs) - 1; i >= 0; i-- {
		if err := w.finishDir(filepath.Join(dir, t.dirs[i].path), t.dirs[i].meta); err != nil {
			return err
		}
	}
	return w.finishDir(dir, t.root)
}

func (t *tree) stats() Stats {
	var s Stats
	const block = 4 * kib
	roundUp := func(n int64) int64 { return (n + block - 1) / block * block }
	count := func(m meta) {
		if len(m.xattrs) > 0 {
			s.Xattrs++
		}
		if m.acl != nil || m.defACL != nil {
			s.ACLs++
		}
		if len(m.xattrs) > 0 || m.acl != nil {
			s.DiskBytes += block // ext4 puts what does not fit in the inode in one xattr block
		}
	}
	for _, d := range t.dirs {
		s.Dirs++
		s.DiskBytes += block
		count(d.meta)
	}
	for _, f := range t.files {
		switch f.kind {
		case kindFile, kindSparse:
			s.Files++
			s.ApparentBytes += f.size
			data := f.size
			if f.kind == kindSparse {
				s.Sparse++
				data = 0
				for _, e := range f.extents {
					data += e.len
				}
			} else if f.size > mib {
				s.Large++
			}
			s.DataBytes += data
			s.DiskBytes += roundUp(data)
			count(f.meta)
		case kindSymlink:
			s.Symlinks++
		case kindHardlink:
			s.HardLinks++
		}
	}
	return s
}

// writer creates planned entries under root; buf is reused for file contents.
type writer struct {
	root string
	buf  []byte
}

func (w *writer) mkdir(e *entry) error {
	p := filepath.Join(w.root, e.path)
	if err := unix.Mkdir(p, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", p, err)
	}
	return w.applyPath(p, e.meta, false)
}

func (w *writer) create(e *entry) error {
	p := filepath.Join(w.root, e.path)
	switch e.kind {
	case kindSymlink:
		if err := unix.Symlink(e.target, p); err != nil {
			return fmt.Errorf("symlink %s: %w", p, err)
		}
		return w.applyPath(p, e.meta, true)
	case kindHardlink:
		if err := unix.Link(filepath.Join(w.root, e.target), p); err != nil {
			return fmt.Errorf("hard link %s: %w", p, err)
		}
		return nil
	default:
		return w.writeFile(p, e)
	}
}

// writeFile creates a regular or sparse file with its content and metadata.
func (w *writer) writeFile(p string, e *entry) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	err = w.fill(fd, e)
	if err == nil {
		err = applyFd(fd, e.meta)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return setMtime(p, e.meta)
}

// fill writes the deterministic content of e into fd: all of it, or only the extents of a sparse
// file after extending it to its size.
func (w *writer) fill(fd int, e *entry) error {
	if e.data != nil {
		_, err := unix.Pwrite(fd, e.data, 0)
		return err
	}
	rng := contentRNG(e.content)
	if e.kind != kindSparse {
		return writeRandom(fd, rng, w.buf, 0, e.size)
	}
	if err := unix.Ftruncate(fd, e.size); err != nil {
		return err
	}
	for _, x := range e.extents {
		if err := writeRandom(fd, rng, w.buf, x.off, x.len); err != nil {
			return err
		}
	}
	return nil
}

func contentRNG(seed uint64) *rand.ChaCha8 {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

// writeRandom writes n bytes from rng at offset off.
func writeRandom(fd int, rng *rand.ChaCha8, buf []byte, off, n int64) error {
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		_, _ = rng.Read(chunk) // ChaCha8.Read never fails
		wrote, err := unix.Pwrite(fd, chunk, off)
		if err != nil {
			return err
		}
		off += int64(wrote)
		n -= int64(wrote)
	}
	return nil
}

// applyFd sets owner, xattrs, access ACL and mode through an open file, in that order: chown may
// clear setgid bits and setting an ACL rewrites the group bits of the mode.
func applyFd(fd int, m meta) error {
	if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	for _, x := range m.xattrs {
		if err := unix.Fsetxattr(fd, x.name, x.value, 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", x.name, err)
		}
	}
	if m.acl != nil {
		if err := unix.Fsetxattr(fd, XattrACLAccess, EncodeACL(m.acl), 0); err != nil {
			return fmt.Errorf("set access ACL: %w", err)
		}
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// applyPath sets the metadata of a directory (through a descriptor) or a symlink (owner only:
// Linux symlinks have no mode of their own and user. xattrs are forbidden on them).
func (w *writer) applyPath(p string, m meta, symlink bool) error {
	if symlink {
		if err := unix.Lchown(p, m.uid, m.gid); err != nil {
			return fmt.Errorf("lchown %s: %w", p, err)
		}
		return setMtime(p, m)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := applyFd(fd, m); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func (w *writer) finishDir(p string, m meta) error {
	if m.defACL != nil {
		if err := setACL(p, XattrACLDefault, m.defACL); err != nil {
			return err
		}
	}
	return setMtime(p, m)
}

// setMtime sets atime and mtime to m.mtime without following a final symlink.
func setMtime(p string, m meta) error {
	ts := unix.NsecToTimespec(m.mtime.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime of %s: %w", p, err)
	}
	return nil
}
