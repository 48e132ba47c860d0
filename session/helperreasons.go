package session

import (
	"tails-backup/l10n"
	"tails-backup/wire"
)

// HelperText words an error of the root helper in loc's language: the sentence of its Reason,
// with its Args (the stick named as the commands name sticks, sizes written for the language),
// or, for a Reason this session does not know (or none), a generic sentence for its Code. The
// helper's Message is English and for the log only: it is never shown.
func HelperText(loc *l10n.Locale, he *wire.HelperError) string {
	if text, ok := reasonText(loc, he); ok {
		return text
	}
	return codeText(loc, he)
}

// KnownReason tells whether the session has a sentence of its own for reason.
func KnownReason(reason wire.Reason) bool {
	_, ok := reasonText(nil, &wire.HelperError{Reason: reason})
	return ok
}

// stickText names the stick of a helper error as the commands name sticks: "SanDisk Cruzer
// (8.0 GB, /dev/sdb)".
func stickText(loc *l10n.Locale, s *wire.Stick) string {
	if s == nil {
		return loc.Tr("the USB stick")
	}
	label := s.Label
	if label == "" {
		// TRANSLATORS: a USB stick that gives no vendor nor model, in a sentence ("The backup on unnamed USB stick (16 GB)").
		label = loc.Tr("unnamed USB stick")
	}
	switch {
	case s.Size > 0 && s.Device != "":
		// TRANSLATORS: a USB stick's name, size and device ("Kingston DataTraveler (16 GB, /dev/sdb)").
		return loc.Tr("%[1]s (%[2]s, %[3]s)", label, loc.Size(s.Size), s.Device)
	case s.Size > 0:
		// TRANSLATORS: a USB stick's name and device ("Kingston DataTraveler (/dev/sdb)").
		return loc.Tr("%[1]s (%[2]s)", label, loc.Size(s.Size))
	case s.Device != "":
		// TRANSLATORS: a USB stick's name and device ("Kingston DataTraveler (/dev/sdb)").
		return loc.Tr("%[1]s (%[2]s)", label, s.Device)
	}
	return label
}

// limitText is the sentence that says which bound a tree went beyond (wire.Args.Limit).
func limitText(loc *l10n.Locale, a wire.Args) string {
	n := int(min(a.Count, 1<<31-1))
	switch a.Limit {
	case wire.LimitDepth:
		// TRANSLATORS: %d is a number of levels of folders.
		return loc.TrN("A folder there is nested more than %d level deep.", "A folder there is nested more than %d levels deep.", n, a.Count)
	case wire.LimitNames:
		// TRANSLATORS: %s is a size ("16 MB").
		return loc.Tr("A folder there has so many entries that their names take more than %s.", loc.Size(a.Count))
	case wire.LimitLinks:
		return loc.TrN("There are more than %d file with several hard links.", "There are more than %d files with several hard links.", n, a.Count)
	case wire.LimitEntries:
		return loc.TrN("There is more than %d file or folder.", "There are more than %d files and folders.", n, a.Count)
	}
	return loc.Tr("It holds too much data of one kind.")
}

// codeText is the generic sentence of a code, for an error whose Reason this session does not
// know.
func codeText(loc *l10n.Locale, he *wire.HelperError) string {
	if text, ok := helperCodeText(loc, he); ok {
		return text
	}
	switch he.Code {
	case wire.CodeInvalidRequest:
		return loc.Tr("The backup tool's root helper did not understand the request. Update tails-backup, or report the bug if it is up to date.")
	case wire.CodeNotFound:
		return loc.Tr("The backup or the Persistent Storage of this Tails could not be found. Check that both are plugged in and unlocked, and try again.")
	case wire.CodeNotPaired:
		return loc.Tr("This USB stick is not the backup of this Tails, so it was not changed. Use your own backup, or create a new one with 'tails-backup create'.")
	case wire.CodeRefused:
		return loc.Tr("The backup tool refused to go on, to keep your data safe. Check the USB stick and try again; report the bug if it happens again.")
	case wire.CodeDeviceGone:
		return loc.Tr("The USB stick failed or was unplugged. Plug it in again and try again.")
	}
	return loc.Tr("The backup tool's root helper stopped on an unexpected error. Try again, and report the bug if it happens again.")
}

