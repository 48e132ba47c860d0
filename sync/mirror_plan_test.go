package sync_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// TestMirrorPlanComparesOnce proves that the copy takes the scan's decision for a file
// neither side of which changed since the scan: a file of the same size whose mtime differs
// is read and compared once (by the scan), not a second time by the copy, whether it turns out
// to be a touch (its metadata updated, its data kept on the same inode) or new data (replaced).
// And that a file changed between the scan and the copy is decided again: the copy compares it
// again and mirrors what is there then.
func TestMirrorPlanComparesOnce(t *testing.T) {
	parallel(t)
	const size = 3 * mib
	old := pattern(size, 1)
	edited := bytes.Clone(old)
	edited[size-1] ^= 0xff // the last byte: the compare reads the whole file
	later := pattern(size, 2)
	tests := []struct {
		name         string
		src          []byte          // the source's data at the scan
		atScan       []byte          // written over the source while the scan reports it (nil: none)
		wantCompared int64           // Report.BytesCompared; -1: more than size (compared again)
		wantKind     sync.ChangeKind // the change the scan reports for f
		sameInode    bool            // the destination's data stays on its inode
	}{
		{name: "touched", src: old, wantCompared: size, wantKind: sync.ChangeMetadata, sameInode: true},
		{name: "edited", src: edited, wantCompared: size, wantKind: sync.ChangeUpdate},
		// The scan finds a touch; the file is rewritten (same size) before the copy: the copy
		// sees another ctime, compares again (up to the first difference) and replaces it.
		{name: "rewritten after the scan", src: old, atScan: later, wantCompared: -1, wantKind: sync.ChangeMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			build(t, src, node{Path: "f", Type: 'f', Data: string(old)})
			mirror(t, src, dst, sync.Options{})
			writeFile(t, filepath.Join(src, "f"), tt.src)
			setMtime(t, filepath.Join(src, "f"), time.Now().Add(time.Hour))
			before := lstat(t, filepath.Join(dst, "f"))

			var kind sync.ChangeKind
			opts := sync.Options{OnChange: func(c sync.Change) {
				if c.Path != "f" {
					return
				}
				kind = c.Kind
				if tt.atScan != nil {
					writeFile(t, filepath.Join(src, "f"), tt.atScan)
				}
			}}
			rep := mirrorWith(t, src, dst, opts, checks{})
			if kind != tt.wantKind {
				t.Errorf("the scan reported %q for f, want %q", kind, tt.wantKind)
			}
			switch {
			case tt.wantCompared < 0 && rep.BytesCompared <= size:
				t.Errorf("compared %d bytes: the copy did not compare again the file changed since the scan", rep.BytesCompared)
			case tt.wantCompared >= 0 && rep.BytesCompared != tt.wantCompared:
				t.Errorf("compared %d bytes, want %d: the copy compared again what the scan had compared", rep.BytesCompared, tt.wantCompared)
			}
			after := lstat(t, filepath.Join(dst, "f"))
			if (after.Ino == before.Ino) != tt.sameInode {
				t.Errorf("destination inode %d → %d; want it kept: %v", before.Ino, after.Ino, tt.sameInode)
			}
		})
	}
}

// TestMirrorPlanDestinationChangedAfterScan: a destination file that changes between the scan
// and the copy (here replaced by another inode with the source's new data) is decided again,
// not replaced by the scan's decision.
func TestMirrorPlanDestinationChangedAfterScan(t *testing.T) {
	parallel(t)
	src, dst := t.TempDir(), t.TempDir()
	build(t, src, node{Path: "f", Type: 'f', Data: "old data"})
	mirror(t, src, dst, sync.Options{})
	writeFile(t, filepath.Join(src, "f"), []byte("new data, longer"))
	mtime := time.Now().Add(-time.Hour)
	setMtime(t, filepath.Join(src, "f"), mtime)
	var st unix.Stat_t
	opts := sync.Options{OnChange: func(c sync.Change) {
		if c.Path != "f" {
			return
		}
		// What another run would leave: the new version in place, through a rename.
		tmp := filepath.Join(dst, "f.new")
		writeFile(t, tmp, []byte("new data, longer"))
		setMtime(t, tmp, mtime)
		if err := unix.Rename(tmp, filepath.Join(dst, "f")); err != nil {
			t.Error(err)
		}
		if err := unix.Lstat(filepath.Join(dst, "f"), &st); err != nil {
			t.Error(err)
		}
	}}
	rep := mirrorWith(t, src, dst, opts, checks{})
	if rep.Updated != 0 || rep.BytesCopied != 0 {
		t.Errorf("the copy replaced a destination that was already right: %s", fmtReport(rep))
	}
	if got := lstat(t, filepath.Join(dst, "f")); got.Ino != st.Ino {
		t.Errorf("destination inode %d, want %d (the one put there after the scan)", got.Ino, st.Ino)
	}
}
