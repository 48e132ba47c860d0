package udisks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
)

// env is a private bus with the fake udisks and a client connected to it.
type env struct {
	svc    *udiskstest.Service
	client *udisks.Client
	world  udiskstest.Standard
	logs   *syncWriter
	conn   *dbus.Conn
}

func newEnv(t *testing.T) *env {
	t.Helper()
	addr := udiskstest.StartBus(t)
	svc := udiskstest.NewService(t, addr)
	world := svc.AddStandard()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	logs := &syncWriter{buf: &bytes.Buffer{}}
	l := logrus.New()
	l.SetOutput(logs)
	l.SetLevel(logrus.DebugLevel)
	c := udisks.New(conn, udisks.Options{Log: logrus.NewEntry(l)})
	return &env{svc: svc, client: c, world: world, logs: logs, conn: conn}
}

type syncWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestSnapshotModelAndQueries(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	s, err := e.client.GetSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := s.Object(e.world.Backup.Disk)
	if disk == nil || disk.Block == nil || disk.Block.Device != "/dev/sdb" || disk.Block.PreferredDevice != "/dev/sdb" {
		t.Fatalf("backup disk block = %+v", disk)
	}
	drive := s.Object(e.world.Backup.Drive).Drive
	if !drive.Removable || drive.ConnectionBus != "usb" || drive.Serial != "BACKUP0002" || !drive.CanPowerOff ||
		drive.Vendor != "Kingston" || drive.Model != "DataTraveler" || drive.Size != 16<<30 {
		t.Errorf("backup drive = %+v", drive)
	}
	bootCT := s.Object(e.world.Boot.Cleartext)
	if got := bootCT.Filesystem.MountPoints; len(got) != 1 || got[0] != "/live/persistence/TailsData_unlocked" {
		t.Errorf("boot cleartext mount points = %q (want no trailing NUL)", got)
	}
	if bootCT.Block.CryptoBackingDevice != e.world.Boot.LUKS {
		t.Errorf("CryptoBackingDevice = %s", bootCT.Block.CryptoBackingDevice)
	}
	luks := s.Object(e.world.Backup.LUKS)
	if luks.Partition.Name != "TailsData" || luks.Partition.Number != 2 || luks.Partition.Table != e.world.Backup.Disk ||
		luks.Block.IdType != "crypto_LUKS" || luks.Encrypted == nil || luks.Encrypted.CleartextDevice != "/" {
		t.Errorf("backup LUKS = %+v %+v", luks.Partition, luks.Block)
	}

	sticks := s.TailsSticks(e.client.BootPaths())
	if len(sticks) != 2 {
		t.Fatalf("TailsSticks = %d sticks, want 2 (boot and backup)", len(sticks))
	}
	byDrive := map[dbus.ObjectPath]udisks.Stick{}
	for _, st := range sticks {
		byDrive[st.Drive.Path] = st
	}
	boot, backup := byDrive[e.world.Boot.Drive], byDrive[e.world.Backup.Drive]
	if !boot.Boot || backup.Boot {
		t.Errorf("Boot flags: boot=%v backup=%v", boot.Boot, backup.Boot)
	}
	if backup.LUKSUUID() != "2f1e3c4d-0000-4000-8000-00000000b0b0" || !backup.IsLUKS() {
		t.Errorf("backup LUKS UUID %q", backup.LUKSUUID())
	}
	if backup.System == nil || backup.System.Path != e.world.Backup.System || backup.Cleartext != nil {
		t.Errorf("backup stick = %+v", backup)
	}
	if boot.Cleartext == nil || boot.Cleartext.Path != e.world.Boot.Cleartext {
		t.Errorf("boot cleartext = %+v", boot.Cleartext)
	}
	if st, ok := s.StickOf(e.world.Boot.Cleartext, e.client.BootPaths()); !ok || !st.Boot {
		t.Errorf("StickOf(boot cleartext) = %+v %v", st, ok)
	}
	if _, ok := s.StickOf(e.world.Other.Data, e.client.BootPaths()); ok {
		t.Error("the unrelated stick is a Tails stick")
	}

	// Boot device by each signal alone.
	for name, bp := range map[string]udisks.BootPaths{
		"persistence mount": {Persistence: "/live/persistence/TailsData_unlocked", System: "/nowhere"},
		"system mount":      {Persistence: "/nowhere", System: "/lib/live/mount/medium/"},
		"HintSystem":        {Persistence: "/nowhere", System: "/nowhere"},
	} {
		if d := s.BootDrive(bp); d == nil || d.Path != e.world.Boot.Drive {
			t.Errorf("BootDrive by %s = %v", name, d)
		}
	}
	if got := s.EndOfPartitions(e.world.Backup.Disk); got != 16<<30-udiskstest.MiB {
		t.Errorf("EndOfPartitions = %d", got)
	}
	if o := s.ByDevice("/dev/sdb2"); o == nil || o.Path != e.world.Backup.LUKS {
		t.Errorf("ByDevice(/dev/sdb2) = %v", o)
	}
}

