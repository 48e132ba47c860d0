package udev

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Default locations Enumerator reads when its fields are empty.
const (
	DefaultSysfsRoot   = "/sys"
	DefaultUdevDataDir = "/run/udev/data"
)

// Enumerator lists the devices present now (coldplug), from sysfs and the udev database.
// The zero value reads the real system.
type Enumerator struct {
	// SysfsRoot is where sysfs is mounted; "" means DefaultSysfsRoot.
	SysfsRoot string
	// UdevDataDir holds udevd's database files (b<major>:<minor>); "" means DefaultUdevDataDir.
	UdevDataDir string
}

// BlockDevices returns every block device (disks and partitions) sorted by DevPath,
// with the properties udevd would send for it: the kernel's uevent file merged with
// the udev database (E: properties, S: symlinks as DEVLINKS, G:/Q: tags as TAGS and
// CURRENT_TAGS). A device without a database entry (udevd has not processed it, or
// is not running) has only the kernel's properties. Devices that vanish during the
// walk are left out. It returns an error only when sysfs cannot be read or ctx is done.
func (e Enumerator) BlockDevices(ctx context.Context) ([]Device, error) {
	sysfs := e.SysfsRoot
	if sysfs == "" {
		sysfs = DefaultSysfsRoot
	}
	// Device paths are reported relative to the real sysfs root, wherever the links go.
	root, err := filepath.EvalSymlinks(sysfs)
	if err != nil {
		return nil, fmt.Errorf("enumerate block devices: %w", err)
	}
	classDir := filepath.Join(root, "class", "block")
	entries, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("enumerate block devices: %w", err)
	}
	var devices []Device
	for _, entry := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dev, err := e.blockDevice(root, filepath.Join(classDir, entry.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we walked; its remove event will follow
		}
		if err != nil {
			return nil, fmt.Errorf("enumerate block devices: %w", err)
		}
		devices = append(devices, dev)
	}
	sort.Slice(devices, func(i, j int) bool { return devices[i].DevPath < devices[j].DevPath })
	return devices, nil
}

// blockDevice reads one /sys/class/block entry, a symlink into /sys/devices.
func (e Enumerator) blockDevice(root, link string) (Device, error) {
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return Device{}, err
	}
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return Device{}, fmt.Errorf("%s points outside sysfs, to %s", link, target)
	}
	uevent, err := os.ReadFile(filepath.Join(target, "uevent"))
	if err != nil {
		return Device{}, err
	}
	props := parseUeventFile(uevent)
	props["DEVPATH"] = "/" + filepath.ToSlash(rel)
	props["SUBSYSTEM"] = "block"
	if name := props["DEVNAME"]; name != "" {
		props["DEVNAME"] = absDevName(name) // udevd sends it absolute
	}
	dev := Device{
		DevPath:    props["DEVPATH"],
		Subsystem:  "block",
		DevType:    props["DEVTYPE"],
		DevName:    props["DEVNAME"],
		Properties: props,
	}
	major, minor, ok := dev.DevNum()
	if !ok {
		return dev, nil
	}
	dataDir := e.UdevDataDir
	if dataDir == "" {
		dataDir = DefaultUdevDataDir
	}
	db, err := os.ReadFile(filepath.Join(dataDir, fmt.Sprintf("b%d:%d", major, minor)))
	if errors.Is(err, fs.ErrNotExist) {
		return dev, nil
	}
	if err != nil {
		return Device{}, fmt.Errorf("read udev database of %s: %w", dev.DevPath, err)
	}
	mergeUdevDB(props, db)
	return dev, nil
}

// parseUeventFile reads a sysfs uevent file: KEY=VALUE lines.
func parseUeventFile(data []byte) map[string]string {
	props := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if key, value, ok := strings.Cut(sc.Text(), "="); ok && key != "" {
			props[key] = value
		}
	}
	return props
}

// mergeUdevDB adds a udev database file to props. The format is systemd's
// (device_update_db in sd-device/device-private.c): one "X:value" per line, where
// E: is KEY=VALUE, S: a symlink below /dev, G: a tag, Q: a current tag, I: the
// initialisation time; L: (link priority), W: and V: are not properties. Bad lines are skipped, as
// systemd skips them.
func mergeUdevDB(props map[string]string, db []byte) {
	var links, tags, currentTags []string
	sc := bufio.NewScanner(bytes.NewReader(db))
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 || line[1] != ':' {
			continue
		}
		value := line[2:]
		switch line[0] {
		case 'E':
			if key, v, ok := strings.Cut(value, "="); ok && key != "" {
				props[key] = v
			}
		case 'I':
			props["USEC_INITIALIZED"] = value // udevd sends it in events too
		case 'S':
			links = append(links, "/dev/"+value)
		case 'G':
			tags = append(tags, value)
		case 'Q':
			currentTags = append(currentTags, value)
		}
	}
	if len(links) > 0 {
		props["DEVLINKS"] = strings.Join(links, " ")
	}
	if len(tags) > 0 {
		props["TAGS"] = ":" + strings.Join(tags, ":") + ":"
	}
	if len(currentTags) > 0 {
		props["CURRENT_TAGS"] = ":" + strings.Join(currentTags, ":") + ":"
	}
}
