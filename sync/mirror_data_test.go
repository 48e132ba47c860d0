package sync_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"

	"tails-backup/sync"
)

// TestMirrorSparseFiles proves that holes are kept: a 100 MiB file with 4 KiB of data (and
// others: data at both ends, all hole, hole at the end) uses about as many blocks on the
// destination as on the source. The destination is 32 MiB, so a copy that fills holes (or a space
// check that counts apparent sizes) cannot even succeed.
func TestMirrorSparseFiles(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 32)
	build(t, src,
		node{Path: "sparse-100M", Type: 'f', Chunks: []chunk{{50 * mib, pattern(4*kib, 1)}}, Size: 100 * mib},
		node{Path: "edges", Type: 'f', Chunks: []chunk{{0, pattern(4*kib, 2)}, {20*mib - 4*kib, pattern(4*kib, 3)}}, Size: 20 * mib},
		node{Path: "all-hole", Type: 'f', Size: 30 * mib},
		node{Path: "hole-at-end", Type: 'f', Data: string(pattern(8*kib, 4)), Size: 10 * mib},
		node{Path: "unaligned", Type: 'f', Chunks: []chunk{{3*mib + 123, pattern(5000, 5)}}, Size: 7*mib + 1},
		node{Path: "dense", Type: 'f', Data: string(pattern(5000, 6))},
		// Written in full (no holes on the source, so copied without SEEK_DATA), but its last
		// blocks are zeros, which the copy leaves as a hole: only the size makes them.
		node{Path: "dense-zeros-at-end", Type: 'f', Data: string(pattern(8*kib, 7)) + string(make([]byte, 12*kib+5))},
	)
	mirror(t, src, dst, sync.Options{})
	for _, p := range []string{"sparse-100M", "edges", "all-hole", "hole-at-end", "unaligned", "dense", "dense-zeros-at-end"} {
		s, d := lstat(t, filepath.Join(src, p)), lstat(t, filepath.Join(dst, p))
		// Allow a few blocks for a different extent tree layout, nothing like the holes.
		if d.Blocks*512 > s.Blocks*512+64*kib {
			t.Errorf("%s: the destination uses %d bytes of blocks, the source %d: holes were not kept", p, d.Blocks*512, s.Blocks*512)
		}
	}
}

