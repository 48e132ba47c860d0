package main

import (
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
