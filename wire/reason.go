package wire

import "tails-backup/tails"

// Reason says which of its refusals or failures the helper met, one value per sentence the
// session words in the person's language (session.HelperText): the helper runs as root with
// no locale of the session, and its English Message is kept for the log only. Code stays what
// callers decide on; Reason and Args are for the wording alone. The values are stable: a
// session words an unknown or empty Reason from Code with a generic sentence.
type Reason string

// The reasons, with the Args each sentence uses.
const (
	// The helper itself and its request.
	ReasonNotRoot        Reason = "not-root"         // the helper does not run as root
	ReasonNoUDisks       Reason = "no-udisks"        // the helper has no connection to udisks
	ReasonUDisksSilent   Reason = "udisks-silent"    // udisks does not answer: the drives cannot be listed
	ReasonNoMountTable   Reason = "no-mount-table"   // the mount table cannot be read
	ReasonNotLinux       Reason = "not-linux"        // the helper runs only on Linux
	ReasonNoRequest      Reason = "no-request"       // nothing on standard input: run by hand
	ReasonHelperArgs     Reason = "helper-args"      // the helper was given arguments: run by hand
	ReasonBadRequest     Reason = "bad-request"      // the request line is invalid
	ReasonRequestTimeout Reason = "request-timeout"  // no request came in time
	ReasonBadSecret      Reason = "bad-secret"       // the passphrase line is invalid
	ReasonSecretTimeout  Reason = "secret-timeout"   // no passphrase came in time
	ReasonUnknownOp      Reason = "unknown-op"       // Op: an operation this helper does not know
	ReasonLimitNotLifted Reason = "limit-not-lifted" // started with a resource limit it cannot lift
	ReasonProcessSetup   Reason = "process-setup"    // the helper cannot set up its process
	ReasonCancelled      Reason = "cancelled"        // cancelled, or stopped before its end

	// This Tails' Persistent Storage (the source of an update, the destination of a restore).
	ReasonSourceNotUnlocked Reason = "source-not-unlocked"  // Path: nothing mounted there
	ReasonSourceUnsafe      Reason = "source-unsafe"        // Path: cannot be opened safely
	ReasonSourceUnreadable  Reason = "source-unreadable"    // Path: cannot be read
	ReasonSourceNotTails    Reason = "source-not-tailsdata" // Path: not the unlocked TailsData of a Tails stick
	ReasonSourceNoUUID      Reason = "source-no-uuid"       // its LUKS UUID is not valid
	ReasonSourceIsBackup    Reason = "source-is-backup"     // it holds a backup marker: this Tails is a backup Tails
	ReasonStateDirFailed    Reason = "state-dir-failed"     // the tails-backup folder cannot be made or set up
	ReasonStateDirNotFolder Reason = "state-dir-not-folder" // Path: the tails-backup folder is not a folder
	ReasonUnmarkFailed      Reason = "unmark-failed"        // its backup marker cannot be removed (promote)

	// Finding and checking the backup stick.
	ReasonBackupNotPlugged     Reason = "backup-not-plugged"     // UUID: no stick with that Persistent Storage
	ReasonBackupAmbiguous      Reason = "backup-ambiguous"       // UUID: several sticks have it
	ReasonBackupNotLUKS        Reason = "backup-not-luks"        // Stick: its Persistent Storage is not LUKS
	ReasonBackupNotRemovable   Reason = "backup-not-removable"   // Stick: not a removable drive
	ReasonBackupIsBoot         Reason = "backup-is-boot"         // Stick: the stick this Tails runs from
	ReasonBackupSystemDevice   Reason = "backup-system-device"   // Stick: udisks hints it as a system device
	ReasonBackupLocked         Reason = "backup-locked"          // Stick: its Persistent Storage is locked
	ReasonBackupNotMounted     Reason = "backup-not-mounted"     // Stick: its Persistent Storage is not mounted
	ReasonBackupNotExt4        Reason = "backup-not-ext4"        // Stick, FSType: not ext4
	ReasonNoDeviceNumber       Reason = "no-device-number"       // Stick: udisks gives no device number
	ReasonBackupIsSource       Reason = "backup-is-source"       // Stick: it holds this Tails' Persistent Storage
	ReasonBackupMoved          Reason = "backup-moved"           // Stick, Path: not mounted there any more
	ReasonBackupMountSymlink   Reason = "backup-mount-symlink"   // Stick, Path: the mount point goes through a symlink
	ReasonBackupMountOther     Reason = "backup-mount-other"     // Stick, Path: something else is mounted there
	ReasonBackupDeviceMismatch Reason = "backup-device-mismatch" // Stick: udisks names a device that is not the expected one
	ReasonLUKSMoved            Reason = "luks-moved"             // Stick: its LUKS partition is not where udisks says
	ReasonLUKSGone             Reason = "luks-gone"              // Stick: its LUKS partition went away
	ReasonNoMarker             Reason = "no-marker"              // Stick: no backup marker (update, verify...)
	ReasonMarkerNewer          Reason = "marker-newer"           // Stick: written by a newer tails-backup
	ReasonMarkerDamaged        Reason = "marker-damaged"         // Stick: the marker cannot be read
	ReasonOtherTails           Reason = "other-tails"            // Stick, UUID: the backup of another Tails
	ReasonMarkerNotWritten     Reason = "marker-not-written"     // the marker cannot be made
	ReasonUpdateRunning        Reason = "update-running"         // Stick: another update of it is running
	ReasonUpdateRunningRestore Reason = "update-running-restore" // Stick: the agent's update runs while a restore waits
	ReasonBackupNotEmpty       Reason = "backup-not-empty"       // Stick: a new Persistent Storage that is not empty
	ReasonBackupFull           Reason = "backup-full"            // Stick: the backup filled up while being written
	ReasonBackupTooSmall       Reason = "backup-too-small"       // Stick (Needed, Available): the update does not fit
	ReasonBackupLimit          Reason = "backup-limit"           // Stick, Path, Limit, Count: the backup holds what no Persistent Storage needs
	ReasonSourceLimit          Reason = "source-limit"           // Path, Limit, Count: this Persistent Storage holds more than the backup can copy
	ReasonWriteFailed          Reason = "write-failed"           // Stick: writing to the backup failed
	ReasonBackupGone           Reason = "backup-gone"            // Stick: the backup failed or was unplugged
	ReasonUpdateFailed         Reason = "update-failed"          // Stick: the update stopped on an unexpected error

	// Restore.
	ReasonRestoreIntoBackup    Reason = "restore-into-backup"    // this Tails is itself a backup Tails
	ReasonRestoreRunning       Reason = "restore-running"        // another restore is running
	ReasonRestoreNoMarker      Reason = "restore-no-marker"      // Stick: not a backup made by tails-backup
	ReasonRestoreMarkerDamaged Reason = "restore-marker-damaged" // Stick: its marker cannot be read
	ReasonRestoreSourceChanged Reason = "restore-source-changed" // Stick: its marker names another Persistent Storage than confirmed
	ReasonRestoreTooSmall      Reason = "restore-too-small"      // Stick (Needed, Available): this Persistent Storage is too small
	ReasonRestoreBackupLimit   Reason = "restore-backup-limit"   // Stick, Path, Limit, Count: the backup holds what no Persistent Storage needs
	ReasonRestoreTargetLimit   Reason = "restore-target-limit"   // Path, Limit, Count: this Persistent Storage holds more than a restore replaces
	ReasonRestoreTargetFailed  Reason = "restore-target-failed"  // this Tails' Persistent Storage failed
	ReasonRestoreConfFailed    Reason = "restore-conf-failed"    // the files were restored, persistence.conf was not
	ReasonRestoreFailed        Reason = "restore-failed"         // Stick: the restore stopped on an unexpected error
	ReasonRestoreBackupGone    Reason = "restore-backup-gone"    // Stick: the backup failed or was unplugged

	// The Tails system: this Tails' system partition and the backup's.
	ReasonSystemNotMounted         Reason = "system-not-mounted"          // Path: this Tails' system partition is not mounted there
	ReasonSystemNotBoot            Reason = "system-not-boot"             // Path: what is mounted there is not the boot stick's system partition
	ReasonSystemNoVersion          Reason = "system-no-version"           // Path: no readable Tails version
	ReasonSystemLimit              Reason = "system-limit"                // Path, Limit, Count: this system partition holds what no Tails has
	ReasonSystemNestedMount        Reason = "system-nested-mount"         // Path: a file system mounted inside this system partition
	ReasonBackupNoLUKS             Reason = "backup-no-luks"              // Stick: udisks no longer shows its Persistent Storage partition
	ReasonBackupNoPartitionTable   Reason = "backup-no-partition-table"   // Stick
	ReasonBackupNoSystemPartition  Reason = "backup-no-system-partition"  // Stick: no partition 1
	ReasonBackupPartitionESP       Reason = "backup-partition-esp"        // Stick: partition 1 is not a Tails system partition
	ReasonBackupSystemNoBlock      Reason = "backup-system-no-block"      // Stick: partition 1 is no block device
	ReasonBackupSystemElsewhere    Reason = "backup-system-elsewhere"     // Stick: partition 1 is on another stick
	ReasonBackupSystemHint         Reason = "backup-system-hint"          // Stick: partition 1 is hinted as a system device
	ReasonBackupSystemNotFAT       Reason = "backup-system-not-fat"       // Stick, FSType
	ReasonBackupSystemLabel        Reason = "backup-system-label"         // Stick, Label: not labelled Tails
	ReasonBackupSystemReadOnly     Reason = "backup-system-read-only"     // Stick
	ReasonBackupSystemMoved        Reason = "backup-system-moved"         // Stick, Path: not mounted there any more
	ReasonBackupSystemMountSymlink Reason = "backup-system-mount-symlink" // Stick, Path
	ReasonBackupSystemMountOther   Reason = "backup-system-mount-other"   // Stick, Path
	ReasonBackupSystemNotMounted   Reason = "backup-system-not-mounted"   // Stick
	ReasonBackupSystemMounted      Reason = "backup-system-mounted"       // Stick: mounted, so no boot loader is installed
	ReasonBackupSystemNotTails     Reason = "backup-system-not-tails"     // Stick: files but no Tails system
	ReasonBackupSystemLimit        Reason = "backup-system-limit"         // Stick, Path, Limit, Count
	ReasonBackupSystemNestedMount  Reason = "backup-system-nested-mount"  // Stick, Path
	ReasonBackupSystemFull         Reason = "backup-system-full"          // Stick: ran out of space
	ReasonBackupSystemTooSmall     Reason = "backup-system-too-small"     // Stick (Needed, Available)
	ReasonRefreshFailed            Reason = "refresh-failed"              // Stick: the refresh stopped on an unexpected error
	ReasonNoSyslinux               Reason = "no-syslinux"                 // the syslinux installer cannot be read
	ReasonNoMBRCode                Reason = "no-mbr-code"                 // the MBR boot code cannot be read
	ReasonBootloaderFailed         Reason = "bootloader-failed"           // Stick: syslinux failed
	ReasonMBRFailed                Reason = "mbr-failed"                  // Stick: writing the MBR boot code failed

	// The key slots.
	ReasonNoCryptsetup       Reason = "no-cryptsetup"       // Stick: cryptsetup is not installed
	ReasonKeyOpFailed        Reason = "key-op-failed"       // Stick: cryptsetup failed unexpectedly
	ReasonKeysDirFailed      Reason = "keys-dir-failed"     // the folder of the kept keys cannot be made or opened
	ReasonNoFreeKeySlot      Reason = "no-free-key-slot"    // Stick
	ReasonNoRandom           Reason = "no-random"           // no random key can be made
	ReasonWrongPassphrase    Reason = "wrong-passphrase"    // Stick
	ReasonKeyNotSaved        Reason = "key-not-saved"       // Stick: the key cannot be saved in this Persistent Storage
	ReasonKeySlotNotFound    Reason = "key-slot-not-found"  // Stick: the new slot is not found after adding it
	ReasonKeyMissing         Reason = "key-missing"         // Stick: no key kept for it
	ReasonKeyUnusable        Reason = "key-unusable"        // Stick: the kept key cannot be read
	ReasonKeyRefused         Reason = "key-refused"         // Stick: the backup refuses the kept key
	ReasonUnpluggedUnlocking Reason = "unplugged-unlocking" // Stick: unplugged while being unlocked
	ReasonUnlockFailed       Reason = "unlock-failed"       // Stick: udisks could not unlock it
	ReasonUnlockedNoDevice   Reason = "unlocked-no-device"  // Stick: unlocked already, with no cleartext device
	ReasonKeyMountFailed     Reason = "key-mount-failed"    // Stick: udisks could not mount it after unlock-with-key
	ReasonReleaseGone        Reason = "release-gone"        // Stick: lock-backup: unplugged before it was unmounted or locked
	ReasonReleaseBusy        Reason = "release-busy"        // Stick: lock-backup: its Persistent Storage is in use
	ReasonReleaseFailed      Reason = "release-failed"      // Stick: lock-backup: udisks could not unmount or lock it
	ReasonLastKeySlot        Reason = "last-key-slot"       // Stick: the slot is the last one
	ReasonOwnLastKeySlot     Reason = "own-last-key-slot"   // promote: the lost main Tails' slot is this Tails' last one
	ReasonKeyNotShredded     Reason = "key-not-shredded"    // the kept key cannot be shredded

	// The problems of a Persistent Storage that Tails would refuse or repair at boot: the
	// Reason of verify's and restore's problem events (tails.Problem.Code, same values), with
	// the Args Owner, Mode, ACL, WantACL, Line and Detail.
	ReasonFindingUnexaminable             Reason = "file-unexaminable"
	ReasonFindingAdditionalNotFile        Reason = "additional-software-not-file"
	ReasonFindingAdditionalOwner          Reason = "additional-software-owner"
	ReasonFindingAdditionalMode           Reason = "additional-software-mode"
	ReasonFindingRootUnexaminable         Reason = "root-unexaminable"
	ReasonFindingRootOwner                Reason = "root-owner"
	ReasonFindingRootOldMode              Reason = "root-old-mode"
	ReasonFindingRootMode                 Reason = "root-mode"
	ReasonFindingRootACLUnreadable        Reason = "root-acl-unreadable"
	ReasonFindingRootNoACL                Reason = "root-no-acl"
	ReasonFindingRootACL                  Reason = "root-acl"
	ReasonFindingRootDefaultACL           Reason = "root-default-acl"
	ReasonFindingRootDefaultACLUnreadable Reason = "root-default-acl-unreadable"
	ReasonFindingConfMissing              Reason = "conf-missing"
	ReasonFindingConfNotFile              Reason = "conf-not-file"
	ReasonFindingConfOwner                Reason = "conf-owner"
	ReasonFindingConfMode                 Reason = "conf-mode"
	ReasonFindingConfNotRoot              Reason = "conf-not-root"
	ReasonFindingConfUnopenable           Reason = "conf-unopenable"
	ReasonFindingConfACLUnreadable        Reason = "conf-acl-unreadable"
	ReasonFindingConfACL                  Reason = "conf-acl"
	ReasonFindingConfUnreadable           Reason = "conf-unreadable"
	ReasonFindingConfLine                 Reason = "conf-line"
	ReasonFindingConfUnparsable           Reason = "conf-unparsable"
	ReasonFindingRestoredConfMissing      Reason = "restored-conf-missing"
	ReasonFindingRestoredConfUnreadable   Reason = "restored-conf-unreadable"
	ReasonFindingRestoredConfChanged      Reason = "restored-conf-changed"
	ReasonFindingBackupConfNotRestored    Reason = "backup-conf-not-restored"
)

