package udev

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSocketFilter runs the BPF program in the kernel on a datagram socket pair and
// checks which packets it lets through.
func TestSocketFilter(t *testing.T) {
	udev := func(subsystem, devtype string) []byte {
		return encodeLibudev(testEvent(ActionAdd, "/test/"+subsystem+"/"+devtype, subsystem, devtype, 1), subsystem, devtype)
	}
	kernel := kernelPacket(testEvent(ActionAdd, "/test/usb/kernel", "usb", "usb_device", 2))
	all := map[string][]byte{
		"block/disk":      udev("block", "disk"),
		"block/partition": udev("block", "partition"),
		"block/":          udev("block", ""),
		"usb/usb_device":  udev("usb", "usb_device"),
		"net/":            udev("net", ""),
		"kernel":          kernel,
		"short":           []byte("libudev\x00\xfe\xed"), // BPF cannot load the magic: dropped
	}
	tests := []struct {
		matches []Match
		pass    string // names of the packets that must pass, sorted
	}{
		{nil, "block/ block/disk block/partition kernel net/ short usb/usb_device"},
		{[]Match{{Subsystem: "block"}}, "block/ block/disk block/partition kernel"},
		{[]Match{{"block", "disk"}}, "block/disk kernel"},
		{[]Match{{"block", "disk"}, {"block", "partition"}}, "block/disk block/partition kernel"},
		{[]Match{{"block", "partition"}, {Subsystem: "net"}, {"usb", "usb_device"}}, "block/partition kernel net/ usb/usb_device"},
	}
	for _, tt := range tests {
		t.Run(tt.pass, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fds[0])
			defer unix.Close(fds[1])
			prog, err := socketFilter(tt.matches)
			if err != nil {
				t.Fatal(err)
			}
			if err := attachFilter(fds[1], prog); err != nil {
				t.Fatal(err)
			}
			names := []string{"block/", "block/disk", "block/partition", "kernel", "net/", "short", "usb/usb_device"}
			for _, name := range names {
				if err := unix.Send(fds[0], all[name], 0); err != nil {
					t.Fatal(err)
				}
			}
			// Datagrams arrive in order; match each received one to what was sent.
			var got []string
			buf := make([]byte, 4096)
			next := 0
			for {
				n, _, err := unix.Recvfrom(fds[1], buf, unix.MSG_DONTWAIT)
				if err == unix.EAGAIN {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for next < len(names) && string(all[names[next]]) != string(buf[:n]) {
					next++
				}
				if next == len(names) {
					t.Fatalf("received a packet out of order or unknown: %q", buf[:n])
				}
				got = append(got, names[next])
				next++
			}
			if strings.Join(got, " ") != tt.pass {
				t.Errorf("passed %q, want %q", strings.Join(got, " "), tt.pass)
			}
		})
	}
}
