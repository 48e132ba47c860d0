package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The boot check: one Tails stick image booted alone in a second QEMU, from its own boot
// loader (syslinux under SeaBIOS, GRUB's BOOTX64.EFI under OVMF), its serial console read
// until the kernel and the stick's initramfs say they started.

// Firmware is the firmware of a boot check.
type Firmware string

const (
	// BIOS is SeaBIOS, QEMU's default firmware: legacy boot through the GPT MBR boot code and
	// syslinux.
	BIOS Firmware = "BIOS"
	// UEFI is OVMF (Debian's ovmf): EFI/BOOT/BOOTX64.EFI of the stick's ESP.
	UEFI Firmware = "UEFI"
)

// ovmfDir holds Debian's OVMF builds (package ovmf).
const ovmfDir = "/usr/share/OVMF"

// ovmfPairs are the OVMF firmware code and variable store templates, in order of preference:
// the 4 MiB build (bookworm and trixie) then the 2 MiB one (bookworm only). Neither is the
// Secure Boot build: the stick's GRUB is Debian's unsigned grub-efi-amd64-bin.
var ovmfPairs = [][2]string{
	{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"},
	{"OVMF_CODE.fd", "OVMF_VARS.fd"},
}

// initBanner is what the simulated Tails' initramfs (/init, e2e/guest/liveinit.go) writes on
// the console: "e2e initramfs: Tails 6.10 - 20241203 started from its stick (...)".
const initBanner = "e2e initramfs: Tails "

// BootCheck is one boot of a stick image.
type BootCheck struct {
	Image  string // the stick's image file
	Format string // of Image: "raw" (the default) or "qcow2"
	// Shared says that another QEMU (the test guest) has Image open for writing: QEMU's image
	// lock is not taken (file.locking=off; the boot writes nothing to Image).
	Shared   bool
	Firmware Firmware
	// Version is the Tails version (its first word, "6.11") that the kernel command line
	// (tails_version=) and the initramfs must name.
	Version string
	Accel   string        // "kvm" or "tcg" (the default)
	Console string        // the file the serial console is copied to
	Timeout time.Duration // from QEMU's start to the initramfs' line
}

// BootResult tells what a boot showed and when.
type BootResult struct {
	Kernel      time.Duration // from QEMU's start to the kernel's "Linux version" line
	Init        time.Duration // to the initramfs' line
	LinuxBanner string        // the "Linux version ..." line
	CommandLine string        // the kernel command line
}

// Release is the kernel's release ("6.1.0-50-amd64") from its version line.
func (r BootResult) Release() string {
	if f := strings.Fields(r.LinuxBanner); len(f) >= 3 {
		return f[2]
	}
	return r.LinuxBanner
}

// bootWatch follows a boot's serial console line by line.
type bootWatch struct {
	version string
	res     BootResult
	sawBoot bool // "Linux version"
	sawCmd  bool // "Command line:"
	tail    []string
}

// tailLines is how many of the last console lines a failed boot reports.
const tailLines = 25

// line takes one console line seen at `at` after QEMU's start; it returns true when the boot
// is proven (the kernel's version line, its command line naming boot=live, the serial console
// and this version, then the initramfs of this version), an error when the console shows
// another system booting.
func (b *bootWatch) line(l string, at time.Duration) (bool, error) {
	l = strings.TrimRight(l, "\r\n")
	b.tail = append(b.tail, l)
	if len(b.tail) > tailLines {
		b.tail = b.tail[len(b.tail)-tailLines:]
	}
	// The kernel's lines start with its time stamp: "[    0.000000] Linux version 6.1.0-...".
	// The firmware's escape sequences may come before them on the same line.
	if i := strings.Index(l, "] Linux version "); i >= 0 && !b.sawBoot {
		b.sawBoot = true
		b.res.Kernel = at
		b.res.LinuxBanner = l[i+2:]
	}
	if i := strings.Index(l, "] Command line: "); i >= 0 && b.sawBoot && !b.sawCmd {
		b.sawCmd = true
		b.res.CommandLine = l[i+len("] Command line: "):]
		args := strings.Fields(b.res.CommandLine)
		for _, want := range []string{"boot=live", "tails_version=" + b.version} {
			if !containsString(args, want) {
				return false, fmt.Errorf("the kernel command line %q lacks %s", b.res.CommandLine, want)
			}
		}
		if !hasPrefixIn(args, "console=ttyS0") {
			return false, fmt.Errorf("the kernel command line %q has no console=ttyS0", b.res.CommandLine)
		}
	}
	if i := strings.Index(l, initBanner); i >= 0 {
		if !b.sawCmd {
			return false, fmt.Errorf("the initramfs started but the console showed no kernel command line: %q", l)
		}
		v, _, _ := strings.Cut(l[i+len(initBanner):], " ")
		if v != b.version {
			return false, fmt.Errorf("the initramfs of Tails %s started, not of %s: %q", v, b.version, l)
		}
		b.res.Init = at
		return true, nil
	}
	return false, nil
}

// lastLines returns the last console lines, for an error.
func (b *bootWatch) lastLines() string {
	return strings.Join(b.tail, "\n")
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasPrefixIn(list []string, prefix string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, prefix) {
			return true
		}
	}
	return false
}

