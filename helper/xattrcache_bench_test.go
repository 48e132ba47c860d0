//go:build linux

package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/wire"
)

// BenchmarkUpdateNoOp times what a user waits for when they plug in a backup with nothing new
// to copy: the root helper's update of a backup of small files (fillSource: folders of 200
// files of 512 bytes; files=30000, 100000 or 300000), the backup mounted again before each
// update as at each plug. Two ways of making the caches cold:
//
//   - backup-cold: as on a Tails in use, the source (the Persistent Storage) warm in the page
//     cache and only the backup cold, as it is when just plugged in: its file system unmounted
//     (which frees its inodes, dentries and, at the loop device's last close, the device's own
//     page cache) and its image file's pages dropped from the host's page cache
//     (fdatasync, then posix_fadvise DONTNEED; checked with mincore: at most 1% of them may stay
//     resident) before it is mounted again;
//   - all-cold: the backup mounted again and every cache of the kernel dropped (drop_caches), so
//     that both trees are read from the disk.
//
// Each iteration is one round of three updates, timed one by one (ns/op is their sum):
//
//   - first: no cache file (the first update after the backup was booted or checked, or made
//     by an older version): every xattr read, the cache saved for the next one;
//   - with: the cache the previous update saved (every entry from it; saved again, with the
//     new mount's count);
//   - without: a file in the cache folder's place, so the update runs as before the cache
//     existed (every xattr read, nothing saved).
//
// The rounds interleave the three cases, so that a change of the machine's load falls on all
// of them; the medians are reported as with-s, first-s and without-s, and every sample is
// logged. Each update's log is checked: "first" must load no cache and save one, "with" must
// load and use at least 99% of the entries, "without" must save none.
//
// On Tails 7's path (Linux 6.12, no *xattrat system calls) on any kernel, run the test binary
// through mirrorbench's seccomp filter (docs/benchmark.md):
//
//	go test -c -o /tmp/helper.test ./helper/ && go build -o /tmp/mirrorbench ./sync/internal/mirrorbench
//	/tmp/mirrorbench -exec-with-xattrat-refused /tmp/helper.test -test.run '^$' -test.bench 'UpdateNoOp/files=30000$/' -test.benchtime 5x
func BenchmarkUpdateNoOp(b *testing.B) {
	for _, files := range []int{30000, 100000, 300000} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) { benchUpdateNoOp(b, files) })
	}
}

// noOpCase is one of BenchmarkUpdateNoOp's three updates: before puts the cache in its state.
type noOpCase struct {
	name   string
	before func()
	check  func(c cacheLog, entries int) error
}

