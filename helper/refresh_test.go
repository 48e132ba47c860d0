//go:build linux

package helper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/treehash"
	"tails-backup/sysident"
	"tails-backup/sysrefresh"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"

	"tails-backup/internal/testtool"
	"tails-backup/internal/testtree"
	"tails-backup/wire"
)

// The system partitions of these tests are ext4 file systems standing in for FAT (the
// development kernel has no vfat): the fake udisks says "vfat", labelled "Tails", as on a Tails
// stick, while the helper's checks against the mount table and the device numbers run for real.

const (
	iPartition = "org.freedesktop.UDisks2.Partition"
	newVersion = "Tails 6.11 - 20250107"
	oldVersion = "Tails 6.10 - 20241203"
)

// loopFS is an ext4 file system on a loop device (losetup), mounted only when a test says so.
type loopFS struct {
	t    *testing.T
	file string
	loop string // /dev/loopN
	rdev uint64
	mnt  string // where it is mounted, "" when it is not
}

// newLoopFS makes an ext4 image of sizeMiB in dir (no lost+found) on a loop device; when mnt
// is not "", it is mounted there.
func newLoopFS(t *testing.T, dir, name string, sizeMiB int64, mnt string) *loopFS {
	t.Helper()
	l := newLoop(t, dir, name, sizeMiB)
	run(t, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", l.loop)
	if mnt != "" {
		l.mount(mnt)
		if err := os.Remove(filepath.Join(mnt, "lost+found")); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// newLoop attaches a file of sizeMiB to a loop device.
func newLoop(t *testing.T, dir, name string, sizeMiB int64) *loopFS {
	t.Helper()
	l := &loopFS{t: t, file: filepath.Join(dir, name+".img")}
	f, err := os.Create(l.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l.loop = strings.TrimSpace(run(t, "losetup", "--find", "--show", l.file))
	t.Cleanup(func() {
		if l.mnt != "" {
			if err := exec.Command("umount", l.mnt).Run(); err != nil {
				_ = exec.Command("umount", "-l", l.mnt).Run()
			}
		}
		if out, err := exec.Command("losetup", "-d", l.loop).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v %s", l.loop, err, out)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(l.loop, &st); err != nil {
		t.Fatal(err)
	}
	l.rdev = st.Rdev
	return l
}

func (l *loopFS) mount(mnt string) {
	l.t.Helper()
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		l.t.Fatal(err)
	}
	run(l.t, "mount", "-t", "ext4", l.loop, mnt)
	l.mnt = mnt
}

func (l *loopFS) unmount() {
	l.t.Helper()
	run(l.t, "umount", l.mnt)
	l.mnt = ""
}

// sysWorld is a world with system partitions: the running one (the medium, mounted where
// System.SystemMount says and known to udisks as partition 1 of the boot stick) and the
// backup's (partition 1 of the backup stick, a loop device mounted at bsysMnt), and the backup
// stick's whole disk (a loop device, for the MBR).
type sysWorld struct {
	*world
	medium  *loopFS
	bsys    *loopFS
	disk    *loopFS
	bsysMnt string
	argvLog string // where the fake syslinux writes its arguments
	mbr     []byte // the medium's utils/mbr/mbr.bin
}

func newSysWorld(t *testing.T, bsysMiB int64) *sysWorld {
	t.Helper()
	w := &sysWorld{world: newWorld(t, worldOpts{})}
	if _, err := exec.LookPath("losetup"); err != nil {
		udiskstest.SkipOrFail(t, true, "losetup not found: %v", err)
	}
	mediumMnt := filepath.Join(w.dir, "medium")
	w.medium = newLoopFS(t, w.dir, "medium", 64, mediumMnt)
	w.bsysMnt = filepath.Join(w.dir, "bsys")
	w.bsys = newLoopFS(t, w.dir, "bsys", bsysMiB, w.bsysMnt)
	w.disk = newLoop(t, w.dir, "disk", 1)
	// The disk's first MiB: a protective MBR and a GPT stand-in that must survive the MBR write.
	head := bytes.Repeat([]byte("GPT!"), (1<<20)/4)
	if err := os.WriteFile(w.disk.file, head, 0o644); err != nil {
		t.Fatal(err)
	}
	w.argvLog = filepath.Join(w.dir, "syslinux-argv")
	w.mbr = bytes.Repeat([]byte{0xeb, 0x5e}, mbrCodeSize/2)
	makeMedium(t, mediumMnt, w.argvLog, w.mbr)

	w.sys.SystemMount = mediumMnt
	w.sys.ProgramPath = filepath.Join(w.dir, "no-programs")
	w.sys.GPTMBR = filepath.Join(w.dir, "no-gptmbr.bin")
	w.setBlock(w.boot.System, w.medium.loop, w.medium.rdev)
	w.setMountPoints(w.boot.System, mediumMnt)
	w.setBlock(w.backup.System, w.bsys.loop, w.bsys.rdev)
	w.setMountPoints(w.backup.System, w.bsysMnt)
	w.setBlock(w.backup.Disk, w.disk.loop, w.disk.rdev)
	return w
}

func (w *sysWorld) setBlock(p dbus.ObjectPath, dev string, rdev uint64) {
	w.fake.Set(p, iBlock, "DeviceNumber", rdev)
	w.fake.Set(p, iBlock, "Device", append([]byte(dev), 0))
	w.fake.Set(p, iBlock, "PreferredDevice", append([]byte(dev), 0))
}

// unmountBackupSystem unmounts the backup's system partition, for udisks and for real.
func (w *sysWorld) unmountBackupSystem() {
	w.bsys.unmount()
	w.setMountPoints(w.backup.System)
}

func pattern(n int, seed byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i/4096)
	}
	return string(b)
}

var (
	newTime = time.Date(2025, 1, 7, 10, 0, 0, 0, time.UTC)
	oldTime = time.Date(2024, 12, 3, 10, 0, 0, 0, time.UTC)
)

// mediumFiles is the running Tails 6.11 system partition, but for utils/: see makeMedium.
func mediumFiles() map[string]string {
	return map[string]string{
		".disk/info":               newVersion + "\n",
		"EFI/BOOT/bootx64.efi":     "grub 6.11",
		"EFI/debian/grub.cfg":      "menuentry 6.11",
		"syslinux/syslinux.cfg":    "label live 6.11",
		"syslinux/ldlinux.c32":     "ldlinux.c32 6.11",
		"syslinux/ldlinux.sys":     "ldlinux of the running stick",
		"live/vmlinuz":             pattern(300<<10, 'k'),
		"live/initrd.img":          pattern(1<<20+5, 'i'),
		"live/6.11.squashfs":       pattern(2<<20, 'd'),
		"live/filesystem.squashfs": pattern(24<<20, 'S'),
		"live/Tails.module":        "filesystem.squashfs\n6.11.squashfs\n",
		"doc/README":               "same everywhere",
	}
}

// makeMedium writes the running system partition at root: mediumFiles, a fake syslinux that
// records its arguments and environment in argvLog, and the MBR boot code mbr.
func makeMedium(t *testing.T, root, argvLog string, mbr []byte) {
	t.Helper()
	testtree.Write(t, root, mediumFiles(), newTime)
	testtree.Write(t, root, map[string]string{
		mediumSyslinux: fakeSyslinux(argvLog, 0),
		mediumMBR:      string(mbr),
	}, newTime)
}

// fakeSyslinux is a shell script that writes its arguments, one a line, then LC_CTYPE and
// PATH, to argvLog, and exits with status.
func fakeSyslinux(argvLog string, status int) string {
	return fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$0\" \"$@\" \"LC_CTYPE=$LC_CTYPE\" \"PATH=$PATH\" > '%s'\nexit %d\n", argvLog, status)
}

// oldBackupFiles is a backup with Tails 6.10 (another syslinux).
func oldBackupFiles() map[string]string {
	return map[string]string{
		".disk/info":               oldVersion + "\n",
		"EFI/BOOT/bootx64.efi":     "grub 6.10",
		"syslinux/syslinux.cfg":    "label live 6.10",
		"syslinux/ldlinux.c32":     "ldlinux.c32 6.10",
		"syslinux/ldlinux.sys":     "ldlinux of the backup stick",
		"live/vmlinuz":             pattern(290<<10, 'K'),
		"live/initrd.img":          pattern(1<<20, 'I'),
		"live/filesystem.squashfs": pattern(20<<20, 's'),
		"live/6.10.squashfs":       "old delta",
		"live/Tails.module":        "filesystem.squashfs\n6.10.squashfs\n",
		"doc/README":               "same everywhere",
	}
}

// checkSameSystem checks that the backup's system partition is a copy of the medium, but for
// syslinux/ldlinux.sys, which is the syslinux installer's to write; it returns the backup's
// ldlinux.sys hash ("" if absent).
func checkSameSystem(t *testing.T, medium, backup string) string {
	t.Helper()
	want, got := treehash.Of(t, medium), treehash.Of(t, backup)
	ldlinux := got["syslinux/ldlinux.sys"]
	delete(want, "syslinux/ldlinux.sys")
	delete(got, "syslinux/ldlinux.sys")
	for p := range want {
		if want[p] != got[p] {
			t.Errorf("%s: backup %q, running %q", p, got[p], want[p])
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s is on the backup's system partition only", p)
		}
	}
	if _, _, differ, err := sysrefresh.Check(medium, backup, sysrefresh.Options{}); err != nil || differ {
		t.Errorf("sysrefresh.Check after the refresh: differ %v, %v", differ, err)
	}
	return ldlinux
}

func TestRefreshSystem(t *testing.T) {
	// like returns the medium's files as a backup has them (its own ldlinux.sys), changed by fn.
	like := func(fn func(m map[string]string)) map[string]string {
		m := mediumFiles()
		m["syslinux/ldlinux.sys"] = "ldlinux of the backup stick"
		fn(m)
		return m
	}
	tests := []struct {
		name           string
		backup         map[string]string // nil: an empty partition
		mtime          time.Time         // of the backup's files
		wantBootloader bool
	}{
		{"older release", oldBackupFiles(), oldTime, true},
		// Another system, even with the same syslinux/: an interrupted refresh may have
		// replaced syslinux/ already, which the run that completes it cannot see.
		{"incremental upgrade, same syslinux", like(func(m map[string]string) {
			delete(m, "live/6.11.squashfs")
			m["live/Tails.module"] = "filesystem.squashfs\n"
		}), newTime, true},
		{"same system, a document differs", like(func(m map[string]string) { m["doc/README"] = "changed on the backup" }), newTime, false},
		{"same system, syslinux.cfg differs", like(func(m map[string]string) { m["syslinux/syslinux.cfg"] = "label edited" }), newTime, true},
		{"empty partition", nil, oldTime, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSysWorld(t, 96)
			w.sys.ProgressInterval = time.Nanosecond
			testtree.Write(t, w.bsysMnt, tt.backup, tt.mtime)
			before := treehash.Of(t, w.bsysMnt)
			dataBefore := listing(t, w.dst.mnt)

			evs, err := w.do(wire.OpRefreshSystem, dstUUID)
			done := checkEnd(t, evs, err, wire.EventDone)
			rep := done.Report
			if rep == nil || rep.SystemVersion != newVersion || rep.BootloaderChanged != tt.wantBootloader || rep.BytesCopied == 0 || rep.Created+rep.Updated == 0 {
				t.Fatalf("report %+v, want version %q, bootloader changed %v, something written", rep, newVersion, tt.wantBootloader)
			}
			ldlinux := checkSameSystem(t, w.medium.mnt, w.bsysMnt)
			if tt.backup == nil {
				if ldlinux != "" {
					t.Error("ldlinux.sys was copied onto an empty partition: only syslinux writes it")
				}
			} else if ldlinux != before["syslinux/ldlinux.sys"] {
				t.Error("the backup's own ldlinux.sys was overwritten")
			}
			var system int
			for _, ev := range evs[:len(evs)-1] {
				if ev.Phase != wire.PhaseSystem || ev.BytesTotal == 0 || ev.BytesDone > ev.BytesTotal || ev.FilesDone > ev.FilesTotal {
					t.Errorf("progress event %+v", ev)
				}
				system++
			}
			if last := evs[len(evs)-2]; system == 0 || last.BytesDone != last.BytesTotal || last.FilesDone != last.FilesTotal {
				t.Errorf("%d progress events, the last %+v; want some, ending at the total", system, last)
			}
			if got := listing(t, w.dst.mnt); got != dataBefore {
				t.Errorf("the backup's Persistent Storage changed:\n%s\n%s", dataBefore, got)
			}

			// Refreshed: a second run writes nothing and asks for no boot loader.
			evs, err = w.do(wire.OpRefreshSystem, dstUUID)
			rep = checkEnd(t, evs, err, wire.EventDone).Report
			if rep == nil || rep.BytesCopied != 0 || rep.Created+rep.Updated+rep.Deleted != 0 || rep.BootloaderChanged || rep.SystemVersion != newVersion {
				t.Errorf("second refresh: %+v", rep)
			}
		})
	}
}

