package main

import (
	"context"
	"errors"
	"fmt"
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
