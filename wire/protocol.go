// Package wire is the session/root protocol: the request the session sends to the root helper,
// the events the helper answers with, and the client that runs the helper and speaks it.
//
// The session writes one Request as a JSON line on the helper's standard input and keeps it
// open; writing a Cancel line or closing it cancels the operation. The helper writes Event JSON
// lines on its standard output: progress, then exactly one "done" or "error".
package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"tails-backup/tails"
)

// ProtocolVersion is the version of the request format.
const ProtocolVersion = 1

// Op is what the session asks the helper to do.
type Op string

const (
	// OpUpdate mirrors this Tails' Persistent Storage onto the paired, unlocked and mounted backup.
	OpUpdate Op = "update"
	// OpMark writes the backup marker on an unlocked, mounted backup that has none yet, naming
	// this Tails as its source (pairing).
	OpMark Op = "mark"
	// OpPromote removes the backup marker from this Tails' own Persistent Storage, making a
	// backup Tails the main one.
	OpPromote Op = "promote"
	// OpCreatePersistence gives the root of a freshly formatted backup Persistent Storage the
	// ownership, mode and ACL Tails expects.
	OpCreatePersistence Op = "create-persistence"
	// OpVerify compares this Tails' Persistent Storage with the paired, unlocked and mounted
	// backup, and checks the backup's Persistent Storage as Tails does at boot; it never writes.
	OpVerify Op = "verify"
	// OpRefreshSystem makes the system partition of the paired, unlocked and mounted backup
	// (partition 1 of its stick, mounted by the session) a copy of the running one.
	OpRefreshSystem Op = "refresh-system"
	// OpInstallBootloader makes the paired backup bootable on legacy BIOS, as Tails Installer
	// does: syslinux on its unmounted system partition, and the GPT MBR boot code.
	OpInstallBootloader Op = "install-bootloader"
	// OpRestore mirrors an unlocked and mounted backup made by tails-backup (its marker naming
	// Request.Source) into this Tails' Persistent Storage, treating the backup as untrusted.
	OpRestore Op = "restore"
	// OpAddKeySlot adds a LUKS2 key slot for a fresh random 64-byte key to the TailsData of
	// the paired, unlocked and mounted backup (its marker naming this Tails), and keeps that key
	// in this Tails' Persistent Storage, root's alone (tails.KeysDirName). The backup's
	// passphrase authorises it: it comes as a Secret line right after the request.
	OpAddKeySlot Op = "add-key-slot"
	// OpUnlockWithKey unlocks the locked TailsData of a plugged-in backup with the key that
	// add-key-slot kept for it, through udisks (so that udisks knows the cleartext device as
	// for any unlock), and mounts it: udisks2 refuses amnesia the mount and the lock of a
	// device that root unlocked. With udisks2 ≥ 2.10 (Tails 7) it is mounted as amnesia
	// (Mount's as-user: where and as if amnesia had); with older ones as root, after the
	// helper checked its marker (Report.MountedAsRoot). Report.Cleartext is the cleartext
	// block's object path, Report.MountPoint where it is mounted. The session locks it again
	// with lock-backup.
	OpUnlockWithKey Op = "unlock-with-key"
	// OpLockBackup unmounts and locks, as root, the Persistent Storage of the plugged-in backup
	// (its marker, if mounted, naming this Tails): what unlock-with-key opened, which the
	// session may not lock itself. It first removes the crypt mappings of the backup's LUKS
	// UUID whose backing device is gone (what udisks could not remove after a pull), their
	// mounts detached: the session asks it before an update's unlock when there are some.
	OpLockBackup Op = "lock-backup"
	// OpRemoveKeySlot removes from the plugged-in backup's TailsData the key slot that the key
	// kept for it opens, authorised by that key, then shreds the key.
	OpRemoveKeySlot Op = "remove-key-slot"
	// OpForgetKey shreds the key kept for a backup without touching the backup (it is lost, or
	// its slot is gone already): "forget this backup" when the stick is not plugged in.
	OpForgetKey Op = "forget-key"
	// OpCancel, sent after a request, cancels it.
	OpCancel Op = "cancel"
)

