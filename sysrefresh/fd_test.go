//go:build linux

package sysrefresh

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"tails-backup/internal/treehash"
	"tails-backup/sysident"
)

func openTree(t *testing.T, p string, flags int) int {
	t.Helper()
	fd, err := unix.Open(p, flags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestFDsFollowTheDescriptors: the FD functions work on the directories the caller opened,
// whatever happened to their paths since: here the backup's path was renamed and an empty
// folder put in its place, which a path-taking refresh would fill instead.
func TestFDsFollowTheDescriptors(t *testing.T) {
	src, base := makeSource(t), t.TempDir()
	dst := filepath.Join(base, "backup")
	makeBackup(t, dst)
	sfd := openTree(t, src, unix.O_RDONLY)
	dfd := openTree(t, dst, unix.O_PATH) // O_PATH is enough: each function opens its own
	if err := os.Rename(dst, dst+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if v, err := sysident.ReadVersionFD(dfd, sysident.Options{}); err != nil || v != "Tails 6.10 - 20241203" {
		t.Fatalf("sysident.ReadVersionFD(backup) = %q, %v", v, err)
	}
	sid, err := sysident.IdentifyFD(sfd, testOpts().ident())
	if err != nil {
		t.Fatal(err)
	}
	if did, err := sysident.IdentifyFD(dfd, testOpts().ident()); err != nil || did.Digest == sid.Digest {
		t.Fatalf("sysident.IdentifyFD(backup) = %+v, %v; want another identity than the source's", did, err)
	}
	if ch, err := PlanFDs(sfd, dfd, testOpts()); err != nil || ch.Empty() {
		t.Fatalf("PlanFDs = %+v, %v; want changes", ch, err)
	}
	rep, err := RefreshFDs(context.Background(), sfd, dfd, testOpts())
	if err != nil || rep.Written == 0 {
		t.Fatalf("RefreshFDs = %+v, %v", rep, err)
	}
	if names, err := os.ReadDir(dst); err != nil || len(names) != 0 {
		t.Errorf("the folder now at the backup's path holds %d entries (%v); want none", len(names), err)
	}
	if did, err := sysident.IdentifyFD(dfd, testOpts().ident()); err != nil || did.Digest != sid.Digest {
		t.Errorf("after RefreshFDs the opened backup is %+v, %v; want the source's identity", did, err)
	}
	want, got := treehash.Of(t, src), treehash.Of(t, dst+".moved")
	delete(want, "syslinux/ldlinux.sys") // preserved: the backup's own
	delete(got, "syslinux/ldlinux.sys")
	if !mapsEqual(want, got) {
		t.Errorf("the opened backup differs from the source after RefreshFDs")
	}
}