// reasonText is the sentence of he's Reason; ok is false for a Reason it does not know. loc
// may be nil (English).
func reasonText(loc *l10n.Locale, he *wire.HelperError) (text string, ok bool) {
	a := he.Args
	stick := func() string { return stickText(loc, a.Stick) }
	backupFull := func() string {
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup on %[1]s ran out of space. Nothing on it is lost, and it is marked incomplete: free some space in your Persistent Storage, or create a new backup on a bigger USB stick with 'tails-backup create'.", stick())
	}
	systemFull := func() string {
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system partition of the backup on %[1]s ran out of space for this version of Tails. Create a new backup on a bigger USB stick with 'tails-backup create'.", stick())
	}
	switch he.Reason {
	// The helper itself and its request.
	case wire.ReasonNotRoot:
		return loc.Tr("The backup tool's root helper does not run as root. Run it through its sudo rule."), true
	case wire.ReasonNoUDisks:
		return loc.Tr("The backup tool's root helper has no connection to udisks. Reinstall tails-backup."), true
	case wire.ReasonUDisksSilent:
		return loc.Tr("The USB sticks cannot be listed because udisks does not answer. Restart the computer and try again."), true
	case wire.ReasonNoMountTable:
		return loc.Tr("The table of mounted file systems cannot be read. Restart the computer and try again."), true
	case wire.ReasonNotLinux:
		return loc.Tr("The backup tool's root helper only runs on Linux. Use it on Tails."), true
	case wire.ReasonNoRequest, wire.ReasonHelperArgs:
		return loc.Tr("The backup tool's root helper is not meant to be run by hand: the tails-backup commands and the session run it through sudo."), true
	case wire.ReasonBadRequest, wire.ReasonUnknownOp:
		return loc.Tr("The backup tool's root helper did not understand the request. Update tails-backup, or report the bug if it is up to date."), true
	case wire.ReasonRequestTimeout:
		return loc.Tr("No request reached the backup tool's root helper in time. Start the operation again."), true
	case wire.ReasonBadSecret:
		return loc.Tr("The passphrase did not reach the backup tool's root helper as it should. Update tails-backup, or report the bug if it is up to date."), true
	case wire.ReasonSecretTimeout:
		return loc.Tr("The passphrase did not reach the backup tool's root helper in time. Start the operation again."), true
	case wire.ReasonLimitNotLifted:
		return loc.Tr("The backup tool's root helper was started with a resource limit it cannot lift, so it did nothing. Run it through its sudo rule, as root."), true
	case wire.ReasonProcessSetup:
		return loc.Tr("The backup tool's root helper could not set up its process. Restart Tails and try again."), true
	case wire.ReasonCancelled:
		return loc.Tr("The operation was cancelled. Nothing is lost, and running it again finishes the job."), true

	// This Tails' Persistent Storage.
	case wire.ReasonSourceNotUnlocked:
		// TRANSLATORS: %s is a folder ("/live/persistence/TailsData_unlocked").
		return loc.Tr("The Persistent Storage of this Tails is not unlocked (nothing is mounted at %s). Unlock it in the Welcome Screen and try again.", a.Path), true
	case wire.ReasonSourceUnsafe, wire.ReasonSourceUnreadable:
		// TRANSLATORS: %s is a folder ("/live/persistence/TailsData_unlocked").
		return loc.Tr("The Persistent Storage of this Tails cannot be opened safely at %s. Restart Tails and try again.", a.Path), true
	case wire.ReasonSourceNotTails:
		// TRANSLATORS: %s is a folder ("/live/persistence/TailsData_unlocked").
		return loc.Tr("The file system mounted at %s is not the unlocked Persistent Storage of a Tails USB stick. Unlock the Persistent Storage of this Tails and try again.", a.Path), true
	case wire.ReasonSourceNoUUID:
		return loc.Tr("The Persistent Storage of this Tails has no valid identifier, so no backup can name it. Restart Tails and try again."), true
	case wire.ReasonSourceIsBackup:
		return loc.Tr("This Tails is the backup of another Tails (its Persistent Storage holds a backup marker), so it does not update backups itself. Make it your main Tails first with 'tails-backup promote'."), true
	case wire.ReasonStateDirFailed:
		return loc.Tr("The tails-backup folder of this Tails' Persistent Storage cannot be set up. Restart Tails and try again."), true
	case wire.ReasonStateDirNotFolder:
		// TRANSLATORS: %s is the name of a file ("tails-backup").
		return loc.Tr("%s in the Persistent Storage of this Tails is not a folder. Move it away and pair again.", a.Path), true
	case wire.ReasonUnmarkFailed:
		return loc.Tr("The backup marker of this Tails cannot be removed. Restart Tails and try again."), true

	// Finding and checking the backup.
	case wire.ReasonBackupNotPlugged:
		// TRANSLATORS: %s is the identifier of a Persistent Storage (a LUKS UUID).
		return loc.Tr("No USB stick with the backup's Persistent Storage (%s) is plugged in. Plug in your backup Tails and try again.", a.UUID), true
	case wire.ReasonBackupAmbiguous:
		// TRANSLATORS: %s is the identifier of a Persistent Storage (a LUKS UUID).
		return loc.Tr("Several plugged-in USB sticks have a Persistent Storage with the identifier %s, so the backup cannot be told apart. Unplug all but the backup and try again.", a.UUID), true
	case wire.ReasonBackupNotLUKS:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage of %[1]s is not encrypted, so it is never used as a backup. Create the backup again.", stick()), true
	case wire.ReasonBackupNotRemovable:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The drive %[1]s is not removable, so it is never used as a backup. Use a USB stick.", stick()), true
	case wire.ReasonBackupIsBoot:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("This Tails is running from %[1]s, which is never its own backup. Plug in your backup Tails instead.", stick()), true
	case wire.ReasonBackupSystemDevice:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system marks %[1]s as one of its own devices, so it is never written to. Use another USB stick as the backup.", stick()), true
	case wire.ReasonBackupIsSource:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage of this Tails is on %[1]s, which is never its own backup. Plug in your backup Tails instead.", stick()), true
	case wire.ReasonBackupLocked:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage of the backup on %[1]s is locked. Unlock it and try again.", stick()), true
	case wire.ReasonBackupNotMounted:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage of the backup on %[1]s is not mounted. Mount it and try again.", stick()), true
	case wire.ReasonBackupNotExt4:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is the type of a file system ("vfat").
		return loc.Tr("The Persistent Storage of the backup on %[1]s holds a %[2]s file system instead of ext4. Create the backup again.", stick(), a.FSType), true
	case wire.ReasonNoDeviceNumber:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("udisks does not say which device the backup on %[1]s is. Restart the computer and try again.", stick()), true
	case wire.ReasonBackupMoved:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a folder ("/media/amnesia/TailsData").
		return loc.Tr("The Persistent Storage of the backup on %[1]s is not mounted at %[2]s any more. Mount it again and try again.", stick(), a.Path), true
	case wire.ReasonBackupMountSymlink:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a folder ("/media/amnesia/TailsData").
		return loc.Tr("The backup on %[1]s is mounted at %[2]s through a symbolic link, which is not trusted. Unmount the backup, mount it again and try again.", stick(), a.Path), true
	case wire.ReasonBackupMountOther:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a folder ("/media/amnesia/TailsData").
		return loc.Tr("What is mounted at %[2]s is not the Persistent Storage of the backup on %[1]s. Unmount the backup, mount it again and try again.", stick(), a.Path), true
	case wire.ReasonBackupDeviceMismatch:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The device of the backup on %[1]s is not the one expected. Unplug the USB stick, plug it in again and try again.", stick()), true
	case wire.ReasonLUKSMoved, wire.ReasonLUKSGone:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage partition of %[1]s went away. Plug the USB stick in again and try again.", stick()), true
	case wire.ReasonNoMarker:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage on %[1]s has no backup marker, so it is not the backup of this Tails. Pair it with this Tails first.", stick()), true
	case wire.ReasonMarkerNewer:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup on %[1]s was last written by a newer version of tails-backup. Upgrade Tails and try again.", stick()), true
	case wire.ReasonMarkerDamaged:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup marker on %[1]s is damaged, so the USB stick is not trusted as a backup. Pair it with this Tails again.", stick()), true
	case wire.ReasonOtherTails:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is the identifier of the other Tails' Persistent Storage (a LUKS UUID).
		return loc.Tr("The USB stick %[1]s is the backup of another Tails (Persistent Storage %[2]s), so it was not changed. Plug in the backup of this Tails.", stick(), a.UUID), true
	case wire.ReasonMarkerNotWritten:
		return loc.Tr("The backup marker cannot be written. Report this bug."), true
	case wire.ReasonUpdateRunning:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("Another update of %[1]s is running. Wait for it to finish.", stick()), true
	case wire.ReasonUpdateRunningRestore:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("Another update of %[1]s is running. Press Cancel in its notification, then run 'tails-backup restore' again.", stick()), true
	case wire.ReasonBackupNotEmpty:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage on %[1]s is not empty, so it is not set up as a new one. Create the backup again to start from an empty one.", stick()), true
	case wire.ReasonBackupFull:
		return backupFull(), true
	case wire.ReasonBackupTooSmall:
		if he.Needed <= he.Available {
			return backupFull(), true
		}
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is the size missing, %[3]s the size free ("1.5 GB").
		return loc.Tr("The backup on %[1]s is too small: the update needs %[2]s more than the %[3]s free. Free some space in your Persistent Storage, or create a new backup on a bigger USB stick with 'tails-backup create'.",
			stick(), loc.Size(he.Needed-he.Available), loc.Size(he.Available)), true
	case wire.ReasonBackupLimit:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a path in the backup ("Persistent/a/…/z"). A sentence saying what is there follows.
		return loc.Tr("The backup on %[1]s holds, at %[2]s, more than any Persistent Storage needs, so the update stopped. Delete it from the backup, or create a new backup with 'tails-backup create'.", stick(), a.Path) +
			" " + limitText(loc, a), true
	case wire.ReasonSourceLimit:
		// TRANSLATORS: %s is a path in the Persistent Storage ("Persistent/a/…/z"). A sentence saying what is there follows.
		return loc.Tr("Your Persistent Storage holds, at %s, more than the backup can copy, so the update stopped. Move or delete it and update again.", a.Path) +
			" " + limitText(loc, a), true
	case wire.ReasonWriteFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("Writing to the backup on %[1]s failed. Check the USB stick and try again.", stick()), true
	case wire.ReasonBackupGone:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup on %[1]s failed or was unplugged. Nothing is lost: plug it in again and run the update again.", stick()), true
	case wire.ReasonUpdateFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The update of the backup on %[1]s stopped on an unexpected error. Nothing is lost: run it again, and report the bug if it happens again.", stick()), true

	// Restore.
	case wire.ReasonRestoreIntoBackup:
		return loc.Tr("This Tails is itself a backup Tails (its Persistent Storage holds a backup marker), so nothing is restored into it. Make it your main Tails first with 'tails-backup promote', or restore into another Tails."), true
	case wire.ReasonRestoreRunning:
		return loc.Tr("Another restore into the Persistent Storage of this Tails is running. Wait for it to finish."), true
	case wire.ReasonRestoreNoMarker:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage on %[1]s is not a backup made by tails-backup, so nothing is restored from it. Plug in your backup Tails instead.", stick()), true
	case wire.ReasonRestoreMarkerDamaged:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup marker on %[1]s is damaged, so it is not trusted as a backup made by tails-backup and nothing is restored from it. Restore from another backup.", stick()), true
	case wire.ReasonRestoreSourceChanged:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup on %[1]s is now the backup of another Persistent Storage than the one you confirmed, so nothing is restored from it. Run the restore again and check what it says.", stick()), true
	case wire.ReasonRestoreTooSmall:
		if he.Needed <= he.Available {
			// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
			return loc.Tr("The Persistent Storage of this Tails ran out of space during the restore from %[1]s. Delete files you do not need from it, or restore onto a Tails USB stick with a bigger Persistent Storage.", stick()), true
		}
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is the size missing, %[3]s the size free ("1.5 GB").
		return loc.Tr("The Persistent Storage of this Tails is too small for the backup on %[1]s: the restore needs %[2]s more than the %[3]s free. Delete files you do not need from it, or restore onto a Tails USB stick with a bigger Persistent Storage.",
			stick(), loc.Size(he.Needed-he.Available), loc.Size(he.Available)), true
	case wire.ReasonRestoreBackupLimit:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a path in the backup ("Persistent/a/…/z"). A sentence saying what is there follows.
		return loc.Tr("The backup on %[1]s holds, at %[2]s, more than any Persistent Storage needs, so the restore stopped. Restore from another backup.", stick(), a.Path) +
			" " + limitText(loc, a), true
	case wire.ReasonRestoreTargetLimit:
		// TRANSLATORS: %s is a path in the Persistent Storage ("Persistent/a/…/z"). A sentence saying what is there follows.
		return loc.Tr("The Persistent Storage of this Tails holds, at %s, more than a restore can replace, so the restore stopped. Delete it and run the restore again.", a.Path) +
			" " + limitText(loc, a), true
	case wire.ReasonRestoreTargetFailed:
		return loc.Tr("The Persistent Storage of this Tails failed during the restore. Restart Tails and run the restore again."), true
	case wire.ReasonRestoreConfFailed:
		return loc.Tr("The files were restored, but the backup's list of Persistent Storage features could not be. Run the restore again."), true
	case wire.ReasonRestoreFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The restore from the backup on %[1]s stopped on an unexpected error. Run it again, and report the bug if it happens again.", stick()), true
	case wire.ReasonRestoreBackupGone:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup on %[1]s failed or was unplugged during the restore. Plug it in again and run the restore again to finish it.", stick()), true

	// The Tails system.
	case wire.ReasonSystemNotMounted:
		// TRANSLATORS: %s is a folder ("/lib/live/mount/medium").
		return loc.Tr("The system partition of this Tails is not mounted at %s, so the backup's cannot be updated. Start Tails from its USB stick and try again.", a.Path), true
	case wire.ReasonSystemNotBoot:
		// TRANSLATORS: %s is a folder ("/lib/live/mount/medium").
		return loc.Tr("What is mounted at %s is not the system partition of the USB stick this Tails runs from, so it is not copied. Start Tails from its USB stick and try again.", a.Path), true
	case wire.ReasonSystemNoVersion:
		return loc.Tr("The system partition of this Tails has no readable Tails version, so it is not copied. Restart Tails and try again."), true
	case wire.ReasonSystemLimit:
		// TRANSLATORS: %s is a path in the system partition ("live/a/…/z"). A sentence saying what is there follows.
		return loc.Tr("The system partition of this Tails holds, at %s, more than any Tails system has, so nothing is copied from it. Restart Tails and try again.", a.Path) +
			" " + limitText(loc, a), true
	case wire.ReasonSystemNestedMount:
		// TRANSLATORS: %s is a path in the system partition ("live").
		return loc.Tr("Another file system is mounted on %s in the system partition of this Tails, so nothing is copied from it. Restart Tails and try again.", a.Path), true
	case wire.ReasonBackupNoLUKS, wire.ReasonBackupNoPartitionTable, wire.ReasonBackupSystemNoBlock:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("udisks no longer shows the partitions of the backup on %[1]s. Plug it in again and try again.", stick()), true
	case wire.ReasonBackupNoSystemPartition, wire.ReasonBackupPartitionESP, wire.ReasonBackupSystemNotFAT, wire.ReasonBackupSystemLabel:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The backup on %[1]s has no Tails system partition where it should be, so it is not written to. Create the backup again.", stick()), true
	case wire.ReasonBackupSystemElsewhere:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system partition of the backup on %[1]s is not on the same USB stick as its Persistent Storage, so it is not written to. Plug in only the backup and try again.", stick()), true
	case wire.ReasonBackupSystemHint:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system marks the system partition of the backup on %[1]s as one of its own devices, so it is never written to. Use another USB stick as the backup.", stick()), true
	case wire.ReasonBackupSystemReadOnly:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system partition of the backup on %[1]s is read-only. Turn off the write protection of the USB stick and try again.", stick()), true
	case wire.ReasonBackupSystemMoved:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a folder ("/media/amnesia/Tails").
		return loc.Tr("The system partition of the backup on %[1]s is not mounted at %[2]s any more. Mount it again and try again.", stick(), a.Path), true
	case wire.ReasonBackupSystemMountSymlink:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a folder ("/media/amnesia/Tails").
		return loc.Tr("The system partition of the backup on %[1]s is mounted at %[2]s through a symbolic link, which is not trusted. Unmount it, mount it again and try again.", stick(), a.Path), true
	case wire.ReasonBackupSystemMountOther:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a folder ("/media/amnesia/Tails").
		return loc.Tr("What is mounted at %[2]s is not the system partition of the backup on %[1]s. Unmount it, mount it again and try again.", stick(), a.Path), true
	case wire.ReasonBackupSystemNotMounted:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system partition of the backup on %[1]s is not mounted. Mount it and try again.", stick()), true
	case wire.ReasonBackupSystemMounted:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system partition of the backup on %[1]s is mounted, so its boot loader is not installed. Unmount it and try again.", stick()), true
	case wire.ReasonBackupSystemNotTails:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The system partition of the backup on %[1]s holds files but no Tails system, so it is not overwritten. Create the backup again.", stick()), true
	case wire.ReasonBackupSystemLimit:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a path in the system partition ("live/a/…/z"). A sentence saying what is there follows.
		return loc.Tr("The system partition of the backup on %[1]s holds, at %[2]s, more than any Tails system needs, so nothing is written there. Create the backup again.", stick(), a.Path) +
			" " + limitText(loc, a), true
	case wire.ReasonBackupSystemNestedMount:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is a path in the system partition ("live").
		return loc.Tr("Another file system is mounted on %[2]s in the system partition of the backup on %[1]s, so nothing is written there. Unplug the USB stick, plug it in again and try again.", stick(), a.Path), true
	case wire.ReasonBackupSystemFull:
		return systemFull(), true
	case wire.ReasonBackupSystemTooSmall:
		if he.Needed <= he.Available {
			return systemFull(), true
		}
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)"); %[2]s is the size needed, %[3]s the size free ("1.5 GB").
		return loc.Tr("The system partition of the backup on %[1]s is too small for this version of Tails: it needs %[2]s free and has %[3]s. Create a new backup on a bigger USB stick with 'tails-backup create'.",
			stick(), loc.Size(he.Needed), loc.Size(he.Available)), true
	case wire.ReasonRefreshFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The update of the Tails system on the backup on %[1]s stopped on an unexpected error. Nothing is lost: run it again, and report the bug if it happens again.", stick()), true
	case wire.ReasonNoSyslinux, wire.ReasonNoMBRCode:
		return loc.Tr("The boot loader of this Tails cannot be read. Restart Tails and try again."), true
	case wire.ReasonBootloaderFailed, wire.ReasonMBRFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The boot loader for computers without UEFI could not be installed on the backup on %[1]s. Plug it in again and try again.", stick()), true

	// The key slots.
	case wire.ReasonNoCryptsetup:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The cryptsetup program is not installed, so the key of %[1]s cannot be used. Install cryptsetup and try again.", stick()), true
	case wire.ReasonKeyOpFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The key of %[1]s could not be changed. Try again, and report the bug if it happens again.", stick()), true
	case wire.ReasonKeysDirFailed:
		return loc.Tr("The folder of the backup keys in the Persistent Storage of this Tails cannot be opened. Restart Tails and try again."), true
	case wire.ReasonNoFreeKeySlot:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("Every key slot of the Persistent Storage on %[1]s is taken, so it cannot be unlocked without its passphrase. Remove a passphrase you no longer use from it, or keep typing the passphrase.", stick()), true
	case wire.ReasonNoRandom:
		return loc.Tr("No random key can be made. Restart Tails and try again."), true
	case wire.ReasonWrongPassphrase:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The passphrase does not unlock the Persistent Storage on %[1]s. Type the passphrase of the backup again.", stick()), true
	case wire.ReasonKeyNotSaved:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The key of %[1]s cannot be saved in the Persistent Storage of this Tails. Free some space in it and try again.", stick()), true
	case wire.ReasonKeySlotNotFound:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The new key slot of %[1]s cannot be found after adding it. Try again, and report the bug if it happens again.", stick()), true
	case wire.ReasonKeyMissing:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("This Tails keeps no key for %[1]s, so it cannot unlock it without its passphrase. Type the passphrase.", stick()), true
	case wire.ReasonKeyUnusable:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The key this Tails keeps for %[1]s cannot be used. Type the passphrase.", stick()), true
	case wire.ReasonKeyRefused:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The USB stick %[1]s no longer accepts the key this Tails keeps for it, because its key slot was removed or the stick was made again. Type the passphrase.", stick()), true
	case wire.ReasonUnpluggedUnlocking:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The USB stick %[1]s was unplugged while it was being unlocked. Plug it in again.", stick()), true
	case wire.ReasonUnlockFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("udisks could not unlock %[1]s with the key this Tails keeps for it. Type the passphrase.", stick()), true
	case wire.ReasonKeyMountFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("udisks could not open the Persistent Storage of %[1]s after unlocking it with the key this Tails keeps for it. Type the passphrase.", stick()), true
	case wire.ReasonReleaseGone:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The USB stick %[1]s was unplugged before it was ejected. Nothing is lost if no update was running.", stick()), true
	case wire.ReasonReleaseBusy:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The Persistent Storage of %[1]s is in use, so it cannot be ejected. Close what uses it, then eject it in the Files browser.", stick()), true
	case wire.ReasonReleaseFailed:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("udisks could not eject %[1]s. Eject it in the Files browser.", stick()), true
	case wire.ReasonUnlockedNoDevice:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("udisks says %[1]s is unlocked already but shows no unlocked device. Unplug it, plug it in again and try again.", stick()), true
	case wire.ReasonLastKeySlot:
		// TRANSLATORS: %[1]s is a USB stick ("SanDisk Cruzer (8.0 GB, /dev/sdb)").
		return loc.Tr("The key slot of this Tails is the only one left on %[1]s, so removing it would lock its data away for good. Add a passphrase to it first.", stick()), true
	case wire.ReasonOwnLastKeySlot:
		return loc.Tr("The key slot that the lost main Tails could open is the only one left on this Tails, so removing it would lock its data away for good. Add a passphrase to the Persistent Storage of this Tails first."), true
	case wire.ReasonKeyNotShredded:
		return loc.Tr("The key this Tails keeps for the backup cannot be shredded. Restart Tails and try again."), true
	}
	return findingText(loc, he.Reason, a)
}