// BootStick boots bc.Image alone (no other disk) as a USB stick on an XHCI controller, with
// QEMU's default machine and bc.Firmware, and reads its serial console until the boot is
// proven (see bootWatch.line) or bc.Timeout passes; then QEMU is killed. The image is not
// changed: the stick's writes go to a temporary overlay (snapshot=on).
func BootStick(ctx context.Context, bc BootCheck) (BootResult, error) {
	if bc.Format == "" {
		bc.Format = "raw"
	}
	if bc.Timeout == 0 {
		bc.Timeout = 4 * time.Minute
	}
	drive := "file=" + bc.Image + ",format=" + bc.Format + ",if=none,id=stick,snapshot=on"
	if bc.Shared {
		drive += ",file.locking=off"
	}
	args := append(accelArgs(bc.Accel),
		"-m", "1024", "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot",
		"-serial", "stdio",
		"-drive", drive,
		"-device", "qemu-xhci,id=xhci",
		"-device", "usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=0",
	)
	if bc.Firmware == UEFI {
		code, vars, err := ovmfFiles()
		if err != nil {
			return BootResult{}, err
		}
		// Each boot gets its own copy of the variable store: OVMF writes its boot entries there.
		varsCopy := bc.Console + ".vars.fd"
		if err := copyFile(vars, varsCopy); err != nil {
			return BootResult{}, err
		}
		defer os.Remove(varsCopy)
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	}
	console, err := os.Create(bc.Console)
	if err != nil {
		return BootResult{}, err
	}
	defer console.Close()
	ctx, cancel := context.WithTimeout(ctx, bc.Timeout)
	defer cancel()
	cmd := exec.Command("qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return BootResult{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return BootResult{}, fmt.Errorf("start qemu-system-x86_64: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	type consoleLine struct {
		text string
		at   time.Duration
	}
	lines := make(chan consoleLine)
	readDone := make(chan error, 1)
	go func() {
		r := bufio.NewReader(io.TeeReader(out, console))
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				select {
				case lines <- consoleLine{l, time.Since(start)}:
				case <-ctx.Done():
					readDone <- ctx.Err()
					return
				}
			}
			if err != nil {
				readDone <- err
				return
			}
		}
	}()
	w := &bootWatch{version: bc.Version}
	for {
		select {
		case l := <-lines:
			done, err := w.line(l.text, l.at)
			if err != nil {
				return w.res, fmt.Errorf("%s boot of %s: %w; last console lines:\n%s", bc.Firmware, filepath.Base(bc.Image), err, w.lastLines())
			}
			if done {
				return w.res, nil
			}
		case err := <-readDone:
			// QEMU closed the console: it exited (a firmware that found nothing to boot, or
			// the kernel powering off early).
			cmd.Wait()
			return w.res, fmt.Errorf("%s boot of %s: QEMU exited after %s before the boot was proven (%v; qemu: %s); last console lines:\n%s",
				bc.Firmware, filepath.Base(bc.Image), round(time.Since(start)), err, strings.TrimSpace(stderr.String()), w.lastLines())
		case <-ctx.Done():
			return w.res, fmt.Errorf("%s boot of %s: not proven within %s (kernel line seen: %v, command line seen: %v); last console lines:\n%s",
				bc.Firmware, filepath.Base(bc.Image), bc.Timeout, w.sawBoot, w.sawCmd, w.lastLines())
		}
	}
}

