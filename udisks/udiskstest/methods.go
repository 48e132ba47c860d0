package udiskstest

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

type opts = map[string]dbus.Variant

// begin records a call and runs its hooks; a non-nil error must be replied.
func (s *Service) begin(c Call) *dbus.Error {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	hooks := append([]Hook(nil), s.hooks[c.Method]...)
	s.mu.Unlock()
	for _, h := range hooks {
		if h == nil {
			continue
		}
		if err := h(c); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objects[c.Path] == nil {
		return NewError(ErrUnknownObject, fmt.Sprintf("Object does not exist at path “%s”", c.Path))
	}
	return nil
}

func (s *Service) getManagedObjects() (map[dbus.ObjectPath]map[string]map[string]dbus.Variant, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[dbus.ObjectPath]map[string]map[string]dbus.Variant{}
	for p, ifaces := range s.objects {
		out[p] = variants(ifaces)
	}
	return out, nil
}

// methods returns the method table of iface on the object at p (nil if none).
func (s *Service) methods(p dbus.ObjectPath, iface string) map[string]any {
	switch iface {
	case iEncrypted:
		return map[string]any{
			"Unlock": func(pass string, o opts) (dbus.ObjectPath, *dbus.Error) { return s.unlock(p, pass, o) },
			"Lock":   func(o opts) *dbus.Error { return s.lock(p, o) },
		}
	case iFilesystem:
		return map[string]any{
			"Mount":   func(o opts) (string, *dbus.Error) { return s.mount(p, o) },
			"Unmount": func(o opts) *dbus.Error { return s.unmount(p, o) },
		}
	case iDrive:
		return map[string]any{"PowerOff": func(o opts) *dbus.Error { return s.powerOff(p, o) }}
	case iBlock:
		return map[string]any{"Format": func(typ string, o opts) *dbus.Error { return s.format(p, typ, o) }}
	case iTable:
		return map[string]any{
			"CreatePartition": func(off, size uint64, typ, name string, o opts) (dbus.ObjectPath, *dbus.Error) {
				return s.createPartition(p, "CreatePartition", off, size, typ, name, o, "", nil)
			},
			"CreatePartitionAndFormat": func(off, size uint64, typ, name string, o opts, fsType string, fo opts) (dbus.ObjectPath, *dbus.Error) {
				return s.createPartition(p, "CreatePartitionAndFormat", off, size, typ, name, o, fsType, fo)
			},
		}
	case iPartition:
		return map[string]any{"SetFlags": func(flags uint64, o opts) *dbus.Error { return s.setFlags(p, flags, o) }}
	}
	return nil
}

func (s *Service) dev(p dbus.ObjectPath) string { return str(s.get(p, iBlock, "Device")) }

func (s *Service) unlock(p dbus.ObjectPath, pass string, o opts) (dbus.ObjectPath, *dbus.Error) {
	// Like udisks2, a keyfile_contents option (ay) replaces the passphrase argument; it is
	// recorded as a placeholder, as the passphrase is.
	keyfile, hasKeyfile := o["keyfile_contents"]
	recorded := o
	if hasKeyfile {
		recorded = make(opts, len(o))
		for k, v := range o {
			recorded[k] = v
		}
		recorded["keyfile_contents"] = dbus.MakeVariant("<keyfile>")
	}
	if err := s.begin(Call{Path: p, Method: "Unlock", Args: []any{"<passphrase>"}, Options: recorded}); err != nil {
		return "/", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dev := s.dev(p)
	if ct, _ := s.get(p, iEncrypted, "CleartextDevice").(dbus.ObjectPath); ct != "/" && ct != "" {
		return "/", Failed(fmt.Sprintf("Device %s is already unlocked as %s", dev, s.dev(ct)))
	}
	if hasKeyfile {
		key, ok := keyfile.Value().([]byte)
		if !ok {
			// udisks2 reads the option as a byte array and fails on anything else.
			return "/", &dbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []any{"keyfile_contents is not a byte array"}}
		}
		if want, ok := s.keys[p]; !ok || !slices.Equal(key, want) {
			return "/", Failed(fmt.Sprintf(s.wrongText, dev))
		}
	} else if want, ok := s.secrets[p]; !ok || pass != want {
		return "/", Failed(fmt.Sprintf(s.wrongText, dev))
	}
	ct := s.openLocked(p, "TailsData", false)
	if d := s.fsDelay; d > 0 {
		time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.objects[ct] != nil {
				s.addLocked(ct, map[string]map[string]any{iFilesystem: fsProps()})
			}
		})
	} else {
		s.addLocked(ct, map[string]map[string]any{iFilesystem: fsProps()})
	}
	return ct, nil
}

