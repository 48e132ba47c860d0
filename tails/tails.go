// Package tails holds the facts about Tails that tails-backup must respect: paths, labels,
// partition types, users, the persistence.conf format, the features and the backup marker.
package tails

// Partitions and file systems of a Tails stick.
const (
	// SystemPartitionName is the GPT name, and the FAT label, of the system partition.
	SystemPartitionName = "Tails"
	// ESPTypeGUID is the GPT type of the system partition (EFI System Partition).
	ESPTypeGUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	// PersistenceName is the GPT name of the Persistent Storage partition and the label of the
	// ext4 file system inside its LUKS volume.
	PersistenceName = "TailsData"
	// PersistenceTypeGUID is the GPT type of the Persistent Storage partition.
	PersistenceTypeGUID = "8da63339-0007-60c0-c436-083ac8230908"
	// SystemPartitionFlags are the GPT attribute bits Tails sets on the system partition:
	// 0 (required), 2 (legacy BIOS bootable), 60 (read-only), 62 (hidden), 63 (no automount).
	SystemPartitionFlags uint64 = 1<<0 | 1<<2 | 1<<60 | 1<<62 | 1<<63
	// SystemPartitionOffset is where the system partition starts, in bytes.
	SystemPartitionOffset = 2 << 20
	// smallStickLimit is the stick size under which the system partition is 4 GiB, not 8.
	smallStickLimit = 14500 << 20
)

// SystemPartitionSize is the size Tails gives the system partition on a stick of stickSize bytes.
func SystemPartitionSize(stickSize uint64) uint64 {
	if stickSize < smallStickLimit {
		return 4 << 30
	}
	return 8 << 30
}

// Paths on a running Tails.
const (
	// PersistentStorageMount is where the unlocked Persistent Storage of the running Tails is.
	PersistentStorageMount = "/live/persistence/TailsData_unlocked"
	// MediumMount is where the running system partition is mounted, read-only.
	MediumMount = "/lib/live/mount/medium"
	// PersistenceConfName is the configuration file at the root of the Persistent Storage.
	PersistenceConfName = "persistence.conf"
	// StateDirName is the folder, at the root of the Persistent Storage, where the session
	// agent keeps its pairing store; the root helper creates it, owned by amnesia, 0700.
	StateDirName = "tails-backup"
	// KeysDirName is the folder, at the root of the Persistent Storage, where the root helper
	// keeps the keys that unlock this Tails' paired backups without their passphrase (one file
	// per backup LUKS UUID): root's alone, 0700, never copied to a backup nor restored.
	KeysDirName = "tails-backup-keys"
	// XattrCacheDirName is the folder, at the root of a backup's Persistent Storage, where the
	// root helper keeps the update's xattr cache (sync.XattrCache): root:root 0700. It
	// describes the backup it is on and no other tree: never copied, compared nor restored.
	XattrCacheDirName = "tails-backup-cache"
	// VersionFile holds the version of the running Tails ("6.10 - 20241203" on its first line).
	VersionFile = "/etc/amnesia/version"
)

// Users and groups.
const (
	// AmnesiaUID is the uid (and gid) of the desktop user amnesia.
	AmnesiaUID = 1000
	// AmnesiaUser is its name (udisks2's Mount option as-user takes a name).
	AmnesiaUser = "amnesia"
	// PersistentStorageUID and PersistentStorageGID own persistence.conf (tails-persistent-storage).
	PersistentStorageUID = 115
	PersistentStorageGID = 122
	// PersistenceRootMode is the mode of the Persistent Storage root (with ACL user:amnesia:x).
	PersistenceRootMode = 0o770
	// PersistenceConfMode is the only mode Tails accepts for persistence.conf.
	PersistenceConfMode = 0o600
)

// PerStickSystemFiles are the entries at the root of a Tails system partition that belong to
// that stick alone (Tails 7), which a copy of the system partition onto another stick must
// never write, replace nor delete on either side:
//   - luks-header-backup: written by the Persistent Storage service before it upgrades the
//     stick's LUKS header, shredded after the next successful unlock. While it exists, an
//     unlock whose passphrase fails on the stick's header but works on this copy restores it
//     over the stick's TailsData header: copied onto another stick, it would overwrite that
//     stick's header with this one's, and its data would be lost.
//   - storage: the Welcome Screen's language and keyboard settings, in the clear (since
//     Tails 7.4), read and written by the greeter of the stick it starts from. They are not
//     part of the Tails release: each stick keeps the settings its own user chose there.
//
// FAT matches names ignoring case: so must whoever compares with these.
var PerStickSystemFiles = []string{"luks-header-backup", "storage"}

// MirrorExcludes is what an update leaves alone on the backup, and a verify does not compare:
// the marker, which is the helper's alone; the tails-backup folder, which holds this Tails'
// own pairings (written after every update, so a backup could never be identical to it, and
// meaningless on another Tails: a restore does not bring it back either); the tails-backup-keys
// folder, which holds the keys of this Tails' backups (a key must stay on the Tails that
// unlocks the backup, never travel on the backup it opens, and a restore must not bring back
// another Tails' keys nor replace this one's); the tails-backup-cache folder, which holds the
// xattr cache of updates onto the backup it is on (meaningless anywhere else: on a restored
// or promoted Tails it is left where it is and never used); and the folders the session asked
// to skip (the user kept their application open), which keep their previous
// copy on the backup. The root helper's mirror and the verify of a mounted backup both use it.
func MirrorExcludes(skip []string) []string {
	return append([]string{MarkerName, StateDirName, KeysDirName, XattrCacheDirName}, skip...)
}