// ovmfFiles returns the paths of OVMF's code and variable store template.
func ovmfFiles() (string, string, error) {
	for _, p := range ovmfPairs {
		code, vars := filepath.Join(ovmfDir, p[0]), filepath.Join(ovmfDir, p[1])
		if _, err := os.Stat(code); err != nil {
			continue
		}
		if _, err := os.Stat(vars); err != nil {
			continue
		}
		return code, vars, nil
	}
	return "", "", errors.New("no OVMF firmware in " + ovmfDir + ": install Debian's ovmf (.ci/deps e2e)")
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// BootFirmwares are the firmwares each stick is booted with: a legacy BIOS computer and a
// UEFI one (Tails supports both; a stick that boots only one way is a broken backup for a
// user whose computer is the other kind).
var BootFirmwares = []Firmware{BIOS, UEFI}

// ScenarioBackupBoots (13): "if the first stick dies, boot the backup". Each firmware boots,
// alone in a second QEMU, first this Tails' own stick (the control: if it does not boot, the
// check is broken, not the backup), then the backup, and the kernel command line and the
// initramfs must name the running Tails' version. TestE2E runs it after create and again
// after the system refresh (scenario 9), when the backup must boot the new version.
func (w *World) ScenarioBackupBoots(ctx context.Context) error {
	full, err := w.G.Root(ctx, "cat", "/etc/amnesia/version")
	if err != nil {
		return err
	}
	version := strings.Fields(full)[0]
	// The running stick's image is open for writing in the test guest: read it only while
	// its system partition is mounted read-only there (Tails mounts it so), after the guest
	// flushed what it wrote; its Persistent Storage (partition 2), which the guest keeps
	// writing, plays no part in the boot.
	opts, err := w.G.Root(ctx, "findmnt", "-n", "-o", "OPTIONS", mediumMount)
	if err != nil {
		return err
	}
	if o, _, _ := strings.Cut(strings.TrimSpace(opts), ","); o != "ro" {
		return fmt.Errorf("this Tails' system partition is mounted %q, not read-only: its stick cannot be booted consistently meanwhile", strings.TrimSpace(opts))
	}
	if _, err := w.G.Root(ctx, "sync"); err != nil {
		return err
	}
	backup := w.Sticks[StickBackup]
	// The backup is booted alone, unplugged from the guest.
	if err := w.Unplug(ctx, backup); err != nil {
		return err
	}
	sticks := []struct {
		name   string
		file   string
		format string
		shared bool
	}{
		{"this Tails' stick", w.BootDisk, "raw", true},
		{"the backup", backup.File, backup.Format, false},
	}
	took := map[Firmware]time.Duration{}
	for _, fw := range BootFirmwares {
		for _, st := range sticks {
			res, err := BootStick(ctx, BootCheck{
				Image: st.file, Format: st.format, Shared: st.shared, Firmware: fw, Version: version,
				Accel:   w.VM.Accel,
				Console: filepath.Join(w.Dir, fmt.Sprintf("boot-%s-%s-%s.log", filepath.Base(st.file), fw, version)),
			})
			if err != nil {
				if st.shared {
					return fmt.Errorf("the control failed, this Tails' own stick does not boot (the check is broken): %w", err)
				}
				return err
			}
			w.Log.Logf("timing: boot %s (Tails %s) with %s: kernel line after %s, its initramfs after %s (Linux %s; command line: %s)",
				st.name, version, fw, round(res.Kernel), round(res.Init), res.Release(), res.CommandLine)
			if !st.shared {
				took[fw] = res.Kernel
			}
		}
	}
	w.Say.Logf("The backup boots on its own: Tails %s starts its Linux %s after power-on on a legacy BIOS computer, %s on a UEFI one (your own stick boots too).",
		version, round(took[BIOS]), round(took[UEFI]))
	return nil
}