// Reasons lists every Reason, for the tests that check that each is worded.
var Reasons = []Reason{
	ReasonNotRoot, ReasonNoUDisks, ReasonUDisksSilent, ReasonNoMountTable, ReasonNotLinux, ReasonNoRequest, ReasonHelperArgs,
	ReasonBadRequest, ReasonRequestTimeout, ReasonBadSecret, ReasonSecretTimeout, ReasonUnknownOp,
	ReasonLimitNotLifted, ReasonProcessSetup, ReasonCancelled,
	ReasonSourceNotUnlocked, ReasonSourceUnsafe, ReasonSourceUnreadable, ReasonSourceNotTails, ReasonSourceNoUUID,
	ReasonSourceIsBackup, ReasonStateDirFailed, ReasonStateDirNotFolder, ReasonUnmarkFailed,
	ReasonBackupNotPlugged, ReasonBackupAmbiguous, ReasonBackupNotLUKS, ReasonBackupNotRemovable, ReasonBackupIsBoot,
	ReasonBackupSystemDevice, ReasonBackupLocked, ReasonBackupNotMounted, ReasonBackupNotExt4, ReasonNoDeviceNumber,
	ReasonBackupIsSource, ReasonBackupMoved, ReasonBackupMountSymlink, ReasonBackupMountOther, ReasonBackupDeviceMismatch,
	ReasonLUKSMoved, ReasonLUKSGone, ReasonNoMarker, ReasonMarkerNewer, ReasonMarkerDamaged, ReasonOtherTails,
	ReasonMarkerNotWritten, ReasonUpdateRunning, ReasonUpdateRunningRestore, ReasonBackupNotEmpty, ReasonBackupFull,
	ReasonBackupTooSmall, ReasonBackupLimit, ReasonSourceLimit, ReasonWriteFailed, ReasonBackupGone, ReasonUpdateFailed,
	ReasonRestoreIntoBackup, ReasonRestoreRunning, ReasonRestoreNoMarker, ReasonRestoreMarkerDamaged,
	ReasonRestoreSourceChanged, ReasonRestoreTooSmall, ReasonRestoreBackupLimit, ReasonRestoreTargetLimit,
	ReasonRestoreTargetFailed, ReasonRestoreConfFailed, ReasonRestoreFailed, ReasonRestoreBackupGone,
	ReasonSystemNotMounted, ReasonSystemNotBoot, ReasonSystemNoVersion, ReasonSystemLimit, ReasonSystemNestedMount,
	ReasonBackupNoLUKS, ReasonBackupNoPartitionTable, ReasonBackupNoSystemPartition, ReasonBackupPartitionESP,
	ReasonBackupSystemNoBlock, ReasonBackupSystemElsewhere, ReasonBackupSystemHint, ReasonBackupSystemNotFAT,
	ReasonBackupSystemLabel, ReasonBackupSystemReadOnly, ReasonBackupSystemMoved, ReasonBackupSystemMountSymlink,
	ReasonBackupSystemMountOther, ReasonBackupSystemNotMounted, ReasonBackupSystemMounted, ReasonBackupSystemNotTails,
	ReasonBackupSystemLimit, ReasonBackupSystemNestedMount, ReasonBackupSystemFull, ReasonBackupSystemTooSmall,
	ReasonRefreshFailed, ReasonNoSyslinux, ReasonNoMBRCode, ReasonBootloaderFailed, ReasonMBRFailed,
	ReasonNoCryptsetup, ReasonKeyOpFailed, ReasonKeysDirFailed, ReasonNoFreeKeySlot, ReasonNoRandom,
	ReasonWrongPassphrase, ReasonKeyNotSaved, ReasonKeySlotNotFound, ReasonKeyMissing, ReasonKeyUnusable,
	ReasonKeyRefused, ReasonUnpluggedUnlocking, ReasonUnlockFailed, ReasonUnlockedNoDevice, ReasonKeyMountFailed, ReasonReleaseGone, ReasonReleaseBusy, ReasonReleaseFailed, ReasonLastKeySlot,
	ReasonOwnLastKeySlot, ReasonKeyNotShredded,
	ReasonFindingUnexaminable, ReasonFindingAdditionalNotFile, ReasonFindingAdditionalOwner, ReasonFindingAdditionalMode,
	ReasonFindingRootUnexaminable, ReasonFindingRootOwner, ReasonFindingRootOldMode, ReasonFindingRootMode,
	ReasonFindingRootACLUnreadable, ReasonFindingRootNoACL, ReasonFindingRootACL, ReasonFindingRootDefaultACL,
	ReasonFindingRootDefaultACLUnreadable, ReasonFindingConfMissing, ReasonFindingConfNotFile, ReasonFindingConfOwner,
	ReasonFindingConfMode, ReasonFindingConfNotRoot, ReasonFindingConfUnopenable, ReasonFindingConfACLUnreadable,
	ReasonFindingConfACL, ReasonFindingConfUnreadable, ReasonFindingConfLine, ReasonFindingConfUnparsable,
	ReasonFindingRestoredConfMissing, ReasonFindingRestoredConfUnreadable, ReasonFindingRestoredConfChanged,
	ReasonFindingBackupConfNotRestored,
}

