//go:build linux

package sysrefresh

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/treehash"
)

var epoch = time.Date(2024, 12, 3, 10, 0, 0, 0, time.UTC)

func writeFile(t *testing.T, root, rel, content string, age time.Duration) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := epoch.Add(-age)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func pattern(n int, seed byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i/4096)
	}
	return string(b)
}

// opts makes 1 MiB files "large" so the tests stay small.
func testOpts() Options { return Options{LargeFile: 1 << 20} }

// makeSource is a running Tails 6.11 system partition.
func makeSource(t *testing.T) string {
	src := t.TempDir()
	writeFile(t, src, ".disk/info", "Tails 6.11 - 20250107\n", 0)
	writeFile(t, src, "EFI/BOOT/bootx64.efi", "grub 6.11", 0)
	writeFile(t, src, "EFI/debian/grub.cfg", "menuentry 6.11", 0)
	writeFile(t, src, "syslinux/syslinux.cfg", "label live 6.11", 0)
	writeFile(t, src, "syslinux/ldlinux.sys", "ldlinux of the running stick", 0)
	writeFile(t, src, "live/vmlinuz", pattern(300<<10, 'k'), 0)
	writeFile(t, src, "live/initrd.img", pattern(1<<20+5, 'i'), 0)
	writeFile(t, src, "live/6.11.squashfs", pattern(2<<20, 'd'), 0)
	writeFile(t, src, "live/filesystem.squashfs", pattern(5<<20, 'S'), 0)
	writeFile(t, src, "live/Tails.module", "filesystem.squashfs\n6.11.squashfs\n", 0)
	writeFile(t, src, "utils/linux/syslinux", "syslinux binary", 0)
	writeFile(t, src, "doc/README", "same everywhere", 0)
	return src
}

// makeBackup is a backup with Tails 6.10 in dst.
func makeBackup(t *testing.T, dst string) {
	writeFile(t, dst, ".disk/info", "Tails 6.10 - 20241203\n", 24*time.Hour)
	writeFile(t, dst, "EFI/BOOT/bootx64.efi", "grub 6.10", 24*time.Hour)
	writeFile(t, dst, "syslinux/syslinux.cfg", "label live 6.10", 24*time.Hour)
	writeFile(t, dst, "syslinux/ldlinux.sys", "ldlinux of the backup stick", 24*time.Hour)
	writeFile(t, dst, "live/vmlinuz", pattern(290<<10, 'K'), 24*time.Hour)
	writeFile(t, dst, "live/initrd.img", pattern(1<<20, 'I'), 24*time.Hour)
	writeFile(t, dst, "live/filesystem.squashfs", pattern(4<<20, 's'), 24*time.Hour)
	writeFile(t, dst, "live/6.10.squashfs", "old delta", 24*time.Hour)
	writeFile(t, dst, "live/Tails.module", "filesystem.squashfs\n6.10.squashfs\n", 24*time.Hour)
	writeFile(t, dst, "utils/mbr/mbr.bin", "old mbr", 24*time.Hour)
	writeFile(t, dst, "doc/README", "same everywhere", 0)
}

