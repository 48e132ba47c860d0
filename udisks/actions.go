package udisks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// DefaultWait bounds the wait for udisks to publish the result of an action (e.g.
// the cleartext filesystem after Unlock) when ctx has no deadline.
const DefaultWait = 2 * time.Minute

// options returns an a{sv} with auth.no_user_interaction set: the agent never lets
// udisks start a polkit dialog of its own.
func options(kv ...any) map[string]dbus.Variant {
	m := map[string]dbus.Variant{"auth.no_user_interaction": dbus.MakeVariant(true)}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = dbus.MakeVariant(kv[i+1])
	}
	return m
}

func withDefaultWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultWait)
}

// call runs method on path with obj.CallWithContext while w watches udisks. If the
// object disappears during the call (unplugged), the call is abandoned with
// ErrDeviceGone, unless goneOK. It returns the reply body and the latest state seen.
func (c *Client) call(ctx context.Context, w *Watcher, op string, path dbus.ObjectPath, method string, goneOK bool, args ...any) ([]any, *Snapshot, error) {
	last := w.Initial()
	if !goneOK && last.Object(path) == nil {
		return nil, last, &Error{Op: op, Path: path, Kind: ErrDeviceGone}
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan *dbus.Call, 1)
	obj := c.conn.Object(BusName, path)
	go func() { done <- obj.CallWithContext(callCtx, method, 0, args...) }()
	events := w.Events()
	gone := false
	for {
		select {
		case call := <-done:
			if call.Err != nil {
				if gone {
					return nil, last, &Error{Op: op, Path: path, Kind: ErrDeviceGone, Err: call.Err}
				}
				return nil, last, classify(op, path, call.Err)
			}
			return call.Body, last, nil
		case ev, ok := <-events:
			if !ok {
				events = nil // watcher stopped (ctx ended): the call ends with ctx too
				continue
			}
			last = ev.Snapshot
			if !goneOK && !gone && last.Object(path) == nil {
				c.log.WithField("object", path).Warn(op + ": the device disappeared during the call")
				gone = true
				cancel()
			}
		}
	}
}

// act is call() with its own watcher.
func (c *Client) act(ctx context.Context, op string, path dbus.ObjectPath, method string, goneOK bool, args ...any) ([]any, error) {
	w, err := c.Watch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, path, err)
	}
	defer w.Close()
	body, _, err := c.call(ctx, w, op, path, method, goneOK, args...)
	return body, err
}

func (c *Client) wait(ctx context.Context, w *Watcher, from *Snapshot, op string, path dbus.ObjectPath, cond func(*Snapshot) (bool, error)) (*Snapshot, error) {
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	s, err := w.waitFrom(ctx, from, cond)
	if err != nil {
		var ue *Error
		if errors.As(err, &ue) {
			return s, err
		}
		if errors.Is(err, ErrDeviceGone) {
			return s, &Error{Op: op, Path: path, Kind: ErrDeviceGone}
		}
		return s, &Error{Op: op, Path: path, Err: err}
	}
	return s, nil
}

