// Package dmcrypttest makes fake sysfs trees of device-mapper devices for the tests of the
// packages that read them through dmcrypt.
package dmcrypttest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dev is a device-mapper device of a fake sysfs.
type Dev struct {
	// Name is its kernel name (dm-1), DMName and DMUUID its device-mapper name and UUID,
	// Number its device number ("254:1").
	Name, DMName, DMUUID, Number string
	// Slaves are the kernel names of its backing devices (sda2), partitions of USB disks.
	Slaves []string
}

// CryptUUID is the device-mapper UUID cryptsetup gives the mapping name of the LUKS2 device
// whose UUID is luksUUID.
func CryptUUID(luksUUID, name string) string {
	hex := make([]byte, 0, len(luksUUID))
	for i := 0; i < len(luksUUID); i++ {
		if luksUUID[i] != '-' {
			hex = append(hex, luksUUID[i])
		}
	}
	return "CRYPT-LUKS2-" + string(hex) + "-" + name
}

// Sysfs makes, in a temporary directory that it returns, a sysfs tree with devs laid out as
// the kernel does (/sys/block/X links to /sys/devices/virtual/block/X, whose slaves link to
// the backing devices' directories), and the partitions sda2 and sdb2 of USB disks but those
// in gone (whose links then dangle, as after a stick is pulled out).
func Sysfs(t testing.TB, devs []Dev, gone ...string) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "block"), 0o755))
	for _, p := range []string{"sda/sda2", "sdb/sdb2"} {
		must(os.MkdirAll(filepath.Join(root, "devices", "usb", p), 0o755))
	}
	for _, d := range devs {
		real := filepath.Join(root, "devices", "virtual", "block", d.Name)
		must(os.MkdirAll(filepath.Join(real, "dm"), 0o755))
		must(os.MkdirAll(filepath.Join(real, "slaves"), 0o755))
		must(os.WriteFile(filepath.Join(real, "dm", "name"), []byte(d.DMName+"\n"), 0o644))
		must(os.WriteFile(filepath.Join(real, "dm", "uuid"), []byte(d.DMUUID+"\n"), 0o644))
		must(os.WriteFile(filepath.Join(real, "dev"), []byte(d.Number+"\n"), 0o644))
		for _, s := range d.Slaves {
			must(os.Symlink(filepath.Join("..", "..", "..", "..", "usb", s[:3], s), filepath.Join(real, "slaves", s)))
		}
		must(os.Symlink(filepath.Join("..", "devices", "virtual", "block", d.Name), filepath.Join(root, "block", d.Name)))
	}
	for _, g := range gone {
		must(os.RemoveAll(filepath.Join(root, "devices", "usb", g[:3], g)))
	}
	return root
}
