package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"tails-backup/e2e/proto"
)

// Logger receives the harness' progress lines (a test's t.Logf, the demo's narration...).
type Logger interface {
	Logf(format string, args ...any)
}

// VMConfig describes a guest to boot.
type VMConfig struct {
	Image   Image
	RunDir  string // per-run files: overlay, sockets, console log
	Payload string // the payload disk (BuildPayload)
	// BootDisk is the raw image of the Tails stick the guest runs from, a virtio disk whose
	// serial is tails-boot (the guest's udev rules give it Tails' boot device properties).
	BootDisk        string
	MemoryMiB, CPUs int
	Log             Logger
}

// VM is a running guest.
type VM struct {
	QMP     *QMP
	Guest   *Guest
	Accel   string // "kvm" or "tcg"
	Console string // path of the console log
	Boot    time.Duration

	cmd    *exec.Cmd
	exited chan struct{}
	stderr bytes.Buffer
}

// BootSerial is the serial of the boot disk, which the guest's udev rules match.
const BootSerial = "tails-boot"

// BootDiskID is the QEMU device id of the boot disk of the command line, for its hot-unplug.
const BootDiskID = "boot-disk"

// StartVM boots the guest and waits until its control channel answers.
func StartVM(ctx context.Context, cfg VMConfig) (*VM, error) {
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 3072
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return nil, err
	}
	overlay := filepath.Join(cfg.RunDir, "root.qcow2")
	os.Remove(overlay)
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", cfg.Image.Root, overlay).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img create: %w: %s", err, out)
	}
	accel := chooseAccel(ctx, cfg)
	qmpSock := filepath.Join(cfg.RunDir, "qmp.sock")
	ctlSock := filepath.Join(cfg.RunDir, "ctl.sock")
	console := filepath.Join(cfg.RunDir, "console.log")
	for _, p := range []string{qmpSock, ctlSock, console} {
		os.Remove(p)
	}
	args := append(accelArgs(accel),
		"-m", strconv.Itoa(cfg.MemoryMiB), "-smp", strconv.Itoa(cfg.CPUs),
		"-display", "none", "-no-reboot", "-nic", "none",
		"-kernel", cfg.Image.Kernel, "-initrd", cfg.Image.Initrd,
		"-append", "console=ttyS0,115200 root=/dev/vda rw panic=-1 systemd.show_status=1",
		// In this order: vda root, vdb payload, vdc the Tails boot stick.
		"-drive", "file="+overlay+",if=none,id=root,format=qcow2",
		"-device", "virtio-blk-pci,drive=root,serial=e2e-root",
		"-drive", "file="+cfg.Payload+",if=none,id=payload,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=payload,serial=e2e-payload",
		"-drive", "file="+cfg.BootDisk+",if=none,id=boot,format=raw",
		"-device", "virtio-blk-pci,drive=boot,serial="+BootSerial+",id="+BootDiskID,
		"-device", "qemu-xhci,id=xhci",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=ctl,path="+ctlSock+",server=on,wait=off",
		"-device", "virtserialport,chardev=ctl,name=e2e.ctl",
		"-qmp", "unix:"+qmpSock+",server=on,wait=off",
		"-serial", "file:"+console,
	)
	vm := &VM{Accel: accel, Console: console, exited: make(chan struct{})}
	vm.cmd = exec.Command("qemu-system-x86_64", args...)
	vm.cmd.Stderr = &vm.stderr
	// QEMU does not outlive the driver, even a killed one.
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := vm.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu-system-x86_64: %w", err)
	}
	go func() { vm.cmd.Wait(); close(vm.exited) }()
	fail := func(err error) (*VM, error) {
		vm.Stop()
		return nil, fmt.Errorf("%w (console: %s; qemu: %s)", err, console, vm.stderr.String())
	}
	if err := vm.waitSockets(ctx, qmpSock, ctlSock); err != nil {
		return fail(err)
	}
	var err error
	if vm.QMP, err = DialQMP(ctx, qmpSock); err != nil {
		return fail(err)
	}
	if vm.Guest, err = dialGuest(ctx, ctlSock); err != nil {
		return fail(err)
	}
	bootCtx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	if err := vm.waitGuest(bootCtx); err != nil {
		return fail(fmt.Errorf("the guest did not come up: %w", err))
	}
	vm.Boot = time.Since(start)
	vm.serveDebug(filepath.Join(cfg.RunDir, "debug.sock"))
	cfg.Log.Logf("guest up in %s (%s, %d MiB, %d CPUs)", round(vm.Boot), accel, cfg.MemoryMiB, cfg.CPUs)
	return vm, nil
}

