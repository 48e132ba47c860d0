//go:build linux

package sync

import (
	"os"
	"strconv"
	gosync "sync"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkNewFileCommit measures, per new file of 1 to 4 KB, the two ways of making it appear
// whole under its name once its data is on the device: as the engine does, a temporary name
// created with O_EXCL, written, its mode and mtime set, closed, then renamed after the batch's
// syncfs; or an O_TMPFILE inode (no name until linked), the same writes, kept open until
// linkat(AT_EMPTY_PATH) gives it its name after the syncfs (suggestion 4 of run 5 in
// docs/benchmark.md; linkat cannot replace a name, so only a new name could be made so).
// Batches of barrierOps files, 50 or 300 files per folder (the bench tree has about 50; a mail
// or APT folder has more), 4 goroutines, as the barrier and the workers do. $SYNC_BENCH_DIR
// chooses the file system (an ext4 loop mount, as mirrorbench uses: the default temporary
// folder may be another file system); the files are left there, 120,000 inodes per run. linkat
// with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH (root).
func BenchmarkNewFileCommit(b *testing.B) {
	for _, c := range []struct {
		mode      string
		perFolder int
	}{{"rename", 50}, {"tmpfile", 50}, {"rename", 300}, {"tmpfile", 300}} {
		mode := c.mode
		b.Run(mode+"/"+strconv.Itoa(c.perFolder)+"-per-folder", func(b *testing.B) {
			root := os.Getenv("SYNC_BENCH_DIR")
			if root == "" {
				root = b.TempDir()
			}
			root, err := os.MkdirTemp(root, mode+"-")
			if err != nil {
				b.Fatal(err)
			}
			rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(rfd)
			folders := max(1, b.N/c.perFolder)
			dirs := make([]int, folders)
			for i := range dirs {
				name := "d" + strconv.Itoa(i)
				if err := unix.Mkdirat(rfd, name, 0o755); err != nil {
					b.Fatal(err)
				}
				if dirs[i], err = unix.Openat(rfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
					b.Fatal(err)
				}
				defer unix.Close(dirs[i])
			}
			buf := make([]byte, 4096)
			for i := range buf {
				buf[i] = byte(i)
			}
			if err := unix.Syncfs(rfd); err != nil {
				b.Fatal(err)
			}
			type made struct {
				dir, fd int
				tmp     string
			}
			b.ResetTimer()
			for start := 0; start < b.N; start += barrierOps {
				batch := make([]made, min(b.N-start, barrierOps))
				errs := make([]error, 4)
				var wg gosync.WaitGroup
				for w := range errs {
					wg.Go(func() {
						for i := w; i < len(batch) && errs[w] == nil; i += len(errs) {
							n := start + i
							m := made{dir: dirs[n%folders], fd: -1}
							var fd int
							var err error
							if mode == "tmpfile" {
								fd, err = unix.Openat(m.dir, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
							} else {
								m.tmp = ".tmp" + strconv.Itoa(n)
								fd, err = unix.Openat(m.dir, m.tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
							}
							if err != nil {
								errs[w] = err
								return
							}
							_, err = unix.Pwrite(fd, buf[:1000+n%3000], 0)
							if err == nil {
								err = unix.Fchmod(fd, 0o644)
							}
							if err == nil {
								err = unix.UtimesNanoAt(fd, "", []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: 1e9}}, unix.AT_EMPTY_PATH)
							}
							if mode == "tmpfile" && err == nil {
								m.fd = fd
							} else {
								unix.Close(fd)
							}
							errs[w] = err
							batch[i] = m
						}
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				if err := unix.Syncfs(rfd); err != nil {
					b.Fatal(err)
				}
				for i, m := range batch {
					name := "f" + strconv.Itoa(start+i)
					if m.fd >= 0 {
						err = unix.Linkat(m.fd, "", m.dir, name, unix.AT_EMPTY_PATH)
						unix.Close(m.fd)
					} else {
						err = unix.Renameat(m.dir, m.tmp, m.dir, name)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := unix.Syncfs(rfd); err != nil {
				b.Fatal(err)
			}
		})
	}
}
