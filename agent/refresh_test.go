//go:build linux

package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"tails-backup/internal/testtree"
	"tails-backup/internal/treehash"
	"tails-backup/notify/notifytest"
	"tails-backup/pairing"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

const (
	runningVersion = "Tails 6.11 - 20250107"
	backupVersion  = "Tails 6.10 - 20241203"
)

var backupSystem = udiskstest.BlockPath("sdb1") // partition 1 of the backup stick

// runningSystem is a Tails 6.11 system partition; olderSystem is 6.10's.
func runningSystem() map[string]string {
	return map[string]string{
		".disk/info":               runningVersion + "\n",
		"EFI/BOOT/bootx64.efi":     "grub 6.11",
		"syslinux/syslinux.cfg":    "label live 6.11",
		"syslinux/ldlinux.c32":     "ldlinux.c32 6.11",
		"live/vmlinuz":             "kernel 6.11",
		"live/filesystem.squashfs": strings.Repeat("S", 3<<20),
		"live/Tails.module":        "filesystem.squashfs\n",
	}
}

func olderSystem() map[string]string {
	return map[string]string{
		".disk/info":               backupVersion + "\n",
		"EFI/BOOT/bootx64.efi":     "grub 6.10",
		"syslinux/syslinux.cfg":    "label live 6.10",
		"syslinux/ldlinux.c32":     "ldlinux.c32 6.10",
		"syslinux/ldlinux.sys":     "ldlinux of the backup",
		"live/vmlinuz":             "kernel 6.10",
		"live/filesystem.squashfs": strings.Repeat("s", 2<<20),
		"live/Tails.module":        "filesystem.squashfs\n",
	}
}

var systemTime = time.Date(2025, 1, 7, 10, 0, 0, 0, time.UTC)

// identityFiles are what a system partition's identity covers (sysident): copying them makes two
// system partitions equal.
var identityFiles = []string{".disk/info", "live/Tails.module", "live/filesystem.squashfs"}

func copyFiles(t *testing.T, from, to string, rels []string) {
	t.Helper()
	for _, rel := range rels {
		b, err := os.ReadFile(filepath.Join(from, rel))
		if err != nil {
			t.Error(err)
			return
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, rel)), 0o755); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(filepath.Join(to, rel), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// sysWorld is the agent world (fake helper) with a running system partition (a folder) and the
// backup's system partition where the fake udisks mounts it (MOUNTROOT/Tails).
type sysWorld struct {
	*world
	medium, backupSys string

	mu              sync.Mutex
	refreshReport   wire.Report // what refresh-system reports
	refreshErr      error
	bootloaderErr   error
	bootloader      string // what install-bootloader reports
	mountedAtBoot   []bool // whether partition 1 was mounted at each install-bootloader
	refreshProgress bool   // refresh-system waits for its cancellation after a progress event
}

func newSysWorld(t *testing.T, backup map[string]string) *sysWorld {
	t.Helper()
	w := &sysWorld{world: newWorld(t), medium: t.TempDir(), bootloader: wire.BootloaderSyslinux}
	mroot := t.TempDir()
	w.udisks.SetMountRoot(mroot)
	w.backupSys = filepath.Join(mroot, "Tails")
	if err := os.Mkdir(w.backupSys, 0o755); err != nil {
		t.Fatal(err)
	}
	testtree.Write(t, w.medium, runningSystem(), systemTime)
	testtree.Write(t, w.backupSys, backup, systemTime)
	w.agent.cfg.Medium = w.medium
	w.refreshReport = wire.Report{Updated: 5, BytesCopied: 3 << 20, SystemVersion: runningVersion, BootloaderChanged: true}
	w.helper.Func = w.runHelper
	return w
}

// runHelper is the fake helper: refresh-system makes the backup's identity the running one's.
func (w *sysWorld) runHelper(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch req.Op {
	case wire.OpUpdate:
		return &wire.Report{Created: 2, BytesCopied: 1000}, nil
	case wire.OpRefreshSystem:
		progress(wire.Event{Event: wire.EventProgress, Phase: wire.PhaseSystem, BytesDone: 1 << 20, BytesTotal: 4 << 20, FilesDone: 1, FilesTotal: 4})
		if w.refreshProgress {
			w.mu.Unlock()
			<-ctx.Done()
			w.mu.Lock()
			return nil, fmt.Errorf("%w (%w)", &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}, ctx.Err())
		}
		if w.refreshErr != nil {
			return nil, w.refreshErr
		}
		copyFiles(w.t, w.medium, w.backupSys, identityFiles)
		rep := w.refreshReport
		return &rep, nil
	case wire.OpInstallBootloader:
		mps, _ := w.udisks.Get(backupSystem, udisks.IfaceFilesystem, "MountPoints").([][]byte)
		w.mountedAtBoot = append(w.mountedAtBoot, len(mps) > 0)
		if w.bootloaderErr != nil {
			return nil, w.bootloaderErr
		}
		return &wire.Report{Bootloader: w.bootloader}, nil
	}
	return nil, fmt.Errorf("unexpected request %+v", req)
}

