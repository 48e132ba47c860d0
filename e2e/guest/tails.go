package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The simulated Tails. A Tails stick is a GPT disk: partition 1 the system partition (ESP,
// FAT32 "Tails", the "medium"), partition 2 the Persistent Storage (LUKS2, ext4 "TailsData").
// The stick the guest "runs from" is set up like Tails does at boot (boot-tails): medium
// mounted read-only at MediumMount, Persistent Storage unlocked and mounted with acl at
// PersistenceMount, each feature of persistence.conf bind-mounted (or linked) in place.
const (
	mediumMount      = "/lib/live/mount/medium"
	persistenceMount = "/live/persistence/TailsData_unlocked"
	versionFile      = "/etc/amnesia/version"
	espType          = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	tailsDataType    = "8DA63339-0007-60C0-C436-083AC8230908"
	systemSize       = "160MiB"
	amnesiaUID       = 1000
	tpsUID, tpsGID   = 115, 122
)

// The persistence.conf of the simulated user: the features of a typical Tails user.
const userPersistenceConf = "/home/amnesia/Persistent\tsource=Persistent\n" +
	"/home/amnesia/.thunderbird\tsource=thunderbird\n" +
	"/home/amnesia/.gnupg\tsource=gnupg\n" +
	"/etc/NetworkManager/system-connections\tsource=nm-system-connections\n" +
	"/home/amnesia\tsource=dotfiles,link\n"

// A fresh Persistent Storage has the Persistent Folder only.
const freshPersistenceConf = "/home/amnesia/Persistent\tsource=Persistent\n"

// makeTails makes a Tails stick on DEVICE; the passphrase of its Persistent Storage comes on
// standard input.
//
//	make-tails [--version V | --medium-from DIR] [--data user|fresh] [--stick-files LANG] DEVICE
func makeTails(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("make-tails", flag.ContinueOnError)
	version := fs.String("version", "6.10 - 20241203", "the Tails version of a new system partition")
	mediumFrom := fs.String("medium-from", "", "copy the system partition from this directory instead")
	data := fs.String("data", "fresh", "Persistent Storage content: user (a realistic user's) or fresh (just created)")
	stickFiles := fs.String("stick-files", "", "give the system partition the files of this stick alone, as Tails 7 has them: "+
		"luks-header-backup (of this stick's LUKS header) and storage/ (Welcome Screen settings in this language)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: make-tails [flags] DEVICE")
	}
	dev := fs.Arg(0)
	pass, err := io.ReadAll(os.Stdin)
	if err != nil || len(pass) == 0 {
		return fmt.Errorf("the passphrase must come on standard input (%v)", err)
	}
	layout := fmt.Sprintf("label: gpt\n"+
		"start=2MiB, size=%s, type=%s, name=\"Tails\", attrs=\"RequiredPartition,LegacyBIOSBootable,GUID:60,62,63\"\n"+
		"type=%s, name=\"TailsData\"\n", systemSize, espType, tailsDataType)
	if err := runCmd(ctx, nil, "wipefs", "-a", "-q", dev); err != nil {
		return err
	}
	if err := runCmd(ctx, []byte(layout), "sfdisk", "-q", "--wipe", "always", "--wipe-partitions", "always", dev); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "udevadm", "settle"); err != nil {
		return err
	}
	sys, ps, err := partitions(ctx, dev)
	if err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "mkfs.vfat", "-F", "32", "-s", "1", "-n", "Tails", sys); err != nil {
		return err
	}
	err = onVfat(ctx, sys, func(mnt string) error {
		if *mediumFrom == "" {
			return writeMedium(ctx, mnt, *version)
		}
		// The release, not the files of that stick alone (TAILS-FACTS: a Tails 7 system
		// partition's luks-header-backup and storage/).
		if err := runCmd(ctx, nil, "cp", "-r", "--preserve=timestamps", *mediumFrom+"/.", mnt); err != nil {
			return err
		}
		for _, f := range []string{"luks-header-backup", "storage"} {
			if err := os.RemoveAll(filepath.Join(mnt, f)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Legacy BIOS boot, as Tails Installer installs it: syslinux on the system partition, and
	// the GPT MBR boot code at the start of the stick.
	// (The GPT MBR boot code is written at the end, while the Persistent Storage is open.)
	if err := runCmd(ctx, nil, syslinuxBin, "-d", "syslinux", sys); err != nil {
		return err
	}
	// As Tails 7 makes a Persistent Storage: LUKS2, argon2id with 4 iterations, and the least
	// memory Tails gives it (256 MiB; up to 1 GiB with more RAM), so that each of the unlocks of
	// a run takes seconds, not tens of seconds, in an emulated CPU. Tails 6 made the same since
	// 5.14 (and upgraded older LUKS1/PBKDF2 headers in place).
	if err := runCmd(ctx, pass, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2",
		"--pbkdf", "argon2id", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "262144", "--key-file", "-", ps); err != nil {
		return err
	}
	if *stickFiles != "" {
		if err := writeStickFiles(ctx, sys, ps, *stickFiles); err != nil {
			return err
		}
	}
	name := "e2e-new-" + filepath.Base(ps)
	if err := runCmd(ctx, pass, "cryptsetup", "open", "--key-file", "-", ps, name); err != nil {
		return err
	}
	defer runCmd(context.WithoutCancel(ctx), nil, "cryptsetup", "close", name)
	if err := runCmd(ctx, nil, "mkfs.ext4", "-q", "-L", "TailsData", "/dev/mapper/"+name); err != nil {
		return err
	}
	pmnt, err := os.MkdirTemp("", "ps-")
	if err != nil {
		return err
	}
	defer os.Remove(pmnt)
	if err := runCmd(ctx, nil, "mount", "-o", "acl", "/dev/mapper/"+name, pmnt); err != nil {
		return err
	}
	err = initPersistence(ctx, pmnt, *data)
	// The GPT MBR boot code goes to the whole disk while a partition of it is in use. When a
	// whole disk opened for writing is closed, udevd has the kernel re-read its partition table
	// (BLKRRPART), which removes and re-adds every partition for a moment: written before the
	// LUKS header, this made luksFormat fail with "Device /dev/sda2 does not exist" on a loaded
	// machine (bookworm leg). With a partition in use the kernel refuses the re-read (EBUSY) and
	// udevd only sends change events, as when the product's helper writes it (the backup's
	// TailsData is open then); settle lets udevd handle the close before the partition is freed.
	if err == nil {
		err = writeMBRCode(dev)
	}
	if err == nil {
		err = runCmd(ctx, nil, "udevadm", "settle")
	}
	if uerr := runCmd(ctx, nil, "umount", pmnt); err == nil {
		err = uerr
	}
	return err
}

// writeStickFiles gives the system partition sys the files of its stick alone, as a Tails 7
// stick has them: luks-header-backup, which Tails' Persistent Storage service writes before it
// upgrades the LUKS header of ps (a real header backup of ps, by cryptsetup), and storage/, the
// Welcome Screen's settings in the clear (since 7.4; the names of its files do not matter here:
// the product leaves the whole folder to its stick).
func writeStickFiles(ctx context.Context, sys, ps, lang string) error {
	return onVfat(ctx, sys, func(mnt string) error {
		if err := runCmd(ctx, nil, "cryptsetup", "luksHeaderBackup", ps, "--header-backup-file", filepath.Join(mnt, "luks-header-backup")); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(mnt, "storage"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(mnt, "storage", "welcome-screen.conf"), []byte("language="+lang+"\nkeyboard="+lang+"\n"), 0o644)
	})
}

// onVfat runs fn with the FAT file system of dev mounted read-write at a temporary folder,
// and unmounts it after, whatever fn returned.
func onVfat(ctx context.Context, dev string, fn func(mnt string) error) error {
	mnt, err := os.MkdirTemp("", "medium-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := runCmd(ctx, nil, "mount", "-t", "vfat", dev, mnt); err != nil {
		return err
	}
	err = fn(mnt)
	if uerr := runCmd(ctx, nil, "umount", mnt); err == nil {
		err = uerr
	}
	return err
}

// partitions returns the system and Persistent Storage partitions of dev.
func partitions(ctx context.Context, dev string) (string, string, error) {
	out, err := output(ctx, nil, "lsblk", "-lnpo", "NAME,TYPE", dev)
	if err != nil {
		return "", "", err
	}
	var parts []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == "part" {
			parts = append(parts, f[0])
		}
	}
	if len(parts) != 2 {
		return "", "", fmt.Errorf("%s has partitions %q, not 2", dev, parts)
	}
	return parts[0], parts[1], nil
}

// The kernel command line of the simulated Tails: Tails' own (live-boot's boot=live and the
// options of its syslinux and GRUB menus) without "quiet splash", which would hide the
// kernel's "Linux version" and "Command line:" lines (printed at KERN_NOTICE, above quiet's
// loglevel 4), plus the serial console that the boot check reads and the version, so that a
// boot shows which system partition booted.
const tailsKernelArgs = "boot=live config live-media=removable nopersistence noprompt timezone=Etc/UTC module=Tails console=ttyS0,115200"

// kernelArgs is the kernel command line of the medium of version (its first word, "6.10").
func kernelArgs(short string) string { return tailsKernelArgs + " tails_version=" + short }

// Boot files of Debian's packages that the simulated medium carries.
const (
	// grub-efi-amd64-bin: GRUB's x86_64-efi modules; grub-common: grub-mkimage.
	grubMkimage = "/usr/bin/grub-mkimage"
	// syslinux-common: the GPT MBR boot code that Tails Installer writes to the stick's first
	// 440 bytes and ships as utils/mbr/mbr.bin; syslinux: the installer (utils/linux/syslinux).
	gptMBR      = "/usr/lib/syslinux/mbr/gptmbr.bin"
	syslinuxBin = "/usr/bin/syslinux"
	mbrBootCode = 440
	// GRUB's EFI image sets $root to the partition it was loaded from (its device path). The
	// embedded config runs before the normal module's parser: no comments in it.
	grubEmbedded = "set prefix=($root)/EFI/BOOT\nconfigfile $prefix/grub.cfg\n"
	// efi_gop: the firmware's graphics for the kernel's efifb (the boot check's machine has no
	// display: GRUB says "no suitable video mode found" there and boots on).
	grubEFIModules = "part_gpt part_msdos fat normal configfile linux echo test efi_gop"
)

// writeMedium writes a system partition tree that boots as Tails' does, with the contents of
// version (the same version gives the same tree):
//   - live/vmlinuz: the guest's own Debian kernel (newest /boot/vmlinuz-*);
//   - live/initrd.img: a small initramfs made for this version (liveinit.go: about 4 MiB, where
//     Debian's own is 36 MiB; the partition must hold two versions during a system refresh);
//   - syslinux/ for legacy BIOS (make-tails installs syslinux on it and the GPT MBR boot code,
//     as Tails Installer does; the stick's partition has the LegacyBIOSBootable attribute);
//   - EFI/BOOT/BOOTX64.EFI for UEFI: GRUB, made by grub-mkimage from Debian's
//     grub-efi-amd64-bin (unsigned: OVMF without Secure Boot runs it), with an embedded config
//     that reads EFI/BOOT/grub.cfg from the same partition. grub-mkimage rather than
//     grub-mkstandalone: a 0.5 MiB image whose menu stays a file of the partition
//     (EFI/debian/grub/grub.cfg, as on Tails), so each version brings its own;
//   - the rest of Tails' tree with random contents derived from the version (the SquashFS).
//
// The whole takes about 19 MiB of the 160 MiB partition.
func writeMedium(ctx context.Context, root, version string) error {
	seed := sha256.Sum256([]byte(version))
	rnd := rand.New(rand.NewChaCha8(seed))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return string(b)
	}
	short := strings.Fields(version)[0]
	args := kernelArgs(short)
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		return errors.New("no kernel in /boot (the guest image has linux-image-amd64)")
	}
	slices.Sort(kernels)
	kernel, err := os.ReadFile(kernels[len(kernels)-1])
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	initBin, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	initrd, err := makeInitramfs(initBin, version)
	if err != nil {
		return fmt.Errorf("make the initramfs: %w", err)
	}
	efi, err := makeGrubEFI(ctx)
	if err != nil {
		return err
	}
	files := map[string]string{
		"EFI/BOOT/BOOTX64.EFI": string(efi),
		// No wait: the boot check boots each stick twice in an emulated CPU.
		"EFI/BOOT/grub.cfg":        "set timeout=0\nsource /EFI/debian/grub/grub.cfg\n",
		"EFI/debian/grub/grub.cfg": "menuentry 'Tails " + short + "' {\n  linux /live/vmlinuz " + args + "\n  initrd /live/initrd.img\n}\n",
		"live/filesystem.squashfs": random(6 << 20),
		"live/vmlinuz":             string(kernel),
		"live/initrd.img":          string(initrd),
		"live/Tails.module":        "filesystem.squashfs\n",
		// ldlinux (syslinux 6) reads syslinux/syslinux.cfg; no menu module (vesamenu.c32):
		// the one entry boots at once.
		"syslinux/syslinux.cfg": "default live\nprompt 0\ntimeout 0\ninclude /syslinux/live.cfg\n",
		"syslinux/live.cfg":     "label live\n  menu label Tails " + short + "\n  kernel /live/vmlinuz\n  append initrd=/live/initrd.img " + args + "\n",
		"isolinux/isolinux.cfg": "include ../syslinux/syslinux.cfg\n",
		"utils/linux/README":    "syslinux for Linux\n",
		".disk/info":            "Tails " + version + "\n",
		"doc/README":            "Tails " + short + "\n",
	}
	// The boot loader installer Tails ships, from Debian's syslinux: the helper installs the
	// boot loader with it. (syslinux/ldlinux.* are written by the installer itself: make-tails
	// runs it, as Tails Installer does.)
	for name, from := range map[string]string{
		"utils/linux/syslinux": syslinuxBin,
		"utils/mbr/mbr.bin":    gptMBR,
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			return fmt.Errorf("the guest image lacks Debian's syslinux: %w", err)
		}
		files[name] = string(b)
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeGrubEFI returns GRUB's UEFI loader for removable media (EFI/BOOT/BOOTX64.EFI), made by
// grub-mkimage with the embedded config grubEmbedded.
func makeGrubEFI(ctx context.Context) ([]byte, error) {
	dir, err := os.MkdirTemp("", "grub-efi-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "embedded.cfg")
	if err := os.WriteFile(cfg, []byte(grubEmbedded), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "BOOTX64.EFI")
	argv := append([]string{grubMkimage, "-O", "x86_64-efi", "-o", out, "-p", "/EFI/BOOT", "-c", cfg}, strings.Fields(grubEFIModules)...)
	if err := runCmd(ctx, nil, argv[0], argv[1:]...); err != nil {
		return nil, fmt.Errorf("make the UEFI loader (grub-common, grub-efi-amd64-bin): %w", err)
	}
	return os.ReadFile(out)
}

// writeMBRCode writes syslinux' GPT MBR boot code over the first 440 bytes of the disk dev, as
// Tails Installer does: SeaBIOS (any legacy BIOS) runs it, and it chain-loads the partition
// whose GPT attributes say LegacyBIOSBootable (syslinux' ldlinux.sys). The partition table,
// after byte 440, is left alone.
func writeMBRCode(dev string) error {
	code, err := os.ReadFile(gptMBR)
	if err != nil {
		return err
	}
	if len(code) != mbrBootCode {
		return fmt.Errorf("%s has %d bytes, not %d", gptMBR, len(code), mbrBootCode)
	}
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(code, 0); err != nil {
		f.Close()
		return fmt.Errorf("write the MBR boot code to %s: %w", dev, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// initPersistence gives a new Persistent Storage root what Tails gives it, and its content.
func initPersistence(ctx context.Context, root, data string) error {
	if err := os.Chown(root, 0, 0); err != nil {
		return err
	}
	if err := os.Chmod(root, 0o770); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "setfacl", "-m", "user:amnesia:--x", root); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(root, "lost+found"))
	conf := freshPersistenceConf
	if data == "user" {
		conf = userPersistenceConf
	}
	for _, name := range []string{"persistence.conf", "persistence.conf.bak"} {
		if err := writeOwned(filepath.Join(root, name), conf, 0o600, tpsUID, tpsGID); err != nil {
			return err
		}
	}
	if err := mkdirOwned(filepath.Join(root, "Persistent"), 0o700, amnesiaUID, amnesiaUID); err != nil {
		return err
	}
	switch data {
	case "fresh":
		return nil
	case "user":
		return fillUser(ctx, root)
	}
	return fmt.Errorf("unknown content %q", data)
}

// bootTails sets up the guest as Tails running from DEVICE (the passphrase on standard input).
func bootTails(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: boot-tails DEVICE")
	}
	pass, err := io.ReadAll(os.Stdin)
	if err != nil || len(pass) == 0 {
		return fmt.Errorf("the passphrase must come on standard input (%v)", err)
	}
	sys, ps, err := partitions(ctx, args[0])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(mediumMount, 0o755); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "mount", "-t", "vfat", "-o", "ro", sys, mediumMount); err != nil {
		return err
	}
	if err := setRunningVersion(mediumMount); err != nil {
		return err
	}
	if err := runCmd(ctx, pass, "cryptsetup", "open", "--key-file", "-", ps, "TailsData_unlocked"); err != nil {
		return err
	}
	if err := os.MkdirAll(persistenceMount, 0o755); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "mount", "-o", "acl", "/dev/mapper/TailsData_unlocked", persistenceMount); err != nil {
		return err
	}
	return activateFeatures(ctx, persistenceMount)
}

