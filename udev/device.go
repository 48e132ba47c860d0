// Package udev receives device events from the kernel and udevd over netlink, and lists the block devices present, in pure Go without libudev.
package udev

import (
	"strconv"
	"strings"
)

// Action is what happened to a device, as the kernel names it in ACTION.
type Action string

// The actions the kernel and udevd send.
const (
	ActionAdd     Action = "add"
	ActionChange  Action = "change"
	ActionRemove  Action = "remove"
	ActionMove    Action = "move"
	ActionBind    Action = "bind"
	ActionUnbind  Action = "unbind"
	ActionOnline  Action = "online"
	ActionOffline Action = "offline"
)

// valid reports whether a is one of the actions above.
func (a Action) valid() bool {
	switch a {
	case ActionAdd, ActionChange, ActionRemove, ActionMove,
		ActionBind, ActionUnbind, ActionOnline, ActionOffline:
		return true
	}
	return false
}

// Device is one device with the properties udev knows about it.
type Device struct {
	// DevPath is the kernel path below the sysfs root, e.g. /devices/virtual/block/loop0.
	DevPath string
	// Subsystem is the kernel subsystem, e.g. "block".
	Subsystem string
	// DevType is the type within the subsystem, e.g. "disk" or "partition"; it may be empty.
	DevType string
	// DevName is the device node, always absolute (/dev/loop0), or empty when there is none.
	DevName string
	// Properties holds every KEY=VALUE the sender gave (kernel and udev properties alike).
	Properties map[string]string
}

// Event is one uevent: an action on a device, numbered by the kernel.
type Event struct {
	Action Action
	// SeqNum is the kernel's event sequence number; udevd keeps it when it re-broadcasts.
	SeqNum uint64
	Device
}

// Property returns the value of the property key, or "" when it is not set.
func (d *Device) Property(key string) string { return d.Properties[key] }

// FSType returns ID_FS_TYPE, the filesystem or container type blkid found (ext4, vfat, crypto_LUKS).
func (d *Device) FSType() string { return d.Properties["ID_FS_TYPE"] }

// FSLabel returns ID_FS_LABEL, the filesystem label with unsafe characters replaced by udev.
func (d *Device) FSLabel() string { return d.Properties["ID_FS_LABEL"] }

// FSUUID returns ID_FS_UUID, the filesystem (or LUKS header) UUID.
func (d *Device) FSUUID() string { return d.Properties["ID_FS_UUID"] }

// PartEntryName returns ID_PART_ENTRY_NAME, the GPT partition name (e.g. TailsData).
func (d *Device) PartEntryName() string { return d.Properties["ID_PART_ENTRY_NAME"] }

// PartEntryType returns ID_PART_ENTRY_TYPE, the partition type GUID (GPT) or type byte (MBR).
func (d *Device) PartEntryType() string { return d.Properties["ID_PART_ENTRY_TYPE"] }

// Bus returns ID_BUS, the bus the drive hangs on (usb, ata, scsi...).
func (d *Device) Bus() string { return d.Properties["ID_BUS"] }

// UDisksSystem reports whether udev rules marked the device UDISKS_SYSTEM (Tails marks its boot device so).
func (d *Device) UDisksSystem() bool { return udevBool(d.Properties["UDISKS_SYSTEM"]) }

// UDisksIgnore reports whether udev rules marked the device UDISKS_IGNORE.
func (d *Device) UDisksIgnore() bool { return udevBool(d.Properties["UDISKS_IGNORE"]) }

// DevNum returns the device number from MAJOR and MINOR; ok is false when either is absent or not a number.
func (d *Device) DevNum() (major, minor uint32, ok bool) {
	ma, err1 := strconv.ParseUint(d.Properties["MAJOR"], 10, 32)
	mi, err2 := strconv.ParseUint(d.Properties["MINOR"], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(ma), uint32(mi), true
}

// Symlinks returns the /dev symlinks udev made for the device (DEVLINKS), or nil.
func (d *Device) Symlinks() []string { return strings.Fields(d.Properties["DEVLINKS"]) }

// Tags returns the udev tags of the device (TAGS, ":a:b:"), or nil.
func (d *Device) Tags() []string {
	var tags []string
	for _, t := range strings.Split(d.Properties["TAGS"], ":") {
		if t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// udevBool reads a boolean property the way udisks (GUdev) does: "1" or "true".
func udevBool(v string) bool { return v == "1" || strings.EqualFold(v, "true") }

// absDevName turns the kernel's relative DEVNAME (loop0) into a node path (/dev/loop0).
func absDevName(name string) string {
	if name == "" || strings.HasPrefix(name, "/") {
		return name
	}
	return "/dev/" + name
}
