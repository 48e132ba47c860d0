package main

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"tails-backup/sync/internal/treegen"
)

// TestCreateFloorMakesTheTree checks that the create floor makes what a copy makes, but for the
// metadata it leaves out: the same names, bytes (sparse files included), symlinks and hard
// links. A floor that skipped some of its work would be a floor no more.
func TestCreateFloorMakesTheTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("treegen sets owners and trusted xattrs: run as root")
	}
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is missing")
	}
	spec := treegen.BenchSpec(600, 3)
	spec.LargeEvery, spec.SparseEvery, spec.SparseSize = 200, 300, 4<<20
	src, dst := t.TempDir(), t.TempDir()
	stats, err := treegen.Generate(context.Background(), src, spec)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sparse == 0 || stats.HardLinks == 0 || stats.Symlinks == 0 {
		t.Fatalf("the tree lacks sparse files, hard links or symlinks: %+v", stats)
	}
	tree, err := loadCreateTree(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := stats.Files + stats.Symlinks + stats.Dirs; tree.inodes != want || tree.names != stats.HardLinks {
		t.Errorf("loaded %d inodes and %d hard-link names, want %d and %d", tree.inodes, tree.names, want, stats.HardLinks)
	}
	if _, err := createFloor(context.Background(), tree, dst); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("rsync", "-rlHn", "-i", "--checksum", src+"/", dst+"/").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("rsync -rlHn -i --checksum: %v\n%s", err, out)
	}
	// Its sparse files stay sparse: no more blocks than the source's.
	du := func(dir string) string {
		out, err := exec.Command("du", "-s", "--block-size=1M", dir).Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out[:len(out)-len(dir)-1])
	}
	if s, d := du(src), du(dst); s != d {
		t.Errorf("du: source %s MiB, floor's tree %s MiB", s, d)
	}
}
