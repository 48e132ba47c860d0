package udev

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestEnumerateFake walks testdata/sysfs (two USB Tails sticks and a loop device, as
// symlinks from class/block into devices/ like the kernel lays them out) merged with
// testdata/udev-data (files in udevd's database format).
func TestEnumerateFake(t *testing.T) {
	e := Enumerator{SysfsRoot: "testdata/sysfs", UdevDataDir: "testdata/udev-data"}
	devs, err := e.BlockDevices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]Device{}
	for _, d := range devs {
		names = append(names, d.DevName)
		byName[d.DevName] = d
	}
	// Sorted by DevPath; "vanished" (a dangling link) is left out.
	want := []string{"/dev/sda", "/dev/sda1", "/dev/sda2", "/dev/sdb", "/dev/sdb1", "/dev/sdb2", "/dev/loop0"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("devices %q, want %q", names, want)
	}

	sdb2 := byName["/dev/sdb2"]
	if sdb2.DevPath != "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb2" {
		t.Errorf("DevPath %s", sdb2.DevPath)
	}
	if sdb2.Subsystem != "block" || sdb2.DevType != "partition" || sdb2.PartEntryName() != "TailsData" ||
		sdb2.FSType() != "crypto_LUKS" || sdb2.FSUUID() != "6b4f3a2e-1c0d-4e5f-9a8b-7c6d5e4f3a2b" || sdb2.Bus() != "usb" ||
		sdb2.Property("PARTN") != "2" || sdb2.Property("UDISKS_AUTO") != "0" || sdb2.UDisksSystem() {
		t.Errorf("sdb2 = %+v", sdb2)
	}
	if major, minor, ok := sdb2.DevNum(); !ok || major != 8 || minor != 18 {
		t.Errorf("sdb2 DevNum %d:%d %v", major, minor, ok)
	}
	if got := sdb2.Symlinks(); !reflect.DeepEqual(got, []string{"/dev/disk/by-partlabel/TailsData", "/dev/disk/by-uuid/6b4f3a2e-1c0d-4e5f-9a8b-7c6d5e4f3a2b"}) {
		t.Errorf("sdb2 symlinks %q", got)
	}
	// Bad database lines are skipped, as systemd skips them.
	for k := range sdb2.Properties {
		if strings.Contains(k, "BROKEN") || strings.Contains(k, " ") {
			t.Errorf("bad db line became property %q", k)
		}
	}
	if sdb := byName["/dev/sdb"]; sdb.Property("TAGS") != ":systemd:uaccess:" || sdb.Property("CURRENT_TAGS") != ":systemd:" ||
		!reflect.DeepEqual(sdb.Tags(), []string{"systemd", "uaccess"}) {
		t.Errorf("sdb tags %q current %q", sdb.Property("TAGS"), sdb.Property("CURRENT_TAGS"))
	}
	// The boot stick is marked as Tails' udev rules mark it.
	if sda, sda2 := byName["/dev/sda"], byName["/dev/sda2"]; !sda.UDisksSystem() || sda.UDisksIgnore() || !sda2.UDisksIgnore() {
		t.Errorf("boot stick marks: sda system=%v ignore=%v, sda2 ignore=%v", sda.UDisksSystem(), sda.UDisksIgnore(), sda2.UDisksIgnore())
	}
	// No database entry: only the kernel's properties, DEVNAME made absolute as udevd sends it.
	loop0 := byName["/dev/loop0"]
	wantLoop := map[string]string{"MAJOR": "7", "MINOR": "0", "DEVNAME": "/dev/loop0", "DEVTYPE": "disk", "DISKSEQ": "15",
		"DEVPATH": "/devices/virtual/block/loop0", "SUBSYSTEM": "block"}
	if !reflect.DeepEqual(loop0.Properties, wantLoop) {
		t.Errorf("loop0 properties %q, want %q", loop0.Properties, wantLoop)
	}
}

func TestEnumerateErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := (Enumerator{SysfsRoot: t.TempDir()}).BlockDevices(ctx); err == nil {
		t.Error("no error for a sysfs without class/block")
	}

	// A class/block link leading out of sysfs is refused, not followed.
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "class", "block"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "uevent"), []byte("MAJOR=1\nMINOR=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "class", "block", "evil")); err != nil {
		t.Fatal(err)
	}
	if _, err := (Enumerator{SysfsRoot: root}).BlockDevices(ctx); err == nil {
		t.Error("followed a link out of sysfs")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (Enumerator{SysfsRoot: "testdata/sysfs"}).BlockDevices(cancelled); err != context.Canceled {
		t.Errorf("cancelled enumeration = %v, want context.Canceled", err)
	}
}

// TestEnumerateRealSys reads the machine's /sys and /run/udev/data: the loop devices
// (the test machines have them) must appear, and when udevd has a database entry for
// loop devices its data must be merged. Other tests attach and detach loop devices
// meanwhile, so only facts that survive that churn are checked.
func TestEnumerateRealSys(t *testing.T) {
	if _, err := os.Stat("/sys/class/block"); err != nil {
		t.Skipf("no sysfs: %v", err)
	}
	devs, err := Enumerator{}.BlockDevices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	loops, merged := 0, 0
	for _, d := range devs {
		if d.Subsystem != "block" || !strings.HasPrefix(d.DevPath, "/devices/") || !strings.HasPrefix(d.DevName, "/dev/") {
			t.Errorf("odd device %+v", d)
		}
		major, _, ok := d.DevNum()
		if !ok {
			t.Errorf("%s has no device number", d.DevName)
		}
		if major == 7 {
			loops++
			if d.Property("TAGS") != "" || d.Property("DEVLINKS") != "" || d.Property("USEC_INITIALIZED") != "" {
				merged++
			}
		}
	}
	if loops == 0 {
		t.Fatalf("no loop device among %d block devices", len(devs))
	}
	dbs, _ := filepath.Glob("/run/udev/data/b7:*")
	if len(dbs) > 0 && merged == 0 {
		t.Errorf("udevd has %d loop database entries but no loop device got udev data merged", len(dbs))
	}
	t.Logf("%d block devices, %d loop devices, %d with udev data", len(devs), loops, merged)
}
