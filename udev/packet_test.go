package udev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// encodeLibudev builds a packet in udevd's format; the tests use it to play udevd.
func encodeLibudev(props []string, subsystem, devtype string) []byte {
	var block []byte
	for _, p := range props {
		block = append(block, p...)
		block = append(block, 0)
	}
	buf := make([]byte, libudevHeaderLen, libudevHeaderLen+len(block))
	copy(buf, libudevPrefix)
	binary.BigEndian.PutUint32(buf[offMagic:], libudevMagic)
	binary.NativeEndian.PutUint32(buf[offHeaderSize:], libudevHeaderLen)
	binary.NativeEndian.PutUint32(buf[offPropertiesOff:], libudevHeaderLen)
	binary.NativeEndian.PutUint32(buf[offPropertiesLen:], uint32(len(block)))
	binary.BigEndian.PutUint32(buf[offSubsystemHash:], murmurHash2(subsystem))
	if devtype != "" {
		binary.BigEndian.PutUint32(buf[offDevTypeHash:], murmurHash2(devtype))
	}
	return append(buf, block...)
}

func readPacket(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "packets", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParsePacketFiles decodes real captures (udevd 252 and kernel 6.x on a loop
// device) and hand-built packets laid out as device-monitor.c documents.
func TestParsePacketFiles(t *testing.T) {
	tests := []struct {
		file      string
		kind      packetKind
		action    Action
		devpath   string
		devtype   string
		devname   string
		seqnum    uint64
		props     map[string]string // a subset that must be present
		absent    []string
		major     uint32
		minor     uint32
		noDevNum  bool
		symlinks  int
		tags      []string
		sysIgnore [2]bool // UDisksSystem, UDisksIgnore
	}{
		{file: "kernel-change-loop3.bin", kind: kindKernel, action: ActionChange,
			devpath: "/devices/virtual/block/loop3", devtype: "disk", devname: "/dev/loop3", seqnum: 875,
			props: map[string]string{"DEVNAME": "loop3", "DISKSEQ": "38"}, absent: []string{"ID_FS_TYPE"},
			major: 7, minor: 3},
		{file: "udev-change-loop3-ext4.bin", kind: kindLibudev, action: ActionChange,
			devpath: "/devices/virtual/block/loop3", devtype: "disk", devname: "/dev/loop3", seqnum: 875,
			props: map[string]string{"ID_FS_TYPE": "ext4", "ID_FS_LABEL": "UDEVT", "ID_FS_UUID": "1a0248d4-d76a-4137-bcf1-9dbf2a310fb7"},
			major: 7, minor: 3, symlinks: 3, tags: []string{"systemd"}},
		{file: "udev-change-loop3-detached.bin", kind: kindLibudev, action: ActionChange,
			devpath: "/devices/virtual/block/loop3", devtype: "disk", devname: "/dev/loop3", seqnum: 876,
			props: map[string]string{"SYSTEMD_READY": "0"}, absent: []string{"ID_FS_TYPE", "ID_FS_UUID"},
			major: 7, minor: 3, symlinks: 1, tags: []string{"systemd"}},
		{file: "udev-add-sdb2-tailsdata.bin", kind: kindLibudev, action: ActionAdd,
			devpath: "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb2",
			devtype: "partition", devname: "/dev/sdb2", seqnum: 5123,
			props: map[string]string{"ID_PART_ENTRY_NAME": "TailsData", "ID_PART_ENTRY_TYPE": "8da63339-0007-60c0-c436-083ac8230908",
				"ID_FS_TYPE": "crypto_LUKS", "ID_BUS": "usb", "UDISKS_AUTO": "0", "PARTN": "2"},
			major: 8, minor: 18, symlinks: 2, tags: []string{"systemd"}},
		{file: "udev-add-sda-boot.bin", kind: kindLibudev, action: ActionAdd,
			devpath: "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host5/target5:0:0/5:0:0:0/block/sda",
			devtype: "disk", devname: "/dev/sda", seqnum: 4001, major: 8, minor: 0, sysIgnore: [2]bool{true, true}},
		{file: "kernel-add-sdb.bin", kind: kindKernel, action: ActionAdd,
			devpath: "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
			devtype: "disk", devname: "/dev/sdb", seqnum: 5120, major: 8, minor: 16},
		{file: "kernel-remove-sdb.bin", kind: kindKernel, action: ActionRemove,
			devpath: "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
			devtype: "disk", devname: "/dev/sdb", seqnum: 5200, major: 8, minor: 16},
		{file: "kernel-bind-usb.bin", kind: kindKernel, action: ActionBind,
			devpath: "/devices/pci0000:00/0000:00:14.0/usb2/2-1", devtype: "usb_device", seqnum: 5100, noDevNum: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, kind, err := parsePacket(readPacket(t, tt.file))
			if err != nil {
				t.Fatalf("parsePacket: %v", err)
			}
			if kind != tt.kind || ev.Action != tt.action || ev.DevPath != tt.devpath || ev.DevType != tt.devtype ||
				ev.DevName != tt.devname || ev.SeqNum != tt.seqnum {
				t.Errorf("got kind %d %s %s type %q name %q seq %d", kind, ev.Action, ev.DevPath, ev.DevType, ev.DevName, ev.SeqNum)
			}
			for k, v := range tt.props {
				if got := ev.Property(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := ev.Properties[k]; ok {
					t.Errorf("%s present, want absent", k)
				}
			}
			major, minor, ok := ev.DevNum()
			if ok == tt.noDevNum || major != tt.major || minor != tt.minor {
				t.Errorf("DevNum = %d:%d %v", major, minor, ok)
			}
			if got := len(ev.Symlinks()); got != tt.symlinks {
				t.Errorf("%d symlinks %q, want %d", got, ev.Symlinks(), tt.symlinks)
			}
			if !reflect.DeepEqual(ev.Tags(), tt.tags) {
				t.Errorf("tags %q, want %q", ev.Tags(), tt.tags)
			}
			if ev.UDisksSystem() != tt.sysIgnore[0] || ev.UDisksIgnore() != tt.sysIgnore[1] {
				t.Errorf("UDisksSystem %v UDisksIgnore %v", ev.UDisksSystem(), ev.UDisksIgnore())
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	ev, _, err := parsePacket(readPacket(t, "udev-add-sdb2-tailsdata.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{ev.FSType(), ev.FSLabel(), ev.FSUUID(), ev.PartEntryName(), ev.PartEntryType(), ev.Bus()}
	want := []string{"crypto_LUKS", "", "6b4f3a2e-1c0d-4e5f-9a8b-7c6d5e4f3a2b", "TailsData", "8da63339-0007-60c0-c436-083ac8230908", "usb"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("accessors %q, want %q", got, want)
	}
	for v, want := range map[string]bool{"1": true, "true": true, "TRUE": true, "0": false, "": false, "yes": false} {
		if udevBool(v) != want {
			t.Errorf("udevBool(%q) = %v", v, !want)
		}
	}
}

// TestParsePacketMalformed feeds broken packets; each must be an errMalformed, not a panic.
func TestParsePacketMalformed(t *testing.T) {
	good := readPacket(t, "udev-change-loop3-ext4.bin")
	kernel := readPacket(t, "kernel-change-loop3.bin")
	with := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	props := func(p ...string) []byte { return encodeLibudev(p, "block", "disk") }
	base := []string{"ACTION=add", "DEVPATH=/devices/virtual/block/loop9", "SUBSYSTEM=block", "SEQNUM=7"}
	tests := map[string][]byte{
		"empty":                  {},
		"prefix only":            []byte(libudevPrefix),
		"header cut":             good[:libudevHeaderLen-1],
		"bad magic":              with(good, func(b []byte) { b[offMagic] = 0 }),
		"magic in host order":    with(good, func(b []byte) { binary.LittleEndian.PutUint32(b[offMagic:], libudevMagic) }),
		"offset past end":        with(good, func(b []byte) { binary.NativeEndian.PutUint32(b[offPropertiesOff:], uint32(len(b)+1)) }),
		"offset inside header":   with(good, func(b []byte) { binary.NativeEndian.PutUint32(b[offPropertiesOff:], 8) }),
		"length past end":        with(good, func(b []byte) { binary.NativeEndian.PutUint32(b[offPropertiesLen:], uint32(len(b))) }),
		"length wraps":           with(good, func(b []byte) { binary.NativeEndian.PutUint32(b[offPropertiesLen:], 0xffffffff) }),
		"zero length":            with(good, func(b []byte) { binary.NativeEndian.PutUint32(b[offPropertiesLen:], 0) }),
		"properties cut":         good[:len(good)-3],
		"no NUL at end":          append(bytes.Clone(kernel), 'X'),
		"kernel no header NUL":   []byte("add@/devices/x"),
		"kernel short header":    []byte("a@/\x00ACTION=add\x00"),
		"kernel header no @/":    []byte("add-devices-x\x00ACTION=add\x00DEVPATH=/d\x00SUBSYSTEM=block\x00SEQNUM=1\x00"),
		"kernel no properties":   []byte("add@/devices/x\x00"),
		"not key=value":          props(append(base, "JUNK")...),
		"empty key":              props(append(base, "=x")...),
		"no action":              props(base[1:]...),
		"unknown action":         props(append([]string{"ACTION=explode"}, base[1:]...)...),
		"relative devpath":       props("ACTION=add", "DEVPATH=devices/x", "SUBSYSTEM=block", "SEQNUM=7"),
		"no subsystem":           props("ACTION=add", "DEVPATH=/devices/x", "SEQNUM=7"),
		"no seqnum":              props(base[:3]...),
		"zero seqnum":            props(append(base[:3], "SEQNUM=0")...),
		"seqnum not a number":    props(append(base[:3], "SEQNUM=12a")...),
		"seqnum overflows":       props(append(base[:3], "SEQNUM=18446744073709551616")...),
		"major without minor":    props(append(base, "MAJOR=8")...),
		"minor not a number":     props(append(base, "MAJOR=8", "MINOR=x")...),
		"major too large":        props(append(base, "MAJOR=4294967296", "MINOR=0")...),
		"garbage":                bytes.Repeat([]byte{0xff}, 100),
		"libudev prefix garbage": append([]byte(libudevPrefix), bytes.Repeat([]byte{0}, 40)...),
	}
	for name, pkt := range tests {
		t.Run(name, func(t *testing.T) {
			ev, _, err := parsePacket(pkt)
			if !errors.Is(err, errMalformed) {
				t.Fatalf("got %+v, %v; want errMalformed", ev, err)
			}
		})
	}
}

// TestParsePacketLenient covers what is accepted although unusual, as systemd accepts it.
func TestParsePacketLenient(t *testing.T) {
	ev, _, err := parsePacket(encodeLibudev([]string{"ACTION=online", "DEVPATH=/devices/system/cpu/cpu1", "SUBSYSTEM=cpu",
		"SEQNUM=3", "ID_X=a\nignored", "EMPTY=", "EQ=a=b", "", "SEQNUM=4"}, "cpu", ""))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Property("ID_X") != "a" || ev.Property("EQ") != "a=b" || ev.SeqNum != 4 || ev.DevName != "" {
		t.Errorf("got %+v", ev)
	}
	if v, ok := ev.Properties["EMPTY"]; !ok || v != "" {
		t.Errorf("EMPTY = %q, %v", v, ok)
	}
}

// TestMurmurHash2 checks the hash against the header udevd 252 wrote in a captured packet.
func TestMurmurHash2(t *testing.T) {
	pkt := readPacket(t, "udev-change-loop3-ext4.bin")
	if got, want := murmurHash2("block"), binary.BigEndian.Uint32(pkt[offSubsystemHash:]); got != want {
		t.Errorf("murmurHash2(block) = %#x, udevd sent %#x", got, want)
	}
	if got, want := murmurHash2("disk"), binary.BigEndian.Uint32(pkt[offDevTypeHash:]); got != want {
		t.Errorf("murmurHash2(disk) = %#x, udevd sent %#x", got, want)
	}
	for _, s := range []string{"", "a", "ab", "abc", "abcd", "partition"} {
		_ = murmurHash2(s) // every tail length runs
	}
}

// FuzzParsePacket checks that no input panics, that accepted events satisfy the
// invariants consumers rely on, and that re-encoding an accepted event's properties
// in udevd's format parses to the same event.
func FuzzParsePacket(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "packets", "*.bin"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		ev, _, err := parsePacket(pkt)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			return
		}
		if !ev.Action.valid() || ev.DevPath == "" || ev.DevPath[0] != '/' || ev.Subsystem == "" || ev.SeqNum == 0 {
			t.Fatalf("accepted event breaks invariants: %+v", ev)
		}
		if ev.DevName != "" && ev.DevName[0] != '/' {
			t.Fatalf("DevName %q is not absolute", ev.DevName)
		}
		var props []string
		for k, v := range ev.Properties {
			props = append(props, k+"="+v)
		}
		sort.Strings(props)
		again, kind, err := parsePacket(encodeLibudev(props, ev.Subsystem, ev.DevType))
		if err != nil || kind != kindLibudev {
			t.Fatalf("re-encoded event does not parse: %v", err)
		}
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}