// TestRefreshSystemPerStickFiles: the running stick's LUKS header backup and Welcome Screen
// settings (Tails 7) never reach the backup, and the backup's own stay as they are, whether it
// has its own, none, or is an empty partition being filled.
func TestRefreshSystemPerStickFiles(t *testing.T) {
	perStick := func(rel string) bool {
		top, _, _ := strings.Cut(rel, "/")
		return top == "luks-header-backup" || top == "storage"
	}
	split := func(h map[string]string) (own, rest map[string]string) {
		own, rest = map[string]string{}, map[string]string{}
		for p, v := range h {
			switch {
			case perStick(p):
				own[p] = v
			case p != "syslinux/ldlinux.sys":
				rest[p] = v
			}
		}
		return own, rest
	}
	tests := []struct {
		name   string
		backup map[string]string // nil: an empty partition
	}{
		{"its own", func() map[string]string {
			m := oldBackupFiles()
			m["luks-header-backup"] = "the LUKS header of the backup stick"
			m["storage/greeter/language"] = "de_DE"
			m["storage/only-on-the-backup"] = "its own"
			return m
		}()},
		{"none", oldBackupFiles()},
		{"empty partition", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSysWorld(t, 96)
			testtree.Write(t, w.medium.mnt, map[string]string{
				"luks-header-backup":       "the LUKS header of the running stick",
				"storage/greeter/language": "fr_FR",
				"storage/greeter/keyboard": "fr",
			}, newTime)
			testtree.Write(t, w.bsysMnt, tt.backup, oldTime)
			ownBefore, _ := split(treehash.Of(t, w.bsysMnt))

			evs, err := w.do(wire.OpRefreshSystem, dstUUID)
			if rep := checkEnd(t, evs, err, wire.EventDone).Report; rep == nil || rep.SystemVersion != newVersion {
				t.Fatalf("report %+v", rep)
			}
			own, rest := split(treehash.Of(t, w.bsysMnt))
			_, want := split(treehash.Of(t, w.medium.mnt))
			if !maps.Equal(own, ownBefore) {
				t.Errorf("the backup's own files changed:\nbefore %v\nafter  %v", ownBefore, own)
			}
			if !maps.Equal(rest, want) {
				t.Errorf("the rest is not a copy of the running system:\nrunning %v\nbackup  %v", want, rest)
			}
			if _, _, differ, err := sysrefresh.Check(w.medium.mnt, w.bsysMnt, sysrefresh.Options{}); err != nil || differ {
				t.Errorf("sysrefresh.Check after the refresh: differ %v, %v", differ, err)
			}
			evs, err = w.do(wire.OpRefreshSystem, dstUUID)
			if rep := checkEnd(t, evs, err, wire.EventDone).Report; rep == nil || rep.BytesCopied != 0 || rep.Created+rep.Updated+rep.Deleted != 0 {
				t.Errorf("second refresh: %+v", rep)
			}
		})
	}
}

