package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	gosync "sync"
	"time"

	"golang.org/x/sys/unix"
)

// statxFloor times a parallel walk of the trees that lists every folder and statx(2)s every
// entry, as the engine's scan must at least do: the floor of an update, before any change is
// written. Folders are shared among twice as many goroutines as CPUs.
func statxFloor(ctx context.Context, roots ...string) (time.Duration, int64, error) {
	start := time.Now()
	w := &walker{ctx: ctx, dirs: make(chan string, 1<<16)}
	workers := 2 * runtime.NumCPU()
	var wg gosync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dir := range w.dirs {
				w.walkDir(dir)
				w.pending.Done()
			}
		}()
	}
	for _, r := range roots {
		w.add(r)
	}
	w.pending.Wait()
	close(w.dirs)
	wg.Wait()
	return time.Since(start), w.count, errors.Join(w.errs...)
}

type walker struct {
	ctx     context.Context
	dirs    chan string
	pending gosync.WaitGroup
	mu      gosync.Mutex
	errs    []error
	count   int64
}

// add queues a folder; when the queue is full, the caller walks it itself, so that the walk
// never blocks on its own queue.
func (w *walker) add(dir string) {
	w.pending.Add(1)
	select {
	case w.dirs <- dir:
	default:
		w.walkDir(dir)
		w.pending.Done()
	}
}

func (w *walker) walkDir(dir string) {
	if w.ctx.Err() != nil {
		return
	}
	f, err := os.Open(dir)
	if err != nil {
		w.fail(err)
		return
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		w.fail(fmt.Errorf("list %s: %w", dir, err))
		return
	}
	fd := int(f.Fd())
	var stx unix.Statx_t
	for _, n := range names {
		if err := unix.Statx(fd, n, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx); err != nil {
			w.fail(fmt.Errorf("statx %s: %w", filepath.Join(dir, n), err))
			continue
		}
		if stx.Mode&unix.S_IFMT == unix.S_IFDIR {
			w.add(filepath.Join(dir, n))
		}
	}
	w.mu.Lock()
	w.count += int64(len(names))
	w.mu.Unlock()
}

func (w *walker) fail(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}

// writeFloor times writing n bytes sequentially into one new file in dir and flushing it with
// fdatasync(2): the floor of a full copy of n bytes of data onto that file system. The file is
// removed afterwards, outside the timing.
func writeFloor(ctx context.Context, dir string, n int64) (time.Duration, error) {
	p := filepath.Join(dir, "mirrorbench-write-floor")
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + i>>9) // not zeros, not compressible by accident
	}
	start := time.Now()
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("write floor: %w", err)
	}
	defer os.Remove(p)
	defer unix.Close(fd)
	for done := int64(0); done < n; {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		chunk := buf[:min(int64(len(buf)), n-done)]
		m, err := unix.Write(fd, chunk)
		if err != nil {
			return 0, fmt.Errorf("write floor: %w", err)
		}
		done += int64(m)
	}
	if err := unix.Fdatasync(fd); err != nil {
		return 0, fmt.Errorf("write floor: fdatasync: %w", err)
	}
	return time.Since(start), nil
}

// createTree is a tree read into memory for the create floor: its folders, each with the
// entries to create in it, and its extra hard-link names.
type createTree struct {
	root  *createDir
	links []createLink // second and later names of hard-linked files
	// inodes counts what the floor creates (folders, files, symlinks), names the link(2)s.
	inodes, names int
	bytes         int64
}

type createDir struct {
	name  string
	mode  uint32
	files []createFile
	links []createSymlink
	dirs  []*createDir
}

type createFile struct {
	name string
	mode uint32
	size int64
	// data is the file's bytes, or, for a sparse file, the bytes of its data extents.
	data    []byte
	extents []extent // nil for a file written whole; else where data's bytes go
}

type extent struct{ off, len int64 }

type createSymlink struct{ name, target string }

type createLink struct{ path, target string } // relative to the root

// loadCreateTree reads the tree at root into memory: every folder, file (its bytes), symlink
// and hard link. lost+found at the root is left out: a new ext4 file system has it.
func loadCreateTree(root string) (*createTree, error) {
	t := &createTree{root: &createDir{}}
	first := map[[2]uint64]string{} // (dev, ino) of a hard-linked file → its first name
	var load func(d *createDir, dir, rel string) error
	load = func(d *createDir, dir, rel string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if rel == "" && e.Name() == "lost+found" {
				continue
			}
			p, r := filepath.Join(dir, e.Name()), filepath.Join(rel, e.Name())
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				sub := &createDir{name: e.Name(), mode: st.Mode & 0o7777}
				d.dirs = append(d.dirs, sub)
				t.inodes++
				if err := load(sub, p, r); err != nil {
					return err
				}
			case unix.S_IFLNK:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				d.links = append(d.links, createSymlink{e.Name(), target})
				t.inodes++
			case unix.S_IFREG:
				if st.Nlink > 1 {
					key := [2]uint64{st.Dev, st.Ino}
					if f, ok := first[key]; ok {
						t.links = append(t.links, createLink{r, f})
						t.names++
						continue
					}
					first[key] = r
				}
				f, err := loadFile(p, e.Name(), st)
				if err != nil {
					return err
				}
				d.files = append(d.files, f)
				t.inodes++
				t.bytes += int64(len(f.data))
			default:
				return fmt.Errorf("%s: not a folder, file or symlink", p)
			}
		}
		return nil
	}
	return t, load(t.root, root, "")
}