func ops(reqs []wire.Request) []wire.Op {
	var out []wire.Op
	for _, r := range reqs {
		if r.Backup != backupUUID {
			out = append(out, "wrong backup "+wire.Op(r.Backup))
		}
		out = append(out, r.Op)
	}
	return out
}

// systemCalls counts the udisks calls of method on the backup's system partition.
func (w *world) systemCalls(method string) int {
	n := 0
	for _, c := range w.udisks.CallsOf(method) {
		if c.Path == backupSystem {
			n++
		}
	}
	return n
}

// errorNotes are the error notifications shown, once the agent has stopped.
func (w *world) errorNotes() []notifytest.Notification {
	w.stop()
	var out []notifytest.Notification
	for _, n := range w.notes.Notifications() {
		if n.Icon == "dialog-error" {
			out = append(out, n)
		}
	}
	return out
}

func TestSystemRefreshedAfterUpdate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bootloader bool
		want       []wire.Op
	}{
		{"boot files changed", true, []wire.Op{wire.OpUpdate, wire.OpRefreshSystem, wire.OpInstallBootloader}},
		{"boot files unchanged", false, []wire.Op{wire.OpUpdate, wire.OpRefreshSystem}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSysWorld(t, olderSystem())
			w.refreshReport.BootloaderChanged = tc.bootloader
			w.start()
			w.plugBackup()
			done := w.waitNote("Backup updated: you can unplug it")
			if !strings.HasPrefix(done.Body, "2 files changed") ||
				!strings.Contains(done.Body, "Its Tails system was updated to "+runningVersion+".") {
				t.Errorf("done body %q", done.Body)
			}
			if got := ops(w.helper.Requests()); !slices.Equal(got, tc.want) {
				t.Errorf("helper requests %v, want %v", got, tc.want)
			}
			w.mu.Lock()
			mountedAtBoot := slices.Clone(w.mountedAtBoot)
			w.mu.Unlock()
			if tc.bootloader && !slices.Equal(mountedAtBoot, []bool{false}) {
				t.Errorf("partition 1 mounted at install-bootloader: %v, want unmounted", mountedAtBoot)
			}
			if m, u := w.systemCalls("Mount"), w.systemCalls("Unmount"); m != 1 || u != 1 {
				t.Errorf("system partition mounted %d and unmounted %d times, want once each", m, u)
			}
			if w.udisks.Exists(udiskstest.DrivePath("Kingston", "DataTraveler", "BACKUP0002")) {
				t.Error("the backup was not powered off")
			}
			w.notes.WaitFor(t, func(n notifytest.Notification) bool {
				return n.Summary == "Updating the Tails system on your backup" && strings.HasPrefix(n.Body, "25% done") && slices.Contains(n.ActionKeys(), actCancel)
			}, wait)
			if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess {
				t.Errorf("last attempt %+v", st.LastAttempt)
			}
			if n := w.errorNotes(); len(n) != 0 {
				t.Errorf("error notifications %+v", n)
			}
		})
	}
}