func objectPath(body []any) (dbus.ObjectPath, error) {
	if len(body) == 1 {
		if p, ok := body[0].(dbus.ObjectPath); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("unexpected reply %v", body)
}

// Unlock opens the LUKS block at luks with passphrase and waits (watching, bounded
// by ctx or DefaultWait) until its cleartext object has its Filesystem interface.
// The passphrase only travels as a D-Bus string argument; it is never logged.
func (c *Client) Unlock(ctx context.Context, luks dbus.ObjectPath, passphrase string) (dbus.ObjectPath, error) {
	return c.unlock(ctx, luks, passphrase, options())
}

// UnlockWithKey is Unlock with a key instead of a passphrase: udisks2 takes it in the option
// keyfile_contents (the exact bytes, unlike the passphrase string) and then ignores the
// passphrase argument. It travels only as that D-Bus argument; it is never logged.
func (c *Client) UnlockWithKey(ctx context.Context, luks dbus.ObjectPath, key []byte) (dbus.ObjectPath, error) {
	return c.unlock(ctx, luks, "", options("keyfile_contents", key))
}

func (c *Client) unlock(ctx context.Context, luks dbus.ObjectPath, passphrase string, opts map[string]dbus.Variant) (dbus.ObjectPath, error) {
	log := c.log.WithField("object", luks)
	log.Debug("unlock")
	w, err := c.Watch(ctx)
	if err != nil {
		return "", fmt.Errorf("unlock %s: %w", luks, err)
	}
	defer w.Close()
	body, last, err := c.call(ctx, w, opUnlock, luks, IfaceEncrypted+".Unlock", false, passphrase, opts)
	if err != nil {
		return "", err
	}
	clear, err := objectPath(body)
	if err != nil {
		return "", fmt.Errorf("unlock %s: %w", luks, err)
	}
	if _, err := c.wait(ctx, w, last, "wait for the unlocked filesystem of", luks, func(s *Snapshot) (bool, error) {
		if s.Object(luks) == nil {
			return false, ErrDeviceGone
		}
		o := s.Object(clear)
		return o != nil && o.Filesystem != nil, nil
	}); err != nil {
		return clear, err
	}
	log.WithField("cleartext", clear).Info("unlocked")
	return clear, nil
}

// UnlockOrReuse is Unlock, except that a device already unlocked (ErrAlreadyUnlocked)
// is not an error: its existing cleartext device is returned with reused true.
func (c *Client) UnlockOrReuse(ctx context.Context, luks dbus.ObjectPath, passphrase string) (clear dbus.ObjectPath, reused bool, err error) {
	clear, err = c.Unlock(ctx, luks, passphrase)
	if !errors.Is(err, ErrAlreadyUnlocked) {
		return clear, false, err
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	s, werr := c.WaitFor(ctx, func(s *Snapshot) (bool, error) {
		if s.Object(luks) == nil {
			return false, ErrDeviceGone
		}
		ct := s.Cleartext(luks)
		return ct != nil && ct.Filesystem != nil, nil
	})
	if werr != nil {
		return "", false, fmt.Errorf("reuse the cleartext device of %s: %w", luks, errors.Join(werr, err))
	}
	c.log.WithField("object", luks).Info("already unlocked; reusing its cleartext device")
	return s.Cleartext(luks).Path, true, nil
}

// Lock closes the LUKS block at luks (its cleartext filesystem must be unmounted).
func (c *Client) Lock(ctx context.Context, luks dbus.ObjectPath) error {
	c.log.WithField("object", luks).Debug("lock")
	_, err := c.act(ctx, opLock, luks, IfaceEncrypted+".Lock", false, options())
	return err
}

// MountOptions are the mount options the agent uses: nothing set-uid, no device nodes.
const MountOptions = "nosuid,nodev"

// ReadOnlyMountOptions are MountOptions for a stick that is only read (the backup of a restore
// or a verify): a read-write mount of ext4 changes the stick even when no file is written (the
// superblock's mount count, times and last mount point, access times), and on Tails 7 a unit
// bound to /media/amnesia/TailsData changes the root's ACL as soon as it is mounted there.
const ReadOnlyMountOptions = MountOptions + ",ro"

// Mount mounts the filesystem at fs with MountOptions and returns the mount path.
func (c *Client) Mount(ctx context.Context, fs dbus.ObjectPath) (string, error) {
	return c.mount(ctx, fs, MountOptions)
}

// MountReadOnly is Mount with ReadOnlyMountOptions.
func (c *Client) MountReadOnly(ctx context.Context, fs dbus.ObjectPath) (string, error) {
	return c.mount(ctx, fs, ReadOnlyMountOptions)
}

func (c *Client) mount(ctx context.Context, fs dbus.ObjectPath, opts string) (string, error) {
	return c.mountWith(ctx, fs, opts, options("options", opts))
}

func (c *Client) mountWith(ctx context.Context, fs dbus.ObjectPath, opts string, args map[string]dbus.Variant) (string, error) {
	body, err := c.act(ctx, opMount, fs, IfaceFilesystem+".Mount", false, args)
	if err != nil {
		return "", err
	}
	if len(body) != 1 {
		return "", fmt.Errorf("mount %s: unexpected reply %v", fs, body)
	}
	dir, ok := body[0].(string)
	if !ok {
		return "", fmt.Errorf("mount %s: unexpected reply %v", fs, body)
	}
	c.log.WithField("object", fs).WithField("mount", dir).WithField("options", opts).Info("mounted")
	return dir, nil
}

// MountAs is Mount by root on behalf of user (udisks2 ≥ 2.10's option as-user): udisks mounts
// it where it would for that user (/media/USER/LABEL) and records that user as the one who
// mounted it, so that user may unmount it. Older udisks2 ignore the option (and mount it as
// the caller): check DaemonVersion first.
func (c *Client) MountAs(ctx context.Context, fs dbus.ObjectPath, user string) (string, error) {
	return c.mountWith(ctx, fs, MountOptions, options("options", MountOptions, "as-user", user))
}

// MountOrReuse is Mount, except that an already mounted filesystem returns its first
// mount point with reused true.
func (c *Client) MountOrReuse(ctx context.Context, fs dbus.ObjectPath) (dir string, reused bool, err error) {
	return c.mountOrReuse(ctx, fs, MountOptions)
}

// MountReadOnlyOrReuse is MountOrReuse with ReadOnlyMountOptions; a filesystem already
// mounted (by the user, read-write or not) is reused as it is.
func (c *Client) MountReadOnlyOrReuse(ctx context.Context, fs dbus.ObjectPath) (dir string, reused bool, err error) {
	return c.mountOrReuse(ctx, fs, ReadOnlyMountOptions)
}

func (c *Client) mountOrReuse(ctx context.Context, fs dbus.ObjectPath, opts string) (dir string, reused bool, err error) {
	dir, err = c.mount(ctx, fs, opts)
	if !errors.Is(err, ErrAlreadyMounted) {
		return dir, false, err
	}
	s, serr := c.GetSnapshot(ctx)
	if serr != nil {
		return "", false, errors.Join(err, serr)
	}
	if o := s.Object(fs); o != nil && o.Filesystem != nil && len(o.Filesystem.MountPoints) > 0 {
		return o.Filesystem.MountPoints[0], true, nil
	}
	return "", false, err
}

// Unmount unmounts the filesystem at fs.
func (c *Client) Unmount(ctx context.Context, fs dbus.ObjectPath) error {
	_, err := c.act(ctx, opUnmount, fs, IfaceFilesystem+".Unmount", false, options())
	if err == nil {
		c.log.WithField("object", fs).Info("unmounted")
	}
	return err
}

// PowerOff safely powers off the drive at drive (its filesystems must be unmounted
// and its LUKS devices locked). The drive disappearing during the call is expected.
func (c *Client) PowerOff(ctx context.Context, drive dbus.ObjectPath) error {
	_, err := c.act(ctx, opPowerOff, drive, IfaceDrive+".PowerOff", true, options())
	if err == nil {
		c.log.WithField("object", drive).Info("powered off")
	}
	return err
}

// FormatOptions are the options of Block.Format the project uses. Passphrase, when
// set, makes udisks create LUKS (EncryptType "luks1" or "luks2") with the filesystem
// inside, left unlocked. Label labels the filesystem, not the LUKS header: udisks
// 2.9 has no way to set a LUKS2 label (no Encrypted.SetLabel, no Format option).
type FormatOptions struct {
	Label       string
	Passphrase  string
	EncryptType string
	// Erase is udisks' "erase" option ("zero", ...); blank for none.
	Erase string
}

func (o FormatOptions) variants() map[string]dbus.Variant {
	m := options()
	if o.Label != "" {
		m["label"] = dbus.MakeVariant(o.Label)
	}
	if o.Passphrase != "" {
		m["encrypt.passphrase"] = dbus.MakeVariant(o.Passphrase)
		if o.EncryptType != "" {
			m["encrypt.type"] = dbus.MakeVariant(o.EncryptType)
		}
	}
	if o.Erase != "" {
		m["erase"] = dbus.MakeVariant(o.Erase)
	}
	return m
}

// Format formats the block at block with typ ("gpt", "dos", "ext4", "vfat", "empty",
// ...). For a partition table it waits until the PartitionTable interface is seen.
func (c *Client) Format(ctx context.Context, block dbus.ObjectPath, typ string, o FormatOptions) error {
	c.log.WithField("object", block).WithField("type", typ).Info("format")
	w, err := c.Watch(ctx)
	if err != nil {
		return fmt.Errorf("format %s: %w", block, err)
	}
	defer w.Close()
	table := typ == "gpt" || typ == "dos"
	_, last, err := c.call(ctx, w, opFormat, block, IfaceBlock+".Format", false, typ, o.variants())
	for try := 1; err != nil && table && try <= formatRetries && strings.Contains(err.Error(), udisksWaitTimeout); try++ {
		// udisks wipes the disk, then waits a fixed 20 s for udev to see the wipe before it
		// writes the new table; on a loaded machine udev's probe takes longer and udisks gives
		// up ("Error synchronizing after initial wipe: Timed out waiting for object", udisks
		// 2.9 in the e2e guest, twice in one create) with no table written. The disk is being
		// erased anyway: formatting it again is safe, and by then udev has caught up.
		c.log.WithError(err).WithField("try", try+1).Warn("udisks gave up waiting for udev while formatting; formatting again")
		_, last, err = c.call(ctx, w, opFormat, block, IfaceBlock+".Format", false, typ, o.variants())
	}
	if err != nil || !table {
		return err
	}
	_, err = c.wait(ctx, w, last, "wait for the partition table of", block, func(s *Snapshot) (bool, error) {
		obj := s.Object(block)
		if obj == nil {
			return false, ErrDeviceGone
		}
		return obj.PartitionTable != nil && obj.PartitionTable.Type == typ, nil
	})
	return err
}

// PartitionSpec describes a partition to create. Offset 0 makes udisks pick the
// FIRST free gap (e.g. the 1 MiB before partition 1), so give an explicit offset
// (Snapshot.EndOfPartitions) to place it after existing partitions. Size 0 fills the gap.
type PartitionSpec struct {
	Offset uint64
	Size   uint64
	Type   string // GPT type GUID
	Name   string // GPT name
}

func (c *Client) createPartition(ctx context.Context, table dbus.ObjectPath, method string, args ...any) (dbus.ObjectPath, error) {
	w, err := c.Watch(ctx)
	if err != nil {
		return "", fmt.Errorf("create partition on %s: %w", table, err)
	}
	defer w.Close()
	body, last, err := c.call(ctx, w, opCreate, table, IfaceTable+"."+method, false, args...)
	if err != nil {
		return "", err
	}
	part, err := objectPath(body)
	if err != nil {
		return "", fmt.Errorf("create partition on %s: %w", table, err)
	}
	_, err = c.wait(ctx, w, last, "wait for the new partition on", table, func(s *Snapshot) (bool, error) {
		o := s.Object(part)
		return o != nil && o.Partition != nil && o.Block != nil, nil
	})
	return part, err
}

// CreatePartition creates a partition in the table at table and returns it.
func (c *Client) CreatePartition(ctx context.Context, table dbus.ObjectPath, p PartitionSpec) (dbus.ObjectPath, error) {
	c.log.WithField("object", table).WithField("name", p.Name).Info("create partition")
	return c.createPartition(ctx, table, "CreatePartition", p.Offset, p.Size, p.Type, p.Name, options())
}

// CreatePartitionAndFormat creates a partition and formats it with fsType in one call.
func (c *Client) CreatePartitionAndFormat(ctx context.Context, table dbus.ObjectPath, p PartitionSpec, fsType string, o FormatOptions) (dbus.ObjectPath, error) {
	c.log.WithField("object", table).WithField("name", p.Name).WithField("type", fsType).
		WithField("encrypted", o.Passphrase != "").Info("create and format partition")
	part, err := c.createPartition(ctx, table, "CreatePartitionAndFormat",
		p.Offset, p.Size, p.Type, p.Name, options(), fsType, o.variants())
	if err == nil || o.Passphrase != "" || p.Offset == 0 || !strings.Contains(err.Error(), udisksWaitTimeout) {
		return part, err
	}
	// udisks made the partition and its file system, then waited a fixed 20 s for udev to
	// report the new file system, and gave up: on a loaded machine (seen in the e2e guest,
	// emulated, with other work running) udev's probe of the new partition takes longer.
	// The partition is there: wait for it ourselves, as long as for any other action.
	c.log.WithError(err).Warn("udisks gave up waiting for the new file system; waiting longer")
	w, werr := c.Watch(ctx)
	if werr != nil {
		return "", err
	}
	defer w.Close()
	var found dbus.ObjectPath
	if _, werr := c.wait(ctx, w, w.Initial(), "wait for the new partition on", table, func(s *Snapshot) (bool, error) {
		for _, obj := range s.Partitions(table) {
			if obj.Partition.Offset == p.Offset && obj.Block != nil && obj.Block.IdType == fsType {
				found = obj.Path
				return true, nil
			}
		}
		return false, nil
	}); werr != nil {
		return "", fmt.Errorf("%w; then %w", err, werr)
	}
	return found, nil
}

// udisksWaitTimeout is the end of udisks' message when its own wait for udev, after an action,
// ran out (udisks_daemon_wait_for_object_sync, 20 s in udisks 2.9).
const udisksWaitTimeout = "Timed out waiting for object"

// formatRetries is how many times Format calls udisks again for a partition table after
// udisks' own wait for udev ran out (each call can take udisks' 20 s wait).
const formatRetries = 2

// SetPartitionFlags sets the partition's whole flags word (for GPT, the attribute
// bits; udisks 2.9 keeps only bits 0, 2, 60, 62 and 63).
func (c *Client) SetPartitionFlags(ctx context.Context, part dbus.ObjectPath, flags uint64) error {
	_, err := c.act(ctx, opSetFlags, part, IfacePartition+".SetFlags", false, flags, options())
	return err
}

// CreateSystemPartition creates Tails' system partition on the GPT at table: ESP
// type, name "Tails", FAT filesystem labelled "Tails", then its attribute bits
// (SystemPartitionFlags).
func (c *Client) CreateSystemPartition(ctx context.Context, table dbus.ObjectPath, offset, size uint64) (dbus.ObjectPath, error) {
	part, err := c.CreatePartitionAndFormat(ctx, table,
		PartitionSpec{Offset: offset, Size: size, Type: ESPType, Name: SystemName}, "vfat",
		FormatOptions{Label: SystemName})
	if err != nil {
		return part, err
	}
	return part, c.SetPartitionFlags(ctx, part, SystemPartitionFlags)
}

// CreatePersistentPartition creates the TailsData partition after the existing
// partitions of the GPT at table (offset 0 means "right after the last one"), LUKS2 +
// ext4 labelled TailsData, in ONE CreatePartitionAndFormat call. udisks leaves it
// unlocked; the cleartext device can be found with Snapshot.Cleartext. Size 0 fills
// the rest of the disk.
func (c *Client) CreatePersistentPartition(ctx context.Context, table dbus.ObjectPath, offset, size uint64, passphrase string) (dbus.ObjectPath, error) {
	if passphrase == "" {
		return "", &Error{Op: opCreate, Path: table, Err: errors.New("empty passphrase")}
	}
	if offset == 0 {
		s, err := c.GetSnapshot(ctx)
		if err != nil {
			return "", err
		}
		offset = s.EndOfPartitions(table)
		if offset == 0 {
			return "", &Error{Op: opCreate, Path: table, Kind: ErrNotFound,
				Err: errors.New("no partition to place the Persistent Storage after; give an explicit offset")}
		}
	}
	return c.CreatePartitionAndFormat(ctx, table,
		PartitionSpec{Offset: offset, Size: size, Type: TailsDataType, Name: TailsDataName}, "ext4",
		FormatOptions{Label: TailsDataName, Passphrase: passphrase, EncryptType: "luks2"})
}

// LoopOptions are options of Manager.LoopSetup.
type LoopOptions struct {
	ReadOnly   bool
	NoPartScan bool
}

// LoopSetup makes udisks create a loop device backed by f (passed as a Unix file
// descriptor) and waits until its Block object is seen.
func (c *Client) LoopSetup(ctx context.Context, f *os.File, o LoopOptions) (dbus.ObjectPath, error) {
	w, err := c.Watch(ctx)
	if err != nil {
		return "", fmt.Errorf("%s for %s: %w", opLoop, f.Name(), err)
	}
	defer w.Close()
	opts := options("read-only", o.ReadOnly, "no-part-scan", o.NoPartScan)
	body, last, err := c.call(ctx, w, opLoop, ManagerPath, IfaceManager+".LoopSetup", false, dbus.UnixFD(f.Fd()), opts)
	if err != nil {
		return "", err
	}
	loop, err := objectPath(body)
	if err != nil {
		return "", fmt.Errorf("%s for %s: %w", opLoop, f.Name(), err)
	}
	_, err = c.wait(ctx, w, last, "wait for loop device", loop, func(s *Snapshot) (bool, error) {
		o := s.Object(loop)
		return o != nil && o.Block != nil && o.Loop != nil, nil
	})
	c.log.WithField("object", loop).WithField("file", f.Name()).Info("loop device set up")
	return loop, err
}

// LoopDelete detaches the loop device at loop.
func (c *Client) LoopDelete(ctx context.Context, loop dbus.ObjectPath) error {
	_, err := c.act(ctx, opLoopDel, loop, IfaceLoop+".Delete", false, options())
	return err
}