// TestMirrorAtomicReplace proves that a changed file is replaced by rename of a new inode (not
// rewritten in place), and that a reader opening the destination path in a loop during the run
// only ever sees the complete old or the complete new content, and never a missing file.
func TestMirrorAtomicReplace(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 64)
	oldData := bytes.Repeat([]byte{'o'}, 12*mib)
	newData := bytes.Repeat([]byte{'n'}, 16*mib+1)
	writeFile(t, filepath.Join(src, "big"), oldData)
	writeFile(t, filepath.Join(src, "small"), []byte("old small"))
	mirror(t, src, dst, sync.Options{})
	inoBig := lstat(t, filepath.Join(dst, "big")).Ino
	inoSmall := lstat(t, filepath.Join(dst, "small")).Ino

	writeFile(t, filepath.Join(src, "big"), newData)
	writeFile(t, filepath.Join(src, "small"), []byte("new small content"))

	var (
		stop                  = make(chan struct{})
		wg                    gosync.WaitGroup
		reads, sawOld, sawNew atomic.Int64
		mu                    gosync.Mutex
		bad                   []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf bytes.Buffer
		for {
			select {
			case <-stop:
				return
			default:
			}
			f, err := os.Open(filepath.Join(dst, "big"))
			if err != nil {
				mu.Lock()
				bad = append(bad, "open: "+err.Error())
				mu.Unlock()
				continue
			}
			buf.Reset()
			_, err = buf.ReadFrom(f)
			f.Close()
			reads.Add(1)
			switch {
			case err != nil:
				mu.Lock()
				bad = append(bad, "read: "+err.Error())
				mu.Unlock()
			case bytes.Equal(buf.Bytes(), oldData):
				sawOld.Add(1)
			case bytes.Equal(buf.Bytes(), newData):
				sawNew.Add(1)
			default:
				mu.Lock()
				bad = append(bad, describeMix(buf.Bytes()))
				mu.Unlock()
			}
		}
	}()
	rep, err := runMirror(t, src, dst, sync.Options{})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Mirror: %v\n%s", err, fmtReport(rep))
	}
	t.Logf("concurrent reader: %d reads, %d old, %d new", reads.Load(), sawOld.Load(), sawNew.Load())
	if len(bad) > 0 {
		if len(bad) > 10 {
			bad = bad[:10]
		}
		t.Errorf("a reader of the destination saw neither the complete old nor the complete new content:\n  %s", strings.Join(bad, "\n  "))
	}
	if reads.Load() == 0 {
		t.Errorf("the concurrent reader never completed a read")
	}
	if got := lstat(t, filepath.Join(dst, "big")).Ino; got == inoBig {
		t.Errorf("big: the destination file kept its inode %d: it was rewritten in place, not replaced by rename", got)
	}
	if got := lstat(t, filepath.Join(dst, "small")).Ino; got == inoSmall {
		t.Errorf("small: the destination file kept its inode %d: it was rewritten in place, not replaced by rename", got)
	}
	if rep.Updated != 2 || rep.BytesCopied != int64(len(newData))+int64(len("new small content")) {
		t.Errorf("got %s, want updated=2 bytesCopied=%d", fmtReport(rep), len(newData)+len("new small content"))
	}
	assertRsyncAgrees(t, src, dst)
	assertSameTree(t, src, dst)
	assertSecondRunNoChange(t, src, dst, sync.Options{})
}

func describeMix(b []byte) string {
	o, n := bytes.Count(b, []byte{'o'}), bytes.Count(b, []byte{'n'})
	return fmt.Sprintf("torn content: %d bytes, %d old bytes, %d new bytes", len(b), o, n)
}

// TestMirrorChecksum proves that without Checksum a content change with the same size and mtime
// is not seen (like rsync's quick check), and that Checksum: true catches and copies it.
func TestMirrorChecksum(t *testing.T) {
	parallel(t)
	src := newExt4(t, 16)
	dst := newExt4(t, 16)
	a, b := pattern(mib, 1), pattern(mib, 2)
	build(t, src, node{Path: "f", Type: 'f', Data: string(a), Mtime: t1}, node{Path: "other", Type: 'f', Data: "o", Mtime: t1},
		node{Path: ".", Type: 'd', Mtime: t2})
	mirror(t, src, dst, sync.Options{})
	// Same size, same mtime (to the nanosecond), different content.
	// (The root's mtime is put back too, so that nothing else differs.)
	build(t, src, node{Path: "f", Type: 'f', Data: string(b), Mtime: t1}, node{Path: ".", Type: 'd', Mtime: t2})

	rep, err := runMirror(t, src, dst, sync.Options{})
	if err != nil {
		t.Fatalf("Mirror: %v", err)
	}
	requireNoFileErrors(t, rep)
	if rep.Changes() != 0 || rep.BytesCopied != 0 {
		t.Errorf("without Checksum, a same-size same-mtime change must not be seen: %s", fmtReport(rep))
	}
	if !bytes.Equal(readFile(t, filepath.Join(dst, "f")), a) {
		t.Errorf("without Checksum, f was copied")
	}

	rep = mirror(t, src, dst, sync.Options{Checksum: true})
	if rep.Updated != 1 || rep.BytesCopied != mib || rep.Created+rep.Deleted+rep.MetadataOnly != 0 {
		t.Errorf("with Checksum: got %s, want updated=1 bytesCopied=%d", fmtReport(rep), mib)
	}
	if !bytes.Equal(readFile(t, filepath.Join(dst, "f")), b) {
		t.Errorf("with Checksum, f was not copied")
	}
}
