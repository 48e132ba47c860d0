package udiskstest

import (
	"fmt"

	"github.com/godbus/dbus/v5"
)

// StickSpec describes a drive to plug into the fake.
type StickSpec struct {
	Name          string // kernel name of the disk, e.g. "sdb"
	Vendor, Model string
	Serial        string
	Size          uint64 // bytes; default 16 GiB
	Removable     bool
	ConnectionBus string // "usb" for a stick

	// Tails: a GPT with the "Tails" ESP and the LUKS "TailsData" partition.
	Tails      bool
	Passphrase string // of TailsData
	LUKSUUID   string // default: random
	HintSystem bool   // udev's UDISKS_SYSTEM=1 (the stick Tails booted from)
	Unlocked   bool   // TailsData unlocked (cleartext with an ext4 filesystem)
	// MountedAt mounts the TailsData cleartext there (implies Unlocked).
	MountedAt string
	// SystemMountedAt mounts the Tails system partition there.
	SystemMountedAt string
}

// StickPaths are the objects created for a StickSpec ("" where absent).
type StickPaths struct {
	Drive, Disk, System, LUKS, Cleartext, Data dbus.ObjectPath
}

// DrivePath is the object path udisks would give a drive.
func DrivePath(vendor, model, serial string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/UDisks2/drives/" + sanitize(vendor+"_"+model+"_"+serial))
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// AddStick plugs a drive in, emitting InterfacesAdded for the drive, its disk, its
// partitions and any cleartext device, in that order (as udisks does).
func (s *Service) AddStick(spec StickSpec) StickPaths {
	if spec.Size == 0 {
		spec.Size = 16 << 30
	}
	if spec.Serial == "" {
		spec.Serial = spec.Name
	}
	var out StickPaths
	out.Drive = DrivePath(spec.Vendor, spec.Model, spec.Serial)
	id := fmt.Sprintf("%s-%s-%s", spec.Vendor, spec.Model, spec.Serial)
	canPowerOff := spec.Removable && spec.ConnectionBus == "usb"
	s.Add(out.Drive, map[string]map[string]any{iDrive: {
		"Vendor": spec.Vendor, "Model": spec.Model, "Revision": "1.00", "Serial": spec.Serial, "WWN": "",
		"Id": id, "Configuration": map[string]dbus.Variant{}, "Media": "", "MediaCompatibility": []string{},
		"MediaRemovable": spec.Removable, "MediaAvailable": true, "MediaChangeDetected": true,
		"Size": spec.Size, "TimeDetected": uint64(1), "TimeMediaDetected": uint64(1),
		"Optical": false, "OpticalBlank": false, "OpticalNumTracks": uint32(0),
		"OpticalNumAudioTracks": uint32(0), "OpticalNumDataTracks": uint32(0),
		"OpticalNumSessions": uint32(0), "RotationRate": int32(0), "ConnectionBus": spec.ConnectionBus,
		"Seat": "seat0", "Removable": spec.Removable, "Ejectable": spec.Removable, "SortKey": "01" + spec.Name,
		"CanPowerOff": canPowerOff, "SiblingId": ""}})

	out.Disk = BlockPath(spec.Name)
	b := blockProps("/dev/"+spec.Name, out.Drive, spec.Size)
	b["HintSystem"] = spec.HintSystem || !spec.Removable
	b["IdUsage"], b["IdType"] = "", ""
	s.Add(out.Disk, map[string]map[string]any{iBlock: b,
		iTable: {"Type": "gpt", "Partitions": []dbus.ObjectPath{}}})

	s.mu.Lock()
	defer s.mu.Unlock()
	if !spec.Tails {
		typ := "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"
		label := "DATA"
		if !spec.Removable {
			typ, label = "0fc63daf-8483-4772-8e79-3d69d8477de4", "root"
		}
		p, err := s.createPartitionLocked(out.Disk, MiB, 0, typ, "Data", "", nil)
		if err != nil {
			panic(err)
		}
		out.Data = p
		if err := s.formatLocked(p, map[bool]string{true: "vfat", false: "ext4"}[spec.Removable],
			map[string]dbus.Variant{"label": dbus.MakeVariant(label)}); err != nil {
			panic(err)
		}
		if !spec.Removable {
			s.setLocked(p, iFilesystem, "MountPoints", aay("/"))
		}
		return out
	}
	sys, err := s.createPartitionLocked(out.Disk, 2*MiB, 4<<30, ESPType, "Tails", "", nil)
	if err != nil {
		panic(err)
	}
	out.System = sys
	_ = s.formatLocked(sys, "vfat", map[string]dbus.Variant{"label": dbus.MakeVariant("Tails")})
	s.setLocked(sys, iPartition, "Flags", gptKnownFlags)
	if spec.SystemMountedAt != "" {
		s.setLocked(sys, iFilesystem, "MountPoints", aay(spec.SystemMountedAt))
	}
	luks, err := s.createPartitionLocked(out.Disk, 2*MiB+4<<30, 0, TailsDataType, "TailsData", "", nil)
	if err != nil {
		panic(err)
	}
	out.LUKS = luks
	uuid := spec.LUKSUUID
	if uuid == "" {
		uuid = NewUUID()
	}
	s.setLocked(luks, iBlock, "IdUsage", "crypto")
	s.setLocked(luks, iBlock, "IdType", "crypto_LUKS")
	s.setLocked(luks, iBlock, "IdVersion", "2")
	s.setLocked(luks, iBlock, "IdUUID", uuid)
	s.setLocked(luks, iBlock, "HintAuto", false)
	s.setLocked(luks, iBlock, "HintIgnore", spec.HintSystem)
	s.addLocked(luks, map[string]map[string]any{iEncrypted: {
		"ChildConfiguration": []struct {
			A string
			B map[string]dbus.Variant
		}{},
		"HintEncryptionType": "", "MetadataSize": uint64(16 * MiB), "CleartextDevice": dbus.ObjectPath("/")}})
	s.secrets[luks] = spec.Passphrase
	if spec.Unlocked || spec.MountedAt != "" {
		var mounts []string
		if spec.MountedAt != "" {
			mounts = []string{spec.MountedAt}
		}
		out.Cleartext = s.openLocked(luks, "TailsData", true, mounts...)
	}
	return out
}

// Standard is the usual test world: the Tails stick the system booted from, a
// paired backup Tails stick, an unrelated stick and a non-removable disk.
type Standard struct {
	Boot, Backup, Other, Internal StickPaths
}

// Passphrases of the standard sticks.
const (
	BootPassphrase   = "boot stick passphrase"
	BackupPassphrase = "correct horse battery staple"
)

// AddStandard plugs the standard world in. The boot stick has HintSystem, its
// TailsData unlocked and mounted at /live/persistence/TailsData_unlocked and its
// system partition mounted at /lib/live/mount/medium.
func (s *Service) AddStandard() Standard {
	var w Standard
	w.Internal = s.AddStick(StickSpec{Name: "vda", Vendor: "", Model: "Virtual disk", Serial: "internal0",
		Size: 256 << 30})
	w.Boot = s.AddStick(StickSpec{Name: "sda", Vendor: "SanDisk", Model: "Cruzer", Serial: "BOOT0001",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: BootPassphrase, HintSystem: true,
		MountedAt: "/live/persistence/TailsData_unlocked", SystemMountedAt: "/lib/live/mount/medium"})
	w.Backup = s.AddStick(StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: BackupPassphrase,
		LUKSUUID: "2f1e3c4d-0000-4000-8000-00000000b0b0"})
	w.Other = s.AddStick(StickSpec{Name: "sdc", Vendor: "Generic", Model: "Flash Disk", Serial: "OTHER0003",
		Removable: true, ConnectionBus: "usb"})
	return w
}