// TestSystemProbedAfterPlug: when the update starts, udisks has not probed the system
// partition yet (no filesystem on it); by the end of the data update it has: the system is
// refreshed all the same (found in the VM: the refresh never ran on a freshly plugged stick).
func TestSystemProbedAfterPlug(t *testing.T) {
	w := newSysWorld(t, olderSystem())
	const fsIface = udisks.IfaceFilesystem
	w.plugBackup()
	fsProps := map[string]any{}
	for _, name := range []string{"MountPoints", "Size"} {
		fsProps[name] = w.udisks.Get(backupSystem, fsIface, name)
	}
	w.udisks.Remove(backupSystem, fsIface)
	var once sync.Once
	w.udisks.OnCall("Unlock", func(udiskstest.Call) *dbus.Error {
		once.Do(func() { w.udisks.Add(backupSystem, map[string]map[string]any{fsIface: fsProps}) })
		return nil
	})
	w.start()
	done := w.waitNote("Backup updated: you can unplug it")
	if !strings.Contains(done.Body, "Its Tails system was updated to "+runningVersion+".") {
		t.Errorf("done body %q", done.Body)
	}
	if got := ops(w.helper.Requests()); !slices.Contains(got, wire.OpRefreshSystem) {
		t.Errorf("helper requests %v: no refresh-system", got)
	}
}

// TestSystemNotRefreshed: an up-to-date backup system, a stick without a Tails system
// partition and an unreadable running system are left alone, quietly.
func TestSystemNotRefreshed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(w *sysWorld)
		wantMount int
	}{
		{"up to date", func(w *sysWorld) {
			copyFiles(t, w.medium, w.backupSys, identityFiles)
		}, 1},
		{"no Tails system partition", func(w *sysWorld) {
			w.udisks.Set(backupSystem, "org.freedesktop.UDisks2.Partition", "Name", "EFI")
		}, 0},
		{"system partition is not partition 1", func(w *sysWorld) {
			w.udisks.Set(backupSystem, "org.freedesktop.UDisks2.Partition", "Number", uint32(3))
		}, 0},
		{"running system unreadable", func(w *sysWorld) {
			w.agent.cfg.Medium = filepath.Join(w.medium, "nowhere")
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSysWorld(t, olderSystem())
			w.plugBackup() // before the agent starts: the changes below come first
			tc.setup(w)
			w.start()
			done := w.waitNote("Backup updated: you can unplug it")
			if strings.Contains(done.Body, "Tails system") {
				t.Errorf("done body %q", done.Body)
			}
			if got := ops(w.helper.Requests()); !slices.Equal(got, []wire.Op{wire.OpUpdate}) {
				t.Errorf("helper requests %v, want only the update", got)
			}
			if m, u := w.systemCalls("Mount"), w.systemCalls("Unmount"); m != tc.wantMount || u != tc.wantMount {
				t.Errorf("system partition mounted %d and unmounted %d times, want %d", m, u, tc.wantMount)
			}
			if n := w.errorNotes(); len(n) != 0 {
				t.Errorf("error notifications %+v", n)
			}
		})
	}
}

// TestSystemAlreadyMounted: a system partition mounted before the agent is used and left
// mounted, unless the boot loader needs it unmounted.
func TestSystemAlreadyMounted(t *testing.T) {
	for _, bootloader := range []bool{false, true} {
		t.Run(fmt.Sprintf("bootloader %v", bootloader), func(t *testing.T) {
			w := newSysWorld(t, olderSystem())
			w.refreshReport.BootloaderChanged = bootloader
			w.plugBackup()
			w.udisks.Set(backupSystem, udisks.IfaceFilesystem, "MountPoints", [][]byte{append([]byte(w.backupSys), 0)})
			w.start()
			w.waitNote("Backup updated")
			w.stop()
			mps, _ := w.udisks.Get(backupSystem, udisks.IfaceFilesystem, "MountPoints").([][]byte)
			if bootloader == (len(mps) > 0) || w.systemCalls("Unmount") != map[bool]int{false: 0, true: 1}[bootloader] {
				t.Errorf("after the update the system partition has mount points %q (%d unmounts)", mps, w.systemCalls("Unmount"))
			}
		})
	}
}

