package udisks

import (
	"bytes"
	"reflect"
	"sort"

	"github.com/godbus/dbus/v5"
)

// Drive is org.freedesktop.UDisks2.Drive (the properties the project uses).
type Drive struct {
	Id            string
	Vendor        string
	Model         string
	Serial        string
	Size          uint64
	Removable     bool
	ConnectionBus string
	CanPowerOff   bool
}

// Block is org.freedesktop.UDisks2.Block. Device and PreferredDevice are the `ay`
// values as strings without their trailing NUL.
type Block struct {
	Device              string
	PreferredDevice     string
	Symlinks            []string
	Size                uint64
	ReadOnly            bool
	Drive               dbus.ObjectPath
	IdUsage             string
	IdType              string
	IdUUID              string
	IdLabel             string
	CryptoBackingDevice dbus.ObjectPath
	HintSystem          bool
	HintIgnore          bool
	HintAuto            bool
}

// Partition is org.freedesktop.UDisks2.Partition. Type is a GPT type GUID (lower
// case, as udisks reports it) or an MBR type such as "0x83".
type Partition struct {
	Number uint32
	Name   string
	Type   string
	UUID   string
	Table  dbus.ObjectPath
	Offset uint64
	Size   uint64
	Flags  uint64
}

// PartitionTable is org.freedesktop.UDisks2.PartitionTable.
type PartitionTable struct {
	Type       string // "gpt", "dos" or blank
	Partitions []dbus.ObjectPath
}

// Encrypted is org.freedesktop.UDisks2.Encrypted. CleartextDevice is "/" while locked.
type Encrypted struct {
	CleartextDevice    dbus.ObjectPath
	HintEncryptionType string
	MetadataSize       uint64
}

// Filesystem is org.freedesktop.UDisks2.Filesystem; MountPoints are strings without
// their trailing NUL.
type Filesystem struct {
	MountPoints []string
	Size        uint64
}

// Loop is org.freedesktop.UDisks2.Loop.
type Loop struct {
	BackingFile string
	Autoclear   bool
	SetupByUID  uint32
}

// Object is one udisks object with the interfaces it implements; a nil field means
// the interface is absent. Objects are immutable once published.
type Object struct {
	Path           dbus.ObjectPath
	Drive          *Drive
	Block          *Block
	Partition      *Partition
	PartitionTable *PartitionTable
	Encrypted      *Encrypted
	Filesystem     *Filesystem
	Loop           *Loop

	props map[string]map[string]dbus.Variant
}

