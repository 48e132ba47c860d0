//go:build linux

package sysrefresh

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/treehash"
)

// perStick tells whether rel is, or is inside, a file that belongs to one stick alone: Tails 7's
// luks-header-backup and storage/ at the root of the system partition (any case: FAT).
func perStick(rel string) bool {
	top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return strings.EqualFold(top, "luks-header-backup") || strings.EqualFold(top, "storage")
}

// without returns h without the per-stick entries and syslinux/ldlinux.sys (each stick's own,
// written by the syslinux installer).
func without(h map[string]string) map[string]string {
	h = maps.Clone(h)
	for p := range h {
		if perStick(p) || p == "syslinux/ldlinux.sys" {
			delete(h, p)
		}
	}
	return h
}

func perStickOf(h map[string]string) map[string]string {
	out := map[string]string{}
	for p, v := range h {
		if perStick(p) {
			out[p] = v
		}
	}
	return out
}

// TestRefreshPerStickFiles: the running stick's LUKS header backup and Welcome Screen settings
// never reach the backup; the backup's own are neither overwritten nor deleted; and they do not
// make two system partitions differ.
func TestRefreshPerStickFiles(t *testing.T) {
	// The running stick is in the middle of a LUKS upgrade and has Welcome Screen settings.
	source := func(t *testing.T) string {
		src := makeSource(t)
		writeFile(t, src, "luks-header-backup", "the LUKS header of the running stick", 0)
		writeFile(t, src, "storage/greeter/language", "fr_FR", 0)
		writeFile(t, src, "storage/greeter/keyboard", "fr", 0)
		return src
	}
	own := func(t *testing.T, dst, header, storage string) {
		writeFile(t, dst, header, "the LUKS header of the backup stick", time.Hour)
		writeFile(t, dst, storage+"/greeter/language", "de_DE", time.Hour)
		writeFile(t, dst, storage+"/only-on-the-backup", "its own", time.Hour)
		writeFile(t, dst, storage+"/"+TempPrefix+"0000abcd", "not the refresh's", time.Hour)
	}
	tests := []struct {
		name   string
		backup func(t *testing.T, src, dst string)
		differ bool // Check before the refresh
	}{
		{"older release with its own files", func(t *testing.T, src, dst string) {
			makeBackup(t, dst)
			own(t, dst, "luks-header-backup", "storage")
		}, true},
		{"older release without them", func(t *testing.T, src, dst string) { makeBackup(t, dst) }, true},
		{"older release, its own spelled in capitals", func(t *testing.T, src, dst string) {
			makeBackup(t, dst)
			own(t, dst, "LUKS-Header-Backup", "Storage")
		}, true},
		// The same system on both: only the per-stick files differ, which is no difference.
		{"same release with its own files", func(t *testing.T, src, dst string) {
			copyTree(t, src, dst)
			for _, p := range []string{"luks-header-backup", "storage"} {
				must(t, os.RemoveAll(filepath.Join(dst, p)))
			}
			own(t, dst, "luks-header-backup", "storage")
		}, false},
		{"same release without them", func(t *testing.T, src, dst string) {
			copyTree(t, src, dst)
			for _, p := range []string{"luks-header-backup", "storage"} {
				must(t, os.RemoveAll(filepath.Join(dst, p)))
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := source(t), t.TempDir()
			tt.backup(t, src, dst)
			srcBefore, dstBefore := treehash.Of(t, src), treehash.Of(t, dst)
			if _, _, differ, err := Check(src, dst, testOpts()); err != nil || differ != tt.differ {
				t.Errorf("Check before: differ %v, %v; want %v", differ, err, tt.differ)
			}
			ch, err := Plan(src, dst, testOpts())
			if err != nil {
				t.Fatal(err)
			}
			if !tt.differ && !ch.Empty() {
				t.Errorf("plan for the same system: %+v", ch)
			}

			rep, err := Refresh(context.Background(), src, dst, testOpts())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range append(rep.Changes.Copies, rep.Changes.Commit...) {
				if perStick(c.Path) || perStick(c.DstPath) {
					t.Errorf("copied %s", c.Path)
				}
			}
			for _, d := range append(rep.Changes.Deletes, rep.Changes.Conflicts...) {
				if perStick(d.Path) {
					t.Errorf("deleted %s", d.Path)
				}
			}
			dstAfter := treehash.Of(t, dst)
			if want, got := perStickOf(dstBefore), perStickOf(dstAfter); !mapsEqual(want, got) {
				t.Errorf("the backup's own files changed:\nbefore %v\nafter  %v", want, got)
			}
			if want, got := without(srcBefore), without(dstAfter); !mapsEqual(want, got) {
				t.Errorf("the rest is not a copy:\nrunning %v\nbackup  %v", want, got)
			}
			if after := treehash.Of(t, src); !mapsEqual(srcBefore, after) {
				t.Error("the running system partition changed")
			}
			if _, _, differ, err := Check(src, dst, testOpts()); err != nil || differ {
				t.Errorf("Check after: differ %v, %v", differ, err)
			}
			if ch, err := Plan(src, dst, testOpts()); err != nil || !ch.Empty() {
				t.Errorf("Plan after: %+v, %v", ch, err)
			}
		})
	}
}

// copyTree copies the files of src into dst, keeping their mtimes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	for rel, h := range treehash.Of(t, src) {
		if h == "dir" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dst, rel, string(b), epoch.Sub(st.ModTime()))
	}
}