// runSync runs the helper on one request and hands each event to onEvent before it reads the
// next one: the helper's output is an unbuffered pipe, so the helper waits in its next event
// while onEvent runs. cancel ends the helper's context (a signal).
func runSync(t *testing.T, sys System, req string, onEvent func(ev wire.Event, cancel func())) ([]wire.Event, error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer inW.Close()
	logs := &syncBuffer{}
	l := logrus.New()
	l.SetOutput(logs)
	result := make(chan error, 1)
	go func() {
		err := Run(ctx, inR, outW, sys, logrus.NewEntry(l))
		outW.Close()
		result <- err
	}()
	go func() { _, _ = io.WriteString(inW, req) }()
	var evs []wire.Event
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev wire.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
		onEvent(ev, cancel)
	}
	select {
	case err := <-result:
		if t.Failed() {
			t.Logf("helper log:\n%s", logs.String())
		}
		return evs, err
	case <-time.After(waitTimeout):
		t.Fatalf("the helper did not return within %s", waitTimeout)
	}
	return nil, nil
}

// TestRefreshSystemInterrupted: cancelled while the system image is being written, the
// refresh leaves the backup's old image and old identity, no temporary, and the next refresh
// finishes the job.
func TestRefreshSystemInterrupted(t *testing.T) {
	w := newSysWorld(t, 96)
	w.sys.ProgressInterval = time.Nanosecond
	testtree.Write(t, w.bsysMnt, oldBackupFiles(), oldTime)
	oldSquash := treehash.Of(t, w.bsysMnt)["live/filesystem.squashfs"]

	var cancelledAt *wire.Event
	evs, err := runSync(t, w.sys, request(wire.OpRefreshSystem, dstUUID), func(ev wire.Event, cancel func()) {
		if cancelledAt == nil && ev.Path == "live/filesystem.squashfs" && ev.BytesDone < ev.BytesTotal-8<<20 {
			cancelledAt = &ev
			cancel()
		}
	})
	if cancelledAt == nil {
		t.Fatalf("no progress event in the middle of the system image: %+v", evs)
	}
	if ev := checkEnd(t, evs, err, wire.EventError); ev.Code != wire.CodeCancelled {
		t.Fatalf("error %s %q, want cancelled", ev.Code, ev.Message)
	}
	after := treehash.Of(t, w.bsysMnt)
	if after["live/filesystem.squashfs"] != oldSquash {
		t.Error("the old system image was damaged")
	}
	for p := range after {
		if strings.Contains(p, sysrefresh.TempPrefix) {
			t.Errorf("temporary %s left", p)
		}
	}
	_, did, differ, err := sysrefresh.Check(w.medium.mnt, w.bsysMnt, sysrefresh.Options{})
	if err != nil || !differ || did.Version != oldVersion {
		t.Fatalf("after the interruption the backup is %+v, differ %v (%v): the next update must see it differs", did, differ, err)
	}

	evs, err = w.do(wire.OpRefreshSystem, dstUUID)
	rep := checkEnd(t, evs, err, wire.EventDone).Report
	if rep == nil || rep.SystemVersion != newVersion || !rep.BootloaderChanged {
		t.Fatalf("finishing refresh: %+v", rep)
	}
	checkSameSystem(t, w.medium.mnt, w.bsysMnt)
}