// Args are the values a Reason's sentence names; only those it uses are set.
type Args struct {
	// Stick is the backup stick concerned.
	Stick *Stick `json:"stick,omitempty"`
	// Path is a mount point, or a path inside a tree (shortened, sanitised).
	Path string `json:"path,omitempty"`
	// FSType is the file system found instead of the expected one; Label the file system label.
	FSType string `json:"fs_type,omitempty"`
	Label  string `json:"label,omitempty"`
	// UUID is the LUKS UUID of a Persistent Storage.
	UUID string `json:"uuid,omitempty"`
	// Op is an operation this helper does not know.
	Op string `json:"op,omitempty"`
	// Limit is the bound a tree went beyond (Limit* below), Count its value (levels, bytes of
	// names, or files).
	Limit string `json:"limit,omitempty"`
	Count int64  `json:"count,omitempty"`

	// The values of a problem event (tails.ProblemArgs).
	Owner   string `json:"owner,omitempty"`    // "uid:gid"
	Mode    string `json:"mode,omitempty"`     // "0755"
	ACL     string `json:"acl,omitempty"`      // an ACL in its short text form
	WantACL string `json:"want_acl,omitempty"` // the ACL Tails expects
	Line    int    `json:"line,omitempty"`     // a line of persistence.conf
	// Detail is the system's error or a parser's reason, in English: a value shown as it is,
	// never a sentence of its own.
	Detail string `json:"detail,omitempty"`
}