func TestSystemRefreshFailures(t *testing.T) {
	for _, tc := range []struct {
		name          string
		refreshErr    error
		bootloaderErr error
		summary, body string
	}{
		{name: "no space", refreshErr: &wire.HelperError{Code: wire.CodeNoSpace, Message: "x", Needed: 2, Available: 1},
			summary: "The Tails system on your backup was not updated", body: "create a new backup on a bigger USB stick"},
		{name: "unplugged", refreshErr: &wire.HelperError{Code: wire.CodeDeviceGone, Message: "x"},
			summary: "The Tails system on your backup was not updated", body: "unplugged while its Tails system was updated: plug it in again to finish"},
		// The sentence of the helper's reason, never its English message.
		{name: "refused", refreshErr: &wire.HelperError{Code: wire.CodeRefused, Reason: wire.ReasonBackupPartitionESP,
			Args: wire.Args{Stick: &wire.Stick{Label: "Kingston DataTraveler"}}, Message: "Partition 1 of the backup is not a Tails system partition; create the backup again."},
			summary: "The Tails system on your backup was not updated", body: "The backup on Kingston DataTraveler has no Tails system partition where it should be, so it is not written to. Create the backup again."},
		{name: "crash", refreshErr: &wire.HelperCrashError{ExitCode: -1, Signal: "killed"},
			summary: "The Tails system on your backup was not updated", body: "stopped unexpectedly: plug your backup Tails in again to finish it"},
		{name: "boot loader", bootloaderErr: &wire.HelperError{Code: wire.CodeInternal, Message: "syslinux failed"},
			summary: "Your backup Tails might not start on older computers", body: "plug your backup Tails in again to try again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSysWorld(t, olderSystem())
			w.refreshErr, w.bootloaderErr = tc.refreshErr, tc.bootloaderErr
			w.start()
			w.plugBackup()
			done := w.waitNote("Backup updated: you can unplug it")
			if !strings.HasPrefix(done.Body, "Your data is up to date") {
				t.Errorf("done body %q", done.Body)
			}
			n := w.waitNote(tc.summary)
			// What happened, and what to do: at most two sentences.
			if !strings.Contains(n.Body, tc.body) || strings.Count(n.Body, ". ") > 1 {
				t.Errorf("system note body %q, want at most two sentences containing %q", n.Body, tc.body)
			}
			// The data update counts: the store records the success.
			if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess || !st.Backup(backupUUID).LastSuccess.Equal(w.clock.Now()) {
				t.Errorf("state %+v", st.LastAttempt)
			}
			if w.systemCalls("Mount") != 1 || w.systemCalls("Unmount") != 1 || len(w.udisks.CallsOf("PowerOff")) != 1 {
				t.Errorf("system partition mounted %d, unmounted %d times, %d power-offs", w.systemCalls("Mount"), w.systemCalls("Unmount"), len(w.udisks.CallsOf("PowerOff")))
			}
		})
	}
}