func TestRefreshDifferentVersions(t *testing.T) {
	src, dst := makeSource(t), t.TempDir()
	makeBackup(t, dst)
	sid, did, differ, err := Check(src, dst, testOpts())
	if err != nil || !differ || sid.Version != "Tails 6.11 - 20250107" || did.Version != "Tails 6.10 - 20241203" {
		t.Fatalf("Check: %+v %+v %v %v", sid, did, differ, err)
	}
	opts := testOpts()
	var renames []string
	opts.afterRename = func(p string) { renames = append(renames, p) }
	var last Progress
	var paths []string
	opts.Progress = func(p Progress) {
		if p.Done < last.Done || p.Total != last.Total && last.Total != 0 {
			t.Errorf("progress went from %+v to %+v", last, p)
		}
		last = p
		if len(paths) == 0 || paths[len(paths)-1] != p.Path {
			paths = append(paths, p.Path)
		}
	}
	rep, err := Refresh(context.Background(), src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SourceVersion != sid.Version || rep.DestinationVersion != did.Version {
		t.Errorf("report versions %q %q", rep.SourceVersion, rep.DestinationVersion)
	}
	if last.Done != last.Total || last.Total != rep.Changes.Bytes || rep.Written != rep.Changes.Bytes {
		t.Errorf("progress ended at %+v, report %+v", last, rep)
	}

	// Trees identical, except the preserved ldlinux.sys, which stays the backup's own.
	want, got := treehash.Of(t, src), treehash.Of(t, dst)
	if got["syslinux/ldlinux.sys"] == want["syslinux/ldlinux.sys"] {
		t.Error("syslinux/ldlinux.sys was overwritten")
	}
	delete(want, "syslinux/ldlinux.sys")
	delete(got, "syslinux/ldlinux.sys")
	if !mapsEqual(want, got) {
		t.Errorf("trees differ after refresh:\nsrc %v\ndst %v", want, got)
	}

	// Order: small files, then large by size, the system image last of the data, then only
	// the identity files, which mark the refresh complete.
	i := slices.Index(renames, "live/filesystem.squashfs")
	if i < 0 || !slices.Equal(sorted(renames[i+1:]), []string{".disk/info", "live/Tails.module"}) {
		t.Fatalf("renames %v: filesystem.squashfs must be followed only by the identity files", renames)
	}
	if j, k := slices.Index(renames, "live/initrd.img"), slices.Index(renames, "live/6.11.squashfs"); !(j >= 0 && j < k && k < i) {
		t.Errorf("renames %v: large files must come by size before filesystem.squashfs", renames)
	}
	for _, small := range []string{"EFI/BOOT/bootx64.efi", "live/vmlinuz", "utils/linux/syslinux"} {
		if k := slices.Index(renames, small); k < 0 || k > slices.Index(renames, "live/initrd.img") {
			t.Errorf("renames %v: %s must come before the large files", renames, small)
		}
	}
	if paths[len(paths)-3] != "live/filesystem.squashfs" {
		t.Errorf("progress order %v", paths)
	}
	if slices.Contains(renames, "doc/README") {
		t.Error("an unchanged file was copied")
	}
	for _, gone := range []string{"live/6.10.squashfs", "utils/mbr"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("extraneous %s not deleted: %v", gone, err)
		}
	}
	// mtimes were copied, so the large files compare equal by size and mtime next time.
	if _, _, differ, err := Check(src, dst, testOpts()); err != nil || differ {
		t.Fatalf("Check after refresh: %v %v", differ, err)
	}

	// Same version: nothing to do, nothing written.
	rep, err = Refresh(context.Background(), src, dst, testOpts())
	if err != nil || !rep.Changes.Empty() || rep.Written != 0 {
		t.Fatalf("second refresh: %+v, %v", rep, err)
	}
	ch, err := Plan(src, dst, testOpts())
	if err != nil || !ch.Empty() {
		t.Fatalf("Plan after refresh: %+v, %v", ch, err)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestPlanComparison(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, r := range []string{src, dst} {
		writeFile(t, r, ".disk/info", "Tails 6.10\n", 0)
	}
	writeFile(t, src, "small-content", "aaaa", 0)
	writeFile(t, dst, "small-content", "bbbb", 0)
	writeFile(t, src, "small-fat-mtime", "same", 0)
	writeFile(t, dst, "small-fat-mtime", "same", -1900*time.Millisecond) // FAT 2 s granularity
	writeFile(t, src, "small-mtime", "same", 0)
	writeFile(t, dst, "small-mtime", "same", 3*time.Second)
	writeFile(t, src, "large-same-stat", pattern(2<<20, 'a'), 0) // not read: size+mtime rule
	writeFile(t, dst, "large-same-stat", pattern(2<<20, 'b'), 0)
	writeFile(t, src, "large-size", pattern(2<<20, 'a'), 0)
	writeFile(t, dst, "large-size", pattern(2<<20+1, 'a'), 0)
	writeFile(t, src, "EFI/BOOT/x", "x", 0)
	writeFile(t, dst, "efi/boot/x", "x", 0) // FAT matches names ignoring case
	writeFile(t, dst, "efi/extra", "x", 0)
	writeFile(t, dst, ".tbnew-01234567", "leftover", 0)
	os.Symlink("/etc", filepath.Join(src, "src-symlink"))

	ch, err := Plan(src, dst, Options{ContentLimit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range ch.Copies {
		got[c.Path] = c.Reason
	}
	want := map[string]string{"small-content": "content", "small-mtime": "mtime", "large-size": "size"}
	if !mapsEqual(got, want) {
		t.Errorf("copies %v, want %v", got, want)
	}
	if len(ch.Mkdirs) != 0 || len(ch.Commit) != 0 || !slices.Equal(ch.Skipped, []string{"src-symlink"}) {
		t.Errorf("mkdirs %v commit %v skipped %v", ch.Mkdirs, ch.Commit, ch.Skipped)
	}
	if !slices.Equal(ch.Deletes, []Delete{{Path: "efi/extra"}}) {
		t.Errorf("deletes %v (temporaries are not deletes, they are cleaned first)", ch.Deletes)
	}
	chCS, err := Plan(src, dst, Options{CaseSensitive: true})
	if err != nil || !slices.Equal(chCS.Mkdirs, []string{"EFI", "EFI/BOOT"}) {
		t.Errorf("case-sensitive mkdirs %v, %v", chCS.Mkdirs, err)
	}
}

func TestNeededSpace(t *testing.T) {
	ch := Changes{
		Copies: []FileCopy{{Size: 10, OldSize: 4000}, {Size: 5000, OldSize: 0}, {Size: 9000, OldSize: 8000}},
		Commit: []FileCopy{{Size: 10, OldSize: 10}},
	}
	// block 4096: running after #1: 4096-4096=0; #2 peak 8192, running 8192;
	// #3 peak 8192+12288=20480, running 8192+12288-8192=12288; commit 12288+4096.
	if got := neededSpace(ch, 4096, 100); got != 20480+100 {
		t.Fatalf("needed %d", got)
	}
}

func TestRefreshInterrupted(t *testing.T) {
	src, dst := makeSource(t), t.TempDir()
	makeBackup(t, dst)
	oldSquash := treehash.Of(t, dst)["live/filesystem.squashfs"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var canceledAt time.Time
	opts := testOpts()
	opts.Progress = func(p Progress) {
		if p.Path == "live/filesystem.squashfs" && canceledAt.IsZero() && p.Done > p.Total-4<<20 {
			canceledAt = time.Now()
			cancel()
		}
	}
	_, err := Refresh(ctx, src, dst, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(canceledAt); d > time.Second {
		t.Errorf("cancellation took %v", d)
	}
	h := treehash.Of(t, dst)
	if h["live/filesystem.squashfs"] != oldSquash {
		t.Fatal("the old system image was damaged")
	}
	for p := range h {
		if strings.Contains(p, TempPrefix) {
			t.Errorf("temporary %s left after a cancellation", p)
		}
	}
	// The identity files come last, so the backup still differs and the next update refreshes it.
	_, did, differ, err := Check(src, dst, testOpts())
	if err != nil || !differ || did.Version != "Tails 6.10 - 20241203" {
		t.Fatalf("after interruption: %+v differ=%v %v", did, differ, err)
	}
	// A power loss mid-copy leaves a temporary: simulate it.
	crash := filepath.Join(dst, "live", tempName("filesystem.squashfs"))
	writeFile(t, dst, "live/"+filepath.Base(crash), pattern(1<<20, 'x'), 0)
	rep, err := Refresh(context.Background(), src, dst, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.RemovedTemporaries, []string{"live/" + filepath.Base(crash)}) {
		t.Errorf("removed temporaries %v", rep.RemovedTemporaries)
	}
	// Files renamed before the interruption are not copied again.
	for _, c := range rep.Changes.Copies {
		if c.Path == "live/vmlinuz" || c.Path == "live/6.11.squashfs" {
			t.Errorf("%s copied again", c.Path)
		}
	}
	want, got := treehash.Of(t, src), treehash.Of(t, dst)
	delete(want, "syslinux/ldlinux.sys")
	delete(got, "syslinux/ldlinux.sys")
	if !mapsEqual(want, got) {
		t.Errorf("trees differ after the finishing refresh:\n%v\n%v", want, got)
	}
}

func TestRefreshRefusesNonTails(t *testing.T) {
	src, dst := makeSource(t), t.TempDir()
	writeFile(t, dst, "important", "user data", 0)
	_, err := Refresh(context.Background(), src, dst, testOpts())
	if !errors.Is(err, ErrNoVersion) {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "important")); string(b) != "user data" {
		t.Fatal("a non-Tails destination was touched")
	}
}

// Symlinks planted on the destination are replaced or removed, never followed.
func TestRefreshHostileSymlinks(t *testing.T) {
	src, dst := makeSource(t), t.TempDir()
	makeBackup(t, dst)
	outside := t.TempDir()
	writeFile(t, outside, "live/filesystem.squashfs", "outside squash", 0)
	writeFile(t, outside, "bootx64.efi", "outside efi", 0)
	writeFile(t, outside, "utils/keep", "outside utils", 0)
	before := treehash.Of(t, outside)
	os.RemoveAll(filepath.Join(dst, "live/vmlinuz"))
	must(t, os.Symlink(filepath.Join(outside, "live/filesystem.squashfs"), filepath.Join(dst, "live/vmlinuz")))
	os.Remove(filepath.Join(dst, "EFI/BOOT/bootx64.efi"))
	must(t, os.Symlink(filepath.Join(outside, "bootx64.efi"), filepath.Join(dst, "EFI/BOOT/bootx64.efi")))
	os.RemoveAll(filepath.Join(dst, "syslinux"))
	must(t, os.Symlink(filepath.Join(outside, "live"), filepath.Join(dst, "syslinux")))
	os.RemoveAll(filepath.Join(dst, "utils"))
	must(t, os.Symlink(filepath.Join(outside, "utils"), filepath.Join(dst, "utils")))
	must(t, os.Symlink(outside, filepath.Join(dst, "extra-link")))

	if _, err := Refresh(context.Background(), src, dst, testOpts()); err != nil {
		t.Fatal(err)
	}
	if after := treehash.Of(t, outside); !mapsEqual(before, after) {
		t.Fatalf("outside changed:\n%v\n%v", before, after)
	}
	want, got := treehash.Of(t, src), treehash.Of(t, dst)
	// The syslinux folder that was a symlink is rebuilt as a real folder; the preserved
	// ldlinux.sys is never written (a copy from another stick cannot boot: the syslinux
	// installer the helper runs afterwards writes it).
	if _, ok := got["syslinux/ldlinux.sys"]; ok || got["syslinux"] != "dir" {
		t.Errorf("syslinux: %q, ldlinux.sys present %v", got["syslinux"], ok)
	}
	delete(want, "syslinux/ldlinux.sys")
	if !mapsEqual(want, got) {
		t.Errorf("trees differ:\n%v\n%v", want, got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// loopExt4 mounts a fresh 16 MiB ext4 image and returns its mount point.
func loopExt4(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop mount")
	}
	img := filepath.Join(t.TempDir(), "small.img")
	mnt := t.TempDir()
	if out, err := exec.Command("truncate", "-s", "16M", img).CombinedOutput(); err != nil {
		t.Skipf("truncate: %v %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount -o loop: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	os.Remove(filepath.Join(mnt, "lost+found"))
	return mnt
}

func TestRefreshNoSpace(t *testing.T) {
	dst := loopExt4(t)
	src := t.TempDir()
	writeFile(t, src, ".disk/info", "Tails 6.11\n", 0)
	writeFile(t, src, "live/vmlinuz", "new kernel", 0)
	writeFile(t, src, "live/filesystem.squashfs", pattern(8<<20, 'N'), 0)
	writeFile(t, dst, ".disk/info", "Tails 6.10\n", time.Hour)
	writeFile(t, dst, "live/vmlinuz", "old kernel", time.Hour)
	writeFile(t, dst, "live/filesystem.squashfs", pattern(6<<20, 'O'), time.Hour)
	before := treehash.Of(t, dst)

	rep, err := Refresh(context.Background(), src, dst, testOpts())
	var se *SpaceError
	if !errors.As(err, &se) || !errors.Is(err, ErrNoSpace) || se.During {
		t.Fatalf("got %v, want a *SpaceError before writing", err)
	}
	// Both images must fit at once: the new 8 MiB next to the old 6 MiB on a 16 MiB volume.
	if se.Needed < 8<<20 || se.Available >= se.Needed || se.Needed != rep.Needed {
		t.Errorf("needed %d available %d", se.Needed, se.Available)
	}
	if !strings.Contains(err.Error(), "both must fit at once") {
		t.Errorf("message %q", err)
	}
	if after := treehash.Of(t, dst); !mapsEqual(before, after) {
		t.Fatalf("destination changed:\n%v\n%v", before, after)
	}

	// Had the estimate been wrong, the write fails with ENOSPC: same typed error, old files
	// intact, temporary removed.
	opts := testOpts()
	opts.skipSpaceCheck = true
	_, err = Refresh(context.Background(), src, dst, opts)
	if !errors.As(err, &se) || !se.During {
		t.Fatalf("got %v, want a *SpaceError during the copy", err)
	}
	after := treehash.Of(t, dst)
	if after["live/filesystem.squashfs"] != before["live/filesystem.squashfs"] || after[".disk/info"] != before[".disk/info"] {
		t.Fatal("old files damaged")
	}
	for p := range after {
		if strings.Contains(p, TempPrefix) {
			t.Errorf("temporary %s left", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "live/vmlinuz")); !bytes.Equal(b, []byte("new kernel")) {
		t.Errorf("small files before the image are refreshed: %q", b)
	}
}
