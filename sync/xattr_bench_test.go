//go:build linux

package sync

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// benchDir makes 2,000 small files, one in ten with a user xattr, in a temporary directory (or
// in $SYNC_BENCH_DIR, kept between runs) and returns the directory open and the names.
func benchDir(b *testing.B) (int, []string) {
	dir := os.Getenv("SYNC_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	var names []string
	for i := range 2000 {
		n := fmt.Sprintf("file-%05d", i)
		names = append(names, n)
		p := filepath.Join(dir, n)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			if err := unix.Lsetxattr(p, "user.k", []byte("v"), 0); err != nil {
				b.Skipf("no user xattrs here: %v", err)
			}
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	return fd, names
}

// BenchmarkXattrPaths compares, per entry, a stat with the ways of reading an entry's xattrs:
// listxattrat (Linux 6.13+), the /proc/self/fd path of the directory (the fallback on Tails'
// Linux 6.12), an open + flistxattr + close (regularXattrs on 6.12), and an O_PATH open with
// the /proc path of the file.
func BenchmarkXattrPaths(b *testing.B) {
	fd, names := benchDir(b)
	b.Run("fstatat", func(b *testing.B) {
		var st unix.Stat_t
		for i := 0; i < b.N; i++ {
			lstatAt(fd, names[i%len(names)], &st)
		}
	})
	b.Run("statx", func(b *testing.B) {
		var st unix.Statx_t
		for i := 0; i < b.N; i++ {
			unix.Statx(fd, names[i%len(names)], unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &st)
		}
	})
	b.Run("xattrat", func(b *testing.B) {
		var no atomic.Bool
		if _, err := xattrsAt(fd, names[0], &no); err != nil || no.Load() {
			b.Skip("no listxattrat here")
		}
		for i := 0; i < b.N; i++ {
			xattrsAt(fd, names[i%len(names)], &no)
		}
	})
	b.Run("proc", func(b *testing.B) {
		var no atomic.Bool
		no.Store(true)
		for i := 0; i < b.N; i++ {
			xattrsAt(fd, names[i%len(names)], &no)
		}
	})
	b.Run("open+flistxattr+close", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := openFileAt(fd, names[i%len(names)])
			if err != nil {
				b.Fatal(err)
			}
			readXattrs(xattrReader{fd: f, byFD: true})
			unix.Close(f)
		}
	})
	b.Run("opath+proc", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := openPathAt(fd, names[i%len(names)])
			if err != nil {
				b.Fatal(err)
			}
			readXattrs(xattrReader{path: beneath.FDPath(f)})
			unix.Close(f)
		}
	})
}