func TestSystemRefreshCancelled(t *testing.T) {
	w := newSysWorld(t, olderSystem())
	w.refreshProgress = true
	w.start()
	w.plugBackup()
	p := w.notes.WaitFor(t, func(n notifytest.Notification) bool {
		return n.Summary == "Updating the Tails system on your backup" && strings.HasPrefix(n.Body, "25% done")
	}, wait)
	w.notes.Click(t, p.ID, actCancel)
	n := w.waitNote("Update of the Tails system on your backup cancelled")
	if !strings.Contains(n.Body, "plug your backup Tails in again to finish") {
		t.Errorf("body %q", n.Body)
	}
	if got := ops(w.helper.Requests()); !slices.Equal(got, []wire.Op{wire.OpUpdate, wire.OpRefreshSystem}) {
		t.Errorf("helper requests %v", got)
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess {
		t.Errorf("last attempt %+v: the data update succeeded", st.LastAttempt)
	}
	if w.systemCalls("Unmount") != 1 || len(w.udisks.CallsOf("Lock")) != 1 {
		t.Error("the cancelled backup was not unmounted and locked")
	}
}

// TestBootloaderPendingNextPlug: the boot loader failed after the refresh; at the next plug
// the systems are equal, but the boot loader is installed again.
func TestBootloaderPendingNextPlug(t *testing.T) {
	w := newSysWorld(t, olderSystem())
	w.asker.Answers = []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}, {Pass: udiskstest.BackupPassphrase}}
	w.bootloaderErr = &wire.HelperError{Code: wire.CodeDeviceGone, Message: "gone"}
	w.start()
	w.plugBackup()
	w.waitNote("The Tails system on your backup was not updated")
	w.udisks.Unplug(udiskstest.DrivePath("Kingston", "DataTraveler", "BACKUP0002"))
	w.mu.Lock()
	w.bootloaderErr = nil
	w.bootloader = wire.BootloaderNoSyslinux // a warning, not an error
	w.mu.Unlock()
	seq := w.notes.Notifications()[len(w.notes.Notifications())-1].Seq
	w.plugBackup()
	w.notes.WaitFor(t, func(n notifytest.Notification) bool {
		return n.Seq > seq && n.Summary == "Backup updated: you can unplug it"
	}, wait)
	want := []wire.Op{wire.OpUpdate, wire.OpRefreshSystem, wire.OpInstallBootloader, wire.OpUpdate, wire.OpInstallBootloader}
	if got := ops(w.helper.Requests()); !slices.Equal(got, want) {
		t.Errorf("helper requests %v, want %v", got, want)
	}
	for _, n := range w.errorNotes() {
		if n.Seq > seq {
			t.Errorf("error notification after the second plug: %+v", n)
		}
	}
}

// ---- with the real helper ----

// looseImage is an ext4 file system on a loop device, mounted only when asked.
type looseImage struct {
	t          *testing.T
	file, loop string
	dev        uint64
	mnt        string
}