// next reads the next event or fails after a generous timeout.
func next(t *testing.T, w *udisks.Watcher) udisks.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watcher stopped: %v", w.Err())
		}
		return ev
	case <-time.After(60 * time.Second):
		t.Fatal("no event within 60 s")
	}
	return udisks.Event{}
}

func TestWatchHotplugOrdered(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	w, err := e.client.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n := len(w.Initial().TailsSticks(e.client.BootPaths())); n != 2 {
		t.Fatalf("initial sticks = %d", n)
	}
	p := e.svc.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Samsung", Model: "Bar", Serial: "NEW4",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: "x"})
	// Read until the stick is complete; check the objects appear drive → disk → partitions.
	var order []dbus.ObjectPath
	seen := map[dbus.ObjectPath]bool{}
	for {
		ev := next(t, w)
		if ev.ObjectAdded() && !seen[ev.Path] {
			seen[ev.Path] = true
			order = append(order, ev.Path)
		}
		if st, ok := ev.Snapshot.StickOf(p.Drive, e.client.BootPaths()); ok && st.IsLUKS() && st.System != nil &&
			st.System.Partition.Flags == udisks.SystemPartitionFlags {
			break
		}
	}
	want := []dbus.ObjectPath{p.Drive, p.Disk, p.System, p.LUKS}
	if len(order) != len(want) {
		t.Fatalf("objects added in order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("objects added in order %v, want %v", order, want)
		}
	}
	// A property change is a typed event.
	e.svc.Set(p.LUKS, "org.freedesktop.UDisks2.Block", "IdLabel", "changed")
	for {
		ev := next(t, w)
		if ev.Kind == udisks.PropertiesChanged && ev.Path == p.LUKS && ev.Properties[0] == "IdLabel" {
			if ev.New.Block.IdLabel != "changed" || ev.Old.Block.IdLabel != "" || ev.Properties[0] != "IdLabel" {
				t.Errorf("PropertiesChanged event = %+v", ev)
			}
			break
		}
	}
	// Unplug: every object goes, the drive last.
	e.svc.Unplug(p.Drive)
	for {
		ev := next(t, w)
		if ev.ObjectRemoved() && ev.Path == p.Drive {
			for _, q := range []dbus.ObjectPath{p.Disk, p.System, p.LUKS} {
				if ev.Snapshot.Object(q) != nil {
					t.Errorf("%s still present after the drive went", q)
				}
			}
			break
		}
	}
}

