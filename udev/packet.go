package udev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The libudev wire format, from systemd's src/libsystemd/sd-device/device-monitor.c
// (struct monitor_netlink_header): an 8-byte "libudev\0" prefix, then eight 32-bit
// fields. magic and the filter hashes are in network byte order (the kernel's BPF
// loads words big-endian); header_size and the properties offset and length are in
// host byte order. The properties follow as NUL-terminated KEY=VALUE strings.
const (
	libudevPrefix = "libudev\x00"
	libudevMagic  = 0xfeedcafe

	offMagic         = 8
	offHeaderSize    = 12
	offPropertiesOff = 16
	offPropertiesLen = 20
	offSubsystemHash = 24
	offDevTypeHash   = 28
	offTagBloomHi    = 32
	offTagBloomLo    = 36
	libudevHeaderLen = 40
)

// errMalformed marks a packet that does not follow the kernel or libudev format.
var errMalformed = errors.New("malformed uevent packet")

// packetKind tells which sender's format a packet is in.
type packetKind int

const (
	kindKernel  packetKind = iota + 1 // "ACTION@DEVPATH\0KEY=VALUE\0..."
	kindLibudev                       // "libudev\0" header, then KEY=VALUE\0...
)

// parsePacket decodes one datagram from a NETLINK_KOBJECT_UEVENT socket in either
// format. It never panics; any deviation from the format is an error wrapping errMalformed.
func parsePacket(buf []byte) (Event, packetKind, error) {
	if bytes.HasPrefix(buf, []byte(libudevPrefix)) {
		ev, err := parseLibudev(buf)
		return ev, kindLibudev, err
	}
	ev, err := parseKernel(buf)
	return ev, kindKernel, err
}

func parseLibudev(buf []byte) (Event, error) {
	if len(buf) < libudevHeaderLen {
		return Event{}, fmt.Errorf("%w: libudev packet of %d bytes is shorter than its header", errMalformed, len(buf))
	}
	if m := binary.BigEndian.Uint32(buf[offMagic:]); m != libudevMagic {
		return Event{}, fmt.Errorf("%w: libudev magic %#x, want %#x", errMalformed, m, libudevMagic)
	}
	off := uint64(binary.NativeEndian.Uint32(buf[offPropertiesOff:]))
	n := uint64(binary.NativeEndian.Uint32(buf[offPropertiesLen:]))
	if off < libudevHeaderLen || off+n > uint64(len(buf)) {
		return Event{}, fmt.Errorf("%w: libudev properties at %d+%d outside the %d-byte packet", errMalformed, off, n, len(buf))
	}
	return parseProperties(buf[off : off+n])
}

func parseKernel(buf []byte) (Event, error) {
	end := bytes.IndexByte(buf, 0)
	if end < 0 {
		return Event{}, fmt.Errorf("%w: kernel packet without a NUL-terminated header", errMalformed)
	}
	// The smallest header is "a@/d", as libudev checks.
	if head := buf[:end]; len(head) < len("a@/d") || !bytes.Contains(head, []byte("@/")) {
		return Event{}, fmt.Errorf("%w: kernel header %q is not ACTION@DEVPATH", errMalformed, head)
	}
	return parseProperties(buf[end+1:])
}

// parseProperties decodes a NUL-separated KEY=VALUE block into an Event; ACTION,
// DEVPATH, SUBSYSTEM and a non-zero SEQNUM are required, as libudev requires them.
func parseProperties(block []byte) (Event, error) {
	if len(block) == 0 {
		return Event{}, fmt.Errorf("%w: no properties", errMalformed)
	}
	if block[len(block)-1] != 0 {
		return Event{}, fmt.Errorf("%w: last property is not NUL-terminated", errMalformed)
	}
	props := make(map[string]string)
	for _, entry := range bytes.Split(block[:len(block)-1], []byte{0}) {
		if len(entry) == 0 {
			continue // padding; harmless
		}
		// Some drivers end a value with a newline; systemd drops it and what follows.
		if i := bytes.IndexByte(entry, '\n'); i >= 0 {
			entry = entry[:i]
		}
		key, value, ok := strings.Cut(string(entry), "=")
		if !ok || key == "" {
			return Event{}, fmt.Errorf("%w: property %q is not KEY=VALUE", errMalformed, entry)
		}
		props[key] = value
	}
	ev := Event{
		Action: Action(props["ACTION"]),
		Device: Device{
			DevPath:    props["DEVPATH"],
			Subsystem:  props["SUBSYSTEM"],
			DevType:    props["DEVTYPE"],
			DevName:    absDevName(props["DEVNAME"]),
			Properties: props,
		},
	}
	if !ev.Action.valid() {
		return Event{}, fmt.Errorf("%w: unknown ACTION %q", errMalformed, props["ACTION"])
	}
	if !strings.HasPrefix(ev.DevPath, "/") {
		return Event{}, fmt.Errorf("%w: DEVPATH %q is not absolute", errMalformed, ev.DevPath)
	}
	if ev.Subsystem == "" {
		return Event{}, fmt.Errorf("%w: no SUBSYSTEM", errMalformed)
	}
	seq, err := strconv.ParseUint(props["SEQNUM"], 10, 64)
	if err != nil || seq == 0 {
		return Event{}, fmt.Errorf("%w: SEQNUM %q is not a positive number", errMalformed, props["SEQNUM"])
	}
	ev.SeqNum = seq
	_, hasMajor := props["MAJOR"]
	_, hasMinor := props["MINOR"]
	if _, _, ok := ev.DevNum(); (hasMajor || hasMinor) && !ok {
		return Event{}, fmt.Errorf("%w: MAJOR %q MINOR %q is not a device number", errMalformed, props["MAJOR"], props["MINOR"])
	}
	return ev, nil
}

// murmurHash2 is the 32-bit MurmurHash2 (seed 0) udevd puts in the header's filter
// fields. Like systemd's copy it reads words in host byte order.
func murmurHash2(s string) uint32 {
	const m = 0x5bd1e995
	data := []byte(s)
	h := uint32(len(data)) // seed 0 ^ len
	for len(data) >= 4 {
		k := binary.NativeEndian.Uint32(data)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