// upgradeMedium plays an upgrade of the running Tails to another version: its system partition
// (remounted read-write for the time being) gets the tree of that version, and
// /etc/amnesia/version says it.
//
//	upgrade-medium VERSION
func upgradeMedium(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: upgrade-medium VERSION")
	}
	if err := runCmd(ctx, nil, "mount", "-o", "remount,rw", mediumMount); err != nil {
		return err
	}
	err := writeMedium(ctx, mediumMount, args[0])
	if rerr := runCmd(ctx, nil, "mount", "-o", "remount,ro", mediumMount); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	return setRunningVersion(mediumMount)
}

// setRunningVersion writes /etc/amnesia/version as the running Tails' (from the squashfs on
// Tails; here from the medium's .disk/info, "Tails 6.10 - 20241203").
func setRunningVersion(medium string) error {
	b, err := os.ReadFile(filepath.Join(medium, ".disk/info"))
	if err != nil {
		return err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	v := strings.TrimSpace(strings.TrimPrefix(line, "Tails "))
	if err := os.MkdirAll(filepath.Dir(versionFile), 0o755); err != nil {
		return err
	}
	return os.WriteFile(versionFile, []byte(v+"\n"), 0o644)
}

// activateFeatures does what Tails' live-persist does with persistence.conf: bind-mount each
// feature folder on its destination, or link each of its files there ("link").
func activateFeatures(ctx context.Context, root string) error {
	f, err := os.Open(filepath.Join(root, "persistence.conf"))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dest, opts, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		var source string
		link := false
		for _, o := range strings.Split(opts, ",") {
			if s, ok := strings.CutPrefix(o, "source="); ok {
				source = s
			}
			link = link || o == "link"
		}
		src := filepath.Join(root, source)
		if link {
			if err := linkFiles(src, dest); err != nil {
				return err
			}
			continue
		}
		if _, err := os.Stat(src); err != nil {
			return err
		}
		if err := os.MkdirAll(dest, 0o700); err != nil {
			return err
		}
		if err := runCmd(ctx, nil, "mount", "--bind", src, dest); err != nil {
			return err
		}
	}
	return sc.Err()
}

// linkFiles links every file under src into dest, as live-persist's "link" option does.
func linkFiles(src, dest string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dest, rel)
		if info.IsDir() {
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			return os.Lchown(target, amnesiaUID, amnesiaUID)
		}
		os.Remove(target)
		if err := os.Symlink(p, target); err != nil {
			return err
		}
		return os.Lchown(target, amnesiaUID, amnesiaUID)
	})
}

func writeOwned(path, content string, mode os.FileMode, uid, gid int) error {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Lchown(path, uid, gid)
}

func mkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Lchown(path, uid, gid)
}