// A watch started while the signals of a stick just plugged in are still on their way reads
// the stick whole, and those signals, sent before the read, must not bring back the states
// they tell of (the partition before its LUKS header was known): the agent refused to pair
// a stick plugged in as it started.
func TestWatchStartSkipsSignalsOlderThanItsRead(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	for i := range 20 {
		p := e.svc.AddStick(udiskstest.StickSpec{Name: fmt.Sprintf("sdr%c", 'a'+i), Vendor: "Samsung", Model: "Bar",
			Serial: fmt.Sprintf("RACE%d", i), Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: "x"})
		w, err := e.client.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		whole := func(snap *udisks.Snapshot) bool {
			st, ok := snap.StickOf(p.Drive, e.client.BootPaths())
			return ok && st.IsLUKS() && st.LUKSUUID() != ""
		}
		if !whole(w.Initial()) {
			t.Fatalf("run %d: the first read has no whole stick", i)
		}
		// Every signal sent before this change reaches the watcher before it.
		e.svc.Set(p.LUKS, "org.freedesktop.UDisks2.Block", "IdLabel", "last")
		for {
			ev := next(t, w)
			if !whole(ev.Snapshot) {
				t.Fatalf("run %d: after %s of %s the stick lost its LUKS partition", i, ev.Kind, ev.Path)
			}
			if ev.Kind == udisks.PropertiesChanged && ev.Path == p.LUKS && ev.New.Block.IdLabel == "last" {
				break
			}
		}
		w.Close()
	}
}

// A stick plugged in and pulled out again while a watch starts: its signals may all be older
// than the watch's full read, which does not hold it. Its addition applies (the read did not
// hold the object), so its removal must apply too, or the watcher would keep a stick that is
// gone (the agent would offer to update it).
func TestWatchStartForgetsStickAddedAndRemovedBeforeItsRead(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	for i := range 20 {
		p := e.svc.AddStick(udiskstest.StickSpec{Name: fmt.Sprintf("sds%c", 'a'+i), Vendor: "Samsung", Model: "Bar",
			Serial: fmt.Sprintf("GONE%d", i), Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: "x"})
		e.svc.Unplug(p.Drive)
		w, err := e.client.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gone := func(snap *udisks.Snapshot) bool {
			return snap.Object(p.Drive) == nil && snap.Object(p.LUKS) == nil
		}
		if !gone(w.Initial()) {
			t.Fatalf("run %d: the first read holds a stick that was pulled out before it", i)
		}
		// Every signal sent before this change reaches the watcher before it.
		marker := fmt.Sprintf("run%d", i)
		e.svc.Set(e.world.Backup.LUKS, "org.freedesktop.UDisks2.Block", "IdLabel", marker)
		for {
			ev := next(t, w)
			if ev.Kind == udisks.PropertiesChanged && ev.Path == e.world.Backup.LUKS && ev.New.Block.IdLabel == marker {
				if !gone(ev.Snapshot) {
					t.Fatalf("run %d: the watcher still holds a stick pulled out before its read", i)
				}
				break
			}
		}
		w.Close()
	}
}

func TestWatchSurvivesDaemonRestart(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	w, err := e.client.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	other := e.world.Other
	e.svc.Restart(func() {
		e.svc.SetOffline(func(objs map[dbus.ObjectPath]map[string]map[string]any) {
			for _, p := range []dbus.ObjectPath{other.Drive, other.Disk, other.Data} {
				delete(objs, p)
			}
			objs[e.world.Backup.LUKS]["org.freedesktop.UDisks2.Block"]["IdLabel"] = "relabelled"
		})
	})
	var kinds []udisks.EventKind
	removed := map[dbus.ObjectPath]bool{}
	relabelled := false
	for {
		ev := next(t, w)
		kinds = append(kinds, ev.Kind)
		if ev.ObjectRemoved() {
			removed[ev.Path] = true
		}
		if ev.Kind == udisks.PropertiesChanged && ev.Path == e.world.Backup.LUKS && ev.New.Block.IdLabel == "relabelled" {
			relabelled = true
		}
		if ev.Kind == udisks.Resync {
			if ev.Snapshot.Object(other.Drive) != nil {
				t.Error("resync snapshot still has the removed drive")
			}
			break
		}
	}
	if kinds[0] != udisks.DaemonVanished {
		t.Errorf("first event = %v, want DaemonVanished", kinds[0])
	}
	if !removed[other.Drive] || !removed[other.Disk] || !removed[other.Data] || !relabelled {
		t.Errorf("resync difference: removed=%v relabelled=%v", removed, relabelled)
	}
	// The watcher follows the new daemon.
	e.svc.Set(e.world.Backup.LUKS, "org.freedesktop.UDisks2.Block", "IdLabel", "after restart")
	for {
		ev := next(t, w)
		if ev.Kind == udisks.PropertiesChanged && ev.New.Block.IdLabel == "after restart" {
			break
		}
	}
}

