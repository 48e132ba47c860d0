package udisks_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
)

const (
	udisksdPath = "/usr/libexec/udisks2/udisksd"
	udevdPath   = "/lib/systemd/systemd-udevd"
	udevControl = "/run/udev/control"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// udevRunning reports whether a udevd answers on its control socket.
func udevRunning() bool {
	c, err := net.Dial("unixpacket", udevControl)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ensureUdevd starts systemd-udevd unless one runs, and stops it at the end only
// if this test started it. udisksd learns about block devices from udev.
func ensureUdevd(t *testing.T) {
	t.Helper()
	if udevRunning() {
		return
	}
	if _, err := os.Stat(udevdPath); err != nil {
		udiskstest.SkipOrFail(t, true, "%s missing (Debian package udev): %v", udevdPath, err)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(udevdPath)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		udiskstest.SkipOrFail(t, false, "cannot start udevd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !udevRunning() {
		select {
		case err := <-exited:
			exited <- err
			udiskstest.SkipOrFail(t, false, "udevd exited at start (%v): %s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			udiskstest.SkipOrFail(t, false, "udevd did not open %s within 30 s: %s", udevControl, out.String())
		}
		time.Sleep(50 * time.Millisecond) // waiting for another process's socket
	}
	t.Logf("started systemd-udevd (pid %d); it is stopped at the end", cmd.Process.Pid)
}

// startUdisksd runs the real udisksd on the private bus at addr and waits until it
// owns org.freedesktop.UDisks2.
func startUdisksd(t *testing.T, addr string, conn *dbus.Conn) {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(udisksdPath)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	cmd.Stdout, cmd.Stderr = out, out
	owner := make(chan *dbus.Signal, 16)
	conn.Signal(owner)
	defer conn.RemoveSignal(owner)
	match := []dbus.MatchOption{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, udisks.BusName)}
	if err := conn.AddMatchSignal(match...); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.RemoveMatchSignal(match...) }()
	if err := cmd.Start(); err != nil {
		udiskstest.SkipOrFail(t, false, "cannot start udisksd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		t.Logf("udisksd output:\n%s", out.String())
	})
	timeout := time.After(90 * time.Second)
	for {
		select {
		case s := <-owner:
			if len(s.Body) == 3 && s.Body[0] == udisks.BusName && s.Body[2] != "" {
				return
			}
		case err := <-exited:
			exited <- err
			udiskstest.SkipOrFail(t, false, "udisksd exited at start (%v): %s", err, out.String())
		case <-timeout:
			udiskstest.SkipOrFail(t, false, "udisksd did not take its bus name within 90 s: %s", out.String())
		}
	}
}

// TestRealUdisksLoopMount drives the real udisksd (on a private system-type bus, as
// root, without polkitd: udisks then authorizes uid 0 only) through a loop device
// holding an ext4 image: LoopSetup with a Unix fd, snapshot and watch, Mount,
// Unmount and Loop.Delete.
func TestRealUdisksLoopMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: udisksd and loop devices")
	}
	if _, err := os.Stat(udisksdPath); err != nil {
		udiskstest.SkipOrFail(t, true, "%s missing (Debian package udisks2): %v", udisksdPath, err)
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		udiskstest.SkipOrFail(t, true, "mkfs.ext4 missing (Debian package e2fsprogs): %v", err)
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		udiskstest.SkipOrFail(t, false, "no loop devices on this kernel: %v", err)
	}
	ensureUdevd(t)
	addr := udiskstest.StartBus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	startUdisksd(t, addr, conn)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logs := &lockedBuffer{}
	l := logrus.New()
	l.SetOutput(logs)
	l.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() { t.Logf("client log:\n%s", logs.String()) })
	c := udisks.New(conn, udisks.Options{Log: logrus.NewEntry(l)})

	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", "-L", "UDTEST", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}

	w, err := c.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Initial().Object(udisks.ManagerPath) == nil {
		t.Fatal("the snapshot has no Manager object")
	}

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	loop, err := c.LoopSetup(ctx, f, udisks.LoopOptions{})
	f.Close()
	if err != nil {
		t.Fatalf("LoopSetup: %v", err)
	}
	deleted := false
	t.Cleanup(func() {
		if deleted {
			return
		}
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if s, err := c.GetSnapshot(cctx); err == nil {
			if o := s.Object(loop); o != nil && o.Filesystem != nil && len(o.Filesystem.MountPoints) > 0 {
				_ = c.Unmount(cctx, loop)
			}
		}
		if err := c.LoopDelete(cctx, loop); err != nil {
			t.Errorf("cleanup: delete %s: %v", loop, err)
		}
	})

	// The watch sees the loop device appear and udev's probe give it a filesystem.
	var dev string
	until(t, w, "the loop device with its ext4 filesystem", func(s *udisks.Snapshot) bool {
		o := s.Object(loop)
		if o == nil || o.Block == nil || o.Loop == nil || o.Filesystem == nil {
			return false
		}
		dev = o.Block.Device
		return o.Block.IdType == "ext4" && o.Block.IdLabel == "UDTEST" && o.Block.IdUsage == "filesystem" &&
			o.Loop.BackingFile == img && strings.HasPrefix(dev, "/dev/loop")
	})
	snap, err := c.GetSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := snap.Object(loop); o == nil || o.Device() != dev || snap.DriveOf(loop) != nil {
		t.Errorf("snapshot: %+v", o)
	}

	dir, err := c.Mount(ctx, loop)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Logf("%s (%s) mounted at %s", loop, dev, dir)
	opts := mountOptions(t, dir)
	if !strings.Contains(","+opts+",", ",nosuid,") || !strings.Contains(","+opts+",", ",nodev,") {
		t.Errorf("mount options of %s = %q, want nosuid and nodev", dir, opts)
	}
	until(t, w, "MountPoints to list "+dir, func(s *udisks.Snapshot) bool {
		o := s.Object(loop)
		return o != nil && o.Filesystem != nil && len(o.Filesystem.MountPoints) == 1 && o.Filesystem.MountPoints[0] == dir
	})
	if _, err := c.Mount(ctx, loop); !errors.Is(err, udisks.ErrAlreadyMounted) {
		t.Errorf("second Mount: %v, want ErrAlreadyMounted", err)
	}
	if err := c.Unmount(ctx, loop); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if err := c.Unmount(ctx, loop); !errors.Is(err, udisks.ErrNotMounted) {
		t.Errorf("second Unmount: %v, want ErrNotMounted", err)
	}
	until(t, w, "MountPoints to be empty", func(s *udisks.Snapshot) bool {
		o := s.Object(loop)
		return o != nil && o.Filesystem != nil && len(o.Filesystem.MountPoints) == 0
	})

	// Read-only, as restore and verify mount a backup: udisks accepts ro, and the file
	// system, mounted and unmounted, is byte for byte what it was (a read-write mount writes
	// the superblock's mount count and times).
	before := fileSum(t, img)
	dir, reused, err := c.MountReadOnlyOrReuse(ctx, loop)
	if err != nil || reused {
		t.Fatalf("MountReadOnlyOrReuse: %v (reused %v)", err, reused)
	}
	if opts := mountOptions(t, dir); !strings.HasPrefix(opts+",", "ro,") || !strings.Contains(","+opts+",", ",nosuid,") {
		t.Errorf("mount options of %s = %q, want ro and nosuid", dir, opts)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Errorf("a write into the read-only mount: %v, want EROFS", err)
	}
	until(t, w, "MountPoints to list "+dir, func(s *udisks.Snapshot) bool {
		o := s.Object(loop)
		return o != nil && o.Filesystem != nil && len(o.Filesystem.MountPoints) == 1
	})
	if err := c.Unmount(ctx, loop); err != nil {
		t.Fatalf("Unmount of the read-only mount: %v", err)
	}
	if after := fileSum(t, img); after != before {
		t.Errorf("the file system changed while mounted read-only: sha256 %x, was %x", after, before)
	}
	until(t, w, "MountPoints to be empty", func(s *udisks.Snapshot) bool {
		o := s.Object(loop)
		return o != nil && o.Filesystem != nil && len(o.Filesystem.MountPoints) == 0
	})
	if err := c.LoopDelete(ctx, loop); err != nil {
		t.Fatalf("LoopDelete: %v", err)
	}
	deleted = true
	// The kernel keeps /dev/loopN after detaching, so udisks keeps the object, with
	// size 0 and no backing file.
	until(t, w, "the Loop interface to go", func(s *udisks.Snapshot) bool {
		o := s.Object(loop)
		return o == nil || o.Block.Size == 0 && (o.Loop == nil || o.Loop.BackingFile == "")
	})
	if _, err := c.Mount(ctx, loop); !errors.Is(err, udisks.ErrDeviceGone) {
		t.Errorf("Mount after delete: %v, want ErrDeviceGone", err)
	}
}

// until reads w's events until cond holds on the latest snapshot.
func until(t *testing.T, w *udisks.Watcher, what string, cond func(*udisks.Snapshot) bool) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	var last udisks.Event
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watcher stopped while waiting for %s: %v", what, w.Err())
			}
			last = ev
			if cond(ev.Snapshot) {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s; last event %v %s %v", what, last.Kind, last.Path, last.Interfaces)
		}
	}
}

// fileSum is the sha256 of the file at p.
func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// mountOptions returns the per-mount options of dir from /proc/self/mountinfo.
func mountOptions(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == dir {
			return f[5]
		}
	}
	t.Fatalf("%s is not in /proc/self/mountinfo", dir)
	return ""
}