func benchUpdateNoOp(b *testing.B, files int) {
	const perDir = 200
	// An inode per 16 KiB (mkfs.ext4's default ratio), room for twice the files.
	mib := max(1024, int64(files)*32/1024)
	w := newWorld(b, worldOpts{srcMiB: mib, dstMiB: mib})
	genStart := time.Now()
	fillSource(b, w.src.mnt, files/perDir, perDir, 512)
	b.Logf("kernel path: %s; %d files generated in %s", xattrPath(), files, time.Since(genStart).Round(time.Millisecond))
	update := func() (*wire.Report, cacheLog) {
		s := start(b, w.sys, request(wire.OpUpdate, dstUUID))
		evs, err := s.finish()
		rep := checkEnd(b, evs, err, wire.EventDone).Report
		return rep, parseCacheLog(s.logs.String())
	}
	// The first update copies everything (an entry it creates is not remembered); the second,
	// more than a second later (entries changed within a second of an update's start are not
	// remembered either), reads every xattr and saves them all; the third loads them.
	update()
	time.Sleep(1100 * time.Millisecond)
	update()
	_, c := update()
	entries := c.entries
	if !c.saved || entries < files || c.used != entries {
		b.Fatalf("the third update's xattr cache: %+v, want at least %d entries loaded and used", c, files)
	}
	cacheDir := filepath.Join(w.dst.mnt, tails.XattrCacheDirName)
	cases := []noOpCase{
		{"first", func() {
			if st, err := os.Lstat(cacheDir); err == nil && !st.IsDir() {
				keepRootMtime(b, w, func() {
					must(b, os.Remove(cacheDir))
					must(b, os.Mkdir(cacheDir, 0o700))
				})
			}
			if err := os.Remove(filepath.Join(cacheDir, "xattrs")); err != nil && !errors.Is(err, os.ErrNotExist) {
				b.Fatal(err)
			}
		}, func(c cacheLog, entries int) error {
			if !c.saved || c.entries != 0 || c.used != 0 {
				return errors.New("want no cache loaded and a new one saved")
			}
			return nil
		}},
		{"with", func() {}, func(c cacheLog, entries int) error {
			if !c.saved || c.unused != "" || c.entries < entries*99/100 || c.used < entries*99/100 {
				return fmt.Errorf("want at least 99%% of %d entries used from the cache", entries)
			}
			return nil
		}},
		{"without", func() {
			keepRootMtime(b, w, func() {
				must(b, os.RemoveAll(cacheDir))
				must(b, os.WriteFile(cacheDir, nil, 0o600))
			})
		}, func(c cacheLog, _ int) error {
			if c.saved || c.used != 0 {
				return errors.New("want no cache used nor saved")
			}
			return nil
		}},
	}
	for _, mode := range []struct {
		name string
		cold func()
	}{
		{"backup-cold", func() { w.remountBackup(b, func(img string) { dropFileCache(b, img) }) }},
		{"all-cold", func() {
			w.remountBackup(b, func(string) {})
			dropCaches(b)
		}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			samples := make([][]time.Duration, len(cases))
			for b.Loop() {
				for i, bc := range cases {
					b.StopTimer()
					bc.before()
					mode.cold()
					b.StartTimer()
					t0 := time.Now()
					rep, c := update()
					samples[i] = append(samples[i], time.Since(t0))
					if n := rep.Created + rep.Updated + rep.MetadataOnly + rep.Deleted; n != 0 {
						b.Fatalf("%s: a no-op update changed %d entries: %+v", bc.name, n, rep)
					}
					if err := bc.check(c, entries); err != nil {
						b.Fatalf("%s: the update's xattr cache: %+v: %v", bc.name, c, err)
					}
				}
			}
			for i, bc := range cases {
				med := medianDuration(samples[i])
				b.ReportMetric(med.Seconds(), bc.name+"-s")
				b.Logf("%-7s median %.3f s (%.1f µs/file), min %.3f, max %.3f; samples %s", bc.name, med.Seconds(),
					float64(med.Microseconds())/float64(files), slices.Min(samples[i]).Seconds(),
					slices.Max(samples[i]).Seconds(), secondsList(samples[i]))
			}
		})
	}
	if st, err := os.Lstat(cacheDir); err == nil && !st.IsDir() {
		keepRootMtime(b, w, func() { must(b, os.Remove(cacheDir)) })
	} else {
		keepRootMtime(b, w, func() { must(b, os.RemoveAll(cacheDir)) })
	}
	if diff := rsyncDiff(b, w.src.mnt, w.dst.mnt); diff != "" {
		b.Fatalf("the backup differs from the source:\n%s", diff)
	}
}

// parseCacheLog reads what an update's log says of its xattr cache.
func parseCacheLog(log string) cacheLog {
	var c cacheLog
	if m := savedRe.FindStringSubmatch(log); m != nil {
		c.saved = true
		c.entries, _ = strconv.Atoi(m[1])
		c.used, _ = strconv.Atoi(m[2])
	}
	if m := unusedRe.FindStringSubmatch(log); m != nil {
		c.unused = m[1]
	}
	c.none = strings.Contains(log, `msg="no xattr cache; reading every xattr"`)
	return c
}

func medianDuration(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secondsList(d []time.Duration) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprintf("%.3f", x.Seconds())
	}
	return strings.Join(parts, " ")
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

// dropFileCache writes back the image file of an unmounted backup and drops its pages from the
// page cache, so that the next mount reads it from the disk; it fails if more than 1% of them
// stay resident (mincore). The loop device's own page cache went at its last close (umount).
func dropFileCache(b testing.TB, img string) {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(b, err)
	defer f.Close()
	fd := int(f.Fd())
	must(b, unix.Fdatasync(fd))
	must(b, unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED))
	st, err := f.Stat()
	must(b, err)
	m, err := unix.Mmap(fd, 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	must(b, err)
	defer unix.Munmap(m)
	pages := (len(m) + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		b.Fatalf("mincore %s: %v", img, errno)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	if resident > pages/100 {
		b.Fatalf("%s: %d of %d pages still in the page cache after FADV_DONTNEED", img, resident, pages)
	}
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