// TestRefreshSystemEmptyInterrupted: a refresh of an empty partition cut short leaves the
// placeholder version; the next refresh fills it and still asks for the boot loader.
func TestRefreshSystemEmptyInterrupted(t *testing.T) {
	w := newSysWorld(t, 96)
	w.sys.ProgressInterval = time.Nanosecond
	var cancelled bool
	evs, err := runSync(t, w.sys, request(wire.OpRefreshSystem, dstUUID), func(ev wire.Event, cancel func()) {
		if !cancelled && ev.Path == "live/filesystem.squashfs" {
			cancelled = true
			cancel()
		}
	})
	if ev := checkEnd(t, evs, err, wire.EventError); !cancelled || ev.Code != wire.CodeCancelled {
		t.Fatalf("error %+v (cancelled %v), want cancelled", ev, cancelled)
	}
	if v, err := sysident.ReadVersion(w.bsysMnt); err != nil || v != placeholderVersion {
		t.Fatalf("version after an interrupted fill: %q, %v", v, err)
	}
	evs, err = w.do(wire.OpRefreshSystem, dstUUID)
	rep := checkEnd(t, evs, err, wire.EventDone).Report
	if rep == nil || !rep.BootloaderChanged || rep.SystemVersion != newVersion {
		t.Fatalf("finishing refresh: %+v", rep)
	}
	checkSameSystem(t, w.medium.mnt, w.bsysMnt)
}