// Request is the one command the helper takes. Backup is the LUKS UUID of the backup's
// Persistent Storage partition; the helper finds everything else itself.
type Request struct {
	Version int    `json:"version"`
	Op      Op     `json:"op"`
	Backup  string `json:"backup,omitempty"`
	// Skip lists top-level folders of the Persistent Storage (features such as "thunderbird")
	// whose data an update leaves as it is on the backup this time, because the user chose not
	// to close the application that uses them.
	Skip []string `json:"skip,omitempty"`
	// Checksum makes verify compare the content of every regular file of equal size and mtime.
	Checksum bool `json:"checksum,omitempty"`
	// Source, for restore, is the LUKS UUID that the backup's marker names and that the user
	// confirmed restoring from; a backup whose marker names anything else is refused.
	Source string `json:"source,omitempty"`

	// Secret is what the client sends on the line after the request (never inside it, so that
	// no error about the request can quote it): the backup's passphrase for add-key-slot.
	Secret *Secret `json:"-"`
}

// Secret is the line that follows an add-key-slot request: the passphrase of the backup, as
// the exact bytes the user typed (base64 in JSON, as encoding/json writes []byte, so that no
// byte needs escaping and the decoded copy can be wiped).
type Secret struct {
	Passphrase []byte `json:"passphrase"`
}

// NeedsSecret tells whether a request of op is followed by a Secret line.
func NeedsSecret(op Op) bool { return op == OpAddKeySlot }

// MaxPassphrase bounds the passphrase of a Secret: cryptsetup reads at most 512 characters of
// an interactive passphrase, and a Tails user types it.
const MaxPassphrase = 1024

// ErrInvalidSecret is wrapped by every error about a malformed Secret line. Its messages never
// quote the line.
var ErrInvalidSecret = errors.New("invalid secret line")

// ParseSecret decodes one Secret line. Its errors never quote the line.
func ParseSecret(line []byte) (Secret, error) {
	var s Secret
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		// The decoder's messages may quote the input: only its kind is kept.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return Secret{}, fmt.Errorf("%w: not JSON (at byte %d)", ErrInvalidSecret, se.Offset)
		case errors.As(err, &te):
			return Secret{}, fmt.Errorf("%w: field %q has the wrong type", ErrInvalidSecret, te.Field)
		default:
			return Secret{}, fmt.Errorf("%w: not a secret object", ErrInvalidSecret)
		}
	}
	if dec.More() {
		return Secret{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidSecret)
	}
	if len(s.Passphrase) == 0 {
		return Secret{}, fmt.Errorf("%w: no passphrase", ErrInvalidSecret)
	}
	if len(s.Passphrase) > MaxPassphrase {
		return Secret{}, fmt.Errorf("%w: passphrase longer than %d bytes", ErrInvalidSecret, MaxPassphrase)
	}
	return s, nil
}

// Wipe overwrites the passphrase in memory.
func (s *Secret) Wipe() {
	if s != nil {
		clear(s.Passphrase)
	}
}

// maxSkip bounds Request.Skip: Tails has about fifteen features.
const maxSkip = 64

// MaxRequestSize bounds a request line.
const MaxRequestSize = 4096

// ErrInvalidRequest is wrapped by every error about a malformed request.
var ErrInvalidRequest = errors.New("invalid request")

// ParseRequest decodes and validates one request line.
func ParseRequest(line []byte) (Request, error) {
	if len(line) > MaxRequestSize {
		return Request{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidRequest, MaxRequestSize)
	}
	var r Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidRequest)
	}
	if r.Version != ProtocolVersion {
		return Request{}, fmt.Errorf("%w: version %d, this helper speaks %d", ErrInvalidRequest, r.Version, ProtocolVersion)
	}
	switch r.Op {
	case OpUpdate, OpMark, OpCreatePersistence, OpVerify, OpRefreshSystem, OpInstallBootloader,
		OpAddKeySlot, OpUnlockWithKey, OpLockBackup, OpRemoveKeySlot, OpForgetKey:
		if !tails.ValidUUID(r.Backup) {
			return Request{}, fmt.Errorf("%w: backup %q is not a LUKS UUID", ErrInvalidRequest, r.Backup)
		}
	case OpRestore:
		if !tails.ValidUUID(r.Backup) {
			return Request{}, fmt.Errorf("%w: backup %q is not a LUKS UUID", ErrInvalidRequest, r.Backup)
		}
		if !tails.ValidUUID(r.Source) {
			return Request{}, fmt.Errorf("%w: source %q is not a LUKS UUID", ErrInvalidRequest, r.Source)
		}
	case OpPromote:
		if r.Backup != "" {
			return Request{}, fmt.Errorf("%w: promote takes no backup", ErrInvalidRequest)
		}
	default:
		return Request{}, fmt.Errorf("%w: unknown operation %q", ErrInvalidRequest, r.Op)
	}
	if len(r.Skip) > 0 && r.Op != OpUpdate && r.Op != OpVerify && r.Op != OpRestore {
		return Request{}, fmt.Errorf("%w: only update and verify take skip, as does restore", ErrInvalidRequest)
	}
	if r.Source != "" && r.Op != OpRestore {
		return Request{}, fmt.Errorf("%w: only restore takes source", ErrInvalidRequest)
	}
	if r.Checksum && r.Op != OpVerify {
		return Request{}, fmt.Errorf("%w: only verify takes checksum", ErrInvalidRequest)
	}
	if len(r.Skip) > maxSkip {
		return Request{}, fmt.Errorf("%w: more than %d folders to skip", ErrInvalidRequest, maxSkip)
	}
	for _, f := range r.Skip {
		if !validSkip(f) {
			return Request{}, fmt.Errorf("%w: %q is not a top-level folder of the Persistent Storage", ErrInvalidRequest, f)
		}
	}
	return r, nil
}

