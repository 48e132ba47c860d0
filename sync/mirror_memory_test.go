package sync_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"tails-backup/sync"
)

// writeWideTree writes n small files (n a multiple of 5,000) in directories of 100 files each,
// spread over 50 directories at root: the widest directory holds 100 entries whatever n is.
func writeWideTree(t *testing.T, root string, n int) {
	t.Helper()
	data := pattern(100, 1)
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("t%02d", i/100%50), fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			mkdirs(t, dir)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i%100)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// wideTreeEntries is how many entries writeWideTree makes for n files.
func wideTreeEntries(n int) int64 { return int64(n + n/100 + 50) }

// peakHeap runs f and returns the peak of the live heap objects above what was live before,
// sampled every millisecond with a low GOGC so that the heap follows the live data closely.
func peakHeap(f func()) (peak uint64) {
	old := debug.SetGCPercent(10)
	defer debug.SetGCPercent(old)
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > base && v-base > peak {
				peak = v - base
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak
}

// TestMirrorMemoryBound proves that memory is bounded by directory width, not by file count: the
// peak heap of mirroring 20,000 small files (50 directories at root holding 4 directories of 100
// each) stays under 32 MiB and is less than twice the peak for 5,000 files of the same width (50
// directories holding one of 100 each). (With the directories of 100 all at root, the root
// was 4 times wider for 20,000 files, and the peak grew past twice on a loaded machine.) It does
// not run in parallel with other tests, whose allocations would be counted. Workers is fixed,
// since each worker may hold a copy buffer: the bound must not depend on the core count.
func TestMirrorMemoryBound(t *testing.T) {
	requireRoot(t)
	// 25,000 files of 100 bytes: 4 KiB blocks would need 100 MiB; 1 KiB blocks and enough inodes.
	src := newExt4(t, 64, "-b", "1024", "-N", "32768")
	dst := newExt4(t, 64, "-b", "1024", "-N", "32768")
	sizes := []int{5000, 20000}
	peaks := map[int]uint64{}
	for _, n := range sizes {
		s, d := filepath.Join(src, fmt.Sprint(n)), filepath.Join(dst, fmt.Sprint(n))
		mkdirs(t, s, d)
		writeWideTree(t, s, n)
	}
	for _, n := range sizes {
		s, d := filepath.Join(src, fmt.Sprint(n)), filepath.Join(dst, fmt.Sprint(n))
		// The median of three full copies, each into an emptied destination: one sample can
		// be off either way when something else in the process allocates or frees meanwhile
		// (seen under go test ./... on a loaded machine: a peak of 0.0 MiB for 5,000 files,
		// the heap having fallen below what was live before the copy).
		var runs []uint64
		for i := range 3 {
			if i > 0 {
				if err := os.RemoveAll(d); err != nil {
					t.Fatal(err)
				}
				mkdirs(t, d)
			}
			var rep sync.Report
			var err error
			peak := peakHeap(func() { rep, err = runMirror(t, s, d, sync.Options{NoSync: true, Workers: 8}) })
			if err != nil {
				t.Fatalf("Mirror of %d files: %v", n, err)
			}
			requireNoFileErrors(t, rep)
			if rep.Created != wideTreeEntries(n) {
				t.Errorf("Mirror of %d files: created %d entries, want %d", n, rep.Created, wideTreeEntries(n))
			}
			t.Logf("%d files: peak live heap %.1f MiB (%s)", n, float64(peak)/mib, fmtReport(rep))
			runs = append(runs, peak)
		}
		slices.Sort(runs)
		peaks[n] = runs[1]
	}
	small, large := peaks[5000], peaks[20000] // medians
	if large > 32*mib {
		t.Errorf("mirroring 20,000 files took a peak of %.1f MiB of heap, want under 32 MiB", float64(large)/mib)
	}
	// Growth below 2x for 4x the files; a floor of 1 MiB keeps noise on tiny peaks from failing.
	if large > 2*max(small, mib) {
		t.Errorf("peak heap grew from %.2f MiB for 5,000 files to %.2f MiB for 20,000 files in the same shape: memory grows with the file count", float64(small)/mib, float64(large)/mib)
	}
	assertSameTree(t, filepath.Join(src, "20000"), filepath.Join(dst, "20000"))
}