// TestRefreshSystemRefusals: every check on the system partitions refuses with its code, and
// neither system partition nor the Persistent Storage changes.
func TestRefreshSystemRefusals(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, w *sysWorld) (backup string)
		code   wire.ErrorCode
		substr string
	}{
		{name: "not partition 1", code: wire.CodeRefused, substr: "has no partition 1",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.backup.System, iPartition, "Number", uint32(3))
				return dstUUID
			}},
		{name: "partition 1 not an ESP", code: wire.CodeRefused, substr: "not a Tails system partition",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.backup.System, iPartition, "Type", "0fc63daf-8483-4772-8e79-3d69d8477de4")
				return dstUUID
			}},
		{name: "partition 1 not named Tails", code: wire.CodeRefused, substr: "not a Tails system partition",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.backup.System, iPartition, "Name", "EFI")
				return dstUUID
			}},
		{name: "not FAT for udisks", code: wire.CodeRefused, substr: "instead of FAT",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.backup.System, iBlock, "IdType", "ext4")
				return dstUUID
			}},
		{name: "label", code: wire.CodeRefused, substr: "labelled",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.backup.System, iBlock, "IdLabel", "DATA")
				return dstUUID
			}},
		{name: "read-only", code: wire.CodeRefused, substr: "read-only",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.backup.System, iBlock, "ReadOnly", true)
				return dstUUID
			}},
		{name: "partition on another drive", code: wire.CodeRefused, substr: "not on the same stick",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.backup.System, iBlock, "Drive", w.boot.Drive)
				return dstUUID
			}},
		{name: "another stick's system partition is the one mounted", code: wire.CodeNotFound, substr: "is not mounted",
			setup: func(t *testing.T, w *sysWorld) string {
				other := w.fake.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Other", Model: "Tails", Removable: true,
					ConnectionBus: "usb", Tails: true, LUKSUUID: otherUUID})
				w.setBlock(other.System, w.bsys.loop, w.bsys.rdev)
				w.setMountPoints(other.System, w.bsysMnt)
				w.setBlock(w.backup.System, w.disk.loop, w.disk.rdev) // not mounted anywhere
				w.setMountPoints(w.backup.System, w.bsysMnt)          // udisks' word is not taken
				return dstUUID
			}},
		{name: "not mounted", code: wire.CodeNotFound, substr: "is not mounted",
			setup: func(t *testing.T, w *sysWorld) string {
				w.unmountBackupSystem()
				return dstUUID
			}},
		{name: "boot drive", code: wire.CodeRefused, substr: "running from",
			setup: func(t *testing.T, w *sysWorld) string { return srcUUID }},
		{name: "another operation on the backup", code: wire.CodeRefused, substr: "Another update",
			setup: func(t *testing.T, w *sysWorld) string {
				if err := unix.Flock(openDir(t, w.dst.mnt), unix.LOCK_EX|unix.LOCK_NB); err != nil {
					t.Fatal(err)
				}
				return dstUUID
			}},
		{name: "files but no Tails", code: wire.CodeRefused, substr: "holds files but no Tails system",
			setup: func(t *testing.T, w *sysWorld) string {
				entries, err := os.ReadDir(w.bsysMnt)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if err := os.RemoveAll(filepath.Join(w.bsysMnt, e.Name())); err != nil {
						t.Fatal(err)
					}
				}
				testtree.Write(t, w.bsysMnt, map[string]string{"photos/cat.jpg": "meow"}, oldTime)
				return dstUUID
			}},
		{name: "not paired", code: wire.CodeNotPaired, substr: "backup of another Tails",
			setup: func(t *testing.T, w *sysWorld) string {
				w.writeMarker(w.dst.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
					Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
				return dstUUID
			}},
		{name: "this Tails is a backup", code: wire.CodeRefused, substr: "make it the main Tails first",
			setup: func(t *testing.T, w *sysWorld) string {
				w.writeMarker(w.src.mnt, tails.Marker{Format: 1, Source: otherUUID, State: tails.StateComplete,
					Started: time.Unix(1, 0), Finished: time.Unix(2, 0)})
				return dstUUID
			}},
		{name: "running system partition not mounted", code: wire.CodeNotFound, substr: "is not mounted at",
			setup: func(t *testing.T, w *sysWorld) string {
				w.sys.SystemMount = filepath.Join(w.dir, "nowhere")
				return dstUUID
			}},
		{name: "running system partition is not the boot stick's", code: wire.CodeRefused, substr: "not the system partition of the USB stick this Tails runs from",
			setup: func(t *testing.T, w *sysWorld) string {
				w.fake.Set(w.boot.System, iPartition, "Type", "0fc63daf-8483-4772-8e79-3d69d8477de4")
				return dstUUID
			}},
		// On Tails, amnesia owns every folder of the backup's FAT system partition (udisks
		// mounts it with uid=1000) and may mount FUSE on one.
		{name: "FUSE on a folder of the backup's system partition", code: wire.CodeRefused, substr: `mounted on "EFI/BOOT" in the system partition of the backup on`,
			setup: func(t *testing.T, w *sysWorld) string {
				mountFUSE(t, filepath.Join(w.bsysMnt, "EFI/BOOT"), map[string]string{"bootx64.efi": "not the backup's", "keep": "someone else's"})
				return dstUUID
			}},
		{name: "FUSE on the backup's version folder", code: wire.CodeRefused, substr: `mounted on ".disk" in the system partition of the backup on`,
			setup: func(t *testing.T, w *sysWorld) string {
				mountFUSE(t, filepath.Join(w.bsysMnt, ".disk"), map[string]string{"info": oldVersion + "\n"})
				return dstUUID
			}},
		{name: "FUSE on a folder of the running system partition", code: wire.CodeRefused, substr: `mounted on "EFI/debian" in the system partition of this Tails`,
			setup: func(t *testing.T, w *sysWorld) string {
				mountFUSE(t, filepath.Join(w.medium.mnt, "EFI/debian"), map[string]string{"grub.cfg": "from another file system"})
				return dstUUID
			}},
		// The same amnesia can nest folders without end there, each a descriptor and a listing
		// held by the root helper's walk.
		{name: "folders nested too deep on the backup's system partition", code: wire.CodeRefused,
			substr: "holds folders nested more than 64 levels deep (EFI/d/d/",
			setup: func(t *testing.T, w *sysWorld) string {
				deep := "EFI/" + strings.Repeat("d/", sysrefresh.MaxDepth+10) + "f"
				testtree.Write(t, w.bsysMnt, map[string]string{deep: "x"}, oldTime)
				return dstUUID
			}},
		{name: "running system partition has no version", code: wire.CodeRefused, substr: "no readable Tails version",
			setup: func(t *testing.T, w *sysWorld) string {
				if err := os.Remove(filepath.Join(w.medium.mnt, ".disk/info")); err != nil {
					t.Fatal(err)
				}
				return dstUUID
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSysWorld(t, 96)
			testtree.Write(t, w.bsysMnt, oldBackupFiles(), oldTime)
			backup := tt.setup(t, w)
			mediumBefore, dataBefore, bsysBefore := listing(t, w.medium.mnt), listing(t, w.dst.mnt), listing(t, w.bsysMnt)
			evs, err := w.do(wire.OpRefreshSystem, backup)
			ev := checkEnd(t, evs, err, wire.EventError)
			t.Logf("%s: %s", ev.Code, ev.Message)
			if ev.Code != tt.code || !strings.Contains(ev.Message, tt.substr) {
				t.Errorf("error %s %q, want %s containing %q", ev.Code, ev.Message, tt.code, tt.substr)
			}
			if got := listing(t, w.bsysMnt); got != bsysBefore {
				t.Errorf("the backup's system partition changed:\n%s\n%s", bsysBefore, got)
			}
			if listing(t, w.medium.mnt) != mediumBefore || listing(t, w.dst.mnt) != dataBefore {
				t.Error("the running system partition or the backup's Persistent Storage changed")
			}
		})
	}
}

