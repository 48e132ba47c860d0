package e2e

import (
	"strings"
	"testing"
	"time"
)

// Console transcripts as SeaBIOS + syslinux and OVMF + GRUB show them (shortened from real
// boots of the simulated Tails stick).
const (
	seabiosBoot = "SeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n" +
		"Booting from Hard Disk...\r\n" +
		"[    0.000000] Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1\r\n" +
		"[    0.000000] Command line: BOOT_IMAGE=/live/vmlinuz initrd=/live/initrd.img boot=live config module=Tails console=ttyS0,115200 tails_version=6.11\r\n" +
		"[    4.576889] Run /init as init process\r\n" +
		"e2e initramfs: Tails 6.11 - 20250107 started from its stick (boot=live tails_version=6.11)\r\n"
	ovmfBoot = "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001 \"UEFI QEMU QEMU USB HARDDRIVE\"\r\n" +
		"\x1b[0m\x1b[2J[    0.000000] Linux version 6.12.74+deb13-amd64 (debian-kernel@lists.debian.org)\n" +
		"[    0.000000] Command line: BOOT_IMAGE=/live/vmlinuz boot=live console=ttyS0,115200 tails_version=6.11\n" +
		"e2e initramfs: Tails 6.11 - 20250107 started from its stick (boot=live tails_version=6.11)\n"
)

func TestBootWatch(t *testing.T) {
	tests := []struct {
		name, console, version string
		done                   bool
		err                    string // in the error, "" for none
		banner                 string // LinuxBanner's start
		release                string // its Release()
	}{
		{"SeaBIOS and syslinux", seabiosBoot, "6.11", true, "", "Linux version 6.1.0-50-amd64", "6.1.0-50-amd64"},
		{"OVMF and GRUB, escape sequences before the kernel's line", ovmfBoot, "6.11", true, "", "Linux version 6.12.74+deb13-amd64", "6.12.74+deb13-amd64"},
		{"the old version boots after a refresh", seabiosBoot, "6.10", false, "lacks tails_version=6.10", "Linux version 6.1.0", ""},
		{"a prefix of the version is not the version", strings.ReplaceAll(seabiosBoot, "6.11", "6.1"), "6.11", false, "lacks tails_version=6.11", "Linux version", ""},
		{"no serial console on the command line", strings.Replace(seabiosBoot, " console=ttyS0,115200", "", 1), "6.11", false, "no console=ttyS0", "Linux version", ""},
		{"the initramfs of another version", strings.Replace(seabiosBoot, "Tails 6.11 - 20250107", "Tails 6.10 - 20241203", 1), "6.11", false, "of Tails 6.10 started, not of 6.11", "Linux version", ""},
		{"an initramfs line without the kernel's", "e2e initramfs: Tails 6.11 - x started from its stick\n", "6.11", false, "no kernel command line", "", ""},
		{"the kernel starts but no initramfs yet", seabiosBoot[:strings.Index(seabiosBoot, "[    4.57")], "6.11", false, "", "Linux version 6.1.0-50-amd64", ""},
		{"the firmware finds nothing to boot", "SeaBIOS\r\nBooting from Hard Disk...\r\nBoot failed: not a bootable disk\r\n", "6.11", false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &bootWatch{version: tt.version}
			var done bool
			var err error
			kernelAt := time.Duration(-1)
			for i, l := range strings.SplitAfter(tt.console, "\n") {
				if l == "" {
					continue
				}
				if strings.Contains(l, "] Linux version") {
					kernelAt = time.Duration(i) * time.Second
				}
				if done, err = w.line(l, time.Duration(i)*time.Second); done || err != nil {
					break
				}
			}
			if done != tt.done {
				t.Errorf("done = %v, want %v", done, tt.done)
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error = %v, want one with %q", err, tt.err)
			}
			if tt.release != "" && w.res.Release() != tt.release {
				t.Errorf("Release() = %q, want %q", w.res.Release(), tt.release)
			}
			if !strings.HasPrefix(w.res.LinuxBanner, tt.banner) {
				t.Errorf("LinuxBanner = %q, want it to start with %q", w.res.LinuxBanner, tt.banner)
			}
			if tt.done && (w.res.Kernel != kernelAt || w.res.Init <= w.res.Kernel) {
				t.Errorf("times: kernel %s, init %s; want the kernel line's (%s), then later the initramfs'", w.res.Kernel, w.res.Init, kernelAt)
			}
		})
	}
}

func TestBootWatchKeepsTheLastLines(t *testing.T) {
	w := &bootWatch{version: "6.11"}
	for i := range 100 {
		w.line("firmware line "+strings.Repeat("x", i%3)+"\r\n", 0)
	}
	got := strings.Split(w.lastLines(), "\n")
	if len(got) != tailLines || strings.ContainsAny(w.lastLines(), "\r") {
		t.Errorf("lastLines has %d lines (want %d) without CR: %q", len(got), tailLines, w.lastLines())
	}
}