// validSkip accepts one plain path component that is not the backup marker.
func validSkip(f string) bool {
	return f != "" && f != "." && f != ".." && len(f) <= 255 && f != tails.MarkerName &&
		!strings.ContainsAny(f, "/\x00")
}

// ReadRequest reads the first line of r as a request.
func ReadRequest(r *bufio.Reader) (Request, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return Request{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidRequest, r.Size())
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return Request{}, fmt.Errorf("%w: no request on standard input: %v", ErrInvalidRequest, err)
	}
	return ParseRequest(bytes.TrimSpace(line))
}

// EventType says what an Event reports.
type EventType string

const (
	EventProgress EventType = "progress"
	EventDone     EventType = "done"
	EventError    EventType = "error"
)

// ErrorCode classifies a failure so that the agent can explain it and say what to do.
type ErrorCode string

const (
	CodeInvalidRequest ErrorCode = "invalid-request" // the request was malformed
	CodeNotFound       ErrorCode = "not-found"       // no such backup unlocked and mounted, or no source
	CodeNotPaired      ErrorCode = "not-paired"      // the backup's marker names another Tails, or none
	CodeRefused        ErrorCode = "refused"         // the device is the boot device, not removable, not TailsData...
	CodeNoSpace        ErrorCode = "no-space"        // the backup is too small
	CodeDeviceGone     ErrorCode = "device-gone"     // the backup failed or was unplugged during the update
	CodeCancelled      ErrorCode = "cancelled"       // cancelled by the session
	CodeInternal       ErrorCode = "internal"        // anything else

	// The key slot operations' own failures, which the session words.
	CodeKeyMissing      ErrorCode = "key-missing"      // no key kept for this backup (never added, or forgotten)
	CodeKeyRefused      ErrorCode = "key-refused"      // the backup refuses the kept key: its slot was removed or the stick was made again
	CodeWrongPassphrase ErrorCode = "wrong-passphrase" // add-key-slot: the backup refuses the passphrase
	CodeNoFreeKeySlot   ErrorCode = "no-free-key-slot" // add-key-slot: every LUKS2 key slot of the backup is taken
	CodeLastKeySlot     ErrorCode = "last-key-slot"    // remove-key-slot, promote: the slot is the only one left, removing it would lock the data away
	CodeNoCryptsetup    ErrorCode = "no-cryptsetup"    // the cryptsetup program is not installed
)

