package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseSummary(t *testing.T) {
	tests := []struct {
		name    string
		stdout  string
		compare time.Duration
		changes int64
	}{
		{"update", "mirrored: 3 created, 2 updated, 1 metadata only, 4 deleted, 1.2 MB copied, 100 scanned, 0 errors, in 1.5s\n  (compare 1.234s, copy 200ms, flush 66ms)\n",
			1234 * time.Millisecond, 10},
		{"no-op", "mirrored: 0 created, 0 updated, 0 metadata only, 0 deleted, 0 B copied, 1000000 scanned, 0 errors, in 1m2.5s\n  (compare 1m2.5s, copy 0s, flush 0s)\n",
			62500 * time.Millisecond, 0},
		{"no summary", "tails-backup sync: no such directory\n", 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := parseSummary(tt.stdout)
			if c != tt.compare || n != tt.changes {
				t.Errorf("parseSummary = %v, %d; want %v, %d", c, n, tt.compare, tt.changes)
			}
		})
	}
}

func TestParseScales(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"100000", []int{100000}, false},
		{"100_000, 300000,1000000", []int{100000, 300000, 1000000}, false},
		{"10", nil, true},
		{"many", nil, true},
	}
	for _, tt := range tests {
		got, err := parseScales(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseScales(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestGrowth(t *testing.T) {
	tests := []struct {
		name       string
		big        time.Duration
		bigNames   int
		small      time.Duration
		smallNames int
		want       float64
	}{
		{"flat", 10 * time.Second, 1_000_000, time.Second, 100_000, 1},
		{"twice per name", 20 * time.Second, 1_000_000, time.Second, 100_000, 2},
		{"faster per name", 5 * time.Second, 1_000_000, time.Second, 100_000, 0.5},
		{"no small run", 5 * time.Second, 1_000_000, 0, 100_000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := growth(tt.big, tt.bigNames, tt.small, tt.smallNames); got != tt.want {
				t.Errorf("growth = %v; want %v", got, tt.want)
			}
		})
	}
}

// TestTimeOneCountsChildrenCPU: the CPU time of a run is the command's and its children's,
// which /usr/bin/time reaps (a shell that only waits for a busy child).
func TestTimeOneCountsChildrenCPU(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/time"); err != nil {
		t.Skip("no /usr/bin/time (apt-get install time)")
	}
	busy := "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"
	r, err := timeOne(context.Background(), filepath.Join(t.TempDir(), "rss"), []string{"sh", "-c", "sh -c '" + busy + "'; true"})
	if err != nil {
		t.Fatal(err)
	}
	if r.cpu < r.wall/2 || r.cpu <= 0 {
		t.Errorf("CPU time %v for a busy child that took %v of wall time: the child's time is not counted", r.cpu, r.wall)
	}
}
