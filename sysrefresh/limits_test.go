//go:build linux

package sysrefresh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tails-backup/internal/treehash"
)

// TestRefreshBounds: a backup's system partition (a FAT file system every folder of which
// amnesia owns on Tails) with folders nested deeper than MaxDepth, or more entries than the
// bound, stops the refresh and the plan with a *LimitError naming the entry, before anything
// is written or removed; a tree at the bound is refreshed.
func TestRefreshBounds(t *testing.T) {
	nested := func(levels int) string {
		return strings.TrimSuffix(strings.Repeat("d/", levels), "/")
	}
	tests := []struct {
		name       string
		maxEntries int
		make       func(t *testing.T, dst string)
		wantPath   string // "" when the refresh succeeds
		wantDepth  bool
	}{
		{name: "folders at the depth bound", make: func(t *testing.T, dst string) {
			writeFile(t, dst, nested(MaxDepth)+"/f", "x", 0)
		}},
		{name: "folders one level deeper", make: func(t *testing.T, dst string) {
			writeFile(t, dst, "EFI/"+nested(MaxDepth)+"/f", "x", 0)
		}, wantPath: "EFI/" + nested(MaxDepth), wantDepth: true},
		{name: "deep in a temporary folder", make: func(t *testing.T, dst string) {
			writeFile(t, dst, "live/"+TempPrefix+"0badcafe/"+nested(MaxDepth+5)+"/f", "x", 0)
		}, wantPath: "live/" + TempPrefix + "0badcafe/" + nested(MaxDepth-1), wantDepth: true},
		{name: "too many entries", maxEntries: 500, make: func(t *testing.T, dst string) {
			dir := filepath.Join(dst, "many")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 600 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, wantPath: "many/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := makeSource(t), t.TempDir()
			makeBackup(t, dst)
			tt.make(t, dst)
			opts := testOpts()
			opts.maxEntries = tt.maxEntries
			before := treehash.Of(t, dst)

			_, err := Refresh(context.Background(), src, dst, opts)
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrTooBig) || !le.Backup || le.Depth != tt.wantDepth ||
				!strings.HasPrefix(le.Path, tt.wantPath) {
				t.Fatalf("Refresh: %v (%#v), want a *LimitError of the backup at %q, depth %v", err, le, tt.wantPath, tt.wantDepth)
			}
			if after := treehash.Of(t, dst); !mapsEqual(before, after) {
				t.Errorf("the backup changed although the refresh stopped")
			}
			if _, err := Plan(src, dst, opts); !errors.As(err, &le) {
				t.Errorf("Plan: %v, want a *LimitError", err)
			}
		})
	}
}

func TestDepthOf(t *testing.T) {
	for p, want := range map[string]int{"": 0, "/": 0, "a": 1, "/a": 1, "a/b/c": 3, "a/b/": 2} {
		if got := depthOf(p); got != want {
			t.Errorf("depthOf(%q) = %d, want %d", p, got, want)
		}
	}
}
