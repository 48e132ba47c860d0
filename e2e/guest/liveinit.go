package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// The initramfs of the simulated Tails (live/initrd.img). Tails' own is live-boot's, which
// finds the stick and mounts its SquashFS; the simulated medium has no real SquashFS, so its
// initramfs holds this program as /init, which says which Tails version it belongs to on the
// console and powers the machine off. It is made per version (etc/tails-version inside it), so
// a system refresh changes live/initrd.img as a new Tails release does.

// initBanner starts the line that the initramfs' /init writes on the console.
const initBanner = "e2e initramfs: Tails "

// makeInitramfs returns a gzip-compressed cpio archive ("newc", what the kernel unpacks as an
// initramfs) holding initBin as /init, /etc/tails-version, and /dev/console (the kernel
// opens it for /init's standard streams; its own built-in archive has it too).
func makeInitramfs(initBin []byte, version string) ([]byte, error) {
	var buf bytes.Buffer
	// The same content gives the same bytes: no time in the gzip header, mtime 0 in the cpio.
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	cw := cpioWriter{w: zw}
	entries := []struct {
		name       string
		mode       uint32
		rmaj, rmin uint32
		data       []byte
	}{
		{"dev", syscall.S_IFDIR | 0o755, 0, 0, nil},
		{"dev/console", syscall.S_IFCHR | 0o600, 5, 1, nil},
		{"etc", syscall.S_IFDIR | 0o755, 0, 0, nil},
		{"etc/tails-version", syscall.S_IFREG | 0o644, 0, 0, []byte(version + "\n")},
		{"init", syscall.S_IFREG | 0o755, 0, 0, initBin},
	}
	for _, e := range entries {
		if err := cw.add(e.name, e.mode, e.rmaj, e.rmin, e.data); err != nil {
			return nil, err
		}
	}
	if err := cw.add("TRAILER!!!", 0, 0, 0, nil); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cpioWriter writes the "newc" format of the kernel's initramfs (Documentation/
// driver-api/early-userspace/buffer-format.rst): a 110-byte ASCII header, the name with its
// NUL, the data, each padded to 4 bytes.
type cpioWriter struct {
	w   io.Writer
	ino uint32
}

func (c *cpioWriter) add(name string, mode, rmaj, rmin uint32, data []byte) error {
	c.ino++
	nlink := uint32(1)
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	pad := func(n int) []byte { return make([]byte, (4-n%4)%4) }
	for _, b := range [][]byte{[]byte(hdr), []byte(name), {0}, pad(len(hdr) + len(name) + 1), data, pad(len(data))} {
		if _, err := c.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// liveInit is /init of the simulated Tails' initramfs (the kernel runs it as PID 1): it says
// on the console which Tails it belongs to and with which kernel arguments, then powers off.
// The kernel passes its unknown "key=value" arguments (boot=live, tails_version=...) to init
// as environment variables.
func liveInit() {
	version, err := os.ReadFile("/etc/tails-version")
	if err != nil {
		version = []byte("(unknown: " + err.Error() + ")")
	}
	var args []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "boot=") || strings.HasPrefix(kv, "tails_version=") {
			args = append(args, kv)
		}
	}
	fmt.Printf("%s%s started from its stick (%s)\n", initBanner, strings.TrimSpace(string(version)), strings.Join(args, " "))
	syscall.Sync()
	// PID 1 must not exit (the kernel would panic); power off, as live-boot's failure path
	// does not, but a test stick has nothing more to boot.
	if err := syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Printf("e2e initramfs: power off: %v\n", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