// Interfaces lists the D-Bus interfaces of the object, sorted.
func (o *Object) Interfaces() []string {
	out := make([]string, 0, len(o.props))
	for k := range o.props {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Has reports whether the object implements iface.
func (o *Object) Has(iface string) bool {
	_, ok := o.props[iface]
	return ok
}

// Property returns a raw property value, for what the typed model leaves out.
func (o *Object) Property(iface, name string) (dbus.Variant, bool) {
	v, ok := o.props[iface][name]
	return v, ok
}

// Device returns the block device path (e.g. /dev/sdb2), or "" for a non-block object.
func (o *Object) Device() string {
	if o == nil || o.Block == nil {
		return ""
	}
	return o.Block.Device
}

func newObject(path dbus.ObjectPath, props map[string]map[string]dbus.Variant) *Object {
	o := &Object{Path: path, props: props}
	if p, ok := props[IfaceDrive]; ok {
		o.Drive = &Drive{
			Id: str(p, "Id"), Vendor: str(p, "Vendor"), Model: str(p, "Model"), Serial: str(p, "Serial"),
			Size: u64(p, "Size"), Removable: boolean(p, "Removable"), ConnectionBus: str(p, "ConnectionBus"),
			CanPowerOff: boolean(p, "CanPowerOff"),
		}
	}
	if p, ok := props[IfaceBlock]; ok {
		o.Block = &Block{
			Device: bytestr(p, "Device"), PreferredDevice: bytestr(p, "PreferredDevice"),
			Symlinks: bytestrs(p, "Symlinks"), Size: u64(p, "Size"), ReadOnly: boolean(p, "ReadOnly"),
			Drive: opath(p, "Drive"), IdUsage: str(p, "IdUsage"), IdType: str(p, "IdType"),
			IdUUID: str(p, "IdUUID"), IdLabel: str(p, "IdLabel"),
			CryptoBackingDevice: opath(p, "CryptoBackingDevice"), HintSystem: boolean(p, "HintSystem"),
			HintIgnore: boolean(p, "HintIgnore"), HintAuto: boolean(p, "HintAuto"),
		}
	}
	if p, ok := props[IfacePartition]; ok {
		o.Partition = &Partition{
			Number: u32(p, "Number"), Name: str(p, "Name"), Type: str(p, "Type"), UUID: str(p, "UUID"),
			Table: opath(p, "Table"), Offset: u64(p, "Offset"), Size: u64(p, "Size"), Flags: u64(p, "Flags"),
		}
	}
	if p, ok := props[IfaceTable]; ok {
		t := &PartitionTable{Type: str(p, "Type")}
		if v, ok := p["Partitions"].Value().([]dbus.ObjectPath); ok {
			t.Partitions = append([]dbus.ObjectPath(nil), v...)
		}
		o.PartitionTable = t
	}
	if p, ok := props[IfaceEncrypted]; ok {
		o.Encrypted = &Encrypted{CleartextDevice: opath(p, "CleartextDevice"),
			HintEncryptionType: str(p, "HintEncryptionType"), MetadataSize: u64(p, "MetadataSize")}
	}
	if p, ok := props[IfaceFilesystem]; ok {
		o.Filesystem = &Filesystem{MountPoints: bytestrs(p, "MountPoints"), Size: u64(p, "Size")}
	}
	if p, ok := props[IfaceLoop]; ok {
		o.Loop = &Loop{BackingFile: bytestr(p, "BackingFile"), Autoclear: boolean(p, "Autoclear"),
			SetupByUID: u32(p, "SetupByUID")}
	}
	return o
}

func str(p map[string]dbus.Variant, k string) string {
	s, _ := p[k].Value().(string)
	return s
}

func boolean(p map[string]dbus.Variant, k string) bool {
	b, _ := p[k].Value().(bool)
	return b
}

func u64(p map[string]dbus.Variant, k string) uint64 {
	v, _ := p[k].Value().(uint64)
	return v
}

func u32(p map[string]dbus.Variant, k string) uint32 {
	v, _ := p[k].Value().(uint32)
	return v
}

func opath(p map[string]dbus.Variant, k string) dbus.ObjectPath {
	v, _ := p[k].Value().(dbus.ObjectPath)
	return v
}

// cstr turns an `ay` value into a string without the trailing NUL(s).
func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func bytestr(p map[string]dbus.Variant, k string) string {
	b, _ := p[k].Value().([]byte)
	return cstr(b)
}

func bytestrs(p map[string]dbus.Variant, k string) []string {
	bs, _ := p[k].Value().([][]byte)
	if len(bs) == 0 {
		return nil
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = cstr(b)
	}
	return out
}

// Snapshot is a consistent view of every udisks object at one instant. It is
// immutable: a watcher publishes a new Snapshot with each event.
type Snapshot struct {
	objects map[dbus.ObjectPath]*Object
}

func newSnapshot(raw rawObjects) *Snapshot {
	s := &Snapshot{objects: make(map[dbus.ObjectPath]*Object, len(raw))}
	for path, ifaces := range raw {
		if !isUDisksObject(path) || len(ifaces) == 0 {
			continue
		}
		s.objects[path] = newObject(path, copyIfaces(ifaces))
	}
	return s
}

func isUDisksObject(path dbus.ObjectPath) bool {
	return len(path) > len(RootPath) && string(path[:len(RootPath)+1]) == string(RootPath)+"/"
}

func copyIfaces(in map[string]map[string]dbus.Variant) map[string]map[string]dbus.Variant {
	out := make(map[string]map[string]dbus.Variant, len(in))
	for k, v := range in {
		m := make(map[string]dbus.Variant, len(v))
		for n, x := range v {
			m[n] = x
		}
		out[k] = m
	}
	return out
}

func (s *Snapshot) clone() *Snapshot {
	n := &Snapshot{objects: make(map[dbus.ObjectPath]*Object, len(s.objects))}
	for k, v := range s.objects {
		n.objects[k] = v
	}
	return n
}

// Object returns the object at path, or nil.
func (s *Snapshot) Object(path dbus.ObjectPath) *Object {
	if s == nil {
		return nil
	}
	return s.objects[path]
}

// Objects returns every object, sorted by path.
func (s *Snapshot) Objects() []*Object {
	out := make([]*Object, 0, len(s.objects))
	for _, o := range s.objects {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Len is the number of objects.
func (s *Snapshot) Len() int { return len(s.objects) }

// ByDevice returns the block object whose Device (or a symlink) is dev, or nil.
func (s *Snapshot) ByDevice(dev string) *Object {
	for _, o := range s.Objects() {
		if o.Block == nil {
			continue
		}
		if o.Block.Device == dev || o.Block.PreferredDevice == dev {
			return o
		}
		for _, l := range o.Block.Symlinks {
			if l == dev {
				return o
			}
		}
	}
	return nil
}

// equalProps compares two interface→property maps.
func equalProps(a, b map[string]dbus.Variant) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || va.Signature() != vb.Signature() || !reflect.DeepEqual(va.Value(), vb.Value()) {
			return false
		}
	}
	return true
}