// Event is one line of the helper's output.
type Event struct {
	Event EventType `json:"event"`

	// progress
	Phase      string `json:"phase,omitempty"`
	FilesDone  int64  `json:"files_done,omitempty"`
	FilesTotal int64  `json:"files_total,omitempty"`
	BytesDone  int64  `json:"bytes_done,omitempty"`
	BytesTotal int64  `json:"bytes_total,omitempty"`
	Path       string `json:"path,omitempty"`

	// progress of verify, phase PhaseChange: one difference at Path.
	Kind string   `json:"kind,omitempty"` // create, update, metadata or delete (sync.ChangeKind)
	What []string `json:"what,omitempty"` // what differs: data, target, mode, mtime...
	Type string   `json:"type,omitempty"` // f (file), d (folder), L (symlink), D (device), S (special)
	// progress of verify, phase PhaseProblem: what Tails would refuse at Path of the backup, in
	// English for the log; Reason and Args below say it for the session to word (ProblemEvent).
	Problem string `json:"problem,omitempty"`
	Warning bool   `json:"warning,omitempty"` // Tails accepts it: shown, not an error

	// done
	Report *Report `json:"report,omitempty"`

	// error: Code for the caller to decide on, Reason and Args for the session to word it in
	// its language, Message in English for the log only. A problem event has Reason and Args too.
	Code      ErrorCode `json:"code,omitempty"`
	Reason    Reason    `json:"reason,omitempty"`
	Args      *Args     `json:"args,omitempty"`
	Message   string    `json:"message,omitempty"`
	Needed    int64     `json:"needed,omitempty"`
	Available int64     `json:"available,omitempty"`
}

// Report summarises a finished update.
type Report struct {
	Created      int64         `json:"created"`
	Updated      int64         `json:"updated"`
	MetadataOnly int64         `json:"metadata_only"`
	Deleted      int64         `json:"deleted"`
	BytesCopied  int64         `json:"bytes_copied"`
	ErrorCount   int64         `json:"error_count"`
	Errors       []ReportError `json:"errors,omitempty"`
	Duration     time.Duration `json:"duration_ns"`
	// Finished is when the marker was written complete.
	Finished time.Time `json:"finished,omitzero"`

	// verify: the counts above are the differences found; Problems counts the problem events
	// (warnings aside), Warnings the warnings, ChangesNotListed the differences beyond
	// MaxChangeEvents that got no event, and Features the features Tails would activate on the
	// backup.
	Problems         int64    `json:"problems,omitempty"`
	Warnings         int64    `json:"warnings,omitempty"`
	ChangesNotListed int64    `json:"changes_not_listed,omitempty"`
	Features         []string `json:"features,omitempty"`

	// refresh-system: Created, Updated and Deleted count the files and folders of the system
	// partition, BytesCopied what was written. SystemVersion is the Tails version now on the
	// backup's system partition; BootloaderChanged says that syslinux/ changed or the
	// partition was empty before: the session unmounts it and asks install-bootloader.
	SystemVersion     string `json:"system_version,omitempty"`
	BootloaderChanged bool   `json:"bootloader_changed,omitempty"`
	// install-bootloader: BootloaderSyslinux, or a value starting with "skipped:" (a warning:
	// UEFI boot works without it) such as BootloaderNoSyslinux.
	Bootloader string `json:"bootloader,omitempty"`

	// add-key-slot: the key slot added; remove-key-slot and promote: the key slots removed
	// (none when the kept key opened no slot any more).
	KeySlots []int `json:"key_slots,omitempty"`
	// unlock-with-key: the object path of the cleartext block udisks made; AlreadyUnlocked says that the backup was unlocked already and this is
	// its existing cleartext block.
	Cleartext       string `json:"cleartext,omitempty"`
	AlreadyUnlocked bool   `json:"already_unlocked,omitempty"`
	// unlock-with-key: where its file system is mounted, and whether as root (udisks2 older
	// than 2.10: amnesia may not read it; the helper checked the marker), not as amnesia.
	MountPoint    string `json:"mount_point,omitempty"`
	MountedAsRoot bool   `json:"mounted_as_root,omitempty"`
	// remove-key-slot and forget-key: KeyShredded says that a kept key was shredded (false:
	// there was none).
	KeyShredded bool `json:"key_shredded,omitempty"`
}

// Phases of the progress events of verify, which carry its findings: the helper client passes
// progress events on and ends at the first event of any other type.
const (
	PhaseChange  = "change"
	PhaseProblem = "problem"
)

// PhaseSystem is the phase of the progress events of refresh-system: bytes written of the
// bytes to write, files written of the files to write.
const PhaseSystem = "system"

// Values of Report.Bootloader.
const (
	BootloaderSyslinux   = "syslinux"
	BootloaderNoSyslinux = "skipped: no syslinux"
	BootloaderNoMBR      = "skipped: no gptmbr.bin"
)

// ReportError is a file that could not be copied.
type ReportError struct {
	Path  string `json:"path"`
	Op    string `json:"op"`
	Error string `json:"error"`
}
