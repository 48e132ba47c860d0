package udev

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tails-backup/internal/testtool"
)

// udevdTimeout bounds each wait for a real udevd event; udevd runs rules and blkid
// first, and the machine may be busy with other tests.
const udevdTimeout = 30 * time.Second

// requireProgram returns the path of a program the test needs. Without it the test
// is skipped, except in CI (CI=true), where `make test` must have installed it.
func requireProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	testtool.Missing(t, "%s is missing (Debian package %s): %v", name, pkg, err)
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// ensureUdevd starts udevd unless one answers on /run/udev/control, and stops it when
// the test ends only if this test started it.
func ensureUdevd(t *testing.T, udevadm, udevd string) {
	t.Helper()
	ping := func() error { return exec.Command(udevadm, "control", "--ping", "--timeout=5").Run() }
	if ping() == nil {
		t.Log("udevd already running; leaving it running")
		return
	}
	if out, err := exec.Command(udevd, "--daemon").CombinedOutput(); err != nil {
		t.Skipf("udevd cannot start: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(udevadm, "control", "--exit", "--timeout=10").CombinedOutput(); err != nil {
			t.Errorf("stopping the udevd this test started: %v\n%s", err, out)
		}
	})
	deadline := time.Now().Add(udevdTimeout)
	for ping() != nil {
		if time.Now().After(deadline) {
			t.Skipf("udevd started but does not answer on its control socket")
		}
		time.Sleep(100 * time.Millisecond) // nothing to wait on but the socket itself
	}
	t.Log("started udevd for this test")
}

// watch runs a Monitor in the background and returns its events; the test's end
// cancels it, waits for Run to return and closes the Monitor.
func watch(t *testing.T, cfg Config) (<-chan Event, *Monitor) {
	t.Helper()
	mon, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 64)
	done := make(chan error, 1)
	go func() {
		defer close(events)
		done <- mon.Run(ctx, events)
	}()
	t.Cleanup(func() {
		cancel()
		for range events {
		}
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run ended with %v", err)
		}
		mon.Close()
	})
	return events, mon
}

// waitFor returns the first event for which ok holds, or fails after udevdTimeout.
func waitFor(t *testing.T, events <-chan Event, what string, ok func(Event) bool) Event {
	t.Helper()
	timeout := time.After(udevdTimeout)
	var seen []string
	for {
		select {
		case ev, open := <-events:
			if !open {
				t.Fatalf("monitor stopped while waiting for %s", what)
			}
			if ok(ev) {
				return ev
			}
			seen = append(seen, string(ev.Action)+" "+ev.DevName+" fs="+ev.FSType())
		case <-timeout:
			t.Fatalf("no %s within %v; saw %q", what, udevdTimeout, seen)
		}
	}
}

// TestRealUdevd attaches an ext4 image to a loop device and detaches it, and checks what
// the real udevd and kernel broadcast. Loop devices persist: attaching sends "change"
// (or "add" then "change" when losetup creates a new loop device) and udevd adds the
// blkid properties; detaching sends "change" too, after which the properties are gone.
func TestRealUdevd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach loop devices and start udevd")
	}
	udevadm := requireProgram(t, "udevadm", "udev")
	udevd := requireProgram(t, "/lib/systemd/systemd-udevd", "udev")
	losetup := requireProgram(t, "losetup", "mount")
	mkfs := requireProgram(t, "mkfs.ext4", "e2fsprogs")
	ensureUdevd(t, udevadm, udevd)

	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	run(t, mkfs, "-q", "-F", "-L", "TBUDEVTEST", img)

	// Both monitors are open before the device appears, so no event can be missed.
	udevEvents, udevMon := watch(t, Config{Matches: []Match{{Subsystem: "block", DevType: "disk"}}})
	kernelEvents, kernelMon := watch(t, Config{Groups: GroupKernel, Matches: []Match{{Subsystem: "block"}}})

	dev := run(t, losetup, "--find", "--show", img)
	attached := true
	t.Cleanup(func() {
		if attached {
			exec.Command(losetup, "-d", dev).Run()
		}
	})
	t.Logf("attached %s", dev)

	ev := waitFor(t, udevEvents, "udev event with ID_FS_TYPE=ext4 for "+dev, func(ev Event) bool {
		return ev.DevName == dev && ev.FSType() == "ext4"
	})
	if ev.Action != ActionChange && ev.Action != ActionAdd {
		t.Errorf("attach event action %s, want change or add", ev.Action)
	}
	if ev.FSLabel() != "TBUDEVTEST" || ev.FSUUID() == "" || ev.Subsystem != "block" || ev.DevType != "disk" ||
		!strings.HasPrefix(ev.DevPath, "/devices/virtual/block/loop") || ev.SeqNum == 0 || len(ev.Symlinks()) == 0 {
		t.Errorf("attach event %+v", ev)
	}
	if major, _, ok := ev.DevNum(); !ok || major != 7 {
		t.Errorf("attach event device number %d, %v", major, ok)
	}

	kev := waitFor(t, kernelEvents, "kernel event for "+dev, func(ev Event) bool { return ev.DevName == dev })
	if kev.Property("DEVNAME") != strings.TrimPrefix(dev, "/dev/") || kev.FSType() != "" || kev.DevPath != ev.DevPath {
		t.Errorf("kernel event %+v (the kernel sends a relative DEVNAME and no udev properties)", kev)
	}

	run(t, losetup, "-d", dev)
	attached = false
	ev = waitFor(t, udevEvents, "udev event without ID_FS_TYPE for "+dev, func(ev Event) bool {
		return ev.DevName == dev && ev.FSType() == ""
	})
	if ev.Action != ActionChange {
		t.Errorf("detach event action %s, want change (loop devices persist)", ev.Action)
	}

	if udevMon.Dropped() != 0 || kernelMon.Dropped() != 0 {
		t.Errorf("real packets dropped: udev %d, kernel %d", udevMon.Dropped(), kernelMon.Dropped())
	}
}
