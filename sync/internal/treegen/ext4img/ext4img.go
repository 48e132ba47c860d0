// Package ext4img makes ext4 file systems in image files and loop-mounts them with ACLs and user
// xattrs, like the Persistent Storage of a Tails stick, for the mirror's benchmark and demo. It
// shells out to mkfs.ext4, mount, umount and losetup (e2fsprogs, util-linux) and must run as root.
package ext4img

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Image is an ext4 file system in a sparse image file, mounted at MountPoint while Mounted.
type Image struct {
	Path       string // the image file
	MountPoint string // the directory it is mounted on
	Label      string
	Size       int64 // bytes
	Inodes     int   // 0 lets mkfs.ext4 choose
	Mounted    bool
}

// Create makes the image file (sparse, so unused space costs nothing), formats it and mounts it on
// mountPoint, which is created if needed.
func Create(ctx context.Context, path, mountPoint, label string, size int64, inodes int) (*Image, error) {
	im := &Image{Path: path, MountPoint: mountPoint, Label: label, Size: size, Inodes: inodes}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("size image %s: %w", path, err)
	}
	if err := os.MkdirAll(mountPoint, 0o755); err != nil {
		return nil, fmt.Errorf("create mount point: %w", err)
	}
	if err := im.format(ctx); err != nil {
		return nil, err
	}
	return im, im.Mount(ctx)
}

// format runs mkfs.ext4 with eager inode table and journal initialisation, so that no background
// ext4lazyinit thread writes to the image while something is being measured.
func (im *Image) format(ctx context.Context) error {
	args := []string{"-q", "-F", "-L", im.Label, "-E", "lazy_itable_init=0,lazy_journal_init=0"}
	if im.Inodes > 0 {
		args = append(args, "-N", fmt.Sprint(im.Inodes))
	}
	return run(ctx, "mkfs.ext4", append(args, im.Path)...)
}

// Mount loop-mounts the image with acl,user_xattr, as Tails mounts its Persistent Storage.
func (im *Image) Mount(ctx context.Context) error {
	if err := run(ctx, "mount", "-t", "ext4", "-o", "loop,acl,user_xattr", im.Path, im.MountPoint); err != nil {
		return err
	}
	im.Mounted = true
	return nil
}

// Reformat unmounts the image, makes a new empty file system on it and mounts it again.
func (im *Image) Reformat(ctx context.Context) error {
	if err := im.Unmount(); err != nil {
		return err
	}
	if err := im.format(ctx); err != nil {
		return err
	}
	return im.Mount(ctx)
}

// Unmount unmounts the image and detaches its loop device. It retries while the mount is busy
// (a killed child may still hold it for a moment), then detaches lazily, so that the file system
// goes away in any case. It does not take a context: clean-up must run after a cancellation too.
func (im *Image) Unmount() error {
	var errs []error
	if im.Mounted {
		err := run(context.Background(), "umount", im.MountPoint)
		for i := 0; err != nil && i < 10; i++ {
			time.Sleep(300 * time.Millisecond)
			err = run(context.Background(), "umount", im.MountPoint)
		}
		if err != nil {
			err = run(context.Background(), "umount", "-l", im.MountPoint)
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			im.Mounted = false
		}
	}
	// mount -o loop sets autoclear, so the loop device normally went with the mount; detach any
	// that is left (a lazy unmount, an earlier crash) so that no loop device leaks.
	errs = append(errs, im.detach())
	return errors.Join(errs...)
}

// detach detaches the loop devices still backed by the image file.
func (im *Image) detach() error {
	out, err := output("losetup", "-j", im.Path)
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		dev, _, ok := strings.Cut(line, ":")
		if ok && strings.HasPrefix(dev, "/dev/loop") {
			errs = append(errs, run(context.Background(), "losetup", "-d", dev))
		}
	}
	return errors.Join(errs...)
}

// Remove unmounts the image and deletes the image file and the mount point directory.
func (im *Image) Remove() error {
	err := im.Unmount()
	if im.Mounted {
		return err // never delete a directory that may still be a mounted file system
	}
	return errors.Join(err, os.Remove(im.Path), os.Remove(im.MountPoint))
}

// Used returns the bytes in use on the mounted file system, as df counts them.
func (im *Image) Used() (int64, error) {
	out, err := output("df", "--output=used", "-B1", im.MountPoint)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(out)
	var n int64
	_, err = fmt.Sscan(fields[len(fields)-1], &n)
	return n, err
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
