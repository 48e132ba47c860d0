package tails

// Problem is something in a Persistent Storage that Tails would refuse or repair at boot.
type Problem struct {
	// Path is relative to the Persistent Storage root; "." for the root itself.
	Path string
	// Code says which problem it is (Finding*), Args its values: the session words them in the
	// person's language (the root helper, which finds them, has no locale of the session).
	Code string
	Args ProblemArgs
	// What says what is wrong, in one English sentence, for the log.
	What string
	// Warning marks a difference that Tails accepts (an old but valid layout): it is shown,
	// but does not make the Persistent Storage invalid.
	Warning bool
}

func (p Problem) String() string {
	if p.Warning {
		return "warning: " + p.Path + ": " + p.What
	}
	return p.Path + ": " + p.What
}

// ProblemArgs are the values a Problem's sentence names; only those it uses are set.
type ProblemArgs struct {
	Owner   string // the owner found, "uid:gid"
	Mode    string // the mode found, "0755"
	ACL     string // the ACL found, in the short text form
	WantACL string // the ACL Tails expects
	Line    int    // a line of persistence.conf
	// Detail is the system's error or the parser's reason, in English (a value, not a sentence).
	Detail string
}

// The codes of the problems (Problem.Code); each has its sentence in the session.
const (
	FindingUnexaminable             = "file-unexaminable"            // Detail: cannot be examined, run as root
	FindingAdditionalNotFile        = "additional-software-not-file" // live-additional-software.conf is not a regular file
	FindingAdditionalOwner          = "additional-software-owner"    // Owner
	FindingAdditionalMode           = "additional-software-mode"     // Mode
	FindingRootUnexaminable         = "root-unexaminable"            // Detail
	FindingRootOwner                = "root-owner"                   // Owner
	FindingRootOldMode              = "root-old-mode"                // 0775 of old Tails: a warning
	FindingRootMode                 = "root-mode"                    // Mode
	FindingRootACLUnreadable        = "root-acl-unreadable"          // Detail
	FindingRootNoACL                = "root-no-acl"                  // amnesia cannot reach its folders
	FindingRootACL                  = "root-acl"                     // ACL, WantACL
	FindingRootDefaultACL           = "root-default-acl"             // ACL
	FindingRootDefaultACLUnreadable = "root-default-acl-unreadable"  // Detail
	FindingConfMissing              = "conf-missing"                 // no persistence.conf
	FindingConfNotFile              = "conf-not-file"                // persistence.conf is not a regular file
	FindingConfOwner                = "conf-owner"                   // Owner
	FindingConfMode                 = "conf-mode"                    // Mode
	FindingConfNotRoot              = "conf-not-root"                // Detail: cannot be read, run as root
	FindingConfUnopenable           = "conf-unopenable"              // Detail
	FindingConfACLUnreadable        = "conf-acl-unreadable"          // Detail
	FindingConfACL                  = "conf-acl"                     // ACL
	FindingConfUnreadable           = "conf-unreadable"              // Detail
	FindingConfLine                 = "conf-line"                    // Line, Detail
	FindingConfUnparsable           = "conf-unparsable"              // Detail

	// A restore's checks of the persistence.conf it restores.
	FindingRestoredConfMissing    = "restored-conf-missing"    // missing after the restore
	FindingRestoredConfUnreadable = "restored-conf-unreadable" // Detail
	FindingRestoredConfChanged    = "restored-conf-changed"    // not the file checked on the backup
	FindingBackupConfNotRestored  = "backup-conf-not-restored" // Detail: the backup's is unsafe, this Tails keeps its own
)

// Findings lists every Finding code.
var Findings = []string{
	FindingUnexaminable, FindingAdditionalNotFile, FindingAdditionalOwner, FindingAdditionalMode,
	FindingRootUnexaminable, FindingRootOwner, FindingRootOldMode, FindingRootMode, FindingRootACLUnreadable,
	FindingRootNoACL, FindingRootACL, FindingRootDefaultACL, FindingRootDefaultACLUnreadable,
	FindingConfMissing, FindingConfNotFile, FindingConfOwner, FindingConfMode, FindingConfNotRoot,
	FindingConfUnopenable, FindingConfACLUnreadable, FindingConfACL, FindingConfUnreadable, FindingConfLine,
	FindingConfUnparsable, FindingRestoredConfMissing, FindingRestoredConfUnreadable, FindingRestoredConfChanged,
	FindingBackupConfNotRestored,
}
