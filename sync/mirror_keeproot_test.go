package sync_test

import (
	"errors"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"tails-backup/sync"
)

// TestMirrorKeepDestinationRoot: with KeepDestinationRoot, the destination root keeps its own
// owner, group, mode, xattrs and ACLs while everything else, the root's mtime among it, is
// mirrored; its attributes are never written, not even for an instant (inotify sees no
// IN_ATTRIB on it, only the IN_MODIFY of its mtime); a second run changes nothing and a dry run
// lists only the root's mtime. Without the option, the root gets the source root's.
func TestMirrorKeepDestinationRoot(t *testing.T) {
	parallel(t)
	src := newExt4(t, 32)
	dst := newExt4(t, 32)
	build(t, src,
		node{Path: "a/file", Type: 'f', Data: "new", Uid: 1000},
		node{Path: "a", Type: 'd', Uid: 1000, Mtime: t2},
		node{Path: ".", Type: 'd', Mode: mode(0o777), Uid: 1000, Gid: 1000, Xattrs: map[string]string{"user.src": "s"},
			ACL: "u:4242:rwx", DefACL: "u:4242:rwx", Mtime: t1})
	build(t, dst,
		node{Path: "old", Type: 'f', Data: "old"},
		node{Path: ".", Type: 'd', Mode: mode(0o770), Xattrs: map[string]string{"user.dst": "d"}, ACL: "u:1000:--x"})
	own := snapshot(t, dst)["."]

	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ifd)
	if _, err := unix.InotifyAddWatch(ifd, dst, unix.IN_ATTRIB|unix.IN_MODIFY); err != nil {
		t.Fatal(err)
	}
	opts := sync.Options{KeepDestinationRoot: true}
	rep, err := runMirror(t, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	requireNoFileErrors(t, rep)
	var rootEvents []uint32 // the masks of the events on the root itself
	buf := make([]byte, 64*kib)
	for {
		n, err := unix.Read(ifd, buf)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Len == 0 {
				rootEvents = append(rootEvents, ev.Mask&^unix.IN_ISDIR)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
	if !slices.Equal(rootEvents, []uint32{unix.IN_MODIFY}) {
		t.Errorf("events on the destination root %#x, want one IN_MODIFY (its mtime) and no IN_ATTRIB", rootEvents)
	}

	s, d := snapshot(t, src), snapshot(t, dst)
	got := d["."]
	if got.Mode != own.Mode || got.Uid != own.Uid || got.Gid != own.Gid || got.Xattrs != own.Xattrs {
		t.Errorf("the destination root has mode %#o, owner %d:%d, xattrs %s; want its own %#o, %d:%d, %s",
			got.Mode, got.Uid, got.Gid, got.Xattrs, own.Mode, own.Uid, own.Gid, own.Xattrs)
	}
	if got.Mtime != t1.UnixNano() {
		t.Errorf("the destination root's mtime is %d, want the source root's %d", got.Mtime, t1.UnixNano())
	}
	delete(s, ".")
	delete(d, ".")
	if diffs := diffSnapshots(s, d, cmpOpts{}); len(diffs) > 0 {
		t.Errorf("below the root, the destination differs from the source:\n%q", diffs)
	}
	assertSecondRunNoChange(t, src, dst, opts)

	setMtime(t, src, t2)
	var changes []sync.Change
	opts.DryRun = true
	opts.OnChange = func(c sync.Change) { changes = append(changes, c) }
	if _, err := runMirror(t, src, dst, opts); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Path != "." || changes[0].Kind != sync.ChangeMetadata || !slices.Equal(changes[0].What, []string{"mtime"}) {
		t.Errorf("dry run changes %+v, want the root's mtime alone", changes)
	}

	// Without the option, the root is mirrored like any directory.
	mirror(t, src, dst, sync.Options{})
}
