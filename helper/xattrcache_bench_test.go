//go:build linux

package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/wire"
)

// BenchmarkUpdateNoOp times what a user waits for when they plug in a backup with nothing new
// to copy: the root helper's update of a backup of 30,000 small files (fillSource), the backup
// mounted again before each update as at each plug, and the kernel's caches dropped (neither
// tree's inodes in memory). Three cases:
//
//   - with: the cache the previous update saved (every entry from it; saved again, with the
//     new mount's count);
//   - first: no cache file (the first update after the backup was booted or checked, or made
//     by an older version): every xattr read, the cache saved for the next one;
//   - without: a file in the cache folder's place, so the update runs as before the cache
//     existed (every xattr read, nothing saved).
//
// On Tails 7's path (Linux 6.12, no *xattrat system calls) on any kernel, run the test binary
// through mirrorbench's seccomp filter (docs/benchmark.md):
//
//	go test -c -o /tmp/helper.test ./helper/ && go build -o /tmp/mirrorbench ./sync/internal/mirrorbench
//	/tmp/mirrorbench -exec-with-xattrat-refused /tmp/helper.test -test.run '^$' -test.bench UpdateNoOp -test.benchtime 5x
func BenchmarkUpdateNoOp(b *testing.B) {
	w := newWorld(b, worldOpts{srcMiB: 1024, dstMiB: 1024})
	fillSource(b, w.src.mnt, 150, 200, 512)
	update := func() *wire.Report {
		evs, err := w.do(wire.OpUpdate, dstUUID)
		return checkEnd(b, evs, err, wire.EventDone).Report
	}
	update()
	// Entries changed within a second of an update's start are not remembered.
	time.Sleep(1100 * time.Millisecond)
	update()
	b.Logf("kernel path: %s", xattrPath())
	cacheDir := filepath.Join(w.dst.mnt, tails.XattrCacheDirName)
	for _, bc := range []struct {
		name   string
		before func()
	}{
		{"with", func() {}},
		{"first", func() { must(b, os.Remove(filepath.Join(cacheDir, "xattrs"))) }},
		{"without", func() {
			if st, err := os.Lstat(cacheDir); err == nil && st.IsDir() {
				keepRootMtime(b, w, func() {
					must(b, os.RemoveAll(cacheDir))
					must(b, os.WriteFile(cacheDir, nil, 0o600))
				})
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				bc.before()
				w.remountBackup(b, func(string) {})
				dropCaches(b)
				b.StartTimer()
				rep := update()
				if n := rep.Created + rep.Updated + rep.MetadataOnly + rep.Deleted; n != 0 {
					b.Fatalf("a no-op update changed %d entries: %+v", n, rep)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/30000, "µs/file")
		})
	}
	keepRootMtime(b, w, func() { must(b, os.Remove(cacheDir)) })
	if diff := rsyncDiff(b, w.src.mnt, w.dst.mnt); diff != "" {
		b.Fatalf("the backup differs from the source:\n%s", diff)
	}
}

// keepRootMtime runs fn, which adds or removes an entry at the backup's root, and puts the
// root's mtime back to the source's, as the update leaves it: a no-op update stays one.
func keepRootMtime(b testing.TB, w *world, fn func()) {
	fn()
	var st unix.Stat_t
	must(b, unix.Stat(w.src.mnt, &st))
	must(b, unix.UtimesNano(w.dst.mnt, []unix.Timespec{{Nsec: unix.UTIME_OMIT}, st.Mtim}))
}

// dropCaches writes back and drops the kernel's page, dentry and inode caches.
func dropCaches(b testing.TB) {
	unix.Sync()
	must(b, os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200))
}

// xattrPath says which way this process reads xattrs: listxattrat (Linux 6.13 and later), or
// through a descriptor as on Tails 7's Linux 6.12 (the call refused, by the kernel or a
// seccomp filter).
func xattrPath() string {
	const listxattrat = 465 // x86-64 and the generic table
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err.Error()
	}
	defer unix.Close(fd)
	_, _, errno := unix.Syscall6(listxattrat, uintptr(fd), 0, 0, 0, 0, 0)
	if errors.Is(errno, unix.ENOSYS) {
		return "6.12 (no listxattrat)"
	}
	return fmt.Sprintf("6.13+ (listxattrat: %v)", errno)
}