// FindingText words a problem event of verify or restore (wire.ProblemEvent): what Tails would
// refuse or repair at boot in the file at ev.Path, which the caller names. An unknown code gets a
// generic sentence, never the helper's English one.
func FindingText(loc *l10n.Locale, ev wire.Event) string {
	var a wire.Args
	if ev.Args != nil {
		a = *ev.Args
	}
	if text, ok := findingText(loc, ev.Reason, a); ok {
		return text
	}
	if ev.Warning {
		return loc.Tr("Tails accepts this as it is, but it differs from what Tails makes.")
	}
	return loc.Tr("Tails would refuse or repair this at boot.")
}

// findingText is the sentence of a problem of a Persistent Storage (tails.Finding*): the file
// concerned is named apart, hence "It".
func findingText(loc *l10n.Locale, reason wire.Reason, a wire.Args) (string, bool) {
	switch reason {
	case wire.ReasonFindingUnexaminable:
		// TRANSLATORS: %s is the system's error, in English ("permission denied").
		return loc.Tr("It cannot be examined (%s). Run the check as root.", a.Detail), true
	case wire.ReasonFindingAdditionalNotFile:
		return loc.Tr("It is not a regular file, so Tails does not reinstall the Additional Software."), true
	case wire.ReasonFindingAdditionalOwner:
		// TRANSLATORS: %s is the owner found, as user and group numbers ("1000:1000").
		return loc.Tr("It is owned by %s instead of tails-persistent-storage.", a.Owner), true
	case wire.ReasonFindingAdditionalMode:
		// TRANSLATORS: %s is the permissions found, in octal ("0600").
		return loc.Tr("Its mode is %s instead of 0644.", a.Mode), true
	case wire.ReasonFindingRootUnexaminable:
		// TRANSLATORS: %s is the system's error, in English ("permission denied").
		return loc.Tr("The root folder cannot be examined (%s).", a.Detail), true
	case wire.ReasonFindingRootOwner:
		// TRANSLATORS: %s is the owner found, as user and group numbers ("1000:1000").
		return loc.Tr("The root folder is owned by %s instead of root.", a.Owner), true
	case wire.ReasonFindingRootOldMode:
		return loc.Tr("The root folder has mode 0775, as made by old versions of Tails, instead of 0770. Tails accepts it."), true
	case wire.ReasonFindingRootMode:
		// TRANSLATORS: %s is the permissions found, in octal ("0755").
		return loc.Tr("The root folder has mode %s instead of 0770.", a.Mode), true
	case wire.ReasonFindingRootACLUnreadable:
		// TRANSLATORS: %s is the system's error, in English ("permission denied").
		return loc.Tr("The ACL of the root folder cannot be read (%s).", a.Detail), true
	case wire.ReasonFindingRootNoACL:
		return loc.Tr("The root folder has no ACL, so amnesia cannot reach its folders."), true
	case wire.ReasonFindingRootACL:
		// TRANSLATORS: %[1]s is the ACL found, %[2]s the one Tails expects ("user::rwx,user:1000:--x,...").
		return loc.Tr("The ACL of the root folder is %[1]s instead of %[2]s.", a.ACL, a.WantACL), true
	case wire.ReasonFindingRootDefaultACL:
		// TRANSLATORS: %s is an ACL ("user::rwx,...").
		return loc.Tr("The root folder has a default ACL (%s), which Tails does not set.", a.ACL), true
	case wire.ReasonFindingRootDefaultACLUnreadable:
		// TRANSLATORS: %s is the system's error, in English ("permission denied").
		return loc.Tr("The default ACL of the root folder cannot be read (%s).", a.Detail), true
	case wire.ReasonFindingConfMissing:
		return loc.Tr("It is missing, so Tails would activate no feature of this Persistent Storage."), true
	case wire.ReasonFindingConfNotFile:
		return loc.Tr("It is not a regular file, so Tails would disable it and activate no feature."), true
	case wire.ReasonFindingConfOwner:
		// TRANSLATORS: %s is the owner found, as user and group numbers ("1000:1000").
		return loc.Tr("It is owned by %s instead of tails-persistent-storage, so Tails would disable it and activate no feature.", a.Owner), true
	case wire.ReasonFindingConfMode:
		// TRANSLATORS: %s is the permissions found, in octal ("0644").
		return loc.Tr("Its mode is %s instead of exactly 0600, so Tails would disable it and activate no feature.", a.Mode), true
	case wire.ReasonFindingConfNotRoot:
		// TRANSLATORS: %s is the system's error, in English ("permission denied").
		return loc.Tr("It cannot be read (%s). Run the check as root.", a.Detail), true
	case wire.ReasonFindingConfUnopenable:
		// TRANSLATORS: %s is the system's error, in English ("permission denied").
		return loc.Tr("It cannot be opened (%s).", a.Detail), true
	case wire.ReasonFindingConfACLUnreadable:
		// TRANSLATORS: %s is the system's error, in English ("permission denied").
		return loc.Tr("Its ACL cannot be read (%s).", a.Detail), true
	case wire.ReasonFindingConfACL:
		// TRANSLATORS: %s is an ACL ("user::rw-,...").
		return loc.Tr("It has an ACL (%s), so Tails would disable it and activate no feature.", a.ACL), true
	case wire.ReasonFindingConfUnreadable:
		// TRANSLATORS: %s is the system's error, in English ("input/output error").
		return loc.Tr("It cannot be read (%s).", a.Detail), true
	case wire.ReasonFindingConfLine:
		// TRANSLATORS: %[1]d is a line number, %[2]s what is wrong with it, in English ("unknown option").
		return loc.Tr("Line %[1]d is invalid (%[2]s), so Tails would disable the file and activate no feature.", a.Line, a.Detail), true
	case wire.ReasonFindingConfUnparsable:
		// TRANSLATORS: %s is what is wrong, in English.
		return loc.Tr("It cannot be parsed (%s), so Tails would disable it and activate no feature.", a.Detail), true
	case wire.ReasonFindingRestoredConfMissing:
		return loc.Tr("It is missing, although the backup has one that was checked. Run the restore again."), true
	case wire.ReasonFindingRestoredConfUnreadable:
		// TRANSLATORS: %s is the system's error, in English ("input/output error").
		return loc.Tr("It cannot be read (%s). Run the restore again.", a.Detail), true
	case wire.ReasonFindingRestoredConfChanged:
		return loc.Tr("It is not the file that was checked on the backup, so Tails could mount folders that no one checked. Run the restore again before restarting Tails."), true
	case wire.ReasonFindingBackupConfNotRestored:
		// TRANSLATORS: %s says why, in English ("uses the option 'bind' for /etc, which Tails does not write").
		return loc.Tr("The backup's persistence.conf was not restored because it is not safe (%s): this Tails keeps its own. After restarting Tails, turn on the features you need in the Persistent Storage settings.", a.Detail), true
	}
	return "", false
}
