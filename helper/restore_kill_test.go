//go:build linux

package helper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/wire"
)

// TestRestoreKilledKeepsTheRoot: the helper killed with SIGKILL (the caller's RLIMIT_CPU before
// ResetProcess, the OOM killer, a crash, a signal sudo relays that Go dies of) at any point of a
// restore from a backup whose root has another owner, mode and ACL leaves this Tails'
// Persistent Storage root with its own: Tails checks them at boot, and a root writable by
// amnesia would let the session replace persistence.conf. One kill point is the very moment
// the root's attributes change (inotify on the root): the root must then still be
// this Tails' own. After the kills, a restore to the end leaves it so too.
func TestRestoreKilledKeepsTheRoot(t *testing.T) {
	w := newWorld(t, worldOpts{srcMiB: 128, dstMiB: 128})
	fillSource(t, w.dst.mnt, 20, 100, 8<<10) // 2000 files, 16 MiB
	// The backup's root: amnesia's, open to everyone, with an ACL and a default ACL of its own.
	bfd := openDir(t, w.dst.mnt)
	must(t, unix.Fchown(bfd, tails.AmnesiaUID, tails.AmnesiaUID))
	acl := tails.EncodeACL([]tails.ACLEntry{
		{Tag: tails.ACLUserObj, Perm: 7, ID: tails.ACLUndefinedID},
		{Tag: tails.ACLUser, Perm: 7, ID: 1001},
		{Tag: tails.ACLGroupObj, Perm: 7, ID: tails.ACLUndefinedID},
		{Tag: tails.ACLMask, Perm: 7, ID: tails.ACLUndefinedID},
		{Tag: tails.ACLOther, Perm: 7, ID: tails.ACLUndefinedID},
	})
	must(t, unix.Fsetxattr(bfd, tails.ACLXattrAccess, acl, 0))
	must(t, unix.Fsetxattr(bfd, tails.ACLXattrDefault, acl, 0))
	must(t, unix.Fchmod(bfd, 0o777))
	ps := w.src.mnt
	own := rootMetaOf(t, ps)
	if backup := rootMetaOf(t, w.dst.mnt); backup.equal(own) {
		t.Fatal("the backup's root has the Persistent Storage root's metadata; the test shows nothing")
	}
	w.sys.ProgressInterval = 5 * time.Millisecond

	points := []struct {
		name string
		at   func(ev wire.Event) bool // nil: when the root's attributes change
	}{
		{"at the first scan event", func(ev wire.Event) bool { return ev.Phase == "scan" }},
		{"early in the copy", func(ev wire.Event) bool { return ev.Phase == "copy" && ev.FilesDone > 0 }},
		{"half-way through the copy", func(ev wire.Event) bool {
			return ev.Phase == "copy" && ev.FilesTotal > 0 && ev.FilesDone >= ev.FilesTotal/2
		}},
		{"when the root's attributes change", nil},
		{"at the end of the copy", func(ev wire.Event) bool {
			return ev.Phase == "done" || ev.Phase == "copy" && ev.FilesTotal > 0 && ev.FilesDone == ev.FilesTotal
		}},
	}
	for _, pt := range points {
		emptyTree(t, ps)
		// Each point on its own: a root left wrong by the previous one would be kept as it is.
		must(t, setPersistenceRoot(openDir(t, ps)))
		var killed bool
		if pt.at == nil {
			killed = w.killRestoreOnRootChange(ps)
		} else {
			p := w.startProcess(restoreRequest(srcUUID))
			for ev := range p.events {
				if pt.at(ev) {
					p.kill()
					killed = true
					break
				}
			}
			p.kill()
		}
		if !killed {
			t.Logf("%s: the restore ended before the kill point", pt.name)
		}
		if got := rootMetaOf(t, ps); !got.equal(own) {
			t.Errorf("killed %s, the restore left the Persistent Storage root with %+v, want its own %+v", pt.name, got, own)
		}
	}

	// A restore to its end.
	w.sys.ProgressInterval = 0
	_, done := restoreResult(t, start(t, w.sys, restoreRequest(srcUUID)), wire.EventDone)
	if done.Report.ErrorCount != 0 {
		t.Errorf("report %+v", done.Report)
	}
	if got := rootMetaOf(t, ps); !got.equal(own) {
		t.Errorf("the restore left the Persistent Storage root with %+v, want its own %+v", got, own)
	}
	var others []string
	for _, l := range strings.Split(restoreDiff(t, w.dst.mnt, ps), "\n") {
		if l != "" && !strings.HasSuffix(l, " ./") {
			others = append(others, l)
		}
	}
	if len(others) != 0 {
		t.Errorf("differences besides the root after the restore:\n%s", strings.Join(others, "\n"))
	}
}

// killRestoreOnRootChange runs a restore into ps in a child process and kills it with SIGKILL
// as soon as the attributes of the root ps itself change (owner, mode, xattrs, mtime). It
// reports whether it killed it before it ended.
func (w *world) killRestoreOnRootChange(ps string) bool {
	t := w.t
	t.Helper()
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	must(t, err)
	// A non-blocking descriptor in os.File goes through the poller: Close ends a pending Read.
	in := os.NewFile(uintptr(ifd), "inotify")
	defer in.Close()
	// IN_ATTRIB for owner, mode and xattrs, IN_MODIFY for an mtime set alone (utimensat with
	// UTIME_OMIT for the atime).
	_, err = unix.InotifyAddWatch(ifd, ps, unix.IN_ATTRIB|unix.IN_MODIFY)
	must(t, err)

	p := w.startProcess(restoreRequest(srcUUID))
	killed := make(chan bool, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := in.Read(buf)
			if err != nil {
				killed <- false
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				if ev.Len == 0 { // the watched directory itself, not an entry in it
					_ = p.cmd.Process.Kill()
					killed <- true
					return
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	for range p.events {
	}
	<-p.exited
	in.Close()
	k := <-killed
	return k && p.cmd.ProcessState != nil && !p.cmd.ProcessState.Success()
}

// emptyTree removes everything under root (but lost+found), keeping root itself.
func emptyTree(t testing.TB, root string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	must(t, err)
	for _, e := range entries {
		if e.Name() != "lost+found" {
			must(t, os.RemoveAll(filepath.Join(root, e.Name())))
		}
	}
}
