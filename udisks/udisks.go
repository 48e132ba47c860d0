// Package udisks is a typed client for the udisks2 D-Bus service that finds Tails sticks and unlocks, mounts, locks, powers off and partitions them.
package udisks

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
)

// D-Bus names of udisks2 (2.9.4, as in Debian 12).
const (
	BusName         = "org.freedesktop.UDisks2"
	RootPath        = dbus.ObjectPath("/org/freedesktop/UDisks2")
	ManagerPath     = dbus.ObjectPath("/org/freedesktop/UDisks2/Manager")
	ifacePrefix     = "org.freedesktop.UDisks2."
	IfaceManager    = ifacePrefix + "Manager"
	IfaceDrive      = ifacePrefix + "Drive"
	IfaceBlock      = ifacePrefix + "Block"
	IfacePartition  = ifacePrefix + "Partition"
	IfaceTable      = ifacePrefix + "PartitionTable"
	IfaceEncrypted  = ifacePrefix + "Encrypted"
	IfaceFilesystem = ifacePrefix + "Filesystem"
	IfaceLoop       = ifacePrefix + "Loop"

	ifaceObjectManager = "org.freedesktop.DBus.ObjectManager"
	ifaceProperties    = "org.freedesktop.DBus.Properties"
)

// Tails' partition layout (see TAILS-FACTS.md).
const (
	// TailsDataType is the GPT type GUID of the Persistent Storage partition.
	TailsDataType = "8da63339-0007-60c0-c436-083ac8230908"
	// TailsDataName is the GPT name (and the ext4 label) of the Persistent Storage partition.
	TailsDataName = "TailsData"
	// ESPType is the GPT type GUID of an EFI system partition, used by Tails' system partition.
	ESPType = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	// SystemName is the GPT name (and the FAT label) of Tails' system partition.
	SystemName = "Tails"
	// SystemPartitionFlags is the GPT attribute word of Tails' system partition: bits 0
	// (system partition), 2 (legacy BIOS bootable), 60 (read-only), 62 (hidden) and 63
	// (do not automount). Partition.SetFlags replaces the whole word; udisks 2.9 only
	// honours exactly these five bits on GPT and silently drops any other.
	SystemPartitionFlags uint64 = 1<<0 | 1<<2 | 1<<60 | 1<<62 | 1<<63
)

// Default locations of the running Tails (TAILS-FACTS.md).
const (
	DefaultPersistenceMount = "/live/persistence/TailsData_unlocked"
	DefaultSystemMount      = "/lib/live/mount/medium"
)

// Conn is the part of *dbus.Conn the client uses; tests may wrap it.
type Conn interface {
	Object(dest string, path dbus.ObjectPath) dbus.BusObject
	AddMatchSignalContext(ctx context.Context, options ...dbus.MatchOption) error
	RemoveMatchSignalContext(ctx context.Context, options ...dbus.MatchOption) error
	Signal(ch chan<- *dbus.Signal)
	RemoveSignal(ch chan<- *dbus.Signal)
}

var _ Conn = (*dbus.Conn)(nil)

// Options configures a Client. The zero value is usable.
type Options struct {
	// Log receives debug and warning lines; nil discards them.
	Log *logrus.Entry
	// Boot locates the running Tails; blank fields take DefaultPersistenceMount and
	// DefaultSystemMount.
	Boot BootPaths
}

// Client talks to udisks2 over one D-Bus connection (the system bus, or a private
// bus in tests). It is safe for concurrent use.
type Client struct {
	conn Conn
	log  *logrus.Entry
	boot BootPaths
}

// New returns a client that uses conn, which the caller keeps and closes.
func New(conn Conn, opts Options) *Client {
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		log = logrus.NewEntry(l)
	}
	c := &Client{conn: conn, log: log.WithField("component", "udisks"), boot: opts.Boot}
	if c.boot.Persistence == "" {
		c.boot.Persistence = DefaultPersistenceMount
	}
	if c.boot.System == "" {
		c.boot.System = DefaultSystemMount
	}
	return c
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BootPaths returns the mount points used to recognise the boot device.
func (c *Client) BootPaths() BootPaths { return c.boot }

// GetSnapshot reads every udisks object once (ObjectManager.GetManagedObjects).
func (c *Client) GetSnapshot(ctx context.Context) (*Snapshot, error) {
	objs, _, err := c.managedObjects(ctx)
	if err != nil {
		return nil, err
	}
	return newSnapshot(objs), nil
}

type rawObjects = map[dbus.ObjectPath]map[string]map[string]dbus.Variant

// managedObjects reads every udisks object, and where the answer came among the messages the
// connection received (its dbus.Sequence): a udisks signal received before it is already in it.
func (c *Client) managedObjects(ctx context.Context) (rawObjects, dbus.Sequence, error) {
	var objs rawObjects
	call := c.conn.Object(BusName, RootPath).CallWithContext(ctx, ifaceObjectManager+".GetManagedObjects", 0)
	if call.Err != nil {
		return nil, dbus.NoSequence, classify("read udisks objects", RootPath, call.Err)
	}
	if err := call.Store(&objs); err != nil {
		return nil, dbus.NoSequence, fmt.Errorf("read udisks objects: %w", err)
	}
	return objs, call.ResponseSequence, nil
}

// nameOwner returns the unique bus name that owns org.freedesktop.UDisks2.
func (c *Client) nameOwner(ctx context.Context) (string, error) {
	var owner string
	call := c.conn.Object("org.freedesktop.DBus", "/org/freedesktop/DBus").
		CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, BusName)
	if call.Err != nil {
		return "", classify("find udisks on the bus", "", call.Err)
	}
	if err := call.Store(&owner); err != nil {
		return "", fmt.Errorf("find udisks on the bus: %w", err)
	}
	return owner, nil
}