func newLooseImage(t *testing.T, file string, sizeMiB int64, format bool) *looseImage {
	t.Helper()
	im := &looseImage{t: t, file: file}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	im.loop = strings.TrimSpace(runCmd(t, "losetup", "--find", "--show", file))
	t.Cleanup(func() {
		if im.mnt != "" {
			_ = exec.Command("umount", "-l", im.mnt).Run()
		}
		if out, err := exec.Command("losetup", "-d", im.loop).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v %s", im.loop, err, out)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(im.loop, &st); err != nil {
		t.Fatal(err)
	}
	im.dev = st.Rdev
	if format {
		runCmd(t, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", im.loop)
	}
	return im
}

func (im *looseImage) mount(mnt string) error {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "ext4", im.loop, mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("mount %s: %v %s", im.loop, err, out)
	}
	im.mnt = mnt
	return nil
}

func (im *looseImage) unmount() error {
	if out, err := exec.Command("umount", im.mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("umount %s: %v %s", im.mnt, err, out)
	}
	im.mnt = ""
	return nil
}

// realSystems are the system partitions of a real world: the running one, and the backup's
// with its whole disk. Ext4 images stand in for FAT (the host kernel has no vfat, as in
// helper/refresh_test.go): the fake udisks2 says "vfat", labelled "Tails", as on a Tails stick.
type realSystems struct {
	medium, bsys, disk *looseImage
	mediumMnt, bsysMnt string
	argvLog            string // where the running system's fake syslinux writes its arguments
	mbr, gpt           []byte // the running system's MBR boot code; what the backup's disk held
}

// withSystems gives w a running system partition (runningSystem, with a fake syslinux and MBR
// boot code), mounted where the helper and the agent look for it and known to udisks as
// partition 1 of the boot stick; and the backup's system partition at backupSys (holding
// backupFiles, empty when nil) and its whole disk at backupDisk, mounted and unmounted for real
// when udisks is asked to.
func (w *realWorld) withSystems(backupSys, backupDisk dbus.ObjectPath, backupFiles map[string]string) *realSystems {
	t, dir := w.t, w.dir
	t.Helper()
	sys := &realSystems{argvLog: filepath.Join(dir, "syslinux-argv"), mbr: bytes.Repeat([]byte{0xfa, 0x31}, 220),
		gpt: bytes.Repeat([]byte("GPT!"), 1<<18)}
	sys.medium = newLooseImage(t, filepath.Join(dir, "medium.img"), 32, true)
	sys.mediumMnt = filepath.Join(dir, "medium")
	if err := sys.medium.mount(sys.mediumMnt); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(sys.mediumMnt, "lost+found")); err != nil {
		t.Fatal(err)
	}
	testtree.Write(t, sys.mediumMnt, runningSystem(), systemTime)
	testtree.Write(t, sys.mediumMnt, map[string]string{
		"utils/linux/syslinux": fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\n", sys.argvLog),
		"utils/mbr/mbr.bin":    string(sys.mbr),
	}, systemTime)
	bootSystem := udiskstest.BlockPath("sda1")
	w.setDevice(bootSystem, &loopImage{loop: sys.medium.loop, dev: sys.medium.dev})
	w.udisks.Set(bootSystem, udisks.IfaceFilesystem, "MountPoints", [][]byte{append([]byte(sys.mediumMnt), 0)})
	w.helper.sys.SystemMount = sys.mediumMnt
	w.helper.sys.ProgramPath = "/usr/sbin:/usr/bin:/sbin:/bin"
	w.helper.sys.GPTMBR = filepath.Join(dir, "no-gptmbr.bin")
	w.agent.cfg.Medium = sys.mediumMnt

	sys.bsys = newLooseImage(t, filepath.Join(dir, "bsys.img"), 32, true)
	sys.bsysMnt = filepath.Join(dir, "media", "Tails") // where the fake udisks mounts a file system labelled Tails
	if err := sys.bsys.mount(sys.bsysMnt); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(sys.bsysMnt, "lost+found")); err != nil {
		t.Fatal(err)
	}
	testtree.Write(t, sys.bsysMnt, backupFiles, systemTime)
	if err := sys.bsys.unmount(); err != nil {
		t.Fatal(err)
	}
	sys.disk = newLooseImage(t, filepath.Join(dir, "disk.img"), 1, false)
	if err := os.WriteFile(sys.disk.file, sys.gpt, 0o644); err != nil {
		t.Fatal(err)
	}
	w.udisks.OnCall("Mount", func(c udiskstest.Call) *dbus.Error {
		if c.Path != backupSys {
			return nil
		}
		w.setDevice(backupSys, &loopImage{loop: sys.bsys.loop, dev: sys.bsys.dev})
		w.setDevice(backupDisk, &loopImage{loop: sys.disk.loop, dev: sys.disk.dev})
		if err := sys.bsys.mount(sys.bsysMnt); err != nil {
			return udiskstest.Failed(err.Error())
		}
		return nil
	})
	w.udisks.OnCall("Unmount", func(c udiskstest.Call) *dbus.Error {
		if c.Path == backupSys && sys.bsys.mnt != "" {
			if err := sys.bsys.unmount(); err != nil {
				return udiskstest.Failed(err.Error())
			}
		}
		return nil
	})
	return sys
}