func fsProps(mounts ...string) map[string]any {
	return map[string]any{"MountPoints": aay(mounts...), "Size": uint64(0)}
}

// openLocked creates the cleartext object of the LUKS object at p (Block only, plus
// Filesystem when withFS) and points Encrypted.CleartextDevice at it.
func (s *Service) openLocked(p dbus.ObjectPath, label string, withFS bool, mounts ...string) dbus.ObjectPath {
	name := fmt.Sprintf("dm-%d", s.nextDM)
	s.nextDM++
	ct := BlockPath(name)
	size, _ := s.get(p, iBlock, "Size").(uint64)
	b := blockProps("/dev/"+name, "/", size-16*MiB)
	b["CryptoBackingDevice"] = p
	b["IdUsage"], b["IdType"], b["IdLabel"], b["IdUUID"] = "filesystem", "ext4", label, NewUUID()
	b["HintPartitionable"] = false
	b["Symlinks"] = aay("/dev/mapper/luks-" + s.get(p, iBlock, "IdUUID").(string))
	ifaces := map[string]map[string]any{iBlock: b}
	if withFS {
		ifaces[iFilesystem] = fsProps(mounts...)
	}
	s.addLocked(ct, ifaces)
	s.setLocked(p, iEncrypted, "CleartextDevice", ct)
	s.setLocked(p, iEncrypted, "HintEncryptionType", "luks2")
	return ct
}