// mountFUSE mounts a FUSE file system (bindfs of a private folder holding files) on the folder
// at, until the test ends.
func mountFUSE(t *testing.T, at string, files map[string]string) {
	t.Helper()
	testtool.Program(t, "bindfs", "bindfs")
	from := t.TempDir()
	testtree.Write(t, from, files, oldTime)
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "bindfs", "-o", "nonempty", from, at)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", at).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", at, err, out)
			_ = exec.Command("umount", "-l", at).Run()
		}
	})
}

func TestRefreshSystemNoSpace(t *testing.T) {
	w := newSysWorld(t, 40)
	// 20 MiB of old image on a 40 MiB partition: the new 24 MiB image does not fit beside it.
	testtree.Write(t, w.bsysMnt, oldBackupFiles(), oldTime)
	before := treehash.Of(t, w.bsysMnt)
	evs, err := w.do(wire.OpRefreshSystem, dstUUID)
	ev := checkEnd(t, evs, err, wire.EventError)
	t.Logf("%s: %s", ev.Code, ev.Message)
	if ev.Code != wire.CodeNoSpace || ev.Needed <= ev.Available || ev.Needed < 24<<20 || !strings.Contains(ev.Message, "bigger USB stick") {
		t.Fatalf("error %+v, want no-space with the sizes", ev)
	}
	after := treehash.Of(t, w.bsysMnt)
	if len(after) != len(before) {
		t.Errorf("the backup's system partition changed: %v", after)
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed", p)
		}
	}
}