// waitSockets waits for QEMU to create its sockets (no event tells it: short polls, bounded).
func (vm *VM) waitSockets(ctx context.Context, paths ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range paths {
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			select {
			case <-vm.exited:
				return errors.New("qemu exited")
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("qemu did not create %s", p)
			}
		}
	}
	return nil
}

// waitGuest sends a no-op until the guest agent answers. Requests wait in the channel until
// the guest opens its port, so each try is given a few seconds.
func (vm *VM) waitGuest(ctx context.Context) error {
	for {
		try, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := vm.Guest.Root(try, "true")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-vm.exited:
			return errors.New("qemu exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
	}
}

// Stop powers the guest off (QMP quit), killing QEMU if it does not exit in time.
func (vm *VM) Stop() {
	if vm.QMP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		vm.QMP.Execute(ctx, "quit", nil)
		cancel()
	}
	select {
	case <-vm.exited:
	case <-time.After(20 * time.Second):
		vm.cmd.Process.Kill()
		<-vm.exited
	}
	if vm.Guest != nil {
		vm.Guest.Close()
	}
	if vm.QMP != nil {
		vm.QMP.Close()
	}
}

func accelArgs(accel string) []string {
	if accel == "kvm" {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	return []string{"-accel", "tcg", "-cpu", "max"}
}

var (
	kvmOnce sync.Once
	kvmOK   bool
)

// chooseAccel returns "kvm" where a probe boot under KVM reaches the initramfs (on some
// machines the guest hangs right after the BIOS), "tcg" otherwise; E2E_ACCEL=tcg|kvm forces
// one. The probe runs once per process.
func chooseAccel(ctx context.Context, cfg VMConfig) string {
	switch os.Getenv("E2E_ACCEL") {
	case "tcg":
		return "tcg"
	case "kvm":
		return "kvm"
	}
	kvmOnce.Do(func() {
		start := time.Now()
		kvmOK = probeKVM(ctx, cfg)
		cfg.Log.Logf("KVM probe: usable=%v (%s)", kvmOK, round(time.Since(start)))
	})
	if kvmOK {
		return "kvm"
	}
	return "tcg"
}

func probeKVM(ctx context.Context, cfg VMConfig) bool {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return false
	} else {
		f.Close()
	}
	log := filepath.Join(cfg.RunDir, "kvm-probe.log")
	os.Remove(log)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "512",
		"-display", "none", "-no-reboot", "-nodefaults", "-kernel", cfg.Image.Kernel, "-initrd", cfg.Image.Initrd,
		"-append", "console=ttyS0 panic=-1 root=/dev/nonexistent rootdelay=1", "-serial", "file:"+log)
	if err := cmd.Start(); err != nil {
		return false
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// The initramfs' first words mean the kernel ran userspace. The console log is a file:
	// short polls until the deadline.
	for ctx.Err() == nil {
		if b, _ := os.ReadFile(log); bytes.Contains(b, []byte("Run /init as init process")) || bytes.Contains(b, []byte("Loading, please wait")) {
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}

// serveDebug lets a person look into the running guest while a test runs: each connection to
// the unix socket path sends one request line (proto.Request as JSON) and gets the response,
// e.g. echo '{"argv":["journalctl","-n","50"]}' | socat - UNIX-CONNECT:.../debug.sock
func (vm *VM) serveDebug(path string) {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return
	}
	go func() {
		<-vm.exited
		l.Close()
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadBytes('\n')
				var req proto.Request
				if err != nil || json.Unmarshal(line, &req) != nil {
					return
				}
				resp, err := vm.Guest.Exec(context.Background(), req)
				if err != nil {
					resp.Error = err.Error()
				}
				json.NewEncoder(c).Encode(resp)
			}()
		}
	}()
}