func (s *Service) lock(p dbus.ObjectPath, o opts) *dbus.Error {
	if err := s.begin(Call{Path: p, Method: "Lock", Options: o}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ct, _ := s.get(p, iEncrypted, "CleartextDevice").(dbus.ObjectPath)
	if ct == "/" || ct == "" {
		return Failed(fmt.Sprintf("Device %s is not unlocked", s.dev(p)))
	}
	if m, _ := s.get(ct, iFilesystem, "MountPoints").([][]byte); len(m) > 0 {
		return Failed(fmt.Sprintf("Error locking %s (%s): Failed to deactivate device: Device or resource busy", s.dev(p), s.dev(ct)))
	}
	s.removeLocked(ct)
	s.setLocked(p, iEncrypted, "CleartextDevice", dbus.ObjectPath("/"))
	return nil
}

func (s *Service) mount(p dbus.ObjectPath, o opts) (string, *dbus.Error) {
	if err := s.begin(Call{Path: p, Method: "Mount", Options: o}); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, _ := s.get(p, iFilesystem, "MountPoints").([][]byte); len(m) > 0 {
		return "", NewError(ErrAlreadyMounted, fmt.Sprintf("Device %s is already mounted at `%s'.", s.dev(p), str(m[0])))
	}
	root := s.mountRoot
	if v, ok := o["as-user"]; ok {
		user, isString := v.Value().(string)
		if !isString {
			return "", &dbus.Error{Name: "org.freedesktop.DBus.Error.InvalidArgs", Body: []any{"as-user is not a string"}}
		}
		// udisks2 2.10 mounts it where that user's mounts go; older ones ignore the option
		// and mount it as the caller.
		if version, _ := s.get(ManagerPath, iManager, "Version").(string); versionAtLeast210(version) {
			root = path.Join(path.Dir(s.mountRoot), user)
		}
	}
	label, _ := s.get(p, iBlock, "IdLabel").(string)
	uuid, _ := s.get(p, iBlock, "IdUUID").(string)
	dir := mountPath(root, label, uuid)
	s.setLocked(p, iFilesystem, "MountPoints", aay(dir))
	return dir, nil
}

func (s *Service) unmount(p dbus.ObjectPath, o opts) *dbus.Error {
	if err := s.begin(Call{Path: p, Method: "Unmount", Options: o}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, _ := s.get(p, iFilesystem, "MountPoints").([][]byte); len(m) == 0 {
		return NewError(ErrNotMounted, fmt.Sprintf("Device `%s' is not mounted", s.dev(p)))
	}
	s.setLocked(p, iFilesystem, "MountPoints", aay())
	return nil
}

func (s *Service) powerOff(p dbus.ObjectPath, o opts) *dbus.Error {
	if err := s.begin(Call{Path: p, Method: "PowerOff", Options: o}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for q, obj := range s.objects {
		if b := obj[iBlock]; b != nil {
			if m, _ := obj[iFilesystem]["MountPoints"].([][]byte); len(m) > 0 && s.driveOfLocked(q) == p {
				return NewError(ErrDeviceBusy, fmt.Sprintf("Error powering off drive: %s is mounted", s.dev(q)))
			}
		}
	}
	s.unplugLocked(p)
	return nil
}

func (s *Service) driveOfLocked(p dbus.ObjectPath) dbus.ObjectPath {
	for range 4 {
		d, _ := s.get(p, iBlock, "Drive").(dbus.ObjectPath)
		if d != "/" && d != "" {
			return d
		}
		back, _ := s.get(p, iBlock, "CryptoBackingDevice").(dbus.ObjectPath)
		if back == "/" || back == "" {
			return ""
		}
		p = back
	}
	return ""
}

func (s *Service) format(p dbus.ObjectPath, typ string, o opts) *dbus.Error {
	if err := s.begin(Call{Path: p, Method: "Format", Args: []any{typ}, Options: o}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.formatLocked(p, typ, o)
}

func (s *Service) formatLocked(p dbus.ObjectPath, typ string, o opts) *dbus.Error {
	switch typ {
	case "gpt", "dos":
		var parts []dbus.ObjectPath
		for q, obj := range s.objects {
			if obj[iPartition] != nil && obj[iPartition]["Table"] == p {
				parts = append(parts, q)
			}
		}
		sortPaths(parts)
		for _, q := range parts {
			s.removeLocked(q)
		}
		if s.objects[p][iFilesystem] != nil {
			s.removeLocked(p, iFilesystem)
		}
		for _, k := range []string{"IdUsage", "IdType", "IdLabel", "IdUUID"} {
			s.setLocked(p, iBlock, k, "")
		}
		if s.objects[p][iTable] != nil {
			s.removeLocked(p, iTable)
		}
		s.addLocked(p, map[string]map[string]any{iTable: {"Type": typ, "Partitions": []dbus.ObjectPath{}}})
		return nil
	case "ext4", "vfat":
	default:
		return NewError(pre+"Error.NotSupported", "Creation of file system type "+typ+" is not supported")
	}
	label, _ := o["label"].Value().(string)
	if pass, ok := o["encrypt.passphrase"].Value().(string); ok {
		luksType, _ := o["encrypt.type"].Value().(string)
		if luksType == "" {
			luksType = "luks1"
		}
		s.setLocked(p, iBlock, "IdUsage", "crypto")
		s.setLocked(p, iBlock, "IdType", "crypto_LUKS")
		s.setLocked(p, iBlock, "IdVersion", map[string]string{"luks1": "1", "luks2": "2"}[luksType])
		s.setLocked(p, iBlock, "IdUUID", NewUUID())
		s.addLocked(p, map[string]map[string]any{iEncrypted: {
			"ChildConfiguration": []struct {
				A string
				B map[string]dbus.Variant
			}{},
			"HintEncryptionType": "", "MetadataSize": uint64(16 * MiB), "CleartextDevice": dbus.ObjectPath("/")}})
		s.secrets[p] = pass
		ct := s.openLocked(p, label, true) // udisks leaves it unlocked
		s.setLocked(ct, iBlock, "IdType", typ)
		return nil
	}
	s.setLocked(p, iBlock, "IdUsage", "filesystem")
	s.setLocked(p, iBlock, "IdType", typ)
	s.setLocked(p, iBlock, "IdLabel", label)
	s.setLocked(p, iBlock, "IdUUID", NewUUID())
	if s.objects[p][iFilesystem] == nil {
		s.addLocked(p, map[string]map[string]any{iFilesystem: fsProps()})
	}
	return nil
}

// createPartition mimics udisks 2.9 on a GPT: offset 0 takes the FIRST free gap
// (1 MiB, the gap before partition 1), size 0 fills the gap.
func (s *Service) createPartition(table dbus.ObjectPath, method string, off, size uint64, typ, name string, o opts, fsType string, fo opts) (dbus.ObjectPath, *dbus.Error) {
	c := Call{Path: table, Method: method, Args: []any{off, size, typ, name}, Options: o}
	if fsType != "" {
		c.Args = append(c.Args, fsType, fo)
	}
	if err := s.begin(c); err != nil {
		return "/", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createPartitionLocked(table, off, size, typ, name, fsType, fo)
}

func (s *Service) createPartitionLocked(table dbus.ObjectPath, off, size uint64, typ, name string, fsType string, fo opts) (dbus.ObjectPath, *dbus.Error) {
	if s.objects[table][iTable] == nil {
		return "/", Failed("Partition table object is not a block device")
	}
	disk := s.dev(table)
	drive, _ := s.get(table, iBlock, "Drive").(dbus.ObjectPath)
	diskSize, _ := s.get(table, iBlock, "Size").(uint64)
	parts, _ := s.get(table, iTable, "Partitions").([]dbus.ObjectPath)
	if off == 0 {
		off = MiB
	}
	end := diskSize - MiB
	for _, q := range parts {
		qo, _ := s.get(q, iPartition, "Offset").(uint64)
		qs, _ := s.get(q, iPartition, "Size").(uint64)
		if off >= qo && off < qo+qs {
			return "/", Failed(fmt.Sprintf("Error creating partition on %s: requested offset overlaps partition %d", disk, len(parts)))
		}
		if qo > off && qo < end {
			end = qo
		}
	}
	if size == 0 {
		size = end - off
	}
	if off+size > end {
		return "/", Failed(fmt.Sprintf("Error creating partition on %s: not enough free space", disk))
	}
	n := uint32(len(parts) + 1)
	pname := strings.TrimPrefix(disk, "/dev/") + fmt.Sprint(n)
	pp := BlockPath(pname)
	hint, _ := s.get(table, iBlock, "HintSystem").(bool)
	b := blockProps("/dev/"+pname, drive, size)
	b["HintSystem"] = hint
	b["HintPartitionable"] = false
	s.addLocked(pp, map[string]map[string]any{iBlock: b, iPartition: {
		"Number": n, "Type": strings.ToLower(typ), "Flags": uint64(0), "Offset": off, "Size": size,
		"Name": name, "UUID": NewUUID(), "Table": table, "IsContainer": false, "IsContained": false}})
	s.setLocked(table, iTable, "Partitions", append(append([]dbus.ObjectPath{}, parts...), pp))
	if fsType != "" {
		if err := s.formatLocked(pp, fsType, fo); err != nil {
			return "/", err
		}
	}
	return pp, nil
}

// GPT attribute bits udisks 2.9 keeps (0, 2, 60, 62, 63); others are dropped.
const gptKnownFlags uint64 = 1<<0 | 1<<2 | 1<<60 | 1<<62 | 1<<63

func (s *Service) setFlags(p dbus.ObjectPath, flags uint64, o opts) *dbus.Error {
	if err := s.begin(Call{Path: p, Method: "SetFlags", Args: []any{flags}, Options: o}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(p, iPartition, "Flags", flags&gptKnownFlags)
	return nil
}

// versionAtLeast210 tells whether the udisks2 version v takes Mount's option as-user.
func versionAtLeast210(v string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 2 || (major == 2 && minor >= 10)
}