// loadFile reads a file's bytes; for a sparse file (fewer blocks than its size needs) only its
// data extents, found with SEEK_DATA and SEEK_HOLE.
func loadFile(p, name string, st unix.Stat_t) (createFile, error) {
	f := createFile{name: name, mode: st.Mode & 0o7777, size: st.Size}
	fh, err := os.Open(p)
	if err != nil {
		return f, err
	}
	defer fh.Close()
	if st.Blocks*512 >= st.Size {
		f.data = make([]byte, st.Size)
		_, err := io.ReadFull(fh, f.data)
		return f, err
	}
	fd := int(fh.Fd())
	for off := int64(0); off < st.Size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		} else if err != nil {
			return f, err
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return f, err
		}
		buf := make([]byte, end-start)
		if _, err := fh.ReadAt(buf, start); err != nil {
			return f, err
		}
		f.extents = append(f.extents, extent{start, end - start})
		f.data = append(f.data, buf...)
		off = end
	}
	return f, nil
}

// createFloor times creating t in the empty file system at dst as fast as any copy could: every
// folder, file and symlink made, each file's bytes written whole in one write(2) (a sparse file's
// extents, one pwrite(2) each, then its size), the hard links linked, then one syncfs(2), by twice
// as many goroutines as CPUs, a folder at a time. Nothing else: no owner, no times, no xattrs or
// ACLs, no temporary name nor rename, no fsync of a file; modes only as open(2) and mkdir(2)
// take them. It is the floor of a full copy of that many inodes, whatever the tool.
func createFloor(ctx context.Context, t *createTree, dst string) (time.Duration, error) {
	type job struct {
		d   *createDir
		dir string
	}
	start := time.Now()
	jobs := make(chan job, 1<<16)
	var pending gosync.WaitGroup
	var mu gosync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var do func(j job)
	do = func(j job) {
		defer pending.Done()
		if ctx.Err() != nil {
			return
		}
		fd, err := unix.Open(j.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fail(err)
			return
		}
		defer unix.Close(fd)
		for _, sub := range j.d.dirs {
			if err := unix.Mkdirat(fd, sub.name, sub.mode); err != nil {
				fail(fmt.Errorf("mkdir %s: %w", filepath.Join(j.dir, sub.name), err))
				continue
			}
			pending.Add(1)
			next := job{sub, filepath.Join(j.dir, sub.name)}
			select {
			case jobs <- next:
			default:
				do(next) // the queue is full: never block on it
			}
		}
		for _, l := range j.d.links {
			if err := unix.Symlinkat(l.target, fd, l.name); err != nil {
				fail(fmt.Errorf("symlink %s: %w", filepath.Join(j.dir, l.name), err))
			}
		}
		for _, f := range j.d.files {
			if err := createFile1(fd, f); err != nil {
				fail(fmt.Errorf("create %s: %w", filepath.Join(j.dir, f.name), err))
			}
		}
	}
	workers := 2 * runtime.NumCPU()
	var wg gosync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				do(j)
			}
		}()
	}
	pending.Add(1)
	jobs <- job{t.root, dst}
	pending.Wait()
	// Hard links last, when every first name exists, shared among the workers.
	links := make(chan createLink, len(t.links))
	for _, l := range t.links {
		links <- l
	}
	close(links)
	close(jobs)
	wg.Wait()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range links {
				if err := unix.Link(filepath.Join(dst, l.target), filepath.Join(dst, l.path)); err != nil {
					fail(fmt.Errorf("link %s: %w", l.path, err))
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("create floor: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return 0, fmt.Errorf("create floor: syncfs: %w", err)
	}
	return time.Since(start), nil
}

// createFile1 creates one file in the folder dirfd and writes its bytes.
func createFile1(dirfd int, f createFile) error {
	fd, err := unix.Openat(dirfd, f.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, f.mode)
	if err != nil {
		return err
	}
	if f.extents == nil {
		err = writeAll(fd, f.data, -1)
	} else {
		data := f.data
		for _, e := range f.extents {
			if err = writeAll(fd, data[:e.len], e.off); err != nil {
				break
			}
			data = data[e.len:]
		}
		if err == nil {
			err = unix.Ftruncate(fd, f.size)
		}
	}
	return errors.Join(err, unix.Close(fd))
}

// writeAll writes b at the file offset (off < 0) or at off, in as few calls as the kernel
// takes (one, but for files of 2 GiB and more).
func writeAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		var n int
		var err error
		if off < 0 {
			n, err = unix.Write(fd, b)
		} else {
			n, err = unix.Pwrite(fd, b, off)
			off += int64(n)
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