func TestWatchStopsCleanly(t *testing.T) {
	e := newEnv(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	ws := make([]*udisks.Watcher, 0, 5)
	for range 5 {
		w, err := e.client.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	e.svc.Set(e.world.Backup.LUKS, "org.freedesktop.UDisks2.Block", "IdLabel", "unread") // never read
	cancel()
	for _, w := range ws {
		select {
		case <-w.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("watcher did not stop within 30 s of cancellation")
		}
		if _, ok := <-w.Events(); ok {
			t.Error("Events not closed")
		}
		if !errors.Is(w.Err(), context.Canceled) {
			t.Errorf("Err = %v", w.Err())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond) // only to let exiting goroutines finish
	}
	// Closing the connection stops a watcher with ErrUnavailable.
	w, err := e.client.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.conn.Close()
	select {
	case <-w.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("watcher did not stop when the connection closed")
	}
	if !errors.Is(w.Err(), udisks.ErrUnavailable) {
		t.Errorf("Err after close = %v", w.Err())
	}
}

func TestUnlockMountUnmountLockPowerOff(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	b := e.world.Backup
	ct, err := e.client.Unlock(ctx, b.LUKS, udiskstest.BackupPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	// Unlock returned only once the cleartext has its Filesystem (the fake adds it
	// FilesystemDelay after replying).
	if !e.svc.Has(ct, "org.freedesktop.UDisks2.Filesystem") {
		t.Fatal("Unlock returned before the cleartext filesystem appeared")
	}
	s, err := e.client.GetSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cleartext(b.LUKS); got == nil || got.Path != ct {
		t.Fatalf("Cleartext(%s) = %v, want %s", b.LUKS, got, ct)
	}
	dir, err := e.client.Mount(ctx, ct)
	if err != nil || dir != "/media/root/TailsData" {
		t.Fatalf("Mount = %q, %v", dir, err)
	}
	if _, err := e.client.Mount(ctx, ct); !errors.Is(err, udisks.ErrAlreadyMounted) {
		t.Errorf("second Mount: %v", err)
	}
	if d, reused, err := e.client.MountOrReuse(ctx, ct); err != nil || !reused || d != dir {
		t.Errorf("MountOrReuse = %q %v %v", d, reused, err)
	}
	if err := e.client.PowerOff(ctx, b.Drive); !errors.Is(err, udisks.ErrBusy) {
		t.Errorf("PowerOff while mounted: %v", err)
	}
	if err := e.client.Unmount(ctx, ct); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Unmount(ctx, ct); !errors.Is(err, udisks.ErrNotMounted) {
		t.Errorf("second Unmount: %v", err)
	}
	if err := e.client.Lock(ctx, b.LUKS); err != nil {
		t.Fatal(err)
	}
	if e.svc.Exists(ct) {
		t.Error("cleartext still exists after Lock")
	}
	if err := e.client.PowerOff(ctx, b.Drive); err != nil {
		t.Fatal(err)
	}
	if e.svc.Exists(b.Drive) {
		t.Error("drive still there after PowerOff")
	}
	// Every call asked udisks not to interact with the user; Mount used nosuid,nodev.
	for _, c := range e.svc.Calls() {
		if v, ok := c.Options["auth.no_user_interaction"]; !ok || v.Value() != true {
			t.Errorf("%s on %s without auth.no_user_interaction: %v", c.Method, c.Path, c.Options)
		}
		if c.Method == "Mount" && c.Options["options"].Value() != "nosuid,nodev" {
			t.Errorf("Mount options = %v", c.Options)
		}
	}
	if strings.Contains(e.logs.String(), udiskstest.BackupPassphrase) {
		t.Error("the passphrase reached the log")
	}
}

func TestUnlockWrongPassphraseVariants(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	const secret = "not the passphrase 4711"
	for _, text := range []string{
		"Error unlocking %s: Failed to activate device: Incorrect passphrase.",
		"Error unlocking %s: Failed to activate device: Operation not permitted",
		"Error unlocking %s: Command-line `cryptsetup luksOpen \"%[1]s\" \"luks-x\" ' exited with non-zero exit status 2: No key available with this passphrase.\n",
		"Failed to activate device: Incorrect passphrase.",
		"No key available with this passphrase",
	} {
		e.svc.SetWrongPassphraseText(text)
		_, err := e.client.Unlock(ctx, e.world.Backup.LUKS, secret)
		if !errors.Is(err, udisks.ErrWrongPassphrase) {
			t.Errorf("text %q: err = %v, want ErrWrongPassphrase", text, err)
			continue
		}
		var de *dbus.Error
		if !errors.As(err, &de) || de.Name != "org.freedesktop.UDisks2.Error.Failed" {
			t.Errorf("text %q: no *dbus.Error in %v", text, err)
		}
		var ue *udisks.Error
		if !errors.As(err, &ue) || ue.Op != "unlock" || ue.Path != e.world.Backup.LUKS {
			t.Errorf("text %q: *udisks.Error = %+v", text, ue)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the passphrase is in the error: %v", err)
		}
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Error("the passphrase reached the log")
	}
	// "Operation not permitted" is not a wrong passphrase outside Unlock.
	e.svc.FailNext("Mount", udiskstest.Failed("Error mounting /dev/sdc1 at /media/x: Operation not permitted"))
	if _, err := e.client.Mount(ctx, e.world.Other.Data); err == nil || errors.Is(err, udisks.ErrWrongPassphrase) {
		t.Errorf("Mount EPERM: %v", err)
	}
}

func TestActionErrorsAreTyped(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	data := e.world.Other.Data
	cases := []struct {
		reply *dbus.Error
		want  error
	}{
		{udiskstest.NewError(udiskstest.ErrNotAuthorized, "Not authorized to perform operation"), udisks.ErrNotAuthorized},
		{udiskstest.NewError(udiskstest.ErrNotAuthCanObt, "Not authorized to perform operation"), udisks.ErrNotAuthorized},
		{udiskstest.NewError("org.freedesktop.UDisks2.Error.NotAuthorizedDismissed", "The authentication dialog was dismissed"), udisks.ErrNotAuthorized},
		{udiskstest.Failed("Error checking authorization: GDBus.Error:org.freedesktop.PolicyKit1.Error.Failed: x"), udisks.ErrNotAuthorized},
		{udiskstest.NewError(udiskstest.ErrDeviceBusy, "Error unmounting /dev/sdc1: target is busy"), udisks.ErrBusy},
		{udiskstest.Failed("Error unmounting /dev/sdc1: target is busy"), udisks.ErrBusy},
		{udiskstest.NewError(udiskstest.ErrUnknownObject, "No such object path"), udisks.ErrDeviceGone},
		{udiskstest.NewError("org.freedesktop.DBus.Error.UnknownMethod", "No such interface"), udisks.ErrDeviceGone},
	}
	for _, c := range cases {
		e.svc.FailNext("Mount", c.reply)
		_, err := e.client.Mount(ctx, data)
		if !errors.Is(err, c.want) {
			t.Errorf("%s %q: err = %v, want %v", c.reply.Name, c.reply.Body[0], err, c.want)
		}
		var de *dbus.Error
		if !errors.As(err, &de) || de.Name != c.reply.Name {
			t.Errorf("%s: original D-Bus error lost: %v", c.reply.Name, err)
		}
	}
	// An object that is already gone.
	e.svc.Unplug(e.world.Other.Drive)
	if _, err := e.client.Mount(ctx, data); !errors.Is(err, udisks.ErrDeviceGone) {
		t.Errorf("Mount on an unplugged stick: %v", err)
	}
	if err := e.client.Lock(ctx, "/org/freedesktop/UDisks2/block_devices/nothing"); !errors.Is(err, udisks.ErrDeviceGone) {
		t.Errorf("Lock on a missing object: %v", err)
	}
}

func TestAlreadyUnlockedIsReused(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	boot := e.world.Boot
	_, err := e.client.Unlock(ctx, boot.LUKS, udiskstest.BootPassphrase)
	if !errors.Is(err, udisks.ErrAlreadyUnlocked) {
		t.Fatalf("Unlock of an unlocked device: %v", err)
	}
	ct, reused, err := e.client.UnlockOrReuse(ctx, boot.LUKS, udiskstest.BootPassphrase)
	if err != nil || !reused || ct != boot.Cleartext {
		t.Fatalf("UnlockOrReuse = %s %v %v, want %s", ct, reused, err, boot.Cleartext)
	}
	ct, reused, err = e.client.UnlockOrReuse(ctx, e.world.Backup.LUKS, udiskstest.BackupPassphrase)
	if err != nil || reused || ct == "" {
		t.Fatalf("UnlockOrReuse of a locked device = %s %v %v", ct, reused, err)
	}
}

func TestDeviceRemovedDuringCall(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	b := e.world.Backup
	release := make(chan struct{})
	defer close(release)
	remove := e.svc.OnCall("Unlock", func(udiskstest.Call) *dbus.Error {
		e.svc.Unplug(b.Drive) // the stick is pulled out while udisks works
		<-release             // and udisks never answers this call
		return udiskstest.NewError(udiskstest.ErrUnknownObject, "gone")
	})
	defer remove()
	start := time.Now()
	_, err := e.client.Unlock(ctx, b.LUKS, udiskstest.BackupPassphrase)
	if !errors.Is(err, udisks.ErrDeviceGone) {
		t.Fatalf("Unlock during removal: %v", err)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("took %v: the client waited for the call instead of watching", d)
	}
}

func TestUnlockWaitsWithinDeadline(t *testing.T) {
	e := newEnv(t)
	e.svc.SetFilesystemDelay(time.Hour) // the cleartext never gets a filesystem
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := e.client.Unlock(ctx, e.world.Backup.LUKS, udiskstest.BackupPassphrase)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Unlock without a filesystem: %v, want the deadline", err)
	}
}

// TestFormatAgainAfterUdisksWaitRanOut: udisks 2.9 on a loaded machine gives up its fixed wait
// for udev after the wipe of a whole disk, before it writes the partition table; Format calls it
// again (at most formatRetries times), but never for another failure or a file system.
func TestFormatAgainAfterUdisksWaitRanOut(t *testing.T) {
	const ranOut = "Error synchronizing after initial wipe: Timed out waiting for object"
	cases := []struct {
		name      string
		typ       string
		failures  []*dbus.Error
		wantCalls int
		wantErr   bool
	}{
		{"once", "gpt", []*dbus.Error{udiskstest.Failed(ranOut)}, 2, false},
		{"twice", "gpt", []*dbus.Error{udiskstest.Failed(ranOut), udiskstest.Failed(ranOut)}, 3, false},
		{"three times", "gpt", []*dbus.Error{udiskstest.Failed(ranOut), udiskstest.Failed(ranOut), udiskstest.Failed(ranOut)}, 3, true},
		{"another failure", "gpt", []*dbus.Error{udiskstest.Failed("Error wiping device: Device or resource busy")}, 1, true},
		{"a file system", "ext4", []*dbus.Error{udiskstest.Failed(ranOut)}, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := testCtx(t)
			disk := e.world.Other.Disk
			var n int
			e.svc.OnCall("Format", func(udiskstest.Call) *dbus.Error {
				defer func() { n++ }()
				if n < len(c.failures) {
					return c.failures[n]
				}
				return nil
			})
			err := e.client.Format(ctx, disk, c.typ, udisks.FormatOptions{})
			if (err != nil) != c.wantErr {
				t.Fatalf("Format: %v, want error %v", err, c.wantErr)
			}
			if got := len(e.svc.CallsOf("Format")); got != c.wantCalls {
				t.Errorf("%d calls of Format, want %d", got, c.wantCalls)
			}
			if c.wantErr {
				return
			}
			s, err := e.client.GetSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pt := s.Object(disk).PartitionTable; pt == nil || pt.Type != c.typ {
				t.Errorf("after Format: partition table %+v", pt)
			}
		})
	}
}

func TestCreateTailsStick(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	disk := e.world.Other.Disk
	if err := e.client.Format(ctx, disk, "gpt", udisks.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := e.client.GetSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Partitions(disk)) != 0 || s.Object(disk).PartitionTable.Type != "gpt" {
		t.Fatalf("after Format gpt: %+v, %d partitions", s.Object(disk).PartitionTable, len(s.Partitions(disk)))
	}
	sys, err := e.client.CreateSystemPartition(ctx, disk, 2*udiskstest.MiB, 4<<30)
	if err != nil {
		t.Fatal(err)
	}
	const pass = "new stick passphrase"
	data, err := e.client.CreatePersistentPartition(ctx, disk, 0, 0, pass)
	if err != nil {
		t.Fatal(err)
	}
	s, err = e.client.GetSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := s.StickOf(data, e.client.BootPaths())
	if !ok || st.Boot || st.System == nil || st.System.Path != sys || st.LUKS.Path != data || !st.IsLUKS() || st.Cleartext == nil {
		t.Fatalf("new stick = %+v, %v", st, ok)
	}
	p := st.System.Partition
	if p.Name != "Tails" || p.Type != udisks.ESPType || p.Flags != udisks.SystemPartitionFlags ||
		st.System.Block.IdType != "vfat" || st.System.Block.IdLabel != "Tails" {
		t.Errorf("system partition = %+v %+v", p, st.System.Block)
	}
	if st.LUKS.Partition.Offset != p.Offset+p.Size {
		t.Errorf("TailsData at %d, want right after the system partition (%d)", st.LUKS.Partition.Offset, p.Offset+p.Size)
	}
	if st.Cleartext.Block.IdLabel != "TailsData" || st.Cleartext.Block.IdType != "ext4" {
		t.Errorf("cleartext = %+v", st.Cleartext.Block)
	}
	calls := e.svc.CallsOf("CreatePartitionAndFormat")
	if len(calls) != 2 {
		t.Fatalf("%d CreatePartitionAndFormat calls, want 2", len(calls))
	}
	a := calls[1].Args
	fo := a[5].(map[string]dbus.Variant)
	if a[0].(uint64) == 0 || a[2] != udisks.TailsDataType || a[3] != "TailsData" || a[4] != "ext4" ||
		fo["encrypt.type"].Value() != "luks2" || fo["label"].Value() != "TailsData" || fo["encrypt.passphrase"].Value() != pass {
		t.Errorf("TailsData call = %v", a)
	}
	if f := e.svc.CallsOf("SetFlags"); len(f) != 1 || f[0].Args[0] != udisks.SystemPartitionFlags {
		t.Errorf("SetFlags calls = %+v", f)
	}
	if strings.Contains(e.logs.String(), pass) {
		t.Error("the passphrase reached the log")
	}
	// CreatePartition (without format) also works and waits for the object.
	if err := e.client.Format(ctx, disk, "gpt", udisks.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	part, err := e.client.CreatePartition(ctx, disk, udisks.PartitionSpec{Offset: 2 * udiskstest.MiB, Size: 8 * udiskstest.MiB, Type: udisks.ESPType, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !e.svc.Has(part, "org.freedesktop.UDisks2.Partition") {
		t.Error("CreatePartition returned a path without a partition")
	}
}