// ProblemEvent is the progress event of phase PhaseProblem for p: its code and values for the
// session to word, its English sentence for the log.
func ProblemEvent(p tails.Problem) Event {
	a := Args{Owner: p.Args.Owner, Mode: p.Args.Mode, ACL: p.Args.ACL, WantACL: p.Args.WantACL, Line: p.Args.Line, Detail: p.Args.Detail}
	ev := Event{Event: EventProgress, Phase: PhaseProblem, Path: p.Path, Problem: p.What, Warning: p.Warning, Reason: Reason(p.Code)}
	if a != (Args{}) {
		ev.Args = &a
	}
	return ev
}

// Values of Args.Limit.
const (
	LimitDepth   = "depth"   // folders nested more than Count levels deep
	LimitNames   = "names"   // a folder whose names take more than Count bytes
	LimitLinks   = "links"   // more than Count files with several hard links
	LimitEntries = "entries" // more than Count files and folders
)

// Stick names a stick as its person knows it: the session words it as it names sticks
// elsewhere ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
type Stick struct {
	// Label is the drive's vendor and model, sanitised ("" when udisks shows none).
	Label string `json:"label,omitempty"`
	// Size is the drive's size in bytes (0 if unknown); Device its block device ("" if unknown).
	Size   int64  `json:"size,omitempty"`
	Device string `json:"device,omitempty"`
}