// syslinuxRun is what the fake syslinux recorded: its path, its arguments, its environment.
func (w *sysWorld) syslinuxRun(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(w.argvLog)
	if err != nil {
		t.Fatalf("syslinux did not run: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestInstallBootloader(t *testing.T) {
	tests := []struct {
		name string
		// setup changes the world; it returns the syslinux program expected to run ("" for
		// the medium's copy).
		setup      func(t *testing.T, w *sysWorld) string
		bootloader string
		mbrFrom    string // "medium", "system" or "" (not written)
	}{
		{name: "the medium's syslinux", bootloader: wire.BootloaderSyslinux, mbrFrom: "medium",
			setup: func(t *testing.T, w *sysWorld) string { return "" }},
		{name: "syslinux and gptmbr.bin of the system", bootloader: wire.BootloaderSyslinux, mbrFrom: "system",
			setup: func(t *testing.T, w *sysWorld) string {
				for _, f := range []string{mediumSyslinux, mediumMBR} {
					if err := os.Remove(filepath.Join(w.medium.mnt, f)); err != nil {
						t.Fatal(err)
					}
				}
				bin := filepath.Join(w.dir, "bin")
				testtree.Write(t, bin, map[string]string{"syslinux": fakeSyslinux(w.argvLog, 0)}, newTime)
				if err := os.Chmod(filepath.Join(bin, "syslinux"), 0o755); err != nil {
					t.Fatal(err)
				}
				w.sys.ProgramPath = "relative/bin:" + filepath.Join(w.dir, "empty") + ":" + bin
				w.sys.GPTMBR = filepath.Join(w.dir, "gptmbr.bin")
				if err := os.WriteFile(w.sys.GPTMBR, bytes.Repeat([]byte{0x33}, mbrCodeSize), 0o644); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(bin, "syslinux")
			}},
		{name: "no syslinux", bootloader: wire.BootloaderNoSyslinux,
			setup: func(t *testing.T, w *sysWorld) string {
				if err := os.Remove(filepath.Join(w.medium.mnt, mediumSyslinux)); err != nil {
					t.Fatal(err)
				}
				// Not executable: not a program.
				testtree.Write(t, filepath.Join(w.dir, "bin"), map[string]string{"syslinux": fakeSyslinux(w.argvLog, 0)}, newTime)
				w.sys.ProgramPath = filepath.Join(w.dir, "bin")
				return ""
			}},
		{name: "no gptmbr.bin", bootloader: wire.BootloaderNoMBR,
			setup: func(t *testing.T, w *sysWorld) string {
				if err := os.Remove(filepath.Join(w.medium.mnt, mediumMBR)); err != nil {
					t.Fatal(err)
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSysWorld(t, 96)
			w.unmountBackupSystem()
			program := tt.setup(t, w)
			diskBefore, err := os.ReadFile(w.disk.file)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := w.do(wire.OpInstallBootloader, dstUUID)
			rep := checkEnd(t, evs, err, wire.EventDone).Report
			if rep == nil || rep.Bootloader != tt.bootloader {
				t.Fatalf("report %+v, want bootloader %q", rep, tt.bootloader)
			}
			diskAfter, err := os.ReadFile(w.disk.file)
			if err != nil {
				t.Fatal(err)
			}
			if tt.mbrFrom == "" {
				if !bytes.Equal(diskAfter, diskBefore) {
					t.Error("the disk changed although the boot loader was skipped")
				}
				if _, err := os.Stat(w.argvLog); !os.IsNotExist(err) {
					t.Errorf("syslinux ran although the boot loader was skipped: %v", err)
				}
				return
			}
			got := w.syslinuxRun(t)
			want := []string{program, "-d", "syslinux", w.bsys.loop, "LC_CTYPE=C", "PATH=" + w.sys.ProgramPath}
			if program == "" {
				// The medium's copy, run from a private folder that is gone afterwards.
				want[0] = got[0]
				if !strings.HasPrefix(got[0], filepath.Join(os.TempDir(), "tails-backup-syslinux-")) {
					t.Errorf("syslinux ran from %s", got[0])
				}
				if _, err := os.Stat(filepath.Dir(got[0])); !os.IsNotExist(err) {
					t.Errorf("the copy of syslinux was left: %v", err)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("syslinux ran as %q, want %q", got, want)
			}
			code := w.mbr
			if tt.mbrFrom == "system" {
				code = bytes.Repeat([]byte{0x33}, mbrCodeSize)
			}
			if !bytes.Equal(diskAfter[:mbrCodeSize], code) {
				t.Errorf("the first 440 bytes of the disk are %x, want the boot code", diskAfter[:mbrCodeSize])
			}
			if !bytes.Equal(diskAfter[mbrCodeSize:], diskBefore[mbrCodeSize:]) {
				t.Error("the MBR write changed more than the boot code (the partition table follows it)")
			}
		})
	}
}

func TestInstallBootloaderRefusals(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, w *sysWorld) string
		code   wire.ErrorCode
		substr string
	}{
		{name: "mounted", code: wire.CodeRefused, substr: "is mounted",
			setup: func(t *testing.T, w *sysWorld) string { return dstUUID }},
		{name: "mounted, but udisks does not know", code: wire.CodeRefused, substr: "is mounted",
			setup: func(t *testing.T, w *sysWorld) string { w.setMountPoints(w.backup.System); return dstUUID }},
		{name: "not partition 1", code: wire.CodeRefused, substr: "has no partition 1",
			setup: func(t *testing.T, w *sysWorld) string {
				w.unmountBackupSystem()
				w.fake.Set(w.backup.System, iPartition, "Number", uint32(2))
				return dstUUID
			}},
		{name: "udisks names another device", code: wire.CodeRefused, substr: "not the expected one",
			setup: func(t *testing.T, w *sysWorld) string {
				w.unmountBackupSystem()
				w.fake.Set(w.backup.Disk, iBlock, "Device", append([]byte(w.medium.loop), 0))
				return dstUUID
			}},
		{name: "boot drive", code: wire.CodeRefused, substr: "running from",
			setup: func(t *testing.T, w *sysWorld) string { w.unmountBackupSystem(); return srcUUID }},
		// The installer run as root comes from the running system partition, never from a
		// file system mounted in it.
		{name: "syslinux on another file system", code: wire.CodeInternal, substr: "cannot be read",
			setup: func(t *testing.T, w *sysWorld) string {
				w.unmountBackupSystem()
				mountFUSE(t, filepath.Join(w.medium.mnt, path.Dir(mediumSyslinux)), map[string]string{"syslinux": fakeSyslinux(w.argvLog, 0)})
				return dstUUID
			}},
		{name: "syslinux fails", code: wire.CodeInternal, substr: "failed",
			setup: func(t *testing.T, w *sysWorld) string {
				w.unmountBackupSystem()
				testtree.Write(t, w.medium.mnt, map[string]string{mediumSyslinux: fakeSyslinux(w.argvLog, 1)}, newTime)
				return dstUUID
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newSysWorld(t, 96)
			backup := tt.setup(t, w)
			diskBefore, err := os.ReadFile(w.disk.file)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := w.do(wire.OpInstallBootloader, backup)
			ev := checkEnd(t, evs, err, wire.EventError)
			t.Logf("%s: %s", ev.Code, ev.Message)
			if ev.Code != tt.code || !strings.Contains(ev.Message, tt.substr) {
				t.Errorf("error %s %q, want %s containing %q", ev.Code, ev.Message, tt.code, tt.substr)
			}
			if diskAfter, err := os.ReadFile(w.disk.file); err != nil || !bytes.Equal(diskAfter, diskBefore) {
				t.Errorf("the disk changed (%v)", err)
			}
			if tt.name != "syslinux fails" {
				if _, err := os.Stat(w.argvLog); !os.IsNotExist(err) {
					t.Errorf("syslinux ran: %v", err)
				}
			}
		})
	}
}
