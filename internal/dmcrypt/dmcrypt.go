// Package dmcrypt finds, in sysfs, the device-mapper crypt mappings that cryptsetup made of a
// LUKS device, and tells those whose backing device is gone (a stick pulled out while its
// file system was held), read only.
package dmcrypt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultSysfs is where sysfs is mounted.
const DefaultSysfs = "/sys"

// Mapping is one device-mapper crypt mapping of a LUKS device.
type Mapping struct {
	// Name is its device-mapper name (udisks2 names it luks-<UUID>), Device its node
	// (/dev/dm-N), Major and Minor its device number.
	Name         string
	Device       string
	Major, Minor uint32
	// Stale: none of its backing devices (sysfs' slaves) is still there.
	Stale bool
}

// Of lists the crypt mappings of the LUKS device whose UUID is uuid, from the sysfs mounted at
// sysfs (DefaultSysfs if ""): the device-mapper devices whose UUID cryptsetup made from it,
// CRYPT-LUKS<version>-<uuid without dashes>-<name>. A device that goes away while it is read
// is left out.
func Of(sysfs, uuid string) ([]Mapping, error) {
	if sysfs == "" {
		sysfs = DefaultSysfs
	}
	hex := strings.ToLower(strings.ReplaceAll(uuid, "-", ""))
	if hex == "" || strings.ContainsAny(hex, "/ \n") {
		return nil, fmt.Errorf("crypt mappings of %q: not a LUKS UUID", uuid)
	}
	dirs, err := filepath.Glob(filepath.Join(sysfs, "block", "dm-*"))
	if err != nil {
		return nil, fmt.Errorf("crypt mappings of %s: %w", uuid, err)
	}
	var out []Mapping
	for _, dir := range dirs {
		m, ok, err := read(dir, hex)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("crypt mappings of %s: %w", uuid, err)
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// read reads the device-mapper device at dir; ok tells that it is a crypt mapping of the LUKS
// device whose UUID without dashes is hex.
func read(dir, hex string) (Mapping, bool, error) {
	dmUUID, err := readLine(filepath.Join(dir, "dm", "uuid"))
	if err != nil {
		return Mapping{}, false, err
	}
	kind, rest, ok := strings.Cut(dmUUID, "-")
	if !ok || kind != "CRYPT" {
		return Mapping{}, false, nil
	}
	luks, rest, ok := strings.Cut(rest, "-")
	if !ok || !strings.HasPrefix(luks, "LUKS") {
		return Mapping{}, false, nil
	}
	if got, _, _ := strings.Cut(rest, "-"); strings.ToLower(got) != hex {
		return Mapping{}, false, nil
	}
	m := Mapping{Device: "/dev/" + filepath.Base(dir)}
	if m.Name, err = readLine(filepath.Join(dir, "dm", "name")); err != nil {
		return m, false, err
	}
	dev, err := readLine(filepath.Join(dir, "dev"))
	if err != nil {
		return m, false, err
	}
	maj, min, ok := strings.Cut(dev, ":")
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return m, false, fmt.Errorf("%s: device number %q", dir, dev)
	}
	m.Major, m.Minor = uint32(a), uint32(b)
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return m, false, err
	}
	m.Stale = true
	for _, s := range slaves {
		// A slave is a link to its block device's directory, dangling once it is removed.
		if _, err := os.Stat(filepath.Join(dir, "slaves", s.Name())); err == nil {
			m.Stale = false
		}
	}
	return m, true, nil
}

func readLine(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