// TestRealHelperUpdateAndSystemRefresh: the agent updates a paired backup whose system
// partition holds an older Tails with the real helper: the Persistent Storage is mirrored,
// then the session finds the systems differ, the helper refreshes the backup's system
// partition from the running one, and, its boot files having changed, installs the boot
// loader on the unmounted partition (a fake syslinux from the running system partition, and
// its MBR boot code on the backup's whole disk).
func TestRealHelperUpdateAndSystemRefresh(t *testing.T) {
	w := newRealWorld(t, realWorldOpts{})
	sys := w.withSystems(backupSystem, udiskstest.BlockPath("sdb"), olderSystem())
	mediumMnt, bsys, bsysMnt, disk := sys.mediumMnt, sys.bsys, sys.bsysMnt, sys.disk
	argvLog, mbr, gpt := sys.argvLog, sys.mbr, sys.gpt

	w.plug(true)
	w.start()
	done := w.waitNoteAfter(0, "Backup updated: you can unplug it", "not updated")
	if done.Summary != "Backup updated: you can unplug it" || !strings.Contains(done.Body, "Its Tails system was updated to "+runningVersion+".") {
		t.Fatalf("done note %q: %q", done.Summary, done.Body)
	}
	w.stop()
	for _, n := range w.notes.Notifications() {
		if n.Icon == "dialog-error" {
			t.Errorf("error notification %q: %q", n.Summary, n.Body)
		}
	}

	runs := w.helper.Runs()
	var got []wire.Op
	for _, r := range runs {
		got = append(got, r.Req.Op)
		if r.Err != nil {
			t.Errorf("helper %s: %v", r.Req.Op, r.Err)
		}
	}
	want := []wire.Op{wire.OpMark, wire.OpUpdate, wire.OpRefreshSystem, wire.OpInstallBootloader}
	if !slices.Equal(got, want) {
		t.Fatalf("helper operations %v, want %v", got, want)
	}
	if rep := runs[2].Report; rep == nil || rep.SystemVersion != runningVersion || !rep.BootloaderChanged || runs[2].Progress == 0 {
		t.Errorf("refresh-system report %+v after %d progress events", rep, runs[2].Progress)
	}
	if rep := runs[3].Report; rep == nil || rep.Bootloader != wire.BootloaderSyslinux {
		t.Errorf("install-bootloader report %+v", rep)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Errorf("the backup's Persistent Storage differs from this Tails':\n%s", diff)
	}

	// The backup's system partition is the running one but for ldlinux.sys, syslinux's own.
	if bsys.mnt != "" {
		t.Fatal("the backup's system partition was left mounted")
	}
	if err := bsys.mount(bsysMnt); err != nil {
		t.Fatal(err)
	}
	wantTree, gotTree := treehash.Of(t, mediumMnt), treehash.Of(t, bsysMnt)
	if gotTree["syslinux/ldlinux.sys"] == "" {
		t.Error("the backup's own ldlinux.sys is gone")
	}
	delete(gotTree, "syslinux/ldlinux.sys")
	for p, h := range wantTree {
		if gotTree[p] != h {
			t.Errorf("%s: backup %q, running %q", p, gotTree[p], h)
		}
	}
	for p := range gotTree {
		if _, ok := wantTree[p]; !ok {
			t.Errorf("%s only on the backup", p)
		}
	}
	argv, err := os.ReadFile(argvLog)
	if err != nil || string(argv) != "-d\nsyslinux\n"+bsys.loop+"\n" {
		t.Errorf("syslinux ran with %q (%v), want -d syslinux %s", argv, err, bsys.loop)
	}
	head, err := os.ReadFile(disk.file)
	if err != nil || !bytes.Equal(head[:440], mbr) || !bytes.Equal(head[440:], gpt[440:]) {
		t.Errorf("the backup's disk does not start with the MBR boot code, or more changed (%v)", err)
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess {
		t.Errorf("last attempt %+v", st.LastAttempt)
	}
	w.checkSleepAllowed(1)
}
