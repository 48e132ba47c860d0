package treegen

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// found is one inode of an existing tree, under the first of its names in lexical order.
type found struct {
	path string
	st   unix.Stat_t
}

// scan lists the inodes under root (root itself and lost+found excluded) in lexical order, each
// hard-linked file once, so that a fraction counts inodes and not names.
func scan(root string, keep func(*unix.Stat_t) bool) ([]found, error) {
	var out []found
	seen := map[uint64]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if d.IsDir() && d.Name() == "lost+found" && filepath.Dir(p) == root {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", p, err)
		}
		if seen[st.Ino] || !keep(&st) {
			return nil
		}
		seen[st.Ino] = true
		out = append(out, found{path: p, st: st})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	return out, nil
}

// pick returns about fraction of the items (at least one when fraction > 0), chosen with rng, in
// their original order.
func pick[T any](items []T, fraction float64, rng *rand.Rand) []T {
	n := int(float64(len(items))*fraction + 0.5)
	if fraction > 0 && n == 0 && len(items) > 0 {
		n = 1
	}
	n = min(n, len(items))
	chosen := rng.Perm(len(items))[:n]
	mark := make([]bool, len(items))
	for _, i := range chosen {
		mark[i] = true
	}
	var out []T
	for i, it := range items {
		if mark[i] {
			out = append(out, it)
		}
	}
	return out
}

// ChangeData rewrites the content of about fraction of the regular files under dir, as a user's
// edits would: half keep their size (new bytes over an old region, so only the content and mtime
// tell them apart), the others grow or shrink; sparse files get a new data extent in a hole. Each
// changed file gets a later mtime. It returns the number of files changed.
func ChangeData(dir string, fraction float64, seed uint64) (int, error) {
	files, err := scan(dir, func(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG })
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x64617461))
	buf := make([]byte, mib)
	chosen := pick(files, fraction, rng)
	for _, f := range chosen {
		if err := changeFile(f, rng, buf); err != nil {
			return 0, err
		}
	}
	return len(chosen), nil
}

func changeFile(f found, rng *rand.Rand, buf []byte) error {
	fd, err := unix.Open(f.path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", f.path, err)
	}
	content := contentRNG(rng.Uint64())
	size := f.st.Size
	sparse := f.st.Blocks*512 < size
	switch {
	case sparse:
		// A new 64 KiB extent somewhere in the file: the VM image got some writes.
		off := rng.Int64N(max(size/(4*kib), 1)) * 4 * kib
		err = writeRandom(fd, content, buf, off, min(64*kib, size-off))
	case size > 0 && rng.IntN(2) == 0:
		off := rng.Int64N(size)
		err = writeRandom(fd, content, buf, off, min(size-off, 1+rng.Int64N(64*kib)))
	case size > mib:
		// Large files grow at the end, like logs and mailboxes.
		err = writeRandom(fd, content, buf, size, 1+rng.Int64N(64*kib))
	default:
		newSize := rng.Int64N(16 * kib)
		if newSize == size {
			newSize++
		}
		err = unix.Ftruncate(fd, 0)
		if err == nil {
			err = writeRandom(fd, content, buf, 0, newSize)
		}
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("change data of %s: %w", f.path, err)
	}
	return touch(f, rng)
}

// touch moves the mtime of f forward by up to 30 days.
func touch(f found, rng *rand.Rand) error {
	old := time.Unix(f.st.Mtim.Unix())
	m := meta{mtime: old.Add(time.Second + time.Duration(rng.Int64N(int64(30*24*time.Hour))))}
	return setMtime(f.path, m)
}

// ChangeMetadata changes the metadata of about fraction of the entries under dir without touching
// any data: chmod, chown, touch (a later mtime) or a new user. xattr, one each. Symlinks only get
// chown or touch. It returns the number of entries changed.
func ChangeMetadata(dir string, fraction float64, seed uint64) (int, error) {
	entries, err := scan(dir, func(*unix.Stat_t) bool { return true })
	if err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d657461))
	chosen := pick(entries, fraction, rng)
	for _, e := range chosen {
		if err := changeMeta(e, rng); err != nil {
			return 0, err
		}
	}
	return len(chosen), nil
}

func changeMeta(e found, rng *rand.Rand) error {
	op := rng.IntN(4)
	if e.st.Mode&unix.S_IFMT == unix.S_IFLNK && (op == 0 || op == 3) {
		op = 1 + op%2 // chown or touch, the only changes a symlink can take here
	}
	var err error
	switch op {
	case 0:
		// Flip the group-read and other-read bits: a visible, harmless permission change.
		err = unix.Chmod(e.path, e.st.Mode&0o7777^0o044)
	case 1:
		o := owners[rng.IntN(len(owners))]
		if o.uid == int(e.st.Uid) && o.gid == int(e.st.Gid) {
			o = owners[(rng.IntN(len(owners)-1)+1+indexOfOwner(e.st))%len(owners)]
		}
		err = unix.Lchown(e.path, o.uid, o.gid)
		if err == nil && e.st.Mode&unix.S_IFMT != unix.S_IFLNK && e.st.Mode&0o6000 != 0 {
			err = unix.Chmod(e.path, e.st.Mode&0o7777) // chown cleared setgid on files; keep it
		}
	case 2:
		return touch(e, rng)
	default:
		err = unix.Lsetxattr(e.path, "user.treegen.changed", fmt.Appendf(nil, "%d", rng.Uint64()), 0)
	}
	if err != nil {
		return fmt.Errorf("change metadata of %s: %w", e.path, err)
	}
	return nil
}

func indexOfOwner(st unix.Stat_t) int {
	for i, o := range owners {
		if o.uid == int(st.Uid) && o.gid == int(st.Gid) {
			return i
		}
	}
	return 0
}
